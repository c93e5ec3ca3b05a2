//! The near-exact properties (bounds that hold for any summation order) as
//! checks returning a verdict.

use super::*;

/// The smallest subnormal `f32`, 2⁻¹⁴⁹: twice the absolute error bound of a
/// rounding that underflows.
const TINY: f64 = 1.401_298_464_324_817e-45;

/// Each output value lies within `[min, max]` of its column of visible
/// values, up to `(k + ½)·ε·max|column| + (k + 1)·2⁻¹⁴⁹`, with `n` the number
/// of visible keys and `k = n + ⌈n/8⌉ + 1`.
///
/// Why: the output is `Σ pⱼvⱼ / Σ pⱼ` for computed weights `pⱼ ≥ 0`, and the
/// exact weighted mean with those weights lies in `[min, max]`. The computed
/// numerator and denominator each carry relative errors bounded by γₖ ≈ k·u
/// (u = ε/2), where `k` counts the roundings on a term's path: at most `n`
/// additions, one per rescale (at most `⌈n/8⌉`, once per block of 8 keys) and
/// one product. A ratio of two such sums is off by at most `2γₖ·max|v|`, plus
/// `u·max|v|` for the final division: `(2k + 1)·u = (k + ½)·ε`. Roundings
/// that underflow (subnormal values) add an absolute error of at most 2⁻¹⁵⁰
/// each, not amplified since the normaliser is ≥ 1 (the largest score weighs
/// `exp(0) = 1`). First-order (second-order terms are < 1e-4 of this for
/// n ≤ 64), independent of summation order, lanes or FMA. Computed in f64 so
/// that the check itself does not round.
pub fn within_value_range(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    let out = run(kernel, case);
    for t in 0..s.q_len {
        let visible = offset(&s) + t + 1;
        let k = (visible + visible.div_ceil(8) + 1) as f64;
        for h in 0..s.heads {
            let g = h / group(&s);
            for (c, &o) in out[row(t, h, s.heads, s.head_dim)].iter().enumerate() {
                let column =
                    (0..visible).map(|j| f64::from(case.v[row(j, g, s.kv_heads, s.head_dim)][c]));
                let lo = column.clone().fold(f64::INFINITY, f64::min);
                let hi = column.clone().fold(f64::NEG_INFINITY, f64::max);
                let slack =
                    (k + 0.5) * f64::from(f32::EPSILON) * lo.abs().max(hi.abs()) + (k + 1.0) * TINY;
                let o = f64::from(o);
                if !(lo - slack <= o && o <= hi + slack) {
                    return Err(format!(
                        "query {t} head {h} dim {c}: {o:e} outside [{lo:e}, {hi:e}] ± {slack:e}, {s:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// With `q = 0` every score is 0, every weight exactly `exp(0) = 1`, so the
/// output is the plain mean of the visible value rows, within
/// `(n/2 + 1)·ε·mean|vⱼ| + 2⁻¹⁴⁹`.
///
/// Why: with weights exactly 1 the products are exact, the normaliser is the
/// integer `n` exactly, and the numerator is a sum of `n` terms, in whatever
/// order, off by at most γₙ₋₁·Σ|vⱼ| ≈ (n−1)·u·Σ|vⱼ| (u = ε/2; additions do
/// not underflow inexactly); dividing by `n` turns that into
/// (n−1)·u·mean|vⱼ| and adds one rounding, u·|mean| or, if it underflows,
/// 2⁻¹⁵⁰. In total ≤ n·u·mean|vⱼ| = (n/2)·ε·mean|vⱼ|; the `+1` absorbs the
/// second-order terms and the f64 mean's own error.
pub fn zero_query_is_mean(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    let zero = Case {
        q: vec![0.0; case.q.len()],
        ..case.clone()
    };
    let out = run(kernel, &zero);
    for t in 0..s.q_len {
        let n = offset(&s) + t + 1;
        for h in 0..s.heads {
            let g = h / group(&s);
            for (c, &o) in out[row(t, h, s.heads, s.head_dim)].iter().enumerate() {
                let column =
                    (0..n).map(|j| f64::from(case.v[row(j, g, s.kv_heads, s.head_dim)][c]));
                let mean = column.clone().sum::<f64>() / n as f64;
                let mean_abs = column.map(f64::abs).sum::<f64>() / n as f64;
                let tol = (n as f64 / 2.0 + 1.0) * f64::from(f32::EPSILON) * mean_abs + TINY;
                if (f64::from(o) - mean).abs() > tol {
                    return Err(format!(
                        "query {t} head {h} dim {c}: {o:e} vs mean {mean:e} (tol {tol:e}), {s:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A row of softmax weights sums to 1 and what lies beyond `visible` is
/// exactly `+0.0`.
///
/// Why `(n + 1)·u` (u = ε/2) on the sum of `n` visible weights, summed in
/// f64 (exact to ~1e-16): each weight is `fl(eⱼ / z)` with `z` the computed
/// sum of the same computed `eⱼ`, so `Σ fl(eⱼ/z) = (Σeⱼ / z)(1 ± u) = 1/(1 ±
/// γₙ₋₁)·(1 ± u)`: off by at most `(n − 1)·u + u` to first order; the `+1`
/// absorbs the second-order terms. The accuracy of `exp` does not enter: the
/// normaliser is the sum of the same rounded exponentials.
pub fn weights_row_sums_to_one(w: &[f32], visible: usize, what: &str) -> Verdict {
    let sum: f64 = w[..visible].iter().map(|&x| f64::from(x)).sum();
    let tol = (visible + 1) as f64 * f64::from(f32::EPSILON) / 2.0;
    if (sum - 1.0).abs() > tol {
        return Err(format!("{what}: weights sum to {sum:e} (tol {tol:e})"));
    }
    if let Some(j) = w[visible..].iter().position(|x| x.to_bits() != 0) {
        return Err(format!(
            "{what}: weight {} above the diagonal is {:e}, not +0.0",
            visible + j,
            w[visible + j]
        ));
    }
    Ok(())
}
