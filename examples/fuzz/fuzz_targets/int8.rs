//! Raw bytes through the integer path: `int8::Params`, the runtime and
//! fixed-size APIs, and `int8::KvCache`.
//!
//! The input bytes choose a shape (`q_len ≤ kv_len ≤ 24`, head dims 1–20,
//! one of several head groupings; sometimes an invalid shape, a head dim
//! of `MAX_HEAD_DIM` or past it, or rows of up to 323 keys), the four
//! tensors' quantization and the score scale (scales over five decades,
//! output scales around the accepted `Sv/So` range and just below powers
//! of two, or odd ones: 0, −0, negative, NaN, ±∞, subnormal, `f32::MAX`,
//! raw bits; zero points across `i8` or outside it), buffer lengths
//! sometimes off by one, and the `i8` values (any byte, only −128 and
//! 127, or small ones). Checked on every input:
//!
//! 1. **Parameters**: `Params::new` and `Params::with_score_scale` never
//!    panic and answer as their docs say: the typed error of the first bad
//!    parameter, in the documented order, else `Ok` with the parameters
//!    read back and the cutoff the last score difference whose exponent is
//!    below the weight's limit (`17·2^16`). Where the answer rests on a
//!    prepared multiplier's range (`score_scale·Sq·Sk·log2(e)·2^16` in
//!    `[2^−11, 2^30)`, `Sv/So` in `[2^−8, 2^4]`), either answer is accepted
//!    within a relative `10⁻⁹` of the range's ends.
//! 2. **Runtime API**: `int8::causal_attention_dyn`, its `f32` variant, the
//!    reference and the oracle return the error the shape and buffer rules
//!    give, in their order, or `Ok`; on an error every output is
//!    untouched. Otherwise the output has the bits of
//!    `reference::int8::causal_attention_dyn`; each value is within
//!    `reference::int8::bound(params, visible keys)` of
//!    `reference::int8::oracle` (`within_bound`), and within 1 output step
//!    in rows of up to 64 keys (the docs' promise); and the `f32` output,
//!    requantized by hand, lies within the `i8` output's own roundings of
//!    it: half a step, the `Q8` mean's `2^−9` and the mantissa's
//!    `3.1·10⁻⁵` of up to 255 value steps, and the `f32` rounding
//!    (`2^−24` of up to 255 value steps), each times `Sv/So`.
//! 3. **Fixed size**: on one shape (`N = 6`, `H = 4`, `KVH = 2`, `D = 5`,
//!    values taken from the decoded buffers), `int8::causal_multi_head` and
//!    its `f32` variant have the runtime API's bits, which are the
//!    reference's.
//! 4. **Cache**: on that shape, a `KvCache<8, 2, 5>`: batches of the wrong
//!    length get `LengthMismatch` for the right buffer, counted in values,
//!    with the cache and `out` unchanged; a prefill of the first positions
//!    and decode steps for the rest give the runtime API's rows bit for
//!    bit (and `attend` after a step the same row); appends past the
//!    capacity (`extend`, `prefill`, `push`, `step`) get `CacheFull` with
//!    the keys, values and `out` unchanged; `truncate` keeps a prefix, and
//!    decoding again from it gives the same rows; after `clear`, `attend`
//!    gives the output zero point everywhere, and a prefill in two chunks
//!    gives the rows again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microattn::int8::{self, KvCache, MAX_HEAD_DIM, Params, Quant};
use microattn::reference::int8 as naive;
use microattn::{Buffer, Error, Shape};

/// Reads the input a piece at a time; past its end, zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// A fraction in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        f64::from(self.u16()) / 65536.0
    }
    /// A scale: mostly `10^e` for `e` in `[−4, 1)`, sometimes an odd one
    /// or raw bits.
    fn scale(&mut self) -> f32 {
        match self.u8() % 8 {
            0 => f32::from_bits(self.u32()),
            1 => ODD_SCALES[usize::from(self.u8()) % ODD_SCALES.len()],
            _ => 10f64.powf(-4.0 + 5.0 * self.unit()) as f32,
        }
    }
    /// A zero point: mostly any `i8`, sometimes one outside it.
    fn zero_point(&mut self) -> i32 {
        match self.u8() % 8 {
            0 => ODD_ZERO_POINTS[usize::from(self.u8()) % ODD_ZERO_POINTS.len()],
            _ => i32::from(self.u8() as i8),
        }
    }
    fn quant(&mut self) -> Quant {
        Quant {
            scale: self.scale(),
            zero_point: self.zero_point(),
        }
    }
    /// A length usually right, sometimes off by one either way.
    fn maybe_wrong(&mut self, len: usize) -> usize {
        match self.u8() {
            0 => len + 1,
            1 => len.saturating_sub(1),
            _ => len,
        }
    }
}

/// (heads, kv_heads) pairs: MHA, GQA, MQA, and two invalid ones.
const HEADS: [(usize, usize); 8] = [
    (1, 1),
    (2, 1),
    (4, 2),
    (4, 4),
    (3, 1),
    (8, 1),
    (2, 3),
    (0, 1),
];

/// Scales that must be refused, or lie at the ends of `f32`.
const ODD_SCALES: [f32; 10] = [
    0.0,
    -0.0,
    -0.05,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MIN_POSITIVE,
    1e-45,
    f32::MAX,
    -f32::MAX,
];

/// Zero points outside `i8`.
const ODD_ZERO_POINTS: [i32; 5] = [128, -129, 1000, i32::MIN, i32::MAX];

fn shape(bytes: &mut Bytes<'_>) -> Shape {
    let mut q_len = usize::from(bytes.u8() % 25);
    let mut kv_len = q_len + usize::from(bytes.u8()) % (25 - q_len);
    let (heads, kv_heads) = HEADS[usize::from(bytes.u8()) % HEADS.len()];
    let mut head_dim = usize::from(bytes.u8() % 20) + 1;
    match bytes.u8() {
        0 => q_len = kv_len + 1,
        1 => head_dim = MAX_HEAD_DIM + 1,
        2 => head_dim = MAX_HEAD_DIM,
        3 => head_dim = 0,
        // Long rows, up to 323 keys: past the scores the kernel keeps
        // between its passes, its i32-only rows and its first i32 block of
        // value sums.
        4 => kv_len += usize::from(bytes.u16() % 300),
        _ => {}
    }
    Shape::new(q_len, kv_len, heads, kv_heads, head_dim)
}

/// `i8` values: any byte, only the extremes, or small ones.
fn values(bytes: &mut Bytes<'_>, mode: u8, len: usize) -> Vec<i8> {
    (0..len)
        .map(|_| {
            let b = bytes.u8();
            match mode % 4 {
                0 => [-128, 127][usize::from(b & 1)],
                1 => (b as i8) >> 4,
                _ => b as i8,
            }
        })
        .collect()
}

/// What preparing parameters must give.
#[derive(Debug)]
enum Expect {
    Valid,
    /// This error (for `InvalidQuantization`, its `what`).
    Invalid(Error),
    /// Within `10⁻⁹` of a range's end: either.
    Either,
}

/// `x` against `[lo, hi)` (or `[lo, hi]`): inside, outside, or too close
/// to an end to say.
fn range(x: f64, lo: f64, hi: f64) -> Option<bool> {
    const EPS: f64 = 1e-9;
    if !x.is_finite() || x < lo * (1.0 - EPS) || x > hi * (1.0 + EPS) {
        Some(false)
    } else if x > lo * (1.0 + EPS) && x < hi * (1.0 - EPS) {
        Some(true)
    } else {
        None
    }
}

/// `Params::with_score_scale`'s rules, in their order.
fn expect_params(t: [Quant; 4], score: f32) -> Expect {
    let invalid = |what| Expect::Invalid(Error::InvalidQuantization { what, reason: "" });
    for (quant, what) in t.iter().zip(["query", "key", "value", "output"]) {
        if !(quant.scale.is_normal() && quant.scale > 0.0) {
            return invalid(what);
        }
        if !(-128..=127).contains(&quant.zero_point) {
            return invalid(what);
        }
    }
    if !score.is_finite() {
        return Expect::Invalid(Error::NonFiniteScale);
    }
    if score <= 0.0 {
        return invalid("score scale");
    }
    let [q, k, v, o] = t.map(|x| f64::from(x.scale));
    let exponent = f64::from(score) * q * k * std::f64::consts::LOG2_E * 65536.0;
    let ratio = v / o;
    match (
        range(exponent, 2f64.powi(-11), 2f64.powi(30)),
        range(ratio, 2f64.powi(-8), 16.0),
    ) {
        (Some(false), _) => invalid("score scale"),
        (None, _) => Expect::Either,
        (Some(true), Some(false)) => invalid("output"),
        (Some(true), None) => Expect::Either,
        (Some(true), Some(true)) => Expect::Valid,
    }
}

fn check_params(got: &Result<Params, Error>, expect: &Expect, t: [Quant; 4], score: f32) {
    let what = || format!("{t:?}, score scale {score:e}: {got:?}, expected {expect:?}");
    match (got, expect) {
        (Ok(p), Expect::Valid | Expect::Either) => {
            assert_eq!([p.query(), p.key(), p.value(), p.output()], t, "{}", what());
            assert_eq!(p.score_scale().to_bits(), score.to_bits(), "{}", what());
            // The cutoff is the last difference below the weight's limit.
            let limit = 17 << 16;
            assert!(p.exponent(p.cutoff()) < limit, "{}", what());
            if let Some(past) = p.cutoff().checked_add(1) {
                assert!(p.exponent(past) >= limit, "{}", what());
            }
        }
        (
            Err(Error::InvalidQuantization { what: a, .. }),
            Expect::Invalid(Error::InvalidQuantization { what: b, .. }),
        ) => assert_eq!(a, b, "{}", what()),
        (
            Err(Error::InvalidQuantization {
                what: "score scale" | "output",
                ..
            }),
            Expect::Either,
        ) => {}
        (Err(e), Expect::Invalid(want)) => assert_eq!(e, want, "{}", what()),
        _ => panic!("{}", what()),
    }
}

/// Quantization and a score scale from the input, through both
/// constructors (`new` when the score scale is the default).
fn params(bytes: &mut Bytes<'_>, head_dim: usize) -> Option<Params> {
    let (q, k, v) = (bytes.quant(), bytes.quant(), bytes.quant());
    let output = match bytes.u8() % 4 {
        // Sv/So = 2^x for x in [−9, 5): around the accepted [2^−8, 2^4].
        0 => Quant {
            scale: (f64::from(v.scale) / 2f64.powf(-9.0 + 14.0 * bytes.unit())) as f32,
            zero_point: bytes.zero_point(),
        },
        // Sv/So just below a power of two in [2^−9, 2^4]: the ends of the
        // range, and a mantissa that rounds up to the next power.
        1 => {
            let below = 1.0 - 2f64.powi(-i32::from(14 + bytes.u8() % 12));
            let ratio = 2f64.powi(i32::from(bytes.u8() % 14) - 9) * below;
            Quant {
                scale: (f64::from(v.scale) / ratio) as f32,
                zero_point: bytes.zero_point(),
            }
        }
        _ => bytes.quant(),
    };
    let t = [q, k, v, output];
    let (got, score) = match bytes.u8() % 4 {
        0 | 1 => {
            let got = Params::new(q, k, v, output, head_dim);
            if head_dim == 0 {
                let want = Error::ZeroDimension { field: "head_dim" };
                assert_eq!(got, Err(want));
                return None;
            }
            (got, (1.0 / (head_dim as f64).sqrt()) as f32)
        }
        2 => {
            let score = 10f64.powf(-2.0 + 3.0 * bytes.unit()) as f32;
            (Params::with_score_scale(q, k, v, output, score), score)
        }
        _ => {
            let score = bytes.scale();
            (Params::with_score_scale(q, k, v, output, score), score)
        }
    };
    check_params(&got, &expect_params(t, score), t, score);
    got.ok()
}

/// The runtime API's rules, in their order: the shape, the buffers, the
/// head dimension.
fn expect_runtime(s: &Shape, [q, k, v, out]: [usize; 4]) -> Option<Error> {
    for (x, field) in [
        (s.heads, "heads"),
        (s.kv_heads, "kv_heads"),
        (s.head_dim, "head_dim"),
    ] {
        if x == 0 {
            return Some(Error::ZeroDimension { field });
        }
    }
    if s.heads % s.kv_heads != 0 {
        return Some(Error::HeadsNotMultiple {
            heads: s.heads,
            kv_heads: s.kv_heads,
        });
    }
    if s.q_len > s.kv_len {
        return Some(Error::QueryLongerThanKeys {
            q_len: s.q_len,
            kv_len: s.kv_len,
        });
    }
    let q_elems = s.q_len * s.heads * s.head_dim;
    let kv_elems = s.kv_len * s.kv_heads * s.head_dim;
    for (buffer, expected, actual) in [
        (Buffer::Query, q_elems, q),
        (Buffer::Key, kv_elems, k),
        (Buffer::Value, kv_elems, v),
        (Buffer::Output, q_elems, out),
    ] {
        if expected != actual {
            return Some(Error::LengthMismatch {
                buffer,
                expected,
                actual,
            });
        }
    }
    (s.head_dim > MAX_HEAD_DIM).then_some(Error::HeadDimTooLarge {
        head_dim: s.head_dim,
        max: MAX_HEAD_DIM,
    })
}

/// Output poison: a pattern a failed call must leave as it is.
fn poison(len: usize) -> Vec<i8> {
    (0..len).map(|i| (i * 37 + 11) as u8 as i8).collect()
}

const POISON: f32 = f32::from_bits(0x7fc0_dead);

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Property 2.
fn check_runtime(shape: &Shape, p: &Params, (q, k, v): (&[i8], &[i8], &[i8]), out_len: usize) {
    let mut fast = poison(out_len);
    let mut slow = poison(out_len);
    let mut real = vec![POISON; out_len];
    let mut oracle = vec![f64::NAN; out_len];
    let results = [
        int8::causal_attention_dyn(shape, p, q, k, v, &mut fast),
        naive::causal_attention_dyn(shape, p, q, k, v, &mut slow),
        int8::causal_attention_dyn_f32(shape, p, q, k, v, &mut real),
        naive::oracle(shape, p, q, k, v, &mut oracle),
    ];
    let want = expect_runtime(shape, [q.len(), k.len(), v.len(), out_len]).map_or(Ok(()), Err);
    assert_eq!(results, [want; 4], "{shape:?}");
    if want.is_err() {
        assert_eq!(fast, poison(out_len), "out touched on an error");
        assert_eq!(slow, poison(out_len), "reference out touched on an error");
        assert!(
            real.iter().all(|x| x.to_bits() == POISON.to_bits()),
            "f32 out touched on an error"
        );
        assert!(
            oracle.iter().all(|x| x.is_nan()),
            "oracle out touched on an error"
        );
        return;
    }
    let case = || format!("{shape:?}\n{p:?}\nq {q:?}\nk {k:?}\nv {v:?}");
    assert_eq!(fast, slow, "kernel != reference: {}", case());
    let (po, pv) = (p.output(), p.value());
    let m = f64::from(pv.scale) / f64::from(po.scale);
    let slack = 0.5 + m * (2f64.powi(-9) + 255.0 * 3.1e-5 + 255.0 * 2f64.powi(-24));
    let row = shape.heads * shape.head_dim;
    for (at, ((&o, &want), &r)) in fast.iter().zip(&oracle).zip(&real).enumerate() {
        let visible = shape.kv_len - shape.q_len + at / row + 1;
        let bound = naive::bound(p, visible);
        assert!(
            naive::within_bound(o, want, bound),
            "output {at}: {o} vs oracle {want}, bound {bound}: {}",
            case()
        );
        // The docs' promise for rows of up to 64 keys, whatever Sv/So.
        assert!(
            visible > 64 || naive::within_bound(o, want, 1.0),
            "output {at} of a row of {visible} keys: {o} vs oracle {want}, over 1 step: {}",
            case()
        );
        if r.is_infinite() {
            // Sv·mean beyond f32 (scales near f32::MAX): so is the
            // oracle's real value, within the bound.
            let real = (want - f64::from(po.zero_point)) * f64::from(po.scale);
            assert!(
                f64::from(r).signum() == real.signum()
                    && real.abs() + bound * f64::from(po.scale) >= f64::from(f32::MAX),
                "output {at}: f32 {r}, oracle {real:e}: {}",
                case()
            );
            continue;
        }
        let steps =
            (f64::from(r) / f64::from(po.scale) + f64::from(po.zero_point)).clamp(-128.0, 127.0);
        assert!(
            (steps - f64::from(o)).abs() <= slack,
            "output {at}: f32 {r} is {steps} steps, i8 {o}, slack {slack}: {}",
            case()
        );
    }
}

// The fixed shape of properties 3 and 4, and the cache's capacity.
const N: usize = 6;
const H: usize = 4;
const KVH: usize = 2;
const D: usize = 5;
const CAP: usize = 8;

/// One position's queries (all heads), and keys or values.
type Qry = [[i8; D]; H];
type Tok = [[i8; D]; KVH];

/// The fixed shape's inputs: `src` repeated (zeros if empty).
fn cycle<const G: usize>(src: &[i8]) -> [[[i8; D]; G]; N] {
    let mut a = [[[0; D]; G]; N];
    for (i, x) in a
        .as_flattened_mut()
        .as_flattened_mut()
        .iter_mut()
        .enumerate()
    {
        *x = src.get(i % src.len().max(1)).copied().unwrap_or(0);
    }
    a
}

/// Property 3: the fixed-size calls against the runtime API; its rows.
fn check_fixed(p: &Params, q: &[Qry; N], k: &[Tok; N], v: &[Tok; N]) -> [Qry; N] {
    let shape = Shape::new(N, N, H, KVH, D);
    let flat = |x: &[Tok; N]| x.as_flattened().as_flattened().to_vec();
    let (qf, kf, vf) = (q.as_flattened().as_flattened(), flat(k), flat(v));
    let mut rows = [[[0i8; D]; H]; N];
    let out = rows.as_flattened_mut().as_flattened_mut();
    int8::causal_attention_dyn(&shape, p, qf, &kf, &vf, out).expect("valid shape");
    let mut slow = vec![0i8; N * H * D];
    naive::causal_attention_dyn(&shape, p, qf, &kf, &vf, &mut slow).expect("valid shape");
    assert_eq!(out, &slow[..], "fixed shape: runtime != reference");
    let mut fixed = [[[0i8; D]; H]; N];
    int8::causal_multi_head(p, q, k, v, &mut fixed);
    assert_eq!(fixed, rows, "causal_multi_head != runtime");

    let mut real = vec![0f32; N * H * D];
    int8::causal_attention_dyn_f32(&shape, p, qf, &kf, &vf, &mut real).expect("valid shape");
    let mut fixed = [[[0f32; D]; H]; N];
    int8::causal_multi_head_f32(p, q, k, v, &mut fixed);
    assert_eq!(
        bits(fixed.as_flattened().as_flattened()),
        bits(&real),
        "causal_multi_head_f32 != runtime"
    );
    rows
}

type Cache = KvCache<CAP, KVH, D>;

/// The cache's keys and values, to show a failed call changed nothing.
fn snapshot(c: &Cache) -> (Vec<Tok>, Vec<Tok>) {
    (c.keys().to_vec(), c.values().to_vec())
}

/// A call that must fail with `want` and change neither the cache nor
/// its output.
fn refused<O: PartialEq + std::fmt::Debug + Clone>(
    c: &mut Cache,
    out: &mut O,
    want: Error,
    call: impl FnOnce(&mut Cache, &mut O) -> Result<(), Error>,
) {
    let (before, out_before) = (snapshot(c), out.clone());
    assert_eq!(call(c, out), Err(want));
    assert_eq!(snapshot(c), before, "{want:?} changed the cache");
    assert_eq!(*out, out_before, "{want:?} wrote the output");
}

fn full(len: usize, requested: usize) -> Error {
    Error::CacheFull {
        capacity: CAP,
        len,
        requested,
    }
}

fn mismatch(buffer: Buffer, n: usize, actual: usize, per: usize) -> Error {
    Error::LengthMismatch {
        buffer,
        expected: n * per,
        actual: actual * per,
    }
}

/// Positions `from..N` one decode step each, against the rows; `attend`
/// after a step too, when the input says so.
fn decode(bytes: &mut Bytes<'_>, c: &mut Cache, (q, k, v): (&[Qry], &[Tok], &[Tok]), rows: &[Qry]) {
    for i in c.len()..N {
        let mut out = [[0x55i8; D]; H];
        assert_eq!(c.step(&q[i], &k[i], &v[i], &mut out), Ok(()));
        assert_eq!(out, rows[i], "step {i} != runtime row");
        if bytes.u8() & 1 != 0 {
            let mut again = [[0x55i8; D]; H];
            c.attend(&q[i], &mut again);
            assert_eq!(again, rows[i], "attend after step {i} != runtime row");
        }
    }
}

/// Property 4.
fn check_cache(
    bytes: &mut Bytes<'_>,
    p: &Params,
    (q, k, v): (&[Qry], &[Tok], &[Tok]),
    rows: &[Qry],
) {
    let mut c = Cache::new(*p);
    assert_eq!(c.params(), p);
    assert!(c.is_empty() && c.capacity() == CAP);
    let mut out = vec![[[0x55i8; D]; H]; N];

    // Batches of the wrong length, then a prefill of the first n0.
    let n0 = usize::from(bytes.u8()) % (N + 1);
    let bad = bytes.u8();
    if n0 > 0 {
        let m = n0 - 1;
        if bad & 1 != 0 {
            refused(
                &mut c,
                &mut out,
                mismatch(Buffer::Key, n0, m, KVH * D),
                |c, o| c.prefill(&q[..n0], &k[..m], &v[..n0], &mut o[..n0]),
            );
        }
        if bad & 2 != 0 {
            refused(
                &mut c,
                &mut out,
                mismatch(Buffer::Value, n0, m, KVH * D),
                |c, o| c.prefill(&q[..n0], &k[..n0], &v[..m], &mut o[..n0]),
            );
        }
        if bad & 4 != 0 {
            refused(
                &mut c,
                &mut out,
                mismatch(Buffer::Output, n0, m, H * D),
                |c, o| c.prefill(&q[..n0], &k[..n0], &v[..n0], &mut o[..m]),
            );
        }
        if bad & 8 != 0 {
            refused(
                &mut c,
                &mut out,
                mismatch(Buffer::Value, n0, m, KVH * D),
                |c, _| c.extend(&k[..n0], &v[..m]),
            );
        }
    }
    assert_eq!(
        c.prefill(&q[..n0], &k[..n0], &v[..n0], &mut out[..n0]),
        Ok(())
    );
    assert_eq!(out[..n0], rows[..n0], "prefill != runtime rows");

    // Decode steps for the rest.
    decode(bytes, &mut c, (q, k, v), rows);
    assert_eq!(snapshot(&c), (k.to_vec(), v.to_vec()));

    // Past the capacity: CacheFull, nothing changed.
    let over = CAP - N + 1;
    refused(&mut c, &mut out, full(N, over), |c, _| {
        c.extend(&k[..over], &v[..over])
    });
    refused(&mut c, &mut out, full(N, over), |c, o| {
        c.prefill(&q[..over], &k[..over], &v[..over], &mut o[..over])
    });
    assert_eq!(c.extend(&k[..over - 1], &v[..over - 1]), Ok(()));
    assert!(c.is_full() && c.len() == CAP);
    assert_eq!(c.extend(&[], &[]), Ok(()));
    refused(&mut c, &mut out, full(CAP, 1), |c, _| c.push(&k[0], &v[0]));
    refused(&mut c, &mut out[0], full(CAP, 1), |c, o| {
        c.step(&q[0], &k[0], &v[0], o)
    });
    refused(&mut c, &mut out, full(CAP, 1), |c, o| {
        c.prefill(&q[..1], &k[..1], &v[..1], &mut o[..1])
    });

    // Truncate to a prefix of the decoded positions, and decode again.
    let t = usize::from(bytes.u8()) % (CAP + 2);
    c.truncate(t);
    assert_eq!(c.len(), t.min(CAP));
    if t <= N {
        assert_eq!(snapshot(&c), (k[..t].to_vec(), v[..t].to_vec()));
        decode(bytes, &mut c, (q, k, v), rows);
    }

    // Empty: the zero point everywhere; then a prefill in two chunks.
    c.clear();
    assert!(c.is_empty() && c.keys().is_empty() && c.values().is_empty());
    let mut empty = [[0x55i8; D]; H];
    c.attend(&q[0], &mut empty);
    let zo = p.output().zero_point as i8;
    assert_eq!(
        empty, [[zo; D]; H],
        "an empty cache does not give the zero point"
    );
    let s = usize::from(bytes.u8()) % (N + 1);
    let mut chunks = vec![[[0x55i8; D]; H]; N];
    assert_eq!(
        c.prefill(&q[..s], &k[..s], &v[..s], &mut chunks[..s]),
        Ok(())
    );
    assert_eq!(
        c.prefill(&q[s..], &k[s..], &v[s..], &mut chunks[s..]),
        Ok(())
    );
    assert_eq!(chunks, rows, "prefill in chunks at {s} != runtime rows");
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let shape = shape(&mut bytes);
    let Some(p) = params(&mut bytes, shape.head_dim) else {
        return;
    };
    let q_elems = shape.q_len * shape.heads * shape.head_dim;
    let kv_elems = shape.kv_len * shape.kv_heads * shape.head_dim;
    let lens = [
        bytes.maybe_wrong(q_elems),
        bytes.maybe_wrong(kv_elems),
        bytes.maybe_wrong(kv_elems),
        bytes.maybe_wrong(q_elems),
    ];
    let modes = [bytes.u8(), bytes.u8(), bytes.u8()];
    let q = values(&mut bytes, modes[0], lens[0]);
    let k = values(&mut bytes, modes[1], lens[1]);
    let v = values(&mut bytes, modes[2], lens[2]);
    check_runtime(&shape, &p, (&q, &k, &v), lens[3]);

    let (fq, fk, fv) = (cycle::<H>(&q), cycle::<KVH>(&k), cycle::<KVH>(&v));
    let rows = check_fixed(&p, &fq, &fk, &fv);
    check_cache(&mut bytes, &p, (&fq, &fk, &fv), &rows);
});
