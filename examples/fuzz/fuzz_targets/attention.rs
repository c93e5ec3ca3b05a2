//! Raw f32 bit patterns and lengths through `causal_attention_dyn` and
//! `causal_attention_padded`.
//!
//! The input bytes choose a shape (lengths 0–24, head dims 1–20, one of
//! several head groupings, a batch of 0–3 padded sequences with their valid
//! lengths), sometimes a wrong buffer length or a hostile scale, and the
//! values: either raw bit patterns (every NaN, ∞, subnormal, −0.0) or
//! bounded finite values. Checked on every input:
//!
//! 1. **No panic**, and the fast API returns exactly what the reference
//!    returns (`Ok` or the same `Error`); on `Err`, `out` is untouched.
//! 2. **NaN policy**, for every query row (q row `i` of head `h`, reading
//!    key/value head `g`, keys `0..visible`), with raw bits. Its scores are
//!    the kernel's bits, computed here as the crate docs state them (one
//!    chain `s = q_d·k_d + s`, fused where this build fuses, then
//!    `s·scale`); a key whose score is `-inf` is masked (weight 0, value
//!    never read), the others are weighed:
//!    - a NaN in its q row or in one of its visible k rows makes every value
//!      of the row NaN;
//!    - otherwise, with no weighed key, the row is exactly `+0.0`;
//!    - a weighed score of `+inf` makes every value of the row NaN;
//!    - otherwise a NaN in column `c` of a weighed key's v row makes column
//!      `c` NaN;
//!    - if the weighed keys' scores and v rows are finite and every such
//!      `|v|` is at most `f32::MAX / visible` (so that the unnormalised sum
//!      cannot overflow), the row is finite, whatever the masked keys' v
//!      rows hold.
//! 3. **Padding**: every padded query row is `+0.0`; every valid row has the
//!    bits `causal_attention_dyn` gives it on the unpadded prefix (so the
//!    padding, whatever its bits, is never read).
//! 4. **Contract**: with bounded inputs (scores up to about ±2e4), the fast
//!    output is within the a-priori bound of the f64 oracle
//!    (`reference::error_bound`, `reference::check_error_bound`), for both
//!    APIs. (The precision check, against the reference's own error, is for
//!    the test suites' inputs: a fuzzer finds inputs where the reference
//!    happens to be nearly exact.)
//! 5. **Parallel calls** ([`parallel`], the crate's `rayon` feature): the
//!    input read again as a problem of several tiles, through the three
//!    `microattn::parallel` calls: the one-thread calls' results and bits.
//! 6. **Scored calls** ([`scored`]): the input read again as a shape and a
//!    `Scoring` (every setting, bad ones included), against the scored
//!    reference and the f64 oracle, and a cache's scored steps against the
//!    runtime call, bit for bit.
//! 7. **RoPE** ([`rope`]): the input read again as a table, a run of
//!    positions and its rows, against `reference::rope_rotate_f64`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use microattn::{Error, KvCache, Shape, causal_attention_dyn, causal_attention_padded, reference};

#[path = "attention/parallel.rs"]
mod parallel;
#[path = "attention/rope.rs"]
mod rope;
#[path = "common/same_bits.rs"]
mod same_bits;
#[path = "attention/scored.rs"]
mod scored;

/// Reads the input a piece at a time; past its end, zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
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

#[derive(Clone, Copy, PartialEq)]
enum Values {
    /// Any bit pattern.
    Raw,
    /// Finite, `|x| ≤ bound`.
    Bounded(f32),
}

fn values(bytes: &mut Bytes<'_>, len: usize, mode: Values) -> Vec<f32> {
    (0..len)
        .map(|_| {
            let bits = bytes.u32();
            match mode {
                Values::Raw => f32::from_bits(bits),
                Values::Bounded(b) => (bits as i32 as f32 / 2_147_483_648.0) * b,
            }
        })
        .collect()
}

/// A length usually right, sometimes off by one either way.
fn maybe_wrong(bytes: &mut Bytes<'_>, len: usize) -> usize {
    match bytes.u8() {
        0 => len + 1,
        1 => len.saturating_sub(1),
        _ => len,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let q_len = usize::from(bytes.u8() % 25);
    let kv_len = q_len + usize::from(bytes.u8() % 5);
    let (heads, kv_heads) = HEADS[usize::from(bytes.u8()) % HEADS.len()];
    let head_dim = usize::from(bytes.u8() % 20) + 1;
    let mut shape = Shape::new(q_len, kv_len, heads, kv_heads, head_dim);
    let mode = match bytes.u8() % 4 {
        0 => Values::Bounded(1.0),
        1 => Values::Bounded(100.0 / (head_dim as f32).sqrt().sqrt()),
        _ => Values::Raw,
    };
    match (bytes.u8(), mode) {
        (0, Values::Raw) => shape = shape.with_scale(f32::from_bits(bytes.u32())),
        (1, Values::Raw) => shape = shape.with_scale(f32::INFINITY),
        // Bounded inputs keep |scale| ≤ 2/√D, so scores stay within about
        // ±2e4: the contract is stated for scores that are finite in f32
        // (the f64 oracle does not overflow where f32 does).
        (0, Values::Bounded(_)) => {
            let unit = bytes.u32() as i32 as f32 / 2_147_483_648.0;
            shape = shape.with_scale(unit * 2.0 * microattn::default_scale(head_dim));
        }
        _ => {}
    }
    // Also an invalid shape: q_len > kv_len.
    if bytes.u8() == 0 {
        shape = Shape::new(kv_len + 1, kv_len, heads, kv_heads, head_dim);
    }
    let batch = usize::from(bytes.u8() % 4);
    let valid_lens: Vec<usize> = (0..batch + usize::from(bytes.u8() == 0))
        .map(|_| {
            usize::from(bytes.u8()) % (kv_len + 2).min(kv_len + 1 + usize::from(bytes.u8() == 0))
        })
        .collect();

    let q_seq = q_len * heads * head_dim;
    let kv_seq = kv_len * kv_heads * head_dim;
    // Buffers for max(batch, 1) sequences, some lengths off by one.
    let seqs = batch.max(1);
    let q_len_all = maybe_wrong(&mut bytes, q_seq * seqs);
    let k_len_all = maybe_wrong(&mut bytes, kv_seq * seqs);
    let out_len = maybe_wrong(&mut bytes, q_seq * batch);
    let q = values(&mut bytes, q_len_all, mode);
    let k = values(&mut bytes, k_len_all, mode);
    let v = values(&mut bytes, kv_seq * seqs, mode);

    // The first sequence alone through the runtime API.
    let single = |x: &[f32], n: usize| x.get(..n).unwrap_or(x).to_vec();
    let (q1, k1, v1) = (single(&q, q_seq), single(&k, kv_seq), single(&v, kv_seq));
    let out1_len = maybe_wrong(&mut bytes, q_seq);
    check_dyn(&shape, &q1, &k1, &v1, out1_len, mode);
    // The whole batch (buffers cut to `batch` sequences when they fit).
    fn cut(x: &[f32], n: usize, seqs: usize, batch: usize) -> &[f32] {
        if x.len() == n * seqs {
            &x[..n * batch]
        } else {
            x
        }
    }
    let qb = cut(&q, q_seq, seqs, batch);
    let kb = cut(&k, kv_seq, seqs, batch);
    let vb = cut(&v, kv_seq, seqs, batch);
    check_padded(&shape, batch, &valid_lens, (qb, kb, vb), out_len, mode);
    parallel::check(data);
    scored::check(data);
    rope::check(data);
});

const POISON: f32 = f32::from_bits(0x7fc0_dead);

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn check_dyn(shape: &Shape, q: &[f32], k: &[f32], v: &[f32], out_len: usize, mode: Values) {
    let mut out = vec![POISON; out_len];
    let fast = causal_attention_dyn(shape, q, k, v, &mut out);
    let mut naive = vec![POISON; out_len];
    let slow = reference::causal_attention_dyn(shape, q, k, v, &mut naive);
    assert_eq!(fast, slow, "fast and reference disagree on validity");
    if fast.is_err() {
        assert!(
            out.iter().all(|x| x.to_bits() == POISON.to_bits()),
            "out touched on error"
        );
        return;
    }
    match mode {
        Values::Raw => nan_policy(shape, q, k, v, &out),
        Values::Bounded(_) => {
            let mut ref64 = vec![0.0f64; out_len];
            reference::causal_attention_f64(shape, q, k, v, &mut ref64).expect("oracle");
            let mut bound = vec![0.0f64; out_len];
            reference::error_bound(shape, q, k, v, &mut bound).expect("oracle");
            if let Err(e) = reference::check_error_bound(&out, &ref64, &bound) {
                panic!(
                    "{e} for {shape:?}\nq {q:?}\nk {k:?}\nv {v:?}\nout {out:?}\nnaive {naive:?}\nref64 {ref64:?}"
                );
            }
        }
    }
}

fn check_padded(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    (q, k, v): (&[f32], &[f32], &[f32]),
    out_len: usize,
    mode: Values,
) {
    let mut out = vec![POISON; out_len];
    let fast = causal_attention_padded(shape, batch, valid_lens, q, k, v, &mut out);
    let mut naive = vec![POISON; out_len];
    let slow = reference::causal_attention_padded(shape, batch, valid_lens, q, k, v, &mut naive);
    assert_eq!(fast, slow, "fast and reference disagree on validity");
    if let Err(e) = fast {
        assert!(
            out.iter().all(|x| x.to_bits() == POISON.to_bits()),
            "out touched on {e}"
        );
        expect_padded_error(shape, batch, valid_lens, e);
        return;
    }
    let q_seq = shape.q_elems().unwrap_or(0);
    let kv_seq = shape.kv_elems().unwrap_or(0);
    let q_token = shape.heads * shape.head_dim;
    let kv_token = shape.kv_heads * shape.head_dim;
    let offset = shape.kv_len - shape.q_len;
    for (b, &len) in valid_lens.iter().enumerate() {
        let rows = len.saturating_sub(offset).min(shape.q_len);
        let seq_out = &out[b * q_seq..(b + 1) * q_seq];
        let (valid, pad) = seq_out.split_at(rows * q_token);
        assert!(pad.iter().all(|x| x.to_bits() == 0), "padded row not +0.0");
        // The same bits as the runtime API on the unpadded prefix.
        let prefix = Shape::new(rows, len, shape.heads, shape.kv_heads, shape.head_dim)
            .with_scale(shape.scale);
        let qs = &q[b * q_seq..][..rows * q_token];
        let ks = &k[b * kv_seq..][..len * kv_token];
        let vs = &v[b * kv_seq..][..len * kv_token];
        let mut alone = vec![POISON; valid.len()];
        causal_attention_dyn(&prefix, qs, ks, vs, &mut alone).expect("prefix is valid");
        assert_eq!(
            bits(valid),
            bits(&alone),
            "padded run differs from the unpadded prefix"
        );
    }
    if let Values::Bounded(_) = mode {
        let mut ref64 = vec![0.0f64; out_len];
        reference::causal_attention_padded_f64(shape, batch, valid_lens, q, k, v, &mut ref64)
            .expect("oracle");
        // The a-priori bound per valid row (padded rows: 0), sequence by
        // sequence.
        let mut bound = vec![0.0f64; out_len];
        for (b, &len) in valid_lens.iter().enumerate() {
            let rows = len.saturating_sub(offset).min(shape.q_len);
            let prefix = Shape::new(rows, len, shape.heads, shape.kv_heads, shape.head_dim)
                .with_scale(shape.scale);
            if rows > 0 {
                let dst = &mut bound[b * q_seq..][..rows * q_token];
                let qs = &q[b * q_seq..][..rows * q_token];
                let ks = &k[b * kv_seq..][..len * kv_token];
                let vs = &v[b * kv_seq..][..len * kv_token];
                reference::error_bound(&prefix, qs, ks, vs, dst).expect("oracle");
            }
        }
        if let Err(e) = reference::check_error_bound(&out, &ref64, &bound) {
            panic!(
                "{e} for {shape:?} batch {batch} valid {valid_lens:?}\n\
                 q {q:?}\nk {k:?}\nv {v:?}\nout {out:?}\nnaive {naive:?}\nref64 {ref64:?}"
            );
        }
    }
}

/// The padded API's own errors are the right ones.
fn expect_padded_error(shape: &Shape, batch: usize, valid_lens: &[usize], e: Error) {
    match e {
        Error::ValidLensLength { expected, actual } => {
            assert_eq!((expected, actual), (batch, valid_lens.len()));
        }
        Error::ValidLenTooLong {
            sequence,
            valid_len,
            kv_len,
        } => {
            assert_eq!(valid_lens[sequence], valid_len);
            assert!(valid_len > kv_len && kv_len == shape.kv_len);
        }
        _ => {}
    }
}

/// Property 2 of the module docs, row by row.
fn nan_policy(shape: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &[f32]) {
    let d = shape.head_dim;
    let group = shape.heads / shape.kv_heads;
    let offset = shape.kv_len - shape.q_len;
    for i in 0..shape.q_len {
        for h in 0..shape.heads {
            let g = h / group;
            fn row(x: &[f32], t: usize, heads: usize, head: usize, d: usize) -> &[f32] {
                &x[(t * heads + head) * d..][..d]
            }
            let qr = row(q, i, shape.heads, h, d);
            let o = row(out, i, shape.heads, h, d);
            let visible = offset + i + 1;
            let keys: Vec<&[f32]> = (0..visible)
                .map(|j| row(k, j, shape.kv_heads, g, d))
                .collect();
            let vals: Vec<&[f32]> = (0..visible)
                .map(|j| row(v, j, shape.kv_heads, g, d))
                .collect();
            let where_ = format!("row {i} head {h} of {shape:?}");
            if qr
                .iter()
                .chain(keys.iter().copied().flatten())
                .any(|x| x.is_nan())
            {
                assert!(
                    o.iter().all(|x| x.is_nan()),
                    "NaN in q/k but not all NaN: {where_}"
                );
                continue;
            }
            let fused = fuses();
            let scores: Vec<f32> = keys
                .iter()
                .map(|kr| kernel_score(qr, kr, shape.scale, fused))
                .collect();
            let weighed: Vec<usize> = (0..visible)
                .filter(|&j| scores[j] != f32::NEG_INFINITY)
                .collect();
            if weighed.is_empty() {
                assert!(
                    o.iter().all(|x| x.to_bits() == 0),
                    "no weighed key, not +0.0: {where_}"
                );
                continue;
            }
            if weighed.iter().any(|&j| scores[j] == f32::INFINITY) {
                assert!(
                    o.iter().all(|x| x.is_nan()),
                    "+inf score but not all NaN: {where_}"
                );
                continue;
            }
            let mut nan_col = false;
            for c in 0..d {
                if weighed.iter().any(|&j| vals[j][c].is_nan()) {
                    nan_col = true;
                    assert!(o[c].is_nan(), "NaN in v column {c} not in out: {where_}");
                }
            }
            if nan_col {
                continue;
            }
            let v_bound = f32::MAX / visible as f32;
            let bounded = weighed.iter().all(|&j| {
                scores[j].is_finite() && vals[j].iter().all(|x| x.is_finite() && x.abs() <= v_bound)
            });
            if bounded {
                assert!(
                    o.iter().all(|x| x.is_finite()),
                    "finite inputs, non-finite out: {where_}"
                );
            }
        }
    }
}

/// A score as the kernel computes it (crate docs, "Scores"): from `0`,
/// `s = q_d·k_d + s` for each dimension in order, fused or not as the build
/// fuses, then `s·scale`. Where a score overflows depends on that
/// arithmetic, so the NaN policy is checked against these bits.
fn kernel_score(q: &[f32], k: &[f32], scale: f32, fused: bool) -> f32 {
    let dot = q.iter().zip(k).fold(
        0.0f32,
        |s, (&a, &b)| if fused { a.mul_add(b, s) } else { a * b + s },
    );
    dot * scale
}

/// Whether this build's kernel fuses its score chain, seen once through the
/// kernel: one key, scale 1, `q = [1, 1 + 2⁻¹²]`, `k = [−(1 + 2⁻¹¹),
/// 1 + 2⁻¹²]`. The second step adds `(1 + 2⁻¹²)² = 1 + 2⁻¹¹ + 2⁻²⁴`: fused,
/// the score is `2⁻²⁴`; unfused, the product rounds first and the score is
/// 0. The log-sum-exp of one key is its score.
fn fuses() -> bool {
    static FUSES: OnceLock<bool> = OnceLock::new();
    *FUSES.get_or_init(|| {
        let a = 1.0 + 2f32.powi(-12);
        let (q, k, v) = (
            [[[1.0f32, a]]],
            [[[-(1.0 + 2f32.powi(-11)), a]]],
            [[[0.0f32; 2]]],
        );
        let (mut out, mut lse) = ([[[0.0f32; 2]]], [[0.0f32; 1]]);
        let mut cache = KvCache::<1, 1, 2>::with_scale(1.0);
        cache
            .prefill(&q, &k, &v, &mut out, Some(&mut lse))
            .expect("one position fits");
        let score = lse[0][0];
        assert!(
            score == 0.0 || score == 2f32.powi(-24),
            "probe score {score}"
        );
        score != 0.0
    })
}
