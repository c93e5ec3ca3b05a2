//! A full tile of queries, lanes across queries (see the parent module for
//! the recipe both paths follow).

use crate::layout::{KvHead, Query, Width};
use crate::simd::{self, Lanes};
use crate::softmax::Online;

use super::{BLOCK, TILE, single};

/// The kernel's recipe for [`TILE`] queries that read `kv`, query `t`
/// seeing keys `0..tile[t].visible` (never decreasing with `t`); writes
/// their outputs and returns their final states.
///
/// Up to 128 dimensions of the queries are kept transposed for the tile
/// (`simd::QueryTile`), in a buffer sized to the head dimension (a constant
/// branch for a fixed one), so small heads do not pay for a 4 KB buffer.
/// (Scores read the transpose once per key, so dimensions past those kept
/// are transposed again for every key.)
#[inline(always)]
pub(crate) fn attend<W: Width>(
    tile: &mut [Query<'_, '_, W::Row, W::Row>; TILE],
    kv: KvHead<'_, W>,
    scale: f32,
) -> [Online; TILE] {
    match tile[0].q.as_ref().len() {
        0..=16 => attend_kept::<W, 2>(tile, kv, scale),
        17..=32 => attend_kept::<W, 4>(tile, kv, scale),
        33..=64 => attend_kept::<W, 8>(tile, kv, scale),
        _ => attend_kept::<W, 16>(tile, kv, scale),
    }
}

/// [`attend`] with `KEPT` chunks of 8 dimensions kept transposed.
#[inline(always)]
fn attend_kept<W: Width, const KEPT: usize>(
    tile: &mut [Query<'_, '_, W::Row, W::Row>; TILE],
    kv: KvHead<'_, W>,
    scale: f32,
) -> [Online; TILE] {
    let visible = tile.each_ref().map(|q| q.visible);
    let first = visible.iter().copied().min().unwrap_or(0);
    let last = visible.iter().copied().max().unwrap_or(0);
    let queries = simd::QueryTile::<_, KEPT>::new(tile.each_ref().map(|q| q.q));
    let mut m = Lanes::splat(f32::NEG_INFINITY);
    let mut l = Lanes::splat(0.0);
    let mut start = 0;
    while start < last {
        // Rows filled in place rather than by `KvHead::block` (which suits
        // the one-query path): measured 4–8% faster here, at N = 64 to 1024.
        let Some((k0, v0)) = kv.at(start) else { break };
        // Slots past the last key any query sees repeat the first row; the
        // mask keeps them out.
        let mut keys = [k0; BLOCK];
        let mut values = [v0; BLOCK];
        let slots = keys.iter_mut().zip(values.iter_mut()).enumerate();
        for (j, (slot_k, slot_v)) in slots.take(last - start).skip(1) {
            if let Some((k, v)) = kv.at(start + j) {
                (*slot_k, *slot_v) = (k, v);
            }
        }
        let mut scores = simd::scores_across_queries(&queries, &keys, scale);
        // Keys of this block each query sees (0 to 8).
        let seen = visible.map(|v| v.saturating_sub(start).min(BLOCK) as f32);
        let whole = start + BLOCK <= first;
        if !whole {
            for (j, s) in scores.iter_mut().enumerate() {
                *s = s.masked(j, &seen);
            }
        }
        let block_max = scores
            .iter()
            .fold(Lanes::splat(f32::NEG_INFINITY), |b, &s| b.max_with(s));
        // Lanes whose maximum grows, the ones that start (their first score
        // above `-inf`: `m = -inf`, `α = exp(-inf) = 0`) among them.
        let grow = block_max.gt(m);
        if grow.any() {
            let fresh = m.is_neg_inf();
            let alpha = Lanes::splat(1.0).select(grow, m.sub(block_max).exp());
            l = l.mul(alpha);
            for (t, (q, a)) in tile.iter_mut().zip(alpha.to_array()).enumerate() {
                if grow.test(t) {
                    if fresh.test(t) {
                        q.out.as_mut().fill(-0.0);
                    } else {
                        simd::scale(q.out.as_mut(), a);
                    }
                }
            }
            m = m.select(grow, block_max);
        }
        // Lanes not started yet take weight 0 (NaN for a NaN score); their
        // output rows are written below but reset when they start.
        let unstarted = m.is_neg_inf();
        let p = scores.map(|s| s.sub(m).exp().select(unstarted, s.nan_or_zero()));
        l = p.iter().fold(l, |l, &pj| l.add(pj));
        // Keys whose score is `-inf` (masked ones, or past what a query
        // sees) are never read: the dense update only where there are none.
        if whole && !scores.iter().any(|s| s.is_neg_inf().any()) {
            let mut outs = tile.each_mut().map(|q| &mut *q.out);
            simd::pv_block(&mut outs, &p, &values);
        } else {
            let weights = p.map(Lanes::to_array);
            let scores = scores.map(Lanes::to_array);
            for (t, q) in tile.iter_mut().enumerate() {
                for ((w, s), v) in weights.iter().zip(&scores).zip(&values) {
                    if s[t] != f32::NEG_INFINITY {
                        simd::axpy(q.out.as_mut(), w[t], v.as_ref());
                    }
                }
            }
        }
        start += BLOCK;
    }
    let (m, l) = (m.to_array(), l.to_array());
    let mut states = [Online::new(); TILE];
    for (((q, state), m), l) in tile.iter_mut().zip(&mut states).zip(m).zip(l) {
        *state = Online::entered(m, l);
        single::finish(q.out, state);
    }
    states
}
