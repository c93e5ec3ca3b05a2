//! The accuracy contract (stated in `reference::error_bound` and
//! `reference::check_contract_with_mass`), for every public kernel, against
//! the f64 oracle (`common::contract`): the a-priori bound value by value,
//! and the precision check against the naive f32 reference's own error. The
//! weights and softmax, bit-identical to the reference's, are held to the
//! precision check's `max|ref64|` form, `check_contract`. The runtime API is
//! held to it on the whole grid
//! (`strategies::grid`), the fixed-size functions on a set of instances that
//! uses every N, every D and every `(H, KVH)` of the grid, each with ordinary
//! entries and with large ones (scores up to ±1e4).
//!
//! Nothing here compares the fast kernels with the reference bit for bit:
//! lanes and fused multiply-add round differently.

mod common;

use common::{
    FAST, Kernel, NAIVE, biased, contract, error_bound, fixed_kernels, fixed_softmax,
    fixed_weights, leaky, oracle, overshooting, prop, run, runner,
};
use microattn::Shape;
use microattn::reference::{check_contract, check_error_bound};
use microattn::strategies::{
    Case, HEAD_DIMS, HEAD_GROUPS, Magnitude, SEQ_LENS, case, fixed_case, grid, grid_case,
    grid_shape, scale, values,
};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/accuracy.txt";

/// Entries in `[-1, 1]` or `[-3, 3]`.
fn ordinary() -> impl Strategy<Value = Magnitude> {
    prop::sample::select(vec![Magnitude::Unit, Magnitude::Ordinary])
}

/// Entries up to `100 / D^¼`: scores up to ±1e4.
fn large() -> impl Strategy<Value = Magnitude> {
    Just(Magnitude::Large)
}

/// A grid case with a scale `t/√D`, `t ∈ [-1, 1]`.
fn scaled_grid_case(m: impl Strategy<Value = Magnitude>) -> impl Strategy<Value = Case> {
    (grid_shape(), m)
        .prop_flat_map(|(s, m)| (Just(s), Just(m), scale(s.head_dim)))
        .prop_flat_map(|(s, m, x)| case(s.with_scale(x), m.bound(s.head_dim)))
}

proptest! {
    // Each case is one grid shape; the whole grid is also swept below.
    #![proptest_config(common::config(64, REGRESSIONS))]

    #[test]
    fn dyn_contract_on_the_grid_ordinary(c in ordinary().prop_flat_map(grid_case)) {
        prop(contract(FAST, NAIVE, &c))?;
    }

    #[test]
    fn dyn_contract_on_the_grid_large(c in large().prop_flat_map(grid_case)) {
        prop(contract(FAST, NAIVE, &c))?;
    }

    #[test]
    fn dyn_contract_with_any_scale_ordinary(c in scaled_grid_case(ordinary())) {
        prop(contract(FAST, NAIVE, &c))?;
    }

    #[test]
    fn dyn_contract_with_any_scale_large(c in scaled_grid_case(large())) {
        prop(contract(FAST, NAIVE, &c))?;
    }
}

/// Every shape of the grid once, with deterministic entries of the magnitude
/// `magnitude(seed)`; all failures are listed.
fn contract_on_every_grid_shape(magnitude: fn(usize) -> Magnitude) {
    let mut failures = Vec::new();
    let shapes = grid();
    for (seed, &shape) in shapes.iter().enumerate() {
        let m = magnitude(seed);
        let c = fixed_case(shape, m.bound(shape.head_dim), seed as u64);
        if let Err(e) = contract(FAST, NAIVE, &c) {
            failures.push(format!("{m:?} seed {seed}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        shapes.len(),
        failures.join("\n")
    );
}

/// Entries in `[-1, 1]` and `[-3, 3]`, alternately.
#[test]
#[cfg_attr(
    miri,
    ignore = "550 shapes up to N = D = 64: hours under Miri; the proptest grid tests run the same kernel paths"
)]
fn dyn_contract_on_every_grid_shape_ordinary() {
    contract_on_every_grid_shape(|seed| {
        if seed % 2 == 0 {
            Magnitude::Unit
        } else {
            Magnitude::Ordinary
        }
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "550 shapes up to N = D = 64: hours under Miri; the proptest grid tests run the same kernel paths"
)]
fn dyn_contract_on_every_grid_shape_large() {
    contract_on_every_grid_shape(|_| Magnitude::Large);
}

/// `causal_attention`, `causal_attention_scaled`, `causal_multi_head` and
/// `causal_multi_head_scaled` at every instance of `fixed_kernels`, against
/// the fixed-size reference function of the same name.
fn fixed_size_contract(magnitude: fn() -> BoxedStrategy<Magnitude>) {
    for f in fixed_kernels() {
        let d = f.shape.head_dim;
        let strategy = (magnitude(), scale(d)).prop_flat_map(move |(m, x)| {
            let shape = if f.scaled {
                f.shape.with_scale(x)
            } else {
                f.shape
            };
            case(shape, m.bound(d))
        });
        runner(4, REGRESSIONS)
            .run(&strategy, |c| prop(contract(f.fast, f.naive, &c)))
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
}

#[test]
fn fixed_size_contract_ordinary() {
    fixed_size_contract(|| ordinary().boxed());
}

#[test]
fn fixed_size_contract_large() {
    fixed_size_contract(|| large().boxed());
}

/// `attention_weights` at every instance of `fixed_weights`, against
/// `reference::attention_weights` and `reference::attention_weights_f64`.
fn weights_contract(magnitude: fn() -> BoxedStrategy<Magnitude>) {
    for w in fixed_weights() {
        let strategy = (magnitude(), scale(w.d)).prop_flat_map(move |(m, x)| {
            let b = m.bound(w.d);
            (values(b, w.n * w.d), values(b, w.n * w.d), Just(x))
        });
        runner(8, REGRESSIONS)
            .run(&strategy, |(q, k, x)| {
                let r = (w.run)(&q, &k, x);
                prop(check_contract(&r.fast, &r.naive, &r.oracle).map_err(|e| e.to_string()))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", w.name));
    }
}

#[test]
fn attention_weights_contract_ordinary() {
    weights_contract(|| ordinary().boxed());
}

#[test]
fn attention_weights_contract_large() {
    weights_contract(|| large().boxed());
}

/// `softmax` at every N of the grid, on rows of scores up to ±1, ±30 and
/// ±1e4, against `reference::softmax` and `reference::softmax_f64`.
#[test]
fn softmax_contract() {
    for (n, run_softmax) in fixed_softmax() {
        let strategy =
            prop::sample::select(vec![1.0f32, 30.0, 1.0e4]).prop_flat_map(move |b| values(b, n));
        runner(32, REGRESSIONS)
            .run(&strategy, |row| {
                let r = run_softmax(&row);
                prop(check_contract(&r.fast, &r.naive, &r.oracle).map_err(|e| e.to_string()))
            })
            .unwrap_or_else(|e| panic!("softmax::<{n}>: {e}"));
    }
}

/// The fixed-size instances use every N, every D and every `(H, KVH)` of the
/// grid, one-head and multi-head functions alike, and `attention_weights` and
/// `softmax` every N (and D).
#[test]
fn fixed_size_instances_cover_the_grid() {
    let fixed = fixed_kernels();
    for multi in [false, true] {
        for scaled in [false, true] {
            let shapes: Vec<Shape> = fixed
                .iter()
                .filter(|f| f.scaled == scaled && f.name.starts_with("causal_multi_head") == multi)
                .map(|f| f.shape)
                .collect();
            assert!(
                SEQ_LENS
                    .iter()
                    .all(|&n| shapes.iter().any(|s| s.q_len == n))
            );
            assert!(
                HEAD_DIMS
                    .iter()
                    .all(|&d| shapes.iter().any(|s| s.head_dim == d))
            );
            if multi {
                assert!(
                    HEAD_GROUPS
                        .iter()
                        .all(|&g| shapes.iter().any(|s| (s.heads, s.kv_heads) == g))
                );
            }
        }
    }
    let weights = fixed_weights();
    assert!(SEQ_LENS.iter().all(|&n| weights.iter().any(|w| w.n == n)));
    assert!(HEAD_DIMS.iter().all(|&d| weights.iter().any(|w| w.d == d)));
    let softmax: Vec<usize> = fixed_softmax().iter().map(|&(n, _)| n).collect();
    assert_eq!(softmax, SEQ_LENS);
}

// ---------------------------------------------------------------------------
// The contract can fail.
// ---------------------------------------------------------------------------

/// `check_contract` is the written inequality: an output off by just more
/// than the bound is rejected, one off by just less is accepted.
#[test]
fn check_contract_is_the_written_bound() {
    let c = fixed_case(Shape::new(17, 17, 2, 1, 9), 3.0, 1);
    let (out, naive, ref64) = (run(FAST, &c), run(NAIVE, &c), oracle(&c));
    let naive_err = naive
        .iter()
        .zip(&ref64)
        .map(|(&a, &r)| (f64::from(a) - r).abs())
        .fold(0.0, f64::max);
    let ref_max = ref64.iter().map(|r| r.abs()).fold(0.0, f64::max);
    let bound = 4.0 * naive_err + 4.0 * f64::from(f32::EPSILON) * ref_max;
    assert!(bound > 0.0);
    check_contract(&out, &naive, &ref64).expect("the fast kernel meets the contract here");

    // Put the last value just beyond, then just within, the bound.
    let i = out.len() - 1;
    let mut off = out.clone();
    off[i] = (ref64[i] + 1.01 * bound) as f32;
    let v = check_contract(&off, &naive, &ref64).expect_err("1.01 × bound must fail");
    assert_eq!(v.index, i);
    off[i] = (ref64[i] + 0.9 * bound) as f32;
    check_contract(&off, &naive, &ref64).expect("0.9 × bound must pass");

    // A NaN where the oracle is finite always fails.
    off[i] = f32::NAN;
    assert!(check_contract(&off, &naive, &ref64).is_err());
}

/// `check_error_bound` is the written inequality, value by value: an output
/// off by just more than its bound is rejected, one off by just less is
/// accepted, and a NaN where the oracle is finite always fails.
#[test]
fn check_error_bound_is_the_written_bound() {
    let c = fixed_case(Shape::new(17, 17, 2, 1, 9), 3.0, 1);
    let (out, ref64, bound) = (run(FAST, &c), oracle(&c), error_bound(&c));
    assert!(bound.iter().all(|&b| b > 0.0 && b.is_finite()));
    check_error_bound(&out, &ref64, &bound).expect("the fast kernel meets the bound");
    let i = out.len() / 2;
    let mut off = out.clone();
    off[i] = (ref64[i] + 1.01 * bound[i]) as f32;
    let v = check_error_bound(&off, &ref64, &bound).expect_err("1.01 × bound must fail");
    assert_eq!(v.index, i);
    off[i] = (ref64[i] + 0.9 * bound[i]) as f32;
    check_error_bound(&off, &ref64, &bound).expect("0.9 × bound must pass");
    off[i] = f32::NAN;
    assert!(check_error_bound(&off, &ref64, &bound).is_err());
}

/// The a-priori bound on its own catches kernels that are slightly wrong
/// where scores are of ordinary size (with scores up to ±1e4 the scores'
/// own rounding makes it loose, and the precision check catches them: the
/// test below).
#[test]
fn error_bound_rejects_broken_kernels() {
    for magnitude in [Magnitude::Unit, Magnitude::Ordinary] {
        let c = fixed_case(Shape::new(9, 9, 4, 2, 8), magnitude.bound(8), 2);
        let (ref64, bound) = (oracle(&c), error_bound(&c));
        for (name, kernel) in [("biased", biased as Kernel), ("leaky", leaky)] {
            let out = run(kernel, &c);
            assert!(
                check_error_bound(&out, &ref64, &bound).is_err(),
                "{name}, {magnitude:?}"
            );
        }
        check_error_bound(&run(FAST, &c), &ref64, &bound).expect("the real kernel passes");
    }
}

/// The contract harness catches kernels that are slightly wrong on
/// ordinary inputs (where the precision check applies), and kernels that
/// are plainly wrong on large ones (where only the a-priori bound does).
#[test]
fn contract_rejects_broken_kernels() {
    for magnitude in Magnitude::ALL {
        let c = fixed_case(Shape::new(9, 9, 4, 2, 8), magnitude.bound(8), 2);
        if magnitude == Magnitude::Large {
            assert!(contract(overshooting, NAIVE, &c).is_err(), "overshooting");
        } else {
            assert!(
                contract(biased, NAIVE, &c).is_err(),
                "biased, {magnitude:?}"
            );
            assert!(contract(leaky, NAIVE, &c).is_err(), "leaky, {magnitude:?}");
        }
        contract(FAST, NAIVE, &c).expect("the real kernel passes");
    }
}
