//! Fixed-size functions in the runtime calling convention: flat slices to
//! arrays, the wrappers, and the tables of instances the suites test.

use super::*;

/// `[[f32; D]; N]` on the heap (the largest shapes would crowd a debug stack).
pub fn rows<const N: usize, const D: usize>(flat: &[f32]) -> Box<[[f32; D]; N]> {
    let (rows, tail) = flat.as_chunks::<D>();
    assert!(
        tail.is_empty(),
        "length {} is not a multiple of D = {D}",
        flat.len()
    );
    rows.to_vec()
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("{} values are not N = {N} rows of D = {D}", flat.len()))
}

/// `[[[f32; D]; H]; N]` on the heap: exactly the runtime flat layout.
pub fn tokens<const N: usize, const H: usize, const D: usize>(
    flat: &[f32],
) -> Box<[[[f32; D]; H]; N]> {
    let (rows, tail) = flat.as_chunks::<D>();
    assert!(tail.is_empty());
    let (toks, tail) = rows.as_chunks::<H>();
    assert!(tail.is_empty());
    toks.to_vec()
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("{} values are not N = {N} tokens of {H}x{D}", flat.len()))
}

/// The shape a fixed-size wrapper stands for must be the case's shape: a
/// mismatch is a bug of the test, not of the crate.
fn expect_shape(s: &Shape, n: usize, h: usize, kvh: usize, d: usize, default: bool) {
    assert_eq!(
        (s.q_len, s.kv_len, s.heads, s.kv_heads, s.head_dim),
        (n, n, h, kvh, d),
        "test bug: case shape does not match the fixed-size instance"
    );
    if default {
        assert_eq!(s.scale.to_bits(), default_scale(d).to_bits());
    }
}

/// Defines a wrapper running a one-head fixed-size function in the
/// [`Kernel`] convention. `out` is copied in and back, so that whatever it
/// held before the call is what the fixed-size function sees. With a trailing
/// `scale`, the function takes the case's scale; without, it must be the
/// default one.
macro_rules! single_wrapper {
    ($name:ident, $f:path $(, $scale:ident)?) => {
        pub fn $name<const N: usize, const D: usize>(
            s: &Shape,
            q: &[f32],
            k: &[f32],
            v: &[f32],
            out: &mut [f32],
        ) -> Result<(), Error> {
            let default_scale = true $(&& stringify!($scale).is_empty())?;
            expect_shape(s, N, 1, 1, D, default_scale);
            let mut o = rows::<N, D>(out);
            $f(&rows::<N, D>(q), &rows(k), &rows(v), $(s.$scale,)? &mut o);
            out.copy_from_slice(o.as_flattened());
            Ok(())
        }
    };
}

/// Like `single_wrapper`, for the multi-head functions.
macro_rules! multi_wrapper {
    ($name:ident, $f:path $(, $scale:ident)?) => {
        pub fn $name<const N: usize, const H: usize, const KVH: usize, const D: usize>(
            s: &Shape,
            q: &[f32],
            k: &[f32],
            v: &[f32],
            out: &mut [f32],
        ) -> Result<(), Error> {
            let default_scale = true $(&& stringify!($scale).is_empty())?;
            expect_shape(s, N, H, KVH, D, default_scale);
            let mut o = tokens::<N, H, D>(out);
            $f(
                &tokens::<N, H, D>(q),
                &tokens::<N, KVH, D>(k),
                &tokens::<N, KVH, D>(v),
                $(s.$scale,)?
                &mut o,
            );
            out.copy_from_slice(o.as_flattened().as_flattened());
            Ok(())
        }
    };
}

single_wrapper!(single, microattn::causal_attention);
single_wrapper!(single_naive, reference::causal_attention);
single_wrapper!(single_scaled, microattn::causal_attention_scaled, scale);
single_wrapper!(
    single_scaled_naive,
    reference::causal_attention_scaled,
    scale
);
multi_wrapper!(multi, microattn::causal_multi_head);
multi_wrapper!(multi_naive, reference::causal_multi_head);
multi_wrapper!(multi_scaled, microattn::causal_multi_head_scaled, scale);
multi_wrapper!(
    multi_scaled_naive,
    reference::causal_multi_head_scaled,
    scale
);

/// One fixed-size function instantiated at one shape, beside the matching
/// textbook function (its naive32).
#[derive(Clone, Copy, Debug)]
pub struct Fixed {
    /// e.g. `causal_multi_head::<17, 4, 2, 17>`.
    pub name: &'static str,
    /// Its shape, with the default scale.
    pub shape: Shape,
    /// Whether the function takes a scale (otherwise it uses `1/√D`).
    pub scaled: bool,
    /// The fast function.
    pub fast: Kernel,
    /// The reference function of the same name.
    pub naive: Kernel,
}

/// `(N, D)` of the one-head fixed-size instances: every N of the grid and
/// every D of the grid at least once (not the cross product: compile time).
macro_rules! single_shapes {
    ($m:ident) => {
        $m!(
            (1, 64),
            (2, 33),
            (7, 32),
            (8, 17),
            (9, 16),
            (15, 9),
            (16, 8),
            (17, 7),
            (33, 4),
            (64, 3),
            (8, 1)
        )
    };
}

/// `(N, H, KVH, D)` of the multi-head instances: every N, every D and every
/// `(H, KVH)` pair of the grid at least once.
macro_rules! multi_shapes {
    ($m:ident) => {
        $m!(
            (1, 1, 1, 1),
            (2, 2, 1, 3),
            (7, 4, 2, 4),
            (8, 4, 4, 7),
            (9, 8, 1, 8),
            (15, 1, 1, 9),
            (16, 2, 1, 16),
            (17, 4, 2, 17),
            (33, 4, 4, 32),
            (64, 8, 1, 33),
            (17, 2, 1, 64)
        )
    };
}

macro_rules! single_table {
    ($(($n:literal, $d:literal)),*) => {
        vec![
            $(
                Fixed {
                    name: concat!("causal_attention::<", $n, ", ", $d, ">"),
                    shape: Shape::new($n, $n, 1, 1, $d),
                    scaled: false,
                    fast: single::<$n, $d>,
                    naive: single_naive::<$n, $d>,
                },
                Fixed {
                    name: concat!("causal_attention_scaled::<", $n, ", ", $d, ">"),
                    shape: Shape::new($n, $n, 1, 1, $d),
                    scaled: true,
                    fast: single_scaled::<$n, $d>,
                    naive: single_scaled_naive::<$n, $d>,
                },
            )*
        ]
    };
}

macro_rules! multi_table {
    ($(($n:literal, $h:literal, $kvh:literal, $d:literal)),*) => {
        vec![
            $(
                Fixed {
                    name: concat!("causal_multi_head::<", $n, ", ", $h, ", ", $kvh, ", ", $d, ">"),
                    shape: Shape::new($n, $n, $h, $kvh, $d),
                    scaled: false,
                    fast: multi::<$n, $h, $kvh, $d>,
                    naive: multi_naive::<$n, $h, $kvh, $d>,
                },
                Fixed {
                    name: concat!(
                        "causal_multi_head_scaled::<", $n, ", ", $h, ", ", $kvh, ", ", $d, ">"
                    ),
                    shape: Shape::new($n, $n, $h, $kvh, $d),
                    scaled: true,
                    fast: multi_scaled::<$n, $h, $kvh, $d>,
                    naive: multi_scaled_naive::<$n, $h, $kvh, $d>,
                },
            )*
        ]
    };
}

/// Every fixed-size attention instance the suites test (44).
pub fn fixed_kernels() -> Vec<Fixed> {
    let mut all = single_shapes!(single_table);
    all.extend(multi_shapes!(multi_table));
    all
}

/// The three results the weights contract compares, flattened row-major.
pub struct WeightsRun {
    /// [`microattn::attention_weights`].
    pub fast: Vec<f32>,
    /// [`reference::attention_weights`].
    pub naive: Vec<f32>,
    /// [`reference::attention_weights_f64`].
    pub oracle: Vec<f64>,
}

fn weights_run<const N: usize, const D: usize>(q: &[f32], k: &[f32], scale: f32) -> WeightsRun {
    let (q, k) = (rows::<N, D>(q), rows::<N, D>(k));
    let mut fast = Box::new([[f32::NAN; N]; N]);
    let mut naive = Box::new([[f32::NAN; N]; N]);
    let mut oracle = Box::new([[f64::NAN; N]; N]);
    microattn::attention_weights(&q, &k, scale, &mut fast);
    reference::attention_weights(&q, &k, scale, &mut naive);
    reference::attention_weights_f64(&q, &k, scale, &mut oracle);
    WeightsRun {
        fast: fast.as_flattened().to_vec(),
        naive: naive.as_flattened().to_vec(),
        oracle: oracle.as_flattened().to_vec(),
    }
}

/// One `attention_weights::<N, D>` instance.
#[derive(Clone, Copy, Debug)]
pub struct FixedWeights {
    /// e.g. `attention_weights::<7, 32>`.
    pub name: &'static str,
    /// N.
    pub n: usize,
    /// D.
    pub d: usize,
    /// Runs fast, naive and oracle on flat `q`, `k` (`N·D` values each).
    pub run: fn(&[f32], &[f32], f32) -> WeightsRun,
}

macro_rules! weights_table {
    ($(($n:literal, $d:literal)),*) => {
        vec![
            $(
                FixedWeights {
                    name: concat!("attention_weights::<", $n, ", ", $d, ">"),
                    n: $n,
                    d: $d,
                    run: weights_run::<$n, $d>,
                },
            )*
        ]
    };
}

/// Every `attention_weights` instance the suites test: every N and D of the
/// grid at least once.
pub fn fixed_weights() -> Vec<FixedWeights> {
    single_shapes!(weights_table)
}

/// The three results the softmax contract compares.
pub struct SoftmaxRun {
    /// [`microattn::softmax`].
    pub fast: Vec<f32>,
    /// [`reference::softmax`].
    pub naive: Vec<f32>,
    /// [`reference::softmax_f64`].
    pub oracle: Vec<f64>,
}

/// Runs fast, naive and oracle softmax on one row of the instance's length.
pub type SoftmaxFn = fn(&[f32]) -> SoftmaxRun;

fn softmax_run<const N: usize>(row: &[f32]) -> SoftmaxRun {
    let row: [f32; N] = row.try_into().expect("test bug: row length");
    let (mut fast, mut naive, mut oracle) = (row, row, [f64::NAN; N]);
    microattn::softmax(&mut fast);
    reference::softmax(&mut naive);
    reference::softmax_f64(&row, &mut oracle);
    SoftmaxRun {
        fast: fast.to_vec(),
        naive: naive.to_vec(),
        oracle: oracle.to_vec(),
    }
}

/// Every `softmax::<N>` instance the suites test: every N of the grid.
pub fn fixed_softmax() -> Vec<(usize, SoftmaxFn)> {
    vec![
        (1, softmax_run::<1>),
        (2, softmax_run::<2>),
        (7, softmax_run::<7>),
        (8, softmax_run::<8>),
        (9, softmax_run::<9>),
        (15, softmax_run::<15>),
        (16, softmax_run::<16>),
        (17, softmax_run::<17>),
        (33, softmax_run::<33>),
        (64, softmax_run::<64>),
    ]
}
