//! Properties that hold up to a few roundings, each with its tolerance
//! derived in `common` (see the doc comment of each check):
//!
//! - every output value lies within `[min, max]` of its column of visible
//!   values, up to `(n + ⌈n/8⌉ + 2)·ε·max|column|`;
//! - `q = 0` gives the mean of the visible value rows, up to
//!   `(n/2 + 1)·ε·mean|vⱼ|`;
//! - the `attention_weights` of a row (and the fast `softmax` of a row) sum to
//!   1 within `(n + 1)·ε/2`, and are exactly `+0.0` above the diagonal.
//!
//! Each for the runtime API and every fixed-size instance; each check is
//! shown to fail on a deliberately broken kernel or output.

mod common;

use common::{
    FAST, fixed_kernels, fixed_softmax, fixed_weights, leaky, overshooting, prop, runner,
    weights_row_sums_to_one, within_value_range, zero_query_is_mean,
};
use microattn::Shape;
use microattn::strategies::{
    Case, Fill, Magnitude, cross_shape, fixed_case, grid_shape, scale, seeded_case, values,
};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/near_exact.txt";

/// A grid or cross (fewer queries than keys) case of any magnitude, edges
/// included.
fn any_case() -> impl Strategy<Value = Case> {
    (prop_oneof![grid_shape(), cross_shape()], Magnitude::any())
        .prop_flat_map(|(s, m)| seeded_case(s, Fill::Edgy(m.bound(s.head_dim))))
}

proptest! {
    #![proptest_config(common::config(64, REGRESSIONS))]

    #[test]
    fn dyn_output_within_visible_value_range(c in any_case()) {
        prop(within_value_range(FAST, &c))?;
    }

    #[test]
    fn dyn_zero_query_gives_the_mean(c in any_case()) {
        prop(zero_query_is_mean(FAST, &c))?;
    }

    /// The fast `softmax` row sums to 1 (its weights are the reference's bit
    /// for bit, so this holds for both).
    #[test]
    fn softmax_sums_to_one(
        (n, row) in prop::sample::select(vec![1usize, 2, 7, 8, 9, 15, 16, 17, 33, 64])
            .prop_flat_map(|n| (Just(n), prop::sample::select(vec![1.0f32, 30.0, 1.0e4])
                .prop_flat_map(move |b| values(b, n))))
    ) {
        let (_, run_softmax) = fixed_softmax().into_iter().find(|&(m, _)| m == n).unwrap();
        let r = run_softmax(&row);
        prop(weights_row_sums_to_one(&r.fast, n, &format!("softmax::<{n}>")))?;
    }
}

/// Both properties on every fixed-size instance.
#[test]
fn fixed_size_functions_stay_in_range_and_average() {
    for f in fixed_kernels() {
        let s0 = f.shape;
        let strategy = (Magnitude::any(), scale(s0.head_dim)).prop_flat_map(move |(m, x)| {
            let s = if f.scaled { s0.with_scale(x) } else { s0 };
            seeded_case(s, Fill::Edgy(m.bound(s.head_dim)))
        });
        runner(4, REGRESSIONS)
            .run(&strategy, |c| {
                prop(within_value_range(f.fast, &c))?;
                prop(zero_query_is_mean(f.fast, &c))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
}

/// `attention_weights`: rows sum to 1, exact `+0.0` above the diagonal.
#[test]
fn attention_weights_rows_sum_to_one() {
    for w in fixed_weights() {
        let strategy = (Magnitude::any(), scale(w.d)).prop_flat_map(move |(m, x)| {
            let b = m.bound(w.d);
            (values(b, w.n * w.d), values(b, w.n * w.d), Just(x))
        });
        runner(8, REGRESSIONS)
            .run(&strategy, |(q, k, x)| {
                let r = (w.run)(&q, &k, x);
                for (i, row) in r.fast.chunks_exact(w.n).enumerate() {
                    prop(weights_row_sums_to_one(row, i + 1, &format!("row {i}")))?;
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", w.name));
    }
}

// ---------------------------------------------------------------------------
// Each check can fail.
// ---------------------------------------------------------------------------

#[test]
fn range_check_catches_an_overshoot() {
    let c = fixed_case(Shape::new(9, 9, 2, 1, 9), 1.0, 6);
    within_value_range(FAST, &c).expect("the real kernel");
    assert!(within_value_range(overshooting, &c).is_err());
}

#[test]
fn mean_check_catches_a_leak() {
    let c = fixed_case(Shape::new(9, 9, 2, 1, 9), 1.0, 7);
    zero_query_is_mean(FAST, &c).expect("the real kernel");
    assert!(zero_query_is_mean(leaky, &c).is_err());
}

#[test]
fn weights_check_catches_bad_rows() {
    let ok = [0.25f32, 0.75, 0.0];
    weights_row_sums_to_one(&ok, 2, "ok").expect("a valid row");
    // Off by a few ULP of 1 more than the tolerance allows.
    let off = [0.25f32, 0.75 + 4.0 * f32::EPSILON, 0.0];
    assert!(weights_row_sums_to_one(&off, 2, "sum").is_err());
    // -0.0 above the diagonal is not the promised +0.0.
    assert!(weights_row_sums_to_one(&[0.25, 0.75, -0.0], 2, "sign").is_err());
    assert!(weights_row_sums_to_one(&[0.25, 0.75, 1e-30], 2, "mask").is_err());
}
