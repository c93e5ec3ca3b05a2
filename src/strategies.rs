//! proptest strategies for shapes and inputs (feature `proptest`).
//!
//! The crate's own property suites use these; reuse them to test code built
//! on this crate. Three kinds of things live here:
//!
//! - **Shapes**: the grid every kernel is tested over ([`SEQ_LENS`] ×
//!   [`HEAD_DIMS`] × [`HEAD_GROUPS`], see [`grid`]), the exhaustive small-shape
//!   sweep ([`sweep`]) and shapes with fewer queries than keys
//!   ([`cross_shape`]).
//! - **Magnitudes**: [`Magnitude`] says how large the entries of `q`, `k`, `v`
//!   are, up to scores of ±1e4 ([`large_bound`]).
//! - **Inputs**: random ([`case`], [`grid_case`], [`cross_case`]) and
//!   deterministic ([`fixed_case`]) problems in the runtime layout of
//!   [`crate::causal_attention_dyn`].
//! - **The integer path**: [`int8_case`], `i8` problems with their
//!   quantization ([`Int8Case`]), for [`crate::int8::causal_attention_dyn`].
//!
//! ```
//! use microattn::strategies::{Magnitude, grid_case};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let case = grid_case(Magnitude::Unit).new_tree(&mut runner).unwrap().current();
//! assert_eq!(case.q.len(), case.shape.q_elems().unwrap());
//! assert!(case.k.iter().all(|x| x.abs() <= 1.0));
//! ```

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use crate::{Shape, default_scale, math};

/// The sequence lengths of the test grid: 1, 2, around one lane (7, 8, 9),
/// around two (15, 16, 17), 33 (four blocks and one key) and 64.
pub const SEQ_LENS: [usize; 10] = [1, 2, 7, 8, 9, 15, 16, 17, 33, 64];

/// The head dimensions of the test grid: 1, 3 and 4 (tail only), around one
/// lane (7, 8, 9), two lanes (16, 17), four (32, 33) and 64.
pub const HEAD_DIMS: [usize; 11] = [1, 3, 4, 7, 8, 9, 16, 17, 32, 33, 64];

/// The `(heads, kv_heads)` pairs of the test grid: single head, multi-query
/// (`(2, 1)`, `(8, 1)`), grouped-query (`(4, 2)`) and plain multi-head
/// (`(4, 4)`).
pub const HEAD_GROUPS: [(usize, usize); 5] = [(1, 1), (2, 1), (4, 2), (4, 4), (8, 1)];

/// The longest sequence of the exhaustive small-shape sweep: every length
/// `0..=SWEEP_MAX_LEN` is tested (two lanes and one key).
pub const SWEEP_MAX_LEN: usize = 17;

/// The head dimensions of the exhaustive sweep, around the lane width `L = 8`:
/// `1, L−1, L, L+1, 2L+1`.
pub const SWEEP_HEAD_DIMS: [usize; 5] = [1, 7, 8, 9, 17];

/// How large the entries of `q`, `k` and `v` are: each is drawn from
/// `[-b, b]` with `b = self.bound(head_dim)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Magnitude {
    /// Entries in `[-1, 1]`: a soft softmax, many keys matter.
    Unit,
    /// Entries in `[-3, 3]`: a sharper softmax, scores up to `9·√D`.
    Ordinary,
    /// Entries in `[-b, b]` with `b = 100 / D^¼` ([`large_bound`]): scores
    /// up to ±1e4 with the default scale, where a softmax without max
    /// subtraction overflows.
    Large,
}

impl Magnitude {
    /// Every magnitude, smallest first.
    pub const ALL: [Magnitude; 3] = [Magnitude::Unit, Magnitude::Ordinary, Magnitude::Large];

    /// The bound `b` of the entries for head dimension `head_dim`.
    ///
    /// ```
    /// use microattn::strategies::Magnitude;
    /// assert_eq!(Magnitude::Unit.bound(64), 1.0);
    /// assert_eq!(Magnitude::Large.bound(16), 50.0);
    /// ```
    #[must_use]
    #[inline]
    pub fn bound(self, head_dim: usize) -> f32 {
        match self {
            Magnitude::Unit => 1.0,
            Magnitude::Ordinary => 3.0,
            Magnitude::Large => large_bound(head_dim),
        }
    }

    /// Any of the three, uniformly.
    #[inline]
    pub fn any() -> impl Strategy<Value = Magnitude> {
        prop::sample::select(Magnitude::ALL.to_vec())
    }
}

/// The entry bound `b = 100 / D^¼` for which the largest possible score
/// `b²·D·scale` is `1e4` under the default scale `1/√D`.
///
/// ```
/// let b = microattn::strategies::large_bound(64);
/// let max_score = b * b * 64.0 * microattn::default_scale(64);
/// assert!((max_score - 1.0e4).abs() < 1.0);
/// ```
#[must_use]
#[inline]
pub fn large_bound(head_dim: usize) -> f32 {
    100.0 / math::sqrt(math::sqrt(head_dim as f32))
}

/// One generated problem in the runtime layout of [`crate::causal_attention_dyn`].
#[derive(Clone, Debug)]
pub struct Case {
    /// The shape (`q_len == kv_len` for self-attention, `q_len < kv_len`
    /// for the last queries of a longer sequence).
    pub shape: Shape,
    /// Queries, `q_len × heads × head_dim`.
    pub q: Vec<f32>,
    /// Keys, `kv_len × kv_heads × head_dim`.
    pub k: Vec<f32>,
    /// Values, `kv_len × kv_heads × head_dim`.
    pub v: Vec<f32>,
}

/// Finite values uniform in `[-bound, bound]`.
#[inline]
pub fn values(bound: f32, len: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-bound..=bound, len)
}

/// Finite values in `[-bound, bound]` that hit the edges often: mostly
/// uniform, but also `±0.0`, `±bound` exactly and subnormals. For exact
/// (bit-for-bit) properties, which must hold for every finite input.
#[inline]
pub fn edgy_values(bound: f32, len: usize) -> impl Strategy<Value = Vec<f32>> {
    let element = prop_oneof![
        8 => -bound..=bound,
        1 => prop::sample::select(vec![0.0f32, -0.0]),
        1 => prop::sample::select(vec![bound, -bound]),
        1 => prop::sample::select(vec![1.0e-40f32, -1.0e-40, f32::MIN_POSITIVE]),
    ];
    proptest::collection::vec(element, len)
}

/// Any `f32` bit pattern at all: NaN (any payload), ±inf, subnormals,
/// `f32::MAX`. For inputs a kernel must never read (positions a query does
/// not see), where even a NaN must change nothing.
#[inline]
pub fn any_values(len: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(any::<u32>().prop_map(f32::from_bits), len)
}

/// A case with the given shape (any `q_len ≤ kv_len`) and entries of q, k, v
/// in `[-bound, bound]`.
#[inline]
pub fn case(shape: Shape, bound: f32) -> impl Strategy<Value = Case> {
    let (qn, kvn) = (shape.q_elems().unwrap_or(0), shape.kv_elems().unwrap_or(0));
    (values(bound, qn), values(bound, kvn), values(bound, kvn)).prop_map(move |(q, k, v)| Case {
        shape,
        q,
        k,
        v,
    })
}

/// Like [`case`], with entries from [`edgy_values`].
#[inline]
pub fn edgy_case(shape: Shape, bound: f32) -> impl Strategy<Value = Case> {
    let (qn, kvn) = (shape.q_elems().unwrap_or(0), shape.kv_elems().unwrap_or(0));
    (
        edgy_values(bound, qn),
        edgy_values(bound, kvn),
        edgy_values(bound, kvn),
    )
        .prop_map(move |(q, k, v)| Case { shape, q, k, v })
}

/// Every self-attention shape of the test grid, with the default scale:
/// [`SEQ_LENS`] × [`HEAD_DIMS`] × [`HEAD_GROUPS`] (550 shapes).
#[must_use]
#[inline]
pub fn grid() -> Vec<Shape> {
    let mut shapes = Vec::with_capacity(SEQ_LENS.len() * HEAD_DIMS.len() * HEAD_GROUPS.len());
    for n in SEQ_LENS {
        for d in HEAD_DIMS {
            for (h, kvh) in HEAD_GROUPS {
                shapes.push(Shape::new(n, n, h, kvh, d));
            }
        }
    }
    shapes
}

/// A shape of the [`grid`], uniformly.
#[inline]
pub fn grid_shape() -> impl Strategy<Value = Shape> {
    prop::sample::select(grid())
}

/// A shape with fewer (or as many) queries than keys: `kv_len` from
/// [`SEQ_LENS`], `q_len` in `1..=kv_len`, head dimension and heads from the
/// grid, default scale. Query `i` sits at position `kv_len − q_len + i`.
#[inline]
pub fn cross_shape() -> impl Strategy<Value = Shape> {
    (
        prop::sample::select(SEQ_LENS.to_vec()),
        prop::sample::select(HEAD_DIMS.to_vec()),
        prop::sample::select(HEAD_GROUPS.to_vec()),
    )
        .prop_flat_map(|(kv_len, d, (h, kvh))| {
            (1..=kv_len).prop_map(move |q_len| Shape::new(q_len, kv_len, h, kvh, d))
        })
}

/// A case on a [`grid_shape`] with entries of the given magnitude.
#[inline]
pub fn grid_case(magnitude: Magnitude) -> impl Strategy<Value = Case> {
    grid_shape().prop_flat_map(move |shape| case(shape, magnitude.bound(shape.head_dim)))
}

/// A case on a [`cross_shape`] with entries of the given magnitude.
#[inline]
pub fn cross_case(magnitude: Magnitude) -> impl Strategy<Value = Case> {
    cross_shape().prop_flat_map(move |shape| case(shape, magnitude.bound(shape.head_dim)))
}

/// A score scale for head dimension `head_dim`: `t/√D` with `t` uniform in
/// `[-1, 1]` (negative and zero scales included). Never larger in magnitude
/// than the default, so [`Magnitude::Large`] still bounds scores by 1e4.
#[inline]
pub fn scale(head_dim: usize) -> impl Strategy<Value = f32> {
    let unit = default_scale(head_dim);
    prop_oneof![
        8 => (-1.0f32..=1.0).prop_map(move |t| t * unit),
        1 => Just(0.0f32),
        1 => Just(unit),
    ]
}

/// The shapes of the exhaustive small-shape sweep: every self-attention
/// length `0..=SWEEP_MAX_LEN` × [`SWEEP_HEAD_DIMS`] × [`HEAD_GROUPS`], default
/// scale. Length 0 is a valid empty problem of the runtime API.
#[must_use]
#[inline]
pub fn sweep() -> Vec<Shape> {
    let mut shapes = Vec::new();
    for n in 0..=SWEEP_MAX_LEN {
        for d in SWEEP_HEAD_DIMS {
            for (h, kvh) in HEAD_GROUPS {
                shapes.push(Shape::new(n, n, h, kvh, d));
            }
        }
    }
    shapes
}

/// How the entries of a deterministic ([`fixed_fill`]) or seeded
/// ([`seeded_case`]) problem are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    /// Uniform in `[-b, b]` (24 random bits each).
    Uniform(f32),
    /// Finite and in `[-b, b]`, hitting the edges: one in four values is
    /// `±0.0`, `±b` exactly or a subnormal, the others uniform. For exact
    /// (bit-for-bit) properties, which must hold for every finite input.
    Edgy(f32),
    /// Any `f32` bit pattern: NaN of any payload, ±inf, subnormals, huge
    /// values. For inputs a kernel must never read.
    AnyBits,
}

/// SplitMix64: the next 64 random bits of the stream at `state`.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` deterministic values drawn as `fill` says, a pure function of
/// `(seed, len, fill)` (SplitMix64), for sweeps that must not depend on a
/// random seed and for cheap large cases.
///
/// ```
/// use microattn::strategies::{Fill, fixed_fill};
/// let a = fixed_fill(7, 1000, Fill::Edgy(3.0));
/// assert_eq!(a, fixed_fill(7, 1000, Fill::Edgy(3.0)));
/// assert!(a.iter().all(|x| x.abs() <= 3.0));
/// assert!(a.iter().any(|x| x.to_bits() == (-0.0f32).to_bits()));
/// assert!(fixed_fill(7, 1000, Fill::AnyBits).iter().any(|x| x.is_nan()));
/// ```
#[must_use]
#[inline]
pub fn fixed_fill(seed: u64, len: usize, fill: Fill) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            let z = splitmix(&mut state);
            // 24 bits: exactly representable, uniform in [0, 1).
            let unit = (z >> 40) as f32 / (1u32 << 24) as f32;
            match fill {
                Fill::Uniform(b) => (2.0 * unit - 1.0) * b,
                Fill::Edgy(b) => match z & 15 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => b,
                    3 => -b,
                    // the smallest subnormal and a larger one, both signs
                    4 => f32::from_bits(1).copysign(unit - 0.5),
                    5 => 1.0e-40f32.copysign(unit - 0.5),
                    _ => (2.0 * unit - 1.0) * b,
                },
                Fill::AnyBits => f32::from_bits((z >> 32) as u32),
            }
        })
        .collect()
}

/// `len` deterministic values uniform in `[-bound, bound]`:
/// `fixed_fill(seed, len, Fill::Uniform(bound))`.
///
/// ```
/// use microattn::strategies::fixed_values;
/// let a = fixed_values(7, 100, 3.0);
/// assert_eq!(a, fixed_values(7, 100, 3.0));
/// assert!(a.iter().all(|x| x.abs() <= 3.0));
/// assert_ne!(a, fixed_values(8, 100, 3.0));
/// ```
#[must_use]
#[inline]
pub fn fixed_values(seed: u64, len: usize, bound: f32) -> Vec<f32> {
    fixed_fill(seed, len, Fill::Uniform(bound))
}

/// A deterministic case of the given shape, entries drawn as `fill` says
/// (q, k and v from three streams derived from `seed`).
#[must_use]
#[inline]
pub fn fixed_case_with(shape: Shape, fill: Fill, seed: u64) -> Case {
    let (qn, kvn) = (shape.q_elems().unwrap_or(0), shape.kv_elems().unwrap_or(0));
    let seed = seed.wrapping_mul(3);
    Case {
        shape,
        q: fixed_fill(seed, qn, fill),
        k: fixed_fill(seed.wrapping_add(1), kvn, fill),
        v: fixed_fill(seed.wrapping_add(2), kvn, fill),
    }
}

/// A deterministic case of the given shape with entries in `[-bound, bound]`:
/// `fixed_case_with(shape, Fill::Uniform(bound), seed)`.
#[must_use]
#[inline]
pub fn fixed_case(shape: Shape, bound: f32, seed: u64) -> Case {
    fixed_case_with(shape, Fill::Uniform(bound), seed)
}

/// A case of the given shape from a random seed ([`fixed_case_with`]).
///
/// Much cheaper to generate than [`case`] for the large shapes (one `u64`
/// instead of a value tree per entry), at the price of shrinking: only the
/// seed shrinks, not the entries. The suites use it where one property runs a
/// kernel many times on big cases.
#[inline]
pub fn seeded_case(shape: Shape, fill: Fill) -> impl Strategy<Value = Case> {
    any::<u64>().prop_map(move |seed| fixed_case_with(shape, fill, seed))
}

/// An integer-path problem: a shape, prepared parameters and `i8` inputs in
/// the runtime layout of [`crate::int8::causal_attention_dyn`].
#[derive(Clone, Debug)]
pub struct Int8Case {
    /// The shape (its `scale` is not used: the score scale is in `params`).
    pub shape: Shape,
    /// The four tensors' quantization and the score scale, prepared.
    pub params: crate::int8::Params,
    /// Queries, `q_len × heads × head_dim`.
    pub q: Vec<i8>,
    /// Keys, `kv_len × kv_heads × head_dim`.
    pub k: Vec<i8>,
    /// Values, `kv_len × kv_heads × head_dim`.
    pub v: Vec<i8>,
}

/// The `(heads, kv_heads)` pairs of the integer suites: MHA, GQA, MQA.
pub const INT8_HEAD_GROUPS: [(usize, usize); 6] = [(1, 1), (2, 2), (2, 1), (4, 2), (4, 1), (3, 3)];

/// A per-tensor quantization: scale `10^e` for `e` in `[-3, 0.5)` (several
/// decades), any `i8` zero point.
#[inline]
pub fn quant() -> impl Strategy<Value = crate::int8::Quant> {
    (-3.0f64..0.5, -128i32..=127).prop_map(|(e, zero_point)| crate::int8::Quant {
        scale: 10f64.powf(e) as f32,
        zero_point,
    })
}

/// Integer-path problems: `kv_len` in `1..=max_len`, `q_len ≤ kv_len`,
/// [`INT8_HEAD_GROUPS`], head dimension `1..=64`, [`quant`] for the
/// inputs, an output scale with `log10(Sv/So)` in `ratio`, any output zero
/// point, a score scale within a decade of `1/√D`, and any `i8` inputs.
/// Parameters [`crate::int8::Params`] rejects are not drawn.
///
/// ```
/// use microattn::strategies::int8_case;
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let mut runner = TestRunner::deterministic();
/// let case = int8_case(16, (-1.0, 0.0)).new_tree(&mut runner).unwrap().current();
/// assert_eq!(case.q.len(), case.shape.q_elems().unwrap());
/// ```
#[inline]
pub fn int8_case(max_len: usize, ratio: (f64, f64)) -> impl Strategy<Value = Int8Case> {
    (
        1..=max_len.max(1),
        0..INT8_HEAD_GROUPS.len(),
        1usize..=64,
        (quant(), quant(), quant()),
        ratio.0..ratio.1,
        -128i32..=127,
        -1.0f64..1.0,
    )
        .prop_flat_map(move |(kv_len, group, d, (pq, pk, pv), r, zo, s)| {
            let (h, kvh) = INT8_HEAD_GROUPS[group];
            let po = crate::int8::Quant {
                scale: (f64::from(pv.scale) / 10f64.powf(r)) as f32,
                zero_point: zo,
            };
            let score = 10f64.powf(s) as f32 / math::sqrt(d as f32);
            let params = crate::int8::Params::with_score_scale(pq, pk, pv, po, score);
            (1..=kv_len, Just((kv_len, h, kvh, d, params)))
        })
        .prop_filter_map(
            "parameters out of range",
            |(q_len, (kv_len, h, kvh, d, params))| {
                Some((Shape::new(q_len, kv_len, h, kvh, d), params.ok()?))
            },
        )
        .prop_flat_map(|(shape, params)| {
            let qn = shape.q_len * shape.heads * shape.head_dim;
            let kn = shape.kv_len * shape.kv_heads * shape.head_dim;
            let i8s = |n| proptest::collection::vec(any::<i8>(), n);
            (Just((shape, params)), i8s(qn), i8s(kn), i8s(kn))
        })
        .prop_map(|((shape, params), q, k, v)| Int8Case {
            shape,
            params,
            q,
            k,
            v,
        })
}
