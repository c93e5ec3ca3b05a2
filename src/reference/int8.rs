//! The integer path's specification, written plainly, and its `f64` oracle
//! and accuracy bound.
//!
//! [`causal_attention_dyn`] computes, for every query and head, the whole
//! row of exact scores `sⱼ = Σ_d (q_d − zq)(kⱼ_d − zk)` (in `i64`), their
//! maximum, each weight [`weight`]`(`[`Params::exponent`]`(m − sⱼ))`, the
//! exact sums `W = Σⱼ wⱼ` and `A_d = Σⱼ wⱼ·(vⱼ_d − zv)`, the mean `A_d / W`
//! in `Q22` value steps (through `W`'s leading 16 bits, a rounded
//! reciprocal of them and `A_d` rounded to the same scale), and
//! [`Params::requantize`]. It shares with the fast path only those three
//! prepared functions (the exponent, the weight, the requantization), which
//! define the arithmetic; the scores, the sums, the zero points and the
//! rounding of the mean are its own. The fast path equals it bit for bit.
//!
//! [`oracle`] is the same attention in `f64` on the dequantized inputs, in
//! output steps; [`bound`] is the documented bound between the two
//! ([`crate::int8`], "Accuracy").

use crate::Shape;
use crate::check;
use crate::error::Error;
use crate::int8::{MAX_HEAD_DIM, Params, weight};

/// Value `(token, head, dim)` of a token-major buffer.
fn at(buf: &[i8], token: usize, heads: usize, head: usize, d: usize, dim: usize) -> i64 {
    buf.get((token * heads + head) * d + dim)
        .map_or(0, |&x| i64::from(x))
}

/// The integer path's result by the textbook: see the module docs. Same
/// signature, checks and errors as
/// [`int8::causal_attention_dyn`](crate::int8::causal_attention_dyn).
///
/// # Errors
/// As [`int8::causal_attention_dyn`](crate::int8::causal_attention_dyn).
///
/// ```
/// use microattn::{Shape, int8::{self, Params, Quant}, reference};
/// let a = Quant { scale: 0.03, zero_point: -5 };
/// let p = Params::new(a, a, a, a, 3)?;
/// let shape = Shape::new(2, 2, 1, 1, 3);
/// let (q, kv) = ([1i8, 50, -9, 7, 7, 100], [3i8, -3, 30, 90, 0, -60]);
/// let (mut fast, mut naive) = ([0i8; 6], [0i8; 6]);
/// int8::causal_attention_dyn(&shape, &p, &q, &kv, &kv, &mut fast)?;
/// reference::int8::causal_attention_dyn(&shape, &p, &q, &kv, &kv, &mut naive)?;
/// assert_eq!(fast, naive);
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_attention_dyn(
    shape: &Shape,
    params: &Params,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    out: &mut [i8],
) -> Result<(), Error> {
    check::int8_runtime(shape, [q.len(), k.len(), v.len(), out.len()])?;
    let (heads, kv_heads, d) = (shape.heads, shape.kv_heads, shape.head_dim);
    let group = heads / kv_heads;
    let (zq, zk, zv) = (
        i64::from(params.query().zero_point),
        i64::from(params.key().zero_point),
        i64::from(params.value().zero_point),
    );
    for i in 0..shape.q_len {
        let visible = shape.kv_len - shape.q_len + i + 1;
        for h in 0..heads {
            let g = h / group;
            let score = |j: usize| -> i64 {
                (0..d)
                    .map(|x| (at(q, i, heads, h, d, x) - zq) * (at(k, j, kv_heads, g, d, x) - zk))
                    .sum()
            };
            let max = (0..visible).map(score).max().unwrap_or(0);
            let w = |j: usize| -> i64 {
                let difference = u32::try_from(max - score(j)).unwrap_or(u32::MAX);
                i64::from(weight(params.exponent(difference)))
            };
            let mut total = 0i64;
            let mut sums = [0i64; MAX_HEAD_DIM];
            for j in 0..visible {
                let wj = w(j);
                total += wj;
                for (x, sum) in sums.iter_mut().enumerate().take(d) {
                    *sum += wj * (at(v, j, kv_heads, g, d, x) - zv);
                }
            }
            // The mean sum / total in Q22: the total's leading 16 bits, a
            // rounded reciprocal of them, the sum rounded to the same scale.
            let b = (64 - total.leading_zeros()).saturating_sub(16);
            let top = total >> b;
            let factor = if top == 0 {
                0
            } else {
                ((1i64 << 30) + top / 2) / top
            };
            for (x, &sum) in sums.iter().enumerate().take(d) {
                let scaled = if b == 0 {
                    0
                } else {
                    (sum + (1i64 << (b + 7))) >> (b + 8)
                };
                let mean = scaled.clamp(-0xFFFF, 0xFFFF) * factor;
                if let Some(o) = out.get_mut((i * heads + h) * d + x) {
                    *o = params.requantize(i32::try_from(mean).unwrap_or(0));
                }
            }
        }
    }
    Ok(())
}

/// The `f64` oracle: causal attention on the dequantized inputs
/// (`Sq·(q − zq)` and so on, with `exp` and the score scale in `f64`), in
/// output steps: `zo + o/So`, neither rounded nor saturated. Same checks
/// and errors as [`causal_attention_dyn`].
///
/// # Errors
/// As [`causal_attention_dyn`], with [`Error::LengthMismatch`] for `out`
/// counted in `f64` values.
#[inline]
pub fn oracle(
    shape: &Shape,
    params: &Params,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    out: &mut [f64],
) -> Result<(), Error> {
    check::int8_runtime(shape, [q.len(), k.len(), v.len(), out.len()])?;
    let (heads, kv_heads, d) = (shape.heads, shape.kv_heads, shape.head_dim);
    let group = heads / kv_heads;
    let real = |x: i64, quant: crate::int8::Quant| {
        f64::from(quant.scale) * (x - i64::from(quant.zero_point)) as f64
    };
    let (pq, pk, pv, po) = (
        params.query(),
        params.key(),
        params.value(),
        params.output(),
    );
    let scale = f64::from(params.score_scale());
    for i in 0..shape.q_len {
        let visible = shape.kv_len - shape.q_len + i + 1;
        for h in 0..heads {
            let g = h / group;
            let score = |j: usize| -> f64 {
                scale
                    * (0..d)
                        .map(|x| {
                            real(at(q, i, heads, h, d, x), pq)
                                * real(at(k, j, kv_heads, g, d, x), pk)
                        })
                        .sum::<f64>()
            };
            let max = (0..visible).map(score).fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            let mut sum = [0.0f64; MAX_HEAD_DIM];
            for j in 0..visible {
                let e = libm::exp(score(j) - max);
                total += e;
                for (x, s) in sum.iter_mut().enumerate().take(d) {
                    *s += e * real(at(v, j, kv_heads, g, d, x), pv);
                }
            }
            for (x, &s) in sum.iter().enumerate().take(d) {
                if let Some(slot) = out.get_mut((i * heads + h) * d + x) {
                    *slot = f64::from(po.zero_point) + s / total / f64::from(po.scale);
                }
            }
        }
    }
    Ok(())
}

/// The accuracy bound, in output steps, of one output of a row of
/// `visible` keys against the [`oracle`] (saturated to `i8`):
/// `0.5 + M·(0.045 + 0.002·visible)` with `M = Sv/So`
/// (derived in [`crate::int8`], "Accuracy").
///
/// ```
/// use microattn::int8::{Params, Quant};
/// let a = Quant { scale: 0.1, zero_point: 0 };
/// let p = Params::new(a, a, a, a, 16)?;
/// assert!(microattn::reference::int8::bound(&p, 64) < 1.0);
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
#[must_use]
pub fn bound(params: &Params, visible: usize) -> f64 {
    let m = f64::from(params.value().scale) / f64::from(params.output().scale);
    0.5 + m * (0.045 + 0.002 * visible as f64)
}

/// Whether an output `got` is within [`bound`] of the oracle's `want`
/// (saturated to `-128..=127` first, as the output is).
#[inline]
#[must_use]
pub fn within_bound(got: i8, want: f64, bound: f64) -> bool {
    (f64::from(got) - want.clamp(-128.0, 127.0)).abs() <= bound
}
