//! The accuracy contract: the a-priori bound every kernel meets
//! ([`error_bound`], [`check_error_bound`]), the precision check beside it
//! ([`check_contract_with_mass`], [`check_contract`]) and the magnitudes both
//! are measured against ([`attention_mass_f64`]).

#[cfg(doc)]
use super::causal_attention_f64;
use super::rows::{Sizes, for_each_row};
use super::{dot, softmax_weighted_map, weighs};
use crate::error::Error;
use crate::{Shape, math};

/// The f64 oracle's weighted sum of `|v|` instead of `v`, the scale of an
/// output's rounding errors (see [`check_contract_with_mass`]): for each
/// output value `Σⱼ (wⱼ + 2⁻¹⁰⁵)·|vⱼ|`. The `2⁻¹⁰⁵ = 2⁻¹²⁶/(4ε)` per key is the
/// allowance for the fast kernel's weights below `f32::MIN_POSITIVE`, which
/// its exp flushes to exactly 0 (each moves an output by less than
/// `2⁻¹²⁶·|vⱼ|`); it is below `3e-32·Σ|vⱼ|`, nothing next to the weights.
///
/// # Errors
/// As [`causal_attention_f64`].
#[inline]
pub fn attention_mass_f64(
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f64],
) -> Result<(), Error> {
    let s = Sizes::checked(shape, (q, k, v), out.len())?;
    let scale = f64::from(s.scale);
    for_each_row(&s, (q, k, v), out, |q, keys, values, out| {
        let scores = keys.map(|k| dot::<f64>(q, k) * scale);
        // The flush allowance: a weight below f32::MIN_POSITIVE, which the
        // kernel's exp makes exactly 0, moves an output by less than
        // 2⁻¹²⁶·|vⱼ|; with `4ε·mass` in the bound, `FLUSH·|vⱼ|` per key in
        // the mass covers every key being flushed (masked keys have no
        // weight to flush).
        softmax_weighted_map(scores, None, values, f32::abs, FLUSH, out);
    });
    Ok(())
}

/// `2⁻¹²⁶ / (4ε)`: per key, the mass that makes the contract's `4ε·mass`
/// term at least `2⁻¹²⁶·|v|`, the most a flushed weight can move an output.
pub(super) const FLUSH: f64 = 1.0 / (1u128 << 105) as f64;

/// The unit roundoff of f32, `u = 2⁻²⁴` (half of `f32::EPSILON`).
const U: f64 = 1.0 / (1u64 << 24) as f64;

/// `2⁻¹⁴⁹`, the smallest subnormal f32: twice the most a rounding that
/// underflows can move a value.
const TINY: f64 = 1.0 / (1u128 << 100) as f64 / (1u64 << 49) as f64;

/// `ln 2⁻¹²⁵`: an exp argument below this may give a weight the kernel
/// flushes to 0 (below `2⁻¹²⁶`), with room for the exp's own error.
const LN_FLUSH: f64 = -125.0 * core::f64::consts::LN_2;

/// Roundings on an exp argument, each relative to its magnitude: the
/// subtraction of the maximum, and a base-2 kernel's product with a rounded
/// `log₂ e`.
const ARG_ROUNDINGS: f64 = 3.0;

/// The exp's error bound in units of `u`: 2 ULP of a normal result.
const EXP_UNITS: f64 = 4.0;

/// Higham's `γₖ = k·u / (1 − k·u)`: the relative error of `k` roundings.
fn gamma(k: usize) -> f64 {
    let ku = k as f64 * U;
    ku / (1.0 - ku)
}

/// The a-priori error bound of causal attention, per output value: for
/// every kernel that computes `softmax(scale·QKᵀ)·V` in f32 with any order
/// of summation, with or without fused multiply-add, with an online softmax
/// of any block size (one rescale of its accumulator and running sum per
/// raise of the maximum), an exp within 2 ULP whose results below
/// `f32::MIN_POSITIVE` may be flushed to 0, and the normalising division
/// (or a multiplication by a rounded reciprocal) last:
///
/// `|out − ref64| ≤ bound`, value by value, with `ref64` the f64 oracle
/// [`causal_attention_f64`].
///
/// It holds wherever every score is finite in f32 and each output's running
/// sum of `weight·v` stays below `f32::MAX` (the contract's domain, in the
/// crate docs). [`check_error_bound`] is the check built on it; the crate's
/// kernels are held to it over the test suites' whole grid, large scores
/// included, and by the fuzz targets.
///
/// # Derivation
/// In the style of Higham, *Accuracy and Stability of Numerical
/// Algorithms*, §3.1, with `u = 2⁻²⁴` and `γₖ = k·u/(1 − k·u)`, for one
/// query row over its `n` weighed keys (a `−∞` score is a mask), with the
/// oracle's scores `sⱼ`, maximum `m`, `xⱼ = sⱼ − m`, weights
/// `wⱼ = e^{xⱼ} / Σₖ e^{xₖ}` and `ref = Σⱼ wⱼ vⱼ`:
///
/// 1. **Scores.** A dot product of `D` terms and the product with `scale`
///    has at most `D + 2` roundings on any path, so
///    `|ŝⱼ − sⱼ| ≤ Δⱼ = γ_{D+2}·|scale|·Σ_d |q_d·kⱼ_d|` (plus `(D + 2)·2⁻¹⁴⁹`
///    scaled by the entries, for roundings that underflow). The weights'
///    common factor `e^{m − m̂}` cancels in the normalised output, so each
///    weight moves by a factor within `e^{±Δⱼ}`.
/// 2. **Exp arguments.** `ŝⱼ − m̂`, and the arguments of the rescales that
///    follow key `j` (they add up to at most `|ŝⱼ − m̂|`), each rounded up to
///    three times (the subtraction, a base-2 constant and its product): a
///    factor within `e^{±6u·(|xⱼ| + 2Δ)}`, `Δ = maxⱼ Δⱼ`.
/// 3. **Exp and rescales.** Key `j`'s weight passes its own exp and at most
///    `n − 1` rescale factors, each within 2 ULP (`4u`), and at most
///    `n − 1` products with them: `(1 + 4u)ⁿ·(1 + u)ⁿ ≤ e^{5nu}`.
/// 4. **Sums.** The accumulator `Σ pⱼ·vⱼ` and the normaliser `Σ pⱼ`, in any
///    order, fused or not: at most `n` roundings on a term's path, `γₙ`.
///
/// Together each term of the numerator and of the denominator carries a
/// relative error of at most `ρⱼ = e^{Δⱼ + 6u(|xⱼ|+2Δ) + 5nu}·(1+γₙ) − 1`, and `ρⱼ ≥ 1` for a weight that may be flushed (`x̂ⱼ < ln 2⁻¹²⁵`).
/// For `N̂ = Σ pⱼvⱼ(1+αⱼ)`, `L̂ = Σ pⱼ(1+βⱼ)` with `|αⱼ|, |βⱼ| ≤ ρⱼ` and
/// `R = Σⱼ wⱼρⱼ < 1`:
///
/// `|N̂/L̂ − ref| ≤ (Σⱼ wⱼρⱼ|vⱼ| + |ref|·R) / (1 − R)`,
///
/// and `|ref| ≤ mass = Σⱼ wⱼ|vⱼ|`. The division adds `2u` of the quotient,
/// the products and sums that underflow `(2n + 4)·2⁻¹⁴⁹`, the oracle's own
/// rounding `2⁻⁴⁰·mass`; the whole is widened by `2⁻²⁰` for this function's
/// own f64 arithmetic. Where `R ≥ 1` the bound is `+∞` (scores so large that
/// their rounding alone can move a weight by half).
///
/// # Errors
/// As [`causal_attention_f64`].
///
/// ```
/// use microattn::{Shape, causal_attention_dyn};
/// use microattn::reference::{causal_attention_f64, check_error_bound, error_bound};
/// let shape = Shape::new(3, 3, 1, 1, 2);
/// let (q, k, v) = ([0.5f32, -1.0, 1.0, 0.0, 0.0, 2.0], [1.0f32; 6], [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// let (mut out, mut ref64, mut bound) = ([0.0f32; 6], [0.0f64; 6], [0.0f64; 6]);
/// causal_attention_dyn(&shape, &q, &k, &v, &mut out)?;
/// causal_attention_f64(&shape, &q, &k, &v, &mut ref64)?;
/// error_bound(&shape, &q, &k, &v, &mut bound)?;
/// assert!(check_error_bound(&out, &ref64, &bound).is_ok());
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn error_bound(
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bound: &mut [f64],
) -> Result<(), Error> {
    let s = Sizes::checked(shape, (q, k, v), bound.len())?;
    let scale = f64::from(s.scale);
    let d = s.head_dim;
    let gamma_score = gamma(d + 2);
    for_each_row(&s, (q, k, v), bound, |q, keys, values, out| {
        let q_max = q.iter().fold(0.0f64, |a, &x| a.max(f64::from(x).abs()));
        // Each key's oracle score and its rounding bound Δⱼ.
        let scored = keys.map(|k| {
            let s = dot::<f64>(q, k) * scale;
            let magnitude: f64 = q
                .iter()
                .zip(k)
                .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                .sum::<f64>()
                * scale.abs();
            let k_max = k.iter().fold(0.0f64, |a, &x| a.max(f64::from(x).abs()));
            let underflow = (d + 2) as f64 * TINY * (1.0 + scale.abs()) * (1.0 + q_max + k_max);
            (s, gamma_score * magnitude + underflow)
        });
        let weighed = scored.clone().filter(|&(s, _)| weighs(s));
        let (mut m, mut n, mut delta) = (f64::NEG_INFINITY, 0usize, 0.0f64);
        for (s, dj) in weighed.clone() {
            m = if s > m { s } else { m };
            n += 1;
            delta = delta.max(dj);
        }
        let z: f64 = weighed.clone().map(|(s, _)| math::exp_f64(s - m)).sum();
        // (1 + 4u)ⁿ·(1 + u)ⁿ ≤ e^{5nu}.
        let growth = math::exp_f64((EXP_UNITS + 1.0) * U * n as f64) * (1.0 + gamma(n));
        // Each weighed key's weight wⱼ and relative error ρⱼ, beside its values.
        let terms = scored
            .zip(values)
            .filter(|&((s, _), _)| weighs(s))
            .map(|((s, dj), v)| {
                let x = s - m;
                let arg = 2.0 * ARG_ROUNDINGS * U * (x.abs() + 2.0 * delta);
                let mut rho = math::exp_f64(dj + arg) * growth - 1.0;
                if x - 2.0 * delta - arg < LN_FLUSH {
                    rho = rho.max(1.0);
                }
                ((math::exp_f64(x) / z, rho), v)
            });
        let r: f64 = terms.clone().map(|((w, rho), _)| w * rho).sum();
        // Per value: Σⱼ wⱼ·|vⱼ|·(ρⱼ·per_rho + per_mass) + absolute, the
        // bound of the docs with |ref| ≤ mass.
        let per_rho = (1.0 + 2.0 * U) / (1.0 - r);
        let per_mass = r / (1.0 - r) * (1.0 + 2.0 * U) + 2.0 * U + 1.0 / (1u64 << 40) as f64;
        out.fill((2 * n + 4) as f64 * TINY);
        for ((w, rho), v) in terms {
            let per_unit = w * (rho * per_rho + per_mass);
            for (o, &x) in out.iter_mut().zip(v) {
                *o += per_unit * f64::from(x.abs());
            }
        }
        for o in out.iter_mut() {
            *o = if r < 1.0 {
                *o * (1.0 + 1.0 / (1u64 << 20) as f64)
            } else {
                f64::INFINITY
            };
        }
    });
    Ok(())
}

/// The accuracy contract as a check: `|out − ref64| ≤ bound` for every
/// value, with `ref64` the f64 oracle ([`causal_attention_f64`]) and `bound`
/// [`error_bound`] on the same inputs. A non-finite value must be matched
/// exactly: NaN where and only where `ref64` is NaN, the same infinity where
/// it is infinite.
///
/// # Errors
/// The value that exceeds its bound by the most; a position where exactly
/// one side is NaN (or the infinities differ) is reported with
/// `error = NaN`. Length mismatches are reported at index `min` of the
/// lengths.
///
/// ```
/// use microattn::reference::check_error_bound;
/// let ref64 = [1.0f64, 2.0];
/// let bound = [1e-6f64, 1e-6];
/// assert!(check_error_bound(&[1.0, 2.0], &ref64, &bound).is_ok());
/// assert!(check_error_bound(&[1.0, 2.01], &ref64, &bound).is_err());
/// assert!(check_error_bound(&[1.0, f32::NAN], &ref64, &bound).is_err());
/// ```
#[inline]
pub fn check_error_bound(
    out: &[f32],
    ref64: &[f64],
    bound: &[f64],
) -> Result<(), ContractViolation> {
    let n = ref64.len();
    if out.len() != n || bound.len() != n {
        return Err(ContractViolation {
            index: out.len().min(bound.len()).min(n),
            error: f64::NAN,
            bound: 0.0,
        });
    }
    let mut worst: Option<(f64, ContractViolation)> = None;
    for (index, ((&o, &r), &b)) in out.iter().zip(ref64).zip(bound).enumerate() {
        let o = f64::from(o);
        let error = if r.is_finite() {
            (o - r).abs()
        } else if (r.is_nan() && o.is_nan()) || o == r {
            continue;
        } else {
            f64::NAN
        };
        // NaN (an error, or a bound) never passes.
        if error <= b {
            continue;
        }
        let excess = if error.is_nan() || b.is_nan() {
            f64::INFINITY
        } else {
            error - b
        };
        if worst.is_none_or(|(e, _)| excess > e) {
            let v = ContractViolation {
                index,
                error,
                bound: b,
            };
            worst = Some((excess, v));
        }
    }
    worst.map_or(Ok(()), |(_, v)| Err(v))
}

/// A breach found by [`check_error_bound`], [`check_contract_with_mass`] or
/// [`check_contract`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContractViolation {
    /// Index of the worst value.
    pub index: usize,
    /// `max |out − ref64|` over finite positions (NaN where one side alone is NaN).
    pub error: f64,
    /// The bound it had to meet.
    pub bound: f64,
}

impl core::fmt::Display for ContractViolation {
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "accuracy contract broken at index {}: error {:e} > bound {:e}",
            self.index, self.error, self.bound
        )
    }
}

impl core::error::Error for ContractViolation {}

/// The precision check: a regression that stays inside the a-priori bound
/// ([`error_bound`]) still shows here. The crate's kernels are held to it on
/// ordinary inputs (every entry of `q`, `k` and `v` within `±4`; random and
/// edge cases, not adversarial ones), and to the a-priori bound everywhere:
///
/// `max|out − ref64| ≤ 4·max|naive32 − ref64| + 4ε·max mass64`
///
/// where `ref64` is [`causal_attention_f64`], `naive32` the reference run in
/// f32 on the same inputs, `mass64` is [`attention_mass_f64`] (for each output
/// value `Σⱼ wⱼ·|vⱼ|`, the same weighted sum of the values' magnitudes) and
/// ε = `f32::EPSILON`; maxima run over the whole output. Why this bound: the
/// fast kernel does the same arithmetic in a different order (lanes, blocks,
/// rescaling, its own `exp`, fused multiply-add), so its rounding error is
/// of the same kind and size as the textbook's; the factor 4 absorbs an
/// unlucky order (PyTorch's tests hold its fused attention kernels to the
/// same factor against the same kind of reference), and `4ε·max mass64` covers a few roundings of the weights
/// and of the final division when the textbook happens to be exact. A
/// weight's rounding moves an output by `ε·wⱼ·|vⱼ|`, whatever the sign of
/// the other terms, so the magnitudes, not `|ref64|`, set that scale: when
/// values of opposite signs cancel (`|out| ≪ Σ wⱼ|vⱼ|`), a term in
/// `max|ref64|` is too tight (the fuzz target found such a case, kept in
/// `tests/edge_cases.rs`). A non-finite value must be matched exactly: NaN
/// where and only where `ref64` is NaN, the same infinity where it is
/// infinite.
///
/// # Errors
/// The worst position and the bound it broke; a position where exactly one
/// side is NaN (or the infinities differ) is reported with `error = NaN`. Length
/// mismatches are reported at index `min` of the lengths.
///
/// ```
/// use microattn::reference::check_contract_with_mass;
/// let ref64 = [1.0f64, 2.0];
/// let mass = [1.0f64, 2.0];
/// assert!(check_contract_with_mass(&[1.0, 2.0], &[1.0, 2.0], &ref64, &mass).is_ok());
/// assert!(check_contract_with_mass(&[1.0, 2.5], &[1.0, 2.0], &ref64, &mass).is_err());
/// assert!(check_contract_with_mass(&[1.0, f32::NAN], &[1.0, 2.0], &ref64, &mass).is_err());
/// ```
#[inline]
pub fn check_contract_with_mass(
    out: &[f32],
    naive32: &[f32],
    ref64: &[f64],
    mass64: &[f64],
) -> Result<(), ContractViolation> {
    contract(out, naive32, ref64, mass64)
}

/// [`check_contract_with_mass`] with `mass64 = |ref64|`: a stricter check
/// (`|ref64| ≤ mass64`), for callers without the magnitudes; it equals the
/// contract wherever an output's terms do not cancel (for instance when
/// every `v ≥ 0`).
///
/// # Errors
/// As [`check_contract_with_mass`].
///
/// ```
/// use microattn::reference::check_contract;
/// let ref64 = [1.0f64, 2.0];
/// assert!(check_contract(&[1.0, 2.0], &[1.0, 2.0], &ref64).is_ok());
/// assert!(check_contract(&[1.0, 2.5], &[1.0, 2.0], &ref64).is_err());
/// assert!(check_contract(&[1.0, f32::NAN], &[1.0, 2.0], &ref64).is_err());
/// ```
#[inline]
pub fn check_contract(
    out: &[f32],
    naive32: &[f32],
    ref64: &[f64],
) -> Result<(), ContractViolation> {
    contract(out, naive32, ref64, ref64)
}

/// The contract's inequality (see [`check_contract_with_mass`]).
fn contract(
    out: &[f32],
    naive32: &[f32],
    ref64: &[f64],
    mass64: &[f64],
) -> Result<(), ContractViolation> {
    let n = ref64.len();
    if out.len() != n || naive32.len() != n || mass64.len() != n {
        let index = out.len().min(naive32.len()).min(mass64.len()).min(n);
        return Err(ContractViolation {
            index,
            error: f64::NAN,
            bound: 0.0,
        });
    }
    let finite_abs = |x: f64| if x.is_finite() { x.abs() } else { 0.0 };
    let mut naive_err = 0.0f64;
    let mut ref_max = 0.0f64;
    for ((&a, &r), &m) in naive32.iter().zip(ref64).zip(mass64) {
        if r.is_finite() {
            naive_err = naive_err.max(finite_abs(f64::from(a) - r));
        }
        ref_max = ref_max.max(finite_abs(m));
    }
    let bound = 4.0 * naive_err + 4.0 * f64::from(f32::EPSILON) * ref_max;
    let mut worst: Option<ContractViolation> = None;
    for (index, (&o, &r)) in out.iter().zip(ref64).enumerate() {
        let o = f64::from(o);
        let error = if r.is_finite() {
            (o - r).abs()
        } else if (r.is_nan() && o.is_nan()) || o == r {
            0.0
        } else {
            f64::NAN
        };
        let breaks = error.is_nan() || error > bound;
        let worse = match worst {
            None => true,
            Some(w) => !w.error.is_nan() && (error.is_nan() || error > w.error),
        };
        if breaks && worse {
            worst = Some(ContractViolation {
                index,
                error,
                bound,
            });
        }
    }
    worst.map_or(Ok(()), Err)
}

/// How far storing the keys and values in a narrower type can move an
/// output: for each output value, a bound on `|o(k̃, ṽ) − o(k, v)|`, where
/// `o` is exact attention (the f64 oracle) and `k̃`, `ṽ` are `k`, `v` each
/// rounded once to a type of unit roundoff `u` whose subnormals are `σ`
/// apart (`|x̃ − x| ≤ u·|x| + σ/2`; for a 16-bit cache,
/// [`Element::UNIT_ROUNDOFF`](crate::Element::UNIT_ROUNDOFF) and
/// [`Element::SUBNORMAL_STEP`](crate::Element::SUBNORMAL_STEP)).
///
/// The derivation, per query row with exact weights `wⱼ` over its weighed
/// keys:
/// - a score moves by at most `Δⱼ = |scale|·Σ_d |q_d|·(u·|k_jd| + σ/2)`; let
///   `δ = maxⱼ Δⱼ`;
/// - each weight then moves by a factor within `e^{±2δ}` (the score's own
///   move and the normaliser's), so `|w̃ⱼ − wⱼ| ≤ (e^{2δ} − 1)·wⱼ`;
/// - `õ − o = Σⱼ (w̃ⱼ − wⱼ)·ṽⱼ + Σⱼ wⱼ·(ṽⱼ − vⱼ)`, so
///   `|õ − o| ≤ (e^{2δ} − 1)·Σⱼ wⱼ·((1 + u)·|vⱼ| + σ/2) + Σⱼ wⱼ·(u·|vⱼ| + σ/2)`.
///
/// A 16-bit cache's output is then within
/// [`error_bound`]`(k̃, ṽ) + rounding_error_bound(k, v)` of the oracle on
/// the unrounded inputs: the first term is the kernel's contract on what it
/// stored. Rows with an infinite or NaN input give an infinite bound.
///
/// # Errors
/// As [`causal_attention_f64`].
///
/// ```
/// use microattn::Shape;
/// use microattn::reference::rounding_error_bound;
/// let shape = Shape::new(2, 2, 1, 1, 2);
/// let (q, k, v) = ([1.0f32, 0.0, 0.0, 1.0], [1.0f32; 4], [2.0f32, 0.0, 0.0, 2.0]);
/// let mut bound = [0.0f64; 4];
/// rounding_error_bound(&shape, &q, &k, &v, 1.0 / 2048.0, 0.0, &mut bound)?;
/// // Row 0 sees one key: weight 1 whatever the score, so only v's rounding.
/// assert_eq!(bound[0], 2.0 / 2048.0);
/// assert!(bound[2] > 2.0 / 2048.0); // two keys: their weights can move
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn rounding_error_bound(
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    u: f64,
    sigma: f64,
    bound: &mut [f64],
) -> Result<(), Error> {
    let s = Sizes::checked(shape, (q, k, v), bound.len())?;
    let scale = f64::from(s.scale);
    for_each_row(&s, (q, k, v), bound, |q, keys, values, out| {
        let scores = keys.clone().map(|k| dot::<f64>(q, k) * scale);
        let seen = keys.clone().count();
        let delta = keys
            .map(|k| {
                let moved: f64 = q
                    .iter()
                    .zip(k)
                    .map(|(&a, &b)| f64::from(a).abs() * (u * f64::from(b).abs() + sigma / 2.0))
                    .sum();
                scale.abs() * moved
            })
            .fold(0.0f64, f64::max);
        // One key: its weight is 1 whatever its score.
        let spread = if seen > 1 {
            math::exp_f64(2.0 * delta) - 1.0
        } else {
            0.0
        };
        softmax_weighted_map(scores.clone(), None, values.clone(), f32::abs, 0.0, out);
        // `out` holds Σⱼ wⱼ·|vⱼ| per value.
        for o in out.iter_mut() {
            let mass = *o;
            *o = spread * ((1.0 + u) * mass + sigma / 2.0) + u * mass + sigma / 2.0;
            if o.is_nan() {
                *o = f64::INFINITY;
            }
        }
    });
    Ok(())
}
