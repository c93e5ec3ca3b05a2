//! The recipe's steps 1–4 and its end for one query, without a branch on
//! the data: the bounded-time build's form of [`single::take_scores`] and
//! [`single::finish`] (which call these when the `bounded-time` feature is
//! on).
//!
//! The same operations as the recipe, in the same order, on the values it
//! keeps, so the same bits (a NaN's sign and payload aside, which Rust
//! leaves unspecified); what changes is that nothing is skipped:
//! - the rescale runs on every block, by `exp(m − b)` when the block raises
//!   the maximum and by exactly 1 otherwise (the first block that starts
//!   the state sets the accumulator to `-0.0` by a select);
//! - the maximum is a fold of compare-and-select;
//! - both the weights `exp(s − m)` and the before-the-start weights are
//!   computed, one kept by a select;
//! - every key of the block is multiplied into a candidate sum, kept by a
//!   select only if its score is not `-inf` and the state has started, so
//!   a masked key's value (NaN, `±∞`) still never changes the output;
//! - the end computes `acc / l` and selects it, NaN or 0.
//!
//! The loops run a number of times fixed by the shape (the block's key
//! count, the head dimension), so a call executes the same instructions
//! for any scores and values: QEMU's instruction counts prove it on the
//! microcontrollers with a floating-point unit (`.ci/footprint`).
//!
//! [`single::take_scores`]: super::single::take_scores
//! [`single::finish`]: super::single::finish

use crate::element::Row;
use crate::simd::{self, Block, Scores};
use crate::softmax::Online;

/// Steps 1–4 of the recipe for one query, its block's scores computed and
/// masked past the block's `n` keys.
#[inline(always)]
pub(crate) fn take_scores<R: ?Sized + AsMut<[f32]>, V: ?Sized + Row>(
    out: &mut R,
    state: &mut Online,
    scores: Scores,
    values: &Block<'_, V>,
    n: usize,
) {
    let (start, alpha) = state.enter_block_bounded(scores.max_bounded());
    simd::rescale_or_start(out.as_mut(), alpha, start);
    let p = state.weights_bounded(scores);
    simd::axpy_block_bounded(out, p, scores, values, n, state.started());
}

/// The end of the recipe: `out = acc / l`, or NaN or 0 (see
/// [`single::finish`](super::single::finish)).
#[inline(always)]
pub(crate) fn finish<R: ?Sized + AsMut<[f32]>>(out: &mut R, state: &Online) {
    let (started, l, otherwise) = state.finish_bounded();
    simd::finish_bounded(out.as_mut(), started, l, otherwise);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::single;
    use crate::simd::LANE_WIDTH;
    use std::vec::Vec;

    /// xorshift64*: deterministic cases without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Uniform in `[-1, 1)`.
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
    }

    /// The kinds of row the bounded-time proof runs, and a mixture.
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Ordinary,
        Large,
        Nans,
        AllMasked,
        Rising,
        Mixed,
    }

    const KINDS: [Kind; 6] = [
        Kind::Ordinary,
        Kind::Large,
        Kind::Nans,
        Kind::AllMasked,
        Kind::Rising,
        Kind::Mixed,
    ];

    fn score(rng: &mut Rng, kind: Kind, block: usize, j: usize) -> f32 {
        match kind {
            Kind::Ordinary => 8.0 * rng.unit(),
            Kind::Large => 3.0e38 * rng.unit(),
            Kind::Nans if rng.below(3) == 0 => f32::NAN,
            Kind::Nans => 4.0 * rng.unit(),
            Kind::AllMasked => f32::NEG_INFINITY,
            Kind::Rising => (block * LANE_WIDTH + j) as f32 * 3.0 + rng.unit(),
            Kind::Mixed => match rng.below(8) {
                0 => f32::NAN,
                1 | 2 => f32::NEG_INFINITY,
                3 => f32::INFINITY,
                4 => 1.0e30 * rng.unit(),
                5 => 0.0,
                _ => 8.0 * rng.unit(),
            },
        }
    }

    /// One row of blocks through the branching steps and the branch-free
    /// ones from the same state and the same stale accumulator: the same
    /// output bits and the same log-sum-exp (any NaN equal to any NaN).
    fn same_bits(rng: &mut Rng, kind: Kind) {
        let d = 1 + rng.below(2 * LANE_WIDTH + 3);
        let keys = 1 + rng.below(4 * LANE_WIDTH);
        let scores: Vec<f32> = (0..keys)
            .map(|j| score(rng, kind, j / LANE_WIDTH, j % LANE_WIDTH))
            .collect();
        // Masked keys hold NaN or infinite values: they must change nothing.
        let values: Vec<Vec<f32>> = scores
            .iter()
            .map(|&s| {
                (0..d)
                    .map(|_| match (s == f32::NEG_INFINITY, rng.below(2)) {
                        (true, 0) => f32::NAN,
                        (true, _) => f32::INFINITY,
                        _ => 4.0 * rng.unit(),
                    })
                    .collect()
            })
            .collect();
        let stale = f32::from_bits(0x7fa0_0001); // a signalling NaN
        let mut branching = std::vec![stale; d];
        let mut bounded = branching.clone();
        let (mut a, mut b) = (Online::new(), Online::new());
        if rng.below(4) == 0 {
            // A sink logit, as a scored call starts it.
            let sink = 2.0 * rng.unit();
            branching.fill(0.0);
            bounded.fill(0.0);
            (a, b) = (Online::entered(sink, 1.0), Online::entered(sink, 1.0));
        }
        for start in (0..keys).step_by(LANE_WIDTH) {
            let n = (keys - start).min(LANE_WIDTH);
            let block: [&[f32]; LANE_WIDTH] =
                core::array::from_fn(|j| values[start + if j < n { j } else { 0 }].as_slice());
            let lanes: [f32; LANE_WIDTH] =
                core::array::from_fn(|j| scores.get(start + j).copied().unwrap_or(0.0));
            let s = Scores::from_array(lanes).masked(n);
            single::take_scores_branching(&mut branching[..], &mut a, s, &block, n);
            take_scores(&mut bounded[..], &mut b, s, &block, n);
        }
        single::finish_branching(&mut branching[..], &a);
        finish(&mut bounded[..], &b);
        // Rust leaves a NaN result's sign and payload unspecified (and the
        // optimiser may commute an addition), so every NaN counts as one.
        let bits = |x: &[f32]| {
            x.iter()
                .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            bits(&branching),
            bits(&bounded),
            "{kind:?}, d = {d}, scores {scores:?}"
        );
        let (la, lb) = (a.log_sum_exp(), b.log_sum_exp());
        assert!(
            la.to_bits() == lb.to_bits() || (la.is_nan() && lb.is_nan()),
            "{kind:?}: log-sum-exp {la} against {lb}, scores {scores:?}"
        );
    }

    /// The branch-free steps give the branching steps' bits on every kind
    /// of row: ordinary, large scores, NaNs, all masked, a rising maximum,
    /// and mixtures of `±∞`, NaN, zeros and huge values.
    #[test]
    fn branch_free_steps_give_the_branching_bits() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            for kind in KINDS {
                same_bits(&mut rng, kind);
            }
        }
    }
}
