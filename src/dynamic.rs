//! The runtime-length API: flat slices, a shape checked once at the entry,
//! the same kernel as the fixed-size API.

use crate::attention::default_scale;
use crate::check;
use crate::error::Error;
use crate::kernel;
use crate::layout::{Dynamic, Problem};

/// The shape of a runtime-length causal attention call.
///
/// Buffers are flat `f32` slices in token-major layout: `q` and `out` hold
/// `q_len × heads × head_dim` values, `k` and `v` hold
/// `kv_len × kv_heads × head_dim`; value `(token, head, dim)` is at
/// `(token·heads + head)·head_dim + dim`.
///
/// When `q_len < kv_len` the queries are the **last** `q_len` positions
/// (bottom-right alignment): query `i` sits at position `kv_len − q_len + i`
/// and sees keys `0..=kv_len − q_len + i`. For `q_len = 2`, `kv_len = 5`
/// (`●` = seen, `·` = masked):
///
/// ```text
///              keys  0 1 2 3 4
/// query 0 (pos 3)    ● ● ● ● ·
/// query 1 (pos 4)    ● ● ● ● ●
/// ```
///
/// With `q_len = kv_len` this is ordinary causal self-attention (the
/// default: [`Shape::new`] with equal lengths). The offset of query 0,
/// `kv_len − q_len`, is [`Shape::q_offset`]; [`Shape::prefix`] builds a
/// shape from it.
///
/// ```
/// use microattn::Shape;
/// let s = Shape::new(2, 5, 4, 2, 16);
/// assert_eq!((s.q_len, s.kv_len, s.heads, s.kv_heads, s.head_dim), (2, 5, 4, 2, 16));
/// assert_eq!(s.scale, 0.25);
/// assert_eq!(s.with_scale(1.0).scale, 1.0);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// Number of query positions.
    pub q_len: usize,
    /// Number of key/value positions (`≥ q_len`).
    pub kv_len: usize,
    /// Number of query heads (a multiple of `kv_heads`).
    pub heads: usize,
    /// Number of key/value heads; query head `h` reads `h / (heads / kv_heads)`.
    pub kv_heads: usize,
    /// Dimension of every query, key and value head.
    pub head_dim: usize,
    /// Score scale; [`Shape::new`] sets `1/√head_dim`.
    pub scale: f32,
}

impl Shape {
    /// A shape with the default scale `1/√head_dim`. Nothing is checked here:
    /// every check happens at the call that uses the shape.
    #[must_use]
    #[inline]
    pub fn new(
        q_len: usize,
        kv_len: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Self {
        Shape {
            q_len,
            kv_len,
            heads,
            kv_heads,
            head_dim,
            scale: default_scale(head_dim),
        }
    }

    /// The shape of `q_len` new queries that follow `q_offset` earlier
    /// positions (a cached prefix): `kv_len = q_offset + q_len`, and query
    /// `i` sits at position `q_offset + i`. The KV cache's prefill is this
    /// shape with `q_offset` = the positions already cached. [`Shape::new`]
    /// states the same alignment through `kv_len`; this constructor states
    /// it through the offset. For `q_offset = 3`, `q_len = 2`:
    ///
    /// ```text
    ///                        cached    new
    ///              keys      0 1 2  |  3 4
    /// query 0 (pos 3 = 3+0)  ● ● ●  |  ● ·
    /// query 1 (pos 4 = 3+1)  ● ● ●  |  ● ●
    /// ```
    ///
    /// A `q_offset + q_len` that overflows `usize` gives `kv_len =
    /// usize::MAX`, which every call rejects (no buffer is that long).
    ///
    /// ```
    /// use microattn::Shape;
    /// let s = Shape::prefix(3, 2, 4, 2, 16);
    /// assert_eq!(s, Shape::new(2, 5, 4, 2, 16));
    /// assert_eq!(s.q_offset(), Some(3));
    /// ```
    #[must_use]
    #[inline]
    pub fn prefix(
        q_offset: usize,
        q_len: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Self {
        let kv_len = q_offset.saturating_add(q_len);
        Shape::new(q_len, kv_len, heads, kv_heads, head_dim)
    }

    /// The position of query 0 among the keys, `kv_len − q_len` (query `i`
    /// sits at `q_offset + i`), or `None` if `q_len > kv_len` (a shape every
    /// call rejects with [`Error::QueryLongerThanKeys`]).
    ///
    /// ```
    /// use microattn::Shape;
    /// assert_eq!(Shape::new(2, 5, 1, 1, 8).q_offset(), Some(3));
    /// assert_eq!(Shape::new(4, 4, 1, 1, 8).q_offset(), Some(0)); // self-attention
    /// assert_eq!(Shape::new(5, 4, 1, 1, 8).q_offset(), None);
    /// ```
    #[must_use]
    #[inline]
    pub fn q_offset(&self) -> Option<usize> {
        self.kv_len.checked_sub(self.q_len)
    }

    /// The same shape with another score scale.
    #[must_use]
    #[inline]
    pub fn with_scale(self, scale: f32) -> Self {
        Shape { scale, ..self }
    }

    /// Number of values in `q` and `out`, or `None` if it overflows `usize`.
    ///
    /// ```
    /// assert_eq!(microattn::Shape::new(3, 3, 2, 1, 4).q_elems(), Some(24));
    /// ```
    #[must_use]
    #[inline]
    pub fn q_elems(&self) -> Option<usize> {
        self.q_len
            .checked_mul(self.heads)?
            .checked_mul(self.head_dim)
    }

    /// Number of values in `k` and in `v`, or `None` if it overflows `usize`.
    ///
    /// ```
    /// assert_eq!(microattn::Shape::new(3, 5, 2, 1, 4).kv_elems(), Some(20));
    /// ```
    #[must_use]
    #[inline]
    pub fn kv_elems(&self) -> Option<usize> {
        self.kv_len
            .checked_mul(self.kv_heads)?
            .checked_mul(self.head_dim)
    }

    /// The runtime API's problem once [`check::runtime`] accepts the shape
    /// and the buffers.
    pub(crate) fn check<'a>(
        &self,
        q: &'a [f32],
        k: &'a [f32],
        v: &'a [f32],
        out_len: usize,
    ) -> Result<Problem<'a, Dynamic>, Error> {
        let sizes = check::runtime(self, [q.len(), k.len(), v.len(), out_len])?;
        Problem::of(sizes, self.scale, (q, k, v))
    }
}

/// Causal attention over runtime-length flat slices (see [`Shape`] for the
/// layout and the alignment of queries to keys).
///
/// Computes exactly what [`causal_multi_head_scaled`](crate::causal_multi_head_scaled)
/// computes for the same values — same kernel, same bits — for lengths known
/// only at run time. Every value of `out` is written on success.
///
/// # Errors
/// Checked once, before any arithmetic; on error `out` is untouched:
/// - [`Error::ZeroDimension`] if `heads`, `kv_heads` or `head_dim` is 0;
/// - [`Error::HeadsNotMultiple`] if `heads % kv_heads != 0`;
/// - [`Error::QueryLongerThanKeys`] if `q_len > kv_len`;
/// - [`Error::NonFiniteScale`] if the scale is NaN or infinite;
/// - [`Error::SizeOverflow`] if a buffer size overflows `usize`;
/// - [`Error::LengthMismatch`] if a buffer's length is not the shape's.
///
/// `q_len = 0` is valid and writes nothing.
///
/// ```
/// use microattn::{Buffer, Error, Shape, causal_attention_dyn};
/// // 3 positions, 2 query heads over 1 key/value head, head dim 4.
/// let shape = Shape::new(3, 3, 2, 1, 4);
/// let q = vec![0.1f32; 3 * 2 * 4];
/// let kv = vec![0.5f32; 3 * 1 * 4];
/// let mut out = vec![0.0f32; q.len()];
/// causal_attention_dyn(&shape, &q, &kv, &kv, &mut out)?;
/// assert!(out.iter().all(|&x| (x - 0.5).abs() < 1e-6));
///
/// let err = causal_attention_dyn(&shape, &q, &kv[1..], &kv, &mut out);
/// assert_eq!(err, Err(Error::LengthMismatch { buffer: Buffer::Key, expected: 12, actual: 11 }));
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
    kernel::run(&p, out, None, None);
    Ok(())
}
