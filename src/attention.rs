//! The fixed-size entry points: shapes are const generics, checked at compile
//! time, so these cannot fail.

use crate::check::assert_heads;
use crate::kernel;
use crate::layout::{Fixed, Problem};
use crate::math;
use crate::reference::score;
use crate::softmax::softmax_slice;

/// The default score scale `1/√head_dim` (`inf` for a zero head dimension,
/// which no entry point accepts).
///
/// ```
/// assert_eq!(microattn::default_scale(64), 0.125);
/// ```
#[must_use]
#[inline]
pub fn default_scale(head_dim: usize) -> f32 {
    1.0 / math::sqrt(head_dim as f32)
}

/// The checked problem of a fixed shape over flat `q`, `k`, `v` and an
/// output of `out_len` values. The shape is valid by the `const` assertion
/// and the lengths are the arrays', so `Problem::new` folds to `Ok`.
#[inline(always)]
pub(crate) fn fixed_problem<
    'a,
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
>(
    (q, k, v): (&'a [f32], &'a [f32], &'a [f32]),
    scale: f32,
    out_len: usize,
) -> Option<Problem<'a, Fixed<D>>> {
    const { assert_heads::<N, H, KVH, D>() };
    Problem::new(N, N, H, KVH, D, scale, (q, k, v), out_len).ok()
}

/// Builds the checked problem of a fixed shape and runs the kernel.
#[inline(always)]
fn run_fixed<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    scale: f32,
    out: &mut [f32],
) {
    if let Some(p) = fixed_problem::<N, H, KVH, D>((q, k, v), scale, out.len()) {
        kernel::run(&p, out, None, None);
    }
}

/// Causal self-attention of one head with scale `1/√D`:
/// `out[i] = Σ_{j≤i} softmax_j(q[i]·k[j] / √D) · v[j]`.
///
/// Position `i` sees positions `0..=i` and never a later one. Every value of
/// `out` is written; its previous contents are never read. Working memory is
/// a few lanes of scores (no N×N matrix, no heap). Accuracy: see the crate
/// docs' numerical contract.
///
/// `N = 0` or `D = 0` is a compile-time error.
///
/// ```
/// let q = [[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
/// let k = q;
/// let v = [[1.0f32, 0.0], [0.0, 1.0], [0.5, 0.5]];
/// let mut out = [[f32::NAN; 2]; 3];
/// microattn::causal_attention(&q, &k, &v, &mut out);
/// assert_eq!(out[0], v[0]); // the first position sees only itself
/// assert!(out.iter().flatten().all(|x| x.is_finite()));
/// ```
#[inline]
pub fn causal_attention<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    v: &[[f32; D]; N],
    out: &mut [[f32; D]; N],
) {
    causal_attention_scaled(q, k, v, default_scale(D), out);
}

/// [`causal_attention`] with a caller-chosen score scale instead of `1/√D`.
///
/// A NaN or infinite `scale` is not rejected here: every output is NaN (use
/// [`causal_attention_dyn`](crate::causal_attention_dyn) for a checked
/// scale).
///
/// ```
/// let x = [[1.0f32; 4]; 2];
/// let mut out = [[0.0f32; 4]; 2];
/// microattn::causal_attention_scaled(&x, &x, &x, 0.5, &mut out);
/// assert_eq!(out, x);
/// ```
#[inline]
pub fn causal_attention_scaled<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    v: &[[f32; D]; N],
    scale: f32,
    out: &mut [[f32; D]; N],
) {
    run_fixed::<N, 1, 1, D>(
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        scale,
        out.as_flattened_mut(),
    );
}

/// Causal multi-head attention with grouped key/value heads, scale `1/√D`.
///
/// Layout is token-major, `[token][head][dim]` — the memory of a row-major
/// `[N][H·D]` matrix. Query head `h` reads key/value head `h / (H / KVH)`:
/// `KVH = H` is plain multi-head attention, `KVH = 1` multi-query, anything
/// between is grouped-query attention (GQA).
///
/// A zero dimension or `H % KVH != 0` is a compile-time error.
///
/// ```
/// // 4 tokens, 2 query heads sharing 1 key/value head, head dim 3.
/// let q = [[[0.1f32, 0.2, 0.3]; 2]; 4];
/// let k = [[[0.3f32, 0.2, 0.1]; 1]; 4];
/// let v = [[[1.0f32, 2.0, 3.0]; 1]; 4];
/// let mut out = [[[0.0f32; 3]; 2]; 4];
/// microattn::causal_multi_head(&q, &k, &v, &mut out);
/// // identical values everywhere: every weighted mean is that value
/// assert!(out.iter().flatten().all(|o| o.iter().zip(&v[0][0]).all(|(a, b)| (a - b).abs() < 1e-6)));
/// ```
///
/// ```compile_fail
/// // 3 query heads cannot be grouped over 2 key/value heads.
/// let q = [[[0.0f32; 4]; 3]; 2];
/// let kv = [[[0.0f32; 4]; 2]; 2];
/// let mut out = q;
/// microattn::causal_multi_head(&q, &kv, &kv, &mut out);
/// ```
#[inline]
pub fn causal_multi_head<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    q: &[[[f32; D]; H]; N],
    k: &[[[f32; D]; KVH]; N],
    v: &[[[f32; D]; KVH]; N],
    out: &mut [[[f32; D]; H]; N],
) {
    causal_multi_head_scaled(q, k, v, default_scale(D), out);
}

/// [`causal_multi_head`] with a caller-chosen score scale.
///
/// ```
/// let x = [[[0.5f32; 8]; 2]; 3];
/// let mut out = [[[0.0f32; 8]; 2]; 3];
/// microattn::causal_multi_head_scaled(&x, &x, &x, 1.0, &mut out);
/// assert_eq!(out, x);
/// ```
#[inline]
pub fn causal_multi_head_scaled<
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
>(
    q: &[[[f32; D]; H]; N],
    k: &[[[f32; D]; KVH]; N],
    v: &[[[f32; D]; KVH]; N],
    scale: f32,
    out: &mut [[[f32; D]; H]; N],
) {
    run_fixed::<N, H, KVH, D>(
        q.as_flattened().as_flattened(),
        k.as_flattened().as_flattened(),
        v.as_flattened().as_flattened(),
        scale,
        out.as_flattened_mut().as_flattened_mut(),
    );
}

/// The causal softmax weights of one head: `weights[i][j] =
/// softmax_j(scale · q[i]·k[j])` for `j ≤ i`, and exactly `0.0` above the
/// diagonal (`j > i`). Each row sums to 1 within a few ULP.
///
/// The scores are computed as [`reference::attention_weights`](crate::reference::attention_weights)
/// computes them and the softmax is [`softmax`](crate::softmax), so the
/// result is bit-identical to the reference's. These are the weights
/// [`causal_attention_scaled`] applies, up to the rounding of its lane `exp`
/// and online rescaling; the fused kernel never stores them, so this is the
/// call for inspecting or plotting them. Every value of `weights` is written.
/// Needs no memory beyond `weights`.
///
/// ```
/// let q = [[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
/// let mut w = [[f32::NAN; 3]; 3];
/// microattn::attention_weights(&q, &q, microattn::default_scale(2), &mut w);
/// assert_eq!(w[0], [1.0, 0.0, 0.0]);
/// assert_eq!(w[1][2], 0.0);
/// assert!((w[2].iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// ```
#[inline]
pub fn attention_weights<const N: usize, const D: usize>(
    q: &[[f32; D]; N],
    k: &[[f32; D]; N],
    scale: f32,
    weights: &mut [[f32; N]; N],
) {
    const { assert_heads::<N, 1, 1, D>() };
    for (i, (qi, wi)) in q.iter().zip(weights.iter_mut()).enumerate() {
        for (j, (w, kj)) in wi.iter_mut().zip(k).enumerate() {
            *w = if j <= i { score(qi, kj, scale) } else { 0.0 };
        }
        if let Some(visible) = wi.get_mut(..=i) {
            softmax_slice(visible);
        }
    }
}
