//! The check of a fast output against the reference: the crate's accuracy
//! contract against the f64 oracle, and the plain distances for display.

use microattn::reference::{
    attention_mass_scored_f64, causal_attention_f64, causal_attention_scored_f64, check_contract,
    check_contract_with_mass,
};
use microattn::{Scoring, Shape};

use crate::failure::Failure;

/// How far a fast output is from the references (it met the contract).
pub struct Agreement {
    /// `max |fast − naive|`: the naive f32 reference.
    pub vs_naive: f64,
    /// `max |fast − ref64|`: the f64 oracle.
    pub vs_oracle: f64,
}

/// Holds `fast` to the accuracy contract
/// (`microattn::reference::check_contract`), given the naive f32 output of
/// the same problem; computes the f64 oracle itself.
///
/// # Errors
/// The crate's message if it rejects the shape; a check failure naming the
/// worst position if the contract is broken.
pub fn contract(
    shape: &Shape,
    (q, k, v): (&[f32], &[f32], &[f32]),
    fast: &[f32],
    naive: &[f32],
) -> Result<Agreement, Failure> {
    let mut oracle = vec![0.0f64; fast.len()];
    causal_attention_f64(shape, q, k, v, &mut oracle).map_err(Failure::rejected)?;
    check_contract(fast, naive, &oracle).map_err(|broken| {
        Failure::check(format!("fast kernel against the f64 oracle: {broken}"))
    })?;
    Ok(Agreement {
        vs_naive: max_abs_diff(fast, naive.iter().map(|&x| f64::from(x))),
        vs_oracle: max_abs_diff(fast, oracle.iter().copied()),
    })
}

/// [`contract`] for a scored call: holds `fast` to
/// `microattn::reference::check_contract_with_mass` against
/// `reference::causal_attention_scored_f64` and its magnitudes
/// (`reference::attention_mass_scored_f64`), given the naive f32 output
/// (`reference::causal_attention_scored`); `what` names the output in a
/// failure's message.
///
/// # Errors
/// As [`contract`].
pub fn scored_contract(
    what: &str,
    (shape, scoring): (&Shape, &Scoring<'_>),
    (q, k, v): (&[f32], &[f32], &[f32]),
    fast: &[f32],
    naive: &[f32],
) -> Result<Agreement, Failure> {
    let mut oracle = vec![0.0f64; fast.len()];
    let mut mass = vec![0.0f64; fast.len()];
    causal_attention_scored_f64(shape, scoring, q, k, v, &mut oracle)
        .and_then(|()| attention_mass_scored_f64(shape, scoring, q, k, v, &mut mass))
        .map_err(Failure::rejected)?;
    check_contract_with_mass(fast, naive, &oracle, &mass)
        .map_err(|broken| Failure::check(format!("{what} against the f64 oracle: {broken}")))?;
    Ok(Agreement {
        vs_naive: max_abs_diff(fast, naive.iter().map(|&x| f64::from(x))),
        vs_oracle: max_abs_diff(fast, oracle.iter().copied()),
    })
}

/// `max |a − b|` in f64 (pairs with a NaN are skipped; 0 if empty).
fn max_abs_diff(a: &[f32], b: impl Iterator<Item = f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}
