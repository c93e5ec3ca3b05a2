//! Helpers shared by the bench targets (`mod support;` in each): seeded
//! inputs, the lanes the binary was compiled with, and criterion's medians
//! read back for the summaries. Every item here is used by every bench.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

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

/// The SIMD lanes this binary was compiled with (wide picks its lanes at
/// compile time, so this is what the kernels run on). Each bench names them
/// in its own words.
#[derive(Clone, Copy)]
pub enum Lanes {
    /// AVX2 and FMA: an `f32x8` is one ymm register.
    Avx2Fma,
    /// AVX (maybe AVX2) without FMA.
    Avx,
    /// SSE2 and nothing above it: an `f32x8` is two xmm halves, no FMA.
    Sse2,
    /// Arm NEON.
    Neon,
    /// None of these: wide's scalar arrays.
    Scalar,
}

impl Lanes {
    /// The lanes of this build.
    pub const BUILT: Self = if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        Self::Avx2Fma
    } else if cfg!(target_feature = "avx") {
        Self::Avx
    } else if cfg!(target_feature = "sse2") {
        Self::Sse2
    } else if cfg!(target_feature = "neon") {
        Self::Neon
    } else {
        Self::Scalar
    };
}

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
