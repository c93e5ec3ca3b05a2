//! Padded batches: a per-sequence valid length over the runtime API.
//!
//! Each sequence of a right-padded batch is run as its own checked problem
//! over its valid prefix, so padding is never read, and the query rows that
//! are padding are set to exactly 0.

use crate::Shape;
use crate::check;
use crate::error::Error;
use crate::kernel;
use crate::layout::{Dynamic, Problem};

/// Causal attention over a right-padded batch of sequences with a valid
/// length per sequence.
///
/// `q` and `out` hold `batch` sequences of `shape.q_elems()` values each,
/// `k` and `v` hold `batch` sequences of `shape.kv_elems()` values each, one
/// after the other, each in the token-major layout of [`Shape`] (so the
/// buffers are `[batch][q_len][heads][head_dim]` and
/// `[batch][kv_len][kv_heads][head_dim]`). Queries sit at the positions
/// [`Shape`] gives them (query `i` at `kv_len − q_len + i`).
///
/// In sequence `b`, every position `≥ valid_lens[b]` is padding:
/// - padded keys and values are **never read** (any bits there, NaN and ∞
///   included, change nothing);
/// - a padded query row (position `≥ valid_lens[b]`) sees no key and gets
///   exactly `+0.0`; its `q` row is never read either;
/// - a valid query row gets the same bits as [`causal_attention_dyn`](crate::causal_attention_dyn)
///   gives it on the unpadded sequence (its visible keys are all valid, by
///   causality).
///
/// For `q_len = kv_len = 4` and `valid_lens[b] = 2` (`●` = seen, `·` = not):
///
/// ```text
///                  keys 0 1 2 3
/// query 0              ● · · ·
/// query 1              ● ● · ·
/// query 2 (padding)    · · · ·   → out = 0
/// query 3 (padding)    · · · ·   → out = 0
/// ```
///
/// # Errors
/// Checked once, before any arithmetic; on error `out` is untouched:
/// - every error of [`causal_attention_dyn`](crate::causal_attention_dyn)
///   for the shape, with lengths counted over the whole batch
///   ([`Error::LengthMismatch`] `expected` is `batch ×` the shape's size);
/// - [`Error::ValidLensLength`] if `valid_lens.len() != batch`;
/// - [`Error::ValidLenTooLong`] if some `valid_lens[b] > kv_len`.
///
/// ```
/// use microattn::{Shape, causal_attention_padded};
/// // Two sequences of up to 3 positions, one head of dim 2; the second has
/// // only 1 valid position, its padding filled with NaN.
/// let shape = Shape::new(3, 3, 1, 1, 2);
/// let nan = f32::NAN;
/// let q = [0.5, 0.5, 1.0, 0.0, 0.0, 1.0, /* seq 1 */ 1.0, 1.0, nan, nan, nan, nan];
/// let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, /* seq 1 */ 7.0, 8.0, nan, nan, nan, nan];
/// let mut out = [f32::NAN; 12];
/// causal_attention_padded(&shape, 2, &[3, 1], &q, &q, &v, &mut out)?;
/// assert_eq!(out[..2], [1.0, 2.0]); // position 0 sees only itself
/// assert_eq!(out[6..8], [7.0, 8.0]);
/// assert_eq!(out[8..], [0.0; 4]); // padded rows are exactly 0
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_attention_padded(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    run_batch(shape, batch, valid_lens, (q, k, v), out)
}

/// The split of a padded batch into per-sequence problems: validates
/// everything first (nothing written on error), then, for each sequence,
/// runs the kernel on the problem of its valid prefix and writes `+0.0` to
/// its padded query rows.
fn run_batch(
    shape: &Shape,
    batch: usize,
    valid_lens: &[usize],
    (q, k, v): (&[f32], &[f32], &[f32]),
    out: &mut [f32],
) -> Result<(), Error> {
    let seqs = Sequences::check(shape, batch, valid_lens, (q, k, v), out.len())?;
    let mut rest = out;
    for b in 0..batch {
        // Lengths were checked: these splits always succeed.
        let Some((seq_out, tail)) = rest.split_at_mut_checked(seqs.q_seq) else {
            break;
        };
        rest = tail;
        let Some((out_valid, out_pad)) =
            seq_out.split_at_mut_checked(seqs.valid_values(valid_lens, b))
        else {
            break;
        };
        // The checks passed for the whole batch, so no prefix's problem can
        // fail them.
        if let Ok(p) = seqs.problem(b, valid_lens, (q, k, v), out_valid.len()) {
            kernel::run(&p, out_valid, None, None);
        }
        out_pad.fill(0.0);
    }
    // `batch = 0` or zero-sized sequences: nothing to write.
    Ok(())
}

/// A padded batch whose shape, buffers and valid lengths have been checked.
struct Sequences {
    shape: Shape,
    /// Values per sequence in `q`/`out`, and in `k`/`v` (both non-zero
    /// unless the sequence length is 0).
    q_seq: usize,
    kv_seq: usize,
    /// Values per token in `q`/`out`, and in `k`/`v`.
    q_token: usize,
    kv_token: usize,
}

impl Sequences {
    /// The padded API's checks ([`check::padded`]), and the sizes the split
    /// needs.
    fn check(
        shape: &Shape,
        batch: usize,
        valid_lens: &[usize],
        (q, k, v): (&[f32], &[f32], &[f32]),
        out_len: usize,
    ) -> Result<Self, Error> {
        let sizes = check::padded(
            shape,
            batch,
            valid_lens,
            [q.len(), k.len(), v.len(), out_len],
        )?;
        Ok(Sequences {
            shape: *shape,
            q_seq: sizes.q_elems,
            kv_seq: sizes.kv_elems,
            q_token: sizes.q_token,
            kv_token: sizes.kv_token,
        })
    }

    /// Number of valid query values of sequence `b` (its queries at
    /// positions `< valid_lens[b]`, times the values per token).
    fn valid_values(&self, valid_lens: &[usize], b: usize) -> usize {
        let valid_len = valid_lens.get(b).copied().unwrap_or(0);
        let offset = self.shape.kv_len.saturating_sub(self.shape.q_len);
        let queries = valid_len.saturating_sub(offset).min(self.shape.q_len);
        // At most `q_len × q_token = q_seq`, which fits.
        queries.saturating_mul(self.q_token)
    }

    /// The checked problem of sequence `b`'s valid prefix: its valid queries
    /// over its valid keys, with the same bottom-right alignment.
    fn problem<'a>(
        &self,
        b: usize,
        valid_lens: &[usize],
        (q, k, v): (&'a [f32], &'a [f32], &'a [f32]),
        out_len: usize,
    ) -> Result<Problem<'a, Dynamic>, Error> {
        let s = &self.shape;
        let valid_len = valid_lens.get(b).copied().unwrap_or(0);
        let q_vals = self.valid_values(valid_lens, b);
        let queries = q_vals.checked_div(self.q_token).unwrap_or(0);
        let prefix = |flat: &'a [f32], seq: usize, len: usize| {
            b.checked_mul(seq)
                .and_then(|start| flat.get(start..)?.get(..len))
                .unwrap_or(&[])
        };
        // At most `kv_len × kv_token = kv_seq`, which fits.
        let kv_vals = valid_len.saturating_mul(self.kv_token);
        Problem::new(
            queries,
            valid_len,
            s.heads,
            s.kv_heads,
            s.head_dim,
            s.scale,
            (
                prefix(q, self.q_seq, q_vals),
                prefix(k, self.kv_seq, kv_vals),
                prefix(v, self.kv_seq, kv_vals),
            ),
            out_len,
        )
    }
}
