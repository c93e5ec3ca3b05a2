//! Scored attention (`causal_attention_scored`, `KvCache::prefill_scored`
//! and `step_scored`): key masks, key and score biases, ALiBi, soft-capping
//! and sink logits.
//!
//! - against the f64 oracle (`reference::causal_attention_scored_f64`),
//!   within the precision contract (`check_contract_with_mass`, the naive f32
//!   reference as the yardstick), over random shapes and every combination
//!   of settings; the check is shown rejecting kernels with a wrong slope,
//!   a missing sink or a missing cap;
//! - exact promises, bit for bit: an empty scoring, a zero bias and an
//!   all-true mask give the plain call's bits; a masked key's value
//!   (even NaN) changes nothing; a row with every key masked is `+0.0`;
//!   cache steps give the bits of one cache prefill and of the runtime call;
//! - typed errors for every bad parameter and buffer length, with nothing
//!   written; the documented results for NaN and infinite inputs.

mod common;

use common::config;
use microattn::reference::{
    attention_mass_scored_f64, causal_attention_scored as naive, causal_attention_scored_f64,
    check_contract_with_mass,
};
use microattn::scoring::alibi_slopes;
use microattn::strategies::{Fill, fixed_case_with};
use microattn::{
    Buffer, Error, KvCache, Scoring, Shape, causal_attention_dyn, causal_attention_scored,
};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/scored.txt";

/// Settings and their buffers, owned, for a shape.
#[derive(Clone, Debug, Default)]
struct Settings {
    key_mask: Option<Vec<bool>>,
    key_bias: Option<Vec<f32>>,
    score_bias: Option<Vec<f32>>,
    slopes: Option<Vec<f32>>,
    soft_cap: Option<f32>,
    sinks: Option<Vec<f32>>,
}

impl Settings {
    fn scoring(&self) -> Scoring<'_> {
        let mut s = Scoring::new();
        if let Some(m) = &self.key_mask {
            s = s.key_mask(m);
        }
        if let Some(b) = &self.key_bias {
            s = s.key_bias(b);
        }
        if let Some(b) = &self.score_bias {
            s = s.score_bias(b);
        }
        if let Some(x) = &self.slopes {
            s = s.alibi(x);
        }
        if let Some(c) = self.soft_cap {
            s = s.soft_cap(c);
        }
        if let Some(x) = &self.sinks {
            s = s.sinks(x);
        }
        s
    }
}

/// SplitMix64 stream for the settings' contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[-b, b]`.
    fn uniform(&mut self, b: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * b
    }
    fn values(&mut self, n: usize, b: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(b)).collect()
    }
}

/// Settings for `shape` from the bits of `which` (each one on or off) and
/// `seed` (their contents).
fn settings(shape: &Shape, which: u8, seed: u64) -> Settings {
    let mut rng = Rng(seed);
    let (n, l, h) = (shape.q_len, shape.kv_len, shape.heads);
    let on = |bit: u8| which & (1 << bit) != 0;
    Settings {
        key_mask: on(0).then(|| (0..l).map(|_| !rng.next().is_multiple_of(4)).collect()),
        key_bias: on(1).then(|| rng.values(l, 2.0)),
        score_bias: on(2).then(|| {
            let planes = if rng.next().is_multiple_of(2) { 1 } else { h };
            rng.values(planes * n * l, 2.0)
        }),
        slopes: on(3).then(|| {
            let mut x = vec![0.0; h];
            alibi_slopes(&mut x);
            x
        }),
        soft_cap: on(4).then(|| 1.0 + rng.uniform(1.0).abs() * 30.0),
        sinks: on(5).then(|| rng.values(h, 3.0)),
    }
}

fn shapes() -> impl Strategy<Value = Shape> {
    (
        1usize..=40,
        0usize..=40,
        1usize..=3,
        1usize..=2,
        1usize..=20,
    )
        .prop_map(|(kv_len, q, group, kv_heads, d)| {
            Shape::new(q.min(kv_len), kv_len, group * kv_heads, kv_heads, d)
        })
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The kernel and the naive f32 reference against the f64 oracle, within
/// the precision contract; `Err` names the break.
fn contract(
    shape: &Shape,
    scoring: &Scoring<'_>,
    (q, k, v): (&[f32], &[f32], &[f32]),
    kernel: &[f32],
) -> Result<(), String> {
    let n = kernel.len();
    let (mut slow, mut oracle, mut mass) = (vec![0.0f32; n], vec![0.0f64; n], vec![0.0f64; n]);
    naive(shape, scoring, q, k, v, &mut slow).map_err(|e| e.to_string())?;
    causal_attention_scored_f64(shape, scoring, q, k, v, &mut oracle).map_err(|e| e.to_string())?;
    attention_mass_scored_f64(shape, scoring, q, k, v, &mut mass).map_err(|e| e.to_string())?;
    check_contract_with_mass(kernel, &slow, &oracle, &mass).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(config(256, REGRESSIONS))]

    /// Every combination of settings meets the contract.
    #[test]
    fn scored_kernel_meets_the_contract(shape in shapes(), which in 0u8..64, seed in any::<u64>()) {
        let case = fixed_case_with(shape, Fill::Uniform(4.0), seed);
        let set = settings(&shape, which, seed ^ 0x5eed);
        let scoring = set.scoring();
        let mut out = vec![f32::NAN; case.q.len()];
        causal_attention_scored(&shape, &scoring, &case.q, &case.k, &case.v, &mut out).unwrap();
        let verdict = contract(&shape, &scoring, (&case.q, &case.k, &case.v), &out);
        prop_assert!(verdict.is_ok(), "{:?}: {:?}", set, verdict);
    }

    /// Nothing set, a zero key bias, a zero score bias and an all-true mask
    /// give the plain call's bits; a masked key's value is never read.
    #[test]
    fn neutral_settings_are_the_plain_bits(shape in shapes(), seed in any::<u64>()) {
        let case = fixed_case_with(shape, Fill::Edgy(4.0), seed);
        let (l, plane) = (shape.kv_len, shape.q_len * shape.kv_len);
        let mut plain = vec![f32::NAN; case.q.len()];
        causal_attention_dyn(&shape, &case.q, &case.k, &case.v, &mut plain).unwrap();
        let (mask, zeros, plane_zeros) = (vec![true; l], vec![0.0f32; l], vec![0.0f32; plane]);
        for scoring in [
            Scoring::new(),
            Scoring::new().key_mask(&mask),
            Scoring::new().key_bias(&zeros),
            Scoring::new().score_bias(&plane_zeros),
        ] {
            let mut out = vec![f32::NAN; case.q.len()];
            causal_attention_scored(&shape, &scoring, &case.q, &case.k, &case.v, &mut out).unwrap();
            prop_assert_eq!(bits(&out), bits(&plain), "{:?}", scoring);
        }
        // Mask every third key and poison its values: same bits as finite
        // values there.
        let mask: Vec<bool> = (0..l).map(|j| j % 3 != 1).collect();
        let scoring = Scoring::new().key_mask(&mask);
        let mut clean = vec![f32::NAN; case.q.len()];
        causal_attention_scored(&shape, &scoring, &case.q, &case.k, &case.v, &mut clean).unwrap();
        let mut v = case.v.clone();
        let row = shape.kv_heads * shape.head_dim;
        for (j, token) in v.chunks_mut(row).enumerate() {
            if !mask[j] {
                token.fill(f32::NAN);
            }
        }
        let mut poisoned = vec![f32::NAN; case.q.len()];
        causal_attention_scored(&shape, &scoring, &case.q, &case.k, &v, &mut poisoned).unwrap();
        prop_assert_eq!(bits(&poisoned), bits(&clean));
    }

    /// Decode steps with a scoring give the bits of one scored prefill and
    /// of the runtime call, whatever the settings.
    #[test]
    fn cache_steps_are_one_prefill(which in 0u8..64, seed in any::<u64>()) {
        cache_case::<3, 6, 2, 5>(which, seed)?;
        cache_case::<21, 2, 1, 16>(which, seed)?;
    }
}

/// [`cache_steps_are_one_prefill`] at one shape: `N` positions, `H` query
/// heads over `KVH`, head dimension `D`.
fn cache_case<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    which: u8,
    seed: u64,
) -> Result<(), TestCaseError> {
    let shape = Shape::new(N, N, H, KVH, D);
    let case = fixed_case_with(shape, Fill::Uniform(4.0), seed);
    let mut set = settings(&shape, which, seed ^ 7);
    if let Some(b) = &mut set.score_bias {
        b.truncate(N * N); // one plane, shared by the heads
    }
    let scoring = set.scoring();
    let mut flat = vec![f32::NAN; N * H * D];
    causal_attention_scored(&shape, &scoring, &case.q, &case.k, &case.v, &mut flat).unwrap();
    let q: Vec<[[f32; D]; H]> = to_tokens(&case.q);
    let k: Vec<[[f32; D]; KVH]> = to_tokens(&case.k);
    let v: Vec<[[f32; D]; KVH]> = to_tokens(&case.v);
    let mut once = KvCache::<N, KVH, D>::new();
    let mut out = vec![[[f32::NAN; D]; H]; N];
    once.prefill_scored(&q, &k, &v, &scoring, &mut out, None)
        .unwrap();
    prop_assert_eq!(bits(out.as_flattened().as_flattened()), bits(&flat));
    let mut steps = KvCache::<N, KVH, D>::new();
    for t in 0..N {
        // The settings as the step at position `t` sees them.
        let cut = Settings {
            key_mask: set.key_mask.as_ref().map(|m| m[..=t].to_vec()),
            key_bias: set.key_bias.as_ref().map(|b| b[..=t].to_vec()),
            score_bias: set
                .score_bias
                .as_ref()
                .map(|b| b[t * N..=t * N + t].to_vec()),
            ..set.clone()
        };
        let mut row = [[f32::NAN; D]; H];
        steps
            .step_scored(&q[t], &k[t], &v[t], &cut.scoring(), &mut row, None)
            .unwrap();
        prop_assert_eq!(
            bits(row.as_flattened()),
            bits(&flat[t * H * D..(t + 1) * H * D]),
            "step {}",
            t
        );
        // Attending again without appending: the same bits.
        let mut again = [[f32::NAN; D]; H];
        steps
            .attend_scored(&q[t], &cut.scoring(), &mut again, None)
            .unwrap();
        prop_assert_eq!(
            bits(again.as_flattened()),
            bits(row.as_flattened()),
            "attend {}",
            t
        );
    }
    Ok(())
}

fn to_tokens<const X: usize, const D: usize>(flat: &[f32]) -> Vec<[[f32; D]; X]> {
    let rows = flat.as_chunks::<D>().0;
    rows.as_chunks::<X>().0.to_vec()
}

/// The contract check rejects kernels that get a setting wrong: a slope
/// doubled, the sink left out, the cap left out.
#[test]
fn the_contract_rejects_broken_scoring() {
    let shape = Shape::new(12, 12, 2, 1, 4);
    let case = fixed_case_with(shape, Fill::Uniform(4.0), 11);
    let qkv = (&case.q[..], &case.k[..], &case.v[..]);
    let (slopes, sinks) = ([0.5f32, 0.25], [1.5f32, -0.5]);
    let doubled = [1.0f32, 0.5];
    let pairs = [
        (
            Scoring::new().alibi(&slopes),
            Scoring::new().alibi(&doubled),
        ),
        (Scoring::new().sinks(&sinks), Scoring::new()),
        (Scoring::new().soft_cap(2.0), Scoring::new()),
    ];
    for (right, wrong) in pairs {
        let mut out = vec![0.0f32; case.q.len()];
        causal_attention_scored(&shape, &right, qkv.0, qkv.1, qkv.2, &mut out).unwrap();
        assert!(contract(&shape, &right, qkv, &out).is_ok());
        causal_attention_scored(&shape, &wrong, qkv.0, qkv.1, qkv.2, &mut out).unwrap();
        assert!(
            contract(&shape, &right, qkv, &out).is_err(),
            "{wrong:?} passed as {right:?}"
        );
    }
}

/// A row that sees no key, or only masked ones, is exactly `+0.0`, with
/// or without a sink; a sink alone weighs no value.
#[test]
fn rows_with_every_key_masked_are_zero() {
    let shape = Shape::new(3, 3, 2, 1, 3);
    let case = fixed_case_with(shape, Fill::Uniform(4.0), 5);
    let mask = [false, true, true];
    let minus_inf = [f32::NEG_INFINITY, 0.0, 0.0];
    let sinks = [2.0f32, -1.0];
    for scoring in [
        Scoring::new().key_mask(&mask),
        Scoring::new().key_mask(&mask).sinks(&sinks),
        Scoring::new().key_bias(&minus_inf),
        Scoring::new().key_bias(&minus_inf).soft_cap(5.0),
    ] {
        let mut out = vec![f32::NAN; case.q.len()];
        causal_attention_scored(&shape, &scoring, &case.q, &case.k, &case.v, &mut out).unwrap();
        // Position 0 sees only key 0, which is masked.
        assert_eq!(bits(&out[..6]), bits(&[0.0; 6]), "{scoring:?}");
        assert!(
            out[6..].iter().all(|x| x.is_finite() && *x != 0.0),
            "{scoring:?}"
        );
    }
}

/// NaN, infinite and huge inputs give what the crate docs' edge-case table
/// says.
#[test]
fn edge_inputs_give_the_documented_results() {
    let shape = Shape::new(2, 2, 1, 1, 1).with_scale(1.0);
    let (q, k, v) = ([1.0f32, 1.0], [1.0f32, 1.0], [2.0f32, 4.0]);
    let run_at = |shape: &Shape, scoring: Scoring<'_>, q: &[f32]| {
        let mut out = [f32::NAN; 2];
        causal_attention_scored(shape, &scoring, q, &k, &v, &mut out).unwrap();
        out
    };
    let run = |scoring: Scoring<'_>, q: &[f32]| run_at(&shape, scoring, q);
    // A NaN bias makes its rows NaN.
    let nan = [0.0f32, f32::NAN];
    let out = run(Scoring::new().key_bias(&nan), &q);
    assert_eq!(out[0], 2.0);
    assert!(out[1].is_nan());
    // A +inf bias on one key makes the rows that see it NaN (inf − inf).
    let inf = [f32::INFINITY, 0.0];
    assert!(
        run(Scoring::new().key_bias(&inf), &q)
            .iter()
            .all(|x| x.is_nan())
    );
    // A soft cap turns infinite scores (`f32::MAX·4` overflows) into
    // ±cap: both keys weigh alike.
    let overflowing = Shape::new(2, 2, 1, 1, 1).with_scale(4.0);
    let huge = [f32::MAX, f32::MAX];
    let out = run_at(&overflowing, Scoring::new().soft_cap(10.0), &huge);
    assert_eq!(out, [2.0, 3.0]);
    // Without the cap, the same infinite scores make the rows NaN.
    assert!(run_at(&overflowing, Scoring::new(), &huge)[1].is_nan());
}

/// Bad parameters and buffer lengths get typed errors, checked before
/// anything is written.
#[test]
fn bad_settings_get_typed_errors_and_write_nothing() {
    let shape = Shape::new(2, 3, 2, 1, 2);
    let case = fixed_case_with(shape, Fill::Uniform(1.0), 1);
    let (short_mask, short_bias, bias5) = ([true; 2], [0.0f32; 4], [0.0f32; 5]);
    let (one, nan, inf) = ([0.5f32], [0.5f32, f32::NAN], [f32::INFINITY, 0.0]);
    let cases: Vec<(Scoring<'_>, Error)> = vec![
        (
            Scoring::new().key_mask(&short_mask),
            Error::LengthMismatch {
                buffer: Buffer::KeyMask,
                expected: 3,
                actual: 2,
            },
        ),
        (
            Scoring::new().key_bias(&short_bias),
            Error::LengthMismatch {
                buffer: Buffer::KeyBias,
                expected: 3,
                actual: 4,
            },
        ),
        (
            Scoring::new().score_bias(&bias5),
            Error::LengthMismatch {
                buffer: Buffer::ScoreBias,
                expected: 6,
                actual: 5,
            },
        ),
        (
            Scoring::new().alibi(&one),
            Error::LengthMismatch {
                buffer: Buffer::Slopes,
                expected: 2,
                actual: 1,
            },
        ),
        (
            Scoring::new().sinks(&one),
            Error::LengthMismatch {
                buffer: Buffer::Sinks,
                expected: 2,
                actual: 1,
            },
        ),
        (
            Scoring::new().alibi(&nan),
            Error::InvalidScoring {
                what: "slope",
                reason: "must be finite",
            },
        ),
        (
            Scoring::new().sinks(&inf),
            Error::InvalidScoring {
                what: "sink",
                reason: "must be finite",
            },
        ),
    ];
    let cap_error = Error::InvalidScoring {
        what: "soft cap",
        reason: "must be finite and positive",
    };
    let caps = [0.0, -1.0, f32::INFINITY, f32::NAN, -0.0];
    let cases = cases
        .into_iter()
        .chain(caps.map(|c| (Scoring::new().soft_cap(c), cap_error)));
    for (scoring, want) in cases {
        let mut out = vec![f32::NAN; case.q.len()];
        let got = causal_attention_scored(&shape, &scoring, &case.q, &case.k, &case.v, &mut out);
        assert_eq!(got, Err(want), "{scoring:?}");
        assert!(out.iter().all(|x| x.is_nan()), "{scoring:?} wrote");
        let mut slow = vec![f32::NAN; case.q.len()];
        assert_eq!(
            naive(&shape, &scoring, &case.q, &case.k, &case.v, &mut slow),
            Err(want)
        );
        // A cache keeps what it holds.
        let mut cache = KvCache::<4, 1, 2>::new();
        cache.push(&[[1.0, 2.0]], &[[3.0, 4.0]]).unwrap();
        cache.push(&[[1.0, 2.0]], &[[3.0, 4.0]]).unwrap();
        let mut row = [[f32::NAN; 2]; 2];
        let got = cache.step_scored(
            &[[1.0; 2]; 2],
            &[[0.0; 2]],
            &[[0.0; 2]],
            &scoring,
            &mut row,
            None,
        );
        // The same error, its expected length the step's (one query).
        let same = |e: &Error| std::mem::discriminant(e) == std::mem::discriminant(&want);
        assert!(got.as_ref().is_err_and(same), "{scoring:?}: {got:?}");
        assert_eq!(cache.len(), 2);
        assert!(row.as_flattened().iter().all(|x| x.is_nan()));
    }
}

/// The standard slopes: the ALiBi paper's for 8 heads, and its rule for a
/// count that is not a power of two.
#[test]
fn standard_alibi_slopes() {
    let mut eight = [0.0f32; 8];
    alibi_slopes(&mut eight);
    assert_eq!(eight, core::array::from_fn(|h| 0.5f32.powi(h as i32 + 1)));
    let mut twelve = [0.0f32; 12];
    alibi_slopes(&mut twelve);
    let mut want = [0.0f32; 12];
    want[..8].copy_from_slice(&eight);
    for (k, w) in want[8..].iter_mut().enumerate() {
        *w = 2f32.powf(-8.0 * (2 * k + 1) as f32 / 16.0);
    }
    assert_eq!(twelve, want);
    let mut none: [f32; 0] = [];
    alibi_slopes(&mut none);
}

/// An empty cache attends to nothing: exactly 0, and a log-sum-exp of
/// `-inf`, or the sink logit itself with sinks.
#[test]
fn an_empty_cache_gives_zero_and_the_sink() {
    let cache = KvCache::<4, 1, 2>::new();
    let sinks = [0.75f32, -2.0];
    let mut out = [[f32::NAN; 2]; 2];
    let mut lse = [f32::NAN; 2];
    let scoring = Scoring::new().sinks(&sinks);
    cache
        .attend_scored(&[[1.0; 2]; 2], &scoring, &mut out, Some(&mut lse))
        .unwrap();
    assert_eq!(bits(out.as_flattened()), bits(&[0.0; 4]));
    assert_eq!(lse, sinks);
    cache
        .attend_scored(&[[1.0; 2]; 2], &Scoring::new(), &mut out, Some(&mut lse))
        .unwrap();
    assert_eq!(lse, [f32::NEG_INFINITY; 2]);
}

/// A ring's scored steps (with and without attention sinks) give the bits
/// of a `KvCache` holding the same positions in the ring's order, with the
/// same settings over them; a bad setting leaves the ring as it was.
#[test]
fn ring_steps_are_a_cache_of_the_positions_held() {
    ring_case::<0>();
    ring_case::<2>();
}

fn ring_case<const S: usize>() {
    const W: usize = 7;
    const D: usize = 5;
    let n = 26;
    let shape = Shape::new(n, n, 2, 1, D);
    let case = fixed_case_with(shape, Fill::Uniform(4.0), 9 + S as u64);
    let q: Vec<[[f32; D]; 2]> = to_tokens(&case.q);
    let k: Vec<[[f32; D]; 1]> = to_tokens(&case.k);
    let v: Vec<[[f32; D]; 1]> = to_tokens(&case.v);
    let (slopes, sinks) = ([0.5f32, 0.125], [1.0f32, -0.5]);
    let mut ring = microattn::RingKvCache::<W, 1, D, f32, S>::new();
    for p in 0..n {
        let held: Vec<usize> = if p < W {
            (0..=p).collect()
        } else {
            (0..S).chain(p + 1 + S - W..=p).collect()
        };
        let bias: Vec<f32> = held.iter().map(|&j| (j % 5) as f32 * 0.25 - 0.5).collect();
        let scoring = Scoring::new()
            .key_bias(&bias)
            .alibi(&slopes)
            .soft_cap(6.0)
            .sinks(&sinks);
        // A bias of the wrong length: an error, and the ring unchanged.
        let before = format!("{:?}", ring.keys());
        let mut row = [[f32::NAN; D]; 2];
        let short = Scoring::new().key_bias(&bias[1..]);
        assert!(
            ring.step_scored(&q[p], &k[p], &v[p], &short, &mut row, None)
                .is_err()
        );
        assert_eq!(format!("{:?}", ring.keys()), before);
        assert!(row.as_flattened().iter().all(|x| x.is_nan()));
        let mut lse = [f32::NAN; 2];
        ring.step_scored(&q[p], &k[p], &v[p], &scoring, &mut row, Some(&mut lse))
            .unwrap();
        let mut cache = KvCache::<W, 1, D>::new();
        for &j in &held[..held.len() - 1] {
            cache.push(&k[j], &v[j]).unwrap();
        }
        let (mut want, mut want_lse) = ([[f32::NAN; D]; 2], [f32::NAN; 2]);
        cache
            .step_scored(
                &q[p],
                &k[p],
                &v[p],
                &scoring,
                &mut want,
                Some(&mut want_lse),
            )
            .unwrap();
        assert_eq!(
            bits(row.as_flattened()),
            bits(want.as_flattened()),
            "step {p}, S {S}"
        );
        assert_eq!(bits(&lse), bits(&want_lse), "step {p}, S {S}");
    }
}
