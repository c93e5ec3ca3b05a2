//! The scored calls' part of the proof: `causal_attention_scored`, its
//! references, `Scoring::check`, `alibi_slopes` and a cache's
//! `prefill_scored` / `step_scored` / `attend_scored` and a ring's (with
//! attention sinks) `step_scored` / `attend_scored`, with every setting on, buffer lengths
//! and parameters the optimiser cannot see (so wrong lengths, NaN slopes
//! and bad caps are paths it must keep).

use core::hint::black_box;

use microattn::scoring::alibi_slopes;
use microattn::{KvCache, RingKvCache, Scoring, Shape, reference};

use crate::{CAP, D, FLAT, H, K, KVH, N, Q, V, WINDOW, heads, opaque, part, slice, token};

/// A key mask, per-key and per-(query, key) biases, slopes, sinks.
static MASK: [bool; FLAT] = [true; FLAT];

/// Every scored entry point.
pub fn all() {
    let mut slopes = [0.0f32; H];
    alibi_slopes(opaque(&mut slopes[..]));
    let sinks = opaque([0.5f32; H]);
    let scoring = |kv_len: usize, q_len: usize| {
        Scoring::new()
            .key_mask(MASK.get(..opaque(kv_len)).unwrap_or(&[]))
            .key_bias(slice(&K, kv_len))
            .score_bias(slice(&V, q_len * kv_len))
            .alibi(opaque(&slopes[..]))
            .soft_cap(opaque(30.0))
            .sinks(opaque(&sinks[..]))
    };
    runtime(&scoring(N + 3, N));
    cache(&scoring);
}

/// The runtime call and its references.
#[inline(never)]
fn runtime(scoring: &Scoring<'_>) {
    let shape = Shape::new(opaque(N), opaque(N + 3), opaque(H), opaque(KVH), opaque(D));
    let _ = black_box(scoring.check(opaque(N), opaque(N + 3), opaque(H)));
    let (q, k, v) = (
        slice(&Q, N * H * D),
        slice(&K, (N + 3) * KVH * D),
        slice(&V, (N + 3) * KVH * D),
    );
    let mut out = [0.0f32; FLAT];
    let out = out.get_mut(..opaque(N * H * D)).unwrap_or(&mut []);
    let _ = black_box(microattn::causal_attention_scored(
        &shape, scoring, q, k, v, out,
    ));
    let _ = black_box(reference::causal_attention_scored(
        &shape, scoring, q, k, v, out,
    ));
    black_box(&out);
    let mut out64 = [0.0f64; N * H * D];
    let _ = black_box(reference::causal_attention_scored_f64(
        &shape, scoring, q, k, v, &mut out64,
    ));
    let _ = black_box(reference::attention_mass_scored_f64(
        &shape, scoring, q, k, v, &mut out64,
    ));
    black_box(&out64);
}

/// A cache's scored prefill and steps, including past its capacity.
#[inline(never)]
fn cache<'a>(scoring: &impl Fn(usize, usize) -> Scoring<'a>) {
    let (q, k, v) = (heads::<H>(&Q), heads::<KVH>(&K), heads::<KVH>(&V));
    let mut out = [[[0.0f32; D]; H]; N];
    let mut lse = [[0.0f32; H]; N];
    let mut cache = KvCache::<CAP, KVH, D>::new();
    let n = opaque(5);
    let _ = black_box(cache.prefill_scored(
        part(&q, n),
        part(&k, n),
        part(&v, n),
        &scoring(n, n),
        part_mut(&mut out, n),
        Some(part_mut(&mut lse, n)),
    ));
    let (q1, k1, v1) = (token::<H>(&Q, 1), token::<KVH>(&K, 2), token::<KVH>(&V, 3));
    let mut row = [[0.0f32; D]; H];
    let mut lse1 = [0.0f32; H];
    for _ in 0..opaque(CAP + 2) {
        let len = cache.len() + 1;
        let _ = black_box(cache.step_scored(
            &q1,
            &k1,
            &v1,
            &scoring(len, 1),
            &mut row,
            Some(&mut lse1),
        ));
    }
    let len = cache.len();
    let _ = black_box(cache.attend_scored(&q1, &scoring(len, 1), &mut row, Some(&mut lse1)));
    let empty = KvCache::<CAP, KVH, D>::new();
    let _ = black_box(empty.attend_scored(&q1, &scoring(0, 1), &mut row, Some(&mut lse1)));
    let mut ring = RingKvCache::<WINDOW, KVH, D, f32, 2>::new();
    for _ in 0..opaque(WINDOW + 3) {
        let len = (ring.len() + 1).min(WINDOW);
        let _ = black_box(ring.step_scored(
            &q1,
            &k1,
            &v1,
            &scoring(opaque(len), 1),
            &mut row,
            Some(&mut lse1),
        ));
    }
    let _ = black_box(ring.attend_scored(&q1, &scoring(ring.len(), 1), &mut row, None));
    black_box((&out, &row, &lse, &lse1));
}

/// The first `n` rows of `x` (`n` unknown to the optimiser), or none.
fn part_mut<T>(x: &mut [T], n: usize) -> &mut [T] {
    x.get_mut(..opaque(n)).unwrap_or(&mut [])
}
