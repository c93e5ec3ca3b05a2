//! The integer path's promises:
//!
//! - the kernel equals `reference::int8` bit for bit: runtime API, fixed
//!   size, and the int8 cache's prefill, decode steps and chunked prefills
//!   (which equal one causal pass bit for bit);
//! - every output is within `reference::int8::bound` of the f64 oracle on
//!   the dequantized inputs, and within 1 output step where the docs
//!   promise it (`Sv/So ≤ 1`, rows of up to 64 keys), over N up to 64,
//!   D 1..64, MHA/GQA/MQA, zero points across `i8` and scales over several
//!   decades;
//! - the `f32` output is the `i8` output's mean before its last rounding;
//! - bad parameters and buffers get typed errors; a full cache is unchanged.
//!
//! Each check is also shown failing on a deliberately broken result.

use microattn::int8::{self, KvCache, MAX_HEAD_DIM, Params, Quant};
use microattn::reference::int8 as naive;
use microattn::strategies::{Int8Case, int8_case};
use microattn::{Buffer, Error, Shape};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/int8.txt";

fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..Config::default()
    }
}

/// A case: a shape, parameters and inputs (the exported strategy's).
type Case = Int8Case;

/// Cases over the grid; `ratio` draws `log10(Sv/So)`.
fn case(max_n: usize, ratio: (f64, f64)) -> impl Strategy<Value = Case> {
    int8_case(max_n, ratio)
}

fn fast(c: &Case) -> Vec<i8> {
    let mut out = vec![0i8; c.q.len()];
    int8::causal_attention_dyn(&c.shape, &c.params, &c.q, &c.k, &c.v, &mut out).unwrap();
    out
}

fn reference(c: &Case) -> Vec<i8> {
    let mut out = vec![0i8; c.q.len()];
    naive::causal_attention_dyn(&c.shape, &c.params, &c.q, &c.k, &c.v, &mut out).unwrap();
    out
}

fn oracle(c: &Case) -> Vec<f64> {
    let mut out = vec![0f64; c.q.len()];
    naive::oracle(&c.shape, &c.params, &c.q, &c.k, &c.v, &mut out).unwrap();
    out
}

/// The first output outside `limit(visible keys)` of the oracle, as a
/// message.
fn outside(c: &Case, got: &[i8], want: &[f64], limit: impl Fn(usize) -> f64) -> Option<String> {
    let s = &c.shape;
    let row = s.heads * s.head_dim;
    got.iter().zip(want).enumerate().find_map(|(i, (&g, &w))| {
        let visible = s.kv_len - s.q_len + i / row + 1;
        let bound = limit(visible);
        (!naive::within_bound(g, w, bound))
            .then(|| format!("output {i}: {g} vs oracle {w} (bound {bound}) in {s:?}"))
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Bit for bit against the reference, and within the bound of the
    /// oracle, over scales whose ratio `Sv/So` spans 1/100..3.
    #[test]
    fn kernel_is_the_reference_and_within_the_bound(c in case(64, (-2.0, 0.5))) {
        let got = fast(&c);
        prop_assert_eq!(&got, &reference(&c), "{:?}", c.shape);
        let want = oracle(&c);
        if let Some(m) = outside(&c, &got, &want, |l| naive::bound(&c.params, l)) {
            prop_assert!(false, "{}", m);
        }
    }

    /// Issue 14's target, which the docs promise for rows of up to 64
    /// keys: within 1 output step of the oracle, for `Sv/So` across the
    /// accepted range (the derived bound shows it for `Sv/So ≤ 1`; past
    /// that it is measured: the worst of 21 million outputs was 0.65
    /// steps).
    #[test]
    fn within_one_output_step(c in case(64, (-2.0, 1.2))) {
        let got = fast(&c);
        if let Some(m) = outside(&c, &got, &oracle(&c), |_| 1.0) {
            prop_assert!(false, "{}", m);
        }
    }

    /// The `f32` output is `Sv·mean`: requantizing it by hand lands within
    /// the `i8` output's own roundings of it (half a step, the `Q8` mean's
    /// `2^−9` and the mantissa's `3.1·10⁻⁵` of up to 255 value steps, in
    /// output steps) plus the f32 rounding.
    #[test]
    fn f32_output_is_the_mean_before_rounding(c in case(24, (-1.0, 0.0))) {
        let mut real = vec![0f32; c.q.len()];
        int8::causal_attention_dyn_f32(&c.shape, &c.params, &c.q, &c.k, &c.v, &mut real).unwrap();
        let po = c.params.output();
        let m = f64::from(c.params.value().scale) / f64::from(po.scale);
        let slack = 0.5 + m * (2f64.powi(-9) + 255.0 * 3.1e-5) + 1e-6;
        for (&r, &o) in real.iter().zip(&fast(&c)) {
            let steps = (f64::from(r) / f64::from(po.scale) + f64::from(po.zero_point)).clamp(-128.0, 127.0);
            prop_assert!((steps - f64::from(o)).abs() <= slack, "{} vs {}", steps, o);
        }
    }
}

/// One fixed shape: the fixed-size calls equal the runtime one and the
/// reference; the cache's prefill, decode steps and chunked prefill equal
/// them too.
fn fixed_and_cache<const N: usize, const H: usize, const KVH: usize, const D: usize>(seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as i8
    };
    let mut q = [[[0i8; D]; H]; N];
    let mut k = [[[0i8; D]; KVH]; N];
    let mut v = [[[0i8; D]; KVH]; N];
    for x in q.iter_mut().flatten().flatten() {
        *x = next();
    }
    for x in k.iter_mut().chain(v.iter_mut()).flatten().flatten() {
        *x = next();
    }
    let quant = |s: f32, z: i32| Quant {
        scale: s,
        zero_point: z,
    };
    let params = Params::new(
        quant(0.02, -7),
        quant(0.03, 5),
        quant(0.05, -2),
        quant(0.04, 3),
        D,
    )
    .unwrap();
    let shape = Shape::new(N, N, H, KVH, D);
    let flat = |x: &[[[i8; D]; KVH]]| x.as_flattened().as_flattened().to_vec();
    let c = Case {
        shape,
        params,
        q: q.as_flattened().as_flattened().to_vec(),
        k: flat(&k),
        v: flat(&v),
    };
    let want = reference(&c);
    assert_eq!(fast(&c), want);

    let mut fixed = [[[0i8; D]; H]; N];
    int8::causal_multi_head(&params, &q, &k, &v, &mut fixed);
    assert_eq!(fixed.as_flattened().as_flattened(), &want[..]);

    let mut cache = KvCache::<N, KVH, D>::new(params);
    let mut out = [[[0i8; D]; H]; N];
    cache.prefill(&q, &k, &v, &mut out).unwrap();
    assert_eq!(out, fixed, "prefill");

    cache.clear();
    let mut steps = [[[0i8; D]; H]; N];
    for i in 0..N {
        cache.step(&q[i], &k[i], &v[i], &mut steps[i]).unwrap();
    }
    assert_eq!(steps, fixed, "decode steps");

    cache.clear();
    let cut = N / 3;
    let mut chunked = [[[0i8; D]; H]; N];
    let (a, b) = chunked.split_at_mut(cut);
    cache.prefill(&q[..cut], &k[..cut], &v[..cut], a).unwrap();
    cache.prefill(&q[cut..], &k[cut..], &v[cut..], b).unwrap();
    assert_eq!(chunked, fixed, "chunked prefill");

    // Full: a step fails and changes nothing.
    let before = (cache.keys().to_vec(), cache.values().to_vec());
    let mut untouched = [[42i8; D]; H];
    let err = cache.step(&q[0], &k[0], &v[0], &mut untouched);
    assert_eq!(
        err,
        Err(Error::CacheFull {
            capacity: N,
            len: N,
            requested: 1
        })
    );
    assert_eq!((cache.keys().to_vec(), cache.values().to_vec()), before);
    assert_eq!(untouched, [[42i8; D]; H]);
}

#[test]
fn fixed_size_and_cache_paths_are_the_reference_bit_for_bit() {
    fixed_and_cache::<32, 2, 1, 16>(1);
    fixed_and_cache::<17, 4, 2, 7>(2);
    fixed_and_cache::<9, 3, 3, 1>(3);
    fixed_and_cache::<64, 1, 1, 64>(4);
    // Past the stored scores and one i32 block of value sums.
    fixed_and_cache::<300, 2, 1, 3>(5);
}

#[test]
fn an_empty_cache_attends_to_the_zero_point() {
    let a = Quant {
        scale: 0.1,
        zero_point: -9,
    };
    let cache = KvCache::<4, 1, 2>::new(Params::new(a, a, a, a, 2).unwrap());
    let mut out = [[0i8; 2]; 1];
    cache.attend(&[[5, 5]], &mut out);
    assert_eq!(out, [[-9, -9]]);
}

#[test]
fn extreme_inputs_stay_exact_and_in_range() {
    // Every value at an end of i8, zero points at the other: the largest
    // scores and value sums the types allow.
    for (x, z) in [(-128i8, 127i32), (127, -128)] {
        let a = Quant {
            scale: 1.0,
            zero_point: z,
        };
        let o = Quant {
            scale: 2.0,
            zero_point: 0,
        };
        let params = Params::new(a, a, a, o, 256).unwrap();
        let shape = Shape::new(3, 300, 1, 1, 256);
        let c = Case {
            shape,
            params,
            q: vec![x; 3 * 256],
            k: vec![x; 300 * 256],
            v: vec![x; 300 * 256],
        };
        assert_eq!(fast(&c), reference(&c));
        let want = oracle(&c);
        assert!(outside(&c, &fast(&c), &want, |l| naive::bound(&params, l)).is_none());
    }
}

#[test]
fn bad_parameters_and_buffers_get_typed_errors() {
    let ok = Quant {
        scale: 0.1,
        zero_point: 0,
    };
    let zero_scale = Quant {
        scale: 0.0,
        zero_point: 0,
    };
    let nan_scale = Quant {
        scale: f32::NAN,
        zero_point: 0,
    };
    let far_zero = Quant {
        scale: 0.1,
        zero_point: 128,
    };
    for (bad, what) in [
        (zero_scale, "query"),
        (nan_scale, "query"),
        (far_zero, "query"),
    ] {
        let err = Params::new(bad, ok, ok, ok, 4).unwrap_err();
        assert!(
            matches!(err, Error::InvalidQuantization { what: w, .. } if w == what),
            "{err}"
        );
    }
    let err = Params::with_score_scale(ok, ok, ok, ok, -1.0).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidQuantization {
            what: "score scale",
            ..
        }
    ));
    assert_eq!(
        Params::with_score_scale(ok, ok, ok, ok, f32::INFINITY),
        Err(Error::NonFiniteScale)
    );
    // Sv/So below the requantization's range.
    let coarse = Quant {
        scale: 1e9,
        zero_point: 0,
    };
    let err = Params::new(ok, ok, ok, coarse, 4).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidQuantization { what: "output", .. }
    ));
    assert_eq!(
        Params::new(ok, ok, ok, ok, 0),
        Err(Error::ZeroDimension { field: "head_dim" })
    );

    let p = Params::new(ok, ok, ok, ok, 4).unwrap();
    let shape = Shape::new(2, 2, 1, 1, 4);
    let x = [0i8; 8];
    let mut out = [7i8; 8];
    assert_eq!(
        int8::causal_attention_dyn(&shape, &p, &x, &x[1..], &x, &mut out),
        Err(Error::LengthMismatch {
            buffer: Buffer::Key,
            expected: 8,
            actual: 7
        })
    );
    assert_eq!(out, [7; 8]);
    let wide = Shape::new(1, 1, 1, 1, MAX_HEAD_DIM + 1);
    let big = vec![0i8; MAX_HEAD_DIM + 1];
    let mut big_out = vec![0i8; MAX_HEAD_DIM + 1];
    assert_eq!(
        int8::causal_attention_dyn(&wide, &p, &big, &big, &big, &mut big_out),
        Err(Error::HeadDimTooLarge {
            head_dim: MAX_HEAD_DIM + 1,
            max: MAX_HEAD_DIM
        })
    );
    let mut cache = KvCache::<2, 1, 4>::new(p);
    assert_eq!(
        cache.extend(&[[[0; 4]]; 2], &[[[0; 4]]; 1]),
        Err(Error::LengthMismatch {
            buffer: Buffer::Value,
            expected: 8,
            actual: 4
        })
    );
    assert!(cache.is_empty());
}

/// The checks above catch a broken result: one output off by one step
/// fails the bit-exact comparison, and an output two steps off fails the
/// bound.
#[test]
fn the_checks_reject_broken_results() {
    let runner_case = {
        let a = Quant {
            scale: 0.02,
            zero_point: 3,
        };
        let params = Params::new(a, a, a, a, 8).unwrap();
        let n = 8 * 8;
        let fill = |s: i32| {
            (0..n)
                .map(|i| ((i * 37 + s) % 251 - 125) as i8)
                .collect::<Vec<_>>()
        };
        Case {
            shape: Shape::new(8, 8, 1, 1, 8),
            params,
            q: fill(1),
            k: fill(2),
            v: fill(3),
        }
    };
    let c = runner_case;
    let mut got = fast(&c);
    assert_eq!(got, reference(&c));
    let want = oracle(&c);
    assert!(outside(&c, &got, &want, |l| naive::bound(&c.params, l)).is_none());
    got[5] = got[5].wrapping_add(1);
    assert_ne!(got, reference(&c));
    got[5] = got[5].wrapping_add(1);
    assert!(outside(&c, &got, &want, |l| naive::bound(&c.params, l)).is_some());
}
