//! Runs one kernel in a loop, for `perf` and `valgrind`.
//!
//! ```text
//! cargo build --release --example profile
//! target/release/examples/profile n256_d64 2000            # fast kernel, 2000 calls
//! target/release/examples/profile n256_d64 200 naive       # the reference instead
//! perf record -g target/release/examples/profile n1024_d64 200 && perf report
//! valgrind --tool=callgrind target/release/examples/profile n256_d64 20
//! target/release/examples/profile decode_l2048_kvh8 1000  # KvCache decode steps, H = 8, D = 64
//! ```
//!
//! Each shape is a never-inlined function of `microattn::entry` (the fast
//! kernel) or the textbook reference at the same shape, so the profile shows
//! it under its own name. Inputs are fixed pseudo-random values in [-1, 1);
//! the program prints the calls made, the time per call and GFLOP/s (the
//! causal count `4·H·D·N(N+1)/2`) and a checksum that keeps the work alive.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use microattn::{entry, reference};

/// A fixed-size tensor that can be made on the heap and seen flat.
trait Tensor {
    /// A zeroed tensor on the heap (the big shapes would overflow the stack).
    fn zeroed() -> Box<Self>;
    fn flat(&self) -> &[f32];
    fn flat_mut(&mut self) -> &mut [f32];
}

impl<const N: usize, const D: usize> Tensor for [[f32; D]; N] {
    fn zeroed() -> Box<Self> {
        vec![[0.0; D]; N]
            .into_boxed_slice()
            .try_into()
            .expect("N rows")
    }
    fn flat(&self) -> &[f32] {
        self.as_flattened()
    }
    fn flat_mut(&mut self) -> &mut [f32] {
        self.as_flattened_mut()
    }
}

impl<const N: usize, const H: usize, const D: usize> Tensor for [[[f32; D]; H]; N] {
    fn zeroed() -> Box<Self> {
        vec![[[0.0; D]; H]; N]
            .into_boxed_slice()
            .try_into()
            .expect("N rows")
    }
    fn flat(&self) -> &[f32] {
        self.as_flattened().as_flattened()
    }
    fn flat_mut(&mut self) -> &mut [f32] {
        self.as_flattened_mut().as_flattened_mut()
    }
}

/// A tensor of values in [-1, 1) from xorshift64.
fn random<T: Tensor + ?Sized>(seed: u64) -> Box<T> {
    let mut state = seed | 1;
    let mut t = T::zeroed();
    for x in t.flat_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *x = (state >> 40) as f32 / (1u32 << 23) as f32 - 1.0;
    }
    t
}

/// Runs `f` `iters` times on fixed inputs; returns seconds per call and a checksum.
fn time<T: Tensor>(iters: u32, f: fn(&T, &T, &T, &mut T)) -> (f64, f64) {
    let (q, k, v) = (random::<T>(1), random::<T>(2), random::<T>(3));
    let mut out = T::zeroed();
    let start = Instant::now();
    for _ in 0..iters {
        f(
            black_box(&q),
            black_box(&k),
            black_box(&v),
            black_box(&mut out),
        );
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(iters);
    let sum = out.flat().iter().map(|&x| f64::from(x)).sum();
    (secs, sum)
}

/// One shape: its name, `(N, D, H)` and how to run it fast or naive.
macro_rules! shapes {
    ($($name:literal => ($n:literal, $d:literal, $h:literal), $fast:expr, $naive:expr;)*) => {
        const NAMES: &[&str] = &[$($name),*];
        fn run(name: &str, iters: u32, naive: bool) -> Option<(usize, usize, usize, f64, f64)> {
            match name {
                $($name => {
                    let [fast, naive_fn] = [$fast as fn(&_, &_, &_, &mut _), $naive];
                    let (secs, sum) = time(iters, if naive { naive_fn } else { fast });
                    Some(($n, $d, $h, secs, sum))
                })*
                _ => None,
            }
        }
    };
}

shapes! {
    "n16_d16" => (16, 16, 1), entry::causal_n16_d16, reference::causal_attention;
    "n64_d32" => (64, 32, 1), entry::causal_n64_d32, reference::causal_attention;
    "n128_d64" => (128, 64, 1), entry::causal_n128_d64, reference::causal_attention;
    "n256_d64" => (256, 64, 1), entry::causal_n256_d64, reference::causal_attention;
    "n512_d64" => (512, 64, 1), entry::causal_n512_d64, reference::causal_attention;
    "n1024_d64" => (1024, 64, 1), entry::causal_n1024_d64, reference::causal_attention;
    "n256_h8_d64" => (256, 64, 8), entry::causal_n256_h8_d64, reference::causal_multi_head;
    "n64_h4_d16" => (64, 16, 4), entry::causal_n64_h4_d16, reference::causal_multi_head;
}

/// One decode step (`KvCache::attend`, H = 8 heads of D = 64) over `L`
/// cached positions of `KVH` key/value heads, `iters` times; returns seconds
/// per step and a checksum.
fn decode<const L: usize, const KVH: usize>(iters: u32) -> (f64, f64) {
    let mut cache = Box::new(microattn::KvCache::<L, KVH, 64>::new());
    let k = random::<[[f32; 64]; KVH]>(2);
    let v = random::<[[f32; 64]; KVH]>(3);
    for _ in 0..L {
        cache.push(&k, &v).expect("L positions fit");
    }
    let q = random::<[[f32; 64]; 8]>(1);
    let mut out = [[0.0f32; 64]; 8];
    let start = Instant::now();
    for _ in 0..iters {
        cache.attend(black_box(&q), black_box(&mut out), None, None);
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(iters);
    (secs, out.as_flattened().iter().map(|&x| f64::from(x)).sum())
}

/// The decode shapes: name, `L`, `KVH`.
const DECODE: &[(&str, usize, usize)] = &[
    ("decode_l64_kvh8", 64, 8),
    ("decode_l512_kvh8", 512, 8),
    ("decode_l2048_kvh8", 2048, 8),
    ("decode_l2048_kvh2", 2048, 2),
];

/// Runs a decode shape; `None` if `name` is not one.
fn run_decode(name: &str, iters: u32) -> Option<(usize, f64, f64)> {
    let (secs, sum) = match name {
        "decode_l64_kvh8" => decode::<64, 8>(iters),
        "decode_l512_kvh8" => decode::<512, 8>(iters),
        "decode_l2048_kvh8" => decode::<2048, 8>(iters),
        "decode_l2048_kvh2" => decode::<2048, 2>(iters),
        _ => return None,
    };
    let l = DECODE.iter().find(|d| d.0 == name).map_or(0, |d| d.1);
    Some((l, secs, sum))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!(
            "usage: profile SHAPE [CALLS] [naive]\nshapes: {}",
            NAMES.join(" ")
        );
        ExitCode::from(2)
    };
    let Some(name) = args.first() else {
        return usage();
    };
    let iters = match args.get(1).map(|s| s.parse::<u32>()) {
        None => 1000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };
    let naive = match args.get(2).map(String::as_str) {
        None => false,
        Some("naive") => true,
        Some(_) => return usage(),
    };
    if let Some((l, secs, sum)) = run_decode(name, iters) {
        let flops = (4 * 8 * 64 * l) as f64;
        println!(
            "{name}: {iters} steps, {:.3} µs/step, {:.2} GFLOP/s (checksum {sum:.6e})",
            secs * 1e6,
            flops / secs / 1e9
        );
        return ExitCode::SUCCESS;
    }
    let Some((n, d, h, secs, sum)) = run(name, iters, naive) else {
        return usage();
    };
    let flops = (4 * h * d * n * (n + 1) / 2) as f64;
    let kind = if naive { "naive" } else { "fast" };
    println!(
        "{name} {kind}: {iters} calls, {:.3} µs/call, {:.2} GFLOP/s (checksum {sum:.6e})",
        secs * 1e6,
        flops / secs / 1e9
    );
    ExitCode::SUCCESS
}
