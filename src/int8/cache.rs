//! [`KvCache`]: the integer path's key/value cache, `i8` positions, fixed
//! capacity, no heap; its calls run the integer kernel over the cached
//! prefix.

use super::kernel::{self, Rows};
use super::params::Params;
use crate::check::{self, assert_heads};
use crate::error::{Buffer, Error};

/// Key/value cache of `i8` positions for the integer path: the calls of
/// [`crate::KvCache`] (push, extend, prefill, step, attend, clear,
/// truncate) with the quantization of [`Params`], fixed when the cache is
/// made (a model's tensors have static quantization).
///
/// A query at position `p` sees positions `0..=p` in every call, and its
/// row is computed by the same kernel over the same keys in the same
/// order, so decode steps equal one causal pass
/// ([`causal_multi_head`](super::causal_multi_head)) bit for bit.
///
/// # Memory
/// `2·CAP·KVH·D` bytes of keys and values (a quarter of the `f32`
/// cache's), plus two lengths and the prepared [`Params`]:
///
/// ```
/// use core::mem::size_of;
/// use microattn::int8::{KvCache, Params};
/// type Small = KvCache<32, 1, 16>; // 32 positions, 1 head, D = 16
/// let bookkeeping = 2 * size_of::<usize>() + size_of::<Params>();
/// assert_eq!(size_of::<Small>(), 1024 + bookkeeping);
/// ```
///
/// # Example
/// ```
/// use microattn::int8::{self, KvCache, Params, Quant};
/// let a = Quant { scale: 0.05, zero_point: -1 };
/// let p = Params::new(a, a, a, a, 4)?;
/// let mut cache = KvCache::<8, 1, 4>::new(p);
/// let q = [[[10i8, 0, -5, 3]; 2]; 3]; // 2 query heads over 1 key/value head
/// let kv = [[[4i8, -4, 9, 0]; 1]; 3];
/// let mut out = [[[0i8; 4]; 2]; 3];
/// cache.prefill(&q, &kv, &kv, &mut out)?;
/// let mut next = [[0i8; 4]; 2];
/// cache.step(&[[1, 2, 3, 4]; 2], &[[0; 4]], &[[7; 4]], &mut next)?;
/// assert_eq!(cache.len(), 4);
/// # Ok::<(), microattn::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KvCache<const CAP: usize, const KVH: usize, const D: usize> {
    keys: heapless::Vec<[[i8; D]; KVH], CAP>,
    values: heapless::Vec<[[i8; D]; KVH], CAP>,
    params: Params,
}

impl<const CAP: usize, const KVH: usize, const D: usize> KvCache<CAP, KVH, D> {
    /// An empty cache with these parameters. Writes nothing (the storage
    /// stays uninitialised until positions are appended), so it is free for
    /// any `CAP` and usable in a `const` or `static`.
    ///
    /// `CAP`, `KVH` or `D` zero, or `D > MAX_HEAD_DIM`, is a compile-time
    /// error.
    #[must_use]
    #[inline]
    pub const fn new(params: Params) -> Self {
        const {
            assert!(CAP > 0, "KV cache capacity CAP must be at least 1");
            assert!(KVH > 0, "number of key/value heads KVH must be at least 1");
            assert!(D > 0, "head dimension D must be at least 1");
            assert!(
                D <= super::MAX_HEAD_DIM,
                "D must be at most int8::MAX_HEAD_DIM"
            );
        };
        KvCache {
            keys: heapless::Vec::new(),
            values: heapless::Vec::new(),
            params,
        }
    }

    /// The prepared parameters.
    #[must_use]
    #[inline]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Positions held.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no position is held.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `CAP` positions are held.
    #[must_use]
    #[inline]
    pub fn is_full(&self) -> bool {
        self.keys.is_full()
    }

    /// Positions the cache can hold, `CAP`.
    #[must_use]
    #[inline]
    pub const fn capacity(&self) -> usize {
        CAP
    }

    /// Forgets every position.
    #[inline]
    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
    }

    /// Keeps the first `len` positions (nothing if `len ≥ self.len()`).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.keys.truncate(len);
        self.values.truncate(len);
    }

    /// The cached keys, `[len][KVH][D]`.
    #[must_use]
    #[inline]
    pub fn keys(&self) -> &[[[i8; D]; KVH]] {
        &self.keys
    }

    /// The cached values, `[len][KVH][D]`.
    #[must_use]
    #[inline]
    pub fn values(&self) -> &[[[i8; D]; KVH]] {
        &self.values
    }

    /// Appends one position.
    ///
    /// # Errors
    /// [`Error::CacheFull`] if `CAP` positions are held; the cache is
    /// unchanged.
    #[inline]
    pub fn push(&mut self, k: &[[i8; D]; KVH], v: &[[i8; D]; KVH]) -> Result<(), Error> {
        self.extend(core::slice::from_ref(k), core::slice::from_ref(v))
    }

    /// Appends a batch of positions, all or nothing.
    ///
    /// # Errors
    /// Checked before anything is written; on error the cache is unchanged:
    /// [`Error::LengthMismatch`] (buffer [`Buffer::Value`]) if `v` has not
    /// as many positions as `k`; [`Error::CacheFull`] if they do not fit.
    ///
    /// ```
    /// use microattn::{Error, int8::{KvCache, Params, Quant}};
    /// let a = Quant { scale: 1.0, zero_point: 0 };
    /// let mut cache = KvCache::<1, 1, 1>::new(Params::new(a, a, a, a, 1)?);
    /// cache.push(&[[1]], &[[2]])?;
    /// let full = cache.push(&[[3]], &[[4]]);
    /// assert_eq!(full, Err(Error::CacheFull { capacity: 1, len: 1, requested: 1 }));
    /// assert_eq!(cache.keys(), &[[[1]]]);
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn extend(&mut self, k: &[[[i8; D]; KVH]], v: &[[[i8; D]; KVH]]) -> Result<(), Error> {
        check::positions(k.len(), [(Buffer::Value, v.len(), KVH * D)])?;
        self.check_fits(k.len())?;
        self.append(k, v);
        Ok(())
    }

    /// Appends a batch of `n` positions and runs its `n` queries: the
    /// query of batch position `i` sits at position `len + i` and sees
    /// positions `0..=len + i`. On an empty cache this is
    /// [`causal_multi_head`](super::causal_multi_head) over the batch, bit
    /// for bit. `q` and `out` are `[n][H][D]`, `k` and `v` `[n][KVH][D]`.
    ///
    /// # Errors
    /// Checked before anything is written; on error the cache and `out`
    /// are unchanged: [`Error::LengthMismatch`] if `k`, `v` or `out` has
    /// not as many positions as `q`; [`Error::CacheFull`] if `len + n >
    /// CAP`.
    #[inline]
    pub fn prefill<const H: usize>(
        &mut self,
        q: &[[[i8; D]; H]],
        k: &[[[i8; D]; KVH]],
        v: &[[[i8; D]; KVH]],
        out: &mut [[[i8; D]; H]],
    ) -> Result<(), Error> {
        const { assert_heads::<CAP, H, KVH, D>() };
        let n = q.len();
        check::prefill::<H, KVH, D>(n, [k.len(), v.len(), out.len()], None)?;
        self.check_fits(n)?;
        let start = self.len();
        self.append(k, v);
        for (i, (q, out)) in q.iter().zip(out.iter_mut()).enumerate() {
            self.run::<H>(q, out, start + i + 1);
        }
        Ok(())
    }

    /// One decode step: appends position `len` (`k`, `v`), then runs its
    /// queries (`H` heads) over positions `0..=len`. Bit for bit the last
    /// row of a [`prefill`](Self::prefill) of all positions.
    ///
    /// # Errors
    /// [`Error::CacheFull`] if `CAP` positions are held; nothing is
    /// written.
    #[inline]
    pub fn step<const H: usize>(
        &mut self,
        q: &[[i8; D]; H],
        k: &[[i8; D]; KVH],
        v: &[[i8; D]; KVH],
        out: &mut [[i8; D]; H],
    ) -> Result<(), Error> {
        self.push(k, v)?;
        self.attend(q, out);
        Ok(())
    }

    /// Runs one position's queries (`H` heads) over every cached position
    /// without appending. An empty cache gives the output zero point (a
    /// real 0) everywhere.
    #[inline]
    pub fn attend<const H: usize>(&self, q: &[[i8; D]; H], out: &mut [[i8; D]; H]) {
        const { assert_heads::<CAP, H, KVH, D>() };
        self.run::<H>(q, out, self.len());
    }

    /// The queries of one position over the first `len` cached positions.
    #[inline(always)]
    fn run<const H: usize>(&self, q: &[[i8; D]; H], out: &mut [[i8; D]; H], len: usize) {
        let group = (H / KVH).max(1);
        let p = &self.params;
        for (h, (q, out)) in q.iter().zip(out.iter_mut()).enumerate() {
            let rows = |flat| Rows::new(flat, KVH * D, (h / group) * D, D);
            let keys = rows(self.keys().as_flattened().as_flattened());
            let values = rows(self.values().as_flattened().as_flattened());
            kernel::row::<D>(p, q, (keys, values), len, CAP, |dim, mean| {
                if let Some(o) = out.get_mut(dim) {
                    *o = p.requantize_row_mean(mean);
                }
            });
        }
    }

    /// [`Error::CacheFull`] unless `n` more positions fit.
    fn check_fits(&self, n: usize) -> Result<(), Error> {
        if n > CAP - self.len() {
            return Err(Error::CacheFull {
                capacity: CAP,
                len: self.len(),
                requested: n,
            });
        }
        Ok(())
    }

    /// Appends `k` and `v` of the same length once they fit; both lengths
    /// move together (the second append cannot fail, and would undo the
    /// first if it did).
    fn append(&mut self, k: &[[[i8; D]; KVH]], v: &[[[i8; D]; KVH]]) {
        let len = self.len();
        if self.keys.extend_from_slice(k).is_err() || self.values.extend_from_slice(v).is_err() {
            self.keys.truncate(len);
            self.values.truncate(len);
        }
    }
}
