//! The fused online-softmax kernel.
//!
//! # The recipe every query follows
//! A query that sees keys `0..visible` takes them in blocks of [`BLOCK`]
//! (one vector of lanes: 16 with AVX-512F, 8 elsewhere) starting at
//! position 0. For each block, with `sⱼ = scale·(q·kⱼ)` summed as one chain
//! (`s = q_d·k_d + s` for `d` in order by the lanes' `mul_add`, then
//! `s·scale`: `simd::dot_block` across keys, `simd::scores_across_queries`
//! across queries) and keys it does not see masked to `-inf`:
//!
//! 1. `b = max sⱼ`, ignoring NaN (`-inf` if nothing is left);
//! 2. first block: `m = b`, the accumulator (the caller's output row) set to
//!    `-0.0`, `l = 0`; later blocks, only if `b > m`: `α = exp(m − b)`,
//!    `m = b`, `l = l·α`, accumulator `·= α` — no rescale otherwise;
//! 3. `pⱼ = exp(sⱼ − m)` by the softmax exp (`simd::exp`), `l = l + p₀ + p₁ +
//!    …` in order of `j` (masked lanes add exactly 0);
//! 4. `acc = acc + pⱼ·vⱼ` for each seen key in order of `j`, skipping keys
//!    whose score is `-inf` (a mask: their values are never read)
//!    (`simd::axpy`: fused on whole lanes where the target has FMA,
//!    `axpy_tail` past them).
//!
//! At the end `out = acc / l` (a division, correctly rounded), or 0 for a
//! query that saw no key or only masked ones.
//!
//! # Two paths, one result
//! A tile of up to [`TILE`] queries (one vector of lanes) that read the
//! same key/value head goes through [`tiled`]: lanes across queries, so the
//! scores, the maximum, the rescale factors and the sums are lane-wise, and
//! the scores of a block come from a register-blocked microkernel (the
//! tile's query vector against every key of the block at once, one
//! accumulator per key, each key's value broadcast) that reads each key
//! once per tile. Blocks that every query of
//! the tile sees in full take no mask, and their value update keeps chunks
//! of four output rows in registers across the block. Fewer than
//! [`MIN_TILE`] queries, a single decode query, rows longer than the tile
//! keeps, and every query on a target without SIMD lanes (where the
//! one-query path needs a fraction of the stack) go through [`single`]:
//! lanes across keys, each eight keys' rows transposed eight dimensions at
//! a time. A cache's decode step (one position's queries, the shape known
//! at compile time) runs the one-query path's functions through [`decode`],
//! which takes each block's rows as constant offsets into the cache's
//! positions and computes every head's scores side by side.
//!
//! Both paths perform the recipe's operations, value by value, with the same
//! IEEE operations in the same order, so a query's output (and its
//! log-sum-exp) is the same bits whichever path, tile or position in a tile
//! computed it, and nothing at a later position can change it. That is what
//! makes one prefill and a sequence of decode steps agree bit for bit, and
//! the exact tests hold it.

use crate::element::Element;
use crate::layout::{Fixed, Problem, Query, Width};
use crate::scoring::Checked;
use crate::simd::{self, TILE};
use crate::softmax::Online;

mod bounded;
mod decode;
mod scored;
mod single;
mod tiled;

/// Keys per block: one lane's worth of scores between two max updates.
pub(crate) const BLOCK: usize = simd::LANE_WIDTH;

/// Fewest queries that go through the tile path together; fewer go one at
/// a time (a tile costs the same whatever its number of queries).
const MIN_TILE: usize = 4;

/// Whether this build runs the bounded-time recipe (the `bounded-time`
/// feature): every query through the one-query path, whose steps then take
/// their branch-free forms ([`bounded`]), and no tile path (whose
/// lanes-across-queries softmax branches on the data).
pub(crate) const BOUNDED: bool = cfg!(feature = "bounded-time");

/// Decode queries that take the one-query path side by side.
const SIDE_BY_SIDE: usize = 8;

/// Whether the target has SIMD registers (`wide`'s lanes are real vectors),
/// which sends full tiles through the lanes-across-queries path and decode
/// steps through [`decode`]. On microcontrollers the lanes are plain arrays,
/// so the tile buys nothing and its working set (about 1 KB of scores,
/// weights and transposed queries) would triple the kernel's stack.
const SIMD_REGISTERS: bool = simd::VECTOR;

/// Runs causal attention on a checked problem, writing every output value.
///
/// With a `scoring` (checked against this problem's sizes), every query
/// goes through [`scored`], one at a time in row order; without, the plain
/// paths below.
///
/// With `lse`, also writes each query row's log-sum-exp of its visible
/// scores, `m + ln l` (`-inf` for a row that sees no key), in the order of
/// the output rows (token-major, then head). Its length must be
/// `q_len·heads` (checked by the caller); rows past its end get none.
#[inline(always)]
pub(crate) fn run<W: Width>(
    p: &Problem<'_, W>,
    out: &mut [f32],
    mut lse: Option<&mut [f32]>,
    scoring: Option<&Checked<'_>>,
) {
    if nan_for_non_finite_scale(p.scale, out, lse.as_deref_mut()) {
        return;
    }
    if let Some(scoring) = scoring {
        for (q, kv) in p.queries(p.width.rows_mut(out)) {
            let row = scoring.row(q.row, q.visible);
            let state = scored::attend(q.q, q.out, q.visible, kv, p.scale, &row);
            if let Some(slot) = lse.as_deref_mut().and_then(|l| l.get_mut(q.row)) {
                *slot = state.log_sum_exp();
            }
        }
        return;
    }
    if !SIMD_REGISTERS {
        // Microcontrollers: every query through the one-query path, one at a
        // time in row order (tiles would only hold eight queries' state on
        // the stack).
        for (q, kv) in p.queries(p.width.rows_mut(out)) {
            let state = single::attend(q.q, q.out, q.visible, kv, p.scale);
            if let Some(slot) = lse.as_deref_mut().and_then(|l| l.get_mut(q.row)) {
                *slot = state.log_sum_exp();
            }
        }
        return;
    }
    if p.q_len() == 1 {
        // A decode step: one query per head, nothing to tile. The heads go
        // through the one-query path side by side, block by block, so the
        // keys and values of all heads stream through memory once, in order.
        // (Not on microcontrollers: there memory is flat SRAM and the eight
        // side-by-side states would double the decode step's stack.)
        let mut queries = p.queries(p.width.rows_mut(out));
        loop {
            let next: [_; SIDE_BY_SIDE] = core::array::from_fn(|_| {
                let (q, kv) = queries.next()?;
                Some((q.row, single::Lone::new(q.q, q.out, q.visible, kv)))
            });
            let rows = next.each_ref().map(|n| n.as_ref().map(|(row, _)| *row));
            let lones = next.map(|n| n.map(|(_, lone)| lone));
            if rows[0].is_none() {
                return;
            }
            let states = single::attend_interleaved(lones, p.scale);
            write_lse(&mut lse, rows, &states);
        }
    }
    let tiles = tiled::takes(p.width.get().get()) && !BOUNDED;
    for g in 0..p.kv_heads() {
        let (kv, mut queries) = p.query_group(g, p.width.rows_mut(&mut *out));
        loop {
            // Plain loops, not array maps or `from_fn`: their closures are
            // not always inlined, and a call per query is most of a small
            // problem's time.
            let mut tile: [Option<Query<'_, '_, W::Row, W::Row>>; TILE] = [const { None }; TILE];
            let mut rows = [None; TILE];
            let mut count = 0;
            for (slot, row) in tile.iter_mut().zip(&mut rows) {
                *slot = queries.next();
                let Some(q) = slot else { break };
                *row = Some(q.row);
                count += 1;
            }
            if count == 0 {
                break;
            }
            let states = if tiles && count >= MIN_TILE {
                tiled::attend(&mut tile, kv, p.scale)
            } else {
                let mut states = [Online::new(); TILE];
                for (state, slot) in states.iter_mut().zip(tile.iter_mut()) {
                    let Some(q) = slot else { break };
                    *state = single::attend(q.q, &mut *q.out, q.visible, kv, p.scale);
                }
                states
            };
            write_lse(&mut lse, rows, &states);
        }
    }
}

/// Runs the kernel for `q_len = q.len() / (H·D)` queries that are the last
/// positions of the cached keys and values (`keys[start..]` then
/// `keys[..start]` in logical order: a ring's storage; 0 for a plain cache).
/// The shape is valid by the `const` assertions of the callers and the
/// lengths by construction (`keys.len() == values.len() ≥ q_len`), so the
/// checked problem is always built; if it ever were not, `out` would be NaN
/// rather than silently stale.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn run_positions<const H: usize, const KVH: usize, const D: usize>(
    keys: &[[[f32; D]; KVH]],
    values: &[[[f32; D]; KVH]],
    start: usize,
    scale: f32,
    q: &[[f32; D]],
    out: &mut [[f32; D]],
    lse: Option<&mut [f32]>,
    scoring: Option<&Checked<'_>>,
) {
    let q_len = q.len() / H;
    let (k, v) = (keys.as_flattened(), values.as_flattened());
    let (q, out) = (q.as_flattened(), out.as_flattened_mut());
    match Problem::<Fixed<D>>::new(
        q_len,
        keys.len(),
        H,
        KVH,
        D,
        scale,
        (q, k.as_flattened(), v.as_flattened()),
        out.len(),
    ) {
        Ok(p) => run(&p.rotated(start), out, lse, scoring),
        Err(_) => out.fill(f32::NAN),
    }
}

/// One position's queries (`H` heads) over a cache's positions, stored
/// as `E` from `start` on as in [`run_positions`]: [`decode`]'s step,
/// except for an `f32` cache on a target without SIMD registers, which goes
/// through [`run_positions`] (its one-query path needs less stack there).
/// Both give the one-query path's bits. The cache is not empty (the callers
/// answer an empty one themselves).
#[inline(always)]
pub(crate) fn step<const H: usize, const KVH: usize, const D: usize, E: Element>(
    keys: &[[[E; D]; KVH]],
    values: &[[[E; D]; KVH]],
    start: usize,
    scale: f32,
    q: &[[f32; D]; H],
    out: &mut [[f32; D]; H],
    lse: Option<&mut [f32; H]>,
) {
    if !SIMD_REGISTERS
        && let (Some(k), Some(v)) = (E::as_f32_positions(keys), E::as_f32_positions(values))
    {
        let lse = lse.map(|l| &mut l[..]);
        run_positions::<H, KVH, D>(k, v, start, scale, q, out, lse, None);
        return;
    }
    decode::step::<H, KVH, D, E>(keys, values, start, scale, q, out, lse);
}

/// [`step`] for the query heads `heads` only (their rows of `out` and
/// `lse` written, the others untouched), on every target through
/// [`decode`]: the bits [`step`] gives those heads. The parallel decode
/// step's tasks.
#[cfg(feature = "rayon")]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn step_heads<const H: usize, const KVH: usize, const D: usize, E: Element>(
    keys: &[[[E; D]; KVH]],
    values: &[[[E; D]; KVH]],
    start: usize,
    scale: f32,
    q: &[[f32; D]; H],
    out: &mut [[f32; D]; H],
    lse: Option<&mut [f32; H]>,
    heads: core::ops::Range<usize>,
) {
    decode::step_heads::<H, KVH, D, E>(keys, values, start, scale, q, out, lse, heads);
}

/// A NaN or infinite `scale` makes every output value and log-sum-exp NaN
/// (returns `true`; the scores would be meaningless, and an infinite scale
/// would turn some of them into masks). The runtime and padded APIs reject
/// such a scale before the kernel; the fixed-size API and the caches, which
/// cannot fail, get this.
#[inline(always)]
fn nan_for_non_finite_scale(scale: f32, out: &mut [f32], lse: Option<&mut [f32]>) -> bool {
    if scale.is_finite() {
        return false;
    }
    out.fill(f32::NAN);
    if let Some(lse) = lse {
        lse.fill(f32::NAN);
    }
    true
}

/// Each present row's log-sum-exp into `lse`, if asked for.
#[inline(always)]
fn write_lse<const T: usize>(
    lse: &mut Option<&mut [f32]>,
    rows: [Option<usize>; T],
    states: &[Online; T],
) {
    let Some(lse) = lse.as_deref_mut() else {
        return;
    };
    for (row, state) in rows.iter().zip(states) {
        if let Some(slot) = row.and_then(|r| lse.get_mut(r)) {
            *slot = state.log_sum_exp();
        }
    }
}
