//! What a scored call does to a block's scores before its softmax, on
//! lanes: soft-capping, additive biases, ALiBi and a key mask (see
//! `kernel::scored` for the order they run in).

use super::{LANE_INDEX, LANE_WIDTH, Lane, Scores};

/// Up to a block's worth of values from `from`, `fill` past its end.
#[inline(always)]
fn load(from: &[f32], fill: f32) -> Lane {
    let mut lanes = [fill; LANE_WIDTH];
    for (l, &x) in lanes.iter_mut().zip(from) {
        *l = x;
    }
    Lane::from(lanes)
}

impl Scores {
    /// `cap·tanh(s / cap)` per lane (`cap` finite and positive): `±∞`
    /// becomes `±cap`, NaN stays NaN.
    #[inline(always)]
    pub(crate) fn soft_capped(self, cap: f32) -> Scores {
        let cap = Lane::splat(cap);
        Scores(cap * super::tanh(self.0 / cap))
    }

    /// `s + bias[j]` for the block's keys (`bias` holds the block's first
    /// keys; lanes past its end add `+0.0`, which changes no finite score
    /// and is masked anyway).
    #[inline(always)]
    pub(crate) fn plus(self, bias: &[f32]) -> Scores {
        Scores(self.0 + load(bias, 0.0))
    }

    /// `s + slope·(j − i)` with `j = first + lane` the key's position and
    /// `i` the query's: ALiBi's `−slope·(i − j)`. The distance is exact up to
    /// `2²⁴` positions, so the bias is one correctly rounded product.
    #[inline(always)]
    pub(crate) fn plus_alibi(self, slope: f32, first: usize, i: usize) -> Scores {
        // `first ≤ i` for every block a query sees; the lanes past `i` are
        // masked by the caller.
        let back = i.saturating_sub(first) as f32;
        let distance = Lane::from(LANE_INDEX) - Lane::splat(back);
        Scores(self.0 + Lane::splat(slope) * distance)
    }

    /// Scores whose key is not kept (`keep[j]` false) become `-inf`, a mask:
    /// their values are never read. Lanes past `keep`'s end are kept (the
    /// caller masks them by the block's length).
    #[inline(always)]
    pub(crate) fn kept(self, keep: &[bool]) -> Scores {
        let mut lanes = [1.0f32; LANE_WIDTH];
        for (l, &k) in lanes.iter_mut().zip(keep) {
            *l = if k { 1.0 } else { 0.0 };
        }
        let keep = Lane::from(lanes).simd_eq(Lane::splat(1.0));
        Scores(keep.select(self.0, Lane::splat(f32::NEG_INFINITY)))
    }
}
