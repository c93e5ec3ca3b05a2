//! What each `Scoring` setting costs: the group `scored/N256_D64_H8` times
//! one prefill of 256 positions, 8 heads of 64 dimensions, through
//! `causal_attention_dyn` (`plain`) and through `causal_attention_scored`
//! with nothing set (`empty`: the scored path itself, one query at a time)
//! and with each setting alone and all at once; the group
//! `scored_step/L2048_D64_H8` times one decode query per head over 2,048
//! cached positions, `KvCache::attend` against `attend_scored`. Every
//! scored output is held to the precision contract against the scored f64
//! oracle (the prefill) or to the plain call's bits (an empty scoring)
//! before anything is timed.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::Criterion;
use microattn::reference::{
    attention_mass_scored_f64, causal_attention_scored as naive, causal_attention_scored_f64,
    check_contract_with_mass,
};
use microattn::scoring::alibi_slopes;
use microattn::{KvCache, Scoring, Shape, causal_attention_dyn, causal_attention_scored};

use super::support::{XorShift, criterion_home, median_ns};

/// The prefill's shape, `(N, D, H)`.
const PREFILL: (usize, usize, usize) = (256, 64, 8);
/// The decode step's cached positions, `D` and `H`.
const STEP: (usize, usize, usize) = (2048, 64, 8);

/// The settings timed, by name, for `heads` heads over `kv_len` keys
/// (buffers from `buffers`).
fn settings<'a>(b: &'a Buffers) -> Vec<(&'static str, Scoring<'a>)> {
    let all = Scoring::new()
        .key_mask(&b.mask)
        .key_bias(&b.bias)
        .alibi(&b.slopes)
        .soft_cap(30.0)
        .sinks(&b.sinks);
    vec![
        ("empty", Scoring::new()),
        ("key_mask", Scoring::new().key_mask(&b.mask)),
        ("key_bias", Scoring::new().key_bias(&b.bias)),
        ("alibi", Scoring::new().alibi(&b.slopes)),
        ("soft_cap", Scoring::new().soft_cap(30.0)),
        ("sinks", Scoring::new().sinks(&b.sinks)),
        ("all", all),
    ]
}

/// A setting's buffers for `heads` heads over `kv_len` keys.
struct Buffers {
    mask: Vec<bool>,
    bias: Vec<f32>,
    slopes: Vec<f32>,
    sinks: Vec<f32>,
}

impl Buffers {
    fn new(kv_len: usize, heads: usize, rng: &mut XorShift) -> Self {
        let mut bias = vec![0.0; kv_len];
        rng.fill(&mut bias);
        let mut slopes = vec![0.0; heads];
        alibi_slopes(&mut slopes);
        let mut sinks = vec![0.0; heads];
        rng.fill(&mut sinks);
        Buffers {
            mask: (0..kv_len).map(|j| j % 7 != 3).collect(),
            bias,
            slopes,
            sinks,
        }
    }
}

fn prefill_group() -> String {
    let (n, d, h) = PREFILL;
    format!("scored/N{n}_D{d}_H{h}")
}

fn step_group() -> String {
    let (l, d, h) = STEP;
    format!("scored_step/L{l}_D{d}_H{h}")
}

/// Both groups (see the module docs).
pub fn bench(c: &mut Criterion) {
    bench_prefill(c);
    bench_step::<{ STEP.0 }, { STEP.1 }, { STEP.2 }>(c);
}

fn bench_prefill(c: &mut Criterion) {
    let (n, d, h) = PREFILL;
    let shape = Shape::new(n, n, h, h, d);
    let mut rng = XorShift(0x5c0_4ed);
    let (mut q, mut k, mut v) = (
        vec![0.0; n * h * d],
        vec![0.0; n * h * d],
        vec![0.0; n * h * d],
    );
    for x in [&mut q, &mut k, &mut v] {
        rng.fill(x);
    }
    let buffers = Buffers::new(n, h, &mut rng);
    let settings = settings(&buffers);
    let mut plain = vec![f32::NAN; q.len()];
    causal_attention_dyn(&shape, &q, &k, &v, &mut plain).expect("a valid shape");
    let mut out = vec![f32::NAN; q.len()];
    for (name, scoring) in &settings {
        causal_attention_scored(&shape, scoring, &q, &k, &v, &mut out).expect("valid settings");
        let (mut slow, mut oracle, mut mass) = (
            vec![0.0f32; out.len()],
            vec![0.0f64; out.len()],
            vec![0.0f64; out.len()],
        );
        naive(&shape, scoring, &q, &k, &v, &mut slow).expect("valid settings");
        causal_attention_scored_f64(&shape, scoring, &q, &k, &v, &mut oracle).expect("valid");
        attention_mass_scored_f64(&shape, scoring, &q, &k, &v, &mut mass).expect("valid");
        if let Err(e) = check_contract_with_mass(&out, &slow, &oracle, &mass) {
            panic!(
                "{}: {name} breaks the contract ({e}); refusing to benchmark",
                prefill_group()
            );
        }
    }
    let mut group = c.benchmark_group(prefill_group());
    group.sample_size(20);
    group.bench_function("plain", |b| {
        b.iter(|| causal_attention_dyn(&shape, black_box(&q), &k, &v, black_box(&mut out)))
    });
    for (name, scoring) in &settings {
        group.bench_function(*name, |b| {
            b.iter(|| {
                causal_attention_scored(&shape, scoring, black_box(&q), &k, &v, black_box(&mut out))
            })
        });
    }
    group.finish();
}

fn bench_step<const L: usize, const D: usize, const H: usize>(c: &mut Criterion) {
    let mut rng = XorShift(0x57e9);
    let mut cache = Box::new(KvCache::<L, H, D>::new());
    let mut token = [[0.0f32; D]; H];
    for _ in 0..L {
        rng.fill(token.as_flattened_mut());
        let mut value = [[0.0f32; D]; H];
        rng.fill(value.as_flattened_mut());
        cache.push(&token, &value).expect("room for L positions");
    }
    let mut q = [[0.0f32; D]; H];
    rng.fill(q.as_flattened_mut());
    let buffers = Buffers::new(L, H, &mut rng);
    let settings = settings(&buffers);
    let mut plain = [[f32::NAN; D]; H];
    cache.attend(&q, &mut plain, None, None);
    let mut out = [[f32::NAN; D]; H];
    cache
        .attend_scored(&q, &Scoring::new(), &mut out, None)
        .expect("valid");
    assert!(
        out.as_flattened()
            .iter()
            .zip(plain.as_flattened())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{}: an empty scoring is not the plain step's bits; refusing to benchmark",
        step_group()
    );
    let mut group = c.benchmark_group(step_group());
    group.sample_size(50);
    group.bench_function("plain", |b| {
        b.iter(|| cache.attend(black_box(&q), black_box(&mut out), None, None))
    });
    for (name, scoring) in &settings {
        group.bench_function(*name, |b| {
            b.iter(|| cache.attend_scored(black_box(&q), scoring, black_box(&mut out), None))
        });
    }
    group.finish();
}

/// Each setting's median in this run and its ratio to the plain call.
pub fn summary(since: SystemTime) {
    let Some(home) = criterion_home() else { return };
    for group in [prefill_group(), step_group()] {
        let Some(plain) = median_ns(&home, &group, "plain", since) else {
            continue;
        };
        println!(
            "\n{group} ({}), medians, ratio to plain:",
            microattn::LANE_NAME
        );
        println!("{:<10} {:>10.1} µs {:>6.2}", "plain", plain / 1e3, 1.0);
        let names = [
            "empty", "key_mask", "key_bias", "alibi", "soft_cap", "sinks", "all",
        ];
        for name in names {
            if let Some(ns) = median_ns(&home, &group, name, since) {
                println!("{name:<10} {:>10.1} µs {:>6.2}", ns / 1e3, ns / plain);
            }
        }
    }
}
