//! Validation: every rule a shape or a buffer must meet, each written once.
//!
//! Every entry point checks here before it reads a buffer or writes
//! anything (the fixed-size API at compile time, the runtime and padded
//! APIs, the caches, and the reference, which must report the same errors
//! as the API it specifies). What passes is described by [`Sizes`], on which
//! the kernel's layout builds.

use core::num::NonZeroUsize;

use crate::Shape;
use crate::error::{Buffer, Error};

/// Compile-time shape check shared by every fixed-size entry point: no zero
/// dimension, and `H` a multiple of `KVH`.
pub(crate) const fn assert_heads<
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
>() {
    assert!(N > 0, "sequence length N must be at least 1");
    assert!(D > 0, "head dimension D must be at least 1");
    assert!(H > 0, "number of query heads H must be at least 1");
    assert!(KVH > 0, "number of key/value heads KVH must be at least 1");
    assert!(H.is_multiple_of(KVH), "H must be a multiple of KVH");
}

/// A shape that passed [`shape`]: its numbers, and sizes derived from them
/// that do not overflow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// Number of query positions.
    pub(crate) q_len: usize,
    /// Number of key/value positions, at least `q_len`.
    pub(crate) kv_len: usize,
    pub(crate) heads: NonZeroUsize,
    pub(crate) kv_heads: NonZeroUsize,
    pub(crate) head_dim: NonZeroUsize,
    /// Query heads per key/value head (`heads / kv_heads`, exact).
    pub(crate) group: NonZeroUsize,
    /// Values per token in `q` (and the output), and in each of `k` and `v`.
    pub(crate) q_token: usize,
    pub(crate) kv_token: usize,
    /// Values in `q` (and the output), and in each of `k` and `v`.
    pub(crate) q_elems: usize,
    pub(crate) kv_elems: usize,
}

/// The rules of a shape, in the order their errors are reported:
/// [`Error::ZeroDimension`] for `heads`, `kv_heads`, `head_dim`;
/// [`Error::HeadsNotMultiple`]; [`Error::QueryLongerThanKeys`];
/// [`Error::SizeOverflow`] if a buffer's size overflows `usize`.
///
/// # Errors
/// The first rule broken, as above.
#[inline(always)]
pub(crate) fn shape(
    q_len: usize,
    kv_len: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
) -> Result<Sizes, Error> {
    let nz = |x: usize, field| NonZeroUsize::new(x).ok_or(Error::ZeroDimension { field });
    let heads_nz = nz(heads, "heads")?;
    let kv_heads_nz = nz(kv_heads, "kv_heads")?;
    let head_dim_nz = nz(head_dim, "head_dim")?;
    // By the non-zero types, neither `%` nor `/` can divide by zero.
    if heads % kv_heads_nz != 0 {
        return Err(Error::HeadsNotMultiple { heads, kv_heads });
    }
    let group = nz(heads / kv_heads_nz, "heads")?;
    if q_len > kv_len {
        return Err(Error::QueryLongerThanKeys { q_len, kv_len });
    }
    let q_token = heads.checked_mul(head_dim).ok_or(Error::SizeOverflow)?;
    let kv_token = kv_heads.checked_mul(head_dim).ok_or(Error::SizeOverflow)?;
    let q_elems = q_len.checked_mul(q_token).ok_or(Error::SizeOverflow)?;
    let kv_elems = kv_len.checked_mul(kv_token).ok_or(Error::SizeOverflow)?;
    Ok(Sizes {
        q_len,
        kv_len,
        heads: heads_nz,
        kv_heads: kv_heads_nz,
        head_dim: head_dim_nz,
        group,
        q_token,
        kv_token,
        q_elems,
        kv_elems,
    })
}

impl Sizes {
    /// The buffers' lengths (`q`, `k`, `v`, output) against the shape's,
    /// `copies` sequences of it one after the other.
    ///
    /// # Errors
    /// [`Error::SizeOverflow`] if the sizes times `copies` overflow, then
    /// the first buffer whose length differs, as [`Error::LengthMismatch`].
    #[inline(always)]
    pub(crate) fn buffers(&self, copies: usize, [q, k, v, out]: [usize; 4]) -> Result<(), Error> {
        let q_all = self
            .q_elems
            .checked_mul(copies)
            .ok_or(Error::SizeOverflow)?;
        let kv_all = self
            .kv_elems
            .checked_mul(copies)
            .ok_or(Error::SizeOverflow)?;
        lengths([
            (Buffer::Query, q_all, q),
            (Buffer::Key, kv_all, k),
            (Buffer::Value, kv_all, v),
            (Buffer::Output, q_all, out),
        ])
    }
}

/// Each `(buffer, expected, actual)` in order; the first that differs.
///
/// # Errors
/// [`Error::LengthMismatch`] for that buffer.
#[inline(always)]
fn lengths<const N: usize>(checks: [(Buffer, usize, usize); N]) -> Result<(), Error> {
    for (buffer, expected, actual) in checks {
        if expected != actual {
            return Err(Error::LengthMismatch {
                buffer,
                expected,
                actual,
            });
        }
    }
    Ok(())
}

/// A scale must be finite.
///
/// # Errors
/// [`Error::NonFiniteScale`] for NaN or `±∞`.
#[inline(always)]
pub(crate) fn scale(scale: f32) -> Result<(), Error> {
    if scale.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFiniteScale)
    }
}

/// The runtime API's checks: the shape, the buffers, then the scale (after
/// the shape, because a zero `head_dim` makes the default scale infinite
/// and the zero is the error worth reporting).
///
/// # Errors
/// The first rule broken.
#[inline(always)]
pub(crate) fn runtime(shape: &Shape, lens: [usize; 4]) -> Result<Sizes, Error> {
    sequences(shape, 1, lens)
}

/// The shape, the buffers of `copies` sequences, then the scale.
#[inline(always)]
fn sequences(shape: &Shape, copies: usize, lens: [usize; 4]) -> Result<Sizes, Error> {
    let s = self::shape(
        shape.q_len,
        shape.kv_len,
        shape.heads,
        shape.kv_heads,
        shape.head_dim,
    )?;
    s.buffers(copies, lens)?;
    self::scale(shape.scale)?;
    Ok(s)
}

/// The integer path's runtime checks: the shape, the buffers, then the
/// head dimension against the integer scratch
/// ([`int8::MAX_HEAD_DIM`](crate::int8::MAX_HEAD_DIM)). The shape's `scale`
/// is not checked: the integer path's score scale is prepared in its
/// parameters.
///
/// # Errors
/// The first rule broken; [`Error::HeadDimTooLarge`] last.
#[inline(always)]
pub(crate) fn int8_runtime(shape: &Shape, lens: [usize; 4]) -> Result<Sizes, Error> {
    let s = self::shape(
        shape.q_len,
        shape.kv_len,
        shape.heads,
        shape.kv_heads,
        shape.head_dim,
    )?;
    s.buffers(1, lens)?;
    int8_head_dim(shape.head_dim)?;
    Ok(s)
}

/// The integer path's head dimension fits its scratch.
///
/// # Errors
/// [`Error::HeadDimTooLarge`] otherwise.
#[inline(always)]
pub(crate) fn int8_head_dim(head_dim: usize) -> Result<(), Error> {
    let max = crate::int8::MAX_HEAD_DIM;
    if head_dim > max {
        return Err(Error::HeadDimTooLarge { head_dim, max });
    }
    Ok(())
}

/// The padded API's checks: the shape, the buffers of `batch` sequences,
/// the scale, then the valid lengths (one per sequence, none past
/// `kv_len`).
///
/// # Errors
/// The first rule broken; [`Error::ValidLensLength`] and
/// [`Error::ValidLenTooLong`] for the valid lengths.
#[inline(always)]
pub(crate) fn padded(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    lens: [usize; 4],
) -> Result<Sizes, Error> {
    let s = sequences(shape, batch, lens)?;
    if valid_lens.len() != batch {
        return Err(Error::ValidLensLength {
            expected: batch,
            actual: valid_lens.len(),
        });
    }
    for (sequence, &valid_len) in valid_lens.iter().enumerate() {
        if valid_len > shape.kv_len {
            return Err(Error::ValidLenTooLong {
                sequence,
                valid_len,
                kv_len: shape.kv_len,
            });
        }
    }
    Ok(s)
}

/// A cache prefill's buffers (`H` query heads over `KVH` key/value heads of
/// `D` values): `k`, `v`, the output and the log-sum-exp (if given) each
/// hold `n` positions, checked in that order.
///
/// # Errors
/// As [`positions`].
#[inline(always)]
pub(crate) fn prefill<const H: usize, const KVH: usize, const D: usize>(
    n: usize,
    [k, v, out]: [usize; 3],
    lse: Option<usize>,
) -> Result<(), Error> {
    positions(
        n,
        [
            (Buffer::Key, k, KVH * D),
            (Buffer::Value, v, KVH * D),
            (Buffer::Output, out, H * D),
            (Buffer::LogSumExp, lse.unwrap_or(n), H),
        ],
    )
}

/// A cache call's buffers, counted in positions: each `(buffer, actual,
/// per)` must hold `n` positions (of `per` values each), in order.
///
/// # Errors
/// The first that does not, as [`Error::LengthMismatch`] counted in values
/// (`n·per` expected, `actual·per` found).
#[inline(always)]
pub(crate) fn positions<const N: usize>(
    n: usize,
    checks: [(Buffer, usize, usize); N],
) -> Result<(), Error> {
    for (buffer, actual, per) in checks {
        if actual != n {
            return Err(Error::LengthMismatch {
                buffer,
                expected: n.saturating_mul(per),
                actual: actual.saturating_mul(per),
            });
        }
    }
    Ok(())
}
