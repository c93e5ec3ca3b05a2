//! Causal scaled dot-product attention for `no_std`: fixed sizes, no heap,
//! SIMD lanes, a numerically stable online softmax.
//!
//! For each query position `i` and head `h`:
//!
//! ```text
//! out[i][h] = Σ_{j≤i} softmax_j(scale · q[i][h]·k[j][g]) · v[j][g],   g = h / (H / KVH)
//! ```
//!
//! with `scale = 1/√D` unless you pass one. Position `i` sees positions `0..=i`
//! and never a later one.
//!
//! ```
//! // 4 tokens, head dimension 8, one head.
//! let q = [[0.25f32; 8]; 4];
//! let k = [[0.5f32; 8]; 4];
//! let v = [[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]; 4];
//! let mut out = [[0.0f32; 8]; 4];
//! microattn::causal_attention(&q, &k, &v, &mut out);
//!
//! // The textbook reference agrees within the accuracy contract.
//! let mut naive = [[0.0f32; 8]; 4];
//! microattn::reference::causal_attention(&q, &k, &v, &mut naive);
//! assert!(out.iter().flatten().zip(naive.iter().flatten()).all(|(a, b)| (a - b).abs() < 1e-6));
//! ```
//!
//! # The API
//! - Fixed sizes (const generics, checked at compile time, cannot fail):
//!   [`causal_attention`], [`causal_attention_scaled`], [`causal_multi_head`],
//!   [`causal_multi_head_scaled`], [`attention_weights`], [`softmax`].
//! - Runtime lengths over flat slices: [`Shape`] and [`causal_attention_dyn`],
//!   validated once at the entry, returning [`Error`].
//! - [`reference`](mod@reference): the textbook version of each of these, the executable
//!   specification, plus the f64 oracle and the accuracy contract as a check.
//! - With the `proptest` feature, `strategies`: the proptest strategies the
//!   crate's own suites use.
//!
//! # Memory
//! No heap, ever. The fused kernel accumulates straight into the caller's
//! output rows; beyond them it keeps, for a tile of 8 queries, their running
//! maxima and sums and one block of 8 scores each, nothing that grows with N:
//! the working memory is O(D) per query counting its output row, with no N×N
//! matrix and no N-length score buffer. Its stack use is about 2.3 KB on
//! `thumbv7em-none-eabihf` for `causal_multi_head::<32, 2, 1, 16>` (frame
//! plus lane `exp`, measured with `-Z emit-stack-sizes`; see the README). The
//! reference stores one `[f32; N]` score row on the stack (the fixed-size
//! functions) or recomputes scores (the runtime one).
//!
//! # Numerical behaviour
//! - **Stability.** Scores are max-subtracted before `exp`, online: the
//!   kernel keeps a running maximum `m` and running sum `l = Σ exp(s − m)`,
//!   and rescales its accumulator by `exp(m_old − m_new)` only when a block of
//!   keys raises the maximum. No `exp` argument is ever positive, so nothing
//!   overflows for any finite scores (±1e4 and beyond).
//! - **Scores.** Lanes run across keys, and each score `scale · Σ_d q_d·k_d`
//!   is summed in order of `d` with every product and sum rounded on its own,
//!   exactly as the reference does: scores are bit-identical to
//!   [`reference`](mod@reference)'s on every target.
//! - **exp.** The fused kernel uses `wide`'s lane `exp`: at most 1.07 ULP from
//!   the f64 `exp` over every f32 in `[-87, 0]` (measured on SSE2 and
//!   AVX2+FMA; a unit test holds it to 1.5 ULP), `exp(0) = 1` exactly,
//!   `exp(-inf) = 0`, and weights below about `1e-44` flush to 0.
//!   [`softmax`], [`attention_weights`] and the reference use `libm`'s `expf`
//!   (0.91 ULP measured over the same range).
//! - **Accuracy contract.** For every fast kernel, with `ref64` the f64 oracle
//!   [`reference::causal_attention_f64`], `naive32` the reference in f32 and
//!   ε = `f32::EPSILON`, over a whole output:
//!
//!   `max|out − ref64| ≤ 2·max|naive32 − ref64| + 4ε·max|ref64|`.
//!
//!   The fast kernel computes the same scores and then performs the
//!   textbook's remaining operations in another order (lane exp, blocks of
//!   keys, rescaling, weighted sum before normalisation, fused multiply-add
//!   where the target has it), so its rounding error is of the textbook's kind
//!   and size; the factor 2 absorbs that order and `4ε·max|ref64|` the final
//!   division and rescales when the textbook happens to be exact. (Scores of
//!   ±1e4 carry an absolute rounding of about 1e-3 each, which dominates the
//!   error there; that is why the scores themselves are summed in the
//!   textbook's order.)
//!   [`reference::check_contract`] is this inequality as code, and the
//!   property tests hold every kernel to it.
//! - **Exact properties** (bit for bit, within one build): a query's output
//!   does not depend on anything at later positions; position 0's output is
//!   `v[0]`; heads are independent; the same inputs give the same bits;
//!   [`causal_attention_dyn`] gives the same bits as the fixed-size functions.
//!   Across builds (SSE2 vs AVX2+FMA vs NEON vs scalar) results differ only
//!   within the contract, since fused multiply-add rounds differently.
//! - **Non-finite values.** A NaN in a visible `q`, `k` or `v` row makes that
//!   query's output NaN. A `+inf` score gives NaN (`inf − inf`). A NaN or
//!   infinite `scale` is rejected by the runtime API and gives NaN in the
//!   fixed-size one.
//!
//! # Lanes and target features
//! The lanes are `wide::f32x8`. `wide` picks its implementation when it is
//! compiled, from the target features (no run-time dispatch): a default
//! x86-64 build runs two SSE2 halves without FMA; build with
//! `RUSTFLAGS="-C target-cpu=x86-64-v3"` (or `native`) for AVX2 + FMA. aarch64
//! uses NEON, wasm32 `+simd128`, microcontrollers plain arrays.
//!
//! # Features
//! - `std`: forwards `std` to `wide` (a faster scalar `sqrt` there). The
//!   kernels never need it.
//! - `proptest`: exports `strategies` (implies `std`).
//!
//! # MSRV
//! Rust 1.89 (the minimum of `wide` 1.7).

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::missing_inline_in_public_items)]

#[cfg(feature = "std")]
extern crate std;

mod attention;
mod dynamic;
mod error;
mod kernel;
mod layout;
mod mask;
mod math;
pub mod reference;
mod simd;
mod softmax;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use attention::{
    attention_weights, causal_attention, causal_attention_scaled, causal_multi_head,
    causal_multi_head_scaled, default_scale,
};
pub use dynamic::{Shape, causal_attention_dyn};
pub use error::{Buffer, Error};
pub use mask::causal_attention_padded;
pub use softmax::softmax;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
