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
//!   validated once at the entry, returning [`Error`]; padded batches with a
//!   valid length per sequence: [`causal_attention_padded`].
//! - Incremental decoding in fixed memory: [`KvCache`] (capacity `CAP`,
//!   prefill of a prompt, decode steps, bit-identical to one causal pass over
//!   the same tokens) and [`RingKvCache`] (sliding window of the last
//!   `WINDOW` positions), both without heap; memory figures in the README's
//!   "KV cache and decoding" section.
//! - [`entry`]: never-inlined instantiations for the common shapes, easy to
//!   find in a profile or a disassembly.
//! - [`reference`](mod@reference): the textbook version of each of these, the executable
//!   specification, plus the f64 oracle and the accuracy contract as a check.
//! - With the `proptest` feature, `strategies`: the proptest strategies the
//!   crate's own suites use.
//!
//! # Memory
//! No heap, ever. The fused kernel accumulates straight into the caller's
//! output rows; beyond them it keeps a fixed working set that does not grow
//! with N: for a full tile of 8 queries (SIMD targets) their running maxima
//! and sums, a block of 8×8 scores and weights and up to 128 of their
//! dimensions transposed; for a lone query (decode steps, leftovers, every
//! query on a microcontroller) one block of 8 scores. No N×N matrix, no
//! N-length score buffer. One `causal_multi_head::<32, 2, 1, 16>` call uses
//! 336 bytes of stack on `thumbv7em-none-eabihf` (painted stack in QEMU; see
//! the README's footprint table). The
//! reference stores one `[f32; N]` score row on the stack (the fixed-size
//! functions) or recomputes scores (the runtime one).
//!
//! # Numerical behaviour
//! - **Stability.** Scores are max-subtracted before `exp`, online: the
//!   kernel keeps a running maximum `m` and running sum `l = Σ exp(s − m)`,
//!   and rescales its accumulator by `exp(m_old − m_new)` only when a block of
//!   keys raises the maximum. No `exp` argument is ever positive, so nothing
//!   overflows for any finite scores (±1e4 and beyond).
//! - **`-inf` is a mask.** A key whose score is `-inf` weighs exactly 0 and
//!   its value row is never read, wherever it sits in the row; a row with no
//!   other key sees nothing and is exactly 0. The reference states this rule
//!   in code and every path of the kernel follows it.
//! - **Scores.** Each score `scale · Σ_d q_d·k_d` is summed in one fixed
//!   order, stated by [`reference::score`]: eight partial sums (partial `r`
//!   over the dimensions `d ≡ r mod 8`, in order of `d`), then
//!   `((p₀ + p₁) + (p₂ + p₃)) + ((p₄ + p₅) + (p₆ + p₇))`, every product and
//!   sum rounded on its own (no fused multiply-add). The reference does
//!   exactly that, and so does the kernel whether the lanes run across keys
//!   (one query: a lane per residue `r`) or across queries (a tile of 8):
//!   scores are bit-identical to [`reference`](mod@reference)'s on every
//!   target.
//! - **exp.** The fused kernel uses its own lane `exp` for `x ≤ 0` (range
//!   reduction, a degree-7 Taylor polynomial, `2ⁿ` from the exponent bits):
//!   at most **1.1 ULP** from the f64 `exp` over every f32 in `[−104, 0]`
//!   whose result is a normal f32 — measured exhaustively at 1.025 ULP in
//!   the default (SSE2) build and 1.059 ULP with AVX2+FMA (`cargo test
//!   --release --lib -- --ignored exp_every_f32`, 2026-11-28); a dense grid
//!   of that range runs with every `cargo test`. `exp(0) = 1` exactly,
//!   `exp(-inf) = 0`, NaN stays NaN, and a result below
//!   `f32::MIN_POSITIVE` (`x < ln(MIN_POSITIVE) ≈ −87.34`) is exactly 0: no
//!   weight is ever subnormal. [`softmax`], [`attention_weights`] and the
//!   reference use `libm`'s `expf` (0.91 ULP measured over `[−87, 0]`).
//! - **Accuracy contract.** For every fast kernel, with `ref64` the f64 oracle
//!   [`reference::causal_attention_f64`], `naive32` the reference in f32,
//!   `mass64` the same oracle's `Σⱼ wⱼ·|vⱼ|` per output
//!   ([`reference::attention_mass_f64`]) and ε = `f32::EPSILON`, over a
//!   whole output:
//!
//!   `max|out − ref64| ≤ 2·max|naive32 − ref64| + 4ε·max mass64`.
//!
//!   The fast kernel computes the same scores and then performs the
//!   textbook's remaining operations in another order (its lane exp, blocks
//!   of keys, rescaling, weighted sum before normalisation, fused
//!   multiply-add where the target has it), so its rounding error is of the
//!   textbook's kind and size; the factor 2 absorbs that order and
//!   `4ε·max mass64` a few roundings of the weights and the final division
//!   when the textbook happens to be exact. A weight's rounding moves an
//!   output by about `ε·wⱼ·|vⱼ|` whatever the signs of the other terms, so
//!   that term is stated against the magnitudes: against `max|ref64|` (the
//!   first statement of this contract) it is too tight when values of
//!   opposite signs cancel, which the fuzz target found (the case is a test
//!   in `tests/edge_cases.rs`). (Scores of ±1e4 carry an absolute rounding
//!   of about 1e-3 each, which dominates the error there; that is why the
//!   scores themselves are summed in the reference's order.)
//!   [`reference::check_contract_with_mass`] is this inequality as code, and
//!   the property tests hold every kernel to it;
//!   [`reference::check_contract`] is the stricter `|ref64|` form.
//! - **Exact properties** (bit for bit, within one build): a query's output
//!   does not depend on anything at later positions; position 0's output is
//!   `v[0]`; heads are independent; the same inputs give the same bits;
//!   [`causal_attention_dyn`] gives the same bits as the fixed-size functions;
//!   a query gives the same bits alone (a decode step) as inside a whole run
//!   (a tile of queries), so KV-cache decode steps equal one prefill.
//!   Across builds (SSE2 vs AVX2+FMA vs NEON vs scalar) results differ only
//!   within the contract, since fused multiply-add rounds differently.
//! - **Non-finite values.** A NaN in a visible `q` or `k` row makes that
//!   query's output NaN, and so does one in the `v` row of a key it weighs.
//!   A `+inf` score gives NaN (`inf − inf`). A NaN or infinite `scale` is
//!   rejected by the runtime API and gives NaN in the fixed-size one. The table below says exactly which values, and what
//!   masked or padded positions do.
//! - **The contract's domain.** The contract holds whenever every score
//!   `scale · q·k` is finite in f32 and the values of a row's visible `v`
//!   column sum to less than `f32::MAX` in magnitude (the kernel divides by
//!   the softmax normaliser last, so its running sum of `weight · v` can
//!   overflow to ±∞ where the textbook's normalised sum does not; the
//!   oracle computes scores in f64 and does not overflow where f32 does).
//!   Flushing weights below `f32::MIN_POSITIVE` to 0 (see the table) moves
//!   an output by less than `2⁻¹²⁶·Σⱼ|vⱼ|` over the flushed keys, which the
//!   mass's allowance of `2⁻¹²⁶/(4ε)·|vⱼ|` per key covers.
//!
//! # Hostile inputs: the edge-case table
//! Every row is a test in `tests/edge_cases.rs` (padding in `tests/masks.rs`)
//! whose doc comment states the same behaviour. "Keeps its bits" means the
//! result is bit-identical to a run without the hostile value.
//!
//! | Input | Result |
//! |---|---|
//! | Scores up to ±1e4 | The contract (also when a row's values cancel: the case the fuzz target found); every output finite. |
//! | q/k entries up to 1e15 (scores up to about 1e31) | The contract; no overflow; each row is exactly the `v` row of its largest score. |
//! | All visible scores equal, however negative | Every weight is `exp(0) = 1`: the mean of the visible `v` rows. |
//! | One score ahead of every other by more than 104 | Exactly that key's `v` row; every other weight is exactly 0. |
//! | NaN in a visible `q` or `k` row | Every value of the rows that read it is NaN; every other value keeps its bits. |
//! | NaN in `v[j][c]` | Column `c` of the rows that see key `j` is NaN, unless key `j`'s score is `−∞` for that row (a masked key: its value is never read); every other value keeps its bits. |
//! | A `+∞` score (infinite entry, or a product that overflows) | The rows that see it are NaN (`∞ − ∞`); rows that do not keep their bits. |
//! | A `−∞` score (a `−∞` entry, or a product that overflows to `−∞`) | A mask: the key weighs exactly 0 and its `v` row is never read (NaN or `±∞` there changes no bit), wherever the key sits; a row whose every visible score is `−∞` sees no key and is exactly `+0.0`. [`softmax`] and [`attention_weights`] give such keys weight 0, and a row of nothing but `−∞` all zeros. |
//! | `±∞` in `v[j][c]` | Column `c` is that infinity where key `j` has a positive weight; NaN where `+∞` and `−∞` meet or the weight is exactly 0 from a finite score (`0·∞`, see the flush below). At a key whose score is `−∞`: never read. Other columns keep their bits. |
//! | `v` near `f32::MAX` | Finite while each visible `v` column sums to less than `f32::MAX` in magnitude; beyond that the kernel's unnormalised sum may overflow to ±∞ (outside the contract's domain). |
//! | Subnormal `q`, `k`, `v` | Ordinary numbers: the contract, no NaN. Products that underflow are 0, so all-subnormal `q`, `k` give the mean of `v`. |
//! | A weight below `f32::MIN_POSITIVE` (a score more than 87.34 below the row's maximum) | Flushed to exactly 0 in the fused kernel (its exp returns 0 below `f32::MIN_POSITIVE`). ([`attention_weights`] and the reference use `libm`'s `expf`, which keeps subnormals.) |
//! | `−0.0` vs `+0.0` | The sign of a zero in `q` or `k` never changes a bit; a visible `v` column of only `−0.0` gives `−0.0`, a mix gives `+0.0` (as the reference). |
//! | Scale | Applied exactly once: `attn(c·q, s) = attn(q, c·s)`, bit for bit when `c` is a power of two. |
//! | `a·v + b` | `a·out + b`, within the two contract bounds and one rounding. |
//! | Lengths and head dims 3, 4, 5, 7, 8, 9, 15, 16, 17 | The contract; row 0 is `v[0]` bit for bit; padded and unpadded runs agree. |
//! | A row that sees no key (a padded query; valid length 0) | Exactly `+0.0`. |
//! | NaN, ±∞ or any bits in padding or at later positions | Never read: no output bit changes. |
//! | NaN or ±∞ `scale` | Runtime and padded APIs: [`Error::NonFiniteScale`]; fixed-size API: NaN. |
//!
//! # Masks and padded batches
//! [`causal_attention_padded`] takes a right-padded batch and a valid length
//! per sequence. Each sequence runs over its valid prefix only, so padded
//! keys and values are never read (NaN or ∞ there changes nothing), and each
//! padded query row is exactly `+0.0` — the rule for every row that sees no
//! key. Valid rows have the bits [`causal_attention_dyn`] gives on the
//! unpadded sequence.
//!
//! # No panics
//! No public kernel can panic, for any input: shapes are checked at compile
//! time or returned as [`Error`], and no indexing, division or `unwrap` in a
//! kernel path can fail. This is proved at link time, not just tested:
//! `examples/nopanic` is a `#![no_main]` binary for `thumbv7em-none-eabihf`
//! that calls every public kernel (fixed-size, runtime, padded and the
//! reference) with inputs and lengths the optimiser cannot see, and whose
//! panic handler calls a function that does not exist; it links (in
//! `release`, opt-level 3 and `"s"`) only because no panic path survives.
//! `.ci/run` builds it, checks that no `core::panicking` symbol is linked,
//! and checks that a deliberately reachable panic does fail the link.
//! (Unoptimised debug builds keep the unreachable panic paths of overflow
//! checks in the binary; they are never taken.)
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

#[cfg(any(feature = "std", test))]
extern crate std;

mod attention;
mod cache;
mod dynamic;
pub mod entry;
mod error;
mod kernel;
mod layout;
mod mask;
mod math;
pub mod reference;
mod ring;
mod simd;
mod softmax;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use attention::{
    attention_weights, causal_attention, causal_attention_scaled, causal_multi_head,
    causal_multi_head_scaled, default_scale,
};
pub use cache::KvCache;
pub use dynamic::{Shape, causal_attention_dyn};
pub use error::{Buffer, Error};
pub use mask::causal_attention_padded;
pub use ring::RingKvCache;
pub use softmax::softmax;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
