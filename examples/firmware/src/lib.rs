//! The portable part of the microattn firmware: the problem it runs, its
//! inputs, the one attention call, the decode steps through the KV cache,
//! and the checks of their outputs against the accuracy contract; the same
//! for the integer path at the same shape ([`int8`]); and the decode steps
//! on caches storing `f16` and `bf16`, checked against an `f32` cache
//! ([`kv16`]); and the inputs and checks of the bounded-time proof
//! ([`bounded`]). Nothing
//! here knows about a core: `src/main.rs` adds the run, its report and the
//! stack measurements, `src/arch/` the entry point and semihosting of
//! Cortex-M or RISC-V, and `examples/host_check.rs` runs the same code on
//! the host to compare.
//!
//! Memory is sized for the smallest part, the Cortex-M0 on QEMU's `microbit`
//! (16 KiB of RAM): the queries, the output and the KV cache holding the
//! keys and values live in the caller's statics (12 KiB; the integer run's,
//! 3 KiB, and the 16-bit run's caches, 8 KiB, take their place after the
//! f32 run); the keys and values exist
//! once, in the cache, which both the prefill and the decode steps read
//! (see [`Inputs`]); and the reference checks work one query position at a
//! time (a row of naive32 and ref64, 384 bytes), never on whole N-sized
//! copies.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use microattn::reference::{self, ContractViolation, check_contract};
use microattn::{Error, KvCache, Shape};

pub mod bounded;
pub mod int8;
pub mod kv16;

/// Sequence length: tokens of context.
pub const N: usize = 32;
/// Query heads.
pub const H: usize = 2;
/// Key/value heads (multi-query attention: both query heads share one).
pub const KVH: usize = 1;
/// Head dimension.
pub const D: usize = 16;

/// Multiply-accumulates in one causal call over all `N` positions: a score
/// (`D` of them) and a value row (`D` more) per head and visible key,
/// `2·D·H·N(N+1)/2`.
pub const MACS: usize = 2 * D * H * N * (N + 1) / 2;

/// Multiply-accumulates in the last decode step, over all `N` cached
/// positions: `2·D·H·N`.
pub const STEP_MACS: usize = 2 * D * H * N;

/// Values in one query position's output row (all heads).
const ROW: usize = H * D;

/// Queries or outputs, token-major: `[token][head][dim]`.
pub type Queries = [[[f32; D]; H]; N];
/// One position's queries or output row: `[head][dim]`.
pub type QueryRow = [[f32; D]; H];
/// Keys or values, token-major: `[token][kv head][dim]`.
pub type KeysValues = [[[f32; D]; KVH]; N];
/// One position's keys or values: `[kv head][dim]`.
pub type KeyValueRow = [[f32; D]; KVH];
/// The KV cache the keys and values live in: all `N` positions
/// (`2·N·KVH·D·4` = 4 KiB of keys and values, 16 bytes of bookkeeping on a
/// 32-bit target).
pub type Cache = KvCache<N, KVH, D>;

/// The seed of the inputs every run uses (and the host check repeats).
pub const SEED: u32 = 0x2545_F491;

/// The attention inputs: queries, and keys and values in a KV cache.
///
/// The keys and values are stored once, in the cache, as a decoder on a
/// microcontroller keeps them: the prefill reads the full cache as its `k`
/// and `v` arrays ([`kv`](Self::kv)), and the decode steps empty it and
/// append the same positions again one step at a time. A separate copy of
/// `k` and `v` beside the cache would need 4 KiB more than the Cortex-M0's
/// 16 KiB of RAM leave.
pub struct Inputs {
    /// Queries, uniform in [-2, 2).
    pub q: Queries,
    /// Keys, uniform in [-2, 2), and values, uniform in [-1, 1), of every
    /// position, once [`generate`](Self::generate) ran.
    cache: Cache,
    /// The seed of [`generate`](Self::generate): the decode steps
    /// regenerate each position's key and value from it.
    seed: u32,
}

impl Inputs {
    /// Zero queries and an empty cache: the initial value of a static.
    pub const EMPTY: Inputs = Inputs {
        q: [[[0.0; D]; H]; N],
        cache: Cache::new(),
        seed: 0,
    };

    /// Fills every input from `seed`: the same values on every target, since
    /// the generator uses integer arithmetic and exact conversions only.
    /// Queries and keys in [-2, 2) give scores up to about ±16, so some
    /// softmax rows are flat and some are dominated by one key.
    pub fn generate(&mut self, seed: u32) {
        self.seed = seed;
        let mut rng = XorShift32::new(seed);
        for x in self.q.as_flattened_mut().as_flattened_mut() {
            *x = 2.0 * rng.next_f32();
        }
        self.cache.clear();
        let mut stream = KvStream::new(seed);
        for _ in 0..N {
            let (k, v) = stream.next_position();
            // Cannot fail: N pushes into an emptied cache of capacity N. If
            // one did, `kv` would be `None` and the run would fail.
            if self.cache.push(&k, &v).is_err() {
                break;
            }
        }
    }

    /// The keys and values of all `N` positions as the fixed-size arrays
    /// [`attention`] takes: the cache's storage, no copy. `None` unless the
    /// cache holds exactly `N` positions (before [`generate`](Self::generate),
    /// or after decode steps that stopped early).
    #[must_use]
    pub fn kv(&self) -> Option<(&KeysValues, &KeysValues)> {
        let k = self.cache.keys().try_into().ok()?;
        let v = self.cache.values().try_into().ok()?;
        Some((k, v))
    }
}

/// xorshift32 (Marsaglia 2003): reproducible inputs, no statistical claims
/// beyond "varied". 32-bit, so it costs little on a Cortex-M0.
#[derive(Clone)]
struct XorShift32(u32);

impl XorShift32 {
    fn new(seed: u32) -> Self {
        // 0 is the one fixed point.
        XorShift32(if seed == 0 { 0x9E37_79B9 } else { seed })
    }

    /// The next state.
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    /// Uniform in [-1, 1) with 24 random bits: exact in f32, so every target
    /// gets the same bits.
    fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Uniform over every `i8`: the state's top 8 bits.
    fn next_i8(&mut self) -> i8 {
        (self.next_u32() >> 24) as u8 as i8
    }

    /// Skips `n` values.
    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.next_u32();
        }
    }
}

/// The keys and values of the input stream, position by position. The
/// stream is all queries, then all keys, then all values (so the inputs are
/// those of a plain `[q, k, v]` fill); this reads the key and value parts
/// side by side, so that a position's key and value can be made again
/// without storing them.
struct KvStream {
    k: XorShift32,
    v: XorShift32,
}

impl KvStream {
    fn new(seed: u32) -> Self {
        let mut k = XorShift32::new(seed);
        k.skip(N * H * D);
        let mut v = k.clone();
        v.skip(N * KVH * D);
        KvStream { k, v }
    }

    /// The next position's keys, uniform in [-2, 2), and values, uniform
    /// in [-1, 1).
    fn next_position(&mut self) -> (KeyValueRow, KeyValueRow) {
        let mut k = [[0.0; D]; KVH];
        let mut v = [[0.0; D]; KVH];
        for x in k.as_flattened_mut() {
            *x = 2.0 * self.k.next_f32();
        }
        for x in v.as_flattened_mut() {
            *x = self.v.next_f32();
        }
        (k, v)
    }
}

/// The measured call: one causal multi-head attention over all `N`
/// positions. Never inlined, so that it has a symbol for the footprint
/// script (the kernel's code is this function and what it calls) and a
/// stack frame of its own below the caller's.
#[inline(never)]
pub fn attention(q: &Queries, k: &KeysValues, v: &KeysValues, out: &mut Queries) {
    microattn::causal_multi_head::<N, H, KVH, D>(q, k, v, out);
}

/// One decode step: appends one position's key and value to `cache` and
/// runs its queries over every cached position
/// ([`KvCache::step`](microattn::KvCache::step)). Never inlined: the
/// firmware measures its stack on its own.
///
/// # Errors
/// [`Error::CacheFull`] if `cache` already holds `N` positions.
#[inline(never)]
pub fn decode_step(
    cache: &mut Cache,
    q: &QueryRow,
    k: &KeyValueRow,
    v: &KeyValueRow,
    out: &mut QueryRow,
) -> Result<(), Error> {
    cache.step(q, k, v, out, None, None)
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
/// The contract `max|out − ref64| ≤ 4·max|naive32 − ref64| + 4ε·max|ref64|`
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

    /// Adds position `i`'s output row `out`, computed from its queries `q`
    /// over the keys `k` and values `v` of positions `0..=i`, with the
    /// reference's row for the same inputs: the runtime API with
    /// `q_len = 1`, `kv_len = i + 1` is exactly position `i`'s causal row,
    /// computed the same way as in the whole-sequence reference.
    fn add_position(
        &mut self,
        i: usize,
        q: &QueryRow,
        k: &[KeyValueRow],
        v: &[KeyValueRow],
        out: &QueryRow,
    ) {
        let shape = Shape::new(1, i + 1, H, KVH, D);
        let q = q.as_flattened();
        let (k, v) = (
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
        );
        let mut naive = [0.0f32; ROW];
        let mut ref64 = [0.0f64; ROW];
        let naive_ok = reference::causal_attention_dyn(&shape, q, k, v, &mut naive).is_ok();
        let ref_ok = reference::causal_attention_f64(&shape, q, k, v, &mut ref64).is_ok();
        if !(naive_ok && ref_ok) {
            // Cannot happen for this fixed shape and a prefix of i + 1
            // positions; if it did, fail loudly.
            naive.fill(f32::NAN);
            ref64.fill(0.0);
        }
        let values = out.as_flattened().iter().zip(&naive).zip(&ref64);
        for (j, ((&o, &n), &r)) in values.enumerate() {
            self.add(Triple {
                index: i * ROW + j,
                out: o,
                naive: n,
                ref64: r,
            });
        }
    }
}

/// Checks `out` (the result of [`attention`] on `inputs`) against the
/// reference: the textbook in f32 (naive32) and the f64 oracle (ref64), run
/// one query position at a time, then the accuracy contract over the whole
/// output. Inputs without their keys and values fail.
#[must_use]
pub fn check_against_reference(inputs: &Inputs, out: &Queries) -> Accuracy {
    let mut witnesses = Witnesses::default();
    if let Some((k, v)) = inputs.kv() {
        for (i, (q, out_row)) in inputs.q.iter().zip(out).enumerate() {
            witnesses.add_position(i, q, &k[..=i], &v[..=i], out_row);
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
    fnv1a(
        out.as_flattened()
            .as_flattened()
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes()),
    )
}

/// FNV-1a (32-bit) of `bytes`.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(FNV_OFFSET, fnv1a_byte)
}

/// FNV-1a's offset basis: the hash of no bytes.
const FNV_OFFSET: u32 = 0x811C_9DC5;

/// One more byte into an FNV-1a hash.
fn fnv1a_byte(h: u32, b: u8) -> u32 {
    (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
}

/// What the decode steps gave.
#[derive(Clone, Copy, Debug)]
pub struct Decode {
    /// Decode steps that ran: positions `0..steps`.
    pub steps: usize,
    /// The cache's error if a step failed (the steps stop there).
    pub error: Option<Error>,
    /// Positions whose decode-step output is not bit for bit the prefill's
    /// row.
    pub mismatches: usize,
    /// The first of them.
    pub first_mismatch: Option<usize>,
    /// The decode outputs against the reference and the accuracy contract.
    pub accuracy: Accuracy,
}

impl Decode {
    /// `true` if all `N` steps ran, each equals the prefill's row bit for
    /// bit, and the accuracy contract holds over their outputs.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.steps == N
            && self.error.is_none()
            && self.mismatches == 0
            && self.accuracy.verdict.is_ok()
    }
}

/// Decode steps through the KV cache: every position `i = 0..N` in turn by
/// [`decode_step`] (append position `i`'s key and value, attend with its
/// queries over positions `0..=i`), starting from an empty cache, on the
/// inputs of the prefill.
///
/// Checks each step's output row (a) bit for bit against row `i` of
/// `prefill`, the fixed-size [`attention`] output for the same inputs (the
/// crate promises that decode steps equal one causal pass over the same
/// tokens, bit for bit, in one build), and (b) against the reference, one
/// position at a time as [`check_against_reference`] does, then with the
/// accuracy contract over all steps' outputs.
///
/// The cache is `inputs`' own (see [`Inputs`]): it is emptied, and each
/// step appends the key and value regenerated from the inputs' seed, so the
/// cache holds the same `N` positions again when all steps ran. A
/// regenerated value that differed would show as a bit mismatch.
///
/// `around_step(i, step)` must call `step` once: it runs the decode step of
/// position `i` (the firmware measures the stack of one step with it).
pub fn decode_steps(
    inputs: &mut Inputs,
    prefill: &Queries,
    mut around_step: impl FnMut(usize, &mut dyn FnMut()),
) -> Decode {
    let Inputs { q, cache, seed } = inputs;
    cache.clear();
    let mut stream = KvStream::new(*seed);
    let mut witnesses = Witnesses::default();
    let mut decode = Decode {
        steps: 0,
        error: None,
        mismatches: 0,
        first_mismatch: None,
        accuracy: witnesses.verdict(),
    };
    for (i, (q_row, expected)) in q.iter().zip(prefill).enumerate() {
        let (k, v) = stream.next_position();
        let mut out = [[f32::NAN; D]; H];
        // Stays an error unless `around_step` runs the step.
        let mut result = Err(Error::CacheFull {
            capacity: N,
            len: cache.len(),
            requested: 0,
        });
        around_step(i, &mut || {
            result = decode_step(cache, q_row, &k, &v, &mut out);
        });
        if let Err(e) = result {
            decode.error = Some(e);
            break;
        }
        decode.steps += 1;
        let same = out
            .as_flattened()
            .iter()
            .zip(expected.as_flattened())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            decode.mismatches += 1;
            decode.first_mismatch.get_or_insert(i);
        }
        witnesses.add_position(i, q_row, cache.keys(), cache.values(), &out);
    }
    decode.accuracy = witnesses.verdict();
    decode
}

/// The `−∞` mask on this target's lanes: 12 positions, keys 0–8 and 10 at
/// score `−∞` (a `−∞` key entry against positive queries), their values
/// NaN in one run and `+∞` in another. A masked key's value is never read,
/// so both runs give the bits of a run with zeros there, every value is
/// finite, and rows 0–8 (which see only masked keys) are exactly `+0.0`.
/// Through the attention call and through `KvCache` decode steps.
pub fn masked_keys_are_never_read() -> bool {
    const M: usize = 12;
    let masked = |j: usize| j <= 8 || j == 10;
    let q = [[[1.0f32, 0.5]]; M];
    let mut k = [[[0.25f32, 0.5]]; M];
    for (j, kj) in k.iter_mut().enumerate() {
        if masked(j) {
            kj[0] = [f32::NEG_INFINITY, 0.0];
        }
    }
    let run = |fill: f32| {
        let mut v = [[[0.0f32; 2]]; M];
        for (j, vj) in v.iter_mut().enumerate() {
            vj[0] = if masked(j) {
                [fill; 2]
            } else {
                [j as f32, 1.0]
            };
        }
        let mut out = [[[f32::NAN; 2]]; M];
        microattn::causal_multi_head(&q, &k, &v, &mut out);
        let mut cache = KvCache::<M, 1, 2>::new();
        let mut steps = [[[f32::NAN; 2]]; M];
        for (t, step) in steps.iter_mut().enumerate() {
            if cache.step(&q[t], &k[t], &v[t], step, None, None).is_err() {
                return None;
            }
        }
        Some((out, steps))
    };
    let bits = |x: &[[[f32; 2]; 1]; M]| x.map(|r| r[0].map(f32::to_bits));
    let Some((clean, clean_steps)) = run(0.0) else {
        return false;
    };
    let rows_ok = clean.iter().enumerate().all(|(t, r)| {
        r[0].iter().all(|x| x.is_finite()) && (t > 8 || r[0].iter().all(|x| x.to_bits() == 0))
    });
    rows_ok
        && bits(&clean) == bits(&clean_steps)
        && [f32::NAN, f32::INFINITY].iter().all(|&fill| {
            run(fill).is_some_and(|(o, s)| bits(&o) == bits(&clean) && bits(&s) == bits(&clean))
        })
}
