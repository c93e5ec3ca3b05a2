//! `RingKvCache` with attention sinks (`SINKS > 0`, StreamingLLM): the
//! first `SINKS` positions stay, the rest slide.
//!
//! - After any number of pushes the ring holds positions `0..SINKS` and the
//!   last `WINDOW − SINKS`, in that order (`keys()`, `values()`).
//! - Each step gives exactly the bits (outputs, weights, log-sum-exps) of a
//!   plain `KvCache` holding just those positions in that order, for `f32`
//!   and `f16` storage, and a prefill the bits of the steps.
//! - Each step is within the precision contract of the textbook reference:
//!   the scored reference with a key mask that keeps the sinks and the
//!   window, and its f64 oracle.
//! - The check fails on a ring that forgets its sinks (a plain ring).

mod common;

use microattn::reference::{
    attention_mass_scored_f64, causal_attention_scored as naive, causal_attention_scored_f64,
    check_contract_with_mass,
};
use microattn::strategies::{Fill, fixed_case_with};
use microattn::{Element, KvCache, RingKvCache, Scoring, Shape, f16};

type Tokens<const X: usize, const D: usize> = Vec<[[f32; D]; X]>;

fn tokens<const X: usize, const D: usize>(flat: &[f32]) -> Tokens<X, D> {
    flat.as_chunks::<D>().0.as_chunks::<X>().0.to_vec()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The positions a sink ring holds after `p + 1` pushes, in its order.
fn held(p: usize, window: usize, sinks: usize) -> Vec<usize> {
    if p < window {
        return (0..=p).collect();
    }
    (0..sinks).chain(p + 1 + sinks - window..=p).collect()
}

/// Steps `0..n` of a sink ring against a `KvCache` of the held positions
/// (bits) and the scored reference with the matching key mask (contract).
fn sink_promises<
    const W: usize,
    const S: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    E: Element,
>(
    n: usize,
    seed: u64,
    check_contract: bool,
) -> Result<(), String> {
    let shape = Shape::new(n, n, H, KVH, D);
    let case = fixed_case_with(shape, Fill::Uniform(4.0), seed);
    let (q, k, v): (Tokens<H, D>, Tokens<KVH, D>, Tokens<KVH, D>) =
        (tokens(&case.q), tokens(&case.k), tokens(&case.v));
    let mut ring = RingKvCache::<W, KVH, D, E, S>::new();
    let mut batch = RingKvCache::<W, KVH, D, E, S>::new();
    let mut batch_out = vec![[[f32::NAN; D]; H]; n];
    batch
        .prefill(&q, &k, &v, &mut batch_out, None)
        .map_err(|e| e.to_string())?;
    for p in 0..n {
        let (mut out, mut weights, mut lse) =
            ([[f32::NAN; D]; H], [[f32::NAN; W]; H], [f32::NAN; H]);
        ring.step(
            &q[p],
            &k[p],
            &v[p],
            &mut out,
            Some(&mut weights),
            Some(&mut lse),
        );
        let positions = held(p, W, S);
        // What it holds, in order (as E rounds it).
        let (older, newer) = ring.keys();
        let stored: Vec<_> = older.iter().chain(newer).collect();
        let want: Vec<[[E; D]; KVH]> = positions
            .iter()
            .map(|&j| k[j].map(|row| row.map(E::from_f32)))
            .collect();
        if stored.len() != want.len() || stored.iter().zip(&want).any(|(a, b)| **a != *b) {
            return Err(format!(
                "step {p}: holds the wrong positions, want {positions:?}"
            ));
        }
        // The bits of a plain cache holding those positions.
        let mut plain = KvCache::<W, KVH, D, E>::new();
        for &j in &positions[..positions.len() - 1] {
            plain.push(&k[j], &v[j]).map_err(|e| e.to_string())?;
        }
        let (mut want_out, mut want_w, mut want_lse) =
            ([[f32::NAN; D]; H], [[f32::NAN; W]; H], [f32::NAN; H]);
        plain
            .step(
                &q[p],
                &k[p],
                &v[p],
                &mut want_out,
                Some(&mut want_w),
                Some(&mut want_lse),
            )
            .map_err(|e| e.to_string())?;
        if bits(out.as_flattened()) != bits(want_out.as_flattened())
            || bits(weights.as_flattened()) != bits(want_w.as_flattened())
            || bits(&lse) != bits(&want_lse)
        {
            return Err(format!("step {p}: not the plain cache's bits"));
        }
        if bits(out.as_flattened()) != bits(batch_out[p].as_flattened()) {
            return Err(format!("step {p}: the prefill's row differs"));
        }
        if check_contract {
            contract::<H, KVH, D>(&q, &k, &v, p, &positions, out.as_flattened())
                .map_err(|e| format!("step {p}: {e}"))?;
        }
    }
    Ok(())
}

/// Query `p` against the scored reference over positions `0..=p` with the
/// keys not in `positions` masked.
fn contract<const H: usize, const KVH: usize, const D: usize>(
    q: &Tokens<H, D>,
    k: &Tokens<KVH, D>,
    v: &Tokens<KVH, D>,
    p: usize,
    positions: &[usize],
    out: &[f32],
) -> Result<(), String> {
    let shape = Shape::new(1, p + 1, H, KVH, D);
    let mask: Vec<bool> = (0..=p).map(|j| positions.contains(&j)).collect();
    let scoring = Scoring::new().key_mask(&mask);
    let qf = q[p].as_flattened();
    let kf = k[..=p].as_flattened().as_flattened();
    let vf = v[..=p].as_flattened().as_flattened();
    let (mut slow, mut oracle, mut mass) = (
        vec![0.0f32; H * D],
        vec![0.0f64; H * D],
        vec![0.0f64; H * D],
    );
    naive(&shape, &scoring, qf, kf, vf, &mut slow).map_err(|e| e.to_string())?;
    causal_attention_scored_f64(&shape, &scoring, qf, kf, vf, &mut oracle)
        .map_err(|e| e.to_string())?;
    attention_mass_scored_f64(&shape, &scoring, qf, kf, vf, &mut mass)
        .map_err(|e| e.to_string())?;
    check_contract_with_mass(out, &slow, &oracle, &mass).map_err(|e| e.to_string())
}

#[test]
fn sinks_hold_their_positions_and_give_the_plain_bits() {
    for seed in 0..6 {
        sink_promises::<7, 2, 4, 2, 5, f32>(25, seed, true).unwrap();
        sink_promises::<20, 4, 2, 1, 16, f32>(53, seed, true).unwrap();
        sink_promises::<5, 1, 1, 1, 3, f32>(17, seed, true).unwrap();
        sink_promises::<9, 3, 2, 2, 8, f16>(30, seed, false).unwrap();
    }
}

/// The contract check rejects a ring that drops its sinks: a plain ring of
/// the same window, checked as if it kept them.
#[test]
fn the_check_rejects_a_ring_without_sinks() {
    const W: usize = 6;
    const S: usize = 2;
    let n = 20;
    let case = fixed_case_with(Shape::new(n, n, 1, 1, 4), Fill::Uniform(4.0), 3);
    let (q, k, v): (Tokens<1, 4>, Tokens<1, 4>, Tokens<1, 4>) =
        (tokens(&case.q), tokens(&case.k), tokens(&case.v));
    let mut plain_ring = RingKvCache::<W, 1, 4>::new();
    let mut rejected = 0;
    for p in 0..n {
        let mut out = [[0.0f32; 4]; 1];
        plain_ring.step(&q[p], &k[p], &v[p], &mut out, None, None);
        if contract::<1, 1, 4>(&q, &k, &v, p, &held(p, W, S), out.as_flattened()).is_err() {
            rejected += 1;
        }
    }
    // Every step past the window sees other keys than the sinks' ones.
    assert_eq!(rejected, n - W);
}
