//! The runtime-length API with a [`Scoring`]: key masks, biases, ALiBi,
//! soft-capping and sink logits on top of the causal mask.

use crate::dynamic::Shape;
use crate::error::Error;
use crate::kernel;
use crate::scoring::Scoring;

/// [`causal_attention_dyn`](crate::causal_attention_dyn) with the scores
/// changed as `scoring` says (see [`Scoring`] for the order of its steps and
/// its buffers' layouts).
///
/// Every query goes through the kernel's one-query path, so its bits do not
/// depend on the other queries of the call, and a [`KvCache`](crate::KvCache)'s
/// scored prefill and decode steps give the same bits. With an empty
/// [`Scoring::new`], the bits are those of the plain call.
///
/// # Errors
/// Checked once, before any arithmetic; on error `out` is untouched: the
/// errors of [`causal_attention_dyn`](crate::causal_attention_dyn) first,
/// then those of [`Scoring::check`].
///
/// ```
/// use microattn::{Scoring, Shape, causal_attention_scored, scoring::alibi_slopes};
/// // One head, 3 positions, every key alike: plain attention averages the
/// // values; ALiBi leans each query toward its nearest keys.
/// let shape = Shape::new(3, 3, 1, 1, 2);
/// let (q, k) = ([0.5f32; 6], [0.5f32; 6]);
/// let v = [0.0f32, 0.0, 3.0, 3.0, 6.0, 6.0];
/// let mut slopes = [0.0f32; 1];
/// alibi_slopes(&mut slopes); // 2^-8 for a single head; take a steeper one
/// let slopes = [1.0f32];
/// let mut out = [0.0f32; 6];
/// causal_attention_scored(&shape, &Scoring::new().alibi(&slopes), &q, &k, &v, &mut out)?;
/// assert!(out[4] > 3.0); // plain attention would give the mean, 3
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_attention_scored(
    shape: &Shape,
    scoring: &Scoring<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let p = shape.check(q, k, v, out.len())?;
    let scoring = scoring.checked(shape.q_len, shape.kv_len, shape.heads)?;
    kernel::run(&p, out, None, Some(&scoring));
    Ok(())
}
