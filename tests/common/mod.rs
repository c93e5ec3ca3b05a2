//! Test glue shared by the suites: one `Kernel` signature for every causal
//! attention implementation (the runtime API, the reference, and each
//! fixed-size function at one shape), running a kernel on a `Case`, the
//! contract check, and the property checks as functions returning `Err` on a
//! violation — so that each suite can also show, on a deliberately broken
//! kernel, that the check fails.
//!
//! Each test binary uses part of this module. One file per job: `fixed`
//! (the fixed-size functions as kernels), `running` (running kernels,
//! comparing results), `exact` and `near_exact` (the property checks),
//! `broken` (kernels each check must catch).
#![allow(dead_code, unused_imports)]

mod broken;
mod exact;
mod fixed;
mod near_exact;
mod running;

pub use broken::*;
pub use exact::*;
pub use fixed::*;
pub use near_exact::*;
pub use running::*;

use std::sync::atomic::{AtomicU32, Ordering};

use microattn::reference::{self, check_contract_with_mass, check_error_bound};
use microattn::strategies::Case;
use microattn::{Error, Shape, default_scale};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// Every causal attention implementation, in the runtime calling convention.
pub type Kernel = fn(&Shape, &[f32], &[f32], &[f32], &mut [f32]) -> Result<(), Error>;

/// The fast runtime API.
pub const FAST: Kernel = microattn::causal_attention_dyn;
/// The textbook reference of the runtime API (naive32).
pub const NAIVE: Kernel = reference::causal_attention_dyn;

/// A property check's verdict: `Err` says what broke, where.
pub type Verdict = Result<(), String>;

/// Lifts a verdict into proptest's failure type.
pub fn prop(v: Verdict) -> Result<(), TestCaseError> {
    v.map_err(TestCaseError::fail)
}

/// The proptest configuration of every suite: `cases` cases (or
/// `PROPTEST_CASES` from the environment, for longer soak runs), failures
/// saved to `regressions` (a file under `proptest-regressions/`, committed,
/// replayed first on every run).
pub fn config(cases: u32, regressions: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    }
}

/// A proptest runner with [`config`].
pub fn runner(cases: u32, regressions: &'static str) -> TestRunner {
    TestRunner::new(config(cases, regressions))
}
