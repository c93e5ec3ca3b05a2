//! Sequences of KV-cache operations against a `Vec`-based model.
//!
//! The input bytes choose a scale (default, bounded, or any bit pattern)
//! and then a sequence of operations — push, extend (0 to `CAP + 1`
//! positions, sometimes with mismatched values), prefill (0 to 4 positions,
//! with or without log-sum-exp, sometimes a wrong key length), step and
//! attend (with and without weights and log-sum-exp), clear, truncate —
//! each applied to a [`KvCache<CAP, KVH, D>`] and to a
//! [`RingKvCache<WINDOW, KVH, D>`], with `CAP = 9`, `WINDOW = 5`, `KVH = 2`,
//! `H = 4`, `D = 3`. Each operation's values are either raw bit patterns
//! (every NaN, ∞, subnormal, −0.0) or bounded finite values. The model is a
//! `Vec` of positions (for the ring: the last `WINDOW` pushed). Checked:
//!
//! 1. **No panic**, and every `Result` is the one the model predicts:
//!    `Error::CacheFull { capacity, len, requested }` exactly when the
//!    positions do not fit, `Error::LengthMismatch` for mismatched buffers.
//! 2. **State**: after every operation `len`, `is_empty`, `is_full`,
//!    `capacity` and the bits of `keys()` / `values()` equal the model's; a
//!    failed call leaves the cache's bits (and `out` / `lse`) unchanged.
//! 3. **Bits**: every output of `step`, `attend` and `prefill` is
//!    bit-identical to `causal_attention_dyn` on the model's positions
//!    (for the ring: on the model's last `WINDOW` positions up to each
//!    query, which is the plain-cache computation of the same window);
//!    weights are bit-identical to `reference::attention_weights` over the
//!    same keys. Any NaN equals any NaN (payloads are not promised); an
//!    empty cache gives exactly `+0.0`, log-sum-exp `-inf`, weights `+0.0`.
//! 4. **NaN policy**: a NaN in a query head or in a key it sees makes that
//!    head's output, weights and log-sum-exp NaN.
//! 5. **Contract**: when the scale, the queries and every visible position
//!    were bounded, the output is within the a-priori bound of the f64
//!    oracle (`reference::error_bound`, `reference::check_error_bound`,
//!    against `reference::causal_attention_f64`), and the log-sum-exp is within `8ε·(D·max|s|ᵢ + |lse| + 1)` of the f64
//!    log-sum-exp, where `max|s|ᵢ = max over keys of Σ_d |scale·q_d·k_d|`:
//!    the f32 scores carry up to `D` roundings of that size, the `exp` and
//!    `ln` a few of `|lse|`.
//! 6. **16-bit storage** ([`storage`]): every operation also goes to an
//!    `f16` and a `bf16` plain cache and ring, each beside an `f32` twin fed
//!    the widened values (`E::to_f32(E::from_f32(x))`): the same results,
//!    the bits of every output (NaN by its bits), the same state; a failed
//!    call leaves the stored bits unchanged; each stored value is `x`
//!    rounded (NaN stays NaN, past `f16`'s range `±∞`). Then the input is
//!    read again as operations on a wider shape (`D = 17`, 40 positions, a
//!    ring of 35) for the 16-bit caches and their twins alone.
//! 7. **Attention sinks** ([`sinks`]): the input read again as positions
//!    pushed into a ring with two sinks, each step against a `KvCache` of
//!    the positions it should hold: those positions, bit for bit, and the
//!    plain cache's outputs, weights and log-sum-exps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microattn::{
    Buffer, Error, KvCache, RingKvCache, Shape, bf16, causal_attention_dyn, f16, reference,
};

#[path = "common/same_bits.rs"]
mod same_bits;
#[path = "cache/sinks.rs"]
mod sinks;
#[path = "cache/storage.rs"]
mod storage;

use storage::{Op, Shadow};

const CAP: usize = 9;
const WINDOW: usize = 5;
const KVH: usize = 2;
const H: usize = 4;
const D: usize = 3;

/// One position's keys (or values), all key/value heads.
type Tok = [[f32; D]; KVH];
/// One position's queries, all query heads.
type Qry = [[f32; D]; H];

const POISON: f32 = f32::from_bits(0x7fc0_dead);

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
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Raw bits, or finite with `|x| ≤ bound`.
    fn f32(&mut self, bound: Option<f32>) -> f32 {
        let bits = self.u32();
        match bound {
            None => f32::from_bits(bits),
            Some(b) => (bits as i32 as f32 / 2_147_483_648.0) * b,
        }
    }
    fn array<const R: usize>(&mut self, bound: Option<f32>) -> [[f32; D]; R] {
        let mut a = [[0.0; D]; R];
        a.as_flattened_mut()
            .iter_mut()
            .for_each(|x| *x = self.f32(bound));
        a
    }
    /// The value mode of one operation: raw bits (`None`) or a bound that
    /// keeps scores within about ±1e4 (as in the `attention` target).
    fn mode(&mut self) -> Option<f32> {
        match self.u8() % 4 {
            0 => None,
            1 => Some(100.0 / (D as f32).sqrt().sqrt()),
            _ => Some(1.0),
        }
    }
}

/// The model: positions with a flag "its values were bounded".
#[derive(Default)]
struct Model {
    k: Vec<Tok>,
    v: Vec<Tok>,
    bounded: Vec<bool>,
}

impl Model {
    /// The first `len` positions, as a query sees them.
    fn visible(&self, len: usize) -> Visible<'_> {
        Visible {
            k: &self.k[..len],
            v: &self.v[..len],
            bounded: self.bounded[..len].iter().all(|&b| b),
        }
    }
    fn push(&mut self, k: &Tok, v: &Tok, bounded: bool, window: Option<usize>) {
        self.k.push(*k);
        self.v.push(*v);
        self.bounded.push(bounded);
        if let Some(w) = window
            && self.k.len() > w
        {
            self.k.remove(0);
            self.v.remove(0);
            self.bounded.remove(0);
        }
    }
    fn truncate(&mut self, len: usize) {
        self.k.truncate(len);
        self.v.truncate(len);
        self.bounded.truncate(len);
    }
    fn clear(&mut self) {
        self.truncate(0);
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Same bits, any NaN equal to any NaN.
fn same(a: &[f32], b: &[f32]) -> bool {
    same_bits::difference(a, b).is_none()
}

fn flat(toks: &[Tok]) -> &[f32] {
    toks.as_flattened().as_flattened()
}

/// The state checks (property 2).
fn check_plain(cache: &KvCache<CAP, KVH, D>, m: &Model) {
    assert_eq!(cache.len(), m.k.len(), "len");
    assert_eq!(cache.is_empty(), m.k.is_empty(), "is_empty");
    assert_eq!(cache.is_full(), m.k.len() == CAP, "is_full");
    assert_eq!(cache.capacity(), CAP);
    assert_eq!(bits(flat(cache.keys())), bits(flat(&m.k)), "keys");
    assert_eq!(bits(flat(cache.values())), bits(flat(&m.v)), "values");
}

fn check_ring(ring: &RingKvCache<WINDOW, KVH, D>, m: &Model) {
    assert_eq!(ring.len(), m.k.len(), "ring len");
    assert_eq!(ring.is_empty(), m.k.is_empty(), "ring is_empty");
    assert_eq!(ring.is_full(), m.k.len() == WINDOW, "ring is_full");
    assert_eq!(ring.capacity(), WINDOW);
    let joined = |(a, b): (&[Tok], &[Tok])| [a, b].concat();
    assert_eq!(
        bits(flat(&joined(ring.keys()))),
        bits(flat(&m.k)),
        "ring keys"
    );
    assert_eq!(
        bits(flat(&joined(ring.values()))),
        bits(flat(&m.v)),
        "ring values"
    );
}

/// The cache's bits, to prove a failed call changed nothing.
fn snapshot(cache: &KvCache<CAP, KVH, D>) -> (Vec<u32>, Vec<u32>) {
    (bits(flat(cache.keys())), bits(flat(cache.values())))
}

/// What one query position sees: keys, values, all bounded?
struct Visible<'a> {
    k: &'a [Tok],
    v: &'a [Tok],
    bounded: bool,
}

/// The expected outputs of one query position (`q`, bounded or not) over
/// `vis`, checked against `out` / `weights` / `lse` (properties 3–5).
fn check_query<const N: usize>(
    vis: &Visible<'_>,
    q: &Qry,
    q_bounded: bool,
    scale: (f32, bool),
    out: &Qry,
    weights: Option<&[[f32; N]; H]>,
    lse: Option<&[f32; H]>,
) {
    let n = vis.k.len();
    let where_ = || {
        format!(
            "{n} positions, scale {:?}\nq {q:?}\nk {:?}\nv {:?}",
            scale.0, vis.k, vis.v
        )
    };
    if n == 0 {
        assert!(
            out.as_flattened().iter().all(|x| x.to_bits() == 0),
            "empty: out not +0.0"
        );
        if let Some(lse) = lse {
            assert!(
                lse.iter().all(|&l| l == f32::NEG_INFINITY),
                "empty: lse not -inf"
            );
        }
        if let Some(w) = weights {
            assert!(
                w.as_flattened().iter().all(|x| x.to_bits() == 0),
                "empty: weights not +0.0"
            );
        }
        return;
    }
    // Property 3: the runtime API on the same positions. It rejects a
    // non-finite scale, which the caches accept: every output NaN.
    let shape = Shape::new(1, n, H, KVH, D).with_scale(scale.0);
    if scale.0.is_finite() {
        let mut expect = [[POISON; D]; H];
        causal_attention_dyn(
            &shape,
            q.as_flattened(),
            flat(vis.k),
            flat(vis.v),
            expect.as_flattened_mut(),
        )
        .expect("valid shape");
        assert!(
            same(out.as_flattened(), expect.as_flattened()),
            "out != causal_attention_dyn: {}\nout {out:?}\nexpect {expect:?}",
            where_()
        );
    } else {
        assert!(
            out.as_flattened().iter().all(|x| x.is_nan()),
            "non-finite scale, out not NaN: {}\nout {out:?}",
            where_()
        );
    }

    let group = H / KVH;
    for h in 0..H {
        let g = h / group;
        let q_nan = q[h].iter().any(|x| x.is_nan());
        let k_nan = vis.k.iter().any(|t| t[g].iter().any(|x| x.is_nan()));
        if let Some(w) = weights {
            // Row n-1 of the reference's causal weights over these keys.
            let mut qs = [[0.0f32; D]; N];
            let mut ks = [[0.0f32; D]; N];
            qs[n - 1] = q[h];
            for (dst, t) in ks.iter_mut().zip(vis.k) {
                *dst = t[g];
            }
            let mut rw = [[0.0f32; N]; N];
            reference::attention_weights(&qs, &ks, scale.0, &mut rw);
            assert!(
                same(&w[h], &rw[n - 1]),
                "weights head {h} != reference: {}\nw {:?}\nref {:?}",
                where_(),
                w[h],
                rw[n - 1]
            );
            if q_nan || k_nan {
                assert!(
                    w[h][..n].iter().all(|x| x.is_nan()),
                    "NaN q/k, weights not NaN: {}",
                    where_()
                );
            }
        }
        // Property 4.
        if q_nan || k_nan {
            assert!(
                out[h].iter().all(|x| x.is_nan()),
                "NaN q/k, head {h} not NaN: {}",
                where_()
            );
            if let Some(lse) = lse {
                assert!(lse[h].is_nan(), "NaN q/k, lse not NaN: {}", where_());
            }
        }
    }

    // Property 5.
    if !(vis.bounded && q_bounded && scale.1) {
        return;
    }
    let (qf, kf, vf) = (q.as_flattened(), flat(vis.k), flat(vis.v));
    let mut ref64 = [0.0f64; H * D];
    reference::causal_attention_f64(&shape, qf, kf, vf, &mut ref64).expect("valid");
    let mut bound = [0.0f64; H * D];
    reference::error_bound(&shape, qf, kf, vf, &mut bound).expect("valid");
    if let Err(e) = reference::check_error_bound(out.as_flattened(), &ref64, &bound) {
        panic!("{e}: {}\nout {out:?}\nref64 {ref64:?}", where_());
    }
    if let Some(lse) = lse {
        for h in 0..H {
            let g = h / group;
            let s64 = f64::from(scale.0);
            let scores: Vec<f64> = vis
                .k
                .iter()
                .map(|t| {
                    q[h].iter()
                        .zip(&t[g])
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum::<f64>()
                        * s64
                })
                .collect();
            let smag = vis
                .k
                .iter()
                .map(|t| {
                    q[h].iter()
                        .zip(&t[g])
                        .map(|(&a, &b)| (f64::from(a) * f64::from(b) * s64).abs())
                        .sum::<f64>()
                })
                .fold(0.0f64, f64::max);
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse64 = m + scores.iter().map(|s| (s - m).exp()).sum::<f64>().ln();
            let tol = 8.0 * f64::from(f32::EPSILON) * (D as f64 * smag + lse64.abs() + 1.0);
            let err = (f64::from(lse[h]) - lse64).abs();
            assert!(
                err <= tol,
                "lse head {h}: {} vs {lse64}, error {err:e} > {tol:e}: {}",
                lse[h],
                where_()
            );
        }
    }
}

/// Optional outputs chosen by one byte: (weights?, lse?).
fn wants(bytes: &mut Bytes<'_>) -> (bool, bool) {
    let b = bytes.u8();
    (b & 1 != 0, b & 2 != 0)
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    // The scale and whether it keeps bounded inputs within the contract.
    let (set_scale, scale_bounded) = match bytes.u8() % 4 {
        0 => (Some(f32::from_bits(bytes.u32())), false),
        // |scale| ≤ 2/√D, as in the `attention` target.
        1 => (
            Some(bytes.f32(Some(2.0 * microattn::default_scale(D)))),
            true,
        ),
        _ => (None, true),
    };
    let (mut plain, mut ring) = match set_scale {
        Some(s) => (
            KvCache::<CAP, KVH, D>::with_scale(s),
            RingKvCache::<WINDOW, KVH, D>::with_scale(s),
        ),
        None => (KvCache::new(), RingKvCache::new()),
    };
    let mut half = Shadow::<f16, CAP, WINDOW, KVH, D>::new(set_scale);
    let mut brain = Shadow::<bf16, CAP, WINDOW, KVH, D>::new(set_scale);
    let mut shadows = |op: Op<H, KVH, D>| {
        half.apply(&op);
        brain.apply(&op);
    };
    assert_eq!(plain.scale().to_bits(), ring.scale().to_bits());
    let scale = (plain.scale(), scale_bounded);
    let (mut pm, mut rm) = (Model::default(), Model::default());
    let mut ops = 0;
    while !bytes.is_empty() && ops < 64 {
        ops += 1;
        let op = bytes.u8() % 8;
        let mode = bytes.mode();
        let bounded = mode.is_some();
        match op {
            // push (onto a full plain cache: CacheFull, nothing changes).
            0 => {
                let (k, v) = (bytes.array::<KVH>(mode), bytes.array::<KVH>(mode));
                let before = snapshot(&plain);
                let r = plain.push(&k, &v);
                if pm.k.len() == CAP {
                    assert_eq!(
                        r,
                        Err(Error::CacheFull {
                            capacity: CAP,
                            len: CAP,
                            requested: 1
                        })
                    );
                    assert_eq!(snapshot(&plain), before, "full cache changed by push");
                } else {
                    assert_eq!(r, Ok(()));
                    pm.push(&k, &v, bounded, None);
                }
                ring.push(&k, &v);
                rm.push(&k, &v, bounded, Some(WINDOW));
                shadows(Op::Push(k, v));
            }
            // extend by 0..=CAP+1 positions, values sometimes one short/long.
            1 | 7 => {
                let n = if op == 7 {
                    CAP - pm.k.len()
                } else {
                    usize::from(bytes.u8()) % (CAP + 2)
                };
                let nv = match bytes.u8() {
                    0 => n + 1,
                    1 => n.saturating_sub(1),
                    _ => n,
                };
                let k: Vec<Tok> = (0..n).map(|_| bytes.array::<KVH>(mode)).collect();
                let v: Vec<Tok> = (0..nv).map(|_| bytes.array::<KVH>(mode)).collect();
                let before = snapshot(&plain);
                let r = plain.extend(&k, &v);
                let rr = ring.extend(&k, &v);
                if nv != n {
                    let e = Error::LengthMismatch {
                        buffer: Buffer::Value,
                        expected: n * KVH * D,
                        actual: nv * KVH * D,
                    };
                    assert_eq!((r, rr), (Err(e), Err(e)));
                    assert_eq!(
                        snapshot(&plain),
                        before,
                        "extend with bad values changed the cache"
                    );
                } else {
                    if pm.k.len() + n > CAP {
                        assert_eq!(
                            r,
                            Err(Error::CacheFull {
                                capacity: CAP,
                                len: pm.k.len(),
                                requested: n
                            })
                        );
                        assert_eq!(
                            snapshot(&plain),
                            before,
                            "extend past CAP changed the cache"
                        );
                    } else {
                        assert_eq!(r, Ok(()));
                        k.iter()
                            .zip(&v)
                            .for_each(|(k, v)| pm.push(k, v, bounded, None));
                    }
                    assert_eq!(rr, Ok(()));
                    k.iter()
                        .zip(&v)
                        .for_each(|(k, v)| rm.push(k, v, bounded, Some(WINDOW)));
                }
                shadows(Op::Extend(k, v));
            }
            // prefill of 0..=4 positions, lse optional, keys sometimes one short.
            2 => {
                let n = usize::from(bytes.u8() % 5);
                let (_, want_lse) = wants(&mut bytes);
                let nk = if bytes.u8() == 0 {
                    n.saturating_sub(1)
                } else {
                    n
                };
                let q: Vec<Qry> = (0..n).map(|_| bytes.array::<H>(mode)).collect();
                let k: Vec<Tok> = (0..nk).map(|_| bytes.array::<KVH>(mode)).collect();
                let v: Vec<Tok> = (0..n).map(|_| bytes.array::<KVH>(mode)).collect();
                prefill_plain(&mut plain, &mut pm, (&q, &k, &v), want_lse, bounded, scale);
                prefill_ring(&mut ring, &mut rm, (&q, &k, &v), want_lse, bounded, scale);
                shadows(Op::Prefill {
                    out_len: n,
                    lse_len: want_lse.then_some(n),
                    q,
                    k,
                    v,
                });
            }
            // step, then attend: with or without weights / lse.
            3 | 4 => {
                let (want_w, want_lse) = wants(&mut bytes);
                let q = bytes.array::<H>(mode);
                let kv = (op == 3).then(|| (bytes.array::<KVH>(mode), bytes.array::<KVH>(mode)));
                // Plain.
                let mut out = [[POISON; D]; H];
                let mut w = [[POISON; CAP]; H];
                let mut lse = [POISON; H];
                let before = snapshot(&plain);
                let r = match &kv {
                    Some((k, v)) => plain.step(
                        &q,
                        k,
                        v,
                        &mut out,
                        want_w.then_some(&mut w),
                        want_lse.then_some(&mut lse),
                    ),
                    None => {
                        plain.attend(
                            &q,
                            &mut out,
                            want_w.then_some(&mut w),
                            want_lse.then_some(&mut lse),
                        );
                        Ok(())
                    }
                };
                if let (Some(_), true) = (&kv, pm.k.len() == CAP) {
                    assert_eq!(
                        r,
                        Err(Error::CacheFull {
                            capacity: CAP,
                            len: CAP,
                            requested: 1
                        })
                    );
                    assert_eq!(snapshot(&plain), before, "full cache changed by step");
                    let untouched = out
                        .as_flattened()
                        .iter()
                        .chain(w.as_flattened())
                        .chain(&lse);
                    assert!(
                        untouched
                            .into_iter()
                            .all(|x| x.to_bits() == POISON.to_bits()),
                        "failed step wrote"
                    );
                } else {
                    assert_eq!(r, Ok(()));
                    if let Some((k, v)) = &kv {
                        pm.push(k, v, bounded, None);
                    }
                    let vis = pm.visible(pm.k.len());
                    check_query::<CAP>(
                        &vis,
                        &q,
                        bounded,
                        scale,
                        &out,
                        want_w.then_some(&w),
                        want_lse.then_some(&lse),
                    );
                    if !want_w {
                        assert!(
                            w.as_flattened()
                                .iter()
                                .all(|x| x.to_bits() == POISON.to_bits())
                        );
                    }
                }
                // Ring.
                let mut out = [[POISON; D]; H];
                let mut w = [[POISON; WINDOW]; H];
                let mut lse = [POISON; H];
                match &kv {
                    Some((k, v)) => {
                        ring.step(
                            &q,
                            k,
                            v,
                            &mut out,
                            want_w.then_some(&mut w),
                            want_lse.then_some(&mut lse),
                        );
                        rm.push(k, v, bounded, Some(WINDOW));
                    }
                    None => ring.attend(
                        &q,
                        &mut out,
                        want_w.then_some(&mut w),
                        want_lse.then_some(&mut lse),
                    ),
                }
                let vis = rm.visible(rm.k.len());
                check_query::<WINDOW>(
                    &vis,
                    &q,
                    bounded,
                    scale,
                    &out,
                    want_w.then_some(&w),
                    want_lse.then_some(&lse),
                );
                shadows(Op::Step {
                    q,
                    kv,
                    weights: want_w,
                    lse: want_lse,
                });
            }
            5 => {
                plain.clear();
                pm.clear();
                let clear_ring = bytes.u8() % 2 == 0;
                if clear_ring {
                    ring.clear();
                    rm.clear();
                }
                shadows(Op::Clear { ring: clear_ring });
            }
            // truncate (the plain cache only: a ring has no truncate).
            _ => {
                let len = usize::from(bytes.u8()) % (CAP + 2);
                plain.truncate(len);
                pm.truncate(len);
                shadows(Op::Truncate(len));
            }
        }
        check_plain(&plain, &pm);
        check_ring(&ring, &rm);
    }
    storage::wide(data);
    sinks::check(data);
});

type Batch<'a> = (&'a [Qry], &'a [Tok], &'a [Tok]);

fn prefill_plain(
    cache: &mut KvCache<CAP, KVH, D>,
    m: &mut Model,
    (q, k, v): Batch<'_>,
    want_lse: bool,
    bounded: bool,
    scale: (f32, bool),
) {
    let n = q.len();
    let mut out = vec![[[POISON; D]; H]; n];
    let mut lse = vec![[POISON; H]; n];
    let before = snapshot(cache);
    let r = cache.prefill(q, k, v, &mut out, want_lse.then_some(&mut lse[..]));
    let untouched = |out: &[Qry], lse: &[[f32; H]]| {
        out.as_flattened()
            .as_flattened()
            .iter()
            .chain(lse.as_flattened())
            .all(|x| x.to_bits() == POISON.to_bits())
    };
    if k.len() != n {
        let e = Error::LengthMismatch {
            buffer: Buffer::Key,
            expected: n * KVH * D,
            actual: k.len() * KVH * D,
        };
        assert_eq!(r, Err(e));
        assert_eq!(
            snapshot(cache),
            before,
            "prefill with bad keys changed the cache"
        );
        assert!(untouched(&out, &lse), "failed prefill wrote");
        return;
    }
    if m.k.len() + n > CAP {
        assert_eq!(
            r,
            Err(Error::CacheFull {
                capacity: CAP,
                len: m.k.len(),
                requested: n
            })
        );
        assert_eq!(
            snapshot(cache),
            before,
            "prefill past CAP changed the cache"
        );
        assert!(untouched(&out, &lse), "failed prefill wrote");
        return;
    }
    assert_eq!(r, Ok(()));
    let offset = m.k.len();
    k.iter()
        .zip(v)
        .for_each(|(k, v)| m.push(k, v, bounded, None));
    // The whole batch in one runtime call: the same bits row by row.
    if n > 0 && scale.0.is_finite() {
        let shape = Shape::new(n, m.k.len(), H, KVH, D).with_scale(scale.0);
        let mut expect = vec![POISON; n * H * D];
        causal_attention_dyn(
            &shape,
            q.as_flattened().as_flattened(),
            flat(&m.k),
            flat(&m.v),
            &mut expect,
        )
        .expect("valid shape");
        assert!(
            same(out.as_flattened().as_flattened(), &expect),
            "prefill != causal_attention_dyn"
        );
    }
    // Row by row: NaN policy, contract, lse.
    for (i, (qi, oi)) in q.iter().zip(&out).enumerate() {
        let p = offset + i + 1;
        let vis = m.visible(p);
        check_query::<CAP>(
            &vis,
            qi,
            bounded,
            scale,
            oi,
            None,
            want_lse.then_some(&lse[i]),
        );
    }
    if !want_lse {
        assert!(
            lse.as_flattened()
                .iter()
                .all(|x| x.to_bits() == POISON.to_bits())
        );
    }
}

fn prefill_ring(
    ring: &mut RingKvCache<WINDOW, KVH, D>,
    m: &mut Model,
    (q, k, v): Batch<'_>,
    want_lse: bool,
    bounded: bool,
    scale: (f32, bool),
) {
    let n = q.len();
    let mut out = vec![[[POISON; D]; H]; n];
    let mut lse = vec![[POISON; H]; n];
    let before = (
        bits(flat(&[ring.keys().0, ring.keys().1].concat())),
        ring.len(),
    );
    let r = ring.prefill(q, k, v, &mut out, want_lse.then_some(&mut lse[..]));
    if k.len() != n {
        let e = Error::LengthMismatch {
            buffer: Buffer::Key,
            expected: n * KVH * D,
            actual: k.len() * KVH * D,
        };
        assert_eq!(r, Err(e));
        assert_eq!(
            (
                bits(flat(&[ring.keys().0, ring.keys().1].concat())),
                ring.len()
            ),
            before
        );
        return;
    }
    assert_eq!(r, Ok(()));
    // Token by token: each query sees the last WINDOW positions up to its own.
    for (i, (((qi, ki), vi), oi)) in q.iter().zip(k).zip(v).zip(&out).enumerate() {
        m.push(ki, vi, bounded, Some(WINDOW));
        let vis = m.visible(m.k.len());
        check_query::<WINDOW>(
            &vis,
            qi,
            bounded,
            scale,
            oi,
            None,
            want_lse.then_some(&lse[i]),
        );
    }
}
