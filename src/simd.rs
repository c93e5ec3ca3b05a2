//! Lanes: the only file that names `wide` types.
//!
//! Everything here works on plain `&[f32]` rows of any length: the part that
//! fills whole lanes runs on [`Lane`] (`wide::f32x8`), the rest (the *tail*,
//! fewer than [`LANES`] values) runs in scalar code. `wide` picks its backend
//! when it is compiled (`target_feature`), so the same source becomes AVX2+FMA
//! (`-C target-cpu=x86-64-v3`), 2×SSE2, NEON, simd128 or scalar arrays on a
//! microcontroller.
//!
//! Rounding differs between backends (`mul_add` is fused only where the target
//! has FMA), so results are bit-identical within one build, and within the
//! accuracy contract across builds.

use wide::f32x8;

/// The lane type the kernels run on.
type Lane = f32x8;

/// Number of `f32` values in one [`Lane`].
pub(crate) const LANES: usize = 8;

/// `Σ a[i]·b[i]` over the common length of `a` and `b`.
///
/// Lanes first (one accumulator, fused multiply-add where the target has it,
/// then a horizontal sum), then the tail in order.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_lanes, a_tail) = a.as_chunks::<LANES>();
    let (b_lanes, b_tail) = b.as_chunks::<LANES>();
    let mut acc = Lane::ZERO;
    for (x, y) in a_lanes.iter().zip(b_lanes) {
        acc = Lane::from(*x).mul_add(Lane::from(*y), acc);
    }
    let mut sum = if a_lanes.is_empty() {
        0.0
    } else {
        acc.reduce_add()
    };
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum += x * y;
    }
    sum
}

/// `acc[i] += p · x[i]` over the common length.
#[inline(always)]
pub(crate) fn axpy(acc: &mut [f32], p: f32, x: &[f32]) {
    let (acc_lanes, acc_tail) = acc.as_chunks_mut::<LANES>();
    let (x_lanes, x_tail) = x.as_chunks::<LANES>();
    let pv = Lane::splat(p);
    for (a, x) in acc_lanes.iter_mut().zip(x_lanes) {
        *a = pv.mul_add(Lane::from(*x), Lane::from(*a)).to_array();
    }
    for (a, x) in acc_tail.iter_mut().zip(x_tail) {
        *a += p * x;
    }
}

/// `acc[i] *= alpha`.
#[inline(always)]
pub(crate) fn scale(acc: &mut [f32], alpha: f32) {
    let (lanes, tail) = acc.as_chunks_mut::<LANES>();
    let av = Lane::splat(alpha);
    for a in lanes {
        *a = (Lane::from(*a) * av).to_array();
    }
    for a in tail {
        *a *= alpha;
    }
}

/// `acc[i] /= d`. Division (not multiplication by `1/d`) keeps each value
/// correctly rounded.
#[inline(always)]
pub(crate) fn div(acc: &mut [f32], d: f32) {
    let (lanes, tail) = acc.as_chunks_mut::<LANES>();
    let dv = Lane::splat(d);
    for a in lanes {
        *a = (Lane::from(*a) / dv).to_array();
    }
    for a in tail {
        *a /= d;
    }
}

/// The largest value of `x`, ignoring NaN; `-inf` for an empty or all-NaN row.
///
/// Order-independent, so it equals a sequential `if v > m { m = v }` fold
/// (up to the sign of a zero maximum).
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let (lanes, tail) = x.as_chunks::<LANES>();
    let mut m = Lane::splat(f32::NEG_INFINITY);
    for l in lanes {
        m = m.max(Lane::from(*l));
    }
    let mut best = f32::NEG_INFINITY;
    for &v in m.to_array().iter().chain(tail) {
        if v > best {
            best = v;
        }
    }
    best
}
