//! The 16-bit KV caches at the f32 run's shape: the same `N` decode steps
//! on a [`KvCache`] storing [`f16`] and on one storing [`bf16`], from an
//! empty cache, on the f32 run's queries, keys and values. Each step's
//! output is checked bit for bit against an `f32` [`KvCache`] fed the
//! widened keys and values (`E::from_f32` then `E::to_f32`: what the
//! 16-bit cache stores, read back exactly), and each appended position is
//! checked to be stored as that rounding. The crate promises both: a 16-bit
//! cache rounds once, on append, and its kernel widens exactly where it
//! loads, so every score, weight and sum is the `f32` kernel's.
//!
//! On the Cortex-M cores and riscv32imc the conversions are `half`'s
//! software ones (integer operations, no conversion instruction): the
//! decode step's code and instructions beside the `f32` step's are what
//! they cost (`.ci/footprint`).
//!
//! Memory: the three caches (`f32` 4 KiB, `f16` and `bf16` 2 KiB each, and
//! their bookkeeping), in the caller's statics where the f32 run's buffers
//! were. Queries, keys and values are regenerated from the seed one
//! position at a time, never stored beside the caches.

use microattn::{Element, Error, KvCache, bf16, f16};

use crate::{D, FNV_OFFSET, H, KVH, KeyValueRow, KvStream, N, QueryRow, XorShift32, fnv1a_byte};

/// A cache of all `N` positions storing `E`: `2·N·KVH·D·size_of::<E>()`
/// bytes of keys and values and 16 bytes of bookkeeping on a 32-bit target.
pub type Cache<E> = KvCache<N, KVH, D, E>;

/// The 16-bit run's caches: one per storage element, and the `f32` one
/// that replays the widened keys and values.
pub struct Caches {
    /// The `f16` cache.
    pub f16: Cache<f16>,
    /// The `bf16` cache.
    pub bf16: Cache<bf16>,
    /// The `f32` cache fed `E::to_f32(E::from_f32(x))` for each key and
    /// value `x`.
    pub widened: crate::Cache,
}

impl Caches {
    /// Empty caches: the initial value of a static.
    pub const EMPTY: Caches = Caches {
        f16: Cache::new(),
        bf16: Cache::new(),
        widened: crate::Cache::new(),
    };
}

/// One `f16` decode step: appends one position (each key and value
/// rounded to `f16`) and runs its queries over every cached position.
/// Never inlined, as [`decode_step`](crate::decode_step): the footprint
/// script measures its code, and the firmware its stack and instructions.
///
/// # Errors
/// [`Error::CacheFull`] if `cache` already holds `N` positions.
#[inline(never)]
pub fn decode_step_f16(
    cache: &mut Cache<f16>,
    q: &QueryRow,
    k: &KeyValueRow,
    v: &KeyValueRow,
    out: &mut QueryRow,
) -> Result<(), Error> {
    cache.step(q, k, v, out, None, None)
}

/// One `bf16` decode step, as [`decode_step_f16`].
///
/// # Errors
/// [`Error::CacheFull`] if `cache` already holds `N` positions.
#[inline(never)]
pub fn decode_step_bf16(
    cache: &mut Cache<bf16>,
    q: &QueryRow,
    k: &KeyValueRow,
    v: &KeyValueRow,
    out: &mut QueryRow,
) -> Result<(), Error> {
    cache.step(q, k, v, out, None, None)
}

/// A decode step on a cache storing `E`.
pub type Step<E> =
    fn(&mut Cache<E>, &QueryRow, &KeyValueRow, &KeyValueRow, &mut QueryRow) -> Result<(), Error>;

/// `x` as a cache storing `E` keeps it: rounded once, widened back exactly.
#[must_use]
pub fn widened<E: Element>(x: f32) -> f32 {
    E::from_f32(x).to_f32()
}

/// What the 16-bit decode steps gave.
#[derive(Clone, Copy, Debug)]
pub struct Decode {
    /// Decode steps that ran: positions `0..steps`.
    pub steps: usize,
    /// The 16-bit cache's error if a step failed (the steps stop there).
    pub error: Option<Error>,
    /// The `f32` cache's error, if one of its steps failed.
    pub widened_error: Option<Error>,
    /// Positions whose output is not bit for bit the `f32` cache's on the
    /// widened keys and values.
    pub mismatches: usize,
    /// The first of them.
    pub first_mismatch: Option<usize>,
    /// Positions not stored as their rounding (`E::from_f32` of the key or
    /// value given).
    pub stored_wrong: usize,
    /// FNV-1a over the bits of every step's output, in order.
    pub bits_hash: u32,
}

impl Decode {
    /// `true` if all `N` steps ran on both caches, each output equals the
    /// `f32` cache's bit for bit, and every position was stored rounded.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.steps == N
            && self.error.is_none()
            && self.widened_error.is_none()
            && self.mismatches == 0
            && self.stored_wrong == 0
    }
}

/// The `N` decode steps on `cache` by `step` (every position `i = 0..N`,
/// from an empty cache), each checked against [`decode_step`](crate::decode_step)
/// on the `f32` cache `widened`, fed `reference(x)` for each key and value
/// `x` ([`widened::<E>`](widened) in the firmware; the host check also
/// passes the identity, to see that the comparison notices the rounding).
/// Queries, keys and values are the f32 run's, regenerated from `seed`.
///
/// `around_step(i, step)` must call `step` once: it runs the 16-bit decode
/// step of position `i` (the firmware measures the stack and instructions
/// of one step with it).
pub fn decode_steps<E: Element>(
    cache: &mut Cache<E>,
    widened: &mut crate::Cache,
    step: Step<E>,
    seed: u32,
    reference: fn(f32) -> f32,
    mut around_step: impl FnMut(usize, &mut dyn FnMut()),
) -> Decode {
    let mut decode = Decode {
        steps: 0,
        error: None,
        widened_error: None,
        mismatches: 0,
        first_mismatch: None,
        stored_wrong: 0,
        bits_hash: FNV_OFFSET,
    };
    cache.clear();
    widened.clear();
    // The queries come first in the input stream, as in `Inputs::generate`.
    let mut queries = XorShift32::new(seed);
    let mut stream = KvStream::new(seed);
    for i in 0..N {
        let mut q = [[0.0; D]; H];
        for x in q.as_flattened_mut() {
            *x = 2.0 * queries.next_f32();
        }
        let (k, v) = stream.next_position();
        let mut out = [[f32::NAN; D]; H];
        // Stays an error unless `around_step` runs the step.
        let mut result = Err(Error::CacheFull {
            capacity: N,
            len: cache.len(),
            requested: 0,
        });
        around_step(i, &mut || {
            result = step(cache, &q, &k, &v, &mut out);
        });
        if let Err(e) = result {
            decode.error = Some(e);
            break;
        }
        let (kr, vr) = (
            k.map(|head| head.map(reference)),
            v.map(|head| head.map(reference)),
        );
        let mut expected = [[f32::NAN; D]; H];
        if let Err(e) = crate::decode_step(widened, &q, &kr, &vr, &mut expected) {
            decode.widened_error = Some(e);
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
        if !stored_rounded::<E>(cache, i, &k, &v) {
            decode.stored_wrong += 1;
        }
        decode.bits_hash = out
            .as_flattened()
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes())
            .fold(decode.bits_hash, fnv1a_byte);
    }
    decode
}

/// `true` if position `i` of `cache` holds `E::from_f32` of `k` and `v`,
/// bit for bit.
fn stored_rounded<E: Element>(
    cache: &Cache<E>,
    i: usize,
    k: &KeyValueRow,
    v: &KeyValueRow,
) -> bool {
    let same = |stored: Option<&[[E; D]; KVH]>, given: &KeyValueRow| {
        stored.is_some_and(|s| {
            s.as_flattened()
                .iter()
                .zip(given.as_flattened())
                .all(|(&s, &x)| s == E::from_f32(x) || (s.to_f32().is_nan() && x.is_nan()))
        })
    };
    same(cache.keys().get(i), k) && same(cache.values().get(i), v)
}
