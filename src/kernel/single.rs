//! One query at a time, lanes across keys: the path of a single decode
//! query, of the queries left over after the full tiles, and of every query
//! on targets without SIMD lanes.

use crate::element::Row;
use crate::layout::{KvHead, Width};
use crate::simd::{self, Block, Scores};
use crate::softmax::{Finish, Online, Rescale};

use super::{BLOCK, BOUNDED, bounded};

/// One query going through the kernel's recipe (see the parent module) a
/// block of keys at a time.
pub(crate) struct Lone<'a, 'o, W: Width> {
    q: &'a W::Row,
    out: &'o mut W::Row,
    visible: usize,
    kv: KvHead<'a, W>,
    state: Online,
}

impl<'a, 'o, W: Width> Lone<'a, 'o, W> {
    /// A query that sees keys `0..visible` of `kv`, its output row `out`.
    #[inline(always)]
    pub(crate) fn new(
        q: &'a W::Row,
        out: &'o mut W::Row,
        visible: usize,
        kv: KvHead<'a, W>,
    ) -> Self {
        Lone {
            q,
            out,
            visible,
            kv,
            state: Online::new(),
        }
    }

    /// Takes the block of keys from `start` (a multiple of [`BLOCK`]), if
    /// the query sees any of it.
    #[inline(always)]
    pub(crate) fn block(&mut self, start: usize, scale: f32) {
        if start >= self.visible {
            return;
        }
        let n = (self.visible - start).min(BLOCK);
        // Slots past `n` repeat the first row; `n` keeps them out of the sums.
        let Some((keys, values)) = self.kv.block(start, n) else {
            return;
        };
        take_block(self.q, self.out, &mut self.state, &keys, &values, n, scale);
    }

    /// Writes the output (`acc / l`, or 0 if no key was seen) and returns
    /// the final state.
    #[inline(always)]
    pub(crate) fn finish(self) -> Online {
        finish(self.out, &self.state);
        self.state
    }

    /// Number of keys the query sees.
    #[inline(always)]
    pub(crate) fn visible(&self) -> usize {
        self.visible
    }
}

/// The recipe for one query that sees keys `0..visible` of `kv`; writes
/// `out` and returns the final state.
#[inline(always)]
pub(crate) fn attend<W: Width>(
    q: &W::Row,
    out: &mut W::Row,
    visible: usize,
    kv: KvHead<'_, W>,
    scale: f32,
) -> Online {
    let mut lone = Lone::new(q, out, visible, kv);
    let mut start = 0;
    while start < visible {
        lone.block(start, scale);
        start += BLOCK;
    }
    lone.finish()
}

/// The recipe for several lone queries at once, block by block: every
/// query takes block `b` before any takes block `b + 1`. Each query's
/// operations are those of [`attend`], in the same order, so the bits are
/// the same; what changes is the order of memory accesses. A decode step's
/// queries (one per head) then read the keys and values of all their heads
/// position block by position block, a front moving through memory, instead
/// of one head's rows (every `kv_heads`-th row) over the whole cache at a
/// time.
#[inline(always)]
pub(crate) fn attend_interleaved<W: Width, const T: usize>(
    lones: [Option<Lone<'_, '_, W>>; T],
    scale: f32,
) -> [Online; T] {
    let mut lones = lones;
    let last = lones.iter().flatten().map(Lone::visible).max().unwrap_or(0);
    let mut start = 0;
    while start < last {
        for lone in lones.iter_mut().flatten() {
            lone.block(start, scale);
        }
        start += BLOCK;
    }
    lones.map(|lone| lone.map_or(Online::new(), Lone::finish))
}

/// Steps 1–4 of the recipe for one query (`q`, its accumulator `out` and
/// its state) and one block of keys and values, of which the first `n`
/// count (slots past them are masked).
#[inline(always)]
pub(crate) fn take_block<R, K, V>(
    q: &R,
    out: &mut R,
    state: &mut Online,
    keys: &Block<'_, K>,
    values: &Block<'_, V>,
    n: usize,
    scale: f32,
) where
    R: ?Sized + AsRef<[f32]> + AsMut<[f32]>,
    K: ?Sized + Row,
    V: ?Sized + Row,
{
    let scores = simd::dot_block(q, keys, n, scale);
    take_scores(out, state, scores, values, n);
}

/// Steps 1–4 of the recipe for one query, its block's scores computed
/// (the first `n` count; the others are masked here).
#[inline(always)]
pub(crate) fn take_scores<R: ?Sized + AsMut<[f32]>, V: ?Sized + Row>(
    out: &mut R,
    state: &mut Online,
    scores: Scores,
    values: &Block<'_, V>,
    n: usize,
) {
    let scores = scores.masked(n);
    if BOUNDED {
        bounded::take_scores(out, state, scores, values, n);
    } else {
        take_scores_branching(out, state, scores, values, n);
    }
}

/// Steps 1–4 with the branches that skip work: no rescale when the
/// maximum does not grow, no value update before the state starts, masked
/// keys skipped ([`simd::axpy_block`]). `scores` are masked past `n`.
#[inline(always)]
pub(crate) fn take_scores_branching<R: ?Sized + AsMut<[f32]>, V: ?Sized + Row>(
    out: &mut R,
    state: &mut Online,
    scores: Scores,
    values: &Block<'_, V>,
    n: usize,
) {
    match state.enter_block(scores.max()) {
        Rescale::Start => out.as_mut().fill(-0.0),
        Rescale::Keep => {}
        Rescale::By(alpha) => simd::scale(out.as_mut(), alpha),
    }
    let p = state.weights(scores);
    if state.started() {
        simd::axpy_block(out, p, scores, values, n);
    }
}

/// The end of the recipe: `out = acc / l`; NaN for a query that saw a NaN
/// score and no score above `-inf`; 0 for one that saw no key or only
/// masked (`-inf`) ones.
#[inline(always)]
pub(crate) fn finish<R: ?Sized + AsMut<[f32]>>(out: &mut R, state: &Online) {
    if BOUNDED {
        bounded::finish(out, state);
    } else {
        finish_branching(out, state);
    }
}

/// [`finish`] by a branch on the state's outcome.
#[inline(always)]
pub(crate) fn finish_branching<R: ?Sized + AsMut<[f32]>>(out: &mut R, state: &Online) {
    match state.finish() {
        Finish::Divide(l) => simd::div(out.as_mut(), l),
        Finish::Nan => out.as_mut().fill(f32::NAN),
        Finish::Zero => out.as_mut().fill(0.0),
    }
}
