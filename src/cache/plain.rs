//! [`KvCache`]: the plain cache of up to `CAP` positions.
//!
//! # Storage: two `heapless::Vec`s, token-major
//! Keys and values each live in a [`heapless::Vec`] of `[[f32; D]; KVH]`
//! (one position, all key/value heads), so the valid prefix *is* a
//! contiguous token-major buffer, `[len][KVH][D]`, exactly the layout the
//! kernel reads: no copy, no gather, no index arithmetic beyond the
//! kernel's own. `heapless::Vec` fits because it is that array plus a
//! length, and gives three things a plain array would not:
//! - `new()` is a `const fn` that writes nothing (the storage stays
//!   uninitialised), so creating a cache of megabytes costs nothing, and a
//!   cache can be built in a `const` or `static` initialiser;
//! - its slice view is the valid prefix only, so a slot never written (or
//!   written before [`KvCache::clear`]) cannot be read by any code path:
//!   the kernel, the weights and the views all see `as_slice()`;
//! - `extend_from_slice` checks the capacity before it copies anything,
//!   which is the all-or-nothing append the cache promises.

use super::{On, Pair, narrow};
use crate::check::{self, assert_heads};
use crate::element::Element;
use crate::error::{Buffer, Error};

/// Key/value cache of fixed capacity for incremental (token by token)
/// attention: up to `CAP` positions of `KVH` key/value heads of dimension
/// `D`, stored inline (no heap), token-major.
///
/// - [`push`](Self::push) / [`extend`](Self::extend) append positions;
/// - [`prefill`](Self::prefill) appends a batch and runs causal attention
///   for its queries (a prompt);
/// - [`step`](Self::step) appends one position and runs its queries over
///   every cached position (one decode step);
/// - [`attend`](Self::attend) runs queries over the cache as it is.
///
/// Queries have `H` heads, a multiple of `KVH` (checked at compile time):
/// query head `h` reads key/value head `h / (H / KVH)`, as in
/// [`causal_multi_head`](crate::causal_multi_head). The score scale is
/// `1/√D` unless set with [`with_scale`](Self::with_scale).
///
/// # Storage element
/// `E` is how keys and values are stored: `f32` (the default), or
/// [`f16`](struct@crate::f16) or [`bf16`](struct@crate::bf16) at half the bytes. They are
/// always passed as `f32` and rounded once, when appended; the kernel
/// widens them back to `f32` where it loads them, so every score, weight
/// and sum is computed in `f32`, and a 16-bit cache gives, bit for bit,
/// what an `f32` cache holding the rounded values gives (decode steps equal
/// one causal pass over them). Against the unrounded inputs, one rounding
/// of each key and value adds at most
/// [`reference::rounding_error_bound`](crate::reference::rounding_error_bound)
/// to the accuracy contract. `f16` keeps 11 significant bits up to
/// ±65,504 (a larger value is stored as ±∞); `bf16` 8 bits over `f32`'s
/// range. A decode step reads half the bytes; at 2048 positions it takes
/// about 0.6–0.7× the `f32` step's time on an AVX-512 core, where widening
/// and the score transpose, not the bytes, bound it (`benches/README.md`). A [`prefill`](Self::prefill)
/// into a 16-bit cache runs one decode step per query (the tiled kernel
/// reads `f32` rows only): the same bits, without the tile's reuse of each
/// key across queries.
///
/// ```
/// use microattn::{KvCache, f16};
/// let mut cache = KvCache::<8, 1, 2, f16>::new();
/// let mut out = [[0.0f32; 2]; 1];
/// cache.step(&[[1.0, 0.0]], &[[0.1, 0.2]], &[[1.0 / 3.0, 70_000.0]], &mut out, None, None)?;
/// assert_eq!(cache.values()[0][0][0], f16::from_f32(1.0 / 3.0)); // rounded once
/// assert_eq!(out, [[f16::from_f32(1.0 / 3.0).to_f32(), f32::INFINITY]]);
/// # Ok::<(), microattn::Error>(())
/// ```
///
/// # Memory
/// `size_of::<KvCache<CAP, KVH, D, E>>()` is `2·CAP·KVH·D·size_of::<E>()`
/// bytes of keys and values (4 bytes per value for `f32`, 2 for `f16` and
/// `bf16`) plus 24 bytes of bookkeeping on a 64-bit target (two lengths and
/// the scale; 16 on a 32-bit one, measured on `thumbv7em-none-eabihf`).
/// Nothing else, ever: the calls keep
/// `O(D)` scratch on the stack like the kernel.
///
/// | cache | bytes |
/// |---|---|
/// | `KvCache<64, 1, 16>` (a microcontroller) | 8,192 + 16 (32-bit) |
/// | `KvCache<2048, 2, 64>` (GQA, H = 8) | 2,097,152 + 24 (2 MiB) |
/// | `KvCache<2048, 8, 64>` (MHA, H = 8) | 8,388,608 + 24 (8 MiB) |
/// | `KvCache<2048, 8, 64, f16>` (the same, 16-bit) | 4,194,304 + 24 (4 MiB) |
///
/// The last one does not fit a default 8 MiB thread stack: put a cache that
/// big in a `Box`, a `static` or a thread with a larger stack.
///
/// ```
/// use microattn::KvCache;
/// // 8 positions, 2 key/value heads of dimension 4: 2·8·2·4·4 = 512 bytes.
/// use core::mem::size_of;
/// // Plus two lengths and the optional scale.
/// let bookkeeping = 2 * size_of::<usize>() + size_of::<Option<f32>>();
/// assert_eq!(size_of::<KvCache<8, 2, 4>>(), 512 + bookkeeping);
/// ```
///
/// # Example: prompt, then decode
/// ```
/// use microattn::KvCache;
/// // Up to 16 positions, 1 key/value head shared by 2 query heads, D = 4.
/// let mut cache = KvCache::<16, 1, 4>::new();
///
/// // The prompt: 3 positions at once.
/// let q = [[[0.1f32; 4]; 2]; 3];
/// let kv = [[[0.5f32; 4]; 1]; 3];
/// let mut out = [[[0.0f32; 4]; 2]; 3];
/// cache.prefill(&q, &kv, &kv, &mut out, None)?;
/// assert_eq!(cache.len(), 3);
///
/// // One decode step: append position 3, attend over positions 0..=3.
/// let mut next = [[0.0f32; 4]; 2];
/// let mut weights = [[0.0f32; 16]; 2];
/// cache.step(&[[0.2; 4]; 2], &[[0.5; 4]], &[[0.5; 4]], &mut next, Some(&mut weights), None)?;
/// assert_eq!(cache.len(), 4);
/// assert!(next.iter().flatten().all(|&x| (x - 0.5).abs() < 1e-6));
/// assert!((weights[0][..4].iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert!(weights[0][4..].iter().all(|&w| w == 0.0));
/// # Ok::<(), microattn::Error>(())
/// ```
pub struct KvCache<const CAP: usize, const KVH: usize, const D: usize, E: Element = f32> {
    /// Keys and values by position, and the scale.
    pub(super) kv: Pair<heapless::Vec<[[E; D]; KVH], CAP>>,
}

impl<const CAP: usize, const KVH: usize, const D: usize, E: Element> Default
    for KvCache<CAP, KVH, D, E>
{
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize, const KVH: usize, const D: usize, E: Element> core::fmt::Debug
    for KvCache<CAP, KVH, D, E>
{
    /// The shape and fill level (not the contents, which may be megabytes).
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KvCache")
            .field("capacity", &CAP)
            .field("kv_heads", &KVH)
            .field("head_dim", &D)
            .field("element", &E::NAME)
            .field("len", &self.len())
            .field("scale", &self.scale())
            .finish()
    }
}

impl<const CAP: usize, const KVH: usize, const D: usize, E: Element> KvCache<CAP, KVH, D, E> {
    /// An empty cache with scale `1/√D`. Writes nothing: the storage stays
    /// uninitialised until positions are appended, so this is free for any
    /// `CAP`, and usable in a `const` or `static`.
    ///
    /// `CAP`, `KVH` or `D` zero is a compile-time error.
    ///
    /// ```
    /// let cache = microattn::KvCache::<4, 1, 8>::new();
    /// assert!(cache.is_empty());
    /// assert_eq!(cache.capacity(), 4);
    /// assert_eq!(cache.scale(), 1.0 / 8f32.sqrt());
    /// ```
    ///
    /// ```compile_fail
    /// let cache = microattn::KvCache::<0, 1, 8>::new(); // no capacity
    /// ```
    #[must_use]
    #[inline]
    pub const fn new() -> Self {
        const {
            assert!(CAP > 0, "KV cache capacity CAP must be at least 1");
            assert_heads::<CAP, KVH, KVH, D>();
        };
        KvCache {
            kv: Pair::new(heapless::Vec::new(), heapless::Vec::new()),
        }
    }

    /// An empty cache with a caller-chosen score scale. A NaN or infinite
    /// scale is not rejected: it makes every output NaN (as in
    /// [`causal_multi_head_scaled`](crate::causal_multi_head_scaled)).
    ///
    /// ```
    /// let cache = microattn::KvCache::<4, 1, 8>::with_scale(0.5);
    /// assert_eq!(cache.scale(), 0.5);
    /// ```
    #[must_use]
    #[inline]
    pub const fn with_scale(scale: f32) -> Self {
        let mut cache = Self::new();
        cache.kv.set_scale(scale);
        cache
    }

    /// The score scale the attention calls use.
    #[must_use]
    #[inline]
    pub fn scale(&self) -> f32 {
        self.kv.scale::<D>()
    }

    /// Positions cached.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.kv.keys.len()
    }

    /// `true` if no position is cached.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.kv.keys.is_empty()
    }

    /// `true` if the cache holds `CAP` positions: every append fails.
    #[must_use]
    #[inline]
    pub fn is_full(&self) -> bool {
        self.kv.keys.is_full()
    }

    /// The capacity `CAP`.
    #[must_use]
    #[inline]
    pub const fn capacity(&self) -> usize {
        CAP
    }

    /// Forgets every position (the next one appended is position 0 again).
    /// O(1): nothing is overwritten, and nothing past [`len`](Self::len) is
    /// ever read.
    ///
    /// ```
    /// let mut cache = microattn::KvCache::<2, 1, 1>::new();
    /// cache.push(&[[1.0]], &[[2.0]])?;
    /// cache.clear();
    /// assert!(cache.is_empty() && cache.keys().is_empty());
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn clear(&mut self) {
        self.kv.clear();
    }

    /// Keeps the first `len` positions and forgets the rest (nothing if
    /// `len ≥ self.len()`): rolls the cache back, e.g. after rejected
    /// speculative tokens. O(1).
    ///
    /// ```
    /// let mut cache = microattn::KvCache::<4, 1, 1>::new();
    /// cache.extend(&[[[1.0]], [[2.0]], [[3.0]]], &[[[1.0]], [[2.0]], [[3.0]]])?;
    /// cache.truncate(1);
    /// assert_eq!(cache.keys(), &[[[1.0]]]);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.kv.keys.truncate(len);
        self.kv.values.truncate(len);
    }

    /// The cached keys, position by position (`[len][KVH][D]`): the valid
    /// prefix only.
    ///
    /// ```
    /// let mut cache = microattn::KvCache::<4, 2, 1>::new();
    /// cache.push(&[[1.0], [2.0]], &[[3.0], [4.0]])?;
    /// assert_eq!(cache.keys(), &[[[1.0], [2.0]]]);
    /// assert_eq!(cache.values(), &[[[3.0], [4.0]]]);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[must_use]
    #[inline]
    pub fn keys(&self) -> &[[[E; D]; KVH]] {
        &self.kv.keys
    }

    /// The cached values, position by position (`[len][KVH][D]`).
    #[must_use]
    #[inline]
    pub fn values(&self) -> &[[[E; D]; KVH]] {
        &self.kv.values
    }

    /// Appends one position's keys and values (all `KVH` heads).
    ///
    /// # Errors
    /// [`Error::CacheFull`] if the cache holds `CAP` positions; the cache is
    /// unchanged (the caller still has `k` and `v`).
    ///
    /// ```
    /// use microattn::{Error, KvCache};
    /// let mut cache = KvCache::<1, 1, 2>::new();
    /// cache.push(&[[1.0, 2.0]], &[[3.0, 4.0]])?;
    /// let full = cache.push(&[[5.0, 6.0]], &[[7.0, 8.0]]);
    /// assert_eq!(full, Err(Error::CacheFull { capacity: 1, len: 1, requested: 1 }));
    /// assert_eq!(cache.keys(), &[[[1.0, 2.0]]]);
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn push(&mut self, k: &[[f32; D]; KVH], v: &[[f32; D]; KVH]) -> Result<(), Error> {
        self.extend(core::slice::from_ref(k), core::slice::from_ref(v))
    }

    /// Appends a batch of positions, all or nothing.
    ///
    /// # Errors
    /// Checked before anything is written; on error the cache is unchanged:
    /// - [`Error::LengthMismatch`] (buffer [`Buffer::Value`]) if `v` has not
    ///   as many positions as `k`; lengths are counted in `f32` values;
    /// - [`Error::CacheFull`] if `len + k.len() > CAP`.
    ///
    /// ```
    /// use microattn::{Error, KvCache};
    /// let mut cache = KvCache::<3, 1, 1>::new();
    /// cache.extend(&[[[1.0]], [[2.0]]], &[[[1.0]], [[2.0]]])?;
    /// let err = cache.extend(&[[[3.0]], [[4.0]]], &[[[3.0]], [[4.0]]]);
    /// assert_eq!(err, Err(Error::CacheFull { capacity: 3, len: 2, requested: 2 }));
    /// assert_eq!(cache.len(), 2);
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn extend(&mut self, k: &[[[f32; D]; KVH]], v: &[[[f32; D]; KVH]]) -> Result<(), Error> {
        check::positions(k.len(), [(Buffer::Value, v.len(), KVH * D)])?;
        self.check_fits(k.len())?;
        self.append(k, v);
        Ok(())
    }

    /// Appends a batch of `n` positions and runs causal attention for its
    /// `n` queries against the cached prefix plus the batch: the query of
    /// batch position `i` sits at position `len + i` (`len` = positions
    /// cached before the call) and sees positions `0..=len + i`, never a
    /// later one (bottom-right alignment, as in
    /// [`Shape::prefix`](crate::Shape::prefix)`(len, n, H, KVH, D)`). On an
    /// empty cache this is [`causal_multi_head`](crate::causal_multi_head)
    /// over the batch, bit for bit.
    ///
    /// `q` and `out` are `[n][H][D]`, `k` and `v` `[n][KVH][D]`. With `lse`
    /// (`[n][H]`), also writes each query's log-sum-exp of its scores,
    /// `m + ln Σⱼ exp(sⱼ − m)`. Every value of `out` (and `lse`) is written
    /// on success. `n = 0` does nothing.
    ///
    /// # Errors
    /// Checked before anything is written; on error the cache, `out` and
    /// `lse` are unchanged:
    /// - [`Error::LengthMismatch`] if `k`, `v`, `out` or `lse` has not as many
    ///   positions as `q` (lengths in `f32` values);
    /// - [`Error::CacheFull`] if `len + n > CAP`.
    ///
    /// ```
    /// use microattn::KvCache;
    /// // Prefill of a whole sequence equals causal_multi_head on it.
    /// let q = [[[0.3f32, -0.1]; 1], [[0.2, 0.4]; 1], [[-0.5, 0.1]; 1]];
    /// let k = [[[0.1f32, 0.2]; 1], [[0.3, -0.2]; 1], [[0.0, 0.5]; 1]];
    /// let v = [[[1.0f32, 0.0]; 1], [[0.0, 1.0]; 1], [[0.5, 0.5]; 1]];
    /// let mut out = [[[0.0f32; 2]; 1]; 3];
    /// let mut cache = KvCache::<8, 1, 2>::new();
    /// cache.prefill(&q, &k, &v, &mut out, None)?;
    /// let mut full = [[[0.0f32; 2]; 1]; 3];
    /// microattn::causal_multi_head(&q, &k, &v, &mut full);
    /// assert_eq!(out, full);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn prefill<const H: usize>(
        &mut self,
        q: &[[[f32; D]; H]],
        k: &[[[f32; D]; KVH]],
        v: &[[[f32; D]; KVH]],
        out: &mut [[[f32; D]; H]],
        lse: Option<&mut [[f32; H]]>,
    ) -> Result<(), Error> {
        const { assert_heads::<CAP, H, KVH, D>() };
        let n = q.len();
        check::prefill::<H, KVH, D>(
            n,
            [k.len(), v.len(), out.len()],
            lse.as_ref().map(|l| l.len()),
        )?;
        self.check_fits(n)?;
        self.append(k, v);
        self.kv.attend_last(q, out, lse);
        Ok(())
    }

    /// One decode step: appends position `len` (`k`, `v`), then runs its
    /// queries (`H` heads) over every cached position `0..=len`, the new one
    /// included — as a language model's decode step does. Equivalent to
    /// [`push`](Self::push) then [`attend`](Self::attend), and bit for bit
    /// to the last row of a [`prefill`](Self::prefill) of all positions.
    ///
    /// Optional outputs, as in [`attend`](Self::attend): the softmax weights
    /// of each head over positions `0..len` (then zeros up to `CAP`) and each
    /// head's log-sum-exp.
    ///
    /// # Errors
    /// [`Error::CacheFull`] if the cache holds `CAP` positions; nothing is
    /// written (cache, `out`, `weights`, `lse` unchanged).
    ///
    /// ```
    /// use microattn::KvCache;
    /// let mut cache = KvCache::<4, 1, 2>::new();
    /// let mut out = [[0.0f32; 2]; 1];
    /// let mut lse = [0.0f32; 1];
    /// cache.step(&[[1.0, 0.0]], &[[1.0, 0.0]], &[[3.0, 4.0]], &mut out, None, Some(&mut lse))?;
    /// // The first position sees only itself: its value, weight 1.
    /// assert_eq!(out, [[3.0, 4.0]]);
    /// assert_eq!(lse[0], 1.0 / 2f32.sqrt()); // ln(exp(s)) = s = q·k/√2
    /// # Ok::<(), microattn::Error>(())
    /// ```
    ///
    /// ```compile_fail
    /// // 3 query heads cannot be grouped over 2 key/value heads.
    /// let mut cache = microattn::KvCache::<4, 2, 2>::new();
    /// let mut out = [[0.0f32; 2]; 3];
    /// let _ = cache.step(&[[1.0; 2]; 3], &[[1.0; 2]; 2], &[[1.0; 2]; 2], &mut out, None, None);
    /// ```
    #[inline]
    pub fn step<const H: usize>(
        &mut self,
        q: &[[f32; D]; H],
        k: &[[f32; D]; KVH],
        v: &[[f32; D]; KVH],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; CAP]; H]>,
        lse: Option<&mut [f32; H]>,
    ) -> Result<(), Error> {
        self.push(k, v)?;
        self.attend(q, out, weights, lse);
        Ok(())
    }

    /// Runs one position's queries (`H` heads) over every cached position,
    /// without appending anything: `out[h] = Σⱼ softmax(scale·q[h]·kⱼ)ⱼ·vⱼ`
    /// over `j < len`, key/value head `h / (H / KVH)`. An empty cache gives
    /// exactly 0 (and log-sum-exp `-inf`, all weights 0).
    ///
    /// - `weights` (optional): row `h` gets head `h`'s softmax weights over
    ///   positions `0..len`, then exact zeros up to `CAP`. They are computed
    ///   as [`attention_weights`](crate::attention_weights) computes a row
    ///   (scores by [`reference::score`](crate::reference::score), then
    ///   [`softmax`](crate::softmax)), so they are bit-identical to the
    ///   reference's weights over the same keys. The fused kernel never
    ///   stores weights: computing them costs a second pass over the keys,
    ///   and they can differ from the weights the kernel applies by about
    ///   1 ULP (its lane `exp`).
    /// - `lse` (optional): head `h`'s log-sum-exp of its scores,
    ///   `m + ln Σⱼ exp(sⱼ − m)`, from the kernel's own running max and sum.
    ///
    /// ```
    /// use microattn::KvCache;
    /// let mut cache = KvCache::<4, 1, 2>::new();
    /// let mut out = [[f32::NAN; 2]; 2];
    /// let mut lse = [0.0f32; 2];
    /// cache.attend(&[[1.0, 0.0]; 2], &mut out, None, Some(&mut lse));
    /// assert_eq!((out, lse), ([[0.0; 2]; 2], [f32::NEG_INFINITY; 2])); // empty
    /// cache.extend(&[[[1.0, 0.0]], [[0.0, 1.0]]], &[[[1.0, 1.0]], [[1.0, 1.0]]])?;
    /// cache.attend(&[[1.0, 0.0]; 2], &mut out, None, None);
    /// assert_eq!(out, [[1.0, 1.0]; 2]);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn attend<const H: usize>(
        &self,
        q: &[[f32; D]; H],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; CAP]; H]>,
        lse: Option<&mut [f32; H]>,
    ) {
        self.kv
            .attend::<CAP, H, KVH, D, E>(q, out, weights, lse, On::Caller);
    }

    /// [`step`](Self::step) with the heads spread over the current rayon
    /// pool (feature `rayon`): one task per four consecutive query heads, a
    /// split fixed by the shape, so the result is bit for bit
    /// [`step`](Self::step)'s with any number of threads. Each task reads
    /// its heads' rows of every position: on a long cache the step is bound
    /// by memory bandwidth, which more cores share (`benches/README.md`).
    ///
    /// # Errors
    /// As [`step`](Self::step): [`Error::CacheFull`], nothing written.
    ///
    /// ```
    /// use microattn::KvCache;
    /// let (mut one, mut all) = (KvCache::<64, 4, 8>::new(), KvCache::<64, 4, 8>::new());
    /// let (mut a, mut b) = ([[0.0f32; 8]; 4], [[0.0f32; 8]; 4]);
    /// for t in 0..40 {
    ///     let x = [[t as f32 / 40.0; 8]; 4];
    ///     one.step(&x, &x, &x, &mut a, None, None)?;
    ///     all.par_step(&x, &x, &x, &mut b, None, None)?;
    ///     assert_eq!(a, b);
    /// }
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[cfg(feature = "rayon")]
    #[inline]
    pub fn par_step<const H: usize>(
        &mut self,
        q: &[[f32; D]; H],
        k: &[[f32; D]; KVH],
        v: &[[f32; D]; KVH],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; CAP]; H]>,
        lse: Option<&mut [f32; H]>,
    ) -> Result<(), Error> {
        self.push(k, v)?;
        self.par_attend(q, out, weights, lse);
        Ok(())
    }

    /// [`attend`](Self::attend) with the heads spread over the current rayon
    /// pool (feature `rayon`), as [`par_step`](Self::par_step): the same
    /// bits.
    #[cfg(feature = "rayon")]
    #[inline]
    pub fn par_attend<const H: usize>(
        &self,
        q: &[[f32; D]; H],
        out: &mut [[f32; D]; H],
        weights: Option<&mut [[f32; CAP]; H]>,
        lse: Option<&mut [f32; H]>,
    ) {
        self.kv
            .attend::<CAP, H, KVH, D, E>(q, out, weights, lse, On::Pool);
    }

    /// [`Error::CacheFull`] unless `n` more positions fit.
    pub(super) fn check_fits(&self, n: usize) -> Result<(), Error> {
        if n > CAP - self.len() {
            return Err(Error::CacheFull {
                capacity: CAP,
                len: self.len(),
                requested: n,
            });
        }
        Ok(())
    }

    /// Appends `k` and `v` of the same length after
    /// [`check_fits`](Self::check_fits) passed. The one place the two lengths move, together: if the second
    /// append could fail (it cannot: same length, same capacity, checked),
    /// the first is undone, so `keys.len() == values.len()` always holds.
    pub(super) fn append(&mut self, k: &[[[f32; D]; KVH]], v: &[[[f32; D]; KVH]]) {
        let len = self.len();
        let kv = &mut self.kv;
        for (k, v) in k.iter().zip(v) {
            if kv.keys.push(narrow(k)).is_err() || kv.values.push(narrow(v)).is_err() {
                kv.keys.truncate(len);
                kv.values.truncate(len);
                return;
            }
        }
    }
}
