//! The fused online-softmax kernel.
//!
//! Keys are taken in blocks of [`BLOCK`]: a block's scores `scale · q·kⱼ`
//! are computed on lanes, the running maximum is raised (and the accumulator
//! rescaled) only if the block beats it, then `exp(sⱼ − m)·vⱼ` is added to
//! the accumulator. The accumulator is the caller's output row itself, divided
//! by the running sum at the end, so the working memory per query is one
//! block of scores and nothing of size N.
//!
//! Queries of one head are taken in tiles of [`TILE`] consecutive positions:
//! each block of keys and values is loaded once and used by every query of
//! the tile that sees it, so K and V stream from memory once per tile rather
//! than once per query.
//!
//! Determinism by construction: every query's keys are cut into blocks
//! starting at position 0, and a query's update for a block depends only on
//! the keys of that block it sees (lanes it does not see are masked to `-inf`
//! and weigh exactly 0). So a query's result is the same bits whatever tile
//! it is in, and nothing at a later position can change it.

use crate::layout::{KvHead, Problem, Width};
use crate::simd::{self, Block, Scores};
use crate::softmax::{Online, Rescale};

/// Keys per block: one lane's worth of scores between two max updates.
pub(crate) const BLOCK: usize = simd::LANES;

/// Query positions per tile (they share each loaded block of keys). Where
/// `wide`'s lanes are plain arrays (no SSE2/NEON/simd128: microcontrollers)
/// a tile's lane state lives on the stack, not in registers, and sharing
/// loads saves nothing: on `thumbv7em` one `causal_multi_head::<32, 2, 1, 16>`
/// call uses 1352 B of stack with 8, 1096 with 4, 1000 with 2 and 680 with 1
/// (same instruction count ±1%; `.ci/footprint`), so those targets take 1 to
/// stay within the 1 KB stack budget. Results do not depend on `TILE`.
pub(crate) const TILE: usize = if cfg!(any(
    target_feature = "sse2",
    target_feature = "neon",
    target_feature = "simd128"
)) {
    8
} else {
    1
};

/// Runs causal attention on a checked problem, writing every output value.
///
/// With `lse`, also writes each query row's log-sum-exp of its visible
/// scores, `m + ln Σ exp(sⱼ − m)` (`-inf` for a row that sees no key), in
/// the order of the output rows (token-major, then head). Its length must be
/// `q_len·heads` (checked by the caller); rows past its end get none.
#[inline(always)]
pub(crate) fn run<W: Width>(p: &Problem<'_, W>, out: &mut [f32], mut lse: Option<&mut [f32]>) {
    let heads = p.heads();
    for h in 0..heads {
        let (kv, mut rows) = p.query_head(h, p.width.rows_mut(out));
        let mut first_visible = p.visible(0);
        loop {
            let mut tile: [Option<(&W::Row, &mut W::Row)>; TILE] = [const { None }; TILE];
            for slot in tile.iter_mut() {
                *slot = rows.next();
                if slot.is_none() {
                    break;
                }
            }
            if tile[0].is_none() {
                break;
            }
            let states = attend_tile(&mut tile, kv, first_visible, p.scale);
            if let Some(lse) = lse.as_deref_mut() {
                let token0 = first_visible - p.visible(0);
                for (t, state) in states.iter().enumerate() {
                    if let Some(slot) = lse.get_mut((token0 + t) * heads + h) {
                        *slot = state.log_sum_exp();
                    }
                }
            }
            first_visible += TILE;
        }
    }
}

/// A tile of queries at consecutive positions: query `t` of the tile sees
/// the first `first_visible + t` positions of `kv`. For each query,
/// `out = Σⱼ softmax(scale·q·kⱼ)ⱼ · vⱼ` over those positions; a query that
/// sees none gets 0. Empty slots (`None`) end the tile. Returns each
/// query's final online-softmax state (slots past the tile's end: unused).
///
/// `q`, every row of `kv` and `out` have the same length (checked by
/// [`Problem::new`]); with a fixed head dimension that length is a
/// type-level constant and the lane loops unroll.
#[inline(always)]
pub(crate) fn attend_tile<W: Width>(
    tile: &mut [Option<(&W::Row, &mut W::Row)>; TILE],
    kv: KvHead<'_, W>,
    first_visible: usize,
    scale: f32,
) -> [Online; TILE] {
    let mut states = [Online::new(); TILE];
    let Some(q0) = tile[0].as_ref().map(|(q, _)| *q) else {
        return states;
    };
    let count = tile.iter().take_while(|slot| slot.is_some()).count();
    let last_visible = first_visible + count.saturating_sub(1);
    let mut start = 0;
    while start < last_visible {
        let Some((k0, v0)) = kv.at(start) else { break };
        let n_max = (last_visible - start).min(BLOCK);
        // Slots past `n_max` repeat the first row; each query's `n` keeps the
        // lanes it does not see out of its sums.
        let mut keys: Block<'_, W::Row> = [k0; BLOCK];
        let mut values: Block<'_, W::Row> = [v0; BLOCK];
        let slots = keys.iter_mut().zip(values.iter_mut()).enumerate();
        for (j, (slot_k, slot_v)) in slots.take(n_max).skip(1) {
            if let Some((k, v)) = kv.at(start + j) {
                (*slot_k, *slot_v) = (k, v);
            }
        }
        let queries = tile
            .each_ref()
            .map(|slot| slot.as_ref().map_or(q0, |(q, _)| *q));
        let scores = simd::dot_tile(&queries, &keys, scale);
        let per_query = tile.iter_mut().zip(states.iter_mut()).zip(scores);
        for (t, ((slot, state), scores)) in per_query.enumerate() {
            let Some((_, out)) = slot else { break };
            let visible = first_visible + t;
            if visible > start {
                let n = (visible - start).min(BLOCK);
                update(&mut **out, state, scores.masked(n), &values, n);
            }
        }
        start += BLOCK;
    }
    for (slot, state) in tile.iter_mut().zip(&states) {
        let Some((_, out)) = slot else { break };
        match state.sum() {
            Some(l) => simd::div(out.as_mut(), l),
            None => out.as_mut().fill(0.0),
        }
    }
    states
}

/// One query's update by one block of scores, of which the first `n` (the
/// keys it sees) are unmasked.
#[inline(always)]
fn update<R: ?Sized + AsRef<[f32]> + AsMut<[f32]>>(
    out: &mut R,
    state: &mut Online,
    scores: Scores,
    values: &Block<'_, R>,
    n: usize,
) {
    match state.enter_block(scores.max()) {
        Rescale::Start => out.as_mut().fill(-0.0),
        Rescale::Keep => {}
        Rescale::By(alpha) => simd::scale(out.as_mut(), alpha),
    }
    let p = state.weights(scores);
    simd::axpy_block(out, p, values, n);
}
