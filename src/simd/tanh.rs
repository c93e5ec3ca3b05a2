//! `tanh` on lanes, for logit soft-capping (`cap·tanh(s/cap)`).
//!
//! The work is done on `a = |x|`, and the sign of `x` is put back last
//! (`tanh` is odd), so `tanh(−x) = −tanh(x)` bit for bit and `tanh(±0) = ±0`.
//! Two results are computed for every lane and one is selected (no branch
//! on the data, the same instructions for every input):
//!
//! 1. `a < 0.55`: the odd polynomial `a + a·s·P(s)`, `s = a²`, with `P` of
//!    degree 4 (so `tanh` to degree 11), fitted by Remez to the relative
//!    error of `tanh` on `[0, 0.55]` (below 2⁻²⁹·⁸ before the coefficients
//!    are rounded to f32). The polynomial part `a·s·P(s)` is at most a tenth
//!    of `a`, so the last addition carries the rounding; a subnormal `a`
//!    gives `a` exactly (`a·s` underflows to 0).
//! 2. `a ≥ 0.55`: `1 − 2e/(1 + e)` with `e = e^{−2a}` by the softmax
//!    [`exp_nonpositive`] (argument `≤ 0`, as that exp requires). Here
//!    `tanh a ≥ 0.5` and `2e/(1 + e) ≤ 0.5`, so the subtraction cancels no
//!    leading bits: the errors of `e` and of the division reach the result
//!    at most halved. From `a ≈ 9.01` on the result rounds to exactly 1,
//!    and `e` flushed to 0 (`a > 43.6`) or `a = +inf` give 1 exactly.
//!
//! NaN stays NaN (it fails `a < 0.55` and goes through the exp, which keeps
//! it). Below 0.55 the exp form would lose relative accuracy (`1 − e`
//! cancels as `a → 0`); the tests show that it fails the bound there.
//!
//! Cost per lane vector: 37 lane operations, one of them a division: `|x|`
//! (1); the polynomial (7: `s`, four `mul_add` of Horner, `a·s`, the last
//! `mul_add`); `−2a` (1); [`exp_nonpositive`] (20); `e + e`, `1 + e`, the
//! division, `1 − q` (4); the compare and select (2); the sign of `x` put
//! back (2: an and, an xor). `mul_add` is fused where the target has FMA.
//!
//! Measured error against the f64 `tanh`, in ULP of the exact result
//! (of its binade), over every f32: at most 1.50 ULP with FMA (AVX-512,
//! at `x ≈ 0.565`) and 1.51 ULP without (SSE2, at `x ≈ 0.580`), both in the
//! exp form just above the switch, where the error of `e` weighs most.
//! The tests hold it to [`MAX_ULP`] (the exhaustive test is `#[ignore]`d; a
//! dense grid of `[−10, 10]` and the edge values run with every
//! `cargo test`).

use super::Lane;
use super::exp::exp_nonpositive;

/// The error bound, in ULP of the exact result, that the tests hold this
/// `tanh` to over every f32: the measured 1.51 ULP and half an ULP for the
/// rounding of backends not measured here.
#[cfg(test)]
pub(crate) const MAX_ULP: f64 = 2.0;

/// Below this `|x|` the polynomial, from it the exp form (`tanh` is 0.5 at
/// `ln(3)/2 ≈ 0.5493`).
const SMALL: f32 = 0.55;

/// `P(s)` of the polynomial `a + a·s·P(s)`, lowest degree first: a minimax
/// fit of `tanh(a)` on `[0, 0.55]`, weighted for relative error.
const ODD: [f32; 5] = [
    -0.333_333_16,
    0.133_325_86,
    -0.053_852_31,
    0.021_071_68,
    -0.006_274_24,
];

/// `tanh(x)` lane by lane, every f32 accepted. See the module docs for the
/// method, the cost and the bound.
#[inline(always)]
pub(crate) fn tanh(x: Lane) -> Lane {
    odd(x, |a| {
        a.simd_lt(Lane::splat(SMALL))
            .select(polynomial(a, &ODD), exp_form(a))
    })
}

/// `f(|x|)` with the sign of `x`: `f` runs on `a ≥ 0` (or NaN) and returns
/// a result with a clear sign bit, which then takes the sign of `x`.
#[inline(always)]
fn odd(x: Lane, f: impl Fn(Lane) -> Lane) -> Lane {
    f(x.abs()) ^ (x & Lane::splat(-0.0))
}

/// `a + a·s·P(s)` with `s = a²` and `P` by Horner from `coefficients`
/// (lowest degree first).
#[inline(always)]
fn polynomial(a: Lane, coefficients: &[f32]) -> Lane {
    let s = a * a;
    let Some((&last, lower)) = coefficients.split_last() else {
        return a;
    };
    let p = lower
        .iter()
        .rev()
        .fold(Lane::splat(last), |p, &c| p.mul_add(s, Lane::splat(c)));
    (a * s).mul_add(p, a)
}

/// `1 − 2e/(1 + e)` with `e = e^{−2a}`: `tanh(a)` for `a ≥ 0`, accurate
/// where `tanh(a) ≥ 0.5`.
#[inline(always)]
fn exp_form(a: Lane) -> Lane {
    let e = exp_nonpositive(a * Lane::splat(-2.0));
    let q = (e + e) / (e + Lane::ONE);
    Lane::ONE - q
}

#[cfg(test)]
mod tests {
    use super::super::LANE_WIDTH;
    use super::*;
    use crate::math::tanh_f64;

    /// A `tanh` on lanes: the real one, or a broken one the check must reject.
    type Tanh = fn(Lane) -> Lane;

    fn tanh1(x: f32) -> f32 {
        tanh(Lane::splat(x)).to_array()[0]
    }

    /// Distance from `got` to the exact `want`, in ULP of the binade of
    /// `want` (the spacing of the f32 just below or at `|want|`, so a result
    /// just below 1 counts in ULP of `[0.5, 1)`).
    fn ulps(got: f32, want: f64) -> f64 {
        let magnitude = want.abs();
        let mut w = magnitude as f32;
        if f64::from(w) > magnitude {
            w = f32::from_bits(w.to_bits() - 1);
        }
        let ulp = f64::from(f32::from_bits(w.to_bits() + 1) - w);
        (f64::from(got) - want).abs() / ulp
    }

    /// The worst error so far and where.
    #[derive(Clone, Copy, Default)]
    struct Worst {
        ulp: f64,
        at: f32,
    }

    impl Worst {
        fn max(self, other: Worst) -> Worst {
            if other.ulp > self.ulp { other } else { self }
        }
    }

    /// `f` on the values `xs` and on their negations: each `−x` must give
    /// exactly `−f(x)`, NaN must give NaN, and every other result is
    /// measured against the f64 `tanh`.
    fn check(f: Tanh, xs: [f32; LANE_WIDTH], worst: Worst) -> Worst {
        let got = f(Lane::from(xs)).to_array();
        let got_neg = f(-Lane::from(xs)).to_array();
        let mut worst = worst;
        for ((&x, &y), &y_neg) in xs.iter().zip(&got).zip(&got_neg) {
            if x.is_nan() {
                assert!(y.is_nan() && y_neg.is_nan(), "tanh(NaN) = {y:e}, {y_neg:e}");
                continue;
            }
            assert_eq!(
                y_neg.to_bits(),
                (-y).to_bits(),
                "tanh(±{x:e}): {y:e}, {y_neg:e}"
            );
            let err = ulps(y, tanh_f64(f64::from(x)));
            worst = worst.max(Worst { ulp: err, at: x });
        }
        worst
    }

    /// Every `step`-th f32 bit pattern from `first` up to `last` (both
    /// `≥ +0.0`), and their negations.
    fn sweep(f: Tanh, first: u32, last: u32, step: u32) -> Worst {
        let mut worst = Worst::default();
        let mut xs = [0.0; LANE_WIDTH];
        let mut filled = 0;
        let mut bits = first;
        loop {
            xs[filled] = f32::from_bits(bits);
            filled += 1;
            if filled == LANE_WIDTH {
                worst = check(f, xs, worst);
                filled = 0;
            }
            match bits.checked_add(step) {
                Some(b) if b <= last => bits = b,
                _ => break,
            }
        }
        // The last, partial vector, padded with its own first value.
        if filled > 0 {
            let first = xs[0];
            xs[filled..].fill(first);
            worst = check(f, xs, worst);
        }
        worst
    }

    /// The edge values: zeros, subnormals, the smallest normals, both sides
    /// of the switch to the exp form, where the result turns to 1, where
    /// `e^{−2a}` is flushed, the largest finite values, infinities and NaN.
    fn edges(f: Tanh) -> Worst {
        let min_sub = f32::from_bits(1);
        let around = |x: f32| {
            [
                f32::from_bits(x.to_bits() - 1),
                x,
                f32::from_bits(x.to_bits() + 1),
            ]
        };
        let mut values = std::vec![0.0, min_sub, 2.0 * min_sub, 1.0e-40, 1.0e-30, 1.0e-10];
        for x in [f32::MIN_POSITIVE, SMALL, 0.549_306_1, 9.01, 43.6, 88.0] {
            values.extend(around(x));
        }
        values.extend([
            0.25,
            0.5,
            1.0,
            2.0,
            1.0e10,
            f32::MAX,
            f32::INFINITY,
            f32::NAN,
        ]);
        let mut worst = Worst::default();
        for chunk in values.chunks(LANE_WIDTH) {
            let mut xs = [chunk[0]; LANE_WIDTH];
            xs[..chunk.len()].copy_from_slice(chunk);
            worst = check(f, xs, worst);
        }
        worst
    }

    /// A dense grid of `[−10, 10]`: every 193rd f32 of `[0, 10]` (about 5.6
    /// million values, every binade) and their negations, plus the edge
    /// values, held to [`MAX_ULP`].
    #[test]
    fn tanh_dense_grid_within_bound() {
        let worst = sweep(tanh, 0, 10.0f32.to_bits(), 193).max(edges(tanh));
        std::eprintln!("worst on the grid: {} ULP at {:e}", worst.ulp, worst.at);
        assert!(worst.ulp <= MAX_ULP, "{} ULP at {:e}", worst.ulp, worst.at);
    }

    /// Every f32 (each positive bit pattern, and its negation), on every
    /// core: run with `cargo test --release -- --ignored tanh_every_f32`.
    #[test]
    #[ignore = "exhaustive: a minute or a few in release, on two cores"]
    fn tanh_every_f32_within_bound() {
        let last = f32::NAN.to_bits() | 0x007f_ffff;
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get()) as u32;
        let per = last / threads + 1;
        let worst = std::thread::scope(|scope| {
            let handles: std::vec::Vec<_> = (0..threads)
                .map(|t| {
                    let first = t * per;
                    let end = first.saturating_add(per - 1).min(last);
                    scope.spawn(move || sweep(tanh, first, end, 1))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold(Worst::default(), Worst::max)
        });
        std::eprintln!("worst: {} ULP at {:e}", worst.ulp, worst.at);
        assert!(worst.ulp <= MAX_ULP, "{} ULP at {:e}", worst.ulp, worst.at);
    }

    #[test]
    fn tanh_edges() {
        assert_eq!(tanh1(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh1(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh1(f32::INFINITY).to_bits(), 1.0f32.to_bits());
        assert_eq!(tanh1(f32::NEG_INFINITY).to_bits(), (-1.0f32).to_bits());
        assert!(tanh1(f32::NAN).is_nan());
        assert!(tanh1(-f32::NAN).is_nan());
        for x in [9.1, 20.0, 43.0, 44.0, 88.0, 1.0e10, f32::MAX] {
            assert_eq!(tanh1(x).to_bits(), 1.0f32.to_bits(), "tanh({x:e})");
            assert_eq!(tanh1(-x).to_bits(), (-1.0f32).to_bits(), "tanh(-{x:e})");
        }
        for bits in [1, 2, 0x7f_ffff, 0x80_0000, 0x80_0001] {
            let x = f32::from_bits(bits);
            assert_eq!(tanh1(x).to_bits(), bits, "tanh({x:e})");
            assert_eq!(tanh1(-x).to_bits(), (-x).to_bits(), "tanh(-{x:e})");
        }
    }

    /// The check can fail: the exp form alone (`1 − 2e/(1 + e)` down to 0,
    /// where `1 − e` cancels) is far outside the bound on the same grid.
    #[test]
    fn tanh_check_rejects_the_exp_form_near_zero() {
        let worst = sweep(|x| odd(x, exp_form), 0, 10.0f32.to_bits(), 1931);
        std::eprintln!("worst: {} ULP at {:e}", worst.ulp, worst.at);
        assert!(
            worst.ulp > 1.0e3 * MAX_ULP,
            "{} ULP at {:e}",
            worst.ulp,
            worst.at
        );
    }

    /// The check can fail: the same scheme with a polynomial of too low a
    /// degree is outside the bound: `P` cut to degree 3 (`tanh` to degree
    /// 9 with the degree-11 fit's coefficients), or a Remez fit of degree 2
    /// (`tanh` to degree 7, relative error 2⁻¹⁹·⁵).
    #[test]
    fn tanh_check_rejects_a_lower_degree() {
        let truncated: Tanh = |x| {
            odd(x, |a| {
                a.simd_lt(Lane::splat(SMALL))
                    .select(polynomial(a, &ODD[..4]), exp_form(a))
            })
        };
        let refitted: Tanh = |x| {
            odd(x, |a| {
                let p = [-0.333_245_13, 0.131_523_56, -0.043_099_646];
                a.simd_lt(Lane::splat(SMALL))
                    .select(polynomial(a, &p), exp_form(a))
            })
        };
        for f in [truncated, refitted] {
            let worst = sweep(f, 0, 10.0f32.to_bits(), 1931).max(edges(f));
            std::eprintln!("worst: {} ULP at {:e}", worst.ulp, worst.at);
            assert!(worst.ulp > MAX_ULP, "{} ULP at {:e}", worst.ulp, worst.at);
        }
    }
}
