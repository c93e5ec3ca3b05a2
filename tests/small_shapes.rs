//! The exhaustive small-shape sweep: every sequence length `0..=17` (two
//! blocks of 8 keys and one more) and the head dimensions around the lane
//! width `L = 8` — `1, L−1, L, L+1, 2L+1` — against the accuracy contract,
//! with deterministic entries of every magnitude.
//!
//! - the runtime API on every length × head dimension × `(H, KVH)` pair of
//!   the grid, self-attention, and every `q_len < kv_len` of those lengths;
//! - `causal_attention::<N, D>` at every one of the 85 `(N, D)` pairs
//!   (`N ≥ 1`: zero is a compile-time error), against
//!   `reference::causal_attention::<N, D>`, and bit for bit against the
//!   runtime API.

mod common;

use common::{FAST, Kernel, NAIVE, contract, same_as, single, single_naive};
use microattn::Shape;
use microattn::strategies::{
    HEAD_GROUPS, Magnitude, SWEEP_HEAD_DIMS, SWEEP_MAX_LEN, fixed_case, sweep,
};

/// Runs `check` on every case, then fails listing every failure.
fn all_pass(cases: impl Iterator<Item = (String, Result<(), String>)>) {
    let mut count = 0;
    let failures: Vec<String> = cases
        .inspect(|_| count += 1)
        .filter_map(|(what, r)| r.err().map(|e| format!("{what}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "exhaustive sweep: edge_cases::lengths_and_head_dims_around_every_lane_width covers the same tails under Miri"
)]
fn self_attention_sweep() {
    let shapes = sweep();
    assert_eq!(
        shapes.len(),
        (SWEEP_MAX_LEN + 1) * SWEEP_HEAD_DIMS.len() * HEAD_GROUPS.len()
    );
    all_pass(shapes.into_iter().enumerate().flat_map(|(seed, s)| {
        Magnitude::ALL.into_iter().map(move |m| {
            let c = fixed_case(s, m.bound(s.head_dim), seed as u64);
            (format!("{m:?} seed {seed}"), contract(FAST, NAIVE, &c))
        })
    }));
}

/// Every `1 ≤ q_len < kv_len ≤ 17` × head dimension of the sweep; the
/// `(H, KVH)` pair and the magnitude rotate with the case (all 15
/// combinations of the two occur many times).
#[test]
#[cfg_attr(
    miri,
    ignore = "exhaustive sweep: runtime_api's bottom-right tests cover the same paths under Miri"
)]
fn fewer_queries_than_keys_sweep() {
    let mut shapes = Vec::new();
    for kv_len in 1..=SWEEP_MAX_LEN {
        for q_len in 1..kv_len {
            for d in SWEEP_HEAD_DIMS {
                let (h, kvh) = HEAD_GROUPS[shapes.len() % HEAD_GROUPS.len()];
                shapes.push(Shape::new(q_len, kv_len, h, kvh, d));
            }
        }
    }
    all_pass(shapes.into_iter().enumerate().map(|(seed, s)| {
        // 5 pairs, 3 magnitudes: coprime, so every combination occurs.
        let m = Magnitude::ALL[seed % Magnitude::ALL.len()];
        let c = fixed_case(s, m.bound(s.head_dim), seed as u64);
        (format!("{m:?} seed {seed}"), contract(FAST, NAIVE, &c))
    }));
}

/// `(fast, naive, N, D)` for one N and every D of the sweep.
macro_rules! with_dims {
    ($n:literal) => {
        [
            (
                single::<$n, 1> as Kernel,
                single_naive::<$n, 1> as Kernel,
                $n,
                1,
            ),
            (single::<$n, 7>, single_naive::<$n, 7>, $n, 7),
            (single::<$n, 8>, single_naive::<$n, 8>, $n, 8),
            (single::<$n, 9>, single_naive::<$n, 9>, $n, 9),
            (single::<$n, 17>, single_naive::<$n, 17>, $n, 17),
        ]
    };
}

macro_rules! with_lens {
    ($($n:literal)*) => {
        [$(with_dims!($n)),*]
    };
}

#[test]
#[cfg_attr(
    miri,
    ignore = "exhaustive sweep: the fixed-size tests of exact.rs cover the same paths under Miri"
)]
fn fixed_size_sweep() {
    let instances = with_lens!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17);
    assert_eq!(instances.len(), SWEEP_MAX_LEN);
    all_pass(instances.into_iter().flatten().enumerate().flat_map(
        |(seed, (fast, naive, n, d))| {
            Magnitude::ALL.into_iter().map(move |m| {
                let s = Shape::new(n, n, 1, 1, d);
                let c = fixed_case(s, m.bound(d), seed as u64);
                let r = contract(fast, naive, &c)
                    .and_then(|()| same_as(fast, FAST, &c, "fixed-size vs dyn"));
                (format!("causal_attention::<{n}, {d}> {m:?}"), r)
            })
        },
    ));
}
