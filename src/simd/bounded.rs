//! The branch-free forms of the kernel's data-dependent steps, for the
//! bounded-time build (see `kernel::bounded`): every choice is a select on
//! bits and every value is computed whether or not it is kept, so that the
//! instructions a block executes do not depend on its scores or values.
//! Each gives the bits of the step it stands for in `simd` and `softmax`.

use super::{Block, LANE_WIDTH, Lane, Scores, axpy_tail, chunk};
use crate::element::{Element, Row};

/// All ones if `c`, else zero: a mask built by arithmetic, not a branch.
#[inline(always)]
fn mask(c: bool) -> u32 {
    u32::from(c).wrapping_neg()
}

/// `if c { a } else { b }`, computed on the bits.
#[inline(always)]
pub(crate) fn select(c: bool, a: f32, b: f32) -> f32 {
    let m = mask(c);
    f32::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
}

/// [`select`] on whole lanes.
#[inline(always)]
fn select_lanes(c: bool, a: Lane, b: Lane) -> Lane {
    Lane::splat(f32::from_bits(mask(c))).select(a, b)
}

impl Scores {
    /// The largest score, ignoring NaN (`-inf` if none): a fold of
    /// compare-and-select in lane order (a NaN never compares greater).
    /// The value of [`Scores::max`], up to the sign of a zero maximum,
    /// which no weight, rescale factor or log-sum-exp depends on.
    #[inline(always)]
    pub(crate) fn max_bounded(self) -> f32 {
        self.0
            .to_array()
            .iter()
            .fold(f32::NEG_INFINITY, |m, &s| select(s > m, s, m))
    }

    /// The block's weights: [`Scores::exp_minus`]`(m)` once the state has
    /// `started`, [`Scores::nan_or_zero`] before; both computed, one kept.
    #[inline(always)]
    pub(crate) fn weights_bounded(self, m: f32, started: bool) -> Scores {
        Scores(select_lanes(
            started,
            self.exp_minus(m).0,
            self.nan_or_zero().0,
        ))
    }
}

/// `acc[i] = −0.0` for the block that starts the state, else
/// `acc[i]·alpha` (`alpha = 1` when the maximum did not grow, which
/// changes no value): the rescale, never skipped.
#[inline(always)]
pub(crate) fn rescale_or_start(acc: &mut [f32], alpha: f32, start: bool) {
    for a in acc {
        *a = select(start, -0.0, *a * alpha);
    }
}

/// [`axpy_block`](super::axpy_block) with every one of the block's first
/// `n` keys computed and kept only if `started` and its score is not
/// `-inf`: the same operations, in the same order, on the keys kept, so the
/// same bits. A masked key's value is loaded but never enters the
/// accumulator (a NaN there changes nothing).
#[inline(always)]
pub(crate) fn axpy_block_bounded<R: ?Sized + AsMut<[f32]>, V: ?Sized + Row>(
    acc: &mut R,
    p: Scores,
    scores: Scores,
    values: &Block<'_, V>,
    n: usize,
    started: bool,
) {
    let n = n.min(LANE_WIDTH);
    let (p, s) = (p.0.to_array(), scores.0.to_array());
    let read = s.map(|sj| started & (sj != f32::NEG_INFINITY));
    let acc = acc.as_mut();
    let whole = acc.len() / LANE_WIDTH;
    let (acc_lanes, acc_tail) = acc.as_chunks_mut::<LANE_WIDTH>();
    for (c, a) in acc_lanes.iter_mut().enumerate() {
        let mut sum = Lane::from(*a);
        for ((&pj, &rj), v) in p.iter().zip(&read).zip(values).take(n) {
            let next = Lane::splat(pj).mul_add(Lane::from(chunk(v.elems(), c)), sum);
            sum = select_lanes(rj, next, sum);
        }
        *a = sum.to_array();
    }
    let len = acc_tail.len();
    if len > 0 {
        for ((&pj, &rj), v) in p.iter().zip(&read).zip(values).take(n) {
            let mut buf = [0.0; LANE_WIDTH];
            let v_tail = v.elems().get(whole * LANE_WIDTH..).unwrap_or_default();
            let mut next = [0.0; LANE_WIDTH];
            // A tail is shorter than a lane: `get_mut` always succeeds.
            let Some(next) = next.get_mut(..len) else {
                return;
            };
            for (x, &a) in next.iter_mut().zip(acc_tail.iter()) {
                *x = a;
            }
            axpy_tail(next, pj, Element::as_f32(v_tail, &mut buf));
            for (a, &x) in acc_tail.iter_mut().zip(next.iter()) {
                *a = select(rj, x, *a);
            }
        }
    }
}

/// `acc[i] = acc[i] / l` if the state `started`, else `otherwise` (NaN
/// or 0): the quotient computed either way. The mask goes through
/// `black_box`, once per row: seen through, the select becomes a branch
/// around the divisions (LLVM does that on the Cortex-M4F).
#[inline(always)]
pub(crate) fn finish_bounded(acc: &mut [f32], started: bool, l: f32, otherwise: f32) {
    let m = core::hint::black_box(mask(started));
    for a in acc {
        *a = f32::from_bits(((*a / l).to_bits() & m) | (otherwise.to_bits() & !m));
    }
}
