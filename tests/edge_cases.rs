//! The edge-case table of the crate docs ("Numerical behaviour"), one test
//! per row. Each test's doc comment states the promised behaviour; the table
//! in `src/lib.rs` repeats it. Unless a test says otherwise it runs the fast
//! runtime API (`causal_attention_dyn`), which is the same kernel, same bits,
//! as the fixed-size functions.

mod common;

use common::{FAST, NAIVE, bits, contract, oracle, run, zero_query_is_mean};
use microattn::reference::check_contract;
use microattn::strategies::{Case, Fill, HEAD_GROUPS, fixed_case, fixed_case_with, large_bound};
use microattn::{Shape, causal_attention_padded};

/// Shapes around every lane width the kernel or `wide` uses (4, 8, 16).
/// Under Miri (hundreds of times slower) one size on each side of 8 and
/// 16, which still reaches every tail of the lane loops.
const AROUND_LANES: &[usize] = if cfg!(miri) {
    &[7, 9, 17]
} else {
    &[3, 4, 5, 7, 8, 9, 15, 16, 17]
};

fn case(shape: Shape, q: Vec<f32>, k: Vec<f32>, v: Vec<f32>) -> Case {
    Case { shape, q, k, v }
}

/// The fast output must meet the contract on `c`; returns it.
fn fast_within_contract(c: &Case) -> Vec<f32> {
    contract(FAST, NAIVE, c).unwrap_or_else(|e| panic!("{e}"));
    run(FAST, c)
}

/// The precision check's bound in its `|ref64|` form
/// (`reference::check_contract`) for case `x` with oracle `r`.
fn ref_bound(x: &Case, r: &[f64]) -> f64 {
    let naive = run(NAIVE, x);
    let err = naive
        .iter()
        .zip(r)
        .map(|(&n, &r)| (f64::from(n) - r).abs())
        .fold(0.0, f64::max);
    let max = r.iter().map(|r| r.abs()).fold(0.0, f64::max);
    4.0 * err + 4.0 * f64::from(f32::EPSILON) * max
}

/// Row `(t, h)` of a flat output with `heads` heads of dim `d`.
fn row(out: &[f32], t: usize, h: usize, heads: usize, d: usize) -> &[f32] {
    &out[(t * heads + h) * d..][..d]
}

/// **Scores up to ±1e4**: q and k entries in `[-b, b]` with
/// `b = 100/D^¼`, so `|score| ≤ 1e4` at the default scale. Expected: no
/// overflow (every output finite) and the accuracy contract.
#[test]
fn scores_up_to_1e4_meet_the_contract() {
    // Under Miri: the smaller shapes only.
    let (dims, lens): (&[usize], &[usize]) = if cfg!(miri) {
        (&[1, 17], &[1, 9])
    } else {
        (&[1, 8, 17, 64], &[1, 9, 33])
    };
    for (h, kvh) in HEAD_GROUPS {
        for &d in dims {
            for &n in lens {
                let c = fixed_case(Shape::new(n, n, h, kvh, d), large_bound(d), (n * d) as u64);
                let out = fast_within_contract(&c);
                assert!(out.iter().all(|x| x.is_finite()));
            }
        }
    }
}

/// **Scores up to ±1e4, under cancellation** (found by the fuzz target,
/// `examples/fuzz`): two keys with nearly equal scores (weights ≈ ½ each)
/// and values of opposite sign, so `out ≈ 0.02` while `Σ w·|v| ≈ 0.5`. A
/// one-ULP error in a weight moves the output by about `ε·0.5/2 ≈ 3e-8`,
/// but the contract's second term is `4ε·max|ref64| ≈ 1e-8` and the
/// reference happens to round this case to within 8e-10. The contract's
/// second term is stated against `max Σⱼ wⱼ·|vⱼ|`
/// (`reference::attention_mass_f64`), which this case meets; the stricter
/// `check_contract` (that term against `max|ref64|`) does not hold here
/// (error 1.35e-8 > bound 1.11e-8 with `wide`'s exp), which is why the
/// contract was restated.
#[test]
fn contract_holds_under_cancellation() {
    let shape = Shape::new(2, 3, 1, 1, 1).with_scale(1.0);
    let c = case(
        shape,
        vec![-0.752_941_2, -0.752_941_2],
        vec![-0.752_955_8, -0.752_941_2, 1.855_148e-5],
        vec![0.474_536_84, -0.517_647_15, 8.800_998e-8],
    );
    // The proposed bound holds.
    let out = run(FAST, &c);
    let abs_v = Case {
        v: c.v.iter().map(|x| x.abs()).collect(),
        ..c.clone()
    };
    let (r, mass) = (oracle(&c), oracle(&abs_v));
    let naive = run(NAIVE, &c);
    let naive_err = naive
        .iter()
        .zip(&r)
        .map(|(&n, &r)| (f64::from(n) - r).abs())
        .fold(0.0, f64::max);
    let bound =
        2.0 * naive_err + 4.0 * f64::from(f32::EPSILON) * mass.iter().fold(0.0, |m, x| x.max(m));
    for (o, r) in out.iter().zip(&r) {
        assert!(
            (f64::from(*o) - r).abs() <= bound,
            "{o} vs {r}: bound {bound:e}"
        );
    }
    // The contract as stated.
    contract(FAST, NAIVE, &c).unwrap();
}

/// **q/k entries up to 1e15**: products up to 1e30, scores up to about
/// `1e30·√D`, still finite. Expected: every output finite and the contract;
/// the gaps between scores are far beyond 104, so each row is exactly the
/// `v` row of its largest score (as in the reference).
#[test]
fn qk_entries_up_to_1e15_keep_scores_finite() {
    for d in [1, 4, 16, 64] {
        for n in [2, 9, 17] {
            let shape = Shape::new(n, n, 2, 1, d);
            let mut c = fixed_case(shape, 1.0e15, (n + d) as u64);
            c.v = fixed_case(shape, 3.0, 7).v;
            let out = fast_within_contract(&c);
            assert!(out.iter().all(|x| x.is_finite()));
            assert_eq!(
                bits(&out),
                bits(&run(NAIVE, &c)),
                "one-hot rows are exact: {shape:?}"
            );
        }
    }
}

/// **All scores equal and very negative** (here exactly −1e4): every weight
/// is `exp(0) = 1` after max subtraction. Expected: each row is the plain
/// mean of its visible `v` rows; with small integer `v` the sums are exact,
/// so the mean is exact (one correctly rounded division).
#[test]
fn equal_very_negative_scores_give_the_mean_of_v() {
    let (d, n) = (16, 20);
    let shape = Shape::new(n, n, 1, 1, d).with_scale(0.25);
    // 0.25 · 16 · (−2500 · 1) = −1e4 for every key.
    let q = vec![-2500.0; n * d];
    let k = vec![1.0; n * d];
    let v: Vec<f32> = (0..n * d).map(|i| ((i * 7) % 23) as f32 - 11.0).collect();
    let c = case(shape, q, k, v);
    let out = run(FAST, &c);
    for t in 0..n {
        for col in 0..d {
            let sum: f32 = (0..=t).map(|j| c.v[j * d + col]).sum();
            let mean = sum / (t + 1) as f32;
            assert_eq!(
                out[t * d + col].to_bits(),
                mean.to_bits(),
                "row {t} col {col}"
            );
        }
    }
}

/// **One score beats every other by more than 104**: `exp(−104) < 2⁻¹⁵⁰`
/// rounds to 0 even as a subnormal. Expected: that key's `v` row exactly,
/// every other weight exactly 0, wherever the winner sits in its block.
#[test]
fn one_score_ahead_by_more_than_104_takes_exactly_its_v() {
    let n = 19;
    for winner in 0..n {
        let shape = Shape::new(n, n, 1, 1, 1).with_scale(1.0);
        let q = vec![1.0; n];
        // The winner scores 50; the others −55 … −60: gaps ≥ 105.
        let k: Vec<f32> = (0..n)
            .map(|j| {
                if j == winner {
                    50.0
                } else {
                    -55.0 - (j % 6) as f32
                }
            })
            .collect();
        let v: Vec<f32> = (0..n).map(|j| 1.5 + j as f32 * 0.37).collect();
        let c = case(shape, q, k, v);
        let out = run(FAST, &c);
        for (t, o) in out.iter().enumerate().skip(winner) {
            assert_eq!(
                o.to_bits(),
                c.v[winner].to_bits(),
                "winner {winner}, row {t}"
            );
        }
    }
}

/// **NaN in a visible q, k or v**: a NaN in query row `i` makes row `i` NaN;
/// a NaN in key row `j` makes every row that sees `j` (in the heads that
/// read it) NaN; a NaN in `v[j][c]` makes column `c` of those rows NaN.
/// Expected: every other value keeps its bits exactly.
#[test]
fn nan_in_a_visible_q_k_or_v_poisons_only_the_rows_that_read_it() {
    let (n, h, kvh, d) = (13, 4, 2, 9);
    let shape = Shape::new(n, n, h, kvh, d);
    let clean = fixed_case(shape, 2.0, 3);
    let base = run(FAST, &clean);
    let (i0, j0, g0, c0) = (5, 6, 1, 4);
    let reads = |t: usize, head: usize| head / (h / kvh) == g0 && t >= j0;
    for which in ["q", "k", "v"] {
        let mut c = clean.clone();
        match which {
            "q" => c.q[(i0 * h + 2) * d + c0] = f32::NAN,
            "k" => c.k[(j0 * kvh + g0) * d + c0] = f32::NAN,
            _ => c.v[(j0 * kvh + g0) * d + c0] = f32::NAN,
        }
        let out = run(FAST, &c);
        for t in 0..n {
            for head in 0..h {
                let (o, b) = (row(&out, t, head, h, d), row(&base, t, head, h, d));
                for col in 0..d {
                    let poisoned = match which {
                        "q" => t == i0 && head == 2,
                        "k" => reads(t, head),
                        _ => reads(t, head) && col == c0,
                    };
                    if poisoned {
                        assert!(o[col].is_nan(), "{which}: ({t},{head},{col}) not NaN");
                    } else {
                        assert_eq!(
                            o[col].to_bits(),
                            b[col].to_bits(),
                            "{which}: ({t},{head},{col})"
                        );
                    }
                }
            }
        }
        // The reference has the same NaN positions (the contract checks it).
        contract(FAST, NAIVE, &c).unwrap();
    }
}

/// **A +∞ score** (from an infinite q or k entry, or from finite entries
/// whose product overflows): `∞ − ∞` in the max subtraction. Expected: every
/// row that sees it is NaN, like the reference; rows that do not see it keep
/// their bits.
#[test]
fn a_plus_infinite_score_makes_the_rows_that_see_it_nan() {
    let (n, d) = (12, 4);
    let shape = Shape::new(n, n, 1, 1, d).with_scale(1.0);
    let j0 = 7;
    // Positive q and a key of ones at j0: an infinite k entry there gives +∞.
    let mut clean = fixed_case(shape, 1.0, 11);
    clean.q.iter_mut().for_each(|x| *x = x.abs() + 0.5);
    clean.k[j0 * d..][..d].fill(1.0);
    let base = run(FAST, &clean);
    for how in ["inf entry", "overflow"] {
        let mut c = clean.clone();
        match how {
            "inf entry" => c.k[j0 * d] = f32::INFINITY,
            _ => {
                c.q.fill(1.0e30);
                c.k[j0 * d..][..d].fill(1.0e30);
            }
        }
        let out = run(FAST, &c);
        let naive = run(NAIVE, &c);
        for t in j0..n {
            assert!(
                row(&out, t, 0, 1, d).iter().all(|x| x.is_nan()),
                "{how}: row {t}"
            );
            assert!(
                row(&naive, t, 0, 1, d).iter().all(|x| x.is_nan()),
                "{how}: reference row {t}"
            );
        }
        if how == "inf entry" {
            assert_eq!(
                bits(&out[..j0 * d]),
                bits(&base[..j0 * d]),
                "{how}: rows before {j0}"
            );
        }
    }
}

/// **A −∞ score is a mask** (from a `−∞` entry, or a product that
/// overflows to `−∞`): the key weighs exactly 0 and its value row is never
/// read, so NaN, `+∞` or `−∞` there changes no bit of any output, wherever
/// the masked keys sit (a whole first block of 8, single keys in later
/// blocks, keys that full tiles of queries see and keys only lone queries
/// see). A row whose every visible score is `−∞` sees no key: exactly
/// `+0.0`. The reference does the same, and the rows that also see other
/// keys meet the contract.
#[test]
fn a_minus_infinite_score_is_a_mask() {
    let d = 2;
    let leading = |n: usize| (format!("{n} leading"), (0..n).collect::<Vec<_>>());
    let mut layouts: Vec<(String, Vec<usize>)> = [1, 3, 7, 8, 9, 16, 20].map(leading).into();
    layouts.push(("scattered".into(), vec![2, 9, 10, 17, 23]));
    for (name, masked) in &layouts {
        let n = 24;
        let shape = Shape::new(n, n, 1, 1, d).with_scale(1.0);
        let mut clean = fixed_case(shape, 1.0, n as u64);
        clean.q.iter_mut().for_each(|x| *x = x.abs() + 0.5);
        for overflow in [false, true] {
            let mut c = clean.clone();
            // A −∞ entry, or finite entries whose products overflow to −∞.
            let key = if overflow {
                c.q.iter_mut().step_by(d).for_each(|x| *x = 1.0e30);
                [-1.0e30, 0.0]
            } else {
                [f32::NEG_INFINITY, 0.0]
            };
            for &j in masked {
                c.k[j * d..][..d].copy_from_slice(&key);
            }
            let base = run(FAST, &c);
            let naive = run(NAIVE, &c);
            for hostile in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut h = c.clone();
                for &j in masked {
                    h.v[j * d..][..d].fill(hostile);
                }
                let what = format!("{name}, overflow {overflow}, v = {hostile}");
                assert_eq!(bits(&run(FAST, &h)), bits(&base), "{what}");
                assert_eq!(bits(&run(NAIVE, &h)), bits(&naive), "reference: {what}");
            }
            // Rows whose every visible key is masked: +0.0, fast and reference.
            let blind = (0..n).take_while(|t| masked.contains(t)).count();
            for t in 0..n {
                let (o, r) = (row(&base, t, 0, 1, d), row(&naive, t, 0, 1, d));
                if t < blind {
                    assert_eq!(bits(o), [0, 0], "{name}: row {t}");
                    assert_eq!(bits(r), [0, 0], "{name}: reference row {t}");
                } else {
                    assert!(o.iter().all(|x| x.is_finite()), "{name}: row {t} {o:?}");
                }
            }
            if !overflow {
                // The oracle masks the same keys (their f64 scores are −∞ too).
                contract(FAST, NAIVE, &c).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

/// **A −∞ score is a mask, in the weights too**: `softmax` and
/// `attention_weights` give a `−∞` entry weight exactly 0 and a row of
/// nothing but `−∞` entries all zeros, bit for bit as the reference.
#[test]
fn softmax_and_weights_mask_minus_infinity() {
    let ninf = f32::NEG_INFINITY;
    for row in [[ninf; 4], [ninf, 1.0, ninf, 2.0], [0.5, ninf, ninf, ninf]] {
        let (mut fast, mut naive) = (row, row);
        microattn::softmax(&mut fast);
        microattn::reference::softmax(&mut naive);
        assert_eq!(bits(&fast), bits(&naive), "{row:?}");
        for (w, x) in fast.iter().zip(row) {
            if x == ninf {
                assert_eq!(w.to_bits(), 0, "{row:?}");
            }
        }
        let live: f32 = fast.iter().sum();
        let any = row.iter().any(|&x| x != ninf);
        assert!(
            if any {
                (live - 1.0).abs() < 1e-6
            } else {
                live == 0.0
            },
            "{row:?}"
        );
    }
    // q = [1, 0], keys 0 and 2 at −∞: their weights are 0; row 0 sees only
    // key 0, so it is all zeros.
    let q = [[1.0f32, 0.0]; 3];
    let k = [[ninf, 0.0], [1.0, 0.0], [ninf, 0.0]];
    let (mut fast, mut naive) = ([[f32::NAN; 3]; 3], [[f32::NAN; 3]; 3]);
    microattn::attention_weights(&q, &k, 1.0, &mut fast);
    microattn::reference::attention_weights(&q, &k, 1.0, &mut naive);
    assert_eq!(fast, [[0.0; 3], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]);
    assert_eq!(bits(fast.as_flattened()), bits(naive.as_flattened()));
}

/// **A NaN or ±∞ scale**: the runtime API rejects it; the fixed-size API
/// and the caches, which cannot fail, make every output (and log-sum-exp)
/// NaN, also for rows whose every score would be `−∞` (an infinite scale
/// times negative dot products), which would otherwise be masks. The
/// reference does the same.
#[test]
fn a_non_finite_scale_makes_every_output_nan() {
    // Head 0's dot products are all positive, head 1's all negative.
    let q = [[[1.0f32, 0.5], [-1.0, -0.5]]; 3];
    let k = [[[0.5f32, 1.0]]; 3];
    let v = [[[1.0f32, 2.0]]; 3];
    for scale in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let mut out = [[[0.0f32; 2]; 2]; 3];
        microattn::causal_multi_head_scaled(&q, &k, &v, scale, &mut out);
        assert!(
            out.as_flattened().as_flattened().iter().all(|x| x.is_nan()),
            "{scale}"
        );
        let mut naive = [[[0.0f32; 2]; 2]; 3];
        microattn::reference::causal_multi_head_scaled(&q, &k, &v, scale, &mut naive);
        assert!(
            naive
                .as_flattened()
                .as_flattened()
                .iter()
                .all(|x| x.is_nan()),
            "{scale}"
        );
        let mut cache = microattn::KvCache::<4, 1, 2>::with_scale(scale);
        let mut ring = microattn::RingKvCache::<2, 1, 2>::with_scale(scale);
        for t in 0..3 {
            let (mut out, mut lse) = ([[0.0f32; 2]; 2], [0.0f32; 2]);
            cache
                .step(&q[t], &k[t], &v[t], &mut out, None, Some(&mut lse))
                .unwrap();
            assert!(
                out.as_flattened().iter().chain(&lse).all(|x| x.is_nan()),
                "{scale}"
            );
            let (mut out, mut lse) = ([[0.0f32; 2]; 2], [0.0f32; 2]);
            ring.step(&q[t], &k[t], &v[t], &mut out, None, Some(&mut lse));
            assert!(
                out.as_flattened().iter().chain(&lse).all(|x| x.is_nan()),
                "{scale}"
            );
        }
        let shape = Shape::new(3, 3, 2, 1, 2).with_scale(scale);
        let (qf, kf, vf) = (
            q.as_flattened().as_flattened(),
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
        );
        let mut out = [0.0f32; 12];
        let e = microattn::causal_attention_dyn(&shape, qf, kf, vf, &mut out);
        assert_eq!(e, Err(microattn::Error::NonFiniteScale));
    }
}

/// **The fuzz target's finding, through every path**: a query whose first
/// block of keys all score `−∞` and whose values there are NaN, alone (a
/// decode step), inside a full tile, through a `KvCache` decode step and a
/// `RingKvCache`: the masked values are never read, so every path gives the
/// finite result, the same bits.
#[test]
fn masked_nan_values_are_never_read_on_any_path() {
    const N: usize = 17;
    let mut k = [[[0.0f32; 1]; 1]; N];
    let mut v = [[[0.0f32; 1]; 1]; N];
    let q = [[[1.0e30f32; 1]; 1]; N];
    for j in 0..N {
        // Keys 0..9 overflow to −∞ against q, with NaN values.
        let masked = j < 9;
        k[j][0][0] = if masked { -1.0e30 } else { 1.0e-30 * j as f32 };
        v[j][0][0] = if masked { f32::NAN } else { j as f32 };
    }
    let mut fixed = [[[f32::NAN; 1]; 1]; N];
    microattn::causal_multi_head_scaled(&q, &k, &v, 1.0, &mut fixed);
    let mut naive = [[[f32::NAN; 1]; 1]; N];
    microattn::reference::causal_multi_head_scaled(&q, &k, &v, 1.0, &mut naive);
    for t in 0..N {
        let want = if t < 9 { 0.0 } else { fixed[t][0][0] };
        assert!(
            fixed[t][0][0].is_finite() && naive[t][0][0].is_finite(),
            "row {t}"
        );
        assert_eq!(fixed[t][0][0].to_bits(), want.to_bits(), "row {t}");
    }
    let mut cache = microattn::KvCache::<N, 1, 1>::with_scale(1.0);
    let mut ring = microattn::RingKvCache::<N, 1, 1>::with_scale(1.0);
    for t in 0..N {
        let mut out = [[f32::NAN; 1]; 1];
        cache
            .step(&q[t], &k[t], &v[t], &mut out, None, None)
            .unwrap();
        assert_eq!(
            out[0][0].to_bits(),
            fixed[t][0][0].to_bits(),
            "cache step {t}"
        );
        let mut out = [[f32::NAN; 1]; 1];
        ring.step(&q[t], &k[t], &v[t], &mut out, None, None);
        assert_eq!(
            out[0][0].to_bits(),
            fixed[t][0][0].to_bits(),
            "ring step {t}"
        );
    }
}

/// **Values near `f32::MAX`**: the kernel divides by the normaliser last,
/// so its running sum `Σ weight·v` (weights ≤ 1) must fit in f32. Expected:
/// finite outputs, and the contract, while a row's visible `v` column sums
/// to less than `f32::MAX` in magnitude — here every weight is 1 (equal
/// scores) and every `v` is `0.99·f32::MAX / n`, the worst case.
#[test]
fn values_near_f32_max_whose_sum_fits_stay_finite() {
    for n in [1, 2, 8, 9, 17] {
        let shape = Shape::new(n, n, 1, 1, 3);
        let big = 0.99 * f32::MAX / n as f32;
        let c = case(shape, vec![0.5; 3 * n], vec![0.5; 3 * n], vec![big; 3 * n]);
        let out = fast_within_contract(&c);
        assert!(out.iter().all(|x| x.is_finite()), "n {n}: {out:?}");
        // Mixed signs and magnitudes, the sum still bounded.
        let mut mixed = c.clone();
        mixed
            .v
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x *= if i % 3 == 1 { -1.0 } else { 0.5 });
        assert!(fast_within_contract(&mixed).iter().all(|x| x.is_finite()));
    }
}

/// **Subnormal inputs**: q, k, v drawn with subnormals (and ±0) among
/// ordinary values. Expected: no NaN, the contract. All-subnormal q and k
/// make every product underflow to 0, so every row is the mean of its `v`.
#[test]
fn subnormal_inputs_are_ordinary_numbers() {
    for d in [1, 7, 8, 9, 16] {
        let shape = Shape::new(17, 17, 2, 1, d);
        let c = fixed_case_with(shape, Fill::Edgy(2.0), d as u64);
        assert!(c.q.iter().any(|x| x.is_subnormal()));
        let out = fast_within_contract(&c);
        assert!(out.iter().all(|x| x.is_finite()));

        let mut tiny = c.clone();
        tiny.q.iter_mut().for_each(|x| *x = 1.0e-40f32.copysign(*x));
        tiny.k
            .iter_mut()
            .for_each(|x| *x = f32::from_bits(3).copysign(*x));
        zero_query_is_mean(FAST, &tiny).unwrap();
        // Subnormal v: the contract, and still no NaN.
        tiny.v.iter_mut().for_each(|x| *x *= 1.0e-39);
        assert!(tiny.v.iter().any(|x| x.is_subnormal()));
        let out = fast_within_contract(&tiny);
        assert!(out.iter().all(|x| x.is_finite()));
    }
}

/// **Weights below the smallest normal are flushed to 0**: a key whose score
/// is between ln(2⁻¹²⁶) ≈ −87.34 and −104 below the maximum would weigh a
/// subnormal `e^−95 ≈ 5.5e-42`; the kernel's `exp` returns exactly 0 there.
/// Expected: with that key's `v` at 3e38 (a contribution of about 1.7e-3 if
/// it were kept) and the winner's `v` at 0, the output is exactly 0, in
/// either order of the two keys.
///
/// Depends on the softmax-specialised exp (`simd::exp`); with `wide`'s exp
/// (which returns subnormals down to about 1e-44) this test fails.
#[test]
fn weights_below_the_smallest_normal_flush_to_zero() {
    for winner_first in [true, false] {
        let shape = Shape::new(2, 2, 1, 1, 1).with_scale(1.0);
        let (win, lose) = (10.0, 10.0 - 95.0);
        let (k, v) = if winner_first {
            (vec![win, lose], vec![0.0, 3.0e38])
        } else {
            (vec![lose, win], vec![3.0e38, 0.0])
        };
        let c = case(shape, vec![1.0, 1.0], k, v);
        let out = run(FAST, &c);
        assert_eq!(out[1], 0.0, "winner first: {winner_first}: {:e}", out[1]);
    }
}

/// **The scale is applied exactly once**: `attn(c·q, s) = attn(q, c·s)`.
/// With `c` a power of two both sides compute the same scores bit for bit,
/// so the outputs are identical (a kernel applying the scale twice, or to
/// `q` and the score both, would differ). With `c = 3` (`c·q` rounds), both
/// meet the contract against their own oracle and the oracles differ only
/// by that rounding: the outputs agree within the two contract bounds plus
/// the oracles' distance.
#[test]
fn the_scale_is_applied_exactly_once() {
    for d in [1, 8, 17] {
        let shape = Shape::new(11, 11, 2, 1, d).with_scale(0.3);
        let c = fixed_case(shape, 2.0, d as u64);
        for factor in [2.0f32, 0.25, 3.0] {
            let scaled_q = Case {
                q: c.q.iter().map(|x| x * factor).collect(),
                ..c.clone()
            };
            let scaled_s = Case {
                shape: shape.with_scale(0.3 * factor),
                ..c.clone()
            };
            let (a, b) = (
                fast_within_contract(&scaled_q),
                fast_within_contract(&scaled_s),
            );
            if factor != 3.0 {
                assert_eq!(bits(&a), bits(&b), "factor {factor}, d {d}");
                continue;
            }
            let (ra, rb) = (oracle(&scaled_q), oracle(&scaled_s));
            let apart = ra
                .iter()
                .zip(&rb)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            let tol = ref_bound(&scaled_q, &ra) + ref_bound(&scaled_s, &rb) + apart;
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    f64::from((x - y).abs()) <= tol,
                    "factor 3: {x} vs {y}, tol {tol:e}"
                );
            }
        }
    }
}

/// **−0.0 vs +0.0**: the sign of a zero in q or k never changes a result
/// (products and scores compare equal, and scores start from +0.0); the sign
/// of zeros in v is kept where arithmetic keeps it: a row whose visible `v`
/// column is all −0.0 gives −0.0, a mix gives +0.0, exactly as the
/// reference does.
#[test]
fn signed_zeros() {
    let (n, d) = (10, 9);
    let shape = Shape::new(n, n, 1, 1, d);
    let c = fixed_case_with(shape, Fill::Edgy(1.0), 5);
    let mut flipped = c.clone();
    for x in flipped.q.iter_mut().chain(flipped.k.iter_mut()) {
        if *x == 0.0 {
            *x = -*x;
        }
    }
    assert_ne!(bits(&c.q), bits(&flipped.q));
    assert_eq!(bits(&run(FAST, &c)), bits(&run(FAST, &flipped)));

    let mut zeros = c.clone();
    zeros.v = (0..n * d)
        .map(|i| if i % d < 4 || i / d == 3 { -0.0 } else { 0.0 })
        .collect();
    let out = run(FAST, &zeros);
    assert_eq!(bits(&out), bits(&run(NAIVE, &zeros)));
    for t in 0..n {
        for col in 0..d {
            let all_negative = (0..=t).all(|j| zeros.v[j * d + col].is_sign_negative());
            assert_eq!(
                out[t * d + col].to_bits(),
                if all_negative { (-0.0f32).to_bits() } else { 0 }
            );
        }
    }
}

/// **±∞ in v**: an infinite `v[j][c]` with a positive weight makes column
/// `c` of every row that sees `j` that infinity; if `+∞` and `−∞` meet in a
/// column, or the weight of the infinite value is exactly 0, the column is
/// NaN (`∞ − ∞`, `0·∞`). Other columns keep their bits. The reference does
/// the same.
#[test]
fn infinite_values_in_v() {
    let (n, d) = (12, 5);
    let shape = Shape::new(n, n, 1, 1, d);
    let clean = fixed_case(shape, 1.0, 21);
    let base = run(FAST, &clean);
    let (j1, j2, col) = (3, 9, 2);
    let mut c = clean.clone();
    c.v[j1 * d + col] = f32::INFINITY;
    c.v[j2 * d + col] = f32::NEG_INFINITY;
    let out = run(FAST, &c);
    contract(FAST, NAIVE, &c).unwrap();
    for t in 0..n {
        for cc in 0..d {
            let o = out[t * d + cc];
            if cc != col || t < j1 {
                assert_eq!(o.to_bits(), base[t * d + cc].to_bits(), "({t},{cc})");
            } else if t < j2 {
                assert_eq!(o, f32::INFINITY, "({t},{cc})");
            } else {
                assert!(o.is_nan(), "({t},{cc})");
            }
        }
    }
    // A weight of exactly 0 times ∞ is NaN.
    let shape = Shape::new(2, 2, 1, 1, 1).with_scale(1.0);
    let c = case(
        shape,
        vec![1.0, 1.0],
        vec![-200.0, 0.0],
        vec![f32::INFINITY, 1.0],
    );
    let (out, naive) = (run(FAST, &c), run(NAIVE, &c));
    assert!(out[1].is_nan() && naive[1].is_nan());
}

/// **Lengths and head dims around every lane width** (4, 8, 16, each ±1),
/// for MHA, GQA and MQA, through the runtime and the padded APIs. Expected:
/// the contract, row 0 equal to `v[0]` bit for bit, and padded results equal
/// to unpadded ones.
#[test]
fn lengths_and_head_dims_around_every_lane_width() {
    for (h, kvh) in [(1, 1), (2, 1), (4, 2)] {
        for &n in AROUND_LANES {
            for &d in AROUND_LANES {
                let shape = Shape::new(n, n, h, kvh, d);
                let c = fixed_case(shape, 3.0, (n * 100 + d) as u64);
                let out = fast_within_contract(&c);
                for head in 0..h {
                    let g = head / (h / kvh);
                    assert_eq!(
                        bits(row(&out, 0, head, h, d)),
                        bits(row(&c.v, 0, g, kvh, d))
                    );
                }
                let mut padded = vec![f32::NAN; out.len()];
                causal_attention_padded(&shape, 1, &[n], &c.q, &c.k, &c.v, &mut padded).unwrap();
                assert_eq!(bits(&padded), bits(&out), "{shape:?}");
            }
        }
    }
}

/// **Affine equivariance**: the weights sum to 1, so `a·v + b` gives
/// `a·out + b`. Expected, with `out'` the output for `a·v + b`: both meet the
/// contract, the f64 oracles are affine to 1e-12 relative, and
/// `|out' − (a·out + b)| ≤ bound' + |a|·bound + ε·|a·out + b|` (the two
/// contract bounds and the rounding of `a·out + b`).
#[test]
fn affine_equivariance() {
    for (a, b) in [(2.0f32, 0.5f32), (-3.0, 100.0), (0.1, -7.0)] {
        for d in [1, 8, 17] {
            let shape = Shape::new(17, 17, 2, 1, d);
            let c = fixed_case(shape, 2.0, d as u64 + 40);
            let moved = Case {
                v: c.v.iter().map(|x| a * x + b).collect(),
                ..c.clone()
            };
            let (out, out2) = (fast_within_contract(&c), fast_within_contract(&moved));
            let (r, r2) = (oracle(&c), oracle(&moved));
            let (bd, bd2) = (ref_bound(&c, &r), ref_bound(&moved, &r2));
            let (a64, b64) = (f64::from(a), f64::from(b));
            for i in 0..out.len() {
                // The oracle itself is affine, up to the rounding of a·v + b in f32.
                let expect = a64 * r[i] + b64;
                let input_rounding = f64::from(f32::EPSILON) * (a64.abs() * 2.0 + b64.abs());
                assert!((r2[i] - expect).abs() <= input_rounding + 1e-12 * expect.abs());
                let lin = a64 * f64::from(out[i]) + b64;
                let tol =
                    bd2 + a64.abs() * bd + f64::from(f32::EPSILON) * lin.abs() + input_rounding;
                assert!(
                    (f64::from(out2[i]) - lin).abs() <= tol,
                    "a {a} b {b} d {d} i {i}"
                );
            }
        }
    }
}

/// **The harness can fail on NaN**: `check_contract` fails when exactly one
/// side is NaN (either side), or the infinities differ, and passes when both
/// are NaN or the same infinity — so a kernel returning NaN where the oracle
/// is finite (or the reverse) cannot pass the suites.
#[test]
fn check_contract_fails_when_exactly_one_side_is_nan() {
    let finite = [1.0f32, 2.0];
    let r64 = [1.0f64, 2.0];
    assert!(check_contract(&finite, &finite, &r64).is_ok());
    let err = check_contract(&[1.0, f32::NAN], &finite, &r64).unwrap_err();
    assert!(err.error.is_nan() && err.index == 1);
    assert!(check_contract(&finite, &finite, &[1.0, f64::NAN]).is_err());
    assert!(check_contract(&[1.0, f32::NAN], &[1.0, f32::NAN], &[1.0, f64::NAN]).is_ok());
    assert!(check_contract(&[1.0, f32::INFINITY], &finite, &[1.0, f64::INFINITY]).is_ok());
    assert!(check_contract(&[1.0, f32::NEG_INFINITY], &finite, &[1.0, f64::INFINITY]).is_err());
    assert!(check_contract(&[1.0, f32::INFINITY], &finite, &r64).is_err());
    assert!(check_contract(&[1.0, f32::NAN], &finite, &[1.0, f64::INFINITY]).is_err());
}
