//! f64 `ln`, `exp` and `sin`/`cos` as `const fn`s, so that a RoPE table can
//! be computed at compile time (`libm` is not `const`). Plain f64 arithmetic
//! only, so compile-time evaluation and a run-time call give the same bits.
//!
//! Each function covers the domain the table needs, not every f64:
//! - [`ln`] of a finite `x > 1`;
//! - [`exp`] of `y ≤ 0` (a frequency `base^(−2i/D)` is at most 1);
//! - [`sin_cos`] of `0 ≤ a < 2²⁰·π/2` (an angle `position·θ` with
//!   `position < 2²⁰`, `θ ≤ 1`).
//!
//! Accuracy: a few f64 ULP each, far below the f32 rounding of the table's
//! entries; `tests/rope.rs` measures every entry of the tables it builds
//! against `libm` (through the reference).

/// `ln 2` in two parts: the high part has its 32 low bits zero, so
/// `k·LN2_HI` is exact for `|k| < 2²⁰` (fdlibm's split).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// `π/2` in four parts, the first three of 33 significant bits, so that
/// `k·PIO2_1`, `k·PIO2_2` and `k·PIO2_3` are exact for `k < 2²⁰`
/// (fdlibm's `__rem_pio2` constants).
const PIO2_1: f64 = f64::from_bits(0x3ff9_21fb_5440_0000);
const PIO2_2: f64 = f64::from_bits(0x3dd0_b461_1a60_0000);
const PIO2_3: f64 = f64::from_bits(0x3ba3_198a_2e00_0000);
const PIO2_3T: f64 = f64::from_bits(0x397b_839a_2520_49c1);

/// Natural logarithm of a finite `x > 1`.
///
/// `x = 2^k·m` with `m ∈ [√½, √2)`, then `ln m = 2·atanh(s)`,
/// `s = (m − 1)/(m + 1)`, `|s| ≤ 0.172`, by its series through `s²³`
/// (the next term is below `2⁻⁶⁰`), and `k·ln 2` in two parts.
pub(super) const fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut k = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let mut p = 1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    let series = p * z;
    let k = k as f64;
    k * LN2_HI + (2.0 * s + (2.0 * s * series + k * LN2_LO))
}

/// `e^y` for `y ≤ 0`; 0 below `−746` (where `e^y` rounds to 0).
///
/// `y = k·ln 2 + r`, `|r| ≤ ln 2 / 2`, `e^r` by its Taylor series through
/// `r¹⁴/14!` (the next term is below `2⁻⁶⁴`), then `2^k`, in two steps
/// where the result is subnormal. `exp(−0.0) = exp(0.0) = 1` exactly.
pub(super) const fn exp(y: f64) -> f64 {
    if y < -746.0 {
        return 0.0;
    }
    let t = y * core::f64::consts::LOG2_E;
    let k = if t < 0.0 {
        (t - 0.5) as i64
    } else {
        (t + 0.5) as i64
    };
    let kf = k as f64;
    let r = (y - kf * LN2_HI) - kf * LN2_LO;
    let mut p = 1.0 / 87_178_291_200.0;
    p = p * r + 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 1.0 / 2.0;
    let tail = p * r * r;
    let e = 1.0 + (r + tail);
    if k < -1000 {
        e * pow2(k + 500) * pow2(-500)
    } else {
        e * pow2(k)
    }
}

/// `2^k` for `−1022 ≤ k ≤ 1023`, from its bits.
const fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `a − b` as `(s, e)` with `s + e = a − b` exactly (Knuth's two-sum).
const fn two_diff(a: f64, b: f64) -> (f64, f64) {
    let s = a - b;
    let bb = s - a;
    let e = (a - (s - bb)) - (b + bb);
    (s, e)
}

/// `(sin a, cos a)` for `0 ≤ a < 2²⁰·π/2`.
///
/// Cody–Waite reduction with a four-part `π/2`: `k = round(a·2/π)`, then
/// `a − k·π/2` as a two-part `hi + lo` in which only `k·PIO2_3T` is rounded
/// (error below `2⁻¹⁰²·k`); `sin` and `cos` of `hi` by their Taylor series,
/// `lo` added to first order, and the quadrant `k mod 4` picks signs.
pub(super) const fn sin_cos(a: f64) -> (f64, f64) {
    let k = (a * core::f64::consts::FRAC_2_PI + 0.5) as i64;
    let kf = k as f64;
    let t = a - kf * PIO2_1;
    let (r, e1) = two_diff(t, kf * PIO2_2);
    let (r, e2) = two_diff(r, kf * PIO2_3);
    let lo = (e1 + e2) - kf * PIO2_3T;
    let hi = r + lo;
    let lo = lo - (hi - r);
    let (s, c) = (sin_poly(hi), cos_poly(hi));
    let s = s + lo * (1.0 - 0.5 * hi * hi);
    let c = c - lo * hi;
    match k & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `sin x` for `|x| ≤ π/4 + 2⁻³⁰`, Taylor through `x¹⁹/19!` (the next
/// term is below `2⁻⁷⁰`).
const fn sin_poly(x: f64) -> f64 {
    let z = x * x;
    let mut p = -1.0 / 121_645_100_408_832_000.0;
    p = p * z + 1.0 / 355_687_428_096_000.0;
    p = p * z - 1.0 / 1_307_674_368_000.0;
    p = p * z + 1.0 / 6_227_020_800.0;
    p = p * z - 1.0 / 39_916_800.0;
    p = p * z + 1.0 / 362_880.0;
    p = p * z - 1.0 / 5_040.0;
    p = p * z + 1.0 / 120.0;
    p = p * z - 1.0 / 6.0;
    let tail = p * z;
    x + x * tail
}

/// `cos x` for `|x| ≤ π/4 + 2⁻³⁰`, Taylor through `x²⁰/20!` (the next
/// term is below `2⁻⁷⁴`), with `1 − x²/2` summed as fdlibm's `__cos` does
/// to keep the bits it loses.
const fn cos_poly(x: f64) -> f64 {
    let z = x * x;
    let mut p = 1.0 / 2_432_902_008_176_640_000.0;
    p = p * z - 1.0 / 6_402_373_705_728_000.0;
    p = p * z + 1.0 / 20_922_789_888_000.0;
    p = p * z - 1.0 / 87_178_291_200.0;
    p = p * z + 1.0 / 479_001_600.0;
    p = p * z - 1.0 / 3_628_800.0;
    p = p * z + 1.0 / 40_320.0;
    p = p * z - 1.0 / 720.0;
    p = p * z + 1.0 / 24.0;
    let tail = p * z * z;
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    w + (((1.0 - w) - hz) + tail)
}
