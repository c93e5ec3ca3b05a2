//! Test glue shared by the suites: one `Kernel` signature for every causal
//! attention implementation (the runtime API, the reference, and each
//! fixed-size function at one shape), running a kernel on a `Case`, the
//! contract check, and the property checks as functions returning `Err` on a
//! violation — so that each suite can also show, on a deliberately broken
//! kernel, that the check fails.
//!
//! Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use microattn::reference::{self, check_contract_with_mass};
use microattn::strategies::Case;
use microattn::{Error, Shape, default_scale};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// Every causal attention implementation, in the runtime calling convention.
pub type Kernel = fn(&Shape, &[f32], &[f32], &[f32], &mut [f32]) -> Result<(), Error>;

/// The fast runtime API.
pub const FAST: Kernel = microattn::causal_attention_dyn;
/// The textbook reference of the runtime API (naive32).
pub const NAIVE: Kernel = reference::causal_attention_dyn;

/// A property check's verdict: `Err` says what broke, where.
pub type Verdict = Result<(), String>;

/// Lifts a verdict into proptest's failure type.
pub fn prop(v: Verdict) -> Result<(), TestCaseError> {
    v.map_err(TestCaseError::fail)
}

/// The proptest configuration of every suite: `cases` cases (or
/// `PROPTEST_CASES` from the environment, for longer soak runs), failures
/// saved to `regressions` (a file under `proptest-regressions/`, committed,
/// replayed first on every run).
pub fn config(cases: u32, regressions: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    }
}

/// A proptest runner with [`config`].
pub fn runner(cases: u32, regressions: &'static str) -> TestRunner {
    TestRunner::new(config(cases, regressions))
}

// ---------------------------------------------------------------------------
// Flat slices <-> fixed-size arrays
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Running kernels
// ---------------------------------------------------------------------------

/// Runs `kernel` on `case` with `out` filled with `init` first; the kernel
/// must accept the case.
pub fn run_with(kernel: Kernel, case: &Case, init: f32) -> Vec<f32> {
    let len = case.shape.q_elems().expect("test bug: shape overflows");
    let mut out = vec![init; len];
    kernel(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .unwrap_or_else(|e| panic!("valid case rejected: {e} ({:?})", case.shape));
    out
}

/// Runs `kernel` on `case` with a NaN-poisoned output buffer.
pub fn run(kernel: Kernel, case: &Case) -> Vec<f32> {
    run_with(kernel, case, f32::NAN)
}

/// The f64 oracle on `case`.
pub fn oracle(case: &Case) -> Vec<f64> {
    let mut out = vec![f64::NAN; case.shape.q_elems().expect("test bug")];
    reference::causal_attention_f64(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .expect("valid case rejected by the oracle");
    out
}

/// The f64 oracle's `Σⱼ wⱼ·|vⱼ|` on `case`: the contract's scale.
pub fn mass(case: &Case) -> Vec<f64> {
    let mut out = vec![f64::NAN; case.shape.q_elems().expect("test bug")];
    reference::attention_mass_f64(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .expect("valid case rejected by the oracle");
    out
}

/// The accuracy contract for `fast` with `naive` as its naive32.
pub fn contract(fast: Kernel, naive: Kernel, case: &Case) -> Verdict {
    let out = run(fast, case);
    let naive32 = run(naive, case);
    check_contract_with_mass(&out, &naive32, &oracle(case), &mass(case))
        .map_err(|v| format!("{v} for {:?}", case.shape))
}

/// The raw bits of `x`.
pub fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// `a` and `b` hold the same bits; otherwise the first difference.
pub fn same_bits(what: &str, a: &[f32], b: &[f32]) -> Verdict {
    if a.len() != b.len() {
        return Err(format!("{what}: lengths {} and {}", a.len(), b.len()));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: index {i} differs: {:e} vs {:e}",
            a[i], b[i]
        )),
    }
}

// ---------------------------------------------------------------------------
// Indexing the runtime layout
// ---------------------------------------------------------------------------

/// Range of row `(token, head)` in a buffer with `heads` heads per token.
pub fn row(token: usize, head: usize, heads: usize, d: usize) -> std::ops::Range<usize> {
    let start = (token * heads + head) * d;
    start..start + d
}

/// Query heads per key/value head.
pub fn group(s: &Shape) -> usize {
    s.heads / s.kv_heads
}

/// Position of query 0 among the keys (`kv_len − q_len`).
pub fn offset(s: &Shape) -> usize {
    s.kv_len - s.q_len
}

// ---------------------------------------------------------------------------
// Exact properties
// ---------------------------------------------------------------------------

/// `case` with everything at positions `≥ cut` replaced by `future`'s values
/// (queries by position `offset + i`, keys and values by position).
pub fn replace_future(case: &Case, future: &Case, cut: usize) -> Case {
    let s = case.shape;
    let mut out = case.clone();
    let q_tok = s.heads * s.head_dim;
    let kv_tok = s.kv_heads * s.head_dim;
    let q_from = cut.saturating_sub(offset(&s)).min(s.q_len) * q_tok;
    let kv_from = cut.min(s.kv_len) * kv_tok;
    out.q[q_from..].copy_from_slice(&future.q[q_from..]);
    out.k[kv_from..].copy_from_slice(&future.k[kv_from..]);
    out.v[kv_from..].copy_from_slice(&future.v[kv_from..]);
    out
}

/// Causality: replacing everything at positions `≥ cut` (by anything, NaN
/// included) leaves every query at a position `< cut` unchanged, bit for bit.
pub fn causality(kernel: Kernel, case: &Case, future: &Case, cut: usize) -> Verdict {
    let s = case.shape;
    let before = run(kernel, case);
    let after = run(kernel, &replace_future(case, future, cut));
    let kept = cut.saturating_sub(offset(&s)).min(s.q_len) * s.heads * s.head_dim;
    same_bits(
        &format!("causality, positions < {cut}, {s:?}"),
        &before[..kept],
        &after[..kept],
    )
}

/// Position 0 sees only itself: for self-attention, query 0 of head `h` is
/// `v[0]` of its key/value head, bit for bit.
pub fn first_row_is_v0(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    assert_eq!(s.q_len, s.kv_len, "test bug: self-attention only");
    if s.q_len == 0 {
        return Ok(());
    }
    let out = run(kernel, case);
    for h in 0..s.heads {
        let g = h / group(&s);
        same_bits(
            &format!("row 0, head {h} vs v[0] of kv head {g}, {s:?}"),
            &out[row(0, h, s.heads, s.head_dim)],
            &case.v[row(0, g, s.kv_heads, s.head_dim)],
        )?;
    }
    Ok(())
}

/// Which head's inputs a head-independence check replaces.
#[derive(Clone, Copy, Debug)]
pub enum HeadChange {
    /// `q` of this query head, at every position.
    Query(usize),
    /// `k` and `v` of this key/value head, at every position.
    KeyValue(usize),
}

/// Heads are independent: replacing one head's inputs (by `other`'s) leaves
/// the output of every query head not reading them unchanged, bit for bit.
pub fn head_independence(kernel: Kernel, case: &Case, other: &Case, change: HeadChange) -> Verdict {
    let s = case.shape;
    let d = s.head_dim;
    let mut changed = case.clone();
    let reads: Box<dyn Fn(usize) -> bool> = match change {
        HeadChange::Query(hq) => {
            for t in 0..s.q_len {
                let r = row(t, hq, s.heads, d);
                changed.q[r.clone()].copy_from_slice(&other.q[r]);
            }
            Box::new(move |h| h == hq)
        }
        HeadChange::KeyValue(g) => {
            for t in 0..s.kv_len {
                let r = row(t, g, s.kv_heads, d);
                changed.k[r.clone()].copy_from_slice(&other.k[r.clone()]);
                changed.v[r.clone()].copy_from_slice(&other.v[r]);
            }
            let gs = group(&s);
            Box::new(move |h| h / gs == g)
        }
    };
    let (a, b) = (run(kernel, case), run(kernel, &changed));
    for t in 0..s.q_len {
        for h in (0..s.heads).filter(|&h| !reads(h)) {
            let r = row(t, h, s.heads, d);
            same_bits(
                &format!("{change:?} changed query {t} head {h}, {s:?}"),
                &a[r.clone()],
                &b[r],
            )?;
        }
    }
    Ok(())
}

/// NaN payloads the output is poisoned with: quiet, negative, signalling.
pub const POISONS: [u32; 3] = [0x7fc0_0000, 0xffff_ffff, 0x7f80_0001];

/// Determinism and a write-only output: the same call, with `out` holding
/// zeros, NaNs of several payloads or garbage before it, gives the same bits
/// every time, and (the inputs being finite) no NaN survives.
pub fn deterministic_and_write_only(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    let first = run_with(kernel, case, 0.0);
    for init in POISONS.map(f32::from_bits).into_iter().chain([12345.0]) {
        let again = run_with(kernel, case, init);
        same_bits(
            &format!("out initialised to {init:e}, {s:?}"),
            &first,
            &again,
        )?;
        if let Some(i) = again.iter().position(|x| x.is_nan()) {
            return Err(format!("NaN at {i} after poisoning, {s:?}"));
        }
    }
    Ok(())
}

/// Two kernels agree bit for bit on `case`.
pub fn same_as(a: Kernel, b: Kernel, case: &Case, what: &str) -> Verdict {
    same_bits(
        &format!("{what}, {:?}", case.shape),
        &run(a, case),
        &run(b, case),
    )
}

// ---------------------------------------------------------------------------
// Near-exact properties
// ---------------------------------------------------------------------------

/// The smallest subnormal `f32`, 2⁻¹⁴⁹: twice the absolute error bound of a
/// rounding that underflows.
const TINY: f64 = 1.401_298_464_324_817e-45;

/// Each output value lies within `[min, max]` of its column of visible
/// values, up to `(k + ½)·ε·max|column| + (k + 1)·2⁻¹⁴⁹`, with `n` the number
/// of visible keys and `k = n + ⌈n/8⌉ + 1`.
///
/// Why: the output is `Σ pⱼvⱼ / Σ pⱼ` for computed weights `pⱼ ≥ 0`, and the
/// exact weighted mean with those weights lies in `[min, max]`. The computed
/// numerator and denominator each carry relative errors bounded by γₖ ≈ k·u
/// (u = ε/2), where `k` counts the roundings on a term's path: at most `n`
/// additions, one per rescale (at most `⌈n/8⌉`, once per block of 8 keys) and
/// one product. A ratio of two such sums is off by at most `2γₖ·max|v|`, plus
/// `u·max|v|` for the final division: `(2k + 1)·u = (k + ½)·ε`. Roundings
/// that underflow (subnormal values) add an absolute error of at most 2⁻¹⁵⁰
/// each, not amplified since the normaliser is ≥ 1 (the largest score weighs
/// `exp(0) = 1`). First-order (second-order terms are < 1e-4 of this for
/// n ≤ 64), independent of summation order, lanes or FMA. Computed in f64 so
/// that the check itself does not round.
pub fn within_value_range(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    let out = run(kernel, case);
    for t in 0..s.q_len {
        let visible = offset(&s) + t + 1;
        let k = (visible + visible.div_ceil(8) + 1) as f64;
        for h in 0..s.heads {
            let g = h / group(&s);
            for (c, &o) in out[row(t, h, s.heads, s.head_dim)].iter().enumerate() {
                let column =
                    (0..visible).map(|j| f64::from(case.v[row(j, g, s.kv_heads, s.head_dim)][c]));
                let lo = column.clone().fold(f64::INFINITY, f64::min);
                let hi = column.clone().fold(f64::NEG_INFINITY, f64::max);
                let slack =
                    (k + 0.5) * f64::from(f32::EPSILON) * lo.abs().max(hi.abs()) + (k + 1.0) * TINY;
                let o = f64::from(o);
                if !(lo - slack <= o && o <= hi + slack) {
                    return Err(format!(
                        "query {t} head {h} dim {c}: {o:e} outside [{lo:e}, {hi:e}] ± {slack:e}, {s:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// With `q = 0` every score is 0, every weight exactly `exp(0) = 1`, so the
/// output is the plain mean of the visible value rows, within
/// `(n/2 + 1)·ε·mean|vⱼ| + 2⁻¹⁴⁹`.
///
/// Why: with weights exactly 1 the products are exact, the normaliser is the
/// integer `n` exactly, and the numerator is a sum of `n` terms, in whatever
/// order, off by at most γₙ₋₁·Σ|vⱼ| ≈ (n−1)·u·Σ|vⱼ| (u = ε/2; additions do
/// not underflow inexactly); dividing by `n` turns that into
/// (n−1)·u·mean|vⱼ| and adds one rounding, u·|mean| or, if it underflows,
/// 2⁻¹⁵⁰. In total ≤ n·u·mean|vⱼ| = (n/2)·ε·mean|vⱼ|; the `+1` absorbs the
/// second-order terms and the f64 mean's own error.
pub fn zero_query_is_mean(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    let zero = Case {
        q: vec![0.0; case.q.len()],
        ..case.clone()
    };
    let out = run(kernel, &zero);
    for t in 0..s.q_len {
        let n = offset(&s) + t + 1;
        for h in 0..s.heads {
            let g = h / group(&s);
            for (c, &o) in out[row(t, h, s.heads, s.head_dim)].iter().enumerate() {
                let column =
                    (0..n).map(|j| f64::from(case.v[row(j, g, s.kv_heads, s.head_dim)][c]));
                let mean = column.clone().sum::<f64>() / n as f64;
                let mean_abs = column.map(f64::abs).sum::<f64>() / n as f64;
                let tol = (n as f64 / 2.0 + 1.0) * f64::from(f32::EPSILON) * mean_abs + TINY;
                if (f64::from(o) - mean).abs() > tol {
                    return Err(format!(
                        "query {t} head {h} dim {c}: {o:e} vs mean {mean:e} (tol {tol:e}), {s:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A row of softmax weights sums to 1 and what lies beyond `visible` is
/// exactly `+0.0`.
///
/// Why `(n + 1)·u` (u = ε/2) on the sum of `n` visible weights, summed in
/// f64 (exact to ~1e-16): each weight is `fl(eⱼ / z)` with `z` the computed
/// sum of the same computed `eⱼ`, so `Σ fl(eⱼ/z) = (Σeⱼ / z)(1 ± u) = 1/(1 ±
/// γₙ₋₁)·(1 ± u)`: off by at most `(n − 1)·u + u` to first order; the `+1`
/// absorbs the second-order terms. The accuracy of `exp` does not enter: the
/// normaliser is the sum of the same rounded exponentials.
pub fn weights_row_sums_to_one(w: &[f32], visible: usize, what: &str) -> Verdict {
    let sum: f64 = w[..visible].iter().map(|&x| f64::from(x)).sum();
    let tol = (visible + 1) as f64 * f64::from(f32::EPSILON) / 2.0;
    if (sum - 1.0).abs() > tol {
        return Err(format!("{what}: weights sum to {sum:e} (tol {tol:e})"));
    }
    if let Some(j) = w[visible..].iter().position(|x| x.to_bits() != 0) {
        return Err(format!(
            "{what}: weight {} above the diagonal is {:e}, not +0.0",
            visible + j,
            w[visible + j]
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Deliberately broken kernels: each check must catch one of these.
// ---------------------------------------------------------------------------

/// Non-causal: adds a little of the last key position's value row (of the
/// right key/value head) to every output.
pub fn leaky(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    if s.kv_len == 0 {
        return Ok(());
    }
    let last = s.kv_len - 1;
    for t in 0..s.q_len {
        for h in 0..s.heads {
            let src = row(last, h / group(s), s.kv_heads, s.head_dim);
            let dst = row(t, h, s.heads, s.head_dim);
            for (o, x) in out[dst].iter_mut().zip(&v[src]) {
                *o += 1e-3 * x;
            }
        }
    }
    Ok(())
}

/// Heads talk: adds a little of the next query head's output to each head.
pub fn head_mixing(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    let copy = out.to_vec();
    for t in 0..s.q_len {
        for h in 0..s.heads {
            let src = row(t, (h + 1) % s.heads, s.heads, s.head_dim);
            for (o, x) in out[row(t, h, s.heads, s.head_dim)]
                .iter_mut()
                .zip(&copy[src])
            {
                *o += 1e-3 * x;
            }
        }
    }
    Ok(())
}

/// Reads its output: leaves the last value as it was.
pub fn lazy(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    let mut tmp = out.to_vec();
    FAST(s, q, k, v, &mut tmp)?;
    let n = out.len().saturating_sub(1);
    out[..n].copy_from_slice(&tmp[..n]);
    Ok(())
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Not deterministic: nudges its first value by one ULP on every other call.
pub fn jittery(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    if CALLS.fetch_add(1, Ordering::Relaxed) % 2 == 1
        && let Some(x) = out.first_mut()
    {
        *x = f32::from_bits(x.to_bits() ^ 1);
    }
    Ok(())
}

/// Slightly off everywhere: the output scaled by `1 + 1e-3`.
pub fn biased(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    out.iter_mut().for_each(|x| *x *= 1.0 + 1e-3);
    Ok(())
}

/// Overshoots: pushes each output away from 0 by a tenth of the largest value.
pub fn overshooting(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    let big = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    out.iter_mut().for_each(|x| *x += 0.1 * big.copysign(*x));
    Ok(())
}

/// Each query of `c` run on its own — one query against the keys it sees,
/// the shape of a decode step — gives the bits it gets in the whole run.
/// The whole run computes full tiles of queries on lanes across queries and
/// a lone query on lanes across keys, so this holds the two paths of the
/// kernel to the same bits.
pub fn one_query_at_a_time(kernel: Kernel, c: &Case) -> Verdict {
    let s = c.shape;
    let mut whole = vec![0.0; c.q.len()];
    kernel(&s, &c.q, &c.k, &c.v, &mut whole).map_err(|e| e.to_string())?;
    let q_row = s.heads * s.head_dim;
    let kv_row = s.kv_heads * s.head_dim;
    let offset = s.kv_len - s.q_len;
    for i in 0..s.q_len {
        let kv_len = offset + i + 1;
        let one = Shape::new(1, kv_len, s.heads, s.kv_heads, s.head_dim).with_scale(s.scale);
        let mut out = vec![0.0; q_row];
        let q = &c.q[i * q_row..(i + 1) * q_row];
        let (k, v) = (&c.k[..kv_len * kv_row], &c.v[..kv_len * kv_row]);
        kernel(&one, q, k, v, &mut out).map_err(|e| e.to_string())?;
        same_bits(
            &format!("query {i} alone vs in the whole run"),
            &out,
            &whole[i * q_row..(i + 1) * q_row],
        )?;
    }
    Ok(())
}
