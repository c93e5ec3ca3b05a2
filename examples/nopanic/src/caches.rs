//! The caches' part of the proof: every public method of `KvCache<.., E>`
//! and `RingKvCache<.., E, SINKS>` for `E` = `f32`, `f16` and `bf16` (for
//! the 16-bit ones the rounding on append and the widening where the kernel
//! loads; the ring also with two attention sinks), and the public conversions of [`Element`], with lengths and
//! values the optimiser cannot see, including appends past the capacity
//! (`CacheFull`) and mismatched batches.
//!
//! `plain` and `ring` are kept out of line, one instance per element type,
//! so that each has a symbol of its own (`nopanic::caches::plain::<f16>`,
//! ...) holding its cache's code.

use core::hint::black_box;

use microattn::{Element, KvCache, RingKvCache, bf16, f16};

use crate::{CAP, D, FLAT, H, K, KVH, N, Q, V, WINDOW, heads, opaque, part, token};

/// Both caches and the conversions, for every element type.
pub fn all() {
    plain::<f32>();
    plain::<f16>();
    plain::<bf16>();
    ring::<f32, 0>();
    ring::<f16, 0>();
    ring::<bf16, 0>();
    ring::<f32, 2>();
    ring::<f16, 2>();
    conversions::<f32>();
    conversions::<f16>();
    conversions::<bf16>();
    narrow_into::<f32>();
    narrow_into::<f16>();
    narrow_into::<bf16>();
}

/// Every public method of `KvCache<CAP, KVH, D, E>`.
#[inline(never)]
fn plain<E: Element>() {
    let (q, k, v) = (heads::<H>(&Q), heads::<KVH>(&K), heads::<KVH>(&V));
    let (q1, k1, v1) = (token::<H>(&Q, 1), token::<KVH>(&K, 2), token::<KVH>(&V, 3));
    let mut out = [[[0.0f32; D]; H]; N];
    let mut lse = [[0.0f32; H]; N];
    let mut out1 = [[0.0f32; D]; H];
    let mut lse1 = [0.0f32; H];

    let mut cache = black_box(KvCache::<CAP, KVH, D, E>::new());
    let n = opaque(5);
    let _ = black_box(cache.prefill(
        part(&q, n),
        part(&k, n),
        part(&v, n),
        out.get_mut(..n).unwrap_or(&mut []),
        lse.get_mut(..opaque(n)),
    ));
    black_box((&out, &lse));
    let mut weights = [[0.0f32; CAP]; H];
    let _ = black_box(cache.step(
        &q1,
        &k1,
        &v1,
        &mut out1,
        Some(&mut weights),
        Some(&mut lse1),
    ));
    let _ = black_box(cache.step(&q1, &k1, &v1, &mut out1, None, None));
    cache.attend(&q1, &mut out1, Some(&mut weights), Some(&mut lse1));
    cache.attend(&q1, &mut out1, None, None);
    black_box((&out1, &weights, &lse1));
    let _ = black_box(cache.push(&k1, &v1));
    let m = opaque(CAP);
    let _ = black_box(cache.extend(part(&k, m), part(&v, opaque(m))));
    // Fill it, then one more push: the CacheFull error path.
    while !cache.is_full() && cache.push(&k1, &v1).is_ok() {}
    let _ = black_box(cache.push(&k1, &v1));
    let _ = black_box(cache.step(&q1, &k1, &v1, &mut out1, Some(&mut weights), None));
    let _ = black_box(cache.prefill(
        part(&q, n),
        part(&k, n),
        part(&v, n),
        out.get_mut(..n).unwrap_or(&mut []),
        None,
    ));
    black_box((
        cache.len(),
        cache.is_empty(),
        cache.is_full(),
        cache.capacity(),
    ));
    black_box((cache.keys(), cache.values(), cache.scale()));
    black_box(widened(cache.keys().get(opaque(3))));
    cache.truncate(opaque(3));
    black_box(cache.len());
    cache.clear();
    black_box(&cache);
    let mut scaled = black_box(KvCache::<CAP, KVH, D, E>::with_scale(opaque(0.3)));
    let _ = black_box(scaled.extend(part(&k, opaque(2)), part(&v, opaque(2))));
    scaled.attend(&q1, &mut out1, None, Some(&mut lse1));
    black_box((&out1, &lse1, scaled.scale(), &scaled));
}

/// Every public method of `RingKvCache<WINDOW, KVH, D, E, S>`.
#[inline(never)]
fn ring<E: Element, const S: usize>() {
    let (q, k, v) = (heads::<H>(&Q), heads::<KVH>(&K), heads::<KVH>(&V));
    let (q1, k1, v1) = (token::<H>(&Q, 1), token::<KVH>(&K, 2), token::<KVH>(&V, 3));
    let mut out = [[[0.0f32; D]; H]; N];
    let mut lse = [[0.0f32; H]; N];
    let mut out1 = [[0.0f32; D]; H];
    let mut lse1 = [0.0f32; H];
    let n = opaque(5);
    let m = opaque(CAP);

    let mut ring = black_box(RingKvCache::<WINDOW, KVH, D, E, S>::new());
    let _ = black_box(ring.prefill(
        part(&q, n),
        part(&k, n),
        part(&v, opaque(n)),
        out.get_mut(..n).unwrap_or(&mut []),
        lse.get_mut(..opaque(n)),
    ));
    black_box((&out, &lse));
    let mut ring_weights = [[0.0f32; WINDOW]; H];
    ring.step(
        &q1,
        &k1,
        &v1,
        &mut out1,
        Some(&mut ring_weights),
        Some(&mut lse1),
    );
    ring.step(&q1, &k1, &v1, &mut out1, None, None);
    ring.attend(&q1, &mut out1, Some(&mut ring_weights), Some(&mut lse1));
    ring.attend(&q1, &mut out1, None, None);
    black_box((&out1, &ring_weights, &lse1));
    ring.push(&k1, &v1);
    let _ = black_box(ring.extend(part(&k, m), part(&v, opaque(m))));
    black_box((ring.len(), ring.is_empty(), ring.is_full(), ring.capacity()));
    black_box((ring.keys(), ring.values(), ring.scale()));
    let (older, newer) = ring.keys();
    black_box((widened(older.get(opaque(1))), widened(newer.get(opaque(0)))));
    ring.clear();
    black_box(&ring);
    let mut ring_scaled = black_box(RingKvCache::<WINDOW, KVH, D, E, S>::with_scale(opaque(0.3)));
    ring_scaled.push(&k1, &v1);
    ring_scaled.attend(&q1, &mut out1, None, Some(&mut lse1));
    black_box((&out1, &lse1, ring_scaled.scale()));
}

/// A stored position (if any) read back as `f32`, by `Element::to_f32`.
fn widened<E: Element>(row: Option<&[[E; D]; KVH]>) -> [[f32; D]; KVH] {
    row.map_or([[0.0; D]; KVH], |r| r.map(|h| h.map(E::to_f32)))
}

/// `Element`'s public conversions of values and arrays: one value each
/// way, `N` values widened, a row's tail widened into a buffer, on lengths
/// the optimiser cannot see.
#[inline(never)]
fn conversions<E: Element>() {
    let x = E::from_f32(opaque(Q[7]));
    black_box((
        x,
        x.to_f32(),
        E::ZERO,
        E::NAME,
        E::UNIT_ROUNDOFF,
        E::SUBNORMAL_STEP,
    ));
    let stored: [E; 20] = opaque(
        K.first_chunk()
            .map_or([E::ZERO; 20], |k| k.map(E::from_f32)),
    );
    let eight: [E; 8] = opaque(stored.first_chunk().copied().unwrap_or([E::ZERO; 8]));
    black_box(E::widen(&eight));
    let mut buf = [0.0f32; 8];
    black_box(E::as_f32(stored.get(..opaque(5)).unwrap_or(&[]), &mut buf));
}

/// `Element::narrow_into`: a row rounded into storage, both lengths unknown
/// to the optimiser.
#[inline(never)]
fn narrow_into<E: Element>() {
    let mut stored = [E::ZERO; 20];
    let values = opaque(&K);
    E::narrow_into(
        values.get(..opaque(17)).unwrap_or(&[]),
        stored.get_mut(..opaque(FLAT.min(20))).unwrap_or(&mut []),
    );
    black_box(&stored);
}
