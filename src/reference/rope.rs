//! The textbook RoPE rotation in f64: the specification of
//! [`rope::Rope`](crate::rope::Rope).

use crate::math;
use crate::rope::Layout;

/// `(cos, sin)` of the angle of pair `pair` at `position` for head
/// dimension `head_dim`, in f64 by `libm`: `θ = base^(−2·pair/head_dim)`
/// (`pow`), then the angle `position·θ`, then `cos` and `sin` of it. Any
/// arguments: a zero `head_dim` or a base that is not finite and greater
/// than 1 gives whatever `pow` gives.
///
/// ```
/// use microattn::reference::rope_cos_sin_f64;
/// assert_eq!(rope_cos_sin_f64(10_000.0, 8, 0, 3), (1.0, 0.0));
/// let (cos, sin) = rope_cos_sin_f64(10_000.0, 8, 2, 0); // θ₀ = 1
/// assert!((cos - 2f64.cos()).abs() < 1e-15 && (sin - 2f64.sin()).abs() < 1e-15);
/// ```
#[must_use]
#[inline]
pub fn rope_cos_sin_f64(base: f64, head_dim: usize, position: usize, pair: usize) -> (f64, f64) {
    let theta = math::pow_f64(base, -((2 * pair) as f64) / head_dim as f64);
    let angle = position as f64 * theta;
    (math::cos_f64(angle), math::sin_f64(angle))
}

/// `row` rotated as the token at `position`, in f64: pair `i` (dimensions
/// `i` and `i + D/2` for [`Layout::HalfSplit`], `2i` and `2i + 1` for
/// [`Layout::Interleaved`]) turned by the angle of [`rope_cos_sin_f64`],
/// `(x·cos − y·sin, x·sin + y·cos)`. No table, no position limit. `D` odd
/// is a compile-time error.
///
/// ```
/// use microattn::{reference::rope_rotate_f64, rope::Layout};
/// // θ₀ = 1, θ₁ = 10000^(−1/2) = 0.01; position 100 turns pair 1 by 1 radian.
/// let out = rope_rotate_f64(&[1.0, 0.0, 0.0, 1.0], 100, 10_000.0, Layout::Interleaved);
/// assert!((out[2] + 1f64.sin()).abs() < 1e-15 && (out[3] - 1f64.cos()).abs() < 1e-15);
/// ```
#[must_use]
#[inline]
pub fn rope_rotate_f64<const D: usize>(
    row: &[f32; D],
    position: usize,
    base: f64,
    layout: Layout,
) -> [f64; D] {
    const { assert!(D.is_multiple_of(2), "head dimension D must be even") };
    let mut out = [0.0f64; D];
    for i in 0..D / 2 {
        let (a, b) = match layout {
            Layout::HalfSplit => (i, i + D / 2),
            Layout::Interleaved => (2 * i, 2 * i + 1),
        };
        let (cos, sin) = rope_cos_sin_f64(base, D, position, i);
        let (x, y) = (f64::from(row[a]), f64::from(row[b]));
        out[a] = x * cos - y * sin;
        out[b] = x * sin + y * cos;
    }
    out
}
