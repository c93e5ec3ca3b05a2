//! The fused online-softmax kernel.
//!
//! For each query row the keys it sees are taken in blocks of [`BLOCK`]:
//! the block's scores `scale · q·kⱼ` are computed on lanes, the running
//! maximum is raised (and the accumulator rescaled) only if the block beats
//! it, then `exp(sⱼ − m)·vⱼ` is added to the accumulator. The accumulator is
//! the caller's output row itself, divided by the running sum at the end, so
//! the working memory per query is the `BLOCK` scores and nothing of size N.
//!
//! Determinism by construction: a row's blocks always start at key 0 and its
//! result depends only on the keys and values it sees, so a query's output is
//! unchanged, bit for bit, by anything at later positions.

use crate::layout::{Problem, Row};
use crate::simd;
use crate::softmax::{Online, Rescale};

/// Keys per block: one lane's worth of scores between two max updates.
pub(crate) const BLOCK: usize = simd::LANES;

/// Runs causal attention on a checked problem, writing every output value.
#[inline(always)]
pub(crate) fn run(p: &Problem<'_>, out: &mut [f32]) {
    for Row {
        q,
        out,
        kv_head,
        visible,
    } in p.rows(out)
    {
        let keys = p.kv_rows(p.k, kv_head, visible);
        let values = p.kv_rows(p.v, kv_head, visible);
        attend_row(q, keys.zip(values), p.scale, out);
    }
}

/// One query row: `out = Σⱼ softmax(scale·q·kⱼ)ⱼ · vⱼ` over the `(kⱼ, vⱼ)`
/// pairs of `kv`, in order. With no pair at all, `out` is set to 0.
///
/// `q`, every `kⱼ`, every `vⱼ` and `out` have the same length (checked by
/// [`Problem::new`]).
#[inline(always)]
pub(crate) fn attend_row<'a>(
    q: &[f32],
    mut kv: impl Iterator<Item = (&'a [f32], &'a [f32])>,
    scale: f32,
    out: &mut [f32],
) {
    let mut state = Online::new();
    let mut scores = [0.0f32; BLOCK];
    let mut values: [&[f32]; BLOCK] = [&[]; BLOCK];
    let mut seen_any = false;
    loop {
        let mut n = 0;
        while n < BLOCK {
            let Some((k, v)) = kv.next() else { break };
            scores[n] = simd::dot(q, k) * scale;
            values[n] = v;
            n += 1;
        }
        let (block, block_values) = (&scores[..n], &values[..n]);
        if block.is_empty() {
            break;
        }
        seen_any = true;
        match state.enter_block(simd::max(block)) {
            Rescale::Start => out.fill(-0.0),
            Rescale::Keep => {}
            Rescale::By(alpha) => simd::scale(out, alpha),
        }
        for (&s, v) in block.iter().zip(block_values) {
            let p = state.weight(s);
            simd::axpy(out, p, v);
        }
        if n < BLOCK {
            break;
        }
    }
    if seen_any {
        simd::div(out, state.sum());
    } else {
        out.fill(0.0);
    }
}
