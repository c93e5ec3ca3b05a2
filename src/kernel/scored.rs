//! One query at a time with a [`Scoring`](crate::Scoring): the one-query
//! path's recipe (see the parent module) with the block's scores changed
//! between the dot products and the softmax.
//!
//! Every scored call (runtime, cache prefill, cache step) takes its queries
//! through [`attend`], so a query gets the same bits from each; with
//! nothing set, [`attend`] performs the one-query path's operations, so a
//! scored call with an empty scoring gives the plain call's bits.

use crate::layout::{KvHead, Width};
use crate::scoring::RowScoring;
use crate::simd::{self, Scores};
use crate::softmax::Online;

use super::{BLOCK, single};

/// The recipe for one query that sees keys `0..visible` of `kv`, its
/// scores changed by `row`; writes `out` and returns the final state.
///
/// A sink logit starts the state as if a key of that score had been seen
/// with a zero value: `m = sink`, `l = 1` and the accumulator `+0.0`. Its
/// weight then follows every rescale, and a row whose keys are all masked
/// ends as `0 / 1 = 0`.
#[inline(always)]
pub(crate) fn attend<W: Width>(
    q: &W::Row,
    out: &mut W::Row,
    visible: usize,
    kv: KvHead<'_, W>,
    scale: f32,
    row: &RowScoring<'_>,
) -> Online {
    let mut state = match row.sink {
        Some(sink) => {
            out.as_mut().fill(0.0);
            Online::entered(sink, 1.0)
        }
        None => Online::new(),
    };
    let mut start = 0;
    while start < visible {
        let n = (visible - start).min(BLOCK);
        let Some((keys, values)) = kv.block(start, n) else {
            break;
        };
        let scores = simd::dot_block(q, &keys, n, scale);
        let scores = changed(scores, row, start);
        single::take_scores(out, &mut state, scores, &values, n);
        start += BLOCK;
    }
    single::finish(out, &state);
    state
}

/// The block of keys from `start` after [`Scoring`](crate::Scoring)'s steps,
/// in its order: soft cap, key bias, score bias, ALiBi, key mask.
#[inline(always)]
fn changed(scores: Scores, row: &RowScoring<'_>, start: usize) -> Scores {
    let mut scores = scores;
    if let Some(cap) = row.soft_cap {
        scores = scores.soft_capped(cap);
    }
    if let Some(bias) = row.key_bias.and_then(|b| b.get(start..)) {
        scores = scores.plus(bias);
    }
    if let Some(bias) = row.score_bias.and_then(|b| b.get(start..)) {
        scores = scores.plus(bias);
    }
    if let Some((slope, i)) = row.alibi {
        scores = scores.plus_alibi(slope, start, i);
    }
    if let Some(keep) = row.key_mask.and_then(|m| m.get(start..)) {
        scores = scores.kept(keep);
    }
    scores
}
