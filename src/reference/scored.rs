//! Textbook scored attention: [`crate::causal_attention_scored`] as the
//! formulas of [`Scoring`] write it, one score at a time.

use super::contract::FLUSH;
use super::rows::{Sizes, for_each_row_at};
use super::{Real, dot, softmax_weighted_map};
use crate::error::Error;
use crate::{Scoring, Shape};

/// One row's score of key `j`: `scale·q·k`, soft-capped, plus the key
/// bias, the score bias and the ALiBi bias, then masked; `i` is the query's
/// position and `t` its index in the call.
#[allow(clippy::too_many_arguments)]
fn score_of<T: Real>(
    scoring: &Scoring<'_>,
    s: &Sizes,
    (t, h, i): (usize, usize, usize),
    j: usize,
    q: &[f32],
    k: &[f32],
) -> T {
    let mut score = dot::<T>(q, k) * T::from_f32(s.scale);
    if let Some(cap) = scoring.get_soft_cap() {
        let cap = T::from_f32(cap);
        score = cap * (score / cap).tanh();
    }
    if let Some(bias) = scoring.get_key_bias() {
        score = score + T::from_f32(bias.get(j).copied().unwrap_or(0.0));
    }
    if let Some(bias) = scoring.get_score_bias() {
        let plane = s.q_len * s.kv_len;
        let first = if bias.len() == plane { 0 } else { h * plane };
        let at = first + t * s.kv_len + j;
        score = score + T::from_f32(bias.get(at).copied().unwrap_or(0.0));
    }
    if let Some(slope) = scoring.get_alibi().and_then(|x| x.get(h)) {
        // −slope·(i − j), the distance exact below 2²⁴ positions.
        let distance = T::from_f32((i - j) as f32);
        score = score + (T::ZERO - T::from_f32(*slope) * distance);
    }
    if scoring.get_key_mask().and_then(|m| m.get(j)) == Some(&false) {
        score = T::NEG_INFINITY;
    }
    score
}

/// Every row in `T`: the scores of [`score_of`], the softmax over them and
/// the sink logit (`e^{sink}` added to the normaliser, no value), and the
/// weighted sum of `value(v)` plus `flush·|v|` per weighed key.
fn run<T: Real>(
    s: &Sizes,
    scoring: &Scoring<'_>,
    qkv: (&[f32], &[f32], &[f32]),
    value: impl Fn(f32) -> f32,
    flush: T,
    out: &mut [T],
) {
    let offset = s.kv_len.saturating_sub(s.q_len);
    for_each_row_at(s, qkv, out, |t, h, q, keys, values, out| {
        let at = (t, h, offset + t);
        let scores = keys
            .enumerate()
            .map(|(j, k)| score_of::<T>(scoring, s, at, j, q, k));
        let sink = scoring.get_sinks().and_then(|x| x.get(h)).copied();
        softmax_weighted_map(scores, sink.map(T::from_f32), values, &value, flush, out);
    });
}

/// The checks of [`crate::causal_attention_scored`], in its order.
fn checked(
    shape: &Shape,
    scoring: &Scoring<'_>,
    qkv: (&[f32], &[f32], &[f32]),
    out_len: usize,
) -> Result<Sizes, Error> {
    let s = Sizes::checked(shape, qkv, out_len)?;
    scoring.check(s.q_len, s.kv_len, s.heads)?;
    Ok(s)
}

/// Textbook [`crate::causal_attention_scored`] in f32: each score by the
/// steps of [`Scoring`] in its order (the dot product as
/// [`score`](super::score) sums it, `libm`'s `tanhf`), then the textbook
/// softmax with the sink logit in its normaliser.
///
/// # Errors
/// As [`crate::causal_attention_scored`].
///
/// ```
/// use microattn::{Scoring, Shape, reference};
/// let shape = Shape::new(1, 2, 1, 1, 1).with_scale(1.0);
/// let sinks = [0.0f32];
/// let mut out = [0.0f32];
/// let scoring = Scoring::new().sinks(&sinks);
/// reference::causal_attention_scored(&shape, &scoring, &[0.0], &[0.0, 0.0], &[3.0, 3.0], &mut out)?;
/// assert_eq!(out, [2.0]); // two keys and the sink, each weighing 1/3
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_attention_scored(
    shape: &Shape,
    scoring: &Scoring<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let s = checked(shape, scoring, (q, k, v), out.len())?;
    run::<f32>(&s, scoring, (q, k, v), |x| x, 0.0, out);
    Ok(())
}

/// [`causal_attention_scored`] in f64 (every score, bias, `tanh` and sum
/// in f64): the oracle the scored kernel is checked against.
///
/// # Errors
/// As [`crate::causal_attention_scored`].
#[inline]
pub fn causal_attention_scored_f64(
    shape: &Shape,
    scoring: &Scoring<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f64],
) -> Result<(), Error> {
    let s = checked(shape, scoring, (q, k, v), out.len())?;
    run::<f64>(&s, scoring, (q, k, v), |x| x, 0.0, out);
    Ok(())
}

/// [`attention_mass_f64`](super::attention_mass_f64) for a scored call:
/// the f64 oracle's weighted sum of `|v|` with the flush allowance per
/// weighed key, the magnitudes
/// [`check_contract_with_mass`](super::check_contract_with_mass) takes.
///
/// # Errors
/// As [`crate::causal_attention_scored`].
#[inline]
pub fn attention_mass_scored_f64(
    shape: &Shape,
    scoring: &Scoring<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f64],
) -> Result<(), Error> {
    let s = checked(shape, scoring, (q, k, v), out.len())?;
    run::<f64>(&s, scoring, (q, k, v), f32::abs, FLUSH, out);
    Ok(())
}
