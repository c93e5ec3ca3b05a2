//! Scalar math: the only file that calls `libm`.
//!
//! `libm` is a port of musl's libm: correctly rounded in most cases and
//! within 1 ULP everywhere for `expf` and `exp`, `sqrtf` is exact. These are
//! the scalar functions of [`softmax`](crate::softmax), the weights and the
//! reference; the fused kernel's softmax exp runs on lanes, in `simd::exp`.

/// `e^x` in f32 (libm `expf`, < 1 ULP). `exp(0) == 1` exactly,
/// `exp(-inf) == 0`, `exp(NaN)` is NaN.
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    libm::expf(x)
}

/// `e^x` in f64 (libm `exp`, < 1 ULP), for the f64 oracle.
#[inline]
pub(crate) fn exp_f64(x: f64) -> f64 {
    libm::exp(x)
}

/// Natural logarithm in f32 (libm `logf`, < 1 ULP); `ln(0) = -inf`.
#[inline]
pub(crate) fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// `2^x` in f64 (libm `exp2`), for the standard ALiBi slopes (exact at
/// integer `x`).
#[inline]
pub(crate) fn exp2_f64(x: f64) -> f64 {
    libm::exp2(x)
}

/// Square root in f32, correctly rounded.
#[inline]
pub(crate) fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Hyperbolic tangent in f64 (libm `tanh`, < 1 ULP), for the f64 oracle and
/// the tests of the lane `tanh`.
#[inline]
pub(crate) fn tanh_f64(x: f64) -> f64 {
    libm::tanh(x)
}

/// Hyperbolic tangent in f32 (libm `tanhf`, < 1 ULP); `tanh(±0) = ±0`,
/// `tanh(±inf) = ±1`, `tanh(NaN)` is NaN.
#[inline]
pub(crate) fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// `sin x` in f64 (libm `sin`, < 1 ULP), for the RoPE reference.
#[inline]
pub(crate) fn sin_f64(x: f64) -> f64 {
    libm::sin(x)
}

/// `cos x` in f64 (libm `cos`, < 1 ULP), for the RoPE reference.
#[inline]
pub(crate) fn cos_f64(x: f64) -> f64 {
    libm::cos(x)
}

/// `x^y` in f64 (libm `pow`, < 1 ULP), for the RoPE reference.
#[inline]
pub(crate) fn pow_f64(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
