//! proptest strategies for shapes and inputs (feature `proptest`).
//!
//! The crate's own property suites use these; reuse them to test code built
//! on this crate.

use std::vec::Vec;

use proptest::prelude::*;

use crate::Shape;

/// One generated problem in the runtime layout of [`crate::causal_attention_dyn`].
#[derive(Clone, Debug)]
pub struct Case {
    /// The shape (self-attention: `q_len == kv_len`).
    pub shape: Shape,
    /// Queries, `q_len × heads × head_dim`.
    pub q: Vec<f32>,
    /// Keys, `kv_len × kv_heads × head_dim`.
    pub k: Vec<f32>,
    /// Values, `kv_len × kv_heads × head_dim`.
    pub v: Vec<f32>,
}

/// Finite values uniform in `[-bound, bound]`.
#[must_use]
pub fn values(bound: f32, len: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-bound..=bound, len)
}

/// A self-attention case with the given shape and entries of q, k, v in
/// `[-bound, bound]`.
#[must_use]
pub fn case(shape: Shape, bound: f32) -> impl Strategy<Value = Case> {
    let (qn, kvn) = (shape.q_elems().unwrap_or(0), shape.kv_elems().unwrap_or(0));
    (values(bound, qn), values(bound, kvn), values(bound, kvn))
        .prop_map(move |(q, k, v)| Case { shape, q, k, v })
}
