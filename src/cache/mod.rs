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

pub use plain::KvCache;
pub use ring::RingKvCache;

use crate::attention::default_scale;
use crate::check::assert_heads;
use crate::kernel;
use crate::reference::score;
use crate::softmax::softmax_slice;

/// One storage of a cache (its keys, or its values): positions of
/// `[[f32; D]; KVH]`.
pub(crate) trait Store<const KVH: usize, const D: usize> {
    /// The positions held, in storage order.
    fn positions(&self) -> &[[[f32; D]; KVH]];
    /// Storage index of the oldest position (0 when storage order is
    /// logical order).
    fn oldest(&self) -> usize;
    /// Forgets every position.
    fn clear(&mut self);
}

impl<const CAP: usize, const KVH: usize, const D: usize> Store<KVH, D>
    for heapless::Vec<[[f32; D]; KVH], CAP>
{
    fn positions(&self) -> &[[[f32; D]; KVH]] {
        self
    }
    fn oldest(&self) -> usize {
        0
    }
    fn clear(&mut self) {
        heapless::Vec::clear(self);
    }
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
    pub(crate) fn clear<const KVH: usize, const D: usize>(&mut self)
    where
        S: Store<KVH, D>,
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
    pub(crate) fn attend<const N: usize, const H: usize, const KVH: usize, const D: usize>(
        &self,
        q: &[[f32; D]; H],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; N]; H]>,
        mut lse: Option<&mut [f32; H]>,
    ) where
        S: Store<KVH, D>,
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
            kernel::step::<H, KVH, D>(keys, values, start, scale, q, out, lse);
        }
        if let Some(weights) = weights {
            let start = start.min(keys.len());
            let (newer, older) = keys.split_at(start);
            for (h, (row, qh)) in weights.iter_mut().zip(q).enumerate() {
                let g = h / (H / KVH);
                let logical = older.iter().chain(newer).map(|token| &token[g]);
                row.fill(0.0);
                for (w, kj) in row.iter_mut().zip(logical) {
                    *w = score(qh, kj, scale);
                }
                if let Some(visible) = row.get_mut(..keys.len()) {
                    softmax_slice(visible);
                }
            }
        }
    }
}
