//! The reference's own walk over the flat runtime layout: plain index
//! arithmetic from the shape's numbers, nothing shared with the kernel's
//! row views.
//!
//! The layout is [`crate::causal_attention_dyn`]'s: `q` and `out` hold
//! `[q_len][heads][head_dim]`, `k` and `v` hold `[kv_len][kv_heads][head_dim]`,
//! query head `h` reads key/value head `h / (heads / kv_heads)`, and query
//! `i` sits at position `kv_len − q_len + i` and sees keys `0..=` that.

use crate::Shape;
use crate::error::Error;

/// A checked runtime shape, as plain numbers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    pub(super) q_len: usize,
    pub(super) kv_len: usize,
    pub(super) heads: usize,
    pub(super) kv_heads: usize,
    pub(super) head_dim: usize,
    pub(super) scale: f32,
}

impl Sizes {
    /// The shape's numbers once the runtime API's check
    /// ([`check::runtime`](crate::check::runtime)) accepts the shape and the
    /// buffers: the same errors as the fast API.
    pub(super) fn checked(
        shape: &Shape,
        (q, k, v): (&[f32], &[f32], &[f32]),
        out_len: usize,
    ) -> Result<Self, Error> {
        crate::check::runtime(shape, [q.len(), k.len(), v.len(), out_len])?;
        Ok(Self::of(shape))
    }

    /// The numbers of a shape already checked.
    pub(super) fn of(shape: &Shape) -> Self {
        Self {
            q_len: shape.q_len,
            kv_len: shape.kv_len,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
            scale: shape.scale,
        }
    }

    /// Values per token in `q` and `out`.
    pub(super) fn q_token(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Values per token in `k` and `v`.
    pub(super) fn kv_token(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// Rows `next..end` of head `head` in a flat `[position][heads][d]` buffer,
/// in order.
#[derive(Clone, Debug)]
pub(super) struct HeadRows<'a> {
    flat: &'a [f32],
    heads: usize,
    head: usize,
    d: usize,
    next: usize,
    end: usize,
}

impl<'a> HeadRows<'a> {
    /// Rows not yet read. (An inherent method: `ExactSizeIterator::len`
    /// asserts, and the reference is in the no-panic proof.)
    pub(super) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.next)
    }

    fn new(flat: &'a [f32], heads: usize, head: usize, d: usize, end: usize) -> Self {
        Self {
            flat,
            heads,
            head,
            d,
            next: 0,
            end,
        }
    }
}

impl<'a> Iterator for HeadRows<'a> {
    type Item = &'a [f32];

    fn next(&mut self) -> Option<&'a [f32]> {
        if self.next >= self.end {
            return None;
        }
        let at = (self.next * self.heads + self.head) * self.d;
        self.next += 1;
        self.flat.get(at..)?.get(..self.d)
    }
}

/// Every query row of a checked problem: `row(q, keys, values, out)` with
/// the query row, the key and value rows it sees (positions `0..=p` of its
/// key/value head, in order) and its output row.
pub(super) fn for_each_row<T>(
    s: &Sizes,
    qkv: (&[f32], &[f32], &[f32]),
    out: &mut [T],
    mut row: impl FnMut(&[f32], HeadRows<'_>, HeadRows<'_>, &mut [T]),
) {
    for_each_row_at(s, qkv, out, |_, _, q, keys, values, out| {
        row(q, keys, values, out);
    });
}

/// [`for_each_row`] that also passes each row's query position `i` (its
/// index in the call, `0..q_len`) and head `h` first: `row(i, h, q, keys,
/// values, out)`.
pub(super) fn for_each_row_at<T>(
    s: &Sizes,
    (q, k, v): (&[f32], &[f32], &[f32]),
    out: &mut [T],
    mut row: impl FnMut(usize, usize, &[f32], HeadRows<'_>, HeadRows<'_>, &mut [T]),
) {
    let d = s.head_dim;
    let group = s.heads.checked_div(s.kv_heads).unwrap_or(1);
    let offset = s.kv_len.saturating_sub(s.q_len);
    for i in 0..s.q_len {
        let visible = offset + i + 1;
        for h in 0..s.heads {
            let g = h.checked_div(group).unwrap_or(0);
            let at = (i * s.heads + h) * d;
            let q_row = q.get(at..).and_then(|r| r.get(..d));
            let out_row = out.get_mut(at..).and_then(|r| r.get_mut(..d));
            if let (Some(q_row), Some(out_row)) = (q_row, out_row) {
                let keys = HeadRows::new(k, s.kv_heads, g, d, visible);
                let values = HeadRows::new(v, s.kv_heads, g, d, visible);
                row(i, h, q_row, keys, values, out_row);
            }
        }
    }
}

/// A padded batch, sequence by sequence, once the padded API's check has
/// accepted it: `run(sizes, (q, k, v), out)` on the valid prefix of each
/// sequence (its first `valid_len` keys, and the query rows whose positions
/// fall inside them, bottom-right aligned as in the whole sequence), and
/// `zero` on its padded query rows.
pub(super) fn for_each_sequence<T: Copy>(
    s: &Sizes,
    valid_lens: &[usize],
    (q, k, v): (&[f32], &[f32], &[f32]),
    out: &mut [T],
    zero: T,
    mut run: impl FnMut(&Sizes, (&[f32], &[f32], &[f32]), &mut [T]),
) {
    let (q_token, kv_token) = (s.q_token(), s.kv_token());
    let (q_seq, kv_seq) = (s.q_len * q_token, s.kv_len * kv_token);
    let offset = s.kv_len.saturating_sub(s.q_len);
    fn cut(x: &[f32], start: usize, n: usize) -> Option<&[f32]> {
        x.get(start..)?.get(..n)
    }
    for (b, &len) in valid_lens.iter().enumerate() {
        let rows = len.saturating_sub(offset).min(s.q_len);
        let prefix = Sizes {
            q_len: rows,
            kv_len: len,
            ..*s
        };
        let inputs = (
            cut(q, b * q_seq, rows * q_token),
            cut(k, b * kv_seq, len * kv_token),
            cut(v, b * kv_seq, len * kv_token),
        );
        let Some(seq_out) = out.get_mut(b * q_seq..).and_then(|o| o.get_mut(..q_seq)) else {
            continue;
        };
        let Some((valid, pad)) = seq_out.split_at_mut_checked(rows * q_token) else {
            continue;
        };
        if let (Some(q), Some(k), Some(v)) = inputs {
            run(&prefix, (q, k, v), valid);
        }
        pad.fill(zero);
    }
}
