//! One decode step of `microattn::KvCache` against two baselines, for a
//! cache of `L ∈ {64, 512, 2048}` positions, `D = 64`, `H = 8` query heads
//! over `KVH ∈ {8, 2}` key/value heads.
//!
//! Each shape is one criterion group, `decode/L{L}_KVH{KVH}`, with these
//! entries:
//! - `step`: `KvCache::step` — append position `L − 1`, run the 8 heads'
//!   queries over all `L` positions (the cache is truncated back to `L − 1`
//!   before each step, an O(1) length change, so every iteration does the
//!   same work);
//! - `naive`: the textbook reference (`reference::causal_attention_dyn`) on
//!   the same cached keys and values, as the shape
//!   `Shape::prefix(L − 1, 1, H, KVH, D)`;
//! - `read`: a plain loop summing every key and value `f32` once (32
//!   independent sums): the memory-read floor of a step, to tell
//!   compute from bandwidth;
//! - `int8`: `int8::KvCache::step` on `i8` keys and values of the same
//!   shape (a quarter of the bytes), checked bit for bit against
//!   `reference::int8` before timing; the summary gives its time as a share
//!   of `step`'s in the same run;
//! - `f16`, `bf16`: `KvCache::step` on a cache storing the same keys and
//!   values as 16-bit values (half the bytes), checked bit for bit against
//!   an `f32` cache holding the widened values before timing; `read_f16`,
//!   `read_bf16`: a plain loop summing that cache's 16-bit words (as
//!   integers) once, its memory-read floor. The summary gives each time as
//!   a share of `step`'s and as a ratio to its own read;
//! - `step_all` (with `--features rayon`): `KvCache::par_step`, the same
//!   step with its heads spread over rayon's global pool (a thread per
//!   core); the summary gives the one-thread time over it. `read_all`:
//!   `read` with the keys and the values summed on two tasks of that pool,
//!   what all cores together can read (the summary: `read` over it).
//!
//! The one-thread entries run on the bench's thread; pin the run to one
//! core for them (`taskset -c 1`) and to all cores for `step_all`
//! (`taskset -c 0,1` on two).
//!
//! Throughput is the step's FLOP count `4·H·D·L` (a multiply and an add per
//! dimension in each score and in each value update; `exp` not counted) as
//! criterion elements, so `elem/s` reads as FLOP/s; the summary also gives
//! the K/V bytes read per second, `2·L·KVH·D·4` bytes per step. The step's
//! output is held to the accuracy contract before anything is timed.
//!
//! ```text
//! RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/v3 \
//!     taskset -c 1 cargo bench --bench decode       # AVX2 + FMA lanes
//! cargo bench --bench decode -- L2048               # one length (criterion filter)
//! ```

mod support;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput};
use microattn::int8::{self, Params, Quant};
use microattn::reference::{self, causal_attention_f64, check_contract};
use microattn::{Element, KvCache, Shape, bf16, f16};
use support::{PEAK_LANES, XorShift, bench_peak, criterion_home, median_ns, peak_flops};

const H: usize = 8;
const D: usize = 64;

/// Every shape, as `(L, KVH)`, in the order of the summary.
const SHAPES: [(usize, usize); 6] = [(64, 8), (64, 2), (512, 8), (512, 2), (2048, 8), (2048, 2)];

fn flops(l: usize) -> u64 {
    (4 * H * D * l) as u64
}

fn kv_bytes(l: usize, kvh: usize) -> u64 {
    (2 * l * kvh * D * 4) as u64
}

fn group_name(l: usize, kvh: usize) -> String {
    format!("decode/L{l}_KVH{kvh}")
}

/// Sums every value once with 32 independent accumulators (four lanes of 8,
/// vectorised by the compiler, so no add waits on the previous one): the
/// cost of just reading the cache.
fn read_all(keys: &[f32], values: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    for chunk in keys
        .as_chunks::<32>()
        .0
        .iter()
        .chain(values.as_chunks::<32>().0)
    {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum()
}

fn bench_shape<const L: usize, const KVH: usize>(c: &mut Criterion) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ ((L as u64) << 8 | KVH as u64));
    let mut cache = Box::new(KvCache::<L, KVH, D>::new());
    let mut k = vec![[[0.0f32; D]; KVH]; L];
    let mut v = k.clone();
    rng.fill(k.as_flattened_mut().as_flattened_mut());
    rng.fill(v.as_flattened_mut().as_flattened_mut());
    let mut q = [[0.0f32; D]; H];
    rng.fill(q.as_flattened_mut());
    cache.extend(&k[..L - 1], &v[..L - 1]).expect("fits");
    let (k_new, v_new) = (k[L - 1], v[L - 1]);

    // The step, checked against the contract before timing.
    let mut out = [[0.0f32; D]; H];
    cache
        .step(&q, &k_new, &v_new, &mut out, None, None)
        .expect("one free slot");
    let shape = Shape::prefix(L - 1, 1, H, KVH, D);
    let (kf, vf) = (
        cache.keys().as_flattened().as_flattened().to_vec(),
        cache.values().as_flattened().as_flattened().to_vec(),
    );
    let mut naive = vec![0.0f32; H * D];
    let mut ref64 = vec![0.0f64; H * D];
    reference::causal_attention_dyn(&shape, q.as_flattened(), &kf, &vf, &mut naive)
        .expect("valid shape");
    causal_attention_f64(&shape, q.as_flattened(), &kf, &vf, &mut ref64).expect("valid shape");
    if let Err(e) = check_contract(out.as_flattened(), &naive, &ref64) {
        panic!("L={L} KVH={KVH}: the decode step breaks the accuracy contract ({e})");
    }

    let mut group = c.benchmark_group(group_name(L, KVH));
    group.throughput(Throughput::Elements(flops(L)));
    group.bench_function("step", |b| {
        b.iter(|| {
            cache.truncate(L - 1);
            cache
                .step(
                    black_box(&q),
                    black_box(&k_new),
                    black_box(&v_new),
                    black_box(&mut out),
                    None,
                    None,
                )
                .expect("one free slot");
        });
    });
    group.bench_function("naive", |b| {
        b.iter(|| {
            reference::causal_attention_dyn(
                &shape,
                black_box(q.as_flattened()),
                black_box(&kf),
                black_box(&vf),
                black_box(&mut naive),
            )
        });
    });
    let (ks, vs) = (
        cache.keys().as_flattened().as_flattened(),
        cache.values().as_flattened().as_flattened(),
    );
    group.bench_function("read", |b| {
        b.iter(|| read_all(black_box(ks), black_box(vs)));
    });
    // The same read split over rayon's global pool (keys on one task,
    // values on another): what all cores together can read.
    #[cfg(feature = "rayon")]
    group.bench_function("read_all", |b| {
        b.iter(|| {
            let (x, y) = rayon::join(
                || read_all(black_box(ks), &[]),
                || read_all(&[], black_box(vs)),
            );
            x + y
        });
    });
    #[cfg(feature = "rayon")]
    group.bench_function("step_all", |b| {
        b.iter(|| {
            cache.truncate(L - 1);
            cache
                .par_step(
                    black_box(&q),
                    black_box(&k_new),
                    black_box(&v_new),
                    black_box(&mut out),
                    None,
                    None,
                )
                .expect("one free slot");
        });
    });
    bench_int8::<L, KVH>(&mut group, &mut rng);
    bench_16_bit::<L, KVH, f16>(&mut group, &k, &v, &q);
    bench_16_bit::<L, KVH, bf16>(&mut group, &k, &v, &q);
    group.finish();
}

/// The `f16` and `bf16` entries: the same step on a cache storing the same
/// keys and values as `E` (half the bytes), checked bit for bit against an
/// `f32` cache holding the widened keys and values first; and `read_E`, a
/// plain loop summing the cache's 16-bit words (as integers: no conversion)
/// once, the memory-read floor of that step.
fn bench_16_bit<const L: usize, const KVH: usize, E: Element>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    k: &[[[f32; D]; KVH]],
    v: &[[[f32; D]; KVH]],
    q: &[[f32; D]; H],
) {
    let mut cache = Box::new(KvCache::<L, KVH, D, E>::new());
    cache.extend(&k[..L - 1], &v[..L - 1]).expect("fits");
    let (k_new, v_new) = (k[L - 1], v[L - 1]);
    let mut out = [[0.0f32; D]; H];
    cache
        .step(q, &k_new, &v_new, &mut out, None, None)
        .expect("one free slot");
    let widen = |x: &[[[E; D]; KVH]]| -> Vec<[[f32; D]; KVH]> {
        x.iter().map(|p| p.map(|row| row.map(E::to_f32))).collect()
    };
    let mut wide = Box::new(KvCache::<L, KVH, D>::new());
    wide.extend(&widen(cache.keys()), &widen(cache.values()))
        .expect("fits");
    let mut want = [[0.0f32; D]; H];
    wide.attend(q, &mut want, None, None);
    assert!(
        out.as_flattened()
            .iter()
            .zip(want.as_flattened())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "L={L} KVH={KVH}: the {} step differs from the f32 step on its widened keys and values",
        E::NAME
    );
    group.bench_function(E::NAME, |b| {
        b.iter(|| {
            cache.truncate(L - 1);
            cache
                .step(
                    black_box(q),
                    black_box(&k_new),
                    black_box(&v_new),
                    black_box(&mut out),
                    None,
                    None,
                )
                .expect("one free slot");
        });
    });
    let bits = |x: &[[[E; D]; KVH]]| -> Vec<u16> {
        x.as_flattened()
            .as_flattened()
            .iter()
            .map(|&e| (e.to_f32().to_bits() >> 16) as u16)
            .collect()
    };
    let (ks, vs) = (bits(cache.keys()), bits(cache.values()));
    group.bench_function(format!("read_{}", E::NAME), |b| {
        b.iter(|| read_16(black_box(&ks), black_box(&vs)));
    });
}

/// [`read_all`] for 16-bit words, summed as integers (wrapping): the cost
/// of reading a 16-bit cache's bytes and nothing else.
fn read_16(keys: &[u16], values: &[u16]) -> u16 {
    let mut acc = [0u16; 64];
    for chunk in keys
        .as_chunks::<64>()
        .0
        .iter()
        .chain(values.as_chunks::<64>().0)
    {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(x);
        }
    }
    acc.iter().fold(0, |s, &x| s.wrapping_add(x))
}

/// The `int8` entry: the same step on an `int8::KvCache` of random `i8`
/// keys and values, checked against the integer reference first.
fn bench_int8<const L: usize, const KVH: usize>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rng: &mut XorShift,
) {
    let mut bytes = |n: usize| -> Vec<i8> {
        let mut f = vec![0.0f32; n];
        rng.fill(&mut f);
        f.iter().map(|x| (x * 127.0) as i8).collect()
    };
    let quant = |scale, zero_point| Quant { scale, zero_point };
    let params = Params::new(
        quant(0.02, -3),
        quant(0.03, 4),
        quant(0.05, -1),
        quant(0.04, 2),
        D,
    )
    .expect("valid parameters");
    let mut cache = Box::new(int8::KvCache::<L, KVH, D>::new(params));
    let (k, v) = (bytes(L * KVH * D), bytes(L * KVH * D));
    let rows = |x: &[i8]| x.as_chunks::<D>().0.as_chunks::<KVH>().0.to_vec();
    let (k, v) = (rows(&k), rows(&v));
    cache.extend(&k[..L - 1], &v[..L - 1]).expect("fits");
    let q: [[i8; D]; H] = *bytes(H * D)
        .as_chunks::<D>()
        .0
        .as_chunks::<H>()
        .0
        .first()
        .expect("H rows");
    let mut out = [[0i8; D]; H];
    cache
        .step(&q, &k[L - 1], &v[L - 1], &mut out)
        .expect("one free slot");
    let shape = Shape::prefix(L - 1, 1, H, KVH, D);
    let mut want = vec![0i8; H * D];
    reference::int8::causal_attention_dyn(
        &shape,
        &params,
        q.as_flattened(),
        cache.keys().as_flattened().as_flattened(),
        cache.values().as_flattened().as_flattened(),
        &mut want,
    )
    .expect("valid shape");
    assert_eq!(
        out.as_flattened(),
        &want[..],
        "L={L} KVH={KVH}: int8 step != reference"
    );
    let (k_new, v_new) = (k[L - 1], v[L - 1]);
    group.bench_function("int8", |b| {
        b.iter(|| {
            cache.truncate(L - 1);
            cache
                .step(
                    black_box(&q),
                    black_box(&k_new),
                    black_box(&v_new),
                    black_box(&mut out),
                )
                .expect("one free slot");
        });
    });
}

fn summary(since: SystemTime) {
    let Some(home) = criterion_home() else { return };
    let peak = median_ns(&home, "peak", "fma", since).map(|ns| peak_flops() as f64 / ns);
    let mut rows = Vec::new();
    for (l, kvh) in SHAPES {
        let name = group_name(l, kvh);
        let get = |f: &str| median_ns(&home, &name, f, since);
        if let (Some(step), Some(naive), Some(read)) = (get("step"), get("naive"), get("read")) {
            let int8 = get("int8").map_or(("-".to_string(), "-".to_string()), |t| {
                (format!("{:.2}", t / 1e3), format!("{:.2}", t / step))
            });
            // A 16-bit entry: its time, its share of `step`'s and its ratio
            // to a read of its own bytes.
            let sixteen = |name: &str| match (get(name), get(&format!("read_{name}"))) {
                (Some(t), Some(r)) => [
                    format!("{:.2}", t / 1e3),
                    format!("{:.2}", t / step),
                    format!("{:.2}", t / r),
                ],
                _ => ["-".to_string(), "-".to_string(), "-".to_string()],
            };
            let (f16, bf16) = (sixteen("f16"), sixteen("bf16"));
            let all = get("step_all").map_or(["-".to_string(), "-".to_string()], |t| {
                [format!("{:.2}", t / 1e3), format!("{:.2}x", step / t)]
            });
            let read_all = get("read_all").map_or("-".to_string(), |t| format!("{:.2}x", read / t));
            let (f, bytes) = (flops(l) as f64, kv_bytes(l, kvh) as f64);
            let share = peak.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * f / step / p));
            rows.push(format!(
                "{name:<20} {:>9.2} {:>8.2} {:>7} {:>8.2} {:>10.2} {:>9.2} {:>8.1}x {:>9.2} {:>8.2} {:>9.2}x {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>9} {:>10} {:>10} {:>8} {:>11}",
                step / 1e3,
                f / step,
                share,
                bytes / step,
                naive / 1e3,
                f / naive,
                naive / step,
                read / 1e3,
                bytes / read,
                step / read,
                int8.0,
                int8.1,
                f16[0],
                f16[1],
                f16[2],
                bf16[0],
                bf16[1],
                bf16[2],
                all[0],
                all[1],
                read_all,
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    println!(
        "\nsummary ({}), medians; GB/s = K/V bytes 2·L·KVH·D·4 per time:",
        microattn::LANE_NAME
    );
    match peak {
        Some(p) => println!("peak probe ({PEAK_LANES}-wide FMA, 1 core): {p:.1} GFLOP/s"),
        None => println!("peak probe not run (filtered out): no % of peak"),
    }
    println!(
        "{:<20} {:>9} {:>8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>9} {:>10} {:>10} {:>8} {:>11}",
        "shape",
        "step µs",
        "GFLOP/s",
        "% peak",
        "GB/s",
        "naive µs",
        "GFLOP/s",
        "speed-up",
        "read µs",
        "GB/s",
        "step/read",
        "int8 µs",
        "int8/step",
        "f16 µs",
        "f16/step",
        "f16/read",
        "bf16 µs",
        "bf16/step",
        "bf16/read",
        "all µs",
        "1/all",
        "read 1/all"
    );
    rows.iter().for_each(|r| println!("{r}"));
}

fn run() {
    println!(
        "microattn decode step (H = {H}, D = {D}), lanes: {}",
        microattn::LANE_NAME
    );
    println!("throughput = 4·H·D·L FLOPs per step as criterion elements: elem/s reads as FLOP/s");
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .without_plots()
        .configure_from_args();
    bench_peak(&mut c);
    bench_shape::<64, 8>(&mut c);
    bench_shape::<64, 2>(&mut c);
    bench_shape::<512, 8>(&mut c);
    bench_shape::<512, 2>(&mut c);
    bench_shape::<2048, 8>(&mut c);
    bench_shape::<2048, 2>(&mut c);
    c.final_summary();
    summary(started);
}

fn main() {
    // A cache of 2048 × 8 × 64 keys and values is 8 MiB: build it on a
    // thread whose stack can hold it whatever the optimiser does with
    // `Box::new`.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(run)
        .expect("spawn the bench thread")
        .join()
        .expect("the bench thread panicked");
}
