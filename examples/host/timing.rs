//! Fast against reference: `microattn::causal_attention` against
//! `microattn::reference::causal_attention` on two shapes, one head, each
//! checked against the f64 oracle before it is timed.

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use microattn::{Shape, causal_attention, reference};

use crate::failure::Failure;
use crate::rng::XorShift;
use crate::verify;

/// Seed of the inputs (uniform in [-1, 1)).
const SEED: u64 = 0x00C0_FFEE;

/// How many calls are made per kernel and shape.
pub struct Runs {
    /// Calls before timing starts (caches, page faults, clocks).
    warm_up: usize,
    /// Timed calls; the median is reported.
    timed: usize,
    /// Why the figures should not be trusted, if they should not.
    caveat: Option<&'static str>,
}

impl Runs {
    /// A release build times properly; a debug build calls each kernel once
    /// (the reference at N = 1024 takes seconds there).
    pub fn for_this_build() -> Self {
        if cfg!(debug_assertions) {
            Runs {
                warm_up: 0,
                timed: 1,
                caveat: Some("a debug build: use --release for real figures"),
            }
        } else {
            Runs {
                warm_up: 3,
                timed: 11,
                caveat: None,
            }
        }
    }

    /// "median of 11 calls after 3 warm-up calls", and the caveat if any.
    pub fn describe(&self) -> String {
        let mut text = if self.timed == 1 {
            "one call each".to_owned()
        } else {
            format!(
                "median of {} calls after {} warm-up calls",
                self.timed, self.warm_up
            )
        };
        if let Some(caveat) = self.caveat {
            text = format!("{text} ({caveat})");
        }
        text
    }
}

/// One shape's result.
struct Timing {
    tokens: usize,
    head_dim: usize,
    reference_secs: f64,
    fast_secs: f64,
    /// `max |fast − ref64|` of the checked output.
    error: f64,
}

/// Times both kernels on (N, D) = (256, 64) and (1024, 64), one head, and
/// prints a table, the lanes of this build and how to get wider ones.
///
/// # Errors
/// A broken accuracy contract, or stdout that cannot be written.
pub fn run(out: &mut dyn Write) -> Result<(), Failure> {
    let mut rng = XorShift::new(SEED);
    let runs = Runs::for_this_build();
    print_header(out, &runs).map_err(Failure::output)?;
    let row = measure::<256, 64>(&mut rng, &runs)?;
    print_row(out, &row).map_err(Failure::output)?;
    let row = measure::<1024, 64>(&mut rng, &runs)?;
    print_row(out, &row).map_err(Failure::output)?;
    print_lanes(out).map_err(Failure::output)
}

/// `N` random rows of `D` values, on the heap (`N·D·4` bytes would be a lot
/// of stack).
fn random_rows<const N: usize, const D: usize>(rng: &mut XorShift) -> Box<[[f32; D]; N]> {
    let mut rows = zero_rows::<N, D>();
    rng.fill(rows.as_flattened_mut());
    rows
}

/// `N` zero rows of `D` values, on the heap.
fn zero_rows<const N: usize, const D: usize>() -> Box<[[f32; D]; N]> {
    match vec![[0.0f32; D]; N].into_boxed_slice().try_into() {
        Ok(rows) => rows,
        Err(_) => unreachable!("a Vec of N rows is an [_; N]"),
    }
}

/// Checks the fast kernel on one shape, then times it and the reference.
fn measure<const N: usize, const D: usize>(
    rng: &mut XorShift,
    runs: &Runs,
) -> Result<Timing, Failure> {
    let (q, k, v) = (random_rows::<N, D>(rng), random_rows(rng), random_rows(rng));
    let mut fast = zero_rows::<N, D>();
    let mut naive = zero_rows::<N, D>();
    causal_attention(&q, &k, &v, &mut fast);
    reference::causal_attention(&q, &k, &v, &mut naive);
    let inputs = (q.as_flattened(), k.as_flattened(), v.as_flattened());
    let shape = Shape::new(N, N, 1, 1, D);
    let agreement = verify::contract(&shape, inputs, fast.as_flattened(), naive.as_flattened())?;

    let reference_secs = median_secs(runs, || {
        reference::causal_attention(black_box(&q), black_box(&k), black_box(&v), &mut naive);
        black_box(&mut naive);
    });
    let fast_secs = median_secs(runs, || {
        causal_attention(black_box(&q), black_box(&k), black_box(&v), &mut fast);
        black_box(&mut fast);
    });
    Ok(Timing {
        tokens: N,
        head_dim: D,
        reference_secs,
        fast_secs,
        error: agreement.vs_oracle,
    })
}

/// The median wall time of `runs.timed` calls, after the warm-up.
pub fn median_secs(runs: &Runs, mut call: impl FnMut()) -> f64 {
    for _ in 0..runs.warm_up {
        call();
    }
    let mut secs: Vec<f64> = (0..runs.timed)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The causal FLOP count `4·H·D·N(N+1)/2`: per visible query/key pair and
/// dimension, a multiply and an add for the score, and again for the value.
fn flops(tokens: usize, heads: usize, head_dim: usize) -> f64 {
    4.0 * (heads * head_dim) as f64 * (tokens * (tokens + 1)) as f64 / 2.0
}

/// The title and column names of the table.
fn print_header(out: &mut dyn Write, runs: &Runs) -> std::io::Result<()> {
    writeln!(
        out,
        "\nFast kernel against the textbook reference, one head;\n{}.",
        runs.describe()
    )?;
    writeln!(
        out,
        "{:>11} {:>13} {:>8} {:>10} {:>8} {:>9} {:>14}",
        "(N, D)", "reference µs", "GFLOP/s", "fast µs", "GFLOP/s", "speed-up", "max|fast-f64|"
    )
}

/// One shape: time and GFLOP/s of each kernel, speed-up, checked error.
fn print_row(out: &mut dyn Write, t: &Timing) -> std::io::Result<()> {
    let flop = flops(t.tokens, 1, t.head_dim);
    let gflops = |secs: f64| flop / secs / 1e9;
    writeln!(
        out,
        "{:>11} {:>13.1} {:>8.2} {:>10.1} {:>8.2} {:>8.1}x {:>14.2e}",
        format!("({}, {})", t.tokens, t.head_dim),
        t.reference_secs * 1e6,
        gflops(t.reference_secs),
        t.fast_secs * 1e6,
        gflops(t.fast_secs),
        t.reference_secs / t.fast_secs,
        t.error,
    )
}

/// The lanes this build of the kernel runs on, and how to get others.
fn print_lanes(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Each fast output met the accuracy contract (reference::check_contract)\n\
         before it was timed.\n\
         Lanes in this build: {}.\n{}",
        microattn::LANE_NAME,
        hint()
    )
}

/// How to get other lanes: `wide` and the kernel pick them when they are
/// compiled.
fn hint() -> &'static str {
    "The lanes are fixed at compile time: this repository's .cargo/config.toml builds\n\
     for this CPU (-C target-cpu=native); RUSTFLAGS=\"-C target-cpu=x86-64\" gives the\n\
     baseline SSE2 build (give it its own CARGO_TARGET_DIR)."
}
