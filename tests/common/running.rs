//! Running a kernel on a case, the oracle and the contract, bit comparisons,
//! and indexing the runtime layout.

use super::*;

/// Runs `kernel` on `case` with `out` filled with `init` first; the kernel
/// must accept the case.
pub fn run_with(kernel: Kernel, case: &Case, init: f32) -> Vec<f32> {
    let len = case.shape.q_elems().expect("test bug: shape overflows");
    let mut out = vec![init; len];
    kernel(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .unwrap_or_else(|e| panic!("valid case rejected: {e} ({:?})", case.shape));
    out
}

/// Runs `kernel` on `case` with a NaN-poisoned output buffer.
pub fn run(kernel: Kernel, case: &Case) -> Vec<f32> {
    run_with(kernel, case, f32::NAN)
}

/// The f64 oracle on `case`.
pub fn oracle(case: &Case) -> Vec<f64> {
    let mut out = vec![f64::NAN; case.shape.q_elems().expect("test bug")];
    reference::causal_attention_f64(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .expect("valid case rejected by the oracle");
    out
}

/// The f64 oracle's `Σⱼ wⱼ·|vⱼ|` on `case`: the contract's scale.
pub fn mass(case: &Case) -> Vec<f64> {
    let mut out = vec![f64::NAN; case.shape.q_elems().expect("test bug")];
    reference::attention_mass_f64(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .expect("valid case rejected by the oracle");
    out
}

/// The accuracy contract for `fast` with `naive` as its naive32: the
/// a-priori bound, then, on ordinary inputs (every entry within
/// [`ORDINARY`]), the precision check.
pub fn contract(fast: Kernel, naive: Kernel, case: &Case) -> Verdict {
    let out = run(fast, case);
    let naive32 = run(naive, case);
    let ref64 = oracle(case);
    // Under Miri (which looks for undefined behaviour, and is thousands of
    // times slower) the bound's f64 arithmetic, safe code that every native
    // run checks, would be most of a suite's time.
    if !cfg!(miri) {
        check_error_bound(&out, &ref64, &error_bound(case))
            .map_err(|v| format!("a-priori bound: {v} for {:?}", case.shape))?;
    }
    if !ordinary(&[&case.q, &case.k, &case.v]) {
        return Ok(());
    }
    check_contract_with_mass(&out, &naive32, &ref64, &mass(case))
        .map_err(|v| format!("precision: {v} for {:?}", case.shape))
}

/// The largest entry magnitude of an ordinary input: where the precision
/// check applies.
pub const ORDINARY: f32 = 4.0;

/// Whether every entry of `parts` (an input's `q`, `k` and `v`) is within
/// `±ORDINARY` (NaN and infinities are not).
pub fn ordinary(parts: &[&[f32]]) -> bool {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .all(|x| x.abs() <= ORDINARY)
}

/// The most a score `scale·q·k` summed in any order (with or without fused
/// multiply-adds) may differ from the exact one: `γ_{D+2}·scale·Σ_d |q_d·k_d|`,
/// the score term of the a-priori bound ([`reference::error_bound`]).
pub fn score_error_bound(q: &[f32], k: &[f32], scale: f32) -> f64 {
    let u = f64::from(f32::EPSILON) / 2.0;
    let h = q.len() as f64 + 2.0;
    let gamma = h * u / (1.0 - h * u);
    let magnitude: f64 = q
        .iter()
        .zip(k)
        .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
        .sum();
    gamma * f64::from(scale) * magnitude
}

/// The a-priori error bound ([`reference::error_bound`]) on `case`.
pub fn error_bound(case: &Case) -> Vec<f64> {
    let mut out = vec![f64::NAN; case.shape.q_elems().expect("test bug")];
    reference::error_bound(&case.shape, &case.q, &case.k, &case.v, &mut out)
        .expect("valid case rejected by the bound");
    out
}

/// The raw bits of `x`.
pub fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// `a` and `b` hold the same bits; otherwise the first difference.
pub fn same_bits(what: &str, a: &[f32], b: &[f32]) -> Verdict {
    if a.len() != b.len() {
        return Err(format!("{what}: lengths {} and {}", a.len(), b.len()));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: index {i} differs: {:e} vs {:e}",
            a[i], b[i]
        )),
    }
}

/// Range of row `(token, head)` in a buffer with `heads` heads per token.
pub fn row(token: usize, head: usize, heads: usize, d: usize) -> std::ops::Range<usize> {
    let start = (token * heads + head) * d;
    start..start + d
}

/// Query heads per key/value head.
pub fn group(s: &Shape) -> usize {
    s.heads / s.kv_heads
}

/// Position of query 0 among the keys (`kv_len − q_len`).
pub fn offset(s: &Shape) -> usize {
    s.kv_len - s.q_len
}
