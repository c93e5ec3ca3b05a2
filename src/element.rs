//! The element types a key/value cache stores: `f32`, and the 16-bit
//! [`f16`] and [`bf16`] of the [`half`](https://docs.rs/half) crate.
//!
//! A 16-bit cache rounds each key and value once, when it is appended
//! ([`Element::from_f32`]: round to nearest, ties to even), and widens them
//! back to `f32` where the kernel reads them ([`Element::widen`], eight or
//! sixteen at a time, into the registers the `f32` kernel loads rows into).
//! Widening is exact, so every score, weight and sum after it is the `f32`
//! kernel's operation on the rounded values: a 16-bit cache gives the bits
//! of an `f32` call over the widened keys and values.
//!
//! The conversions are `half`'s: `f16` uses the F16C instructions where the
//! build enables them (`x86-64-v3` and up, `-C target-cpu=native` on such a
//! CPU) and the FP16 extension on aarch64 builds that enable it, else a
//! software conversion (a few integer operations per value: Cortex-M, plain
//! `x86-64`). `bf16` to `f32` is a 16-bit shift on every target.
//!
//! This module is the only one that names `half`.

pub use half::{bf16, f16};

/// Keeps [`Element`] implemented by this crate's three types only, and
/// holds what only the crate calls.
pub(crate) mod sealed {
    /// Implemented for `f32`, `f16` and `bf16`.
    pub trait Sealed: Sized {
        /// The positions as `f32` if they are stored as `f32` (so the
        /// kernel can take its `f32`-only paths), else `None`.
        #[inline(always)]
        fn as_f32_positions<const D: usize, const KVH: usize>(
            _: &[[[Self; D]; KVH]],
        ) -> Option<&[[[f32; D]; KVH]]> {
            None
        }
    }
    impl Sealed for f32 {
        #[inline(always)]
        fn as_f32_positions<const D: usize, const KVH: usize>(
            x: &[[[f32; D]; KVH]],
        ) -> Option<&[[[f32; D]; KVH]]> {
            Some(x)
        }
    }
    impl Sealed for super::f16 {}
    impl Sealed for super::bf16 {}
}

/// A type a [`KvCache`](crate::KvCache) or
/// [`RingKvCache`](crate::RingKvCache) stores its keys and values as: `f32`
/// (the default), [`f16`](struct@f16) or [`bf16`](struct@bf16). Sealed: implemented for these three
/// only.
///
/// | element | bytes | significand bits | unit roundoff `u` | largest finite |
/// |---|---|---|---|---|
/// | `f32` | 4 | 24 | 2⁻²⁴ (no rounding on append) | 3.4·10³⁸ |
/// | `f16` | 2 | 11 | 2⁻¹¹ | 65,504 |
/// | `bf16` | 2 | 8 | 2⁻⁸ | 3.4·10³⁸ |
///
/// ```
/// use microattn::{Element, bf16, f16};
/// assert_eq!(f16::from_f32(1.0 / 3.0).to_f32(), 0.333_251_95);
/// assert_eq!(<bf16 as Element>::from_f32(1.0 / 3.0).to_f32(), 0.333_984_38);
/// // Past f16's range: ±∞ (IEEE rounding), which the kernel then treats as
/// // any infinite key or value (the crate docs' edge-case table).
/// assert_eq!(<f16 as Element>::from_f32(70_000.0).to_f32(), f32::INFINITY);
/// ```
pub trait Element:
    Copy + PartialEq + core::fmt::Debug + Send + Sync + 'static + sealed::Sealed
{
    /// The type's name, as the benches and the host example print it.
    const NAME: &'static str;
    /// The relative error of one rounding from `f32` for a value in the
    /// normal range: `|from_f32(x) − x| ≤ u·|x|` (0 for `f32`). Below the
    /// normal range (`|x| < 2⁻¹⁴` for `f16`, `2⁻¹²⁶` for `bf16`) the error
    /// is at most
    /// [`SUBNORMAL_STEP`](Self::SUBNORMAL_STEP)` / 2` instead.
    const UNIT_ROUNDOFF: f32;
    /// The spacing of the type's subnormal values: `2⁻²⁴` for `f16`,
    /// `2⁻¹³³` for `bf16` (0 for `f32`, which rounds nothing).
    const SUBNORMAL_STEP: f32;
    /// Zero, to fill storage before anything is appended.
    const ZERO: Self;
    /// `x` rounded to the type (nearest, ties to even; NaN stays NaN; past
    /// the type's largest finite value, ±∞).
    fn from_f32(x: f32) -> Self;
    /// The value as `f32` (exact).
    fn to_f32(self) -> f32;
    /// `N` values widened to `f32` (exact), by the target's conversion
    /// instructions where the build has them.
    fn widen<const N: usize>(x: &[Self; N]) -> [f32; N];
    /// `x` as `f32` values: `x` itself for `f32`, else its first `N` values
    /// widened into `buf` (for the tails of rows shorter than a lane).
    fn as_f32<'a, const N: usize>(x: &'a [Self], buf: &'a mut [f32; N]) -> &'a [f32];
    /// `x`'s values rounded into `out` (the common length).
    #[inline]
    fn narrow_into(x: &[f32], out: &mut [Self]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = Self::from_f32(v);
        }
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    const UNIT_ROUNDOFF: f32 = 0.0;
    const SUBNORMAL_STEP: f32 = 0.0;
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn widen<const N: usize>(x: &[Self; N]) -> [f32; N] {
        *x
    }
    #[inline(always)]
    fn as_f32<'a, const N: usize>(x: &'a [Self], _: &'a mut [f32; N]) -> &'a [f32] {
        x
    }
    #[inline(always)]
    fn narrow_into(x: &[f32], out: &mut [Self]) {
        let n = x.len().min(out.len());
        if let (Some(out), Some(x)) = (out.get_mut(..n), x.get(..n)) {
            out.copy_from_slice(x);
        }
    }
}

/// A 16-bit element: its name, unit roundoff, subnormal step and how `N`
/// values widen.
macro_rules! sixteen_bit {
    ($t:ty, $name:literal, $u:expr, $sub:expr, $widen:expr) => {
        impl Element for $t {
            const NAME: &'static str = $name;
            const UNIT_ROUNDOFF: f32 = $u;
            const SUBNORMAL_STEP: f32 = $sub;
            const ZERO: Self = <$t>::ZERO;
            #[inline(always)]
            fn from_f32(x: f32) -> Self {
                <$t>::from_f32(x)
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                <$t>::to_f32(self)
            }
            #[inline(always)]
            fn widen<const N: usize>(x: &[Self; N]) -> [f32; N] {
                $widen(x)
            }
            #[inline(always)]
            fn as_f32<'a, const N: usize>(x: &'a [Self], buf: &'a mut [f32; N]) -> &'a [f32] {
                let n = x.len().min(N);
                for (b, &v) in buf.iter_mut().zip(x) {
                    *b = v.to_f32();
                }
                buf.get(..n).unwrap_or_default()
            }
        }
    };
}

sixteen_bit!(f16, "f16", 1.0 / 2048.0, 1.0 / 16_777_216.0, widen_f16);
sixteen_bit!(
    bf16,
    "bf16",
    1.0 / 256.0,
    f32::from_bits(1 << 16),
    widen_bf16
);

/// `N` `f16` values through `half`'s slice conversion: F16C or the FP16
/// extension where the build has them (the lengths equal by construction).
#[inline(always)]
fn widen_f16<const N: usize>(x: &[f16; N]) -> [f32; N] {
    use half::slice::HalfFloatSliceExt;
    let mut out = [0.0; N];
    x.as_slice().convert_to_f32_slice(&mut out);
    out
}

/// `N` `bf16` values: each one's 16 bits become the top half of an `f32`,
/// a shift the compiler does on whole vectors.
#[inline(always)]
fn widen_bf16<const N: usize>(x: &[bf16; N]) -> [f32; N] {
    x.map(|b| f32::from_bits(u32::from(b.to_bits()) << 16))
}

/// A key or value row the kernel reads: `[E; D]` for a compile-time head
/// dimension, or `[E]`, of any [`Element`].
pub(crate) trait Row {
    /// The stored element.
    type Elem: Element;
    /// The row's values as stored.
    fn elems(&self) -> &[Self::Elem];
}

impl<E: Element, const D: usize> Row for [E; D] {
    type Elem = E;
    #[inline(always)]
    fn elems(&self) -> &[E] {
        self
    }
}

impl<E: Element> Row for [E] {
    type Elem = E;
    #[inline(always)]
    fn elems(&self) -> &[E] {
        self
    }
}
