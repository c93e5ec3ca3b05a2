//! The ring buffer under [`RingKvCache`](crate::RingKvCache): a fixed array
//! of positions, a write index that overwrites the oldest once full, and
//! slice views, all without an index the compiler cannot prove in bounds (so
//! no panic path, which the link-time no-panic proof checks).

use crate::element::Element;

/// The positions held, oldest first, as two slices of `[KVH][D]` tokens.
pub(super) type Halves<'a, const KVH: usize, const D: usize, E> =
    (&'a [[[E; D]; KVH]], &'a [[[E; D]; KVH]]);

/// Up to `W` positions of `[[E; D]; KVH]`, the oldest overwritten first.
#[derive(Clone)]
pub(crate) struct Ring<const W: usize, const KVH: usize, const D: usize, E> {
    buf: [[[E; D]; KVH]; W],
    /// Positions held (`≤ W`).
    len: usize,
    /// Where the next position goes (`< W`, or 0 when `W = 0`); once full,
    /// also where the oldest is.
    next: usize,
}

impl<const W: usize, const KVH: usize, const D: usize, E: Element> Ring<W, KVH, D, E> {
    /// An empty ring (its storage zeroed, never read before it is written).
    pub(crate) const fn new() -> Self {
        Ring {
            buf: [[[E::ZERO; D]; KVH]; W],
            len: 0,
            next: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `x` as the newest position, dropping the oldest when full;
    /// with `pinned > 0` (and `< W`), the oldest `pinned` positions are
    /// kept and the oldest of the others is dropped instead.
    ///
    /// Once full, the logical order starts at `next`: `pinned` positions,
    /// then the others oldest first. Keeping it contiguous costs `pinned`
    /// copies: the pinned run moves one slot on, over the position dropped,
    /// and the new one takes the slot it left, which is `next` as without
    /// pinning; the logical order then starts one slot on, at the new
    /// `next`.
    pub(crate) fn write(&mut self, x: [[E; D]; KVH], pinned: usize) {
        if self.len == W && pinned > 0 && pinned < W {
            let wrap = |i: usize| if i >= W { i - W } else { i };
            for i in (0..pinned).rev() {
                let from = self.buf.get(wrap(self.next + i)).copied();
                if let (Some(from), Some(to)) = (from, self.buf.get_mut(wrap(self.next + i + 1))) {
                    *to = from;
                }
            }
        }
        if let Some(slot) = self.buf.get_mut(self.next) {
            *slot = x;
        }
        self.next = if self.next + 1 >= W { 0 } else { self.next + 1 };
        self.len = if self.len < W { self.len + 1 } else { W };
    }

    /// The filled positions in storage order (the whole array once full).
    pub(crate) fn as_slice(&self) -> &[[[E; D]; KVH]] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Storage index of the oldest position: 0 until the ring is full, then
    /// the next write index.
    pub(crate) fn oldest(&self) -> usize {
        if self.len < W { 0 } else { self.next }
    }

    /// The positions oldest first, as two slices.
    pub(crate) fn as_slices(&self) -> Halves<'_, KVH, D, E> {
        let (newer, older) = self
            .as_slice()
            .split_at_checked(self.oldest())
            .unwrap_or((&[], &[]));
        (older, newer)
    }
}

impl<const W: usize, const KVH: usize, const D: usize, E: Element> super::Store<KVH, D, E>
    for Ring<W, KVH, D, E>
{
    fn positions(&self) -> &[[[E; D]; KVH]] {
        self.as_slice()
    }
    fn oldest(&self) -> usize {
        Ring::oldest(self)
    }
    fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }
}
