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
//! ```text
//! cargo bench --bench attention                          # default target: SSE2 lanes
//! RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/v3 \
//!     cargo bench --bench attention                      # AVX2 + FMA lanes
//! cargo bench --bench attention -- N256                  # one shape (criterion filter)
//! ```

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

    c.final_summary();
    summary(started);
}
