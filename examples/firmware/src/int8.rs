//! The integer path at the f32 run's shape: one
//! [`microattn::int8::causal_multi_head`] call on `i8` inputs with non-zero
//! zero points, the same positions again by [`microattn::int8::KvCache`]
//! decode steps, and their checks: the call equals the integer path's
//! specification
//! ([`reference::int8::causal_attention_dyn`](spec::causal_attention_dyn))
//! bit for bit, every output is within
//! [`reference::int8::bound`](spec::bound) of the `f64`
//! [`reference::int8::oracle`](spec::oracle), and each decode step equals
//! the call's row bit for bit.
//!
//! Memory: queries 1 KiB, output 1 KiB (the caller's), and the cache holding
//! the keys and values, 1 KiB and its bookkeeping; the checks work one query
//! position at a time, as the f32 run's do. With the `bounded-time` feature,
//! also the long call of the bounded-time proof ([`long_attention`]: one
//! query over [`LONG`] keys, 5 KiB in its cache).

use microattn::int8::{KvCache, Params, Quant};
use microattn::reference::int8 as spec;
use microattn::{Error, Shape};

use crate::{D, H, KVH, KvStream, N, XorShift32, fnv1a};

/// Values in one query position's output row (all heads).
const ROW: usize = H * D;

/// The queries' quantization. Every tensor has a zero point off 0, as
/// a TFLite model's activations usually do, so that the kernel's zero-point
/// corrections are exercised.
pub const QUERY: Quant = Quant {
    scale: 0.02,
    zero_point: -7,
};
/// The keys' quantization.
pub const KEY: Quant = Quant {
    scale: 0.03,
    zero_point: 5,
};
/// The values' quantization.
pub const VALUE: Quant = Quant {
    scale: 0.05,
    zero_point: -2,
};
/// The output's quantization.
pub const OUTPUT: Quant = Quant {
    scale: 0.04,
    zero_point: 3,
};

/// Queries or outputs, token-major: `[token][head][dim]`.
pub type Queries = [[[i8; D]; H]; N];
/// One position's queries or output row: `[head][dim]`.
pub type QueryRow = [[i8; D]; H];
/// Keys or values, token-major: `[token][kv head][dim]`.
pub type KeysValues = [[[i8; D]; KVH]; N];
/// One position's keys or values: `[kv head][dim]`.
pub type KeyValueRow = [[i8; D]; KVH];
/// The integer KV cache the keys and values live in: all `N` positions
/// (`2·N·KVH·D` = 1 KiB of keys and values, two lengths and the prepared
/// [`Params`]).
pub type Cache = KvCache<N, KVH, D>;

/// The prepared parameters: [`QUERY`], [`KEY`], [`VALUE`], [`OUTPUT`] and
/// the score scale `1/√D`. Preparing uses `f64` arithmetic, once; the
/// calls that take them are integer-only.
///
/// # Errors
/// As [`Params::new`] (not for these constants).
pub fn params() -> Result<Params, Error> {
    Params::new(QUERY, KEY, VALUE, OUTPUT, D)
}

/// The integer inputs: queries, and keys and values in an integer KV cache
/// (stored once, as the f32 run's [`Inputs`](crate::Inputs) are).
pub struct Inputs {
    /// Queries, uniform over every `i8`.
    pub q: Queries,
    /// Keys and values, uniform over every `i8`, of every position, once
    /// [`generate`](Self::generate) ran. `None` before: a cache holds its
    /// parameters, and those are prepared at run time.
    cache: Option<Cache>,
    /// The seed of [`generate`](Self::generate): the decode steps
    /// regenerate each position's key and value from it.
    seed: u32,
}

impl Inputs {
    /// Zero queries and no cache: the initial value of a static.
    pub const EMPTY: Inputs = Inputs {
        q: [[[0; D]; H]; N],
        cache: None,
        seed: 0,
    };

    /// Fills every input from `seed`, the f32 inputs' stream drawn as `i8`
    /// (all queries, then all keys, then all values), and makes the cache
    /// with `params`.
    pub fn generate(&mut self, params: Params, seed: u32) {
        self.seed = seed;
        let mut rng = XorShift32::new(seed);
        for x in self.q.as_flattened_mut().as_flattened_mut() {
            *x = rng.next_i8();
        }
        let cache = self.cache.insert(Cache::new(params));
        let mut stream = KvStream::new(seed);
        for _ in 0..N {
            let (k, v) = stream.next_position_i8();
            // Cannot fail: N pushes into a new cache of capacity N. If one
            // did, `kv` would be `None` and the run would fail.
            if cache.push(&k, &v).is_err() {
                break;
            }
        }
    }

    /// Fills every input for one case of the integer bounded-time proof:
    /// [`generate`](Self::generate)'s, then the case's changes to the
    /// queries and to each position's key and value.
    #[cfg(feature = "bounded-time")]
    pub fn fill_case(&mut self, params: Params, case: Case) {
        self.generate(params, crate::SEED);
        if case == Case::Ordinary {
            return;
        }
        case.change_query(self.q.as_flattened_mut().as_flattened_mut());
        let cache = self.cache.insert(Cache::new(params));
        let mut stream = KvStream::new(crate::SEED);
        for j in 0..N {
            let (mut k, v) = stream.next_position_i8();
            // Key j's entries: −128 + 8j rising (score rising with j), or
            // falling from 127.
            case.change_key(k.as_flattened_mut(), (8 * j).min(255) as i16);
            // Cannot fail: N pushes into a new cache of capacity N. If one
            // did, `kv` would be `None` and the run would fail.
            if cache.push(&k, &v).is_err() {
                break;
            }
        }
    }

    /// The prepared parameters, once [`generate`](Self::generate) ran.
    #[must_use]
    pub fn params(&self) -> Option<&Params> {
        self.cache.as_ref().map(Cache::params)
    }

    /// The keys and values of all `N` positions as the fixed-size arrays
    /// [`attention`] takes: the cache's storage, no copy. `None` unless the
    /// cache holds exactly `N` positions.
    #[must_use]
    pub fn kv(&self) -> Option<(&KeysValues, &KeysValues)> {
        let cache = self.cache.as_ref()?;
        let k = cache.keys().try_into().ok()?;
        let v = cache.values().try_into().ok()?;
        Some((k, v))
    }
}

impl KvStream {
    /// The next position's keys and values, uniform over every `i8`.
    fn next_position_i8(&mut self) -> (KeyValueRow, KeyValueRow) {
        let mut k = [[0; D]; KVH];
        let mut v = [[0; D]; KVH];
        for x in k.as_flattened_mut() {
            *x = self.k.next_i8();
        }
        for x in v.as_flattened_mut() {
            *x = self.v.next_i8();
        }
        (k, v)
    }
}

/// One input of the integer path's bounded-time proof: what integers can
/// hold of the `f32` proof's cases (no NaN, no mask), and the weights'
/// cutoff crossed both ways.
#[cfg(feature = "bounded-time")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The firmware's seeded inputs.
    Ordinary,
    /// Queries and keys at the ends of `i8`, alternating: the largest
    /// scores of either sign.
    Extremes,
    /// Queries at their zero point: every score 0, every weight 1.
    Equal,
    /// Key `j`'s entries `−128 + 8j`: each key a new maximum, the earlier
    /// ones past the cutoff.
    RisingMax,
    /// Key `j`'s entries `127 − 8j`: the maximum first, the later keys past
    /// the cutoff.
    FallingMax,
}

#[cfg(feature = "bounded-time")]
impl Case {
    /// Every case, in the order the firmware runs them.
    pub const ALL: [Case; 5] = [
        Case::Ordinary,
        Case::Extremes,
        Case::Equal,
        Case::RisingMax,
        Case::FallingMax,
    ];

    /// The case's name in the firmware's output.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Case::Ordinary => "ordinary",
            Case::Extremes => "extremes",
            Case::Equal => "equal scores",
            Case::RisingMax => "rising maximum",
            Case::FallingMax => "falling maximum",
        }
    }
    /// The case's change to seeded query entries.
    fn change_query(self, q: &mut [i8]) {
        match self {
            Case::Ordinary => {}
            Case::Extremes => alternate_ends(q),
            Case::Equal => q.fill(QUERY.zero_point as i8),
            Case::RisingMax | Case::FallingMax => q.fill(i8::MAX),
        }
    }

    /// The case's change to a key's seeded entries, at `step` of `0..=255`
    /// along the row (the rising key's entries `step − 128`, the falling
    /// key's `127 − step`).
    fn change_key(self, k: &mut [i8], step: i16) {
        match self {
            Case::Ordinary | Case::Equal => {}
            Case::Extremes => alternate_ends(k),
            Case::RisingMax => k.fill((step - 128) as i8),
            Case::FallingMax => k.fill((127 - step) as i8),
        }
    }
}

/// `i8::MIN` at even indices, `i8::MAX` at odd ones.
#[cfg(feature = "bounded-time")]
fn alternate_ends(x: &mut [i8]) {
    for (i, x) in x.iter_mut().enumerate() {
        *x = if i.is_multiple_of(2) {
            i8::MIN
        } else {
            i8::MAX
        };
    }
}

/// Keys in the row of the integer bounded-time proof's long call: more
/// than the 128 whose weights the kernel sums in `i32` only, so that the
/// call takes its long-row path (`i64` sums and the 64-bit normaliser).
#[cfg(feature = "bounded-time")]
pub const LONG: usize = 160;

/// The long call's cache: [`LONG`] positions of one head (5 KiB of keys
/// and values). A cache, not the runtime API: its head dimension is a
/// constant, so the kernel's scratch is `D` sums, not
/// [`MAX_HEAD_DIM`](microattn::int8::MAX_HEAD_DIM) (4 KiB more stack than
/// the Cortex-M0 has left).
#[cfg(feature = "bounded-time")]
pub type LongCache = KvCache<LONG, 1, D>;

/// The inputs and output of the long call: one query, and [`LONG`]
/// positions of keys and values, the last appended by the call.
#[cfg(feature = "bounded-time")]
pub struct LongInputs {
    /// The query (one head).
    pub q: [[i8; D]; 1],
    /// The last position's key.
    pub k: [[i8; D]; 1],
    /// The last position's value.
    pub v: [[i8; D]; 1],
    /// The output.
    pub out: [[i8; D]; 1],
    /// The first `LONG − 1` positions, once [`fill_case`](Self::fill_case)
    /// ran; all `LONG` after the call.
    cache: Option<LongCache>,
}

#[cfg(feature = "bounded-time")]
impl LongInputs {
    /// Zeros and no cache: the initial value of a buffer.
    pub const EMPTY: LongInputs = LongInputs {
        q: [[0; D]; 1],
        k: [[0; D]; 1],
        v: [[0; D]; 1],
        out: [[0; D]; 1],
        cache: None,
    };

    /// Fills the query and every position for one case, as
    /// [`Inputs::fill_case`] does for the short rows: seeded values, and
    /// the case's query and keys; the rising and falling keys' entries
    /// sweep the whole `i8` range over the row.
    pub fn fill_case(&mut self, params: Params, case: Case) {
        let mut rng = XorShift32::new(crate::SEED);
        for x in &mut self.q[0] {
            *x = rng.next_i8();
        }
        case.change_query(&mut self.q[0]);
        let cache = self.cache.insert(LongCache::new(params));
        for j in 0..LONG {
            let (mut k, mut v) = ([[0; D]; 1], [[0; D]; 1]);
            for x in &mut k[0] {
                *x = rng.next_i8();
            }
            for x in &mut v[0] {
                *x = rng.next_i8();
            }
            case.change_key(&mut k[0], (255 * j / (LONG - 1)) as i16);
            if j + 1 == LONG {
                (self.k, self.v) = (k, v);
            } else if cache.push(&k, &v).is_err() {
                // Cannot fail: LONG − 1 pushes into a new cache of capacity
                // LONG. If one did, the call's check would fail.
                break;
            }
        }
    }

    /// `true` if [`long_attention`]'s output equals the specification's
    /// ([`reference::int8::causal_attention_dyn`](spec::causal_attention_dyn))
    /// over the cache's `LONG` positions, bit for bit. Never inlined: its
    /// scratch is on the stack only while it runs.
    #[inline(never)]
    #[must_use]
    pub fn is_specified(&self) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let shape = Shape::new(1, LONG, 1, 1, D);
        let (k, v) = (cache.keys(), cache.values());
        let (k, v) = (
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
        );
        let mut want = [0; D];
        cache.is_full()
            && spec::causal_attention_dyn(&shape, cache.params(), &self.q[0], k, v, &mut want)
                .is_ok()
            && want == self.out[0]
    }
}

/// The long call of the integer bounded-time proof: one query over
/// [`LONG`] keys, the decode step that appends the last position
/// ([`KvCache::step`]). Never inlined, as [`attention`].
///
/// # Errors
/// [`Error::CacheFull`] if the cache is full; `CacheFull` with capacity 0
/// if [`LongInputs::fill_case`] has not run.
#[cfg(feature = "bounded-time")]
#[inline(never)]
pub fn long_attention(inputs: &mut LongInputs) -> Result<(), Error> {
    let LongInputs {
        q,
        k,
        v,
        out,
        cache,
    } = inputs;
    let Some(cache) = cache.as_mut() else {
        return Err(Error::CacheFull {
            capacity: 0,
            len: 0,
            requested: 1,
        });
    };
    cache.step(q, k, v, out)
}

/// The measured call: one integer causal multi-head attention over all `N`
/// positions. Never inlined, for the footprint script (its code is this
/// function and what it calls) and the painted stack, as
/// [`attention`](crate::attention).
#[inline(never)]
pub fn attention(params: &Params, q: &Queries, k: &KeysValues, v: &KeysValues, out: &mut Queries) {
    microattn::int8::causal_multi_head::<N, H, KVH, D>(params, q, k, v, out);
}

/// One integer decode step: appends one position's key and value to
/// `cache` and runs its queries over every cached position
/// ([`KvCache::step`]). Never inlined, as [`decode_step`](crate::decode_step).
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
    cache.step(q, k, v, out)
}

/// How the integer output compares with the specification and the oracle.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accuracy {
    /// Query positions checked (all `N` unless the inputs are missing).
    pub positions: usize,
    /// Outputs that differ from the specification's
    /// ([`reference::int8::causal_attention_dyn`](spec::causal_attention_dyn)).
    pub mismatches: usize,
    /// The first of them, as an index into the flattened output.
    pub first_mismatch: Option<usize>,
    /// Outputs farther from the oracle than
    /// [`reference::int8::bound`](spec::bound)
    /// ([`reference::int8::within_bound`](spec::within_bound) false).
    pub outside: usize,
    /// The first of them, as an index into the flattened output.
    pub first_outside: Option<usize>,
    /// `max |out − oracle|`, in output steps, the oracle saturated to `i8`
    /// as [`reference::int8::within_bound`](spec::within_bound) saturates it.
    pub max_error: f64,
    /// The bound of the row where that error is reached.
    pub bound_there: f64,
}

impl Accuracy {
    /// `true` if every position was checked, equals the specification bit
    /// for bit, and is within the bound.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.positions == N && self.mismatches == 0 && self.outside == 0
    }
}

/// Checks `out` (the result of [`attention`] on `inputs`) one query
/// position at a time: position `i`'s row against the specification and
/// the oracle over keys `0..=i` (the runtime API with `q_len = 1`,
/// `kv_len = i + 1` is exactly that causal row). Inputs without their
/// cache fail.
///
/// Never inlined, so that its frame (two rows, 288 bytes) is on the stack
/// only while it runs.
#[inline(never)]
#[must_use]
pub fn check_against_reference(inputs: &Inputs, out: &Queries) -> Accuracy {
    let mut acc = Accuracy::default();
    let (Some(params), Some((k, v))) = (inputs.params(), inputs.kv()) else {
        return acc;
    };
    for (i, (q, row)) in inputs.q.iter().zip(out).enumerate() {
        let row_inputs = (
            q.as_flattened(),
            k[..=i].as_flattened().as_flattened(),
            v[..=i].as_flattened().as_flattened(),
        );
        let mut want = [0; ROW];
        let mut oracle = [0.0; ROW];
        if !(specified_row(params, row_inputs, &mut want)
            && oracle_row(params, row_inputs, &mut oracle))
        {
            // Cannot happen for this fixed shape; if it did, the missing
            // positions fail the check.
            return acc;
        }
        let bound = spec::bound(params, i + 1);
        let values = row.as_flattened().iter().zip(&want).zip(&oracle);
        for (j, ((&got, &want), &exact)) in values.enumerate() {
            let index = i * ROW + j;
            if got != want {
                acc.mismatches += 1;
                acc.first_mismatch.get_or_insert(index);
            }
            if !spec::within_bound(got, exact, bound) {
                acc.outside += 1;
                acc.first_outside.get_or_insert(index);
            }
            let error = (f64::from(got) - exact.clamp(-128.0, 127.0)).abs();
            if error > acc.max_error {
                acc.max_error = error;
                acc.bound_there = bound;
            }
        }
        acc.positions += 1;
    }
    acc
}

/// One query position's queries and the keys and values it sees, flat.
type RowInputs<'a> = (&'a [i8], &'a [i8], &'a [i8]);

/// The shape of one query position over `kv_len` keys.
fn row_shape(kv_len: usize) -> Shape {
    Shape::new(1, kv_len, H, KVH, D)
}

/// Writes the specification's row
/// ([`reference::int8::causal_attention_dyn`](spec::causal_attention_dyn))
/// to `row`; `false` if it refused the shape. Never inlined, nor is [`oracle_row`]: each keeps a
/// scratch row of [`MAX_HEAD_DIM`](microattn::int8::MAX_HEAD_DIM) sums on
/// the stack (2 KiB), so that only one of them is there at a time.
#[inline(never)]
fn specified_row(params: &Params, (q, k, v): RowInputs, row: &mut [i8; ROW]) -> bool {
    let shape = row_shape(k.len() / (KVH * D));
    spec::causal_attention_dyn(&shape, params, q, k, v, row).is_ok()
}

/// Writes the oracle's row ([`reference::int8::oracle`](spec::oracle), in
/// output steps) to `row`; `false` if it refused the shape.
#[inline(never)]
fn oracle_row(params: &Params, (q, k, v): RowInputs, row: &mut [f64; ROW]) -> bool {
    let shape = row_shape(k.len() / (KVH * D));
    spec::oracle(&shape, params, q, k, v, row).is_ok()
}

/// FNV-1a over the output: the integer path promises the same bits on
/// every target, so the host check compares it with the host's.
#[must_use]
pub fn bits_hash(out: &Queries) -> u32 {
    fnv1a(out.as_flattened().as_flattened().iter().map(|&x| x as u8))
}

/// What the integer decode steps gave.
#[derive(Clone, Copy, Debug)]
pub struct Decode {
    /// Decode steps that ran: positions `0..steps`.
    pub steps: usize,
    /// The cache's error if a step failed (the steps stop there).
    pub error: Option<Error>,
    /// Positions whose decode-step output is not bit for bit the call's
    /// row.
    pub mismatches: usize,
    /// The first of them.
    pub first_mismatch: Option<usize>,
}

impl Decode {
    /// `true` if all `N` steps ran and each equals the call's row bit for
    /// bit.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.steps == N && self.error.is_none() && self.mismatches == 0
    }
}

/// Integer decode steps: every position `i = 0..N` in turn by
/// [`decode_step`], from an empty cache, each checked bit for bit against
/// row `i` of `prefill` (the [`attention`] output for the same inputs).
/// The cache is `inputs`' own: it is emptied, and each step appends the key
/// and value regenerated from the inputs' seed, as
/// [`decode_steps`](crate::decode_steps) does for the f32 run.
///
/// `around_step(i, step)` must call `step` once: it runs the decode step of
/// position `i` (the firmware measures the stack of one step with it).
pub fn decode_steps(
    inputs: &mut Inputs,
    prefill: &Queries,
    mut around_step: impl FnMut(usize, &mut dyn FnMut()),
) -> Decode {
    let mut decode = Decode {
        steps: 0,
        error: None,
        mismatches: 0,
        first_mismatch: None,
    };
    let Inputs { q, cache, seed } = inputs;
    let Some(cache) = cache.as_mut() else {
        return decode;
    };
    cache.clear();
    let mut stream = KvStream::new(*seed);
    for (i, (q_row, expected)) in q.iter().zip(prefill).enumerate() {
        let (k, v) = stream.next_position_i8();
        let mut out = [[i8::MIN; D]; H];
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
        if out != *expected {
            decode.mismatches += 1;
            decode.first_mismatch.get_or_insert(i);
        }
    }
    decode
}
