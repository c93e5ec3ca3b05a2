//! Stable softmax: on a whole row, and online (one block of scores at a time).

use crate::math;
use crate::simd::{self, Scores};

/// Numerically stable softmax of a fixed row, in place.
///
/// Computes `row[j] = exp(row[j] − m) / Σ_k exp(row[k] − m)` with `m` the
/// row's maximum, so no `exp` overflows whatever the inputs' magnitude; the
/// largest entry gets `exp(0) = 1` before normalisation, so the sum is ≥ 1.
///
/// Results are bit-identical to [`reference::softmax`](crate::reference::softmax)
/// (same exp, same summation order; the maximum is order-independent).
///
/// Non-finite values: a NaN anywhere makes the whole row NaN; a `+inf` makes
/// the row NaN (`inf − inf`). A `-inf` entry is a mask: its weight is
/// exactly 0 and it takes no part in the sums, and a row of nothing but
/// `-inf` entries is all 0 (as an attention row that sees no key). An empty
/// row is left as it is.
///
/// ```
/// let mut row = [1.0f32, 2.0, 3.0];
/// microattn::softmax(&mut row);
/// assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert!(row[0] < row[1] && row[1] < row[2]);
///
/// // Huge scores do not overflow: the maximum is subtracted first.
/// let mut big = [1.0e4f32, 1.0e4 - 1.0];
/// microattn::softmax(&mut big);
/// assert!(big[0].is_finite() && big[0] > big[1]);
/// ```
#[inline]
pub fn softmax<const N: usize>(row: &mut [f32; N]) {
    softmax_slice(row);
}

/// [`softmax`] on a row of any length (the kernels call it on causal prefixes).
pub(crate) fn softmax_slice(row: &mut [f32]) {
    let m = simd::max(row);
    let mut sum = 0.0f32;
    let mut any = false;
    for x in row.iter_mut() {
        if *x == f32::NEG_INFINITY {
            *x = 0.0;
        } else {
            any = true;
            *x = math::exp(*x - m);
            sum += *x;
        }
    }
    if any {
        simd::div(row, sum);
    }
}

/// Running state of an online softmax over one row of scores, seen a block at
/// a time: the running maximum `m` and the running sum `l = Σ exp(s − m)`.
///
/// The weighted accumulator that goes with it lives with the caller; when a
/// block raises the maximum, [`Online::enter_block`] returns the factor
/// `exp(m_old − m_new)` by which the caller rescales that accumulator (and
/// `l` is rescaled here). No rescale happens when the maximum does not grow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Online {
    /// Running maximum; `-inf` until a block has a score above `-inf` (the
    /// state has not started: no weight is taken relative to it).
    m: f32,
    /// Running sum of weights; before the start `+0.0`, or NaN once a NaN
    /// score was seen.
    l: f32,
}

/// What the caller must do to its accumulator before adding a block.
pub(crate) enum Rescale {
    /// The first block with a score above `-inf`: the accumulator must start
    /// from `-0.0` (so that adding `1·v` gives `v` exactly, including `-0.0`).
    Start,
    /// Keep the accumulator as it is (and add nothing to it before the
    /// start: [`Online::started`]).
    Keep,
    /// Multiply the accumulator by this factor in `[0, 1)`.
    By(f32),
}

/// How a row's output is finished.
pub(crate) enum Finish {
    /// Divide the accumulator by the running sum `l`.
    Divide(f32),
    /// The row saw a NaN score and never a score above `-inf`: NaN.
    Nan,
    /// The row saw no key, or only keys whose score is `-inf` (masked, see
    /// `reference`'s rule): exactly 0.
    Zero,
}

impl Online {
    /// No score seen yet.
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Online {
            m: f32::NEG_INFINITY,
            l: 0.0,
        }
    }

    /// The state after a tile computed on lanes: running maximum `m` and
    /// sum `l`.
    #[inline(always)]
    pub(crate) const fn entered(m: f32, l: f32) -> Self {
        Online { m, l }
    }

    /// Whether a score above `-inf` was seen (weights are relative to `m`).
    #[inline(always)]
    pub(crate) fn started(&self) -> bool {
        self.m > f32::NEG_INFINITY
    }

    /// Takes the maximum of the next block (NaN-ignoring, see `simd::max`)
    /// and says how to treat the accumulator. A block whose maximum is `-inf`
    /// does not start the state: its keys are masked.
    #[inline(always)]
    pub(crate) fn enter_block(&mut self, block_max: f32) -> Rescale {
        if block_max > self.m {
            if self.started() {
                let alpha = simd::exp_one(self.m - block_max);
                self.m = block_max;
                self.l *= alpha;
                Rescale::By(alpha)
            } else {
                self.m = block_max;
                Rescale::Start
            }
        } else {
            Rescale::Keep
        }
    }

    /// The unnormalised weights `exp(s − m)` of a block's scores under the
    /// current maximum (0 for masked lanes), added to the running sum in
    /// order. Before the start every score is `-inf` or NaN: the weights are
    /// 0, or NaN for a NaN score (which then poisons the row).
    #[inline(always)]
    pub(crate) fn weights(&mut self, scores: Scores) -> Scores {
        let p = if self.started() {
            scores.exp_minus(self.m)
        } else {
            scores.nan_or_zero()
        };
        self.l = p.add_in_order_to(self.l);
        p
    }

    /// [`enter_block`](Self::enter_block) without a branch on the data,
    /// for the bounded-time build: the rescale factor is computed for every
    /// block and applied to `l` (it is exactly 1 when the maximum does not
    /// grow or the state has not started, which changes no value). Returns
    /// whether this block starts the state (the accumulator becomes `-0.0`)
    /// and the factor for the accumulator otherwise.
    #[inline(always)]
    pub(crate) fn enter_block_bounded(&mut self, block_max: f32) -> (bool, f32) {
        let grows = block_max > self.m;
        let started = self.started();
        let alpha = simd::select(grows & started, simd::exp_one(self.m - block_max), 1.0);
        self.l *= alpha;
        self.m = simd::select(grows, block_max, self.m);
        (grows & !started, alpha)
    }

    /// [`weights`](Self::weights) without a branch on the data: both kinds
    /// of weight computed, the one for the state's phase kept.
    #[inline(always)]
    pub(crate) fn weights_bounded(&mut self, scores: Scores) -> Scores {
        let p = scores.weights_bounded(self.m, self.started());
        self.l = p.add_in_order_to(self.l);
        p
    }

    /// [`finish`](Self::finish) as values, for the bounded-time build:
    /// whether to divide, the divisor `l`, and the value of every output
    /// otherwise (NaN after a NaN score, else 0).
    #[inline(always)]
    pub(crate) fn finish_bounded(&self) -> (bool, f32, f32) {
        let otherwise = simd::select(self.l.is_nan(), f32::NAN, 0.0);
        (self.started(), self.l, otherwise)
    }

    /// How the row's output is finished.
    #[inline(always)]
    pub(crate) fn finish(&self) -> Finish {
        if self.started() {
            Finish::Divide(self.l)
        } else if self.l.is_nan() {
            Finish::Nan
        } else {
            Finish::Zero
        }
    }

    /// `m + ln l`, the log of the sum of `exp` of every score seen (`-inf`
    /// if none was seen, or all were `-inf`; NaN if a NaN was summed).
    #[inline]
    pub(crate) fn log_sum_exp(&self) -> f32 {
        self.m + math::ln(self.l)
    }
}
