//! One query at a time, lanes across keys: the path of a single decode
//! query, of the queries left over after the full tiles, and of every query
//! on targets without SIMD lanes.

use crate::layout::{KvHead, Width};
use crate::simd::{self, Block};
use crate::softmax::{Online, Rescale};

use super::BLOCK;

/// The kernel's recipe (see the parent module) for one query that sees keys
/// `0..visible` of `kv`; writes `out` and returns the final state.
#[inline(always)]
pub(crate) fn attend<W: Width>(
    q: &W::Row,
    out: &mut W::Row,
    visible: usize,
    kv: KvHead<'_, W>,
    scale: f32,
) -> Online {
    let mut state = Online::new();
    let mut start = 0;
    while start < visible {
        let Some((k0, v0)) = kv.at(start) else { break };
        let n = (visible - start).min(BLOCK);
        // Slots past `n` repeat the first row; `n` keeps them out of the sums.
        let mut keys: Block<'_, W::Row> = [k0; BLOCK];
        let mut values: Block<'_, W::Row> = [v0; BLOCK];
        let slots = keys.iter_mut().zip(values.iter_mut()).enumerate();
        for (j, (slot_k, slot_v)) in slots.take(n).skip(1) {
            if let Some((k, v)) = kv.at(start + j) {
                (*slot_k, *slot_v) = (k, v);
            }
        }
        let [scores] = simd::dot_tile(&[q], &keys, scale);
        let scores = scores.masked(n);
        match state.enter_block(scores.max()) {
            Rescale::Start => out.as_mut().fill(-0.0),
            Rescale::Keep => {}
            Rescale::By(alpha) => simd::scale(out.as_mut(), alpha),
        }
        let p = state.weights(scores);
        simd::axpy_block(out, p, &values, n);
        start += BLOCK;
    }
    match state.sum() {
        Some(l) => simd::div(out.as_mut(), l),
        None => out.as_mut().fill(0.0),
    }
    state
}
