//! The 16-bit caches (`KvCache` and `RingKvCache` storing `f16` or `bf16`):
//!
//! - a 16-bit cache gives, bit for bit (`to_bits`), what an `f32` cache
//!   holding the widened keys and values gives: decode steps, one prefill,
//!   a prompt then steps, log-sum-exps; so decode steps equal one causal
//!   pass (`causal_attention_dyn`) over the rounded keys and values;
//! - the ring does the same over its window;
//! - against the f64 oracle on the *unrounded* inputs, every output is
//!   within the kernel's contract on what it stored plus
//!   `reference::rounding_error_bound` (one rounding of each key and value),
//!   and that bound is not loose enough to pass a quarter of it;
//! - a value past `f16`'s range is stored as ±∞ and acts as an infinite
//!   input does in an `f32` cache; a full cache rejects with nothing
//!   changed; the storage takes half the `f32` cache's bytes.

mod common;

use common::runner;
use microattn::reference::{
    causal_attention_f64, check_error_bound, error_bound, rounding_error_bound,
};
use microattn::strategies::{Fill, fixed_case_with};
use microattn::{Element, Error, KvCache, RingKvCache, Shape, bf16, causal_attention_dyn, f16};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/storage.txt";

/// Capacity of the caches under test: several blocks of keys.
const CAP: usize = 37;

/// A ring window shorter than the sequences, so that it wraps.
const WINDOW: usize = 11;

type Tokens<const X: usize, const D: usize> = Vec<[[f32; D]; X]>;

/// `n` positions of queries, keys and values from a strategy fill.
fn tokens<const H: usize, const KVH: usize, const D: usize>(
    n: usize,
    fill: Fill,
    seed: u64,
) -> (Tokens<H, D>, Tokens<KVH, D>, Tokens<KVH, D>) {
    let case = fixed_case_with(Shape::new(n, n, H, KVH, D), fill, seed);
    let rows = |flat: &[f32]| flat.as_chunks::<D>().0.to_vec();
    let q = rows(&case.q).as_chunks::<H>().0.to_vec();
    let k = rows(&case.k).as_chunks::<KVH>().0.to_vec();
    let v = rows(&case.v).as_chunks::<KVH>().0.to_vec();
    (q, k, v)
}

/// Positions as stored by a cache of `E`, widened back to `f32`.
fn widened<const KVH: usize, const D: usize, E: Element>(x: &[[[E; D]; KVH]]) -> Tokens<KVH, D> {
    x.iter().map(|p| p.map(|row| row.map(E::to_f32))).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The promises on one shape and element: steps, one prefill, a prompt of
/// `m` then steps, against the `f32` cache on the widened values and the
/// runtime API; then the accuracy against the unrounded inputs.
fn promises<const H: usize, const KVH: usize, const D: usize, E: Element>(
    n: usize,
    m: usize,
    fill: Fill,
    seed: u64,
) -> Result<(), String> {
    let (q, k, v) = tokens::<H, KVH, D>(n, fill, seed);
    // Decode steps.
    let mut steps = KvCache::<CAP, KVH, D, E>::new();
    let (mut out, mut lse) = (vec![[[f32::NAN; D]; H]; n], vec![[f32::NAN; H]; n]);
    for t in 0..n {
        steps
            .step(&q[t], &k[t], &v[t], &mut out[t], None, Some(&mut lse[t]))
            .map_err(|e| e.to_string())?;
    }
    // One prefill; a prompt of `m` then steps.
    let mut whole = KvCache::<CAP, KVH, D, E>::new();
    let (mut out_p, mut lse_p) = (vec![[[f32::NAN; D]; H]; n], vec![[f32::NAN; H]; n]);
    whole
        .prefill(&q, &k, &v, &mut out_p, Some(&mut lse_p))
        .map_err(|e| e.to_string())?;
    let mut split = KvCache::<CAP, KVH, D, E>::new();
    let (mut out_s, mut lse_s) = (vec![[[f32::NAN; D]; H]; n], vec![[f32::NAN; H]; n]);
    split
        .prefill(
            &q[..m],
            &k[..m],
            &v[..m],
            &mut out_s[..m],
            Some(&mut lse_s[..m]),
        )
        .map_err(|e| e.to_string())?;
    for t in m..n {
        split
            .step(
                &q[t],
                &k[t],
                &v[t],
                &mut out_s[t],
                None,
                Some(&mut lse_s[t]),
            )
            .map_err(|e| e.to_string())?;
    }
    // The f32 cache on the widened values, and the runtime API on them.
    let (kw, vw) = (widened(steps.keys()), widened(steps.values()));
    let mut wide = KvCache::<CAP, KVH, D>::new();
    let (mut out_w, mut lse_w) = (vec![[[f32::NAN; D]; H]; n], vec![[f32::NAN; H]; n]);
    wide.prefill(&q, &kw, &vw, &mut out_w, Some(&mut lse_w))
        .map_err(|e| e.to_string())?;
    let shape = Shape::new(n, n, H, KVH, D);
    let flat = |x: &[[[f32; D]; KVH]]| x.as_flattened().as_flattened().to_vec();
    let qf = q.as_flattened().as_flattened().to_vec();
    let mut out_dyn = vec![f32::NAN; n * H * D];
    causal_attention_dyn(&shape, &qf, &flat(&kw), &flat(&vw), &mut out_dyn)
        .map_err(|e| e.to_string())?;

    let o = |x: &[[[f32; D]; H]]| bits(x.as_flattened().as_flattened());
    let l = |x: &[[f32; H]]| bits(x.as_flattened());
    let name = E::NAME;
    for (what, got, got_lse) in [
        ("one prefill", &out_p, &lse_p),
        ("a prompt then steps", &out_s, &lse_s),
        ("the f32 cache on the widened values", &out_w, &lse_w),
    ] {
        if o(&out) != o(got) || l(&lse) != l(got_lse) {
            return Err(format!(
                "{name}: decode steps differ from {what} (n {n}, m {m})"
            ));
        }
    }
    if o(&out) != bits(&out_dyn) {
        return Err(format!(
            "{name}: decode steps differ from causal_attention_dyn on the widened values"
        ));
    }
    if steps.keys() != whole.keys() || split.values() != whole.values() {
        return Err(format!("{name}: the caches stored different values"));
    }
    // Accuracy against the unrounded inputs.
    let (kf, vf) = (flat(&k), flat(&v));
    let (mut ref64, mut stored, mut rounding) = (
        vec![0.0f64; n * H * D],
        vec![0.0f64; n * H * D],
        vec![0.0f64; n * H * D],
    );
    let e = |r: Result<(), Error>| r.map_err(|e| e.to_string());
    e(causal_attention_f64(&shape, &qf, &kf, &vf, &mut ref64))?;
    e(error_bound(
        &shape,
        &qf,
        &flat(&kw),
        &flat(&vw),
        &mut stored,
    ))?;
    let (u, sigma) = (f64::from(E::UNIT_ROUNDOFF), f64::from(E::SUBNORMAL_STEP));
    e(rounding_error_bound(
        &shape,
        &qf,
        &kf,
        &vf,
        u,
        sigma,
        &mut rounding,
    ))?;
    let bound: Vec<f64> = stored.iter().zip(&rounding).map(|(a, b)| a + b).collect();
    check_error_bound(out.as_flattened().as_flattened(), &ref64, &bound)
        .map_err(|v| format!("{name}: against the unrounded inputs: {v}"))
}

type Promise = fn(usize, usize, Fill, u64) -> Result<(), String>;

/// MHA, GQA and MQA, head dimensions around the lane widths, both 16-bit
/// elements.
const SHAPES: [(&str, Promise); 8] = [
    ("f16 H1 KVH1 D8", promises::<1, 1, 8, f16>),
    ("f16 H4 KVH2 D17", promises::<4, 2, 17, f16>),
    ("f16 H2 KVH1 D16", promises::<2, 1, 16, f16>),
    ("f16 H3 KVH3 D33", promises::<3, 3, 33, f16>),
    ("bf16 H1 KVH1 D8", promises::<1, 1, 8, bf16>),
    ("bf16 H4 KVH2 D17", promises::<4, 2, 17, bf16>),
    ("bf16 H2 KVH1 D15", promises::<2, 1, 15, bf16>),
    ("bf16 H3 KVH3 D64", promises::<3, 3, 64, bf16>),
];

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Edgy(3.0)),
        Just(Fill::Uniform(1.0)),
        // scores up to about ±1e3: weights far apart
        Just(Fill::Uniform(12.0)),
    ]
}

#[test]
fn sixteen_bit_caches_keep_the_promises() {
    let strategy = (0..SHAPES.len(), 1..=CAP, fill(), any::<u64>())
        .prop_flat_map(|(shape, n, fill, seed)| (Just((shape, n, fill, seed)), 0..=n));
    runner(48, REGRESSIONS)
        .run(&strategy, |((shape, n, fill, seed), m)| {
            let (name, promise) = SHAPES[shape];
            promise(n, m, fill, seed).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))
        })
        .unwrap();
}

/// Every length 1..=17 and CAP, the prompt split at a few places.
#[test]
fn sixteen_bit_caches_every_length() {
    for (name, promise) in SHAPES {
        for n in (1..=17).chain([CAP]) {
            for m in [0, n / 2, n] {
                promise(n, m, Fill::Edgy(3.0), n as u64).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

/// The accuracy check is not loose: with a quarter of the rounding bound,
/// some output of a bf16 cache fails it.
#[test]
fn the_rounding_bound_is_needed() {
    const H: usize = 2;
    const D: usize = 16;
    let mut failed = 0;
    for seed in 0..20 {
        let (q, k, v) = tokens::<H, 1, D>(CAP, Fill::Uniform(3.0), seed);
        let mut cache = KvCache::<CAP, 1, D, bf16>::new();
        let mut out = vec![[[0.0f32; D]; H]; CAP];
        cache.prefill(&q, &k, &v, &mut out, None).expect("fits");
        let shape = Shape::new(CAP, CAP, H, 1, D);
        let flat = |x: &[[[f32; D]; 1]]| x.as_flattened().as_flattened().to_vec();
        let qf = q.as_flattened().as_flattened().to_vec();
        let (kw, vw) = (widened(cache.keys()), widened(cache.values()));
        let len = CAP * H * D;
        let (mut ref64, mut stored, mut rounding) =
            (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        causal_attention_f64(&shape, &qf, &flat(&k), &flat(&v), &mut ref64).unwrap();
        error_bound(&shape, &qf, &flat(&kw), &flat(&vw), &mut stored).unwrap();
        let u = f64::from(bf16::UNIT_ROUNDOFF);
        rounding_error_bound(&shape, &qf, &flat(&k), &flat(&v), u, 0.0, &mut rounding).unwrap();
        let full: Vec<f64> = stored.iter().zip(&rounding).map(|(a, b)| a + b).collect();
        let quarter: Vec<f64> = stored
            .iter()
            .zip(&rounding)
            .map(|(a, b)| a + b / 4.0)
            .collect();
        let out = out.as_flattened().as_flattened();
        check_error_bound(out, &ref64, &full).expect("within the full bound");
        failed += usize::from(check_error_bound(out, &ref64, &quarter).is_err());
    }
    assert!(failed > 0, "a quarter of the rounding bound never failed");
}

/// The ring over a 16-bit storage: bit for bit the f32 ring fed the widened
/// values, steps and a prefill longer than the window.
fn ring_matches<const H: usize, const KVH: usize, const D: usize, E: Element>(seed: u64) {
    let n = 3 * WINDOW + 2;
    let (q, k, v) = tokens::<H, KVH, D>(n, Fill::Edgy(3.0), seed);
    let mut narrow = RingKvCache::<WINDOW, KVH, D, E>::new();
    let mut wide = RingKvCache::<WINDOW, KVH, D>::new();
    let mut prefilled = RingKvCache::<WINDOW, KVH, D, E>::new();
    let mut out_p = vec![[[0.0f32; D]; H]; n];
    prefilled
        .prefill(&q, &k, &v, &mut out_p, None)
        .expect("lengths match");
    for t in 0..n {
        // The f32 ring gets the position as the 16-bit one stores it.
        let round = |p: &[[f32; D]; KVH]| p.map(|row| row.map(|x| E::from_f32(x).to_f32()));
        let (mut a, mut b) = ([[0.0f32; D]; H], [[0.0f32; D]; H]);
        let (mut wa, mut wb) = ([[0.0f32; WINDOW]; H], [[0.0f32; WINDOW]; H]);
        narrow.step(&q[t], &k[t], &v[t], &mut a, Some(&mut wa), None);
        wide.step(
            &q[t],
            &round(&k[t]),
            &round(&v[t]),
            &mut b,
            Some(&mut wb),
            None,
        );
        let same = |x: &[f32], y: &[f32]| bits(x) == bits(y);
        assert!(
            same(a.as_flattened(), b.as_flattened()),
            "{}: step {t}",
            E::NAME
        );
        assert!(
            same(wa.as_flattened(), wb.as_flattened()),
            "{}: weights {t}",
            E::NAME
        );
        assert!(
            same(a.as_flattened(), out_p[t].as_flattened()),
            "{}: prefill {t}",
            E::NAME
        );
    }
}

#[test]
fn sixteen_bit_rings_match_the_f32_ring() {
    for seed in 0..4 {
        ring_matches::<2, 1, 16, f16>(seed);
        ring_matches::<3, 3, 9, f16>(seed);
        ring_matches::<2, 1, 16, bf16>(seed);
        ring_matches::<4, 2, 33, bf16>(seed);
    }
}

/// Past f16's range a value is stored as ±∞ (IEEE rounding), and the cache
/// then gives what an f32 cache gives for that infinite value: here +∞ in
/// the outputs it weighs (and NaN where `∞·0` meets a zero weight is not
/// reached: every weight is positive). bf16 has f32's range: finite.
#[test]
fn f16_overflow_is_stored_as_infinity() {
    let mut cache = KvCache::<4, 1, 2, f16>::new();
    let mut out = [[0.0f32; 2]; 1];
    cache
        .step(
            &[[0.1, 0.2]],
            &[[1.0, -1.0]],
            &[[70_000.0, -1.0]],
            &mut out,
            None,
            None,
        )
        .expect("fits");
    assert_eq!(cache.values()[0][0][0].to_f32(), f32::INFINITY);
    assert_eq!(out, [[f32::INFINITY, -1.0]]);
    let mut wide = KvCache::<4, 1, 2>::new();
    let mut want = [[0.0f32; 2]; 1];
    wide.step(
        &[[0.1, 0.2]],
        &[[1.0, -1.0]],
        &[[f32::INFINITY, -1.0]],
        &mut want,
        None,
        None,
    )
    .expect("fits");
    assert_eq!(bits(out.as_flattened()), bits(want.as_flattened()));
    // An infinite key makes the score of a query that meets it ±∞ or NaN,
    // as in an f32 cache: here +∞·0.1 = +∞ wins, NaN from ∞ − ∞ in the
    // softmax's shift makes the row NaN (the crate's edge-case table).
    let mut keyed = KvCache::<4, 1, 2, f16>::new();
    keyed
        .step(
            &[[1.0, 0.0]],
            &[[-70_000.0, 0.0]],
            &[[1.0, 2.0]],
            &mut out,
            None,
            None,
        )
        .expect("fits");
    let mut wide = KvCache::<4, 1, 2>::new();
    wide.step(
        &[[1.0, 0.0]],
        &[[f32::NEG_INFINITY, 0.0]],
        &[[1.0, 2.0]],
        &mut want,
        None,
        None,
    )
    .expect("fits");
    assert_eq!(bits(out.as_flattened()), bits(want.as_flattened()));
    let mut b = KvCache::<4, 1, 2, bf16>::new();
    b.step(
        &[[0.1, 0.2]],
        &[[1.0, -1.0]],
        &[[70_000.0, -1.0]],
        &mut out,
        None,
        None,
    )
    .expect("fits");
    assert!(out[0][0].is_finite());
}

/// A full 16-bit cache returns `CacheFull` and keeps what it holds.
#[test]
fn full_sixteen_bit_cache_is_unchanged() {
    let mut cache = KvCache::<2, 1, 3, f16>::new();
    cache
        .extend(
            &[[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]],
            &[[[0.5; 3]], [[0.25; 3]]],
        )
        .expect("fits");
    let before = (cache.keys().to_vec(), cache.values().to_vec());
    let mut out = [[7.0f32; 3]; 1];
    assert_eq!(
        cache.step(&[[1.0; 3]], &[[9.0; 3]], &[[9.0; 3]], &mut out, None, None),
        Err(Error::CacheFull {
            capacity: 2,
            len: 2,
            requested: 1
        })
    );
    assert_eq!(out, [[7.0; 3]; 1]);
    assert_eq!((cache.keys().to_vec(), cache.values().to_vec()), before);
}

/// The storage of a 16-bit cache is half an f32 cache's; the bookkeeping
/// (lengths, write indices, scale) is the same.
#[test]
fn sixteen_bit_storage_is_half() {
    use core::mem::size_of;
    let word = size_of::<usize>();
    let scale = size_of::<Option<f32>>();
    let storage = |bytes: usize, keep: usize| bytes - keep;
    let (plain, ring) = (2 * word + scale, 4 * word + scale);
    let f32_plain = storage(size_of::<KvCache<2048, 8, 64>>(), plain);
    assert_eq!(
        storage(size_of::<KvCache<2048, 8, 64, f16>>(), plain),
        f32_plain / 2
    );
    assert_eq!(
        storage(size_of::<KvCache<2048, 8, 64, bf16>>(), plain),
        f32_plain / 2
    );
    assert_eq!(
        size_of::<KvCache<64, 1, 16, f16>>(),
        2 * 64 * 16 * 2 + plain
    );
    let f32_ring = storage(size_of::<RingKvCache<64, 2, 16>>(), ring);
    assert_eq!(
        storage(size_of::<RingKvCache<64, 2, 16, f16>>(), ring),
        f32_ring / 2
    );
    assert_eq!(
        storage(size_of::<RingKvCache<64, 2, 16, bf16>>(), ring),
        f32_ring / 2
    );
}
