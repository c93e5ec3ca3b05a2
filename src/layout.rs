//! The validated problem: the one place where shapes and buffer lengths are
//! checked. The kernel and the reference rely on these invariants and check
//! nothing themselves.

use core::num::NonZeroUsize;

use crate::error::{Buffer, Error};

/// Causal attention problem whose shape and buffers have been checked.
///
/// Invariants, enforced by [`Problem::new`] and nowhere else:
/// - `heads`, `kv_heads`, `head_dim` are non-zero and `heads % kv_heads == 0`;
/// - `q_len ≤ kv_len`; query `i` sits at position `offset + i` with
///   `offset = kv_len − q_len` (bottom-right alignment) and sees keys
///   `0..=offset + i`, so every query sees at least one key;
/// - `q.len() == q_len·heads·head_dim`, `k.len() == v.len() ==
///   kv_len·kv_heads·head_dim`, and the output length matches `q.len()`;
///   none of these products overflows.
///
/// Layout is token-major: value `(token, head, dim)` of `q` is at
/// `(token·heads + head)·head_dim + dim`, likewise `k`/`v` with `kv_heads`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem<'a> {
    pub(crate) q: &'a [f32],
    pub(crate) k: &'a [f32],
    pub(crate) v: &'a [f32],
    pub(crate) scale: f32,
    /// Position of query 0 among the keys (`kv_len − q_len`).
    pub(crate) offset: usize,
    /// Query heads per key/value head (`heads / kv_heads`).
    pub(crate) group: NonZeroUsize,
    pub(crate) kv_heads: NonZeroUsize,
    pub(crate) head_dim: NonZeroUsize,
    /// Values per query token (`heads · head_dim`).
    pub(crate) q_token: NonZeroUsize,
}

impl<'a> Problem<'a> {
    /// Checks a shape against the buffers. `out_len` is the output buffer's
    /// length (the output itself stays with the caller, untouched on error).
    ///
    /// # Errors
    /// Every violated invariant above, as the matching [`Error`] variant.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn new(
        q_len: usize,
        kv_len: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        scale: f32,
        (q, k, v): (&'a [f32], &'a [f32], &'a [f32]),
        out_len: usize,
    ) -> Result<Self, Error> {
        let nz = |x: usize, field| NonZeroUsize::new(x).ok_or(Error::ZeroDimension { field });
        let heads_nz = nz(heads, "heads")?;
        let kv_heads = nz(kv_heads, "kv_heads")?;
        let head_dim = nz(head_dim, "head_dim")?;
        if heads % kv_heads != 0 {
            return Err(Error::HeadsNotMultiple {
                heads,
                kv_heads: kv_heads.get(),
            });
        }
        let group = nz(heads / kv_heads, "heads")?;
        let offset = kv_len
            .checked_sub(q_len)
            .ok_or(Error::QueryLongerThanKeys { q_len, kv_len })?;
        let q_token = heads_nz
            .checked_mul(head_dim)
            .ok_or(Error::SizeOverflow)?;
        let kv_token = kv_heads.checked_mul(head_dim).ok_or(Error::SizeOverflow)?;
        let q_elems = q_len
            .checked_mul(q_token.get())
            .ok_or(Error::SizeOverflow)?;
        let kv_elems = kv_len
            .checked_mul(kv_token.get())
            .ok_or(Error::SizeOverflow)?;
        let expect = |buffer, expected, actual| {
            if expected == actual {
                Ok(())
            } else {
                Err(Error::LengthMismatch {
                    buffer,
                    expected,
                    actual,
                })
            }
        };
        expect(Buffer::Query, q_elems, q.len())?;
        expect(Buffer::Key, kv_elems, k.len())?;
        expect(Buffer::Value, kv_elems, v.len())?;
        expect(Buffer::Output, q_elems, out_len)?;
        Ok(Problem {
            q,
            k,
            v,
            scale,
            offset,
            group,
            kv_heads,
            head_dim,
            q_token,
        })
    }

    /// Rows of key/value head `g` (every `kv_heads`-th row of `buf`, starting
    /// at row `g`), for the first `visible` positions.
    #[inline(always)]
    pub(crate) fn kv_rows(
        &self,
        buf: &'a [f32],
        g: usize,
        visible: usize,
    ) -> impl Iterator<Item = &'a [f32]> + Clone + use<'a> {
        buf.chunks_exact(self.head_dim.get())
            .skip(g)
            .step_by(self.kv_heads.get())
            .take(visible)
    }

    /// Every (query position `i`, query head `h`) pair in output order, with
    /// its query row, the key/value head it reads and how many keys it sees.
    /// `out` is cut into the matching rows.
    #[inline(always)]
    pub(crate) fn rows<'o>(
        &self,
        out: &'o mut [f32],
    ) -> impl Iterator<Item = Row<'a, 'o>> + use<'a, 'o> {
        let (d, offset, group) = (self.head_dim.get(), self.offset, self.group);
        let token = self.q_token.get();
        self.q
            .chunks_exact(token)
            .zip(out.chunks_exact_mut(token))
            .enumerate()
            .flat_map(move |(i, (q_tok, out_tok))| {
                q_tok
                    .chunks_exact(d)
                    .zip(out_tok.chunks_exact_mut(d))
                    .enumerate()
                    .map(move |(h, (q, out))| Row {
                        q,
                        out,
                        kv_head: h / group,
                        visible: offset + i + 1,
                    })
            })
    }
}

/// One query row of a [`Problem`]: what the kernel computes at a time.
pub(crate) struct Row<'a, 'o> {
    pub(crate) q: &'a [f32],
    pub(crate) out: &'o mut [f32],
    /// The key/value head this query head reads.
    pub(crate) kv_head: usize,
    /// Number of keys this query sees (positions `0..visible`), at least 1.
    pub(crate) visible: usize,
}
