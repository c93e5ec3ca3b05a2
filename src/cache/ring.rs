//! [`RingKvCache`]: the sliding-window cache, a ring of the last `WINDOW`
//! positions.
//!
//! # Storage: two rings, read through a rotation
//! Each ring ([`Ring`]) is a fixed array with a write index that
//! overwrites the oldest element once full, and a slice view of the filled
//! part, with no index the compiler cannot prove in bounds (the no-panic
//! proof checks the optimised code). Once the ring has wrapped, the oldest position is stored at index
//! `start` (the next write index) and logical position `j` (0 = oldest) at
//! `(start + j) mod WINDOW`. The kernel reads keys only through one accessor
//! that maps a logical position to its row, so the cache hands it the
//! storage and `start` (a rotated [`Problem`](crate::layout)) and the keys
//! are reduced in logical order, oldest first, in blocks of 8 from the
//! oldest — the order the kernel uses for a contiguous buffer holding the
//! same window. That makes a ring step bit-identical to a plain
//! [`KvCache`](crate::KvCache) step over the window's tokens, at the cost of
//! one compare-and-subtract per key read.
//!
//! The alternatives cost more: keeping the window contiguous needs either a
//! shift of `WINDOW − 1` positions per step (O(W) copies, the size of the
//! attention itself) or a mirrored buffer of `2·WINDOW` positions (double
//! the memory, which is what a microcontroller has least of).

use super::ring_buffer::{Halves, Ring};
use super::{On, Pair, narrow};
use crate::check;
use crate::element::Element;
use crate::error::{Buffer, Error};

/// Sliding-window key/value cache: keeps the last `WINDOW` positions of
/// `KVH` key/value heads of dimension `D` (inline, no heap); when full, each
/// new position drops the oldest one.
///
/// A query attends over the positions held, in logical order (oldest first):
/// after `p + 1` positions have been pushed, a [`step`](Self::step) for
/// position `p` sees positions `max(0, p − WINDOW + 1)..=p`, the
/// sliding-window attention of
/// [`reference::sliding_window_attention`](crate::reference::sliding_window_attention).
/// The result is bit-identical to a [`KvCache`](crate::KvCache) holding just
/// those positions (same kernel, same order of keys), and within the
/// accuracy contract of the sliding-window reference.
///
/// Pushing never fails: the window slides. Query heads `H` are a multiple of
/// `KVH` (checked at compile time), query head `h` reads key/value head
/// `h / (H / KVH)`; the scale is `1/√D` unless set with
/// [`with_scale`](Self::with_scale).
///
/// Keys and values are stored as `E`: `f32`, or [`f16`](struct@crate::f16) or
/// [`bf16`](struct@crate::bf16) at half the bytes, rounded once when pushed, with
/// the promises of [`KvCache`](crate::KvCache#storage-element)'s 16-bit
/// storage (the bits of an `f32` ring holding the rounded values).
///
/// # Attention sinks
/// With `SINKS > 0` (StreamingLLM's attention sinks), the ring keeps the
/// first `SINKS` positions pushed for good and slides over the others: once
/// full it holds positions `0..SINKS` and the last `WINDOW − SINKS`, and a
/// query sees those, the sinks first (the logical order, in which
/// [`keys`](Self::keys), the weights and the kernel read them). Outputs are
/// bit-identical to a [`KvCache`](crate::KvCache) holding just those
/// positions in that order. The storage stays `WINDOW` positions; each push
/// past the window moves the `SINKS` pinned positions one slot on (`SINKS`
/// copies), so that the logical order stays one rotation of the storage.
/// `SINKS ≥ WINDOW` is a compile-time error.
///
/// ```
/// use microattn::RingKvCache;
/// // 4 positions: position 0 pinned, then the last 3.
/// let mut ring = RingKvCache::<4, 1, 1, f32, 1>::new();
/// for x in 0..7 {
///     ring.push(&[[x as f32]], &[[x as f32]]);
/// }
/// let (older, newer) = ring.keys();
/// let held: Vec<f32> = older.iter().chain(newer).map(|p| p[0][0]).collect();
/// assert_eq!(held, [0.0, 4.0, 5.0, 6.0]);
/// ```
///
/// # Memory
/// `2·WINDOW·KVH·D·size_of::<E>()` bytes of keys and values plus 40 bytes of bookkeeping
/// on a 64-bit target (a length and a write index per array, and the scale;
/// 24 on a 32-bit one).
///
/// ```
/// use microattn::RingKvCache;
/// use core::mem::size_of;
/// let bookkeeping = 4 * size_of::<usize>() + size_of::<Option<f32>>();
/// assert_eq!(size_of::<RingKvCache<8, 2, 4>>(), 512 + bookkeeping);
///
/// // A window of 2 positions, one head of dimension 1.
/// let mut ring = RingKvCache::<2, 1, 1>::new();
/// let mut out = [[0.0f32; 1]; 1];
/// for (t, value) in [10.0f32, 20.0, 30.0].into_iter().enumerate() {
///     ring.step(&[[0.0]], &[[0.0]], &[[value]], &mut out, None, None);
///     assert_eq!(ring.len(), (t + 1).min(2));
/// }
/// // q = 0: the mean of the two positions in the window, 20 and 30.
/// assert_eq!(out, [[25.0]]);
/// assert_eq!(ring.values(), (&[[[20.0]]][..], &[[[30.0]]][..]));
/// ```
pub struct RingKvCache<
    const WINDOW: usize,
    const KVH: usize,
    const D: usize,
    E: Element = f32,
    const SINKS: usize = 0,
> {
    /// Keys and values (written in lock-step: the same write index), and
    /// the scale.
    pub(super) kv: Pair<Ring<WINDOW, KVH, D, E>>,
}

impl<const WINDOW: usize, const KVH: usize, const D: usize, E: Element, const SINKS: usize> Default
    for RingKvCache<WINDOW, KVH, D, E, SINKS>
{
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl<const WINDOW: usize, const KVH: usize, const D: usize, E: Element, const SINKS: usize>
    core::fmt::Debug for RingKvCache<WINDOW, KVH, D, E, SINKS>
{
    /// The shape and fill level (not the contents).
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingKvCache")
            .field("window", &WINDOW)
            .field("sinks", &SINKS)
            .field("kv_heads", &KVH)
            .field("head_dim", &D)
            .field("element", &E::NAME)
            .field("len", &self.len())
            .field("scale", &self.scale())
            .finish()
    }
}

impl<const WINDOW: usize, const KVH: usize, const D: usize, E: Element, const SINKS: usize>
    RingKvCache<WINDOW, KVH, D, E, SINKS>
{
    /// An empty ring with scale `1/√D`, its storage zero-filled (a `const
    /// fn`: in a `static` the zeros are part of the image, not code).
    ///
    /// `WINDOW`, `KVH` or `D` zero is a compile-time error.
    ///
    /// ```
    /// let ring = microattn::RingKvCache::<4, 1, 16>::new();
    /// assert!(ring.is_empty() && ring.capacity() == 4 && ring.scale() == 0.25);
    /// ```
    ///
    /// ```compile_fail
    /// let ring = microattn::RingKvCache::<0, 1, 16>::new(); // no window
    /// ```
    #[must_use]
    #[inline]
    pub const fn new() -> Self {
        const {
            assert!(WINDOW > 0, "sliding window WINDOW must be at least 1");
            assert!(
                SINKS < WINDOW,
                "attention sinks SINKS must leave room in the WINDOW"
            );
            crate::check::assert_heads::<WINDOW, KVH, KVH, D>();
        };
        RingKvCache {
            kv: Pair::new(Ring::new(), Ring::new()),
        }
    }

    /// An empty ring with a caller-chosen score scale (NaN or infinite
    /// makes the outputs NaN).
    ///
    /// ```
    /// assert_eq!(microattn::RingKvCache::<4, 1, 16>::with_scale(1.0).scale(), 1.0);
    /// ```
    #[must_use]
    #[inline]
    pub const fn with_scale(scale: f32) -> Self {
        let mut ring = Self::new();
        ring.kv.set_scale(scale);
        ring
    }

    /// The score scale the attention calls use.
    #[must_use]
    #[inline]
    pub fn scale(&self) -> f32 {
        self.kv.scale::<D>()
    }

    /// Positions held: the number pushed since creation or
    /// [`clear`](Self::clear), at most `WINDOW`.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.kv.keys.len()
    }

    /// `true` if no position is held.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.kv.keys.len() == 0
    }

    /// `true` once `WINDOW` positions are held: every push drops the oldest.
    #[must_use]
    #[inline]
    pub fn is_full(&self) -> bool {
        self.kv.keys.len() == WINDOW
    }

    /// The window `WINDOW`.
    #[must_use]
    #[inline]
    pub const fn capacity(&self) -> usize {
        WINDOW
    }

    /// Forgets every position. O(1); nothing stale is ever read.
    #[inline]
    pub fn clear(&mut self) {
        self.kv.clear();
    }

    /// The keys held, oldest first, as two slices (the ring's storage from
    /// the oldest position to its end, then from its start): the first
    /// holds every position until the ring wraps.
    ///
    /// ```
    /// let mut ring = microattn::RingKvCache::<3, 1, 1>::new();
    /// for x in 0..5 {
    ///     ring.push(&[[x as f32]], &[[0.0]]);
    /// }
    /// assert_eq!(ring.keys(), (&[[[2.0]]][..], &[[[3.0]], [[4.0]]][..]));
    /// ```
    #[must_use]
    #[inline]
    pub fn keys(&self) -> Halves<'_, KVH, D, E> {
        self.kv.keys.as_slices()
    }

    /// The values held, oldest first, as two slices (as [`keys`](Self::keys)).
    #[must_use]
    #[inline]
    pub fn values(&self) -> Halves<'_, KVH, D, E> {
        self.kv.values.as_slices()
    }

    /// Appends one position; when the ring is full the oldest position is
    /// dropped (the oldest after the `SINKS` pinned ones). Cannot fail.
    #[inline]
    pub fn push(&mut self, k: &[[f32; D]; KVH], v: &[[f32; D]; KVH]) {
        self.kv.keys.write(narrow(k), SINKS);
        self.kv.values.write(narrow(v), SINKS);
    }

    /// Appends positions in order, as that many [`push`](Self::push)es (of a
    /// batch longer than `WINDOW` only the last `WINDOW` stay).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] (buffer [`Buffer::Value`]) if `v` has not as
    /// many positions as `k`; nothing is written.
    #[inline]
    pub fn extend(&mut self, k: &[[[f32; D]; KVH]], v: &[[[f32; D]; KVH]]) -> Result<(), Error> {
        check::positions(k.len(), [(Buffer::Value, v.len(), KVH * D)])?;
        for (k, v) in k.iter().zip(v) {
            self.push(k, v);
        }
        Ok(())
    }

    /// Runs one position's queries (`H` heads) over the positions held,
    /// oldest first, without appending. An empty ring gives exactly 0
    /// (log-sum-exp `-inf`, weights 0).
    ///
    /// `weights` (optional): row `h` gets head `h`'s softmax weights over the
    /// positions held in logical order (index 0 = oldest), then zeros up to
    /// `WINDOW`; computed as [`attention_weights`](crate::attention_weights)
    /// computes a row, bit-identical to the reference over the same keys.
    /// `lse` (optional): each head's log-sum-exp of its scores.
    #[inline]
    pub fn attend<const H: usize>(
        &self,
        q: &[[f32; D]; H],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; WINDOW]; H]>,
        lse: Option<&mut [f32; H]>,
    ) {
        self.kv
            .attend::<WINDOW, H, KVH, D, E>(q, out, weights, lse, On::Caller);
    }

    /// One decode step: pushes the position (`k`, `v`), dropping the oldest
    /// when full, then runs its queries over the window, the new position
    /// included ([`push`](Self::push) then [`attend`](Self::attend)).
    /// Cannot fail.
    ///
    /// ```
    /// use microattn::RingKvCache;
    /// let mut ring = RingKvCache::<2, 1, 2>::new();
    /// let mut out = [[0.0f32; 2]; 2];
    /// let mut w = [[0.0f32; 2]; 2];
    /// ring.step(&[[1.0, 0.0]; 2], &[[1.0, 0.0]], &[[1.0, 2.0]], &mut out, Some(&mut w), None);
    /// assert_eq!(w, [[1.0, 0.0]; 2]);
    /// assert_eq!(out, [[1.0, 2.0]; 2]);
    /// ```
    #[inline]
    pub fn step<const H: usize>(
        &mut self,
        q: &[[f32; D]; H],
        k: &[[f32; D]; KVH],
        v: &[[f32; D]; KVH],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; WINDOW]; H]>,
        lse: Option<&mut [f32; H]>,
    ) {
        self.push(k, v);
        self.attend(q, out, weights, lse);
    }

    /// [`step`](Self::step) with the heads spread over the current rayon
    /// pool (feature `rayon`), as
    /// [`KvCache::par_step`](crate::KvCache::par_step): the same bits.
    #[cfg(feature = "rayon")]
    #[inline]
    pub fn par_step<const H: usize>(
        &mut self,
        q: &[[f32; D]; H],
        k: &[[f32; D]; KVH],
        v: &[[f32; D]; KVH],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; WINDOW]; H]>,
        lse: Option<&mut [f32; H]>,
    ) {
        self.push(k, v);
        self.kv
            .attend::<WINDOW, H, KVH, D, E>(q, out, weights, lse, On::Pool);
    }

    /// A batch of `n` positions, token by token: for each, a
    /// [`step`](Self::step) (push, then its queries over the window). Query
    /// `i` of the batch sees the last `WINDOW` positions up to its own,
    /// including positions a later query of the same batch pushes out, so a
    /// batch longer than the window is still exact. `q`, `out`: `[n][H][D]`;
    /// `k`, `v`: `[n][KVH][D]`; `lse` (optional): `[n][H]`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `k`, `v`, `out` or `lse` has not as many
    /// positions as `q`; checked first, nothing is written.
    ///
    /// ```
    /// use microattn::RingKvCache;
    /// let mut ring = RingKvCache::<2, 1, 1>::new();
    /// let kv = [[[1.0f32]], [[2.0]], [[3.0]]];
    /// let mut out = [[[0.0f32]]; 3];
    /// ring.prefill(&[[[0.0]]; 3], &kv, &kv, &mut out, None)?;
    /// assert_eq!(out, [[[1.0]], [[1.5]], [[2.5]]]);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn prefill<const H: usize>(
        &mut self,
        q: &[[[f32; D]; H]],
        k: &[[[f32; D]; KVH]],
        v: &[[[f32; D]; KVH]],
        out: &mut [[[f32; D]; H]],
        mut lse: Option<&mut [[f32; H]]>,
    ) -> Result<(), Error> {
        let n = q.len();
        check::prefill::<H, KVH, D>(
            n,
            [k.len(), v.len(), out.len()],
            lse.as_ref().map(|l| l.len()),
        )?;
        for (i, (((q, k), v), out)) in q.iter().zip(k).zip(v).zip(out.iter_mut()).enumerate() {
            let lse = lse.as_deref_mut().and_then(|l| l.get_mut(i));
            self.step(q, k, v, out, None, lse);
        }
        Ok(())
    }
}
