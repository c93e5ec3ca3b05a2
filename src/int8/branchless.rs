//! Integer comparisons as arithmetic: masks from the borrow of a
//! subtraction, and the maximum, clamp and select built on them. Cores
//! without conditional execution (the Cortex-M0) turn a comparison that
//! feeds a value into a branch; these never compare, so the integer path's
//! instructions do not depend on the data where they are used (every row
//! step of the bounded-time build, and the weight and the normaliser in
//! every build).

/// All ones if `x ≥ y`, else zero (unsigned): the sign of `x − y` taken
/// in 64 bits, where it cannot wrap.
#[inline(always)]
pub(crate) fn at_least(x: u32, y: u32) -> u32 {
    let borrow = (u64::from(x).wrapping_sub(u64::from(y)) >> 63) as u32;
    borrow.wrapping_sub(1)
}

/// `if mask is all ones { a } else { b }` for a mask of all ones or zero.
#[inline(always)]
pub(crate) fn pick(mask: u32, a: u32, b: u32) -> u32 {
    (a & mask) | (b & !mask)
}

/// The larger of `a` and `b`, both of size below `2^30` (so that `a − b`
/// does not wrap).
#[inline(always)]
pub(crate) fn max(a: i32, b: i32) -> i32 {
    let b_larger = a.wrapping_sub(b) >> 31;
    a ^ ((a ^ b) & b_larger)
}

/// `x` clamped to `lo..=hi`, for `x`, `lo` and `hi` of size below `2^30`.
#[inline(always)]
pub(crate) fn clamp(x: i32, lo: i32, hi: i32) -> i32 {
    let over = x.wrapping_sub(hi);
    let x = hi.wrapping_add(over & (over >> 31));
    let under = x.wrapping_sub(lo);
    lo.wrapping_add(under & !(under >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGES: [u32; 12] = [
        0,
        1,
        2,
        0xFFFF,
        0x1_0000,
        0x11_0000,
        0x7FFF_FFFE,
        0x7FFF_FFFF,
        0x8000_0000,
        0x8000_0001,
        0xFFFF_FFFE,
        0xFFFF_FFFF,
    ];

    #[test]
    fn masks_are_the_comparisons() {
        for &x in &EDGES {
            for &y in &EDGES {
                let want = if x >= y { u32::MAX } else { 0 };
                assert_eq!(at_least(x, y), want, "{x} ≥ {y}");
                assert_eq!(pick(want, x, y), if x >= y { x } else { y });
            }
        }
    }

    #[test]
    fn max_and_clamp_are_the_std_ones() {
        let small = [
            1 - (1 << 30),
            -(1 << 23),
            -129,
            -128,
            -1,
            0,
            1,
            127,
            128,
            1 << 23,
            (1 << 30) - 1,
        ];
        for &a in &small {
            for &b in &small {
                assert_eq!(max(a, b), a.max(b), "max({a}, {b})");
            }
            assert_eq!(clamp(a, -128, 127), a.clamp(-128, 127), "clamp({a})");
            assert_eq!(
                clamp(a, -0xFFFF, 0xFFFF),
                a.clamp(-0xFFFF, 0xFFFF),
                "clamp({a})"
            );
        }
    }
}
