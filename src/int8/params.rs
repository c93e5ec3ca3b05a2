//! The integer path's parameters: the tensors' quantization as TFLite
//! states it, prepared once into integer multipliers so that a call does
//! no floating-point arithmetic.

use super::exp2::LIMIT;
use super::multiplier::Multiplier;
use crate::error::Error;

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
    /// The real value of one step; finite and positive.
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
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Error::InvalidQuantization {
                what: tensor,
                reason: "scale must be finite and positive",
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
    /// `score_scale·Sq·Sk·log2(e)·2^16`: one unit of an integer score
    /// difference in `Q16` powers of two.
    exponent: Multiplier,
    /// The largest score difference whose exponent is below `LIMIT`.
    cutoff: u32,
    /// `Sv/So·2^−16`: a mean in `Q16` value steps to output steps.
    requantize: Multiplier,
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
    /// [`Error::InvalidQuantization`] if a tensor's scale is not finite and
    /// positive or its zero point is outside `-128..=127`, if the score
    /// scale is not positive, or if a prepared multiplier is out of the
    /// range one `i64` product can apply (`score_scale·Sq·Sk` below about
    /// `2^−48` or above `2^13`; `Sv/So` below `2^−15` or above `2^46`);
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
        let requantize = Multiplier::new(
            f64::from(value.scale) / f64::from(output.scale) / 65536.0,
        )
        .ok_or(Error::InvalidQuantization {
            what: "output",
            reason: "Sv/So is out of the requantization's range",
        })?;
        // The exponent grows with the difference: bisect for the last one
        // below LIMIT (difference 0 has exponent 0).
        let (mut below, mut above) = (0u32, u32::MAX);
        if exponent.scale_wide(above) < u64::from(LIMIT) {
            below = above;
        }
        while above - below > 1 {
            let mid = below + (above - below) / 2;
            if exponent.scale_wide(mid) < u64::from(LIMIT) {
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
            requantize,
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
    /// `round(difference · score_scale·Sq·Sk·log2(e)·2^16)`, with the
    /// multiplier's one rounding; at least `LIMIT` past the cutoff.
    #[inline(always)]
    #[must_use]
    pub fn exponent(&self, difference: u32) -> u32 {
        u32::try_from(self.exponent.scale_wide(difference)).unwrap_or(u32::MAX)
    }

    /// The largest score difference whose weight can be non-zero: past it,
    /// [`exponent`](Self::exponent) is at least the weight's limit (17 in
    /// `Q16`), so the kernel skips the exponent for such keys.
    #[inline(always)]
    #[must_use]
    pub fn cutoff(&self) -> u32 {
        self.cutoff
    }

    /// A mean value in `Q16` value steps (`Σ w·(v − zv) / Σ w`) as an
    /// output `i8`: `zo + round(mean·Sv/So·2^−16)` (one rounding, ties away
    /// from zero), saturated to `-128..=127`.
    #[inline(always)]
    #[must_use]
    pub fn requantize(&self, mean: i32) -> i8 {
        let steps = i64::from(self.requantize.apply(mean)) + i64::from(self.output.zero_point);
        steps.clamp(-128, 127) as i8
    }

    /// A mean value in `Q16` value steps as a real number:
    /// `Sv · mean · 2^−16`, rounded once (`mean` is exact in `f32`).
    #[inline(always)]
    #[must_use]
    pub fn dequantize_mean(&self, mean: i32) -> f32 {
        mean as f32 * (self.value.scale / 65536.0)
    }
}
