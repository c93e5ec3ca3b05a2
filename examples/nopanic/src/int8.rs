//! The integer path's part of the proof: every public function of
//! `microattn::int8` and `microattn::reference::int8`, with quantization
//! parameters, lengths and values the optimiser cannot see (so the
//! parameters' error paths, the buffer checks and `CacheFull` stay in).
//!
//! The integer kernel is inlined into whatever calls it, so it has no
//! symbol of its own: `fixed_size`, `runtime` and `kv_cache` are kept out
//! of line for `.ci/run` to find them (with the cache's own `step` or
//! `attend`) in the symbol table.

use core::hint::black_box;

use microattn::int8::{self, KvCache, Params, Quant};
use microattn::{Shape, reference};

use crate::{D, FLAT, H, KVH, N, opaque};

static Q: [i8; FLAT] = fill(7);
static K: [i8; FLAT] = fill(-13);
static V: [i8; FLAT] = fill(29);

/// Every `i8` value, in an order that depends on `step`.
const fn fill(step: i32) -> [i8; FLAT] {
    let mut a = [0; FLAT];
    let mut i = 0;
    while i < FLAT {
        a[i] = (step * i as i32 % 256) as u8 as i8;
        i += 1;
    }
    a
}

/// `dst` read from `flat` from an offset the optimiser cannot see.
fn load(dst: &mut [i8], flat: &[i8; FLAT], at: usize) {
    let flat = opaque(flat);
    for (i, x) in dst.iter_mut().enumerate() {
        *x = flat.get(opaque(at) + i).copied().unwrap_or(0);
    }
}

/// `N` positions of `G` heads.
fn tokens<const G: usize>(flat: &[i8; FLAT]) -> [[[i8; D]; G]; N] {
    let mut a = [[[0; D]; G]; N];
    load(a.as_flattened_mut().as_flattened_mut(), flat, 0);
    a
}

/// One position of `G` heads.
fn token<const G: usize>(flat: &[i8; FLAT], at: usize) -> [[i8; D]; G] {
    let mut a = [[0; D]; G];
    load(a.as_flattened_mut(), flat, at);
    a
}

/// The first `len` values of `flat` (`len` unknown to the optimiser), or
/// none.
fn slice(flat: &[i8; FLAT], len: usize) -> &[i8] {
    flat.get(..opaque(len)).unwrap_or(&[])
}

/// The first `n` positions of `x` (`n` unknown to the optimiser), or none.
fn part<const G: usize>(x: &[[[i8; D]; G]], n: usize) -> &[[[i8; D]; G]] {
    x.get(..opaque(n)).unwrap_or(&[])
}

/// A tensor's quantization, unknown to the optimiser.
fn quant(scale: f32, zero_point: i32) -> Quant {
    opaque(Quant { scale, zero_point })
}

/// Both constructors; the one the calls below use comes from
/// `with_score_scale`, the other is kept for its own error paths.
fn params() -> Option<Params> {
    let (q, k, v, o) = (
        quant(0.0235, -4),
        quant(0.019, 2),
        quant(0.0412, 0),
        quant(0.04, 1),
    );
    let _ = black_box(Params::new(q, k, v, o, opaque(D)));
    let p = Params::with_score_scale(q, k, v, o, opaque(0.3)).ok()?;
    black_box((p.query(), p.key(), p.value(), p.output(), p.score_scale()));
    black_box((p.exponent(opaque(1000)), p.cutoff()));
    black_box((p.requantize(opaque(1 << 22)), p.dequantize_mean(opaque(-5))));
    black_box((q.dequantize(opaque(17)), int8::weight(opaque(1 << 16))));
    Some(p)
}

/// The fixed-size entry points, `i8` and `f32` output.
#[inline(never)]
fn fixed_size(p: &Params) {
    let (q, k, v) = (tokens::<H>(&Q), tokens::<KVH>(&K), tokens::<KVH>(&V));
    let mut out = [[[0i8; D]; H]; N];
    int8::causal_multi_head(p, &q, &k, &v, &mut out);
    black_box(&out);
    let mut real = [[[0.0f32; D]; H]; N];
    int8::causal_multi_head_f32(p, &q, &k, &v, &mut real);
    black_box(&real);

    // A head dimension that is not a multiple of any lane width, and one
    // key/value head for every query head.
    let mut q7 = [[[0i8; 7]; 3]; 9];
    let mut kv7 = [[[0i8; 7]; 1]; 9];
    load(q7.as_flattened_mut().as_flattened_mut(), &Q, 0);
    load(kv7.as_flattened_mut().as_flattened_mut(), &K, 0);
    let mut out7 = [[[0i8; 7]; 3]; 9];
    int8::causal_multi_head(p, &q7, &kv7, &kv7, &mut out7);
    black_box(&out7);
}

/// The runtime API and its reference, every length unknown: error paths
/// included.
#[inline(never)]
fn runtime(p: &Params) {
    let shape = Shape::new(opaque(N), opaque(N + 3), opaque(H), opaque(KVH), opaque(D));
    let (q, k, v) = (
        slice(&Q, N * H * D),
        slice(&K, (N + 3) * KVH * D),
        slice(&V, (N + 3) * KVH * D),
    );
    let len = opaque(N * H * D);
    let mut out = [0i8; FLAT];
    let out = out.get_mut(..len).unwrap_or(&mut []);
    let _ = black_box(int8::causal_attention_dyn(&shape, p, q, k, v, out));
    black_box(&out);
    let _ = black_box(reference::int8::causal_attention_dyn(
        &shape, p, q, k, v, out,
    ));
    black_box(&out);
    let mut real = [0.0f32; FLAT];
    let real = real.get_mut(..opaque(len)).unwrap_or(&mut []);
    let _ = black_box(int8::causal_attention_dyn_f32(&shape, p, q, k, v, real));
    black_box(&real);
    let mut out64 = [0.0f64; N * H * D];
    let _ = black_box(reference::int8::oracle(&shape, p, q, k, v, &mut out64));
    black_box(&out64);
    let bound = reference::int8::bound(p, opaque(N + 3));
    let at = opaque(5);
    let (got, want) = (
        out.get(at).copied().unwrap_or(0),
        out64.get(at).copied().unwrap_or(0.0),
    );
    black_box(reference::int8::within_bound(got, want, bound));
}

/// Capacity of the cache below.
const CAP: usize = 16;

/// Every public method of `int8::KvCache`, batch lengths unknown to the
/// optimiser, including appends past the capacity (the `CacheFull` path)
/// and mismatched batches.
#[inline(never)]
fn kv_cache(p: &Params) {
    let (q, k, v) = (tokens::<H>(&Q), tokens::<KVH>(&K), tokens::<KVH>(&V));
    let (q1, k1, v1) = (token::<H>(&Q, 1), token::<KVH>(&K, 2), token::<KVH>(&V, 3));
    let mut out = [[[0i8; D]; H]; N];
    let mut out1 = [[0i8; D]; H];

    let mut cache = black_box(KvCache::<CAP, KVH, D>::new(*p));
    let n = opaque(5);
    let _ = black_box(cache.prefill(
        part(&q, n),
        part(&k, n),
        part(&v, opaque(n)),
        out.get_mut(..opaque(n)).unwrap_or(&mut []),
    ));
    black_box(&out);
    let _ = black_box(cache.step(&q1, &k1, &v1, &mut out1));
    cache.attend(&q1, &mut out1);
    black_box(&out1);
    let _ = black_box(cache.push(&k1, &v1));
    let m = opaque(CAP);
    let _ = black_box(cache.extend(part(&k, m), part(&v, opaque(m))));
    // Fill it, then one more push and step: the CacheFull error paths.
    while !cache.is_full() && cache.push(&k1, &v1).is_ok() {}
    let _ = black_box(cache.push(&k1, &v1));
    let _ = black_box(cache.step(&q1, &k1, &v1, &mut out1));
    black_box(&out1);
    black_box((
        cache.len(),
        cache.is_empty(),
        cache.is_full(),
        cache.capacity(),
    ));
    black_box((cache.keys(), cache.values(), cache.params()));
    cache.truncate(opaque(3));
    black_box(cache.len());
    cache.clear();
    black_box(&cache);
}

/// The integer path's calls, from `_start`.
pub fn all() {
    let Some(p) = params() else {
        return;
    };
    fixed_size(&p);
    runtime(&p);
    kv_cache(&p);
}
