//! A decode step over a key/value cache whose shape is known at compile
//! time: the queries of one position (`H` heads) over every cached
//! position, for targets with SIMD lanes.
//!
//! The general path ([`super::run`]) reads a key/value head through
//! [`KvHead`](crate::layout::KvHead): the head count is a run-time value, so
//! each block of each head costs sixteen row addresses (`kv_heads` rows
//! apart) and their bounds checks, about a third of a step's instructions.
//! Here the cache's positions (`[[f32; D]; KVH]`, all heads of one
//! position) are taken a block at a time, by reference to the block's
//! positions, and shared by every head: a head's row is then a constant
//! offset into a position, so a whole block of a plain cache is one base
//! address and one bounds check for all heads.
//!
//! Each head runs the recipe of the parent module with the very functions of
//! the one-query path ([`single::take_block`], [`single::finish`]), in the
//! same order, so the bits are those of any other path; heads take block
//! `b` before any takes block `b + 1`, so the cache streams through memory
//! once, in storage order.

use core::ops::Range;

use crate::element::Element;
use crate::simd;
use crate::softmax::Online;

use super::{BLOCK, single};

/// The positions `0..len` of a ring's storage, in logical order
/// (`stored[start..]`, then `stored[..start]`: the oldest first; `start = 0`
/// for a plain cache), cut into blocks of [`BLOCK`] from position 0: the
/// whole blocks of the older part, the seam block (the older part's rest
/// completed by the newer part's first positions), the newer part's whole
/// blocks from there, and its rest.
///
/// Returns the two parts' whole blocks (keys and values of the older part,
/// then of the newer part) and, between them and after them, the seam and
/// the last block as [`gather`]ed blocks (`None` where empty).
#[allow(clippy::type_complexity)]
#[inline(always)]
fn blocks<'a, T>(
    keys: &'a [T],
    values: &'a [T],
    start: usize,
) -> [(Whole<'a, T>, Option<Gathered<'a, T>>); 2] {
    let start = start.min(keys.len()).min(values.len());
    let (k_newer, k_older) = keys.split_at(start);
    let (v_newer, v_older) = values.split_at(start);
    let (k_whole, k_rest) = k_older.as_chunks::<BLOCK>();
    let (v_whole, v_rest) = v_older.as_chunks::<BLOCK>();
    let older = (k_whole, v_whole);
    let (seam, taken) = if k_rest.is_empty() {
        (None, 0)
    } else {
        let seam = gather(k_rest.iter().chain(k_newer), v_rest.iter().chain(v_newer));
        (seam, (BLOCK - k_rest.len()).min(k_newer.len()))
    };
    let k_newer = k_newer.get(taken..).unwrap_or_default();
    let v_newer = v_newer.get(taken..).unwrap_or_default();
    let (k_whole, k_rest) = k_newer.as_chunks::<BLOCK>();
    let (v_whole, v_rest) = v_newer.as_chunks::<BLOCK>();
    let newer = (k_whole, v_whole);
    let last = gather(k_rest.iter(), v_rest.iter());
    [(older, seam), (newer, last)]
}

/// Whole blocks of keys and of values.
type Whole<'a, T> = (&'a [[T; BLOCK]], &'a [[T; BLOCK]]);

/// A block of key positions and one of value positions, of which the first
/// `n` count.
type Gathered<'a, T> = ([&'a T; BLOCK], [&'a T; BLOCK], usize);

/// Blocks of the key and value positions at the front of two iterators
/// (at most [`BLOCK`], as many as both have), the rest of each block
/// repeating its first position, and how many count; `None` if either is
/// empty.
#[inline(always)]
fn gather<'a, T>(
    mut keys: impl Iterator<Item = &'a T>,
    mut values: impl Iterator<Item = &'a T>,
) -> Option<Gathered<'a, T>> {
    let (k0, v0) = (keys.next()?, values.next()?);
    let (mut kb, mut vb) = ([k0; BLOCK], [v0; BLOCK]);
    let mut n = 1;
    for ((slot_k, slot_v), (k, v)) in kb.iter_mut().zip(&mut vb).skip(1).zip(keys.zip(values)) {
        (*slot_k, *slot_v) = (k, v);
        n += 1;
    }
    Some((kb, vb, n))
}

/// One decode step over a cache of compile-time shape ([`super::step`]
/// chooses where it runs: every `f32` cache on targets with SIMD registers,
/// every 16-bit cache on all targets), its keys and values stored as `E`
/// and widened where they are read: query head `h` of `q` (key/value head
/// `h / (H / KVH)`) over the cached positions, stored from `start` on as in
/// [`blocks`] (a ring's oldest first; `0` for a plain cache); writes `out`
/// and, with `lse`, head `h`'s log-sum-exp to `lse[h]`. `H` is a multiple
/// of `KVH` (the callers assert it at compile time).
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
    step_heads::<H, KVH, D, E>(keys, values, start, scale, q, out, lse, 0..H);
}

/// [`step`] for the query heads `heads` only (a part of `0..H`): their rows
/// of `out` and `lse` are written, the others untouched. Each head gets the
/// bits [`step`] gives it: a head's chains, states and output depend only on
/// its own query and its key/value head. (The heads of a part go one at a
/// time through the one-query path's functions, where [`step`] computes all
/// heads' scores side by side; the operations per head are the same.)
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn step_heads<const H: usize, const KVH: usize, const D: usize, E: Element>(
    keys: &[[[E; D]; KVH]],
    values: &[[[E; D]; KVH]],
    start: usize,
    scale: f32,
    q: &[[f32; D]; H],
    out: &mut [[f32; D]; H],
    mut lse: Option<&mut [f32; H]>,
    heads: Range<usize>,
) {
    let heads = heads.start.min(H)..heads.end.min(H);
    if !scale.is_finite() {
        let rows = out.get_mut(heads.clone()).unwrap_or_default();
        let lse = lse.as_deref_mut().and_then(|l| l.get_mut(heads.clone()));
        if super::nan_for_non_finite_scale(scale, rows.as_flattened_mut(), lse) {
            return;
        }
    }
    let mut heads = Heads {
        q,
        out,
        states: [Online::new(); H],
        scale,
        only: heads,
    };
    for ((k_whole, v_whole), gathered) in blocks(keys, values, start) {
        for (kb, vb) in k_whole.iter().zip(v_whole) {
            // Positions of one chunk: every row a constant offset from it.
            heads.take(&kb.each_ref(), &vb.each_ref(), BLOCK);
        }
        if let Some((kb, vb, n)) = gathered {
            heads.take_gathered(&kb, &vb, n);
        }
    }
    let only = heads.only.clone();
    let outs = heads.out.iter_mut().zip(&heads.states);
    for (out, state) in outs.skip(only.start).take(only.len()) {
        single::finish(out, state);
    }
    if let Some(lse) = lse {
        let slots = lse.iter_mut().zip(&heads.states);
        for (slot, state) in slots.skip(only.start).take(only.len()) {
            *slot = state.log_sum_exp();
        }
    }
}

/// The `H` query heads of a decode step and their running states.
struct Heads<'a, const H: usize, const D: usize> {
    q: &'a [[f32; D]; H],
    out: &'a mut [[f32; D]; H],
    states: [Online; H],
    scale: f32,
    /// The heads computed (`0..H` for a whole step).
    only: Range<usize>,
}

impl<const H: usize, const D: usize> Heads<'_, H, D> {
    /// Every head takes one block of positions (the first `n` count): head
    /// `h` the rows of key/value head `h / (H / KVH)`.
    #[inline(always)]
    fn take<const KVH: usize, E: Element>(
        &mut self,
        keys: &[&[[E; D]; KVH]; BLOCK],
        values: &[&[[E; D]; KVH]; BLOCK],
        n: usize,
    ) {
        let group = (H / KVH).max(1);
        if simd::VECTOR && self.only != (0..H) {
            // A part of the heads: four, two, then one at a time, their
            // chains side by side.
            let mut h = self.only.start;
            while h < self.only.end {
                h += match self.only.end - h {
                    4.. => self.side_by_side::<KVH, E, 4>(keys, values, n, h),
                    2 | 3 => self.side_by_side::<KVH, E, 2>(keys, values, n, h),
                    _ => self.side_by_side::<KVH, E, 1>(keys, values, n, h),
                };
            }
            return;
        }
        if !simd::VECTOR {
            // Lanes that are plain arrays: one head at a time through the
            // one-query path (its scalar score chains, computed for the `n`
            // keys that count only).
            let heads = self.q.iter().zip(self.out.iter_mut()).zip(&mut self.states);
            let heads = heads.enumerate().skip(self.only.start);
            for (h, ((q, out), state)) in heads.take(self.only.len()) {
                let g = (h / group).min(KVH.saturating_sub(1));
                let (k, v) = (rows(keys, g), rows(values, g));
                single::take_block(q, out, state, &k, &v, n, self.scale);
            }
            return;
        }
        // Every head's scores first, their chains side by side.
        let head_keys: [_; H] =
            core::array::from_fn(|h| rows(keys, (h / group).min(KVH.saturating_sub(1))));
        let scores = simd::dot_blocks(self.q.each_ref(), head_keys.each_ref(), self.scale);
        let heads = self
            .out
            .chunks_mut(group)
            .zip(self.states.chunks_mut(group));
        let mut scores = scores.iter();
        for (g, (outs, states)) in (0..KVH).zip(heads) {
            let values = rows(values, g);
            for (out, state) in outs.iter_mut().zip(states) {
                if let Some(&s) = scores.next() {
                    single::take_scores(out, state, s, &values, n);
                }
            }
        }
    }

    /// Heads `first..first + P` (all below `H`) take one block, their
    /// scores side by side as in [`take`](Self::take); returns `P`.
    #[inline(always)]
    fn side_by_side<const KVH: usize, E: Element, const P: usize>(
        &mut self,
        keys: &[&[[E; D]; KVH]; BLOCK],
        values: &[&[[E; D]; KVH]; BLOCK],
        n: usize,
        first: usize,
    ) -> usize {
        let group = (H / KVH).max(1);
        let last = H.saturating_sub(1);
        let kv_head = |h: usize| (h / group).min(KVH.saturating_sub(1));
        let qs: [&[f32; D]; P] = core::array::from_fn(|i| &self.q[(first + i).min(last)]);
        let head_keys: [_; P] = core::array::from_fn(|i| rows(keys, kv_head(first + i)));
        let scores = simd::dot_blocks(qs, head_keys.each_ref(), self.scale);
        for (i, s) in scores.into_iter().enumerate() {
            let h = first + i;
            if let (Some(out), Some(state)) = (self.out.get_mut(h), self.states.get_mut(h)) {
                single::take_scores(out, state, s, &rows(values, kv_head(h)), n);
            }
        }
        P
    }

    /// [`take`](Self::take) for the (at most two) blocks a step gathers,
    /// not inlined: a second copy of the heads' loop would only be code.
    #[inline(never)]
    fn take_gathered<const KVH: usize, E: Element>(
        &mut self,
        keys: &[&[[E; D]; KVH]; BLOCK],
        values: &[&[[E; D]; KVH]; BLOCK],
        n: usize,
    ) {
        self.take(keys, values, n);
    }
}

/// Key/value head `g`'s rows of a block of positions (`g < KVH`).
#[inline(always)]
fn rows<'a, const KVH: usize, const D: usize, E>(
    block: &[&'a [[E; D]; KVH]; BLOCK],
    g: usize,
) -> [&'a [E; D]; BLOCK] {
    block.map(|position| &position[g.min(KVH.saturating_sub(1))])
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    /// The blocks of a ring of `len` positions stored from `start`: the
    /// positions they hold (the first `n` of each) and their lengths, in
    /// order.
    fn walk(len: usize, start: usize) -> (Vec<usize>, Vec<usize>) {
        let stored: Vec<usize> = (0..len).collect();
        let mut positions = Vec::new();
        let mut lengths = Vec::new();
        let mut take = |block: &[&usize], values: &[&usize], n: usize| {
            assert_eq!(block, values, "keys and values walk together");
            positions.extend(block[..n].iter().copied());
            lengths.push(n);
        };
        for ((k_whole, v_whole), gathered) in blocks(&stored, &stored, start) {
            for (kb, vb) in k_whole.iter().zip(v_whole) {
                take(&kb.each_ref(), &vb.each_ref(), BLOCK);
            }
            if let Some((kb, vb, n)) = gathered {
                take(&kb, &vb, n);
            }
        }
        (positions, lengths)
    }

    /// Every position once, oldest first, in blocks of `BLOCK` from logical
    /// position 0 (so only the last block is partial), for every length
    /// around a few blocks and every ring start.
    #[test]
    fn blocks_walk_the_ring_in_logical_order() {
        for len in 0..=4 * BLOCK + 3 {
            for start in 0..len.max(1) {
                let (positions, lengths) = walk(len, start);
                let logical: Vec<usize> = (start..len).chain(0..start).collect();
                assert_eq!(positions, logical, "len {len}, start {start}");
                let full = len / BLOCK;
                assert!(
                    lengths[..full].iter().all(|&n| n == BLOCK),
                    "len {len}, start {start}"
                );
                assert_eq!(
                    lengths[full..],
                    [len % BLOCK][..usize::from(len % BLOCK != 0)]
                );
            }
        }
    }
}
