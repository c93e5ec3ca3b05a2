//! The integer path's exponential: a softmax weight `2^(−t/2^16)` in
//! `Q16` (so `2^16` is 1) for a non-negative exponent `t` in `Q16`, with
//! one table lookup, one linear interpolation and one rounding shift.
//!
//! `t = n·2^16 + f` with `f < 2^16`: the weight is `2^(−f/2^16)` from
//! [`TABLE`] (129 samples of `2^(−x)` on `[0, 1]`, interpolated linearly:
//! at most 0.24 units of `2^−16` from the curve, plus the rounding of the
//! samples and of the interpolation: 1.24 units in all), halved `n` times by
//! one rounding shift. Exponents of 17 or more give 0: such a weight is below half a unit.

/// `round(2^16·2^(−i/128)) − 2^15` for `i = 0..=128`: the table runs from
/// `2^16` (1) down to `2^15` (one half), stored as its excess over `2^15`
/// so that every entry fits `u16`.
const TABLE: [u16; 129] = [
    32768, 32414, 32062, 31712, 31364, 31017, 30673, 30330, 29989, 29651, 29313, 28978, 28645,
    28313, 27983, 27655, 27329, 27004, 26681, 26360, 26041, 25723, 25408, 25093, 24781, 24470,
    24161, 23854, 23548, 23244, 22941, 22640, 22341, 22043, 21747, 21453, 21160, 20869, 20579,
    20291, 20005, 19720, 19436, 19154, 18874, 18595, 18317, 18042, 17767, 17494, 17223, 16953,
    16684, 16417, 16152, 15887, 15625, 15363, 15103, 14845, 14588, 14332, 14078, 13825, 13573,
    13323, 13074, 12826, 12580, 12335, 12091, 11849, 11608, 11369, 11130, 10893, 10657, 10423,
    10190, 9958, 9727, 9497, 9269, 9042, 8816, 8592, 8368, 8146, 7925, 7705, 7487, 7269, 7053,
    6838, 6624, 6412, 6200, 5989, 5780, 5572, 5365, 5159, 4954, 4750, 4548, 4346, 4146, 3947, 3748,
    3551, 3355, 3160, 2966, 2773, 2581, 2390, 2200, 2011, 1823, 1637, 1451, 1266, 1082, 899, 718,
    537, 357, 178, 0,
];

use super::branchless::at_least;
use crate::kernel::BOUNDED;

/// The weight of an exponent `t` (in `Q16`) is 0 from `LIMIT` on.
pub(crate) const LIMIT: u32 = 17 << 16;

/// `2^(−t/2^16)` in `Q16`, in `0..=2^16`: `round(p / 2^n)` (halves up) of
/// the interpolated `p = 2^(16 − f/2^16)` for `t = n·2^16 + f`; 0 for
/// `t ≥ LIMIT`.
#[inline(always)]
#[must_use]
pub(crate) fn weight(t: u32) -> u32 {
    if BOUNDED {
        // Without a branch (see `branchless`): an exponent past the limit
        // is computed as 0 and its weight masked to 0.
        let kept = !at_least(t, LIMIT);
        return interpolated(t & kept) & kept;
    }
    if t >= LIMIT {
        return 0;
    }
    interpolated(t)
}

/// [`weight`] of an exponent below [`LIMIT`].
#[inline(always)]
fn interpolated(t: u32) -> u32 {
    let n = t >> 16;
    let f = t & 0xFFFF;
    // 128 intervals of 2^9 steps of f.
    let i = (f >> 9) as usize;
    let r = f & 0x1FF;
    let at = |i: usize| u32::from(TABLE.get(i).copied().unwrap_or(0)) + (1 << 15);
    let (a, b) = (at(i), at(i + 1));
    // a ≥ b: the table falls. (a − b)·r < 2^9·2^9.
    let p = a - (((a - b) * r + (1 << 8)) >> 9);
    // Half of 2^n (0 for n = 0) added before the shift: round halves up.
    (p + ((1 << n) >> 1)) >> n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_rounded_power_of_two() {
        for (i, &entry) in TABLE.iter().enumerate() {
            let want = (65536.0 * 2f64.powf(-(i as f64) / 128.0)).round() - 32768.0;
            assert_eq!(f64::from(entry), want, "entry {i}");
        }
    }

    /// Against `2^16·2^(−t/2^16)` in f64, over every fraction of the first
    /// octave and a grid of the rest: within the 1.24 units of `2^−16` the
    /// module docs derive (the interpolation's 0.24, the samples' and the
    /// result's roundings). A table of 33 samples breaks it.
    #[test]
    fn weights_are_within_a_unit_of_the_power_of_two() {
        let mut worst = 0.0f64;
        let mut t = 0u32;
        while t < LIMIT + (1 << 16) {
            let want = 65536.0 * 2f64.powf(-f64::from(t) / 65536.0);
            let got = f64::from(weight(t));
            let err = if t >= LIMIT { got } else { (got - want).abs() };
            worst = worst.max(err);
            assert!(err <= 1.24, "t = {t}: {got} vs {want}");
            t += if t < 1 << 16 { 1 } else { 97 };
        }
        assert!(worst > 0.3, "{worst}");
    }

    #[test]
    fn weights_fall_with_the_exponent() {
        let mut prev = weight(0);
        assert_eq!(prev, 1 << 16);
        for t in (1..LIMIT + 10).step_by(7) {
            let w = weight(t);
            assert!(w <= prev, "t = {t}");
            prev = w;
        }
        assert_eq!(weight(LIMIT), 0);
        assert_eq!(weight(u32::MAX), 0);
    }
}
