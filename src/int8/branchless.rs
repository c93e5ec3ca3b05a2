//! Integer comparisons as arithmetic: masks from the borrow or the sign of
//! a subtraction, and the maximum, clamp and select built on them, for the
//! bounded-time build. Cores without conditional execution (the Cortex-M0)
//! turn a comparison that feeds a value into a branch; these never
//! compare, so the integer path's instructions do not depend on the data.
//!
//! Both the difference a mask comes from and the mask pass through
//! [`core::hint::black_box`]: LLVM recognises a sign taken from a
//! difference as a comparison, and `x & mask` as a select, and on the
//! Cortex-M0 turns either into a branch (without `black_box`, QEMU's
//! instruction counts differ between inputs).

/// All ones if `d < 0`, else zero, computed from `d`'s sign bit with
/// neither seen by the optimiser (a few stores and loads).
#[inline(always)]
fn negative(d: i64) -> u32 {
    let high = (core::hint::black_box(d) >> 32) as i32;
    core::hint::black_box((high >> 31) as u32)
}

/// All ones if `x ≥ y`, else zero (unsigned): the sign of `x − y` taken
/// in 64 bits, where it cannot wrap.
#[inline(always)]
pub(crate) fn at_least(x: u32, y: u32) -> u32 {
    !negative(i64::from(x) - i64::from(y))
}

/// `if mask is all ones { a } else { b }` for a mask of all ones or zero.
#[inline(always)]
pub(crate) fn pick(mask: u32, a: u32, b: u32) -> u32 {
    (a & mask) | (b & !mask)
}

/// [`pick`] on 64 bits: the mask applies to both halves.
#[inline(always)]
pub(crate) fn pick_u64(mask: u32, a: u64, b: u64) -> u64 {
    let mask = u64::from(mask) | (u64::from(mask) << 32);
    (a & mask) | (b & !mask)
}

/// All ones if bit `k` of `x` is set, else zero.
#[inline(always)]
fn bit(x: u32, k: u32) -> u32 {
    core::hint::black_box(0u32.wrapping_sub((core::hint::black_box(x) >> k) & 1))
}

/// `x >> amount` (arithmetic, `amount < 64`) as six shifts by constants,
/// 32, 16, 8, 4, 2 and 1 bits, each kept by the mask of its bit of
/// `amount`: no variable 64-bit shift, which cores without a 64-bit
/// shifter leave to a compiler routine that branches on the amount.
#[inline(always)]
pub(crate) fn shift_right(x: i64, amount: u32) -> i64 {
    let step =
        |x: i64, shifted: i64, k: u32| pick_u64(bit(amount, k), shifted as u64, x as u64) as i64;
    let x = step(x, x >> 32, 5);
    let x = step(x, x >> 16, 4);
    let x = step(x, x >> 8, 3);
    let x = step(x, x >> 4, 2);
    let x = step(x, x >> 2, 1);
    step(x, x >> 1, 0)
}

/// The larger of `a` and `b`.
#[inline(always)]
pub(crate) fn max(a: i32, b: i32) -> i32 {
    let b_larger = negative(i64::from(a) - i64::from(b)) as i32;
    a ^ ((a ^ b) & b_larger)
}

/// `x` clamped to `lo..=hi` (`lo ≤ hi`).
#[inline(always)]
pub(crate) fn clamp(x: i32, lo: i32, hi: i32) -> i32 {
    let below_hi = negative(i64::from(x) - i64::from(hi)) as i32;
    let x = (x & below_hi) | (hi & !below_hi);
    let below_lo = negative(i64::from(x) - i64::from(lo)) as i32;
    (lo & below_lo) | (x & !below_lo)
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
    fn the_shift_is_the_std_one() {
        let values = [
            i64::MIN,
            i64::MIN + 1,
            -(1 << 40) - 12345,
            -(1 << 32),
            -0x1234_5678,
            -1,
            0,
            1,
            0x1234_5678,
            1 << 32,
            (1 << 40) + 12345,
            i64::MAX - 1,
            i64::MAX,
        ];
        for &x in &values {
            for amount in 0..64 {
                assert_eq!(shift_right(x, amount), x >> amount, "{x} >> {amount}");
            }
            let mask = at_least(x as u32, 0x8000_0000);
            assert_eq!(
                pick_u64(mask, x as u64, !x as u64),
                if mask == 0 { !x as u64 } else { x as u64 }
            );
        }
    }

    #[test]
    fn max_and_clamp_are_the_std_ones() {
        let values = [
            i32::MIN,
            i32::MIN + 1,
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
            i32::MAX - 1,
            i32::MAX,
        ];
        for &a in &values {
            for &b in &values {
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
