//! The integer path's parameters: the tensors' quantization as TFLite
//! states it, prepared once into integer multipliers so that a call does
//! no floating-point arithmetic.

use super::branchless;
use super::exp2::LIMIT;
use super::multiplier::Multiplier;
use crate::error::Error;
use crate::kernel::BOUNDED;

/// Per-tensor affine quantization of an `i8` tensor, as TFLite (and its
/// converter) gives it for activations: `real = scale · (q − zero_point)`.
///
/// ```
/// use microattn::int8::Quant;
/// let x = Quant { scale: 0.05, zero_point: -3 };
/// assert_eq!(x.dequantize(17), 0.05 * 20.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    /// The real value of one step: a normal, positive `f32` (a subnormal
    /// step has too few significant bits for the `f32` outputs to keep
    /// the integer steps apart).
    pub scale: f32,
    /// The integer that stands for real 0, in `-128..=127`.
    pub zero_point: i32,
}

impl Quant {
    /// `scale · (q − zero_point)`, in `f32` (for hosts and tests; the
    /// integer kernels never call it).
    #[inline]
    #[must_use]
    pub fn dequantize(self, q: i8) -> f32 {
        self.scale * (i32::from(q) - self.zero_point) as f32
    }

    /// The typed error for this tensor's parameters, if any.
    fn check(self, tensor: &'static str) -> Result<(), Error> {
        if !(self.scale.is_normal() && self.scale > 0.0) {
            return Err(Error::InvalidQuantization {
                what: tensor,
                reason: "scale must be a normal, positive f32",
            });
        }
        if !(-128..=127).contains(&self.zero_point) {
            return Err(Error::InvalidQuantization {
                what: tensor,
                reason: "zero point must lie in -128..=127",
            });
        }
        Ok(())
    }
}

/// The quantization of a call's four tensors and its score scale,
/// prepared once (the way TFLite Micro prepares its int8 kernels) into what
/// the integer kernel needs: zero points, the multiplier that turns a score
/// difference into a power-of-two exponent, and the multiplier that
/// requantizes a mean value into output steps.
///
/// Preparing uses `f64` arithmetic; every call that takes a `Params` is
/// integer-only (except the `f32`-output variants' last multiply).
///
/// ```
/// use microattn::int8::{Params, Quant};
/// let act = Quant { scale: 0.02, zero_point: 0 };
/// let p = Params::new(act, act, act, act, 16)?;
/// assert_eq!(p.score_scale(), 0.25);
/// # Ok::<(), microattn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    query: Quant,
    key: Quant,
    value: Quant,
    output: Quant,
    score_scale: f32,
    /// `score_scale·Sq·Sk·log2(e)·2^16`, one unit of an integer score
    /// difference in `Q16` powers of two, times `2^32`.
    exponent: Multiplier,
    /// The largest score difference whose exponent is below `LIMIT`.
    cutoff: u32,
    /// `Sv/So·2^−8 = out_mantissa·2^−out_shift`, `out_mantissa` in
    /// `[2^14, 2^15)`: a mean in `Q8` value steps to output steps.
    out_mantissa: i32,
    out_shift: u32,
}

impl Params {
    /// Parameters with the default score scale `1/√head_dim`.
    ///
    /// # Errors
    /// As [`with_score_scale`](Self::with_score_scale);
    /// [`Error::ZeroDimension`] if `head_dim` is 0.
    #[inline]
    pub fn new(
        query: Quant,
        key: Quant,
        value: Quant,
        output: Quant,
        head_dim: usize,
    ) -> Result<Self, Error> {
        if head_dim == 0 {
            return Err(Error::ZeroDimension { field: "head_dim" });
        }
        let scale = 1.0 / libm::sqrt(head_dim as f64);
        Self::with_score_scale(query, key, value, output, scale as f32)
    }

    /// Parameters with a caller-chosen score scale.
    ///
    /// # Errors
    /// [`Error::InvalidQuantization`] if a tensor's scale is not a normal,
    /// positive `f32` (zero, subnormal, negative, infinite or NaN) or its zero point is outside `-128..=127`, if the score
    /// scale is not positive, or if a prepared multiplier is out of the
    /// exponent's range (`score_scale·Sq·Sk` below about `5·10⁻⁹`, where
    /// it would have fewer than 21 significant bits, or from
    /// `2^30 / (2^16·log2(e))`, about 11,356, on), or if `Sv/So` is outside
    /// `[2^−8, 2^4]`;
    /// [`Error::NonFiniteScale`] if the score scale is NaN or infinite.
    ///
    /// ```
    /// use microattn::{Error, int8::{Params, Quant}};
    /// let ok = Quant { scale: 0.1, zero_point: 0 };
    /// let bad = Quant { scale: 0.0, zero_point: 0 };
    /// let err = Params::with_score_scale(ok, ok, bad, ok, 0.5);
    /// assert!(matches!(err, Err(Error::InvalidQuantization { what: "value", .. })));
    /// ```
    #[inline]
    pub fn with_score_scale(
        query: Quant,
        key: Quant,
        value: Quant,
        output: Quant,
        score_scale: f32,
    ) -> Result<Self, Error> {
        query.check("query")?;
        key.check("key")?;
        value.check("value")?;
        output.check("output")?;
        if !score_scale.is_finite() {
            return Err(Error::NonFiniteScale);
        }
        if score_scale <= 0.0 {
            return Err(Error::InvalidQuantization {
                what: "score scale",
                reason: "must be positive",
            });
        }
        let unit = f64::from(score_scale) * f64::from(query.scale) * f64::from(key.scale);
        let exponent = Multiplier::new(unit * core::f64::consts::LOG2_E * 65536.0).ok_or(
            Error::InvalidQuantization {
                what: "score scale",
                reason: "score_scale·Sq·Sk is out of the integer exponent's range",
            },
        )?;
        let (out_mantissa, out_shift) = output_multiplier(
            f64::from(value.scale) / f64::from(output.scale),
        )
        .ok_or(Error::InvalidQuantization {
            what: "output",
            reason: "Sv/So must lie in [2^-8, 2^4]",
        })?;
        // The exponent grows with the difference: bisect for the last one
        // below LIMIT (difference 0 has exponent 0).
        let (mut below, mut above) = (0u32, u32::MAX);
        if exponent.apply(above) < LIMIT {
            below = above;
        }
        while above - below > 1 {
            let mid = below + (above - below) / 2;
            if exponent.apply(mid) < LIMIT {
                below = mid;
            } else {
                above = mid;
            }
        }
        Ok(Params {
            query,
            key,
            value,
            output,
            score_scale,
            exponent,
            cutoff: below,
            out_mantissa,
            out_shift,
        })
    }

    /// The queries' quantization.
    #[inline]
    #[must_use]
    pub fn query(&self) -> Quant {
        self.query
    }

    /// The keys' quantization.
    #[inline]
    #[must_use]
    pub fn key(&self) -> Quant {
        self.key
    }

    /// The values' quantization.
    #[inline]
    #[must_use]
    pub fn value(&self) -> Quant {
        self.value
    }

    /// The output's quantization.
    #[inline]
    #[must_use]
    pub fn output(&self) -> Quant {
        self.output
    }

    /// The score scale (of real scores: `score_scale · q_real·k_real`).
    #[inline]
    #[must_use]
    pub fn score_scale(&self) -> f32 {
        self.score_scale
    }

    /// The exponent, in `Q16` powers of two, of a weight whose integer
    /// score lies `difference` below its row's maximum:
    /// `round(difference·M / 2^32)` (halves up, saturated to `u32`) with
    /// `M = round(score_scale·Sq·Sk·log2(e)·2^16·2^32)`; at least `17·2^16`
    /// past the [`cutoff`](Self::cutoff).
    #[inline]
    #[must_use]
    pub fn exponent(&self, difference: u32) -> u32 {
        self.exponent.apply(difference)
    }

    /// [`exponent`](Self::exponent) for a difference at most the cutoff,
    /// in 32-bit arithmetic: the same value.
    #[inline(always)]
    pub(crate) fn exponent_within_cutoff(&self, difference: u32) -> u32 {
        self.exponent.apply_small(difference)
    }

    /// The largest score difference whose weight can be non-zero: past it,
    /// [`exponent`](Self::exponent) is at least the weight's limit (17 in
    /// `Q16`), so the kernel skips the exponent for such keys.
    #[inline(always)]
    #[must_use]
    pub fn cutoff(&self) -> u32 {
        self.cutoff
    }

    /// A mean value in `Q22` value steps (`Σⱼ wⱼ·(vⱼ − zv) / W`) as an
    /// output `i8`: the mean rounded to `Q8` (halves up) and kept within
    /// `±(2^16 − 1)`, times `Sv/So` as a 15-bit mantissa and a rounding
    /// shift (halves up), plus `zo`, saturated to `-128..=127`. Every
    /// product fits `i32`.
    #[inline(always)]
    #[must_use]
    pub fn requantize(&self, mean: i32) -> i8 {
        let q8 = (((mean >> 13) + 1) >> 1).clamp(-0xFFFF, 0xFFFF);
        self.requantize_q8(q8)
    }

    /// [`requantize`](Self::requantize) of a mean a row gives: its size
    /// is at most about `255·2^22` (the mean of `vⱼ − zv`, at most 255
    /// steps, with its roundings), so the `Q8` value is below `2^16` and
    /// needs no clamp. The same value.
    #[inline(always)]
    pub(crate) fn requantize_row_mean(&self, mean: i32) -> i8 {
        self.requantize_q8(((mean >> 13) + 1) >> 1)
    }

    /// A `Q8` mean with `|q8| < 2^16` to an output.
    #[inline(always)]
    fn requantize_q8(&self, q8: i32) -> i8 {
        // round(x / 2^s) = (floor(x / 2^(s−1)) + 1) >> 1: adding the half
        // after the first shift keeps every step in i32 (|x| < 2^31).
        let steps = (((q8 * self.out_mantissa) >> (self.out_shift - 1)) + 1) >> 1;
        let out = steps + self.output.zero_point;
        if BOUNDED {
            branchless::clamp(out, -128, 127) as i8
        } else {
            out.clamp(-128, 127) as i8
        }
    }

    /// A mean value in `Q22` value steps as a real number, `Sv·mean/2^22`,
    /// rounded once (`±∞` where that passes `f32::MAX`, which only a value
    /// scale near `f32::MAX / 255` can give).
    #[inline(always)]
    #[must_use]
    pub fn dequantize_mean(&self, mean: i32) -> f32 {
        (f64::from(mean) * (f64::from(self.value.scale) / f64::from(1u32 << 22))) as f32
    }
}

/// `ratio = Sv/So` as `(mantissa, shift)` with `mantissa` in `[2^14,
/// 2^15)` and `ratio·2^−8 = mantissa·2^−shift`, which takes a `Q8` mean to
/// output steps; `None` outside `[2^−8, 2^4]`, where the `Q8` mean's
/// rounding would cost more than the bound allows.
fn output_multiplier(ratio: f64) -> Option<(i32, u32)> {
    if !(ratio.is_finite() && (1.0 / 256.0..=16.0).contains(&ratio)) {
        return None;
    }
    let (fraction, mut exponent) = libm::frexp(ratio);
    // fraction ∈ [0.5, 1): 2^15·fraction rounds into [2^14, 2^15].
    let mut mantissa = libm::round(fraction * 32768.0) as i32;
    if mantissa == 1 << 15 {
        mantissa = 1 << 14;
        exponent += 1;
    }
    // ratio = mantissa·2^(exponent − 15), and the Q8 mean needs 2^−8 more.
    let shift = u32::try_from(15 - exponent + 8).ok()?;
    (1..=31).contains(&shift).then_some((mantissa, shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `requantize` against the same arithmetic in `i128` and against the
    /// real product, over means up to the largest a row can give and every
    /// accepted ratio's end: no overflow, one rounding of the `Q8` mean.
    #[test]
    fn requantize_is_exact_at_the_ends_of_its_range() {
        let unit = Quant {
            scale: 1.0,
            zero_point: 0,
        };
        for ratio in [1.0 / 256.0, 0.0143, 0.5, 1.0, 1.999, 15.9, 16.0] {
            let out = Quant {
                scale: (1.0 / ratio) as f32,
                zero_point: -3,
            };
            let p = Params::new(unit, unit, unit, out, 4).unwrap();
            let top = 255i32 << 22;
            for mean in [
                i32::MIN,
                -top - 4096,
                -top,
                -1 << 22,
                -1,
                0,
                1 << 13,
                12_345_678,
                top,
                top + 4096,
                i32::MAX,
            ] {
                let q8 = ((i128::from(mean) + (1 << 13)) >> 14).clamp(-0xFFFF, 0xFFFF);
                let x = q8 * i128::from(p.out_mantissa);
                let want = ((x + (1 << (p.out_shift - 1))) >> p.out_shift) - 3;
                assert_eq!(
                    i128::from(p.requantize(mean)),
                    want.clamp(-128, 127),
                    "{mean} at {ratio}"
                );
                if mean.unsigned_abs() <= top.unsigned_abs() {
                    let real =
                        f64::from(mean) / f64::from(1u32 << 22) * f64::from(ratio as f32) - 3.0;
                    let got = f64::from(p.requantize(mean));
                    assert!(
                        (got - real.clamp(-128.0, 127.0)).abs() <= 0.5 + 0.01,
                        "{mean} at {ratio}"
                    );
                }
            }
        }
    }
}
