//! Helpers shared by the bench targets (`mod support;` in each): seeded
//! inputs, the FMA peak probe on the build's widest vectors, and criterion's
//! medians read back for the summaries. Every item here is used by every
//! bench.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::{Criterion, Throughput};

/// xorshift64 (Marsaglia), enough for reproducible benchmark inputs.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value, uniform in [-1, 1) with 24 random bits.
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Overwrites every value of `xs` with the next ones.
    pub fn fill(&mut self, xs: &mut [f32]) {
        xs.iter_mut().for_each(|x| *x = self.next_f32());
    }
}

/// The widest vectors of this build, which the peak probes run on:
/// `f32x16` where the build has AVX-512F (the kernel's lanes too),
/// `f32x8` elsewhere.
#[cfg(target_feature = "avx512f")]
pub type PeakLane = wide::f32x16;
/// The widest vectors of this build (see above).
#[cfg(not(target_feature = "avx512f"))]
pub type PeakLane = wide::f32x8;

/// Values in one [`PeakLane`].
pub const PEAK_LANES: usize = if cfg!(target_feature = "avx512f") {
    16
} else {
    8
};

/// Where criterion writes its results (the same order of preference as
/// criterion: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, then the
/// target directory this binary sits in).
pub fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir).join("criterion"));
    }
    // <target>/release/deps/<bench>-<hash>
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median time in ns of one benchmark, if criterion measured it in this
/// run (not in `--test` / `--list` mode, not filtered out).
pub fn median_ns(home: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = home
        .join(group.replace('/', "_"))
        .join(function)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Independent accumulators in the peak probe: enough to cover the FMA
/// latency (4–5 cycles) times the FMA units (2) of current x86 and Arm cores.
const PEAK_CHAINS: usize = 12;
/// Steps of the peak probe per call.
const PEAK_STEPS: u64 = 10_000;

/// The peak probe: `PEAK_CHAINS` independent `acc = acc·a + b` chains on
/// the build's widest `wide` vectors (`PeakLane`) and their FMA
/// (`mul_add`, two instructions where the target has no FMA). FLOPs per
/// call: `2 · PEAK_LANES · PEAK_CHAINS · PEAK_STEPS`.
#[inline(never)]
fn peak_probe(a: PeakLane, b: PeakLane) -> f32 {
    let mut acc = [PeakLane::splat(1.0); PEAK_CHAINS];
    for _ in 0..PEAK_STEPS {
        for x in acc.iter_mut() {
            *x = x.mul_add(a, b);
        }
    }
    acc.iter().map(|x| x.reduce_add()).sum()
}

/// FLOPs of one [`peak_probe`] call.
pub fn peak_flops() -> u64 {
    2 * PEAK_LANES as u64 * PEAK_CHAINS as u64 * PEAK_STEPS
}

/// Times the peak probe as the group `peak/fma` (its elem/s is the
/// machine's lane FMA peak for this build, on one core).
pub fn bench_peak(c: &mut Criterion) {
    let mut group = c.benchmark_group("peak");
    group.throughput(Throughput::Elements(peak_flops()));
    group.bench_function("fma", |bench| {
        bench.iter(|| {
            peak_probe(
                black_box(PeakLane::splat(0.999_9)),
                black_box(PeakLane::splat(1.0e-4)),
            )
        });
    });
    group.finish();
}
