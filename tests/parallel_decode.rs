//! The caches' decode steps on every core (feature `rayon`): `par_step`
//! gives, bit for bit (`to_bits`), what `step` gives — outputs, weights and
//! log-sum-exps — on pools of exactly 1, 2 and 3 threads, for MHA, GQA and
//! MQA, `f32` and 16-bit storage, the plain cache and the ring, a full cache
//! (`CacheFull`, nothing written) and a non-finite scale.
#![cfg(feature = "rayon")]

use microattn::strategies::{Fill, fixed_case_with};
use microattn::{Element, Error, KvCache, RingKvCache, Shape, bf16, f16};

const CAP: usize = 45;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

type Tokens<const X: usize, const D: usize> = Vec<[[f32; D]; X]>;

fn tokens<const H: usize, const KVH: usize, const D: usize>(
    seed: u64,
) -> (Tokens<H, D>, Tokens<KVH, D>, Tokens<KVH, D>) {
    let case = fixed_case_with(Shape::new(CAP, CAP, H, KVH, D), Fill::Edgy(3.0), seed);
    let rows = |flat: &[f32]| flat.as_chunks::<D>().0.to_vec();
    (
        rows(&case.q).as_chunks::<H>().0.to_vec(),
        rows(&case.k).as_chunks::<KVH>().0.to_vec(),
        rows(&case.v).as_chunks::<KVH>().0.to_vec(),
    )
}

/// Every step of a sequence filling the cache, then one more (`CacheFull`).
fn plain<const H: usize, const KVH: usize, const D: usize, E: Element>(threads: usize, seed: u64) {
    let (q, k, v) = tokens::<H, KVH, D>(seed);
    let (mut one, mut all) = (
        Box::new(KvCache::<CAP, KVH, D, E>::new()),
        Box::new(KvCache::<CAP, KVH, D, E>::new()),
    );
    let pool = pool(threads);
    for t in 0..CAP {
        let (mut a, mut b) = ([[f32::NAN; D]; H], [[0.5f32; D]; H]);
        let (mut wa, mut wb) = ([[f32::NAN; CAP]; H], [[0.5f32; CAP]; H]);
        let (mut la, mut lb) = ([f32::NAN; H], [0.5f32; H]);
        one.step(&q[t], &k[t], &v[t], &mut a, Some(&mut wa), Some(&mut la))
            .expect("fits");
        pool.install(|| all.par_step(&q[t], &k[t], &v[t], &mut b, Some(&mut wb), Some(&mut lb)))
            .expect("fits");
        let what = format!(
            "{} H{H} KVH{KVH} D{D}, {threads} threads, step {t}",
            E::NAME
        );
        assert_eq!(
            bits(a.as_flattened()),
            bits(b.as_flattened()),
            "{what}: outputs"
        );
        assert_eq!(
            bits(wa.as_flattened()),
            bits(wb.as_flattened()),
            "{what}: weights"
        );
        assert_eq!(bits(&la), bits(&lb), "{what}: log-sum-exps");
    }
    let mut untouched = [[7.0f32; D]; H];
    let full = pool.install(|| all.par_step(&q[0], &k[0], &v[0], &mut untouched, None, None));
    assert_eq!(
        full,
        Err(Error::CacheFull {
            capacity: CAP,
            len: CAP,
            requested: 1
        })
    );
    assert_eq!(untouched, [[7.0; D]; H]);
}

/// A ring that wraps several times.
fn ring<const H: usize, const KVH: usize, const D: usize, E: Element>(threads: usize, seed: u64) {
    const W: usize = 13;
    let (q, k, v) = tokens::<H, KVH, D>(seed);
    let (mut one, mut all) = (
        RingKvCache::<W, KVH, D, E>::new(),
        RingKvCache::<W, KVH, D, E>::new(),
    );
    let pool = pool(threads);
    for t in 0..CAP {
        let (mut a, mut b) = ([[f32::NAN; D]; H], [[0.5f32; D]; H]);
        let (mut la, mut lb) = ([f32::NAN; H], [0.5f32; H]);
        one.step(&q[t], &k[t], &v[t], &mut a, None, Some(&mut la));
        pool.install(|| all.par_step(&q[t], &k[t], &v[t], &mut b, None, Some(&mut lb)));
        let what = format!(
            "ring {} H{H} KVH{KVH} D{D}, {threads} threads, step {t}",
            E::NAME
        );
        assert_eq!(
            bits(a.as_flattened()),
            bits(b.as_flattened()),
            "{what}: outputs"
        );
        assert_eq!(bits(&la), bits(&lb), "{what}: log-sum-exps");
    }
}

#[test]
fn par_step_is_step_bit_for_bit() {
    for threads in [1, 2, 3] {
        for seed in 0..2 {
            plain::<8, 8, 64, f32>(threads, seed);
            plain::<8, 2, 16, f32>(threads, seed);
            plain::<4, 1, 17, f32>(threads, seed);
            plain::<6, 3, 33, f16>(threads, seed);
            plain::<3, 1, 8, bf16>(threads, seed);
            ring::<4, 4, 16, f32>(threads, seed);
            ring::<4, 2, 9, f16>(threads, seed);
        }
    }
}

/// An empty cache attends to nothing; a NaN scale makes every output NaN;
/// both as `attend` does.
#[test]
fn par_attend_edge_cases() {
    let pool = pool(2);
    let cache = KvCache::<4, 2, 4>::new();
    let (mut out, mut lse) = ([[1.0f32; 4]; 4], [1.0f32; 4]);
    pool.install(|| cache.par_attend(&[[1.0; 4]; 4], &mut out, None, Some(&mut lse)));
    assert_eq!((out, lse), ([[0.0; 4]; 4], [f32::NEG_INFINITY; 4]));
    let mut nan = KvCache::<4, 2, 4>::with_scale(f32::NAN);
    pool.install(|| {
        nan.par_step(
            &[[1.0; 4]; 4],
            &[[1.0; 4]; 2],
            &[[1.0; 4]; 2],
            &mut out,
            None,
            Some(&mut lse),
        )
    })
    .expect("fits");
    assert!(out.as_flattened().iter().chain(&lse).all(|x| x.is_nan()));
}
