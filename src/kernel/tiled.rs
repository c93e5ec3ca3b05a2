//! A full tile of queries, lanes across queries (see the parent module for
//! the recipe both paths follow).

use crate::layout::{KvHead, Query, Width};
use crate::simd::{self, PerQuery, QueryTile, TILE};
use crate::softmax::Online;

use super::{BLOCK, single};

/// Whether the tile path takes queries of `head_dim` dimensions: it keeps
/// them transposed on the stack, up to [`MAX_KEPT`] dimensions.
#[inline(always)]
pub(crate) fn takes(head_dim: usize) -> bool {
    head_dim <= MAX_KEPT
}

/// The longest query rows the tile keeps transposed (`4·TILE·MAX_KEPT`
/// bytes of stack: 16 KB with 16 lanes).
const MAX_KEPT: usize = 128;

/// The kernel's recipe for a tile of up to [`TILE`] queries that read `kv`
/// (the present ones first, every row of at most [`MAX_KEPT`] values),
/// query `t` seeing keys `0..tile[t].visible` (never decreasing with `t`);
/// writes their outputs and returns their final states.
///
/// The queries are kept transposed for the tile (`simd::QueryTile`), in a
/// buffer sized to the head dimension (a constant branch for a fixed one),
/// so small heads do not pay for a large buffer.
#[inline(always)]
pub(crate) fn attend<W: Width>(
    tile: &mut [Option<Query<'_, '_, W::Row, W::Row>>; TILE],
    kv: KvHead<'_, W>,
    scale: f32,
) -> [Online; TILE] {
    match tile[0].as_ref().map_or(0, |q| q.q.as_ref().len()) {
        0..=16 => attend_kept::<W, 16>(tile, kv, scale),
        17..=32 => attend_kept::<W, 32>(tile, kv, scale),
        33..=64 => attend_kept::<W, 64>(tile, kv, scale),
        _ => attend_kept::<W, MAX_KEPT>(tile, kv, scale),
    }
}

/// [`attend`] with `KEPT` dimensions kept transposed.
#[inline(always)]
fn attend_kept<W: Width, const KEPT: usize>(
    tile: &mut [Option<Query<'_, '_, W::Row, W::Row>>; TILE],
    kv: KvHead<'_, W>,
    scale: f32,
) -> [Online; TILE] {
    // Lanes without a query repeat the last query's count (so they never
    // make a block partial) and hold zeros; nothing of theirs is written.
    let mut visible = [0; TILE];
    let mut last_seen = 0;
    for (v, q) in visible.iter_mut().zip(tile.iter()) {
        if let Some(q) = q {
            last_seen = q.visible;
        }
        *v = last_seen;
    }
    let first = visible.iter().copied().min().unwrap_or(0);
    let last = last_seen;
    let mut rows = [None; TILE];
    for (row, q) in rows.iter_mut().zip(tile.iter()) {
        *row = q.as_ref().map(|q| q.q);
    }
    let queries = QueryTile::<KEPT>::new(&rows);
    let mut m = PerQuery::splat(f32::NEG_INFINITY);
    let mut l = PerQuery::splat(0.0);
    // The score microkernel takes key rows of a constant length (`KEPT`);
    // shorter rows are copied into these first. (Value rows are read where
    // they are: the value update takes rows of any length.)
    let mut packed_keys = [[0.0; KEPT]; BLOCK];
    let zeros = [0.0; KEPT];
    let d = queries.len();
    let mut start = 0;
    while start < last {
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
        let mut value_rows: [&[f32]; BLOCK] = [&[]; BLOCK];
        for (r, &v) in value_rows.iter_mut().zip(&values) {
            *r = v.as_ref();
        }
        let values = value_rows;
        // Key rows of exactly `KEPT` values are read where they are; shorter
        // ones are copied into rows of that length first.
        let mut in_place: [Option<&[f32; KEPT]>; BLOCK] = [None; BLOCK];
        for (r, &k) in in_place.iter_mut().zip(&keys) {
            *r = k.as_ref().first_chunk::<KEPT>().filter(|_| d == KEPT);
        }
        let mut key_rows: [&[f32; KEPT]; BLOCK] = [&zeros; BLOCK];
        if in_place.iter().all(Option::is_some) {
            for (r, k) in key_rows.iter_mut().zip(in_place) {
                *r = k.unwrap_or(&zeros);
            }
        } else {
            simd::pack(&mut packed_keys, &keys);
            key_rows = packed_keys.each_ref();
        }
        let mut scores = simd::scores_across_queries(&queries, &key_rows, scale);
        // A `-inf` score of the data's own is a mask that the causal one
        // does not describe: such a block goes key by key below.
        let data_masks = scores.iter().any(|s| s.is_neg_inf().any());
        let whole = start + BLOCK <= first;
        // Keys of this block each query sees (0 to `BLOCK`).
        let mut seen = [BLOCK; TILE];
        if !whole {
            for (s, v) in seen.iter_mut().zip(&visible) {
                *s = v.saturating_sub(start).min(BLOCK);
            }
            let mut lanes = [0.0; TILE];
            for (l, &s) in lanes.iter_mut().zip(&seen) {
                *l = s as f32;
            }
            let lanes = PerQuery::from_array(lanes);
            for (j, s) in scores.iter_mut().enumerate() {
                *s = s.masked(j, &lanes);
            }
        }
        let block_max = scores
            .iter()
            .fold(PerQuery::splat(f32::NEG_INFINITY), |b, &s| b.max_with(s));
        // Lanes whose maximum grows, the ones that start (their first score
        // above `-inf`: `m = -inf`, `α = exp(-inf) = 0`) among them.
        let grow = block_max.gt(m);
        if grow.any() {
            let fresh = m.is_neg_inf();
            let alpha = PerQuery::splat(1.0).select(grow, m.sub(block_max).exp());
            l = l.mul(alpha);
            let alphas = alpha.to_array();
            for (t, (q, a)) in tile.iter_mut().zip(alphas).enumerate() {
                let Some(q) = q else { break };
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
        // Plain loops, not array maps: the closure of an array map is not
        // always inlined.
        let mut p = scores;
        for pj in p.iter_mut() {
            *pj = pj.sub(m).exp().select(unstarted, pj.nan_or_zero());
            l = l.add(*pj);
        }
        // Keys whose score is `-inf` (masked ones, or past what a query
        // sees) are never read: each query takes the first `seen` keys, or,
        // where the data masks some, only the keys it weighs.
        if !data_masks {
            let mut outs: heapless::Vec<&mut W::Row, TILE> = heapless::Vec::new();
            for q in tile.iter_mut().flatten() {
                // At most `TILE` queries: never full.
                let _ = outs.push(&mut *q.out);
            }
            simd::pv_block(&mut outs, &p, &values, &seen);
        } else {
            let mut weights = [[0.0; TILE]; BLOCK];
            let mut masked = [0u64; BLOCK];
            for (((w, mask), pj), sj) in weights.iter_mut().zip(&mut masked).zip(&p).zip(&scores) {
                *w = pj.to_array();
                *mask = sj.is_neg_inf().bits();
            }
            for (t, q) in tile.iter_mut().enumerate() {
                let Some(q) = q else { break };
                for ((w, mask), v) in weights.iter().zip(&masked).zip(&values) {
                    if mask & (1 << t) == 0 {
                        simd::axpy(q.out.as_mut(), w[t], v);
                    }
                }
            }
        }
        start += BLOCK;
    }
    let (m, l) = (m.to_array(), l.to_array());
    let mut states = [Online::new(); TILE];
    for (((q, state), m), l) in tile.iter_mut().zip(&mut states).zip(m).zip(l) {
        if let Some(q) = q {
            *state = Online::entered(m, l);
            single::finish(q.out, state);
        }
    }
    states
}
