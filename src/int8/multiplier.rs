//! A real, positive multiplier prepared once as an integer mantissa and a
//! power of two, so that applying it needs one `i64` multiply and one
//! rounding shift: how the integer path turns its scales (inputs' scales,
//! the output's scale) into integer-only arithmetic.

/// `real = mantissa · 2^(exponent − 31)` with `mantissa ∈ [2^30, 2^31)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Multiplier {
    mantissa: i32,
    /// Power of two, such that the right shift of an application,
    /// `31 − exponent`, lies in `1..=62`.
    exponent: i32,
}

impl Multiplier {
    /// The multiplier nearest `real`: its mantissa is `real`'s rounded to
    /// 31 bits (a relative error below `2^−31`).
    ///
    /// `None` unless `real` is finite and in `[2^−31, 2^30)`, where one
    /// application's shift stays in range.
    #[must_use]
    pub(crate) fn new(real: f64) -> Option<Self> {
        if !(real.is_finite()
            && real >= 1.0 / f64::from(1u32 << 31)
            && real < f64::from(1u32 << 30))
        {
            return None;
        }
        let (fraction, mut exponent) = libm::frexp(real);
        // fraction ∈ [0.5, 1): 2^31·fraction rounds into [2^30, 2^31].
        let mut mantissa = libm::round(fraction * f64::from(1u32 << 31)) as i64;
        if mantissa == 1i64 << 31 {
            mantissa = 1i64 << 30;
            exponent += 1;
        }
        let shift = 31 - exponent;
        if !(1..=62).contains(&shift) {
            return None;
        }
        Some(Multiplier {
            mantissa: i32::try_from(mantissa).ok()?,
            exponent,
        })
    }

    /// `round(x · real)` for a non-negative `x`, with one rounding (halves
    /// up) of the exact product, in `u64` (which holds every such product).
    #[must_use]
    pub(crate) fn scale_wide(self, x: u32) -> u64 {
        let shift = (31 - self.exponent).clamp(1, 62) as u32;
        // mantissa < 2^31, x < 2^32: the product and the half fit u64.
        let p = u64::from(x) * u64::from(self.mantissa.unsigned_abs());
        (p + (1u64 << (shift - 1))) >> shift
    }

    /// `round(x · real)` with one rounding (ties away from zero) of the
    /// exact product `x · mantissa · 2^(exponent − 31)`, saturated to `i32`.
    #[must_use]
    pub(crate) fn apply(self, x: i32) -> i32 {
        let p = i64::from(x) * i64::from(self.mantissa);
        let shift = (31 - self.exponent).clamp(1, 62) as u32;
        let half = 1i64 << (shift - 1);
        // |p| < 2^62, so adding half cannot overflow.
        let q = if p >= 0 {
            (p + half) >> shift
        } else {
            -((half - p) >> shift)
        };
        q.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_multipliers_are_refused() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-12, 2f64.powi(30)] {
            assert_eq!(Multiplier::new(bad), None, "{bad}");
        }
        assert!(Multiplier::new(2f64.powi(-31)).is_some());
        assert!(Multiplier::new(2f64.powi(30) - 1.0).is_some());
    }

    #[test]
    fn powers_of_two_are_exact() {
        let half = Multiplier::new(0.5).unwrap();
        assert_eq!((half.apply(7), half.apply(-7), half.apply(6)), (4, -4, 3));
        let eight = Multiplier::new(8.0).unwrap();
        assert_eq!(eight.apply(-5), -40);
    }

    /// Against `x·real` in f64: within half a unit (the one rounding) plus
    /// the mantissa's own rounding, `2^−31·|x·real|`. A truncating shift
    /// fails it.
    #[test]
    fn apply_rounds_the_product_once() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let real = 2f64.powf((next() % 6000) as f64 / 100.0 - 31.0);
            let Some(m) = Multiplier::new(real) else {
                continue;
            };
            let x = next() as i32 >> (next() % 31);
            let want = f64::from(x) * real;
            if want.abs() >= 2f64.powi(31) - 1.0 {
                continue;
            }
            let got = f64::from(m.apply(x));
            let slack = 0.5 + want.abs() * 2f64.powi(-31) + 1e-9;
            assert!((got - want).abs() <= slack, "{x} · {real}: {got} vs {want}");
        }
    }
}
