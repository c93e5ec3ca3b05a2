//! The executable specification: a textbook version of every public kernel.
//!
//! Each function has the same signature and meaning as the fast one of the
//! same name at the crate root, and computes it the way a textbook writes it:
//! for each query, the full row of scores `sⱼ = scale · Σ_d q_d·kⱼ_d` over
//! the visible keys `j ≤ i`, the row maximum `m`, `eⱼ = exp(sⱼ − m)`, the
//! normaliser `z = Σⱼ eⱼ`, and `out = Σⱼ (eⱼ / z) · vⱼ` — every sum a plain
//! left-to-right loop (the dot products too: see [`score`]), no lanes, no
//! fused multiply-add, no blocking.
//! Obviously correct beats fast here; tests, benches and the host example
//! compare the fast kernels with these.
//!
//! [`causal_attention_f64`] runs the same algorithm in f64 from the same f32
//! inputs: the oracle the accuracy contract is stated against, and
//! [`check_contract`] states the contract itself.
//!
//! ```
//! let q = [[0.5f32, -1.0], [1.0, 0.0], [0.0, 2.0]];
//! let k = [[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
//! let v = [[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
//! let mut fast = [[0.0f32; 2]; 3];
//! let mut naive = [[0.0f32; 2]; 3];
//! microattn::causal_attention(&q, &k, &v, &mut fast);
//! microattn::reference::causal_attention(&q, &k, &v, &mut naive);
//! for (a, b) in fast.iter().flatten().zip(naive.iter().flatten()) {
//!     assert!((a - b).abs() <= 1e-6);
//! }
//! ```

use core::ops::{Add, Div, Mul, Sub};

use crate::error::Error;
use crate::{Shape, default_scale, math};

mod contract;
pub mod int8;
mod rope;
mod rows;
mod scored;

use rows::{Sizes, for_each_row, for_each_sequence};

pub use contract::{
    ContractViolation, attention_mass_f64, check_contract, check_contract_with_mass,
    check_error_bound, error_bound, rounding_error_bound,
};
pub use rope::{rope_cos_sin_f64, rope_rotate_f64};
pub use scored::{attention_mass_scored_f64, causal_attention_scored, causal_attention_scored_f64};

/// The arithmetic the reference runs in: f32 (the naive kernel) or f64 (the
/// oracle). Private: not an extension point.
trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    const ZERO: Self;
    const NEG_ZERO: Self;
    const NEG_INFINITY: Self;
    fn from_f32(x: f32) -> Self;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const NEG_ZERO: Self = -0.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn from_f32(x: f32) -> Self {
        x
    }
    fn exp(self) -> Self {
        math::exp(self)
    }
    fn tanh(self) -> Self {
        math::tanh(self)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const NEG_ZERO: Self = -0.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn from_f32(x: f32) -> Self {
        f64::from(x)
    }
    fn exp(self) -> Self {
        math::exp_f64(self)
    }
    fn tanh(self) -> Self {
        math::tanh_f64(self)
    }
}

/// `Σ_d q_d·k_d` in `T`, left to right from `0` (see [`score`]).
fn dot<T: Real>(q: &[f32], k: &[f32]) -> T {
    q.iter()
        .zip(k)
        .fold(T::ZERO, |s, (&a, &b)| s + T::from_f32(a) * T::from_f32(b))
}

/// The score `scale · q·k` of a query row against a key row, as every
/// reference kernel computes it, bit for bit (the fast kernel runs the same
/// chain with fused multiply-adds where the build has them, within the
/// a-priori bound: see the crate docs).
///
/// The textbook's order: `s = 0`, then `s = s + q_d·k_d` for
/// `d = 0, 1, …`, then `s·scale`, every product and sum rounded on its own
/// (no fused multiply-add). Rows of different lengths use the shorter one.
///
/// ```
/// use microattn::reference::score;
/// let q = [1.0f32, 2.0, 3.0];
/// let k = [4.0f32, 5.0, 6.0];
/// assert_eq!(score(&q, &k, 0.5), 16.0);
/// ```
#[inline]
pub fn score(q: &[f32], k: &[f32], scale: f32) -> f32 {
    dot::<f32>(q, k) * scale
}

/// The largest score (NaN never wins; `-inf` for none).
fn row_max<T: Real>(scores: impl Iterator<Item = T>) -> T {
    scores.fold(T::NEG_INFINITY, |m, s| if s > m { s } else { m })
}

/// Whether a score takes part in the softmax. A `−∞` score is a mask: its
/// key weighs exactly 0 and its value row is never read, so NaN or `±∞`
/// there changes nothing, wherever the key sits in the row. A row with no
/// score above `−∞` (and no NaN) sees no key. Every reference function
/// applies this rule through here, and the fast kernels follow it.
fn weighs<T: Real>(s: T) -> bool {
    s != T::NEG_INFINITY
}

/// Softmax of a score row and the weighted sum of the value rows.
///
/// `scores` is walked three times (max, normaliser, weights), so it is a
/// cheap-to-clone iterator: over a stored row, or recomputing each score.
/// Keys whose score is masked ([`weighs`]) are left out before anything
/// else. The sum starts at `-0.0` so that a single weight of 1 reproduces
/// its value row exactly. A row that sees no key gives `out = 0`.
fn softmax_weighted_sum<'a, T: Real>(
    scores: impl Iterator<Item = T> + Clone,
    values: impl Iterator<Item = &'a [f32]>,
    out: &mut [T],
) {
    softmax_weighted_map(scores, None, values, |x| x, T::ZERO, out);
}

/// [`softmax_weighted_sum`] of `value(v)` for each value `v`, with an
/// optional sink logit in the normaliser (`e^{sink − m}` added to `z`, no
/// value: gpt-oss's sinks) and each weight raised by `flush` (0 for an
/// output; the contract's flush allowance for a mass).
fn softmax_weighted_map<'a, T: Real>(
    scores: impl Iterator<Item = T> + Clone,
    sink: Option<T>,
    values: impl Iterator<Item = &'a [f32]>,
    value: impl Fn(f32) -> f32,
    flush: T,
    out: &mut [T],
) {
    let seen = scores.clone().filter(|&s| weighs(s));
    let m = row_max(seen.clone().chain(sink));
    let z = seen.chain(sink).fold(T::ZERO, |z, s| z + (s - m).exp());
    out.fill(T::NEG_ZERO);
    let mut any = false;
    for (s, v) in scores.zip(values).filter(|&(s, _)| weighs(s)) {
        any = true;
        let w = (s - m).exp() / z + flush;
        for (o, &x) in out.iter_mut().zip(v) {
            *o = *o + w * T::from_f32(value(x));
        }
    }
    if !any {
        out.fill(T::ZERO);
    }
}

/// Every row of a checked problem. The query at position `p` sees positions
/// `0..=p`, or with a window only the last `window` of them,
/// `max(0, p − window + 1)..=p`. Each score is recomputed when it is needed
/// (no buffer of N scores, so it works for any runtime length without heap).
fn run<T: Real>(s: &Sizes, window: Option<usize>, qkv: (&[f32], &[f32], &[f32]), out: &mut [T]) {
    let scale = T::from_f32(s.scale);
    for_each_row(s, qkv, out, |q, keys, values, out| {
        let skip = window.map_or(0, |w| keys.remaining().saturating_sub(w));
        let scores = keys.skip(skip).map(|k| dot::<T>(q, k) * scale);
        softmax_weighted_sum(scores, values.skip(skip), out);
    });
}

/// The body of the runtime-layout entry points, in f32 or f64: one check of
/// the shape and buffers, then of the window (`Some(0)` is an error), then
/// [`run`].
fn run_checked<T: Real>(
    shape: &Shape,
    window: Option<usize>,
    (q, k, v): (&[f32], &[f32], &[f32]),
    out: &mut [T],
) -> Result<(), Error> {
    let s = Sizes::checked(shape, (q, k, v), out.len())?;
    if window == Some(0) {
        return Err(Error::ZeroDimension { field: "window" });
    }
    run(&s, window, (q, k, v), out);
    Ok(())
}

/// Textbook [`crate::causal_attention`]: one head, scale `1/√D`.
#[inline]
pub fn causal_attention<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    v: &[[f32; D]; N],
    out: &mut [[f32; D]; N],
) {
    causal_attention_scaled(q, k, v, default_scale(D), out);
}

/// Textbook [`crate::causal_attention_scaled`]: one head, any scale. Stores
/// each query's score row in an `[f32; N]` on the stack.
#[inline]
pub fn causal_attention_scaled<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    v: &[[f32; D]; N],
    scale: f32,
    out: &mut [[f32; D]; N],
) {
    if nan_for_non_finite(scale, out.as_flattened_mut()) {
        return;
    }
    let mut scores = [0.0f32; N];
    for (i, (qi, oi)) in q.iter().zip(out.iter_mut()).enumerate() {
        for (s, kj) in scores.iter_mut().zip(k).take(i + 1) {
            *s = dot::<f32>(qi, kj) * scale;
        }
        let visible = scores.iter().copied().take(i + 1);
        softmax_weighted_sum(visible, v.iter().map(|r| &r[..]), oi);
    }
}

/// Textbook [`crate::causal_multi_head`]: H query heads over KVH key/value
/// heads, scale `1/√D`.
#[inline]
pub fn causal_multi_head<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    q: &[[[f32; D]; H]; N],
    k: &[[[f32; D]; KVH]; N],
    v: &[[[f32; D]; KVH]; N],
    out: &mut [[[f32; D]; H]; N],
) {
    causal_multi_head_scaled(q, k, v, default_scale(D), out);
}

/// Textbook [`crate::causal_multi_head_scaled`]. Query head `h` reads
/// key/value head `h / (H / KVH)`.
#[inline]
pub fn causal_multi_head_scaled<
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
>(
    q: &[[[f32; D]; H]; N],
    k: &[[[f32; D]; KVH]; N],
    v: &[[[f32; D]; KVH]; N],
    scale: f32,
    out: &mut [[[f32; D]; H]; N],
) {
    const { crate::check::assert_heads::<N, H, KVH, D>() };
    if nan_for_non_finite(scale, out.as_flattened_mut().as_flattened_mut()) {
        return;
    }
    let mut scores = [0.0f32; N];
    for (i, (qi, oi)) in q.iter().zip(out.iter_mut()).enumerate() {
        for (h, (qh, oh)) in qi.iter().zip(oi.iter_mut()).enumerate() {
            let g = h / (H / KVH);
            for (s, kj) in scores.iter_mut().zip(k).take(i + 1) {
                *s = dot::<f32>(qh, head(kj, g)) * scale;
            }
            let visible = scores.iter().copied().take(i + 1);
            softmax_weighted_sum(visible, v.iter().map(|vj| head(vj, g)), oh);
        }
    }
}

/// A NaN or infinite scale makes every output NaN (the fixed-size functions
/// cannot return an error; the runtime ones reject such a scale). Returns
/// whether it did.
fn nan_for_non_finite(scale: f32, out: &mut [f32]) -> bool {
    let bad = !scale.is_finite();
    if bad {
        out.fill(f32::NAN);
    }
    bad
}

/// Row `g` of one token's key/value heads (`g < KVH` by construction).
fn head<const D: usize, const KVH: usize>(token: &[[f32; D]; KVH], g: usize) -> &[f32] {
    token.get(g).map_or(&[], |row| row)
}

/// Textbook [`crate::attention_weights`]: row `i` holds the softmax of the
/// scores of query `i` over keys `0..=i` and exact zeros above the diagonal.
#[inline]
pub fn attention_weights<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    scale: f32,
    weights: &mut [[f32; N]; N],
) {
    weights_in::<f32, N, D>(q, k, scale, weights);
}

/// The f64 oracle of [`crate::attention_weights`]: the same algorithm in f64
/// from the same f32 inputs and scale.
#[inline]
pub fn attention_weights_f64<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    scale: f32,
    weights: &mut [[f64; N]; N],
) {
    weights_in::<f64, N, D>(q, k, scale, weights);
}

fn weights_in<T: Real, const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    scale: f32,
    weights: &mut [[T; N]; N],
) {
    let scale = T::from_f32(scale);
    for (i, (qi, wi)) in q.iter().zip(weights.iter_mut()).enumerate() {
        for (j, (w, kj)) in wi.iter_mut().zip(k).enumerate() {
            *w = if j <= i {
                dot::<T>(qi, kj) * scale
            } else {
                T::ZERO
            };
        }
        if let Some(visible) = wi.get_mut(..=i) {
            softmax_slice(visible);
        }
    }
}

/// Textbook [`crate::softmax`]: max, exp of the differences, sum, divide.
#[inline]
pub fn softmax<const N: usize>(row: &mut [f32; N]) {
    softmax_slice(row);
}

/// The f64 oracle of [`crate::softmax`]: `out = softmax(row)` in f64.
#[inline]
pub fn softmax_f64<const N: usize>(row: &[f32; N], out: &mut [f64; N]) {
    for (o, &x) in out.iter_mut().zip(row) {
        *o = f64::from(x);
    }
    softmax_slice(out);
}

/// The textbook softmax of a row, with masked entries ([`weighs`]) at
/// exactly 0 and never in the sums; a row with nothing but masked entries is
/// all 0.
fn softmax_slice<T: Real>(row: &mut [T]) {
    let m = row_max(row.iter().copied().filter(|&s| weighs(s)));
    let mut z = T::ZERO;
    let mut any = false;
    for x in row.iter_mut() {
        if weighs(*x) {
            any = true;
            *x = (*x - m).exp();
            z = z + *x;
        } else {
            *x = T::ZERO;
        }
    }
    if any {
        for x in row.iter_mut() {
            *x = *x / z;
        }
    }
}

/// Textbook [`crate::causal_attention_dyn`]: same checks, same errors,
/// computed in f32.
///
/// # Errors
/// As [`crate::causal_attention_dyn`].
#[inline]
pub fn causal_attention_dyn(
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    run_checked(shape, None, (q, k, v), out)
}

/// The f64 oracle: the reference algorithm run in f64 from the same f32
/// inputs (and the same f32 scale), in the runtime layout of
/// [`crate::causal_attention_dyn`]. Its error is ~1e-16 relative, far below
/// anything f32 can show, so the accuracy contract measures against it.
///
/// # Errors
/// As [`crate::causal_attention_dyn`].
#[inline]
pub fn causal_attention_f64(
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f64],
) -> Result<(), Error> {
    run_checked(shape, None, (q, k, v), out)
}

/// Textbook sliding-window causal attention, the specification of
/// [`RingKvCache`](crate::RingKvCache): like [`crate::causal_attention_dyn`]
/// (same layout, same bottom-right alignment, query `i` at position
/// `p = kv_len − q_len + i`), except that the query at position `p` sees only
/// positions `max(0, p − window + 1)..=p`: itself and the `window − 1`
/// before it. With `window ≥ kv_len` it is [`causal_attention_dyn`].
///
/// ```text
/// window = 3       keys  0 1 2 3 4
/// query at pos 0         ● · · · ·
/// query at pos 1         ● ● · · ·
/// query at pos 2         ● ● ● · ·
/// query at pos 3         · ● ● ● ·
/// query at pos 4         · · ● ● ●
/// ```
///
/// # Errors
/// As [`crate::causal_attention_dyn`], and [`Error::ZeroDimension`] (field
/// `"window"`) for `window = 0`.
///
/// ```
/// use microattn::{Shape, reference::sliding_window_attention};
/// // One head, D = 1, q = 0: each output is the mean of the window's values.
/// let shape = Shape::new(4, 4, 1, 1, 1);
/// let v = [1.0f32, 2.0, 3.0, 4.0];
/// let mut out = [0.0f32; 4];
/// sliding_window_attention(&shape, 2, &[0.0; 4], &[0.0; 4], &v, &mut out)?;
/// assert_eq!(out, [1.0, 1.5, 2.5, 3.5]);
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn sliding_window_attention(
    shape: &Shape,
    window: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    run_checked(shape, Some(window), (q, k, v), out)
}

/// The f64 oracle of [`sliding_window_attention`]: the same algorithm in
/// f64 from the same f32 inputs and scale.
///
/// # Errors
/// As [`sliding_window_attention`].
#[inline]
pub fn sliding_window_f64(
    shape: &Shape,
    window: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f64],
) -> Result<(), Error> {
    run_checked(shape, Some(window), (q, k, v), out)
}

/// Textbook [`crate::causal_attention_padded`]: the same split into
/// per-sequence valid prefixes and the same checks, each prefix computed by
/// the textbook algorithm in f32; padded query rows are `+0.0`.
///
/// # Errors
/// As [`crate::causal_attention_padded`].
#[inline]
pub fn causal_attention_padded(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    padded(shape, batch, valid_lens, (q, k, v), out)
}

/// The f64 oracle of [`crate::causal_attention_padded`]: as
/// [`causal_attention_f64`], per valid prefix; padded query rows are `+0.0`.
///
/// # Errors
/// As [`crate::causal_attention_padded`].
#[inline]
pub fn causal_attention_padded_f64(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f64],
) -> Result<(), Error> {
    padded(shape, batch, valid_lens, (q, k, v), out)
}

/// The body of the padded entry points, in f32 or f64: the padded API's
/// check, then each sequence's valid prefix [`run`] without a window and its
/// padded rows `+0.0`.
fn padded<T: Real>(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    qkv: (&[f32], &[f32], &[f32]),
    out: &mut [T],
) -> Result<(), Error> {
    let (q, k, v) = qkv;
    crate::check::padded(
        shape,
        batch,
        valid_lens,
        [q.len(), k.len(), v.len(), out.len()],
    )?;
    let s = Sizes::of(shape);
    for_each_sequence(&s, valid_lens, qkv, out, T::ZERO, |prefix, qkv, out| {
        run(prefix, None, qkv, out);
    });
    Ok(())
}
