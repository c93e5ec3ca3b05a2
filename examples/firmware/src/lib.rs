//! The portable part of the microattn firmware: the problem it runs, its
//! inputs, the one attention call, and the check of its output against the
//! accuracy contract. Nothing here knows about Cortex-M: `src/main.rs` adds
//! the entry point, semihosting and the stack measurement, and
//! `examples/host_check.rs` runs the same code on the host to compare.
//!
//! Memory is sized for the smallest part, the Cortex-M0 on QEMU's `microbit`
//! (16 KiB of RAM): the inputs and the output live in the caller's statics
//! (12 KiB), and the reference check works one query position at a time
//! (a row of naive32 and ref64, 384 bytes), never on whole N-sized copies.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use microattn::Shape;
use microattn::reference::{self, ContractViolation, check_contract};

/// Sequence length: tokens of context.
pub const N: usize = 32;
/// Query heads.
pub const H: usize = 2;
/// Key/value heads (multi-query attention: both query heads share one).
pub const KVH: usize = 1;
/// Head dimension.
pub const D: usize = 16;

/// Values in one query position's output row (all heads).
const ROW: usize = H * D;

/// Queries or outputs, token-major: `[token][head][dim]`.
pub type Queries = [[[f32; D]; H]; N];
/// Keys or values, token-major: `[token][kv head][dim]`.
pub type KeysValues = [[[f32; D]; KVH]; N];

/// The seed of the inputs every run uses (and the host check repeats).
pub const SEED: u32 = 0x2545_F491;

/// The attention inputs: queries, keys and values.
pub struct Inputs {
    /// Queries, uniform in [-2, 2).
    pub q: Queries,
    /// Keys, uniform in [-2, 2).
    pub k: KeysValues,
    /// Values, uniform in [-1, 1).
    pub v: KeysValues,
}

impl Inputs {
    /// All zeros: the initial value of a static.
    pub const ZERO: Inputs = Inputs {
        q: [[[0.0; D]; H]; N],
        k: [[[0.0; D]; KVH]; N],
        v: [[[0.0; D]; KVH]; N],
    };

    /// Fills every input from `seed`: the same values on every target, since
    /// the generator uses integer arithmetic and exact conversions only.
    /// Queries and keys in [-2, 2) give scores up to about ±16, so some
    /// softmax rows are flat and some are dominated by one key.
    pub fn generate(&mut self, seed: u32) {
        let mut rng = XorShift32::new(seed);
        for x in self.q.as_flattened_mut().as_flattened_mut() {
            *x = 2.0 * rng.next_f32();
        }
        for x in self.k.as_flattened_mut().as_flattened_mut() {
            *x = 2.0 * rng.next_f32();
        }
        for x in self.v.as_flattened_mut().as_flattened_mut() {
            *x = rng.next_f32();
        }
    }
}

/// xorshift32 (Marsaglia 2003): reproducible inputs, no statistical claims
/// beyond "varied". 32-bit, so it costs little on a Cortex-M0.
struct XorShift32(u32);

impl XorShift32 {
    fn new(seed: u32) -> Self {
        // 0 is the one fixed point.
        XorShift32(if seed == 0 { 0x9E37_79B9 } else { seed })
    }

    /// Uniform in [-1, 1) with 24 random bits: exact in f32, so every target
    /// gets the same bits.
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// The measured call: one causal multi-head attention over all `N`
/// positions. Never inlined, so that it has a symbol for the footprint
/// script (the kernel's code is this function and what it calls) and a
/// stack frame of its own below the caller's.
#[inline(never)]
pub fn attention(inputs: &Inputs, out: &mut Queries) {
    microattn::causal_multi_head::<N, H, KVH, D>(&inputs.q, &inputs.k, &inputs.v, out);
}

/// How the output compares with the reference: the quantities the accuracy
/// contract relates, and its verdict from
/// [`check_contract`](microattn::reference::check_contract).
#[derive(Clone, Copy, Debug)]
pub struct Accuracy {
    /// `max |out − ref64|` over the output (NaN if a non-finite value
    /// differs).
    pub max_error: f64,
    /// `max |naive32 − ref64|`: the textbook's own error in f32.
    pub naive_error: f64,
    /// `max |ref64|`.
    pub ref_max: f64,
    /// The contract's verdict over the whole output.
    pub verdict: Result<(), ContractViolation>,
}

/// One output value with its naive32 and ref64 counterparts and its index in
/// the flattened output.
#[derive(Clone, Copy)]
struct Triple {
    index: usize,
    out: f32,
    naive: f32,
    ref64: f64,
}

impl Triple {
    /// `|naive32 − ref64|` as `check_contract` counts it (finite `ref64`
    /// and finite difference only).
    fn naive_error(&self) -> f64 {
        if self.ref64.is_finite() {
            finite_abs(f64::from(self.naive) - self.ref64)
        } else {
            0.0
        }
    }

    /// `|out − ref64|` as `check_contract` counts it: NaN where a non-finite
    /// value is not matched exactly.
    fn out_error(&self) -> f64 {
        let (o, r) = (f64::from(self.out), self.ref64);
        if r.is_finite() {
            (o - r).abs()
        } else if (r.is_nan() && o.is_nan()) || o == r {
            0.0
        } else {
            f64::NAN
        }
    }
}

fn finite_abs(x: f64) -> f64 {
    if x.is_finite() { x.abs() } else { 0.0 }
}

/// The positions that decide the contract, found in one streaming pass.
///
/// The contract `max|out − ref64| ≤ 2·max|naive32 − ref64| + 4ε·max|ref64|`
/// depends on the output only through three maxima. `check_contract` run on
/// the three values where they are reached (the worst naive32 error, the
/// largest |ref64|, the worst output error, NaN first) computes the same
/// bound and the same worst error as on the whole output, so it gives the
/// same verdict; the violation's index is mapped back to the whole output.
#[derive(Default)]
struct Witnesses {
    naive: Option<Triple>,
    ref_max: Option<Triple>,
    out: Option<Triple>,
}

impl Witnesses {
    fn add(&mut self, t: Triple) {
        if self.naive.is_none_or(|w| t.naive_error() > w.naive_error()) {
            self.naive = Some(t);
        }
        if self
            .ref_max
            .is_none_or(|w| finite_abs(t.ref64) > finite_abs(w.ref64))
        {
            self.ref_max = Some(t);
        }
        let worse = |w: Triple| {
            let (e, we) = (t.out_error(), w.out_error());
            !we.is_nan() && (e.is_nan() || e > we)
        };
        if self.out.is_none_or(worse) {
            self.out = Some(t);
        }
    }

    fn verdict(&self) -> Accuracy {
        let (Some(n), Some(r), Some(o)) = (self.naive, self.ref_max, self.out) else {
            // No value at all: nothing to compare, which is a failure here.
            return Accuracy {
                max_error: f64::NAN,
                naive_error: f64::NAN,
                ref_max: f64::NAN,
                verdict: Err(ContractViolation {
                    index: 0,
                    error: f64::NAN,
                    bound: 0.0,
                }),
            };
        };
        let triples = [n, r, o];
        let verdict = check_contract(
            &triples.map(|t| t.out),
            &triples.map(|t| t.naive),
            &triples.map(|t| t.ref64),
        )
        .map_err(|v| ContractViolation {
            index: triples.get(v.index).map_or(0, |t| t.index),
            ..v
        });
        Accuracy {
            max_error: o.out_error(),
            naive_error: n.naive_error(),
            ref_max: finite_abs(r.ref64),
            verdict,
        }
    }
}

/// Checks `out` (the result of [`attention`] on `inputs`) against the
/// reference: the textbook in f32 (naive32) and the f64 oracle (ref64), run
/// one query position at a time through the runtime API (`q_len = 1`,
/// `kv_len = i + 1` is exactly position `i`'s causal row, computed the same
/// way as in the whole-sequence reference), then the accuracy contract over
/// the whole output.
#[must_use]
pub fn check_against_reference(inputs: &Inputs, out: &Queries) -> Accuracy {
    let mut witnesses = Witnesses::default();
    for (i, out_row) in out.iter().enumerate() {
        let shape = Shape::new(1, i + 1, H, KVH, D);
        let q = inputs.q[i].as_flattened();
        let k = inputs.k[..=i].as_flattened().as_flattened();
        let v = inputs.v[..=i].as_flattened().as_flattened();
        let mut naive = [0.0f32; ROW];
        let mut ref64 = [0.0f64; ROW];
        let naive_ok = reference::causal_attention_dyn(&shape, q, k, v, &mut naive).is_ok();
        let ref_ok = reference::causal_attention_f64(&shape, q, k, v, &mut ref64).is_ok();
        if !(naive_ok && ref_ok) {
            // Cannot happen for this fixed shape; if it did, fail loudly.
            naive.fill(f32::NAN);
            ref64.fill(0.0);
        }
        let values = out_row.as_flattened().iter().zip(&naive).zip(&ref64);
        for (j, ((&o, &n), &r)) in values.enumerate() {
            witnesses.add(Triple {
                index: i * ROW + j,
                out: o,
                naive: n,
                ref64: r,
            });
        }
    }
    witnesses.verdict()
}

/// `Σ out` in f64, in order: a number to compare between runs by eye.
#[must_use]
pub fn checksum(out: &Queries) -> f64 {
    out.as_flattened()
        .as_flattened()
        .iter()
        .map(|&x| f64::from(x))
        .sum()
}

/// FNV-1a over the output's bits: equal on two targets only if their
/// outputs are bit-identical.
#[must_use]
pub fn bits_hash(out: &Queries) -> u32 {
    let mut h = 0x811C_9DC5u32;
    for x in out.as_flattened().as_flattened() {
        for b in x.to_bits().to_le_bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// Decode steps through the KV cache.
///
/// **Not written yet: the place where they go.** The KV cache (issue 4) is
/// not in the crate yet. When it is, this function appends a few tokens to a
/// cache filled from `inputs`, runs a decode step for each, checks every step
/// against the reference like [`check_against_reference`], and returns its
/// verdicts; `src/main.rs` already prints whatever this returns and counts it
/// in PASS/FAIL. Until then it returns `None` and the firmware says so.
#[must_use]
pub fn decode_steps(inputs: &Inputs) -> Option<Accuracy> {
    let _ = inputs;
    None
}
