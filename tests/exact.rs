//! The exact properties of the fast kernels, asserted bit for bit (`to_bits`)
//! within one build, for the runtime API and every fixed-size instance:
//!
//! - causality: anything at a position `> i` (NaN and infinities included)
//!   leaves the outputs of queries at positions `≤ i` unchanged;
//! - position 0 sees only itself: its output is `v[0]` of its key/value head;
//! - heads are independent: one head's inputs change no other head's output;
//! - the same call twice gives the same bits, whatever `out` held (zeros,
//!   garbage, NaNs), and no NaN survives for finite inputs;
//! - `causal_attention_dyn` gives the bits of the fixed-size functions;
//! - a query computed on its own (one query against its prefix, as in a
//!   decode step) gives the bits it gets inside a whole run (tiles of
//!   queries on lanes);
//! - the fast `softmax` gives the bits of `reference::softmax`;
//! - a score has the same bits in both kernel paths (seen through the
//!   log-sum-exp of a query that sees one key, which is its score), within
//!   the score's a-priori bound, and equal to `reference::score`'s bits
//!   exactly where the build does not fuse multiply-adds.
//!
//! None of these compares a fast kernel with the reference (lanes and FMA
//! round differently), except `softmax`, whose bit-identity is documented,
//! and the unfused scores.
//! Each check is also shown to fail on a deliberately broken kernel.

mod common;

use common::{
    FAST, HeadChange, NAIVE, biased, causality, deterministic_and_write_only, first_row_is_v0,
    fixed_kernels, fixed_softmax, head_independence, head_mixing, jittery, lazy, leaky,
    one_query_at_a_time, prop, runner, same_as, same_bits, score_error_bound,
};
use microattn::Shape;
use microattn::strategies::{
    Case, Fill, Magnitude, cross_shape, fixed_case, grid_shape, scale, seeded_case, values,
};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/exact.txt";

/// A finite case (edges included: ±0, ±bound, subnormals) on a grid shape,
/// or with fewer queries than keys when `cross` is set. Seeded: the
/// properties below run the kernel several times on each case.
fn finite_case(cross: bool) -> impl Strategy<Value = Case> {
    let shape = if cross {
        cross_shape().boxed()
    } else {
        grid_shape().boxed()
    };
    (shape, Magnitude::any())
        .prop_flat_map(|(s, m)| seeded_case(s, Fill::Edgy(m.bound(s.head_dim))))
}

/// Any bits at all (NaN, ±inf, …) in the shape of `c`: what a kernel must
/// never look at.
fn hostile_like(c: &Case) -> impl Strategy<Value = Case> + use<> {
    seeded_case(c.shape, Fill::AnyBits)
}

/// A case, the same shape filled with anything, and a key position to cut
/// at (`1..=kv_len`: positions `≥ cut` are replaced).
fn causality_input() -> impl Strategy<Value = (Case, Case, usize)> {
    prop_oneof![finite_case(false), finite_case(true)].prop_flat_map(|c| {
        let cut = 1..=c.shape.kv_len;
        (hostile_like(&c), Just(c), cut).prop_map(|(f, c, cut)| (c, f, cut))
    })
}

/// A case, the same shape with other finite values, and a head to replace.
fn head_input() -> impl Strategy<Value = (Case, Case, HeadChange)> {
    finite_case(false).prop_flat_map(|c| {
        let s = c.shape;
        let other = seeded_case(s, Fill::Edgy(1.0));
        let change = prop_oneof![
            (0..s.heads).prop_map(HeadChange::Query),
            (0..s.kv_heads).prop_map(HeadChange::KeyValue),
        ];
        (Just(c), other, change)
    })
}

// The runtime API, and its reference beside it: the textbook has the same
// structural properties (it is the specification), so it is held to them too.
proptest! {
    #![proptest_config(common::config(64, REGRESSIONS))]

    #[test]
    fn dyn_is_causal((c, future, cut) in causality_input()) {
        for kernel in [FAST, NAIVE] {
            prop(causality(kernel, &c, &future, cut))?;
        }
    }

    #[test]
    fn dyn_first_row_is_v0(c in finite_case(false)) {
        for kernel in [FAST, NAIVE] {
            prop(first_row_is_v0(kernel, &c))?;
        }
    }

    #[test]
    fn dyn_heads_are_independent((c, other, change) in head_input()) {
        for kernel in [FAST, NAIVE] {
            prop(head_independence(kernel, &c, &other, change))?;
        }
    }

    #[test]
    fn dyn_one_query_at_a_time_is_the_same_bits(c in prop_oneof![finite_case(false), finite_case(true)]) {
        prop(one_query_at_a_time(FAST, &c))?;
    }

    #[test]
    fn dyn_is_deterministic_and_write_only(c in prop_oneof![finite_case(false), finite_case(true)]) {
        for kernel in [FAST, NAIVE] {
            prop(deterministic_and_write_only(kernel, &c))?;
        }
    }

    /// Bit-identical to the reference on any finite row: values up to
    /// `f32::MAX` in magnitude, subnormals and zeros of both signs.
    #[test]
    fn softmax_is_the_reference_bit_for_bit(
        (n, row) in prop::sample::select(vec![1usize, 2, 7, 8, 9, 15, 16, 17, 33, 64])
            .prop_flat_map(|n| (Just(n), prop_oneof![
                values(1.0e4, n),
                proptest::collection::vec(
                    prop::num::f32::POSITIVE | prop::num::f32::NEGATIVE | prop::num::f32::NORMAL
                        | prop::num::f32::SUBNORMAL | prop::num::f32::ZERO,
                    n,
                ),
            ]))
    ) {
        let (_, run_softmax) = fixed_softmax().into_iter().find(|&(m, _)| m == n).unwrap();
        let r = run_softmax(&row);
        prop(same_bits(&format!("softmax::<{n}> vs reference"), &r.fast, &r.naive))?;
    }
}

/// Every exact property on every fixed-size instance, and its bits equal to
/// `causal_attention_dyn`'s.
#[test]
fn fixed_size_functions_have_the_exact_properties() {
    for f in fixed_kernels() {
        let s0 = f.shape;
        let strategy = (Magnitude::any(), scale(s0.head_dim))
            .prop_flat_map(move |(m, x)| {
                let s = if f.scaled { s0.with_scale(x) } else { s0 };
                seeded_case(s, Fill::Edgy(m.bound(s.head_dim)))
            })
            .prop_flat_map(move |c| {
                let change = prop_oneof![
                    (0..s0.heads).prop_map(HeadChange::Query),
                    (0..s0.kv_heads).prop_map(HeadChange::KeyValue),
                ];
                (
                    hostile_like(&c),
                    seeded_case(c.shape, Fill::Edgy(1.0)),
                    change,
                    1..=s0.kv_len,
                    Just(c),
                )
            });
        runner(4, REGRESSIONS)
            .run(&strategy, |(future, other, change, cut, c)| {
                prop(same_as(
                    f.fast,
                    FAST,
                    &c,
                    "fixed-size vs causal_attention_dyn",
                ))?;
                prop(causality(f.fast, &c, &future, cut))?;
                prop(first_row_is_v0(f.fast, &c))?;
                prop(head_independence(f.fast, &c, &other, change))?;
                prop(deterministic_and_write_only(f.fast, &c))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
}

// ---------------------------------------------------------------------------
// Each check can fail.
// ---------------------------------------------------------------------------

fn sample(q_len: usize, kv_len: usize, heads: usize, kv_heads: usize, d: usize) -> Case {
    fixed_case(Shape::new(q_len, kv_len, heads, kv_heads, d), 1.0, 3)
}

#[test]
fn causality_check_catches_a_leak() {
    for c in [sample(9, 9, 2, 1, 8), sample(3, 9, 4, 2, 7)] {
        let future = fixed_case(c.shape, 1.0, 4);
        // The last position changes; every query before it must not.
        let cut = c.shape.kv_len - 1;
        causality(FAST, &c, &future, cut).expect("the real kernel is causal");
        assert!(causality(leaky, &c, &future, cut).is_err());
    }
}

#[test]
fn first_row_check_catches_a_leak() {
    let c = sample(9, 9, 4, 2, 9);
    first_row_is_v0(FAST, &c).expect("the real kernel");
    assert!(first_row_is_v0(leaky, &c).is_err());
}

#[test]
fn head_check_catches_mixing_heads() {
    let c = sample(9, 9, 4, 2, 9);
    let other = fixed_case(c.shape, 1.0, 5);
    for change in [HeadChange::Query(1), HeadChange::KeyValue(1)] {
        head_independence(FAST, &c, &other, change).expect("the real kernel");
        assert!(head_independence(head_mixing, &c, &other, change).is_err());
    }
}

#[test]
fn determinism_check_catches_reading_out_and_jitter() {
    let c = sample(9, 9, 2, 1, 8);
    deterministic_and_write_only(FAST, &c).expect("the real kernel");
    assert!(deterministic_and_write_only(lazy, &c).is_err());
    assert!(deterministic_and_write_only(jittery, &c).is_err());
}

#[test]
fn bit_comparison_catches_one_ulp() {
    let a = [1.0f32, -0.0, 3.5];
    assert!(same_bits("same", &a, &a).is_ok());
    assert!(
        same_bits(
            "ulp",
            &a,
            &[1.0, -0.0, f32::from_bits(3.5f32.to_bits() + 1)]
        )
        .is_err()
    );
    // -0.0 == 0.0 as floats, but not as bits.
    assert!(same_bits("zero sign", &a, &[1.0, 0.0, 3.5]).is_err());
    // The comparison of two kernels (used for fixed-size vs runtime API).
    let c = sample(9, 9, 1, 1, 8);
    same_as(FAST, FAST, &c, "itself").expect("a kernel equals itself");
    assert!(same_as(FAST, biased, &c, "biased").is_err());
}

#[test]
fn one_query_check_catches_a_path_dependent_kernel() {
    fn path_dependent(
        s: &Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
    ) -> Result<(), microattn::Error> {
        FAST(s, q, k, v, out)?;
        if s.q_len == 1 {
            out[0] = f32::from_bits(out[0].to_bits() ^ 1);
        }
        Ok(())
    }
    let c = sample(9, 9, 1, 1, 8);
    assert!(one_query_at_a_time(FAST, &c).is_ok());
    assert!(one_query_at_a_time(path_dependent, &c).is_err());
}

/// Values in [-1, 1) with a wide spread of magnitudes (so that the order of
/// a sum changes its rounding), from xorshift64.
fn spread_values<const N: usize>(seed: &mut u64) -> [f32; N] {
    core::array::from_fn(|_| {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let unit = (*seed >> 40) as f32 / (1u32 << 23) as f32 - 1.0;
        unit * 2f32.powi((*seed % 24) as i32 - 12)
    })
}

/// For one head dimension: eight query heads over one key (GQA 8:1), run
/// as a prefill (a tile, lanes across queries, where the head dimension
/// fits it) and as a decode step (the one-query path, lanes across keys).
/// Each query sees one key, so its log-sum-exp is its score: the two paths
/// must give it the same bits, within the a-priori bound of the exact
/// `scale·q·k` (`γ_{D+2}·scale·Σ|q_d·k_d|`). Returns how many scores differ
/// from `reference::score` (the textbook's chain, unfused), so the caller
/// can check that the test sees the kernel's own arithmetic.
fn scores_agree_in_both_paths<const D: usize>(seed: &mut u64) -> usize {
    let mut differs = 0;
    for _ in 0..64 {
        let q: [[f32; D]; 8] = core::array::from_fn(|_| spread_values(seed));
        let k: [[f32; D]; 1] = [spread_values(seed)];
        let v: [[f32; D]; 1] = [spread_values(seed)];
        let scale = microattn::default_scale(D);
        let mut out = [[[0.0f32; D]; 8]; 1];
        let mut tile_lse = [[0.0f32; 8]; 1];
        let mut cache = microattn::KvCache::<4, 1, D>::new();
        cache
            .prefill(&[q], &[k], &[v], &mut out, Some(&mut tile_lse))
            .unwrap();
        let mut step_lse = [0.0f32; 8];
        let mut cache = microattn::KvCache::<4, 1, D>::new();
        cache
            .step(&q, &k, &v, &mut out[0], None, Some(&mut step_lse))
            .unwrap();
        for (h, qh) in q.iter().enumerate() {
            assert_eq!(
                tile_lse[0][h].to_bits(),
                step_lse[h].to_bits(),
                "tile vs step, D = {D}, head {h}"
            );
            let exact: f64 = qh
                .iter()
                .zip(&k[0])
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let s = f64::from(scale);
            let err = (f64::from(step_lse[h]) - s * exact).abs();
            assert!(
                err <= score_error_bound(qh, &k[0], scale),
                "D = {D}, head {h}: error {err}"
            );
            let textbook = microattn::reference::score(qh, &k[0], scale);
            differs += usize::from(textbook.to_bits() != step_lse[h].to_bits());
        }
    }
    differs
}

/// Whether this build's kernel fuses its score chain: one key, scale 1,
/// `q = [1, 1 + 2⁻¹²]`, `k = [−(1 + 2⁻¹¹), 1 + 2⁻¹²]`. The chain's first step
/// is exact; the second adds `(1 + 2⁻¹²)² = 1 + 2⁻¹¹ + 2⁻²⁴`, which a fused
/// step keeps whole (score `2⁻²⁴`) and an unfused one rounds to `1 + 2⁻¹¹`
/// first (score 0). The log-sum-exp of one key is its score.
fn kernel_fuses() -> bool {
    let a = 1.0 + 2f32.powi(-12);
    let q = [[[1.0f32, a]]];
    let k = [[[-(1.0 + 2f32.powi(-11)), a]]];
    let v = [[[0.0f32; 2]]];
    let mut out = [[[0.0f32; 2]]];
    let mut lse = [[0.0f32; 1]];
    let mut cache = microattn::KvCache::<1, 1, 2>::with_scale(1.0);
    cache.prefill(&q, &k, &v, &mut out, Some(&mut lse)).unwrap();
    let score = lse[0][0];
    assert!(score == 0.0 || score == 2f32.powi(-24), "score {score}");
    score != 0.0
}

#[test]
fn scores_are_the_same_bits_in_both_paths() {
    let mut seed = 0x005e_ed0f_5c0e;
    assert_eq!(scores_agree_in_both_paths::<1>(&mut seed), 0);
    // From 2 dimensions on a fused chain rounds differently from the
    // textbook's unfused one, so the fusion shows; unfused, the two agree.
    let differs = [
        scores_agree_in_both_paths::<5>(&mut seed),
        scores_agree_in_both_paths::<12>(&mut seed),
        scores_agree_in_both_paths::<64>(&mut seed),
        scores_agree_in_both_paths::<67>(&mut seed),
        scores_agree_in_both_paths::<136>(&mut seed),
    ];
    if kernel_fuses() {
        assert!(differs.iter().all(|&n| n > 0), "{differs:?}");
    } else {
        assert_eq!(differs, [0; 5]);
    }
}
