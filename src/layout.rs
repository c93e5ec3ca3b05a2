//! The kernel's view of a validated problem: rows of `q`, `k`, `v` and the
//! output by token, head and position, for a head dimension fixed at compile
//! time or at run time. The rules themselves are checked in
//! [`check`](crate::check); the kernel relies on them and checks nothing.

use core::num::NonZeroUsize;

use crate::check::{self, Sizes};
use crate::element::Row;
use crate::error::Error;
use crate::simd::{Block, LANE_WIDTH};

/// The width of one head's row: known at compile time ([`Fixed`]) or at run
/// time ([`Dynamic`]).
///
/// The kernel is generic over it so that a fixed head dimension reaches the
/// lane loops as a type-level array length (`&[f32; D]`), which lets them
/// unroll, while runtime lengths run the same code on `&[f32]` rows.
pub(crate) trait Width: Copy {
    /// One head's row: `[f32; D]` or `[f32]`.
    type Row: ?Sized + AsRef<[f32]> + AsMut<[f32]> + Row<Elem = f32> + 'static;
    /// The width for `head_dim`, if this kind of width can have it.
    fn new(head_dim: usize) -> Option<Self>;
    /// The head dimension (non-zero).
    fn get(self) -> NonZeroUsize;
    /// `flat` cut into consecutive rows (a trailing partial row is dropped).
    fn rows(self, flat: &[f32]) -> impl Iterator<Item = &Self::Row> + Clone;
    /// `flat` cut into consecutive mutable rows.
    fn rows_mut(self, flat: &mut [f32]) -> impl Iterator<Item = &mut Self::Row>;
    /// Row `index` of `flat`, if it is whole.
    fn row(self, flat: &[f32], index: usize) -> Option<&Self::Row>;
}

/// A head dimension fixed at compile time, `D > 0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fixed<const D: usize>;

impl<const D: usize> Width for Fixed<D> {
    type Row = [f32; D];
    #[inline(always)]
    fn new(head_dim: usize) -> Option<Self> {
        (head_dim == D && D > 0).then_some(Fixed)
    }
    #[inline(always)]
    fn get(self) -> NonZeroUsize {
        NonZeroUsize::new(D).unwrap_or(NonZeroUsize::MIN)
    }
    #[inline(always)]
    fn rows(self, flat: &[f32]) -> impl Iterator<Item = &[f32; D]> + Clone {
        flat.as_chunks::<D>().0.iter()
    }
    #[inline(always)]
    fn rows_mut(self, flat: &mut [f32]) -> impl Iterator<Item = &mut [f32; D]> {
        flat.as_chunks_mut::<D>().0.iter_mut()
    }
    #[inline(always)]
    fn row(self, flat: &[f32], index: usize) -> Option<&[f32; D]> {
        flat.as_chunks::<D>().0.get(index)
    }
}

/// A head dimension known at run time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dynamic(NonZeroUsize);

impl Width for Dynamic {
    type Row = [f32];
    #[inline(always)]
    fn new(head_dim: usize) -> Option<Self> {
        NonZeroUsize::new(head_dim).map(Dynamic)
    }
    #[inline(always)]
    fn get(self) -> NonZeroUsize {
        self.0
    }
    #[inline(always)]
    fn rows(self, flat: &[f32]) -> impl Iterator<Item = &[f32]> + Clone {
        flat.chunks_exact(self.0.get())
    }
    #[inline(always)]
    fn rows_mut(self, flat: &mut [f32]) -> impl Iterator<Item = &mut [f32]> {
        flat.chunks_exact_mut(self.0.get())
    }
    #[inline(always)]
    fn row(self, flat: &[f32], index: usize) -> Option<&[f32]> {
        let d = self.0.get();
        flat.get(index.checked_mul(d)?..)?.get(..d)
    }
}

/// Causal attention problem whose shape and buffers have been checked.
///
/// Invariants, checked by [`check`] before [`Problem::new`] or
/// [`Problem::of`] builds one:
/// - `heads`, `kv_heads`, `head_dim` are non-zero and `heads % kv_heads == 0`;
/// - `q_len ≤ kv_len`; query `i` sits at position `offset + i` with
///   `offset = kv_len − q_len` (bottom-right alignment) and sees keys
///   `0..=offset + i`, so every query sees at least one key;
/// - `q.len() == q_len·heads·head_dim`, `k.len() == v.len() ==
///   kv_len·kv_heads·head_dim`, and the output length matches `q.len()`;
///   none of these products overflows;
/// - `kv_start < kv_len` (or `0` when `kv_len = 0`): the keys' logical
///   position `j` is stored at row position `(kv_start + j) mod kv_len`
///   (a ring buffer read oldest first; `0`, the default, is plain order).
///   Enforced by [`Problem::rotated`].
///
/// Layout is token-major: value `(token, head, dim)` of `q` is at
/// `(token·heads + head)·head_dim + dim`, likewise `k`/`v` with `kv_heads`.
/// So the rows of `q` (and `out`) in order are (token 0, head 0), (token 0,
/// head 1), …, and the rows of key/value head `g` are every `kv_heads`-th row
/// of `k`/`v` starting at row `g`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem<'a, W> {
    pub(crate) q: &'a [f32],
    pub(crate) k: &'a [f32],
    pub(crate) v: &'a [f32],
    pub(crate) scale: f32,
    pub(crate) width: W,
    /// Number of query positions.
    q_len: usize,
    /// Position of query 0 among the keys (`kv_len − q_len`), so query `i`
    /// sees `offset + i + 1` keys.
    offset: usize,
    /// Number of key/value positions.
    kv_len: usize,
    /// Storage position of logical key 0 (see [`Problem::rotated`]).
    kv_start: usize,
    heads: NonZeroUsize,
    /// Query heads per key/value head (`heads / kv_heads`).
    group: NonZeroUsize,
    kv_heads: NonZeroUsize,
}

impl<'a, W: Width> Problem<'a, W> {
    /// Checks a shape against the buffers ([`check::shape`],
    /// [`Sizes::buffers`]). `out_len` is the output buffer's length (the
    /// output itself stays with the caller, untouched on error).
    ///
    /// # Errors
    /// The first rule broken, as [`check`] reports it.
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
        let s = check::shape(q_len, kv_len, heads, kv_heads, head_dim)?;
        s.buffers(1, [q.len(), k.len(), v.len(), out_len])?;
        Self::of(s, scale, (q, k, v))
    }

    /// The problem of sizes that passed [`Sizes::buffers`] against these
    /// very buffers.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`] (`head_dim`) if the width cannot hold the
    /// head dimension (a fixed width of another `D`).
    #[inline(always)]
    pub(crate) fn of(
        s: Sizes,
        scale: f32,
        (q, k, v): (&'a [f32], &'a [f32], &'a [f32]),
    ) -> Result<Self, Error> {
        let width = W::new(s.head_dim.get()).ok_or(Error::ZeroDimension { field: "head_dim" })?;
        Ok(Problem {
            q,
            k,
            v,
            scale,
            width,
            q_len: s.q_len,
            offset: s.kv_len.saturating_sub(s.q_len),
            kv_len: s.kv_len,
            kv_start: 0,
            heads: s.heads,
            group: s.group,
            kv_heads: s.kv_heads,
        })
    }

    /// The same problem with its keys and values read as a ring buffer whose
    /// oldest position is stored at `start`: logical position `j` (the one
    /// every query sees as its `j`-th key) is storage position
    /// `(start + j) mod kv_len`. `start` is taken modulo `kv_len`, so any
    /// value keeps the invariant. The kernel only ever asks for logical
    /// positions, in order from 0, so a rotated problem is reduced in exactly
    /// the order of an unrotated one over the same keys laid out oldest first.
    #[inline(always)]
    pub(crate) fn rotated(self, start: usize) -> Self {
        let kv_start = start.checked_rem(self.kv_len).unwrap_or(0);
        Problem { kv_start, ..self }
    }

    /// Values per query position in `q` and the output (`heads·head_dim`,
    /// which the checks found not to overflow).
    #[cfg(feature = "rayon")]
    #[inline(always)]
    pub(crate) fn token_len(&self) -> usize {
        self.heads.get().saturating_mul(self.width.get().get())
    }

    /// This problem's queries at positions `first..first + count` (cut at
    /// `q_len`) as a problem of their own: the same keys, values, scale and
    /// heads, query 0 moved to position `offset + first`, so that each query
    /// sees exactly the keys it sees here. The kernel gives a query the same
    /// bits whichever other queries it computes with, so consecutive ranges
    /// run one by one give the bits of one run over all of them (their
    /// output rows are the same consecutive ranges of the output).
    #[cfg(feature = "rayon")]
    #[inline(always)]
    pub(crate) fn query_range(self, first: usize, count: usize) -> Self {
        let first = first.min(self.q_len);
        let count = count.min(self.q_len - first);
        let token = self.token_len();
        // Within `q` (`q_len·token` values): `first + count ≤ q_len`.
        let q = self
            .q
            .get(first.saturating_mul(token)..)
            .unwrap_or_default();
        let q = q.get(..count.saturating_mul(token)).unwrap_or(q);
        Problem {
            q,
            q_len: count,
            offset: self.offset + first,
            ..self
        }
    }

    /// The keys and values of key/value head `g`, by position.
    #[inline(always)]
    fn kv_head(&self, g: usize) -> KvHead<'a, W> {
        KvHead {
            k: self.k,
            v: self.v,
            width: self.width,
            stride: self.kv_heads.get(),
            head: g,
            len: self.kv_len,
            start: self.kv_start,
        }
    }

    /// Number of query positions (`q_len`).
    #[inline(always)]
    pub(crate) fn q_len(&self) -> usize {
        self.q_len
    }

    /// Every query, in the order of the output rows (token-major, then
    /// head), each with the key/value head it reads.
    #[inline(always)]
    pub(crate) fn queries<'o, T, O>(
        &self,
        out_rows: O,
    ) -> impl Iterator<Item = (Query<'a, 'o, W::Row, T>, KvHead<'a, W>)> + use<'a, 'o, W, T, O>
    where
        T: ?Sized + 'o,
        O: Iterator<Item = &'o mut T>,
    {
        let this = *self;
        let heads = self.heads;
        // `step_by(1)`: as in `query_group`, no panic path at opt-level "s".
        let rows = self.width.rows(self.q).step_by(1).zip(out_rows).enumerate();
        rows.map(move |(row, (q, out))| {
            let query = Query {
                row,
                q,
                out,
                visible: this.offset + row / heads + 1,
            };
            (query, this.kv_head((row % heads) / this.group))
        })
    }

    /// Number of key/value heads.
    #[inline(always)]
    pub(crate) fn kv_heads(&self) -> usize {
        self.kv_heads.get()
    }

    /// Key/value head `g` and the queries that read it: every query head of
    /// its group, position by position (token-major, then head), so the
    /// `visible` counts never decrease. `out_rows` are the output's rows in
    /// output order (all heads), like the rows of `q`.
    #[inline(always)]
    pub(crate) fn query_group<'o, T, O>(
        &self,
        g: usize,
        out_rows: O,
    ) -> (
        KvHead<'a, W>,
        impl Iterator<Item = Query<'a, 'o, W::Row, T>> + use<'a, 'o, W, T, O>,
    )
    where
        T: ?Sized + 'o,
        O: Iterator<Item = &'o mut T>,
    {
        let (heads, group, offset) = (self.heads, self.group, self.offset);
        // `step_by(1)` keeps `Zip` off its random-access path, whose length
        // divides by the run-time row length: a panic path the optimiser
        // does not remove at `opt-level = "s"` (the no-panic proof).
        let queries = self.width.rows(self.q).step_by(1).zip(out_rows).enumerate();
        let mine = queries.filter(move |(row, _)| (*row % heads) / group == g);
        let queries = mine.map(move |(row, (q, out))| Query {
            row,
            q,
            out,
            visible: offset + row / heads + 1,
        });
        (self.kv_head(g), queries)
    }
}

/// One query of a [`Problem`]: its row, where its output goes, and how many
/// keys it sees (at least one).
pub(crate) struct Query<'a, 'o, R: ?Sized, T: ?Sized> {
    /// Index of the row in `q` and in the output (`token·heads + head`).
    pub(crate) row: usize,
    pub(crate) q: &'a R,
    pub(crate) out: &'o mut T,
    /// The query sees keys `0..visible`.
    pub(crate) visible: usize,
}

/// The keys and values of one key/value head of a [`Problem`], by position.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KvHead<'a, W> {
    k: &'a [f32],
    v: &'a [f32],
    width: W,
    /// Rows per position (`kv_heads`).
    stride: usize,
    head: usize,
    /// Number of positions (`kv_len`).
    len: usize,
    /// Storage position of logical position 0 (`< len`, or 0).
    start: usize,
}

/// The key rows and the value rows of one block of positions (see
/// [`KvHead::block`]).
pub(crate) type BlockRows<'a, R> = (Block<'a, R>, Block<'a, R>);

impl<'a, W: Width> KvHead<'a, W> {
    /// Storage position of logical position `j < len`.
    #[inline(always)]
    fn stored(&self, j: usize) -> usize {
        // `start < len` and `j < len`: one conditional subtraction wraps.
        let stored = j + self.start;
        if stored >= self.len {
            stored - self.len
        } else {
            stored
        }
    }

    /// Key and value rows at storage row `index`.
    #[inline(always)]
    fn rows_at(&self, index: usize) -> Option<(&'a W::Row, &'a W::Row)> {
        Some((
            self.width.row(self.k, index)?,
            self.width.row(self.v, index)?,
        ))
    }

    /// Key and value rows at logical position `j` (`None` from `kv_len` on).
    #[inline(always)]
    pub(crate) fn at(&self, j: usize) -> Option<(&'a W::Row, &'a W::Row)> {
        if j >= self.len {
            return None;
        }
        // No overflow: `stored < len` and `Problem::new` checked that
        // `len·stride` rows (of `head_dim` values each) fit the buffers.
        self.rows_at(self.stored(j) * self.stride + self.head)
    }

    /// The key rows and the value rows of the block of logical positions
    /// `start..start + n` (`n ≤ BLOCK`, cut at `kv_len`), in order; slots
    /// past them repeat the first row, for the caller to mask. `None` if
    /// `start` is past the keys.
    ///
    /// Where the block does not wrap around the ring (always, for plain
    /// order), its rows sit `kv_heads` rows apart, so each is one addition
    /// and one bounds check away from the last.
    #[inline(always)]
    pub(crate) fn block(&self, start: usize, n: usize) -> Option<BlockRows<'a, W::Row>> {
        let (k0, v0) = self.at(start)?;
        let mut keys = [k0; LANE_WIDTH];
        let mut values = [v0; LANE_WIDTH];
        // `at` returned rows, so `start < len`.
        let n = n.min(LANE_WIDTH).min(self.len - start);
        let first = self.stored(start);
        let slots = keys.iter_mut().zip(values.iter_mut()).take(n);
        if first + n <= self.len {
            let mut index = first * self.stride + self.head;
            for (slot_k, slot_v) in slots.skip(1) {
                index += self.stride;
                if let Some((k, v)) = self.rows_at(index) {
                    (*slot_k, *slot_v) = (k, v);
                }
            }
        } else {
            for (j, (slot_k, slot_v)) in slots.enumerate().skip(1) {
                if let Some((k, v)) = self.at(start + j) {
                    (*slot_k, *slot_v) = (k, v);
                }
            }
        }
        Some((keys, values))
    }
}
