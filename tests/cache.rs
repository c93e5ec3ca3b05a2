//! The promises of `KvCache`, asserted bit for bit (`to_bits`) within one
//! build:
//!
//! - `n` decode steps give the bits of one causal prefill over the same `n`
//!   tokens, which gives the bits of `causal_attention_dyn` (and so of
//!   `causal_multi_head`) over them; a prompt prefill followed by decode
//!   steps, and a prefill in chunks, give the same bits too; so do the
//!   log-sum-exps;
//! - the decode weights are the reference's `attention_weights` row, bit for
//!   bit, with exact zeros past the cached length;
//! - capacity boundaries (CAP−1, CAP, CAP+1, 2·CAP+3 pushes): exactly
//!   `min(pushes, CAP)` succeed, every other returns `CacheFull`, and the
//!   cache and the caller's output buffers are unchanged by a failed call;
//! - storage slots never written (holding NaN from before a `clear`) never
//!   affect a result;
//! - every call is within the accuracy contract of the f64 oracle.
//!
//! Shapes: MHA (`H = KVH`), GQA and MQA (`KVH < H`), head dimensions around
//! the lane width.

mod common;

use common::{bits, ordinary, prop, runner, same_bits, score_error_bound};
use microattn::reference::{self, check_contract, check_error_bound};
use microattn::strategies::{Fill, fixed_case_with};
use microattn::{Error, KvCache, Shape, causal_attention_dyn};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/cache.txt";

/// Capacity of the caches under test: enough for five blocks of keys.
const CAP: usize = 41;

type Token<const X: usize, const D: usize> = [[f32; D]; X];

/// A sequence of `n` tokens in the runtime layout, as fixed-size tokens.
struct Seq<const H: usize, const KVH: usize, const D: usize> {
    q: Vec<Token<H, D>>,
    k: Vec<Token<KVH, D>>,
    v: Vec<Token<KVH, D>>,
}

impl<const H: usize, const KVH: usize, const D: usize> Seq<H, KVH, D> {
    fn new(n: usize, fill: Fill, seed: u64) -> Self {
        let case = fixed_case_with(Shape::new(n, n, H, KVH, D), fill, seed);
        let tokens = |flat: &[f32]| -> Vec<[[f32; D]; KVH]> {
            flat.as_chunks::<D>().0.as_chunks::<KVH>().0.to_vec()
        };
        Seq {
            q: case.q.as_chunks::<D>().0.as_chunks::<H>().0.to_vec(),
            k: tokens(&case.k),
            v: tokens(&case.v),
        }
    }

    fn flat(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        (
            self.q.as_flattened().as_flattened().to_vec(),
            self.k.as_flattened().as_flattened().to_vec(),
            self.v.as_flattened().as_flattened().to_vec(),
        )
    }
}

/// Runs of one shape: outputs and log-sum-exps, flattened.
struct Runs {
    out: Vec<f32>,
    lse: Vec<f32>,
}

fn prefill_all<const H: usize, const KVH: usize, const D: usize>(
    cache: &mut KvCache<CAP, KVH, D>,
    s: &Seq<H, KVH, D>,
    range: std::ops::Range<usize>,
) -> Result<Runs, String> {
    let n = range.len();
    let mut out = vec![[[f32::NAN; D]; H]; n];
    let mut lse = vec![[f32::NAN; H]; n];
    cache
        .prefill(
            &s.q[range.clone()],
            &s.k[range.clone()],
            &s.v[range],
            &mut out,
            Some(&mut lse),
        )
        .map_err(|e| format!("prefill rejected: {e}"))?;
    Ok(Runs {
        out: out.as_flattened().as_flattened().to_vec(),
        lse: lse.as_flattened().to_vec(),
    })
}

fn steps<const H: usize, const KVH: usize, const D: usize>(
    cache: &mut KvCache<CAP, KVH, D>,
    s: &Seq<H, KVH, D>,
    range: std::ops::Range<usize>,
) -> Result<Runs, String> {
    let mut runs = Runs {
        out: vec![],
        lse: vec![],
    };
    for t in range {
        let mut out = [[f32::NAN; D]; H];
        let mut lse = [f32::NAN; H];
        cache
            .step(&s.q[t], &s.k[t], &s.v[t], &mut out, None, Some(&mut lse))
            .map_err(|e| format!("step {t} rejected: {e}"))?;
        runs.out.extend(out.as_flattened());
        runs.lse.extend(lse);
    }
    Ok(runs)
}

/// A cache whose whole storage held NaN (of several payloads) before a
/// `clear`: every slot the test does not write again is a poisoned,
/// never-written-since slot.
fn poisoned<const KVH: usize, const D: usize>() -> KvCache<CAP, KVH, D> {
    let mut cache = KvCache::new();
    let nan = [0x7fc0_0000u32, 0xffff_ffff, 0x7f80_0001];
    let junk: Vec<[[f32; D]; KVH]> = (0..CAP)
        .map(|i| [[f32::from_bits(nan[i % 3]); D]; KVH])
        .collect();
    cache.extend(&junk, &junk).expect("fits");
    assert!(cache.is_full());
    cache.clear();
    cache
}

/// The promises on one shape and sequence: `n` tokens, a prompt of `m`.
fn promises<const H: usize, const KVH: usize, const D: usize>(
    n: usize,
    m: usize,
    fill: Fill,
    seed: u64,
) -> Result<(), String> {
    let s = Seq::<H, KVH, D>::new(n, fill, seed);
    let what = |w: &str| format!("{w} (n={n}, m={m}, H={H}, KVH={KVH}, D={D})");

    // One causal prefill over everything.
    let whole = prefill_all(&mut KvCache::<CAP, KVH, D>::new(), &s, 0..n)?;

    // The runtime API over the same tokens: same bits.
    let shape = Shape::new(n, n, H, KVH, D);
    let (q, k, v) = s.flat();
    let mut dyn_out = vec![f32::NAN; q.len()];
    causal_attention_dyn(&shape, &q, &k, &v, &mut dyn_out).map_err(|e| e.to_string())?;
    same_bits(
        &what("prefill vs causal_attention_dyn"),
        &whole.out,
        &dyn_out,
    )?;

    // n decode steps, on a fresh and on a poisoned cache.
    for (name, mut cache) in [("fresh", KvCache::new()), ("poisoned", poisoned())] {
        let stepped = steps(&mut cache, &s, 0..n)?;
        same_bits(
            &what(&format!("{name} steps vs prefill")),
            &stepped.out,
            &whole.out,
        )?;
        same_bits(
            &what(&format!("{name} steps' lse")),
            &stepped.lse,
            &whole.lse,
        )?;
    }

    // Prompt of m, then decode steps; and the same prompt then one chunk.
    let mut cache = poisoned::<KVH, D>();
    let mut mixed = prefill_all(&mut cache, &s, 0..m)?;
    let rest = steps(&mut cache, &s, m..n)?;
    mixed.out.extend(rest.out);
    mixed.lse.extend(rest.lse);
    same_bits(&what("prompt + steps vs prefill"), &mixed.out, &whole.out)?;
    same_bits(&what("prompt + steps, lse"), &mixed.lse, &whole.lse)?;

    let mut cache = KvCache::<CAP, KVH, D>::new();
    let mut chunked = prefill_all(&mut cache, &s, 0..m)?;
    chunked.out.extend(prefill_all(&mut cache, &s, m..n)?.out);
    same_bits(&what("two chunks vs prefill"), &chunked.out, &whole.out)?;

    // The views hold exactly what was pushed.
    if cache.keys() != &s.k[..] || cache.values() != &s.v[..] {
        return Err(what("views differ from the pushed tokens"));
    }

    // Within the a-priori bound of the oracle over the whole sequence, and
    // on ordinary inputs within the precision check.
    let mut naive = vec![0.0f32; q.len()];
    let mut ref64 = vec![0.0f64; q.len()];
    let mut bound = vec![0.0f64; q.len()];
    reference::causal_attention_dyn(&shape, &q, &k, &v, &mut naive).map_err(|e| e.to_string())?;
    reference::causal_attention_f64(&shape, &q, &k, &v, &mut ref64).map_err(|e| e.to_string())?;
    reference::error_bound(&shape, &q, &k, &v, &mut bound).map_err(|e| e.to_string())?;
    check_error_bound(&whole.out, &ref64, &bound).map_err(|e| what(&e.to_string()))?;
    if ordinary(&[&q, &k, &v]) {
        check_contract(&whole.out, &naive, &ref64).map_err(|e| what(&e.to_string()))?;
    }

    // The log-sum-exp is the oracle's within a few ULP of its size.
    lse_close(&s, &whole.lse).map_err(|e| what(&e))
}

/// Each head's log-sum-exp against f64 `ln Σ exp(s)` of the f32 scores
/// (`reference::score`): within 8ε·(|lse| + 1), the error of one `ln` plus
/// the sum's rounding, plus the most any score may differ from the
/// reference's by the a-priori bound (`γ_{D+2}·scale·Σ_d |q_d·k_d|`: the
/// kernel sums in its own order), by which the log-sum-exp moves at most.
fn lse_close<const H: usize, const KVH: usize, const D: usize>(
    s: &Seq<H, KVH, D>,
    lse: &[f32],
) -> Result<(), String> {
    let scale = microattn::default_scale(D);
    for (t, qt) in s.q.iter().enumerate() {
        for (h, qh) in qt.iter().enumerate() {
            let g = h / (H / KVH);
            let scores: Vec<f64> = s.k[..=t]
                .iter()
                .map(|kt| f64::from(microattn::reference::score(qh, &kt[g], scale)))
                .collect();
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let want = m + scores.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            let got = f64::from(lse[t * H + h]);
            let score_err = s.k[..=t]
                .iter()
                .map(|kt| score_error_bound(qh, &kt[g], scale))
                .fold(0.0, f64::max);
            let tol = 8.0 * f64::from(f32::EPSILON) * (want.abs() + 1.0) + score_err;
            if (got - want).abs() > tol {
                return Err(format!("lse at token {t} head {h}: {got} vs {want}"));
            }
        }
    }
    Ok(())
}

type Promise = fn(usize, usize, Fill, u64) -> Result<(), String>;

/// The shapes (H, KVH, D): single head, MQA, GQA, MHA; D around the lanes.
const SHAPES: [(&str, Promise); 7] = [
    ("1,1,1", promises::<1, 1, 1>),
    ("1,1,8", promises::<1, 1, 8>),
    ("2,1,7", promises::<2, 1, 7>),
    ("4,2,9", promises::<4, 2, 9>),
    ("4,4,16", promises::<4, 4, 16>),
    ("8,1,3", promises::<8, 1, 3>),
    ("8,2,17", promises::<8, 2, 17>),
];

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Uniform(1.0)),
        Just(Fill::Edgy(3.0)),
        // scores up to ±1e4 for D ≤ 17
        Just(Fill::Uniform(45.0)),
    ]
}

#[test]
fn decode_prefill_and_chunks_agree_bit_for_bit() {
    let strategy = (0..SHAPES.len(), 1..=CAP, fill(), any::<u64>())
        .prop_flat_map(|(shape, n, fill, seed)| (Just((shape, n, fill, seed)), 0..=n));
    runner(64, REGRESSIONS)
        .run(&strategy, |((shape, n, fill, seed), m)| {
            prop(SHAPES[shape].1(n, m, fill, seed))
        })
        .unwrap();
}

/// Every length 1..=17 (two blocks of keys and one) and CAP, the prompt
/// split at a few places, every shape.
#[test]
fn decode_equals_prefill_every_length() {
    for (name, promise) in SHAPES {
        for n in (1..=17).chain([CAP]) {
            for m in [0, 1, n / 2, n] {
                promise(n, m, Fill::Edgy(3.0), n as u64)
                    .unwrap_or_else(|e| panic!("shape {name}: {e}"));
            }
        }
    }
}

/// The decode weights: the reference's attention_weights row of the same
/// query over the same keys, bit for bit, zeros past `len`; on a poisoned
/// cache too.
fn weights_match<const H: usize, const KVH: usize, const D: usize>(seed: u64) {
    let s = Seq::<H, KVH, D>::new(CAP, Fill::Edgy(3.0), seed);
    let scale = microattn::default_scale(D);
    let mut cache = poisoned::<KVH, D>();
    for t in 0..CAP {
        let mut out = [[0.0f32; D]; H];
        let mut w = [[f32::NAN; CAP]; H];
        cache
            .step(&s.q[t], &s.k[t], &s.v[t], &mut out, Some(&mut w), None)
            .unwrap();
        for (h, wh) in w.iter().enumerate() {
            let g = h / (H / KVH);
            let mut q = Box::new([[0.0f32; D]; CAP]);
            let mut k = Box::new([[0.0f32; D]; CAP]);
            q[t] = s.q[t][h];
            for (row, tok) in k.iter_mut().zip(&s.k[..=t]) {
                *row = tok[g];
            }
            let mut want = Box::new([[0.0f32; CAP]; CAP]);
            reference::attention_weights(&q, &k, scale, &mut want);
            assert_eq!(
                bits(wh),
                bits(&want[t]),
                "weights at step {t}, head {h} (H={H}, KVH={KVH}, D={D})"
            );
        }
    }
}

#[test]
fn decode_weights_are_the_reference_row() {
    weights_match::<1, 1, 8>(1);
    weights_match::<2, 1, 7>(2);
    weights_match::<4, 2, 9>(3);
    weights_match::<4, 4, 16>(4);
}

/// An empty cache: output exactly 0, lse −inf, weights 0, whatever the
/// buffers held.
#[test]
fn empty_cache_attends_to_nothing() {
    let cache = KvCache::<4, 2, 3>::new();
    let mut out = [[f32::NAN; 3]; 4];
    let mut w = [[f32::NAN; 4]; 4];
    let mut lse = [f32::NAN; 4];
    cache.attend(&[[1.0; 3]; 4], &mut out, Some(&mut w), Some(&mut lse));
    assert_eq!(bits(out.as_flattened()), vec![0; 12]);
    assert_eq!(bits(w.as_flattened()), vec![0; 16]);
    assert_eq!(lse, [f32::NEG_INFINITY; 4]);
    // And an empty prefill writes nothing and succeeds.
    let mut cache = KvCache::<4, 2, 3>::new();
    let none: [[[f32; 3]; 4]; 0] = [];
    cache
        .prefill(&none, &[], &[], &mut [], None)
        .expect("empty prefill");
    assert!(cache.is_empty());
}

/// Capacity boundaries: CAP−1, CAP, CAP+1, 2·CAP+3 pushes, by `push` and by
/// `step`; every failing call returns the documented error and changes
/// nothing (cache contents, out, weights, lse).
fn boundaries<const C: usize>() {
    const D: usize = 3;
    for pushes in [C - 1, C, C + 1, 2 * C + 3] {
        let tokens: Vec<[[f32; D]; 2]> = (0..pushes)
            .map(|i| [[i as f32, 0.5, -1.0], [1.0, i as f32, 2.0]])
            .collect();
        let mut by_push = KvCache::<C, 2, D>::new();
        let mut by_step = KvCache::<C, 2, D>::new();
        for (i, tok) in tokens.iter().enumerate() {
            let before = (by_push.keys().to_vec(), by_push.values().to_vec());
            let pushed = by_push.push(tok, tok);
            let mut out = [[f32::from_bits(0x7fc0_1234); D]; 4];
            let mut w = [[f32::from_bits(0x7fc0_1234); C]; 4];
            let mut lse = [f32::from_bits(0x7fc0_1234); 4];
            let stepped = by_step.step(
                &[[0.1; D]; 4],
                tok,
                tok,
                &mut out,
                Some(&mut w),
                Some(&mut lse),
            );
            let full = Error::CacheFull {
                capacity: C,
                len: C,
                requested: 1,
            };
            if i < C {
                assert_eq!(
                    (pushed, stepped),
                    (Ok(()), Ok(())),
                    "push {i} of {pushes}, CAP {C}"
                );
                assert!(out.iter().flatten().all(|x| x.is_finite()));
            } else {
                assert_eq!(
                    (pushed, stepped),
                    (Err(full), Err(full)),
                    "push {i} of {pushes}"
                );
                assert_eq!(
                    (by_push.keys(), by_push.values()),
                    (&before.0[..], &before.1[..])
                );
                assert!(
                    out.iter()
                        .flatten()
                        .chain(w.iter().flatten())
                        .chain(&lse)
                        .all(|x| x.to_bits() == 0x7fc0_1234)
                );
            }
            assert_eq!(by_push.len(), (i + 1).min(C));
            assert_eq!(by_push.is_full(), i + 1 >= C);
        }
        let kept = pushes.min(C);
        assert_eq!(by_push.keys(), &tokens[..kept], "no silent overwrite");
        assert_eq!(by_step.keys(), &tokens[..kept]);
        assert_eq!(by_step.values(), &tokens[..kept]);

        // A batch that does not fit is refused whole, output untouched.
        let mut batch = KvCache::<C, 2, D>::new();
        let q = vec![[[0.1f32; D]; 4]; pushes];
        let mut out = vec![[[f32::from_bits(0x7fc0_1234); D]; 4]; pushes];
        let r = batch.prefill(&q, &tokens, &tokens, &mut out, None);
        if pushes <= C {
            assert_eq!(r, Ok(()));
            assert_eq!(batch.keys(), &tokens[..]);
        } else {
            assert_eq!(
                r,
                Err(Error::CacheFull {
                    capacity: C,
                    len: 0,
                    requested: pushes
                })
            );
            assert!(batch.is_empty());
            assert!(
                out.as_flattened()
                    .as_flattened()
                    .iter()
                    .all(|x| x.to_bits() == 0x7fc0_1234)
            );
            assert_eq!(batch.extend(&tokens, &tokens), r);
            assert!(batch.is_empty());
            // What fits goes in; one more does not.
            batch.extend(&tokens[..C - 1], &tokens[..C - 1]).unwrap();
            assert_eq!(
                batch.extend(&tokens[..2], &tokens[..2]),
                Err(Error::CacheFull {
                    capacity: C,
                    len: C - 1,
                    requested: 2
                })
            );
            assert_eq!(batch.keys(), &tokens[..C - 1]);
        }
    }
}

#[test]
fn capacity_boundaries() {
    boundaries::<1>();
    boundaries::<2>();
    boundaries::<7>();
    boundaries::<8>();
    boundaries::<9>();
    boundaries::<CAP>();
}

/// Mismatched batch lengths: the typed error, nothing written.
#[test]
fn prefill_length_mismatches() {
    use microattn::Buffer;
    let mut cache = KvCache::<8, 1, 2>::new();
    cache.push(&[[1.0, 2.0]], &[[3.0, 4.0]]).unwrap();
    let q = [[[0.5f32; 2]; 2]; 3];
    let kv = [[[0.25f32; 2]; 1]; 3];
    let mut out = [[[f32::NAN; 2]; 2]; 3];
    let mut lse = [[f32::NAN; 2]; 3];
    let cases: [(Buffer, usize, usize, Result<(), Error>); 4] = [
        (
            Buffer::Key,
            6,
            4,
            cache_try(&q, &kv[..2], &kv, &mut { out }, None),
        ),
        (
            Buffer::Value,
            6,
            4,
            cache_try(&q, &kv, &kv[..2], &mut { out }, None),
        ),
        (
            Buffer::Output,
            12,
            8,
            cache_try(&q, &kv, &kv, &mut [[[f32::NAN; 2]; 2]; 2], None),
        ),
        (
            Buffer::LogSumExp,
            6,
            4,
            cache_try(&q, &kv, &kv, &mut { out }, Some(&mut [[f32::NAN; 2]; 2])),
        ),
    ];
    for (buffer, expected, actual, got) in cases {
        assert_eq!(
            got,
            Err(Error::LengthMismatch {
                buffer,
                expected,
                actual
            })
        );
    }
    let r = cache.prefill(&q, &kv[..2], &kv, &mut out, Some(&mut lse));
    assert!(r.is_err());
    assert_eq!(cache.keys(), &[[[1.0, 2.0]]]);
    assert!(
        out.as_flattened()
            .as_flattened()
            .iter()
            .chain(lse.as_flattened())
            .all(|x| x.is_nan())
    );
}

fn cache_try(
    q: &[[[f32; 2]; 2]],
    k: &[[[f32; 2]; 1]],
    v: &[[[f32; 2]; 1]],
    out: &mut [[[f32; 2]; 2]],
    lse: Option<&mut [[f32; 2]]>,
) -> Result<(), Error> {
    let mut cache = KvCache::<8, 1, 2>::new();
    let r = cache.prefill(q, k, v, out, lse);
    assert!(cache.is_empty());
    r
}

/// The memory figures the docs of `KvCache` and `RingKvCache` quote: keys
/// and values plus the bookkeeping (24 bytes on 64-bit targets, 16 on
/// 32-bit; the ring 40 and 24).
#[test]
fn memory_figures() {
    use core::mem::size_of;
    let word = size_of::<usize>();
    // Bookkeeping: a length per `heapless::Vec` (keys, values) and the
    // optional scale; the ring keeps a length and a write index per array.
    let scale = size_of::<Option<f32>>();
    assert_eq!(
        size_of::<KvCache<2048, 8, 64>>(),
        2 * 2048 * 8 * 64 * 4 + 2 * word + scale
    );
    assert_eq!(
        size_of::<KvCache<2048, 2, 64>>(),
        2 * 2048 * 2 * 64 * 4 + 2 * word + scale
    );
    assert_eq!(
        size_of::<KvCache<64, 1, 16>>(),
        2 * 64 * 16 * 4 + 2 * word + scale
    );
    assert_eq!(
        size_of::<microattn::RingKvCache<64, 1, 16>>(),
        2 * 64 * 16 * 4 + 4 * word + scale
    );
}
