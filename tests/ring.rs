//! The promises of `RingKvCache` (sliding-window attention), for sequences
//! of `2·WINDOW + 3` tokens, so that every window position is visited: the
//! filling phase, the first wrap, and every rotation of the ring's start.
//!
//! - Each step is within the accuracy contract of the textbook sliding-window
//!   reference and its f64 oracle (each query sees positions
//!   `max(0, p − W + 1)..=p`).
//! - Each step gives exactly the bits (outputs, weights, log-sum-exps) of a
//!   plain `KvCache` holding just the window's tokens, oldest first: the ring
//!   reduces keys in the same logical order.
//! - A batch prefill (in one go or in chunks) gives the bits of the steps.
//! - Slots never written since a `clear` (NaN) never affect a result.
//! - Pushes `W−1, W, W+1, 2·W+3`: the ring keeps exactly the last `W`
//!   positions, oldest first, never fails and never panics.

mod common;

use common::{ordinary, prop, runner, same_bits};
use microattn::reference::{self, check_contract, check_error_bound};
use microattn::strategies::{Fill, fixed_case_with};
use microattn::{KvCache, RingKvCache, Shape};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/ring.txt";

/// A ring whose storage held NaN before a `clear`.
fn poisoned<const W: usize, const KVH: usize, const D: usize>() -> RingKvCache<W, KVH, D> {
    let mut ring = RingKvCache::new();
    for i in 0..W + 1 {
        let nan = [[f32::from_bits(0x7fc0_0000 + i as u32); D]; KVH];
        ring.push(&nan, &nan);
    }
    ring.clear();
    ring
}

fn window_promises<const W: usize, const H: usize, const KVH: usize, const D: usize>(
    fill: Fill,
    seed: u64,
    split: usize,
) -> Result<(), String> {
    let t_len = 2 * W + 3;
    let shape = Shape::new(t_len, t_len, H, KVH, D);
    let case = fixed_case_with(shape, fill, seed);
    let q: Vec<[[f32; D]; H]> = case.q.as_chunks::<D>().0.as_chunks::<H>().0.to_vec();
    let k: Vec<[[f32; D]; KVH]> = case.k.as_chunks::<D>().0.as_chunks::<KVH>().0.to_vec();
    let v: Vec<[[f32; D]; KVH]> = case.v.as_chunks::<D>().0.as_chunks::<KVH>().0.to_vec();
    let what = |w: &str| format!("{w} (W={W}, H={H}, KVH={KVH}, D={D}, seed={seed})");

    let mut stepped = Vec::new();
    let mut stepped_lse = Vec::new();
    let mut fresh = RingKvCache::<W, KVH, D>::new();
    let mut ring = poisoned::<W, KVH, D>();
    for t in 0..t_len {
        let mut out = [[f32::NAN; D]; H];
        let mut w = [[f32::NAN; W]; H];
        let mut lse = [f32::NAN; H];
        ring.step(&q[t], &k[t], &v[t], &mut out, Some(&mut w), Some(&mut lse));
        let mut fresh_out = [[f32::NAN; D]; H];
        fresh.step(&q[t], &k[t], &v[t], &mut fresh_out, None, None);
        same_bits(
            &what(&format!("poisoned vs fresh ring, step {t}")),
            fresh_out.as_flattened(),
            out.as_flattened(),
        )?;

        // The window, oldest first, in a plain cache: same bits.
        let lo = (t + 1).saturating_sub(W);
        let mut plain = KvCache::<W, KVH, D>::new();
        plain
            .extend(&k[lo..=t], &v[lo..=t])
            .map_err(|e| e.to_string())?;
        let (mut p_out, mut p_w, mut p_lse) =
            ([[f32::NAN; D]; H], [[f32::NAN; W]; H], [f32::NAN; H]);
        plain.attend(&q[t], &mut p_out, Some(&mut p_w), Some(&mut p_lse));
        let step = format!("step {t}");
        same_bits(
            &what(&format!("ring vs plain window out, {step}")),
            out.as_flattened(),
            p_out.as_flattened(),
        )?;
        same_bits(
            &what(&format!("ring vs plain window weights, {step}")),
            w.as_flattened(),
            p_w.as_flattened(),
        )?;
        same_bits(
            &what(&format!("ring vs plain window lse, {step}")),
            &lse,
            &p_lse,
        )?;

        // The views: the last min(t + 1, W) tokens, oldest first.
        let (a, b) = ring.keys();
        let (c, d) = ring.values();
        if [a, b].concat() != k[lo..=t] || [c, d].concat() != v[lo..=t] || ring.len() != t + 1 - lo
        {
            return Err(what(&format!("views wrong at {step}")));
        }
        stepped.extend_from_slice(out.as_flattened());
        stepped_lse.extend(lse);
    }

    // The batch prefill, whole and in two chunks: the steps' bits.
    let mut whole = vec![[[f32::NAN; D]; H]; t_len];
    let mut whole_lse = vec![[f32::NAN; H]; t_len];
    let mut ring = poisoned::<W, KVH, D>();
    ring.prefill(&q, &k, &v, &mut whole, Some(&mut whole_lse))
        .map_err(|e| e.to_string())?;
    same_bits(
        &what("prefill vs steps"),
        whole.as_flattened().as_flattened(),
        &stepped,
    )?;
    same_bits(
        &what("prefill lse vs steps"),
        whole_lse.as_flattened(),
        &stepped_lse,
    )?;
    let mut chunks = vec![[[f32::NAN; D]; H]; t_len];
    let mut ring = RingKvCache::<W, KVH, D>::new();
    let split = split.min(t_len);
    let (o1, o2) = chunks.split_at_mut(split);
    ring.prefill(&q[..split], &k[..split], &v[..split], o1, None)
        .map_err(|e| e.to_string())?;
    ring.prefill(&q[split..], &k[split..], &v[split..], o2, None)
        .map_err(|e| e.to_string())?;
    same_bits(
        &what("chunked prefill vs steps"),
        chunks.as_flattened().as_flattened(),
        &stepped,
    )?;

    // Within the a-priori bound of the sliding-window oracle (each query's
    // bound is causal attention's over its window), and on ordinary inputs
    // within the precision check.
    let mut naive = vec![f32::NAN; case.q.len()];
    let mut ref64 = vec![f64::NAN; case.q.len()];
    reference::sliding_window_attention(&shape, W, &case.q, &case.k, &case.v, &mut naive)
        .map_err(|e| e.to_string())?;
    reference::sliding_window_f64(&shape, W, &case.q, &case.k, &case.v, &mut ref64)
        .map_err(|e| e.to_string())?;
    let mut bound = Vec::with_capacity(case.q.len());
    for t in 0..t_len {
        let lo = (t + 1).saturating_sub(W);
        let window = Shape::new(1, t + 1 - lo, H, KVH, D).with_scale(shape.scale);
        let mut b = vec![f64::NAN; H * D];
        let kv = |x: &[f32]| x[lo * KVH * D..(t + 1) * KVH * D].to_vec();
        let q_row = &case.q[t * H * D..(t + 1) * H * D];
        reference::error_bound(&window, q_row, &kv(&case.k), &kv(&case.v), &mut b)
            .map_err(|e| e.to_string())?;
        bound.extend(b);
    }
    check_error_bound(&stepped, &ref64, &bound).map_err(|e| what(&e.to_string()))?;
    if ordinary(&[&case.q, &case.k, &case.v]) {
        check_contract(&stepped, &naive, &ref64).map_err(|e| what(&e.to_string()))?;
    }
    Ok(())
}

type Promise = fn(Fill, u64, usize) -> Result<(), String>;

/// Windows around the lane width (1, 2, 7, 8, 9, 17) × MHA, GQA, MQA.
const CASES: [(&str, Promise); 10] = [
    ("W1 1,1,4", window_promises::<1, 1, 1, 4>),
    ("W2 2,1,3", window_promises::<2, 2, 1, 3>),
    ("W7 4,2,9", window_promises::<7, 4, 2, 9>),
    ("W8 1,1,8", window_promises::<8, 1, 1, 8>),
    ("W8 4,4,16", window_promises::<8, 4, 4, 16>),
    ("W9 8,2,7", window_promises::<9, 8, 2, 7>),
    ("W9 2,2,1", window_promises::<9, 2, 2, 1>),
    ("W17 4,1,17", window_promises::<17, 4, 1, 17>),
    ("W17 2,2,8", window_promises::<17, 2, 2, 8>),
    ("W3 8,8,5", window_promises::<3, 8, 8, 5>),
];

#[test]
fn ring_matches_window_reference_and_plain_cache() {
    for (name, promise) in CASES {
        for (seed, fill) in [Fill::Uniform(1.0), Fill::Edgy(3.0), Fill::Uniform(40.0)]
            .into_iter()
            .enumerate()
        {
            promise(fill, seed as u64, seed + 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn ring_properties_random() {
    let strategy = (
        0..CASES.len(),
        prop_oneof![
            Just(Fill::Uniform(1.0)),
            Just(Fill::Edgy(3.0)),
            Just(Fill::Uniform(40.0))
        ],
        any::<u64>(),
        0usize..=7,
    );
    runner(32, REGRESSIONS)
        .run(&strategy, |(case, fill, seed, split)| {
            prop(CASES[case].1(fill, seed, split))
        })
        .unwrap();
}

/// W−1, W, W+1 and 2·W+3 pushes: exactly the last W positions are kept.
fn boundaries<const W: usize>() {
    for pushes in [W - 1, W, W + 1, 2 * W + 3] {
        let mut ring = RingKvCache::<W, 1, 2>::new();
        let tokens: Vec<[[f32; 2]; 1]> = (0..pushes).map(|i| [[i as f32, -(i as f32)]]).collect();
        for (i, tok) in tokens.iter().enumerate() {
            ring.push(tok, tok);
            assert_eq!(ring.len(), (i + 1).min(W));
            assert_eq!(ring.is_full(), i + 1 >= W);
        }
        let lo = pushes.saturating_sub(W);
        let (a, b) = ring.keys();
        assert_eq!([a, b].concat(), tokens[lo..], "W={W}, {pushes} pushes");
        let mut batch = RingKvCache::<W, 1, 2>::new();
        batch.extend(&tokens, &tokens).unwrap();
        assert_eq!(batch.keys(), ring.keys());
        assert_eq!(batch.values(), ring.values());
    }
}

#[test]
fn capacity_boundaries() {
    boundaries::<1>();
    boundaries::<2>();
    boundaries::<7>();
    boundaries::<8>();
    boundaries::<9>();
    boundaries::<33>();
}

#[test]
fn empty_ring_and_mismatches() {
    use microattn::{Buffer, Error};
    let ring = RingKvCache::<4, 1, 2>::new();
    let mut out = [[f32::NAN; 2]; 2];
    let mut lse = [f32::NAN; 2];
    let mut w = [[f32::NAN; 4]; 2];
    ring.attend(&[[1.0; 2]; 2], &mut out, Some(&mut w), Some(&mut lse));
    assert_eq!(
        (out, w, lse),
        ([[0.0; 2]; 2], [[0.0; 4]; 2], [f32::NEG_INFINITY; 2])
    );

    let mut ring = RingKvCache::<4, 1, 2>::new();
    let kv = [[[1.0f32; 2]; 1]; 3];
    let q = [[[1.0f32; 2]; 2]; 3];
    let mut out = [[[f32::NAN; 2]; 2]; 3];
    assert_eq!(
        ring.prefill(&q, &kv[..2], &kv, &mut out, None),
        Err(Error::LengthMismatch {
            buffer: Buffer::Key,
            expected: 6,
            actual: 4
        })
    );
    assert_eq!(
        ring.extend(&kv, &kv[..1]),
        Err(Error::LengthMismatch {
            buffer: Buffer::Value,
            expected: 6,
            actual: 2
        })
    );
    assert!(ring.is_empty());
    assert!(out.as_flattened().as_flattened().iter().all(|x| x.is_nan()));
}

/// The reference's window itself: `window ≥ kv_len` is plain causal
/// attention, bit for bit, and a zero window is an error.
#[test]
fn window_reference_basics() {
    let shape = Shape::new(9, 9, 4, 2, 5);
    let case = fixed_case_with(shape, Fill::Uniform(2.0), 7);
    let mut causal = vec![0.0f32; case.q.len()];
    let mut windowed = vec![0.0f32; case.q.len()];
    reference::causal_attention_dyn(&shape, &case.q, &case.k, &case.v, &mut causal).unwrap();
    for window in [9, 10, usize::MAX] {
        reference::sliding_window_attention(
            &shape,
            window,
            &case.q,
            &case.k,
            &case.v,
            &mut windowed,
        )
        .unwrap();
        same_bits("window ≥ kv_len", &windowed, &causal).unwrap();
    }
    assert_eq!(
        reference::sliding_window_attention(&shape, 0, &case.q, &case.k, &case.v, &mut windowed),
        Err(microattn::Error::ZeroDimension { field: "window" })
    );
    // Window 1: each query reads its own value row.
    reference::sliding_window_attention(&shape, 1, &case.q, &case.k, &case.v, &mut windowed)
        .unwrap();
    for t in 0..9 {
        for h in 0..4 {
            let g = h / 2;
            assert_eq!(
                &windowed[(t * 4 + h) * 5..][..5],
                &case.v[(t * 2 + g) * 5..][..5]
            );
        }
    }
}
