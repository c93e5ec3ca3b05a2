//! The key/value caches for incremental decoding: fixed capacity, no heap.
//!
//! A language model generates left to right: each new token's queries attend
//! to every earlier position's keys and values. [`KvCache`] stores those keys
//! and values for up to `CAP` positions and runs the crate's one fused kernel
//! over them; [`RingKvCache`](crate::RingKvCache) keeps only the last
//! `WINDOW` positions (sliding-window attention).
//!
//! # Bit-exactness by construction
//! Every call — [`KvCache::prefill`] of a batch, [`KvCache::step`] of one
//! token, [`KvCache::attend`] — runs the same kernel on the cached prefix as
//! a bottom-right aligned problem (`q_len` new queries over `kv_len`
//! cached positions; see [`Shape::prefix`](crate::Shape::prefix)). The
//! kernel's guarantee is that a query's bits depend only on its own row, the
//! keys and values it sees and the scale: keys are reduced in blocks from
//! position 0, in order, whatever queries are computed with it. A
//! query at position `p` sees positions `0..=p` in all three calls, so
//! `n` decode steps, one prefill of `n` tokens, and a prompt prefill followed
//! by decode steps give the same bits (the property tests assert it).
//!
//! # Shared plumbing
//! Both caches are a [`Pair`] of storages, one for keys and one for values,
//! plus the score scale. A storage ([`Store`]) gives its positions as one
//! slice in storage order and the storage index of the oldest one, so
//! [`Pair::attend`] runs the same code for both: the plain cache's storage
//! is in order (oldest at 0), the ring's is rotated.

mod plain;
mod ring;
mod ring_buffer;
mod scored;

pub use plain::KvCache;
pub use ring::RingKvCache;

use crate::attention::default_scale;
use crate::check::assert_heads;
use crate::element::Element;
use crate::kernel;
use crate::reference::score;
use crate::softmax::softmax_slice;

/// One storage of a cache (its keys, or its values): positions of
/// `[[E; D]; KVH]`.
pub(crate) trait Store<const KVH: usize, const D: usize, E> {
    /// The positions held, in storage order.
    fn positions(&self) -> &[[[E; D]; KVH]];
    /// Storage index of the oldest position (0 when storage order is
    /// logical order).
    fn oldest(&self) -> usize;
    /// Forgets every position.
    fn clear(&mut self);
}

impl<const CAP: usize, const KVH: usize, const D: usize, E> Store<KVH, D, E>
    for heapless::Vec<[[E; D]; KVH], CAP>
{
    fn positions(&self) -> &[[[E; D]; KVH]] {
        self
    }
    fn oldest(&self) -> usize {
        0
    }
    fn clear(&mut self) {
        heapless::Vec::clear(self);
    }
}

/// Where a decode step runs: on the calling thread, or with its heads spread
/// over the current rayon pool (`crate::parallel`), which gives the same
/// bits.
#[derive(Clone, Copy)]
pub(crate) enum On {
    /// The calling thread.
    Caller,
    /// The current rayon pool.
    #[cfg(feature = "rayon")]
    Pool,
}

/// A cache's keys and values, one storage each, and its score scale.
#[derive(Clone)]
pub(crate) struct Pair<S> {
    /// Keys by position; as many as `values` at every return.
    pub(crate) keys: S,
    /// Values by position.
    pub(crate) values: S,
    /// The score scale; `None` is `1/√D` (computed at the call: `sqrt` is
    /// not a `const fn`, and the constructors are).
    scale: Option<f32>,
}

impl<S> Pair<S> {
    /// Two empty storages and the default scale.
    pub(crate) const fn new(keys: S, values: S) -> Self {
        Pair {
            keys,
            values,
            scale: None,
        }
    }

    /// Sets a caller-chosen scale.
    pub(crate) const fn set_scale(&mut self, scale: f32) {
        self.scale = Some(scale);
    }

    /// The score scale the attention calls use, for rows of `D` values.
    pub(crate) fn scale<const D: usize>(&self) -> f32 {
        self.scale.unwrap_or_else(|| default_scale(D))
    }

    /// Forgets every position of both storages.
    pub(crate) fn clear<const KVH: usize, const D: usize, E>(&mut self)
    where
        S: Store<KVH, D, E>,
    {
        self.keys.clear();
        self.values.clear();
    }

    /// One position's queries (`H` heads) over every position held, oldest
    /// first: the kernel's step, and with `weights` each head's softmax
    /// weights by [`reference::score`](crate::reference::score) and
    /// [`softmax`](crate::softmax) (zeros past the positions held). An empty
    /// cache gives exactly 0 and log-sum-exp `-inf`. `N` is the weights' row
    /// length (the capacity).
    pub(crate) fn attend<const N: usize, const H: usize, const KVH: usize, const D: usize, E>(
        &self,
        q: &[[f32; D]; H],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; N]; H]>,
        mut lse: Option<&mut [f32; H]>,
        on: On,
    ) where
        S: Store<KVH, D, E>,
        E: Element,
    {
        const { assert_heads::<N, H, KVH, D>() };
        let (keys, values) = (self.keys.positions(), self.values.positions());
        let (start, scale) = (self.keys.oldest(), self.scale::<D>());
        if keys.is_empty() {
            // No key to see (the kernel's problems need `q_len ≤ kv_len`).
            out.as_flattened_mut().fill(0.0);
            if let Some(lse) = lse.as_deref_mut() {
                lse.fill(f32::NEG_INFINITY);
            }
        } else {
            match on {
                On::Caller => kernel::step::<H, KVH, D, E>(keys, values, start, scale, q, out, lse),
                #[cfg(feature = "rayon")]
                On::Pool => {
                    crate::parallel::step::<H, KVH, D, E>(keys, values, start, scale, q, out, lse)
                }
            }
        }
        if let Some(weights) = weights {
            let start = start.min(keys.len());
            let (newer, older) = keys.split_at(start);
            for (h, (row, qh)) in weights.iter_mut().zip(q).enumerate() {
                let g = h / (H / KVH);
                let logical = older.iter().chain(newer).map(|token| &token[g]);
                row.fill(0.0);
                for (w, kj) in row.iter_mut().zip(logical) {
                    *w = score(qh, &E::widen(kj), scale);
                }
                if let Some(visible) = row.get_mut(..keys.len()) {
                    softmax_slice(visible);
                }
            }
        }
    }
}

/// One position's keys or values (`KVH` rows of `D`, `f32`) rounded to the
/// storage element, once, as they are appended.
#[inline(always)]
pub(crate) fn narrow<const KVH: usize, const D: usize, E: Element>(
    position: &[[f32; D]; KVH],
) -> [[E; D]; KVH] {
    let mut stored = [[E::ZERO; D]; KVH];
    for (out, row) in stored.iter_mut().zip(position) {
        E::narrow_into(row, out);
    }
    stored
}

impl<const CAP: usize, const KVH: usize, const D: usize, E: Element>
    Pair<heapless::Vec<[[E; D]; KVH], CAP>>
{
    /// The queries of the last `q.len()` positions held (`q`, `out`:
    /// `[n][H][D]`, `lse`: `[n][H]`, `n ≤` positions held, checked by the
    /// caller), each over the positions up to its own: the tiled kernel on
    /// an `f32` storage; a decode step per query on a 16-bit one (the
    /// tiled kernel reads `f32` rows only). Both give each query the bits of
    /// the one-query path.
    pub(crate) fn attend_last<const H: usize>(
        &self,
        q: &[[[f32; D]; H]],
        out: &mut [[[f32; D]; H]],
        mut lse: Option<&mut [[f32; H]]>,
    ) {
        let (keys, values, scale) = (&self.keys[..], &self.values[..], self.scale::<D>());
        if let (Some(k), Some(v)) = (E::as_f32_positions(keys), E::as_f32_positions(values)) {
            let lse = lse.map(<[[f32; H]]>::as_flattened_mut);
            kernel::run_positions::<H, KVH, D>(
                k,
                v,
                0,
                scale,
                q.as_flattened(),
                out.as_flattened_mut(),
                lse,
                None,
            );
            return;
        }
        let first = keys.len().saturating_sub(q.len());
        for (i, (q, out)) in q.iter().zip(out.iter_mut()).enumerate() {
            let seen = first + i + 1;
            let (Some(k), Some(v)) = (keys.get(..seen), values.get(..seen)) else {
                break;
            };
            let lse = lse.as_deref_mut().and_then(|l| l.get_mut(i));
            kernel::step::<H, KVH, D, E>(k, v, 0, scale, q, out, lse);
        }
    }
}
