//! `microattn::parallel` (feature `rayon`) against the one-thread calls.
//!
//! The input is read again, from its start, as a problem of up to 130
//! query positions (up to five tiles of `parallel::TILE_POSITIONS`), so
//! that the calls split the work: a shape (valid or not, buffer lengths
//! sometimes off by one, any scale: raw bits, ±∞, NaN, bounded, default)
//! and values generated from a short pattern of the input (raw bits or
//! bounded), varied by position so that no two tiles see the same rows.
//! The pool is rayon's global one or one of 3 threads (more than this
//! runner's cores). Checked:
//!
//! 1. **No panic**; `parallel::causal_attention_dyn` returns exactly what
//!    `causal_attention_dyn` returns (`Ok` or the same `Error`); on `Err`,
//!    `out` is untouched.
//! 2. **Bits**: its `out` has the one-thread call's bits, every value (any
//!    NaN matching any NaN: `same_bits`).
//! 3. The same for `parallel::causal_multi_head` and
//!    `parallel::causal_multi_head_scaled` against `causal_multi_head` and
//!    `causal_multi_head_scaled`, on a few fixed shapes of one to three
//!    tiles (the scaled call with every kind of scale).

use std::sync::OnceLock;

use microattn::{Shape, parallel};

use super::same_bits::difference;
use super::{Bytes, HEADS, POISON, maybe_wrong};

/// A pool of 3 threads, built once.
fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a pool of 3 threads")
    })
}

/// `f` on the 3-thread pool or on the caller's (rayon's global pool).
fn on<R: Send>(on_pool: bool, f: impl FnOnce() -> R + Send) -> R {
    if on_pool { pool().install(f) } else { f() }
}

/// Values for `len` slots, from a pattern of up to 16 words of the input.
#[derive(Debug)]
struct Pattern {
    words: Vec<u32>,
    bound: Option<f32>,
}

impl Pattern {
    fn new(bytes: &mut Bytes<'_>) -> Self {
        let n = usize::from(bytes.u8() % 16) + 1;
        let bound = match bytes.u8() % 3 {
            0 => None,
            1 => Some(1.0),
            _ => Some(100.0),
        };
        Pattern {
            words: (0..n).map(|_| bytes.u32()).collect(),
            bound,
        }
    }
    /// Slot `i` of buffer `salt`: the pattern's word `i mod n`, its low
    /// significand bits mixed with a hash of `(i, salt)` unless it is ±∞ or
    /// NaN (those stay as they are).
    fn value(&self, i: usize, salt: u32) -> f32 {
        let w = self.words[i % self.words.len()];
        let h = (i as u32 ^ salt.rotate_left(16)).wrapping_mul(0x9e37_79b9) >> 17;
        match self.bound {
            None if w & 0x7f80_0000 == 0x7f80_0000 => f32::from_bits(w),
            None => f32::from_bits(w ^ h),
            Some(b) => ((w ^ h) as i32 as f32 / 2_147_483_648.0) * b,
        }
    }
    fn fill(&self, len: usize, salt: u32) -> Vec<f32> {
        (0..len).map(|i| self.value(i, salt)).collect()
    }
    fn fill_array<const N: usize, const R: usize, const D: usize>(
        &self,
        salt: u32,
    ) -> Box<[[[f32; D]; R]; N]> {
        let mut a = Box::new([[[0.0; D]; R]; N]);
        for (i, x) in a
            .as_flattened_mut()
            .as_flattened_mut()
            .iter_mut()
            .enumerate()
        {
            *x = self.value(i, salt);
        }
        a
    }
}

/// The scale: `None` for the default, else raw bits, ±∞, NaN or a bounded
/// value.
fn scale(bytes: &mut Bytes<'_>, head_dim: usize) -> Option<f32> {
    match bytes.u8() % 6 {
        0 => Some(f32::from_bits(bytes.u32())),
        1 => Some(f32::INFINITY),
        2 => Some(f32::NAN),
        3 => {
            let unit = bytes.u32() as i32 as f32 / 2_147_483_648.0;
            Some(unit * 2.0 * microattn::default_scale(head_dim))
        }
        _ => None,
    }
}

pub fn check(data: &[u8]) {
    let mut bytes = Bytes(data);
    let q_len = usize::from(bytes.u8() % 131);
    let kv_len = q_len + usize::from(bytes.u8() % 9);
    let (heads, kv_heads) = HEADS[usize::from(bytes.u8()) % HEADS.len()];
    let head_dim = usize::from(bytes.u8() % 20) + 1;
    let scale = scale(&mut bytes, head_dim);
    let on_pool = bytes.u8() % 2 == 0;
    let mut shape = Shape::new(q_len, kv_len, heads, kv_heads, head_dim);
    if let Some(s) = scale {
        shape = shape.with_scale(s);
    }
    if bytes.u8() == 0 {
        shape = Shape::new(kv_len + 1, kv_len, heads, kv_heads, head_dim);
    }
    let q_n = maybe_wrong(&mut bytes, q_len * heads * head_dim);
    let k_n = maybe_wrong(&mut bytes, kv_len * kv_heads * head_dim);
    let v_n = maybe_wrong(&mut bytes, kv_len * kv_heads * head_dim);
    let out_n = maybe_wrong(&mut bytes, q_len * heads * head_dim);
    let fixed = bytes.u8();
    let pattern = Pattern::new(&mut bytes);
    let (q, k, v) = (
        pattern.fill(q_n, 1),
        pattern.fill(k_n, 2),
        pattern.fill(v_n, 3),
    );

    let mut one = vec![POISON; out_n];
    let expect = microattn::causal_attention_dyn(&shape, &q, &k, &v, &mut one);
    let mut all = vec![POISON; out_n];
    let got = on(on_pool, || {
        parallel::causal_attention_dyn(&shape, &q, &k, &v, &mut all)
    });
    assert_eq!(
        got, expect,
        "parallel::causal_attention_dyn result for {shape:?}"
    );
    if let Some(d) = difference(&all, &one) {
        panic!("parallel::causal_attention_dyn for {shape:?}, values {pattern:?}: {d}");
    }
    if got.is_err() {
        assert!(
            all.iter().all(|x| x.to_bits() == POISON.to_bits()),
            "parallel::causal_attention_dyn wrote out on {got:?}"
        );
    }

    match fixed % 4 {
        0 => fixed_size::<70, 4, 2, 3>(&pattern, scale, on_pool),
        1 => fixed_size::<33, 2, 1, 8>(&pattern, scale, on_pool),
        2 => fixed_size::<45, 2, 2, 17>(&pattern, scale, on_pool),
        _ => fixed_size::<5, 3, 1, 4>(&pattern, scale, on_pool),
    }
}

/// Property 3 on one fixed shape.
fn fixed_size<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    pattern: &Pattern,
    scale: Option<f32>,
    on_pool: bool,
) {
    let q = pattern.fill_array::<N, H, D>(11);
    let k = pattern.fill_array::<N, KVH, D>(12);
    let v = pattern.fill_array::<N, KVH, D>(13);
    let mut one = Box::new([[[POISON; D]; H]; N]);
    let mut all = Box::new([[[POISON; D]; H]; N]);
    match scale {
        None => {
            microattn::causal_multi_head(&q, &k, &v, &mut one);
            on(on_pool, || {
                parallel::causal_multi_head(&q, &k, &v, &mut all)
            });
        }
        Some(s) => {
            microattn::causal_multi_head_scaled(&q, &k, &v, s, &mut one);
            on(on_pool, || {
                parallel::causal_multi_head_scaled(&q, &k, &v, s, &mut all)
            });
        }
    }
    if let Some(d) = difference(
        all.as_flattened().as_flattened(),
        one.as_flattened().as_flattened(),
    ) {
        panic!(
            "parallel::causal_multi_head{} (N {N}, H {H}, KVH {KVH}, D {D}, scale {scale:?}, values {pattern:?}): {d}",
            if scale.is_some() { "_scaled" } else { "" }
        );
    }
}
