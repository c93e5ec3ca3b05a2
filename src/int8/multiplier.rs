//! The score scale as a 64-bit fixed-point multiplier: `M = round(c·2^32)`
//! for the real `c` (score units per integer score step, in `Q16` powers
//! of two), applied as `round(x·M / 2^32)`, one rounding of the exact
//! product. The high word is one `u32` product for the arguments the kernel
//! applies it to, the low word one `u32 × u32 → u64` product.

/// `M = high·2^32 + low = round(c·2^32)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Multiplier {
    high: u32,
    low: u32,
}

impl Multiplier {
    /// `round(c·2^32)`; `None` unless `c` is finite and in `[2^−11, 2^30)`,
    /// where `M` has at least 21 significant bits (so one application is
    /// within `2^−12 + 1/2` of `x·c` for the products the kernel uses,
    /// below `2^21`) and fits in 62 bits.
    #[must_use]
    pub(crate) fn new(c: f64) -> Option<Self> {
        if !(c.is_finite() && c >= 1.0 / 2048.0 && c < f64::from(1u32 << 30)) {
            return None;
        }
        let m = libm::round(c * 4_294_967_296.0) as u64;
        Some(Multiplier {
            high: (m >> 32) as u32,
            low: m as u32,
        })
    }

    /// `round(x·M / 2^32)` (halves up), exact in `u128`, saturated to
    /// `u32`: the specification's form.
    #[must_use]
    pub(crate) fn apply(self, x: u32) -> u32 {
        let m = (u128::from(self.high) << 32) | u128::from(self.low);
        let t = (u128::from(x) * m + (1 << 31)) >> 32;
        u32::try_from(t).unwrap_or(u32::MAX)
    }

    /// [`apply`](Self::apply) for an `x` whose result is known to fit
    /// `u32` (`x·c < 2^32 − 1`): `x·high + round(x·low / 2^32)`, the same
    /// value, in 32-bit arithmetic and one [`mul_round_high`].
    #[inline(always)]
    #[must_use]
    pub(crate) fn apply_small(self, x: u32) -> u32 {
        x.wrapping_mul(self.high)
            .wrapping_add(mul_round_high(x, self.low))
    }
}

/// `round(a·b / 2^32)` (halves up), the high word of a rounded `u32`
/// product: one `u64` product where the core multiplies into 64 bits.
#[cfg(not(all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(always)]
fn mul_round_high(a: u32, b: u32) -> u32 {
    ((u64::from(a) * u64::from(b) + (1 << 31)) >> 32) as u32
}

/// On ARMv6-M (no `UMULL`; its only cores without 32-bit atomics), the
/// same from four 16-bit products instead of a 64-bit library multiply.
#[cfg(all(target_arch = "arm", not(target_has_atomic = "32")))]
#[inline(always)]
fn mul_round_high(a: u32, b: u32) -> u32 {
    mul_round_high_halves(a, b)
}

/// `round(a·b / 2^32)` from 16-bit halves: with `a = ah·2^16 + al` and
/// `b = bh·2^16 + bl`, the bits below `2^32` that can carry are
/// `lh mod 2^16 + hl mod 2^16 + ll / 2^16` (units of `2^16`), plus the
/// rounding half, `2^15` of them.
#[cfg_attr(
    not(all(target_arch = "arm", not(target_has_atomic = "32"))),
    allow(dead_code)
)]
#[inline(always)]
fn mul_round_high_halves(a: u32, b: u32) -> u32 {
    let (ah, al, bh, bl) = (a >> 16, a & 0xFFFF, b >> 16, b & 0xFFFF);
    let (hh, hl, lh, ll) = (ah * bh, ah * bl, al * bh, al * bl);
    let carry = (hl & 0xFFFF) + (lh & 0xFFFF) + (ll >> 16) + (1 << 15);
    hh + (hl >> 16) + (lh >> 16) + (carry >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_multipliers_are_refused() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-4, 2f64.powi(30)] {
            assert_eq!(Multiplier::new(bad), None, "{bad}");
        }
        assert!(Multiplier::new(2f64.powi(-11)).is_some());
        assert!(Multiplier::new(2f64.powi(30) - 1.0).is_some());
    }

    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Against `x·c` in f64: within half a unit plus `M`'s own rounding,
    /// and the 32-bit form equal to the exact one wherever it applies.
    #[test]
    fn application_rounds_the_product_once() {
        let mut next = xorshift(0x1234_5678_9abc_def0);
        for _ in 0..50_000 {
            let c = 2f64.powf((next() % 4100) as f64 / 100.0 - 11.0);
            let Some(m) = Multiplier::new(c) else {
                continue;
            };
            let x = (next() as u32) >> (next() % 32);
            let want = f64::from(x) * c;
            let got = m.apply(x);
            if want < 4e9 {
                let slack = 0.5 + f64::from(x) * 2f64.powi(-33) + want * 1e-15;
                assert!(
                    (f64::from(got) - want).abs() <= slack,
                    "{x}·{c}: {got} vs {want}"
                );
                assert_eq!(m.apply_small(x), got, "{x}·{c}");
            }
        }
    }

    #[test]
    fn the_16_bit_halves_give_the_64_bit_product() {
        let mut next = xorshift(42);
        let ends = [0u32, 1, 0xFFFF, 0x1_0000, 0x8000_0000, u32::MAX];
        for &a in &ends {
            for &b in &ends {
                assert_eq!(mul_round_high_halves(a, b), mul_round_high(a, b), "{a}·{b}");
            }
        }
        for _ in 0..100_000 {
            let (a, b) = (next() as u32, next() as u32);
            let want = ((u64::from(a) * u64::from(b) + (1 << 31)) >> 32) as u32;
            assert_eq!(mul_round_high_halves(a, b), want, "{a}·{b}");
        }
    }
}
