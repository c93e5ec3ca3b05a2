//! Link-time proof that no public kernel of microattn can panic.
//!
//! `_start` calls every public kernel (fixed-size, runtime-length, padded
//! batch, the KV caches storing `f32`, `f16` and `bf16`, the integer path,
//! the scored calls and the references) at concrete
//! sizes. Inputs and lengths pass through [`black_box`], so the optimiser
//! cannot see their values and must keep every path that some input could
//! take, error paths included. The
//! panic handler calls `microattn_panic_is_reachable`, a function defined
//! nowhere: the binary links only if no call to the panic handler survives
//! optimisation, that is, if no input can make a kernel panic.
//!
//! Build: `cargo build --release --target thumbv7em-none-eabihf` in this
//! directory (`.ci/run` does it, and checks the symbol table as well).
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use microattn::{Shape, reference};

mod caches;
mod int8;
mod rope;
mod scored;

const N: usize = 24;
const D: usize = 12;
const H: usize = 4;
const KVH: usize = 2;
/// Flat length big enough for every runtime call below.
const FLAT: usize = 2 * N * H * D;

static Q: [f32; FLAT] = fill(0.25);
static K: [f32; FLAT] = fill(-0.5);
static V: [f32; FLAT] = fill(1.5);

const fn fill(step: f32) -> [f32; FLAT] {
    let mut a = [0.0; FLAT];
    let mut i = 0;
    while i < FLAT {
        a[i] = step * (i % 13) as f32 - 1.0;
        i += 1;
    }
    a
}

/// The first `len` values of `flat` (`len` unknown to the optimiser), or
/// none; never panics.
fn slice(flat: &[f32; FLAT], len: usize) -> &[f32] {
    flat.get(..opaque(len)).unwrap_or(&[])
}

/// A value the optimiser must treat as unknown.
fn opaque<T>(x: T) -> T {
    black_box(x)
}

/// `[[f32; C]; R]` read from a static the optimiser cannot see into.
fn rows<const R: usize, const C: usize>(flat: &[f32; FLAT]) -> [[f32; C]; R] {
    let flat = opaque(flat);
    let mut a = [[0.0; C]; R];
    for (i, row) in a.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = flat.get(i * C + j).copied().unwrap_or(0.0);
        }
    }
    a
}

fn fixed_size() {
    let (q, k, v) = (rows::<N, D>(&Q), rows::<N, D>(&K), rows::<N, D>(&V));
    let mut out = [[0.0f32; D]; N];
    microattn::causal_attention(&q, &k, &v, &mut out);
    black_box(&out);
    microattn::causal_attention_scaled(&q, &k, &v, opaque(0.3), &mut out);
    black_box(&out);
    reference::causal_attention(&q, &k, &v, &mut out);
    black_box(&out);
    reference::causal_attention_scaled(&q, &k, &v, opaque(0.3), &mut out);
    black_box(&out);

    // One head dimension that is not a multiple of any lane width.
    let (q7, k7, v7) = (rows::<9, 7>(&Q), rows::<9, 7>(&K), rows::<9, 7>(&V));
    let mut out7 = [[0.0f32; 7]; 9];
    microattn::causal_attention(&q7, &k7, &v7, &mut out7);
    black_box(&out7);

    let mut w = [[0.0f32; N]; N];
    microattn::attention_weights(&q, &k, opaque(0.3), &mut w);
    black_box(&w);
    reference::attention_weights(&q, &k, opaque(0.3), &mut w);
    black_box(&w);

    let mut row: [f32; 17] = opaque([0.5; 17]);
    microattn::softmax(&mut row);
    black_box(&row);
    reference::softmax(&mut row);
    black_box(&row);
    black_box(microattn::default_scale(opaque(D)));
}

fn multi_head() {
    let q = heads::<H>(&Q);
    let (k, v) = (heads::<KVH>(&K), heads::<KVH>(&V));
    let mut out = [[[0.0f32; D]; H]; N];
    microattn::causal_multi_head(&q, &k, &v, &mut out);
    black_box(&out);
    microattn::causal_multi_head_scaled(&q, &k, &v, opaque(0.3), &mut out);
    black_box(&out);
    reference::causal_multi_head(&q, &k, &v, &mut out);
    black_box(&out);
    reference::causal_multi_head_scaled(&q, &k, &v, opaque(0.3), &mut out);
    black_box(&out);
}

fn heads<const G: usize>(flat: &[f32; FLAT]) -> [[[f32; D]; G]; N] {
    let flat = opaque(flat);
    let mut a = [[[0.0; D]; G]; N];
    for (t, tok) in a.iter_mut().enumerate() {
        for (g, head) in tok.iter_mut().enumerate() {
            for (j, x) in head.iter_mut().enumerate() {
                *x = flat.get((t * G + g) * D + j).copied().unwrap_or(0.0);
            }
        }
    }
    a
}

/// The runtime API with every length unknown: error paths included.
fn runtime() {
    let shape = Shape::new(opaque(N), opaque(N + 3), opaque(H), opaque(KVH), opaque(D))
        .with_scale(opaque(0.3));
    black_box((shape.q_elems(), shape.kv_elems()));
    let (q, k, v) = (
        slice(&Q, N * H * D),
        slice(&K, (N + 3) * KVH * D),
        slice(&V, (N + 3) * KVH * D),
    );
    let mut out = [0.0f32; FLAT];
    let len = opaque(N * H * D);
    let out = out.get_mut(..len).unwrap_or(&mut []);
    let _ = black_box(microattn::causal_attention_dyn(&shape, q, k, v, out));
    black_box(&out);
    let _ = black_box(reference::causal_attention_dyn(&shape, q, k, v, out));
    black_box(&out);
    let mut out64 = [0.0f64; N * H * D];
    let _ = black_box(reference::causal_attention_f64(&shape, q, k, v, &mut out64));
    black_box(&out64);
    let _ = black_box(reference::check_contract(out, out, &out64));
}

/// The padded-batch API, lengths and valid lengths unknown.
fn padded() {
    let batch = opaque(2);
    let shape = Shape::new(opaque(N), opaque(N), opaque(H), opaque(KVH), opaque(D));
    let valid = opaque([N - 5, 0]);
    let (q, k, v) = (
        slice(&Q, 2 * N * H * D),
        slice(&K, 2 * N * KVH * D),
        slice(&V, 2 * N * KVH * D),
    );
    let mut out = [0.0f32; FLAT];
    let _ = black_box(microattn::causal_attention_padded(
        &shape, batch, &valid, q, k, v, &mut out,
    ));
    black_box(&out);
    let _ = black_box(reference::causal_attention_padded(
        &shape, batch, &valid, q, k, v, &mut out,
    ));
    black_box(&out);
    let mut out64 = [0.0f64; FLAT];
    let _ = black_box(reference::causal_attention_padded_f64(
        &shape, batch, &valid, q, k, v, &mut out64,
    ));
    black_box(&out64);
}

/// Capacity of the plain cache and window of the ring below.
const CAP: usize = 16;
const WINDOW: usize = 5;

/// One position's keys or values (`KVH` heads), or queries (`H` heads).
fn token<const G: usize>(flat: &[f32; FLAT], at: usize) -> [[f32; D]; G] {
    let flat = opaque(flat);
    let mut a = [[0.0; D]; G];
    for (i, x) in a.as_flattened_mut().iter_mut().enumerate() {
        *x = flat.get(opaque(at) + i).copied().unwrap_or(0.0);
    }
    a
}

/// The first `n` positions of `x` (`n` unknown to the optimiser), or none.
fn part<const G: usize>(x: &[[[f32; D]; G]], n: usize) -> &[[[f32; D]; G]] {
    x.get(..opaque(n)).unwrap_or(&[])
}

/// The self-test of the check: a slice index the optimiser cannot prove in
/// bounds keeps `core::panicking::panic_bounds_check`, so the link fails.
#[cfg(feature = "deliberate-panic")]
fn deliberate_panic() {
    black_box(Q[opaque(FLAT)]);
}

#[cfg(not(feature = "deliberate-panic"))]
fn deliberate_panic() {}

/// The entry point the linker keeps; everything above is reachable from it.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    fixed_size();
    multi_head();
    runtime();
    padded();
    caches::all();
    int8::all();
    rope::all();
    scored::all();
    deliberate_panic();
    loop {
        core::hint::spin_loop();
    }
}

unsafe extern "C" {
    /// Defined nowhere: any surviving call to the panic handler is a link
    /// error naming this symbol.
    fn microattn_panic_is_reachable() -> !;
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    // SAFETY: never runs: the binary links only if this call is unreachable.
    unsafe { microattn_panic_is_reachable() }
}
