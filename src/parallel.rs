//! The prefill calls on every core (feature `rayon`): the same kernel, run on
//! fixed tiles of query positions spread over rayon's current thread pool.
//!
//! The output is cut into tiles of [`TILE_POSITIONS`] query positions (all
//! heads of each), a number fixed here and never derived from the number of
//! threads; each tile is one task, and the kernel runs on it as a problem of
//! its own over the same keys and values, its queries at their own
//! positions. The kernel gives a query's output the same bits whichever
//! other queries it computes with (the crate docs' exact properties), so
//! every call here returns **the bits of its one-thread counterpart**, on any
//! pool, with any number of threads. Later tiles see more keys and take
//! longer; rayon's work stealing balances them.
//!
//! The calls run on the current pool: rayon's global one (a thread per
//! core by default), or yours inside [`ThreadPool::install`]. A problem of
//! one tile or less runs on the calling thread.
//!
//! ```
//! let q = vec![[[0.25f32; 16]; 4]; 100];
//! let kv = vec![[[0.5f32; 16]; 2]; 100];
//! let q: &[[[f32; 16]; 4]; 100] = q.as_slice().try_into().unwrap();
//! let kv: &[[[f32; 16]; 2]; 100] = kv.as_slice().try_into().unwrap();
//! let mut one = Box::new([[[0.0f32; 16]; 4]; 100]);
//! let mut all = Box::new([[[f32::NAN; 16]; 4]; 100]);
//! microattn::causal_multi_head(q, kv, kv, &mut one);
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
//! pool.install(|| microattn::parallel::causal_multi_head(q, kv, kv, &mut all));
//! assert_eq!(one, all);
//! ```
//!
//! [`ThreadPool::install`]: https://docs.rs/rayon/1/rayon/struct.ThreadPool.html#method.install

use rayon::prelude::*;

use crate::attention::{default_scale, fixed_problem};
use crate::dynamic::Shape;
use crate::element::Element;
use crate::error::Error;
use crate::kernel;
use crate::layout::{Problem, Width};

/// Query positions per task. Enough work per task to outweigh rayon's
/// hand-over (at least a few thousand query-key pairs per head), and enough
/// tasks for a prefill of a few hundred positions to keep every core busy.
pub const TILE_POSITIONS: usize = 32;

/// Causal multi-head attention ([`crate::causal_multi_head`]) on the
/// current rayon pool: the same layout, the same bits.
///
/// A zero dimension or `H % KVH != 0` is a compile-time error.
///
/// ```
/// let q = [[[0.1f32, 0.2, 0.3]; 2]; 40];
/// let kv = [[[0.3f32, 0.2, 0.1]; 1]; 40];
/// let (mut one, mut all) = ([[[0.0f32; 3]; 2]; 40], [[[0.0f32; 3]; 2]; 40]);
/// microattn::causal_multi_head(&q, &kv, &kv, &mut one);
/// microattn::parallel::causal_multi_head(&q, &kv, &kv, &mut all);
/// assert_eq!(one, all);
/// ```
#[inline]
pub fn causal_multi_head<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    q: &[[[f32; D]; H]; N],
    k: &[[[f32; D]; KVH]; N],
    v: &[[[f32; D]; KVH]; N],
    out: &mut [[[f32; D]; H]; N],
) {
    causal_multi_head_scaled(q, k, v, default_scale(D), out);
}

/// [`crate::causal_multi_head_scaled`] on the current rayon pool: the same
/// bits, a NaN or infinite `scale` included (every output NaN).
///
/// ```
/// let x = [[[0.5f32; 8]; 2]; 70];
/// let mut out = [[[0.0f32; 8]; 2]; 70];
/// microattn::parallel::causal_multi_head_scaled(&x, &x, &x, 1.0, &mut out);
/// assert_eq!(out, x);
/// ```
#[inline]
pub fn causal_multi_head_scaled<
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
>(
    q: &[[[f32; D]; H]; N],
    k: &[[[f32; D]; KVH]; N],
    v: &[[[f32; D]; KVH]; N],
    scale: f32,
    out: &mut [[[f32; D]; H]; N],
) {
    let out = out.as_flattened_mut().as_flattened_mut();
    let inputs = (
        q.as_flattened().as_flattened(),
        k.as_flattened().as_flattened(),
        v.as_flattened().as_flattened(),
    );
    if let Some(p) = fixed_problem::<N, H, KVH, D>(inputs, scale, out.len()) {
        run(&p, out);
    }
}

/// [`crate::causal_attention_dyn`] on the current rayon pool: the same
/// layout, the same alignment of queries to keys, the same bits.
///
/// # Errors
/// Exactly those of [`crate::causal_attention_dyn`], by the same check,
/// before any work; on error `out` is untouched.
///
/// ```
/// use microattn::{Error, Shape};
/// // The last 50 of 80 positions, 4 query heads over 2 key/value heads.
/// let shape = Shape::new(50, 80, 4, 2, 16);
/// let q: Vec<f32> = (0..50 * 4 * 16).map(|i| (i % 7) as f32 / 7.0).collect();
/// let kv: Vec<f32> = (0..80 * 2 * 16).map(|i| (i % 5) as f32 / 5.0).collect();
/// let (mut one, mut all) = (vec![0.0f32; q.len()], vec![0.0f32; q.len()]);
/// microattn::causal_attention_dyn(&shape, &q, &kv, &kv, &mut one)?;
/// microattn::parallel::causal_attention_dyn(&shape, &q, &kv, &kv, &mut all)?;
/// assert_eq!(one, all);
///
/// let err = microattn::parallel::causal_attention_dyn(&shape, &q, &kv, &kv, &mut all[1..]);
/// assert!(matches!(err, Err(Error::LengthMismatch { .. })));
/// # Ok::<(), Error>(())
/// ```
#[inline]
pub fn causal_attention_dyn(
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let p = shape.check(q, k, v, out.len())?;
    run(&p, out);
    Ok(())
}

/// Runs the kernel on a checked problem (any: a cache's, rotated, too), one
/// task per tile of [`TILE_POSITIONS`] query positions; `out` as for
/// [`kernel::run`].
#[inline]
pub(crate) fn run<W: Width + Sync>(p: &Problem<'_, W>, out: &mut [f32]) {
    let tile = p.token_len().saturating_mul(TILE_POSITIONS).max(1);
    if out.len() <= tile {
        kernel::run(p, out, None, None);
        return;
    }
    out.par_chunks_mut(tile)
        .enumerate()
        .for_each(|(index, out)| {
            let first = index.saturating_mul(TILE_POSITIONS);
            kernel::run(&p.query_range(first, TILE_POSITIONS), out, None, None);
        });
}

/// Query heads per task of a parallel decode step: four heads' score
/// chains side by side keep a core as busy as a whole step's do, and a step
/// of 8 heads still makes two tasks.
const HEADS_PER_TASK: usize = 4;

/// A cache's decode step (`H` query heads over its positions, stored from
/// `start` on) with the heads spread over the current pool: one task per
/// [`HEADS_PER_TASK`] consecutive query heads. The split depends on the shape only,
/// and each head gets the bits the one-thread step gives it (a head's
/// output depends on its own query and key/value head only). The cache is
/// not empty (the callers answer an empty one).
#[inline]
pub(crate) fn step<const H: usize, const KVH: usize, const D: usize, E: Element>(
    keys: &[[[E; D]; KVH]],
    values: &[[[E; D]; KVH]],
    start: usize,
    scale: f32,
    q: &[[f32; D]; H],
    out: &mut [[f32; D]; H],
    lse: Option<&mut [f32; H]>,
) {
    let part = HEADS_PER_TASK;
    let mut all_lse = [0.0f32; H];
    out.par_chunks_mut(part)
        .zip(all_lse.par_chunks_mut(part))
        .enumerate()
        .for_each(|(task, (rows, lse_rows))| {
            let first = task.saturating_mul(part);
            let heads = first..first.saturating_add(part);
            // The task's heads in a step-sized buffer of its own, then
            // copied to its rows.
            let (mut local, mut local_lse) = ([[0.0f32; D]; H], [0.0f32; H]);
            let mine = Some(&mut local_lse);
            kernel::step_heads::<H, KVH, D, E>(
                keys, values, start, scale, q, &mut local, mine, heads,
            );
            for (row, computed) in rows.iter_mut().zip(local.iter().skip(first)) {
                *row = *computed;
            }
            for (slot, computed) in lse_rows.iter_mut().zip(local_lse.iter().skip(first)) {
                *slot = *computed;
            }
        });
    if let Some(lse) = lse {
        *lse = all_lse;
    }
}
