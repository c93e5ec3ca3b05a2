//! Naive (the textbook `microattn::reference`) against fast (the fused
//! online-softmax kernel) on a ladder of shapes.
//!
//! Each shape is one criterion group, `causal/N{N}_D{D}_H{H}`, with a `naive`
//! and a `fast` entry. The throughput is the causal FLOP count
//! `4·H·D·N(N+1)/2` (per visible query/key pair and dimension: a multiply
//! and an add in the score dot product, a multiply and an add in the value
//! accumulation; `exp` and the divisions are not counted) given as
//! `Throughput::Elements`, so criterion's `elem/s` reads as FLOP/s.
//!
//! Inputs are seeded (xorshift64, values in [-1, 1)) and the fast output is
//! held to the accuracy contract (`reference::check_contract` against the
//! f64 oracle) before anything is timed: a benchmark of a wrong kernel is
//! worthless.
//!
//! A peak probe, `peak/fma`, runs first: independent FMA chains on the
//! build's widest vectors (16 lanes with AVX-512F), so the summary can state
//! each shape's share of the peak measured in the same run and build.
//!
//! With the `rayon` feature, the group `parallel/N1024_D64_H8` times the
//! prefill `causal_multi_head::<1024, 8, 8, 64>` three ways: the plain call
//! (`plain`), `microattn::parallel`'s call in a pool of one thread
//! (`threads_1`) and in rayon's global pool, a thread per core
//! (`threads_all`; restrict the cores with `taskset`). Its outputs are
//! checked bit for bit against the plain call's, which the contract holds
//! at `N1024_D64_H1` and `N256_D64_H8`; the summary adds the speed-up of
//! all threads over the plain call.
//!
//! The groups `scored/N256_D64_H8` and `scored_step/L2048_D64_H8` time
//! each `Scoring` setting against the plain call (`attention/scored.rs`).
//!
//! ```text
//! cargo bench --bench attention                          # default target: SSE2 lanes
//! RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/v3 \
//!     cargo bench --bench attention                      # AVX2 + FMA lanes
//! cargo bench --bench attention -- N256                  # one shape (criterion filter)
//! cargo bench --features rayon --bench attention -- parallel   # one thread vs all cores
//! ```

#[path = "attention/scored.rs"]
mod scored;
mod support;

use std::fmt::Debug;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use microattn::Shape;
use microattn::reference::{self, causal_attention_f64, check_contract};
use support::{PEAK_LANES, XorShift, bench_peak, criterion_home, median_ns, peak_flops};

/// Every shape benchmarked, as `(N, D, H)`, in the order of the summary.
const SHAPES: [(usize, usize, usize); 8] = [
    (16, 16, 1),
    (64, 32, 1),
    (128, 64, 1),
    (256, 64, 1),
    (512, 64, 1),
    (1024, 64, 1),
    (256, 64, 8),
    (64, 16, 4),
];

/// The causal FLOP count `4·H·D·N(N+1)/2`.
fn flops(n: usize, d: usize, h: usize) -> u64 {
    (4 * h * d * n * (n + 1) / 2) as u64
}

fn group_name(n: usize, d: usize, h: usize) -> String {
    format!("causal/N{n}_D{d}_H{h}")
}

/// `[x; N]` on the heap: the big shapes would overflow the stack.
fn boxed<T: Clone + Debug, const N: usize>(x: T) -> Box<[T; N]> {
    vec![x; N]
        .into_boxed_slice()
        .try_into()
        .expect("a vec of N elements converts to [T; N]")
}

/// A seed per shape, so that every shape gets its own inputs.
fn seed(n: usize, d: usize, h: usize) -> u64 {
    0x9E37_79B9_7F4A_7C15 ^ (((n as u64) << 32) | ((d as u64) << 16) | h as u64)
}

/// Holds the fast output to the accuracy contract; panics otherwise.
fn check(shape: &Shape, (q, k, v): (&[f32], &[f32], &[f32]), fast: &[f32], naive: &[f32]) {
    let name = group_name(shape.q_len, shape.head_dim, shape.heads);
    let mut ref64 = vec![0.0f64; fast.len()];
    if let Err(e) = causal_attention_f64(shape, q, k, v, &mut ref64) {
        panic!("{name}: the f64 oracle rejected the benchmark's shape: {e}");
    }
    if let Err(e) = check_contract(fast, naive, &ref64) {
        panic!(
            "{name}: the fast kernel breaks the accuracy contract ({e}); refusing to benchmark a wrong kernel"
        );
    }
}

/// Sampling for one group: the big shapes (naive ≥ ~10 ms) get flat sampling
/// with the minimum 10 samples, so that the run stays a few minutes.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize, d: usize, h: usize) {
    let f = flops(n, d, h);
    group.throughput(Throughput::Elements(f));
    if f >= 10_000_000 {
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    } else {
        group.sample_size(50);
    }
}

/// A causal attention function of the fixed-size API with `K = V = Q` array
/// types (one head, or `H` heads over `KVH = H`).
type Kernel<A> = fn(&A, &A, &A, &mut A);

/// Checks `fast` against the contract on seeded inputs, then times `naive`
/// and `fast` as the group `causal/N{n}_D{d}_H{h}`. `A` is the input array
/// type and `flat` views one as its runtime layout.
fn bench_pair<A: Clone>(
    c: &mut Criterion,
    (n, d, h): (usize, usize, usize),
    zero: Box<A>,
    flat: fn(&mut A) -> &mut [f32],
    naive: Kernel<A>,
    fast: Kernel<A>,
) {
    let mut rng = XorShift(seed(n, d, h));
    let (mut q, mut k, mut v) = (zero.clone(), zero.clone(), zero);
    for x in [&mut q, &mut k, &mut v] {
        rng.fill(flat(x));
    }
    let (mut naive_out, mut fast_out) = (q.clone(), q.clone());
    naive(&q, &k, &v, &mut naive_out);
    fast(&q, &k, &v, &mut fast_out);
    check(
        &Shape::new(n, n, h, h, d),
        (flat(&mut q), flat(&mut k), flat(&mut v)),
        flat(&mut fast_out),
        flat(&mut naive_out),
    );

    let mut group = c.benchmark_group(group_name(n, d, h));
    configure(&mut group, n, d, h);
    for (name, kernel, out) in [
        ("naive", naive, &mut naive_out),
        ("fast", fast, &mut fast_out),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                kernel(
                    black_box(&q),
                    black_box(&k),
                    black_box(&v),
                    black_box(&mut **out),
                )
            });
        });
    }
    group.finish();
}

/// One head: `reference::causal_attention` against `causal_attention`.
fn bench_single<const N: usize, const D: usize>(c: &mut Criterion) {
    bench_pair::<[[f32; D]; N]>(
        c,
        (N, D, 1),
        boxed([0.0f32; D]),
        |x| x.as_flattened_mut(),
        reference::causal_attention,
        microattn::causal_attention,
    );
}

/// H heads over KVH = H key/value heads: `reference::causal_multi_head`
/// against `causal_multi_head`.
fn bench_multi<const N: usize, const H: usize, const D: usize>(c: &mut Criterion) {
    bench_pair::<[[[f32; D]; H]; N]>(
        c,
        (N, D, H),
        boxed([[0.0f32; D]; H]),
        |x| x.as_flattened_mut().as_flattened_mut(),
        reference::causal_multi_head::<N, H, H, D>,
        microattn::causal_multi_head::<N, H, H, D>,
    );
}

/// The parallel prefill's shape `(N, D, H)` (`KVH = H`).
#[cfg(feature = "rayon")]
const PARALLEL: (usize, usize, usize) = (1024, 64, 8);

/// The parallel prefill's group name.
#[cfg(feature = "rayon")]
fn parallel_group() -> String {
    let (n, d, h) = PARALLEL;
    format!("parallel/N{n}_D{d}_H{h}")
}

/// The prefill [`PARALLEL`] three ways (see the bench docs), after checking
/// that the parallel outputs are the plain call's bits.
#[cfg(feature = "rayon")]
fn bench_parallel(c: &mut Criterion) {
    const N: usize = PARALLEL.0;
    const D: usize = PARALLEL.1;
    const H: usize = PARALLEL.2;
    type Tokens = [[[f32; D]; H]; N];
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a rayon pool of one thread");
    let all = rayon::current_num_threads();

    let mut rng = XorShift(seed(N, D, H));
    let (mut q, mut k, mut v) = (
        boxed::<_, N>([[0.0f32; D]; H]),
        boxed::<_, N>([[0.0f32; D]; H]),
        boxed::<_, N>([[0.0f32; D]; H]),
    );
    for x in [&mut q, &mut k, &mut v] {
        rng.fill(x.as_flattened_mut().as_flattened_mut());
    }
    let mut plain: Box<Tokens> = boxed([[f32::NAN; D]; H]);
    microattn::causal_multi_head(&q, &k, &v, &mut plain);
    let mut out = plain.clone();
    for threads in [1, all] {
        out.as_flattened_mut().as_flattened_mut().fill(f32::NAN);
        if threads == 1 {
            one.install(|| microattn::parallel::causal_multi_head(&q, &k, &v, &mut out));
        } else {
            microattn::parallel::causal_multi_head(&q, &k, &v, &mut out);
        }
        let same = out
            .as_flattened()
            .as_flattened()
            .iter()
            .zip(plain.as_flattened().as_flattened())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{}: {threads} threads differ from the plain call; refusing to benchmark a wrong kernel",
            parallel_group()
        );
    }

    let mut group = c.benchmark_group(parallel_group());
    configure(&mut group, N, D, H);
    group.bench_function("plain", |b| {
        b.iter(|| {
            microattn::causal_multi_head(
                black_box(&q),
                black_box(&k),
                black_box(&v),
                black_box(&mut out),
            )
        });
    });
    group.bench_function("threads_1", |b| {
        b.iter(|| {
            one.install(|| {
                microattn::parallel::causal_multi_head(
                    black_box(&q),
                    black_box(&k),
                    black_box(&v),
                    black_box(&mut out),
                )
            })
        });
    });
    group.bench_function("threads_all", |b| {
        b.iter(|| {
            microattn::parallel::causal_multi_head(
                black_box(&q),
                black_box(&k),
                black_box(&v),
                black_box(&mut out),
            )
        });
    });
    group.finish();
}

/// The parallel prefill's medians in this run: time and GFLOP/s of each
/// way, and the speed-up of all threads over the plain call.
#[cfg(feature = "rayon")]
fn parallel_summary(since: SystemTime) {
    let Some(home) = criterion_home() else { return };
    let name = parallel_group();
    let ways = ["plain", "threads_1", "threads_all"].map(|f| median_ns(&home, &name, f, since));
    let [Some(plain), Some(one), Some(all)] = ways else {
        return;
    };
    let (n, d, h) = PARALLEL;
    let f = flops(n, d, h) as f64;
    let threads = rayon::current_num_threads();
    println!(
        "
parallel prefill ({}), medians:",
        microattn::LANE_NAME
    );
    println!(
        "{:<22} {:>12} {:>8} {:>12} {:>8} {:>12} {:>8} {:>9}",
        "shape",
        "plain µs",
        "GFLOP/s",
        "1 thread µs",
        "GFLOP/s",
        format!("{threads} thr. µs"),
        "GFLOP/s",
        "speed-up"
    );
    println!(
        "{name:<22} {:>12.1} {:>8.2} {:>12.1} {:>8.2} {:>12.1} {:>8.2} {:>8.2}x",
        plain / 1e3,
        f / plain,
        one / 1e3,
        f / one,
        all / 1e3,
        f / all,
        plain / all
    );
}

/// A table of the medians measured in this run, with GFLOP/s, the share of
/// the peak probe's GFLOP/s (when it ran) and the fast/naive speed-up.
fn summary(since: SystemTime) {
    let Some(home) = criterion_home() else { return };
    let peak = median_ns(&home, "peak", "fma", since).map(|ns| peak_flops() as f64 / ns);
    let mut rows = Vec::new();
    for (n, d, h) in SHAPES {
        let name = group_name(n, d, h);
        if let (Some(naive), Some(fast)) = (
            median_ns(&home, &name, "naive", since),
            median_ns(&home, &name, "fast", since),
        ) {
            let f = flops(n, d, h) as f64;
            let share = peak.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * f / fast / p));
            rows.push(format!(
                "{name:<22} {:>12.2} {:>8.2} {:>12.3} {:>8.2} {:>7} {:>8.1}x",
                naive / 1e3,
                f / naive,
                fast / 1e3,
                f / fast,
                share,
                naive / fast
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    println!("\nsummary ({}), medians:", microattn::LANE_NAME);
    match peak {
        Some(p) => println!("peak probe ({PEAK_LANES}-wide FMA, 1 core): {p:.1} GFLOP/s"),
        None => println!("peak probe not run (filtered out): no % of peak"),
    }
    println!(
        "{:<22} {:>12} {:>8} {:>12} {:>8} {:>7} {:>9}",
        "shape", "naive µs", "GFLOP/s", "fast µs", "GFLOP/s", "% peak", "speed-up"
    );
    rows.iter().for_each(|r| println!("{r}"));
}

fn main() {
    println!(
        "microattn causal attention: naive (reference) vs fast, lanes: {}",
        microattn::LANE_NAME
    );
    println!(
        "throughput = causal FLOPs 4·H·D·N(N+1)/2 as criterion elements: elem/s reads as FLOP/s"
    );
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
        .configure_from_args();

    bench_peak(&mut c);
    bench_single::<16, 16>(&mut c);
    bench_single::<64, 32>(&mut c);
    bench_single::<128, 64>(&mut c);
    bench_single::<256, 64>(&mut c);
    bench_single::<512, 64>(&mut c);
    bench_single::<1024, 64>(&mut c);
    bench_multi::<256, 8, 64>(&mut c);
    bench_multi::<64, 4, 16>(&mut c);
    #[cfg(feature = "rayon")]
    bench_parallel(&mut c);
    scored::bench(&mut c);

    c.final_summary();
    summary(started);
    #[cfg(feature = "rayon")]
    parallel_summary(started);
    scored::summary(started);
}
