//! `exp` on lanes, specialised for softmax weights.
//!
//! Softmax only ever takes `exp(s − m)` with `m` the running maximum, so the
//! argument is `≤ 0` (or NaN, or `-inf` for a masked lane). That removes the
//! overflow side of a general `exp` and leaves:
//!
//! 1. `n = round(x·log₂e)`, by adding and subtracting `1.5·2²³` (round to
//!    nearest even, on every backend), with `x` first clamped to `≥ −88` so
//!    that `n ≥ −127`;
//! 2. `r = x − n·ln2` in two steps (Cody–Waite: `n·LN2_HI` is exact, so
//!    `|r| ≤ ln2/2` with an error far below an ULP of the result);
//! 3. `eʳ` by its Taylor polynomial to degree 7, as `1 + (r + r²·t(r))`
//!    with `t` by Horner (fused where the target has FMA): the remainder is
//!    below `r⁸/8! ≤ 5.3e-9`, under 0.05 ULP, and the rounding is mostly the
//!    last two additions;
//! 4. `2ⁿ` from the exponent bits `n + 127` (so `n = −127` gives exactly 0),
//!    times `eʳ`;
//! 5. a result below `f32::MIN_POSITIVE` is flushed to exactly 0: no weight
//!    is ever subnormal, so a weight is 0 exactly when `x < ln(MIN_POSITIVE)
//!    ≈ −87.34` (up to the last ULP at the threshold).
//!
//! `exp(0) = 1` exactly (`n = 0`, `r = 0`), `exp(-inf) = 0`, NaN stays NaN.
//! Measured error against the f64 `exp` over every f32 in `[ln(MIN_POSITIVE),
//! 0]`: see [`MAX_ULP`] (the exhaustive test is `#[ignore]`d; a dense grid of
//! `[−104, 0]` runs with every `cargo test`).
//!
//! It is about half the instructions of `wide`'s general `exp`, which also
//! handles overflow, infinities and subnormal results with extra selects.

use super::{IntLane, Lane};

/// The error bound, in ULP of the exact result, that the tests hold this
/// `exp` to on `[ln(f32::MIN_POSITIVE), 0]`.
#[cfg(test)]
pub(crate) const MAX_ULP: f64 = 1.1;

/// `1.5·2²³`: adding it rounds a float of magnitude `< 2²²` to an integer,
/// which then sits in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;
/// `ln 2` split so that `n·LN2_HI` is exact for `|n| ≤ 2⁸` (`LN2_HI` has 9
/// significant bits) and `LN2_HI + LN2_LO` is `ln 2` to about 2⁻³³.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this `n` would drop under −127; `exp(−88)` is already 0 after the
/// flush.
const MIN_X: f32 = -88.0;

/// `e^x` for `x ≤ 0` (or NaN), lane by lane; larger `x` up to 88 is
/// accurate too but never used. See the module docs for the method and the
/// bound.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: Lane) -> Lane {
    let x = x.simd_lt(Lane::splat(MIN_X)).select(Lane::splat(MIN_X), x);
    let shifted = x.mul_add(Lane::splat(core::f32::consts::LOG2_E), Lane::splat(ROUND));
    let n = shifted - Lane::splat(ROUND);
    let r = n.mul_neg_add(Lane::splat(LN2_HI), x);
    let r = n.mul_neg_add(Lane::splat(LN2_LO), r);
    // Taylor to degree 7 as 1 + (r + r²·(1/2 + r/6 + … + r⁵/5040)): the
    // small tail is summed first, so the two last roundings (of `y` and of
    // `1 + y`) dominate the error.
    let mut tail = Lane::splat(1.0 / 5040.0);
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5] {
        tail = tail.mul_add(r, Lane::splat(c));
    }
    let y = tail.mul_add(r * r, r);
    let p = y + Lane::splat(1.0);
    // The low bits of `shifted` hold `n` (offset by ROUND's own bits):
    // rebias them to the exponent field of 2ⁿ.
    let bits: IntLane = wide::bytemuck::cast(shifted);
    let rebias = IntLane::splat(127 - ROUND.to_bits() as i32);
    let two_n: Lane = wide::bytemuck::cast((bits + rebias) << 23);
    let y = p * two_n;
    y.simd_lt(Lane::splat(f32::MIN_POSITIVE))
        .select(Lane::ZERO, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp1(x: f32) -> f32 {
        exp_nonpositive(Lane::splat(x)).to_array()[0]
    }

    /// Distance from `got` to the exact `want`, in ULP of `want` rounded to
    /// f32.
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        let ulp = f64::from(f32::from_bits(w.to_bits() + 1) - w);
        (f64::from(got) - want).abs() / ulp
    }

    /// Every `step`-th f32 of `[lo, 0]` (walking the bit patterns down from
    /// `-0.0` to `lo`): the worst ULP error where the exact result is a
    /// normal f32, and every value below the threshold exactly 0.
    fn sweep(lo: f32, step: u32) -> (f64, f32) {
        let threshold = f64::from(f32::MIN_POSITIVE).ln();
        let mut worst = (0.0f64, 0.0f32);
        let mut bits = 0x8000_0000u32;
        while bits <= lo.to_bits() {
            let x = f32::from_bits(bits);
            let got = exp1(x);
            let exact = f64::from(x).exp();
            if exact >= f64::from(f32::MIN_POSITIVE) {
                let err = ulps(got, exact);
                if err > worst.0 {
                    worst = (err, x);
                }
            } else if f64::from(x) < threshold - 1e-6 {
                assert_eq!(got.to_bits(), 0, "exp({x:e}) = {got:e}, not 0");
            } else {
                // Within rounding of the threshold: 0 or MIN_POSITIVE's neighbourhood.
                assert!(
                    got == 0.0 || got >= f32::MIN_POSITIVE,
                    "exp({x:e}) = {got:e}"
                );
            }
            bits = match bits.checked_add(step) {
                Some(b) => b,
                None => break,
            };
        }
        worst
    }

    /// A dense grid of `[−104, 0]`: every 97th f32 (about 11 million values,
    /// every binade), held to [`MAX_ULP`].
    #[test]
    fn exp_dense_grid_within_bound() {
        let (err, at) = sweep(-104.0, 97);
        std::eprintln!("worst on the grid: {err} ULP at {at:e}");
        assert!(err <= MAX_ULP, "{err} ULP at {at:e}");
    }

    /// Every f32 of `[−104, 0]` (about 1.1 billion values): run with
    /// `cargo test --release -- --ignored exp_every_f32`.
    #[test]
    #[ignore = "exhaustive: about a minute in release"]
    fn exp_every_f32_within_bound() {
        let (err, at) = sweep(-104.0, 1);
        std::eprintln!("worst: {err} ULP at {at:e}");
        assert!(err <= MAX_ULP, "{err} ULP at {at:e}");
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp1(0.0).to_bits(), 1.0f32.to_bits());
        assert_eq!(exp1(-0.0).to_bits(), 1.0f32.to_bits());
        assert_eq!(exp1(f32::NEG_INFINITY).to_bits(), 0);
        assert!(exp1(f32::NAN).is_nan());
        assert_eq!(exp1(-88.0).to_bits(), 0);
        assert_eq!(exp1(-104.0).to_bits(), 0);
        assert_eq!(exp1(-1.0e30).to_bits(), 0);
        assert!(exp1(-87.0) >= f32::MIN_POSITIVE);
    }
}
