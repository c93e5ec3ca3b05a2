//! Lanes across queries: the register-tiled path of the kernel.
//!
//! A full tile is [`LANES`] queries; lane `t` of a [`Lanes`] value belongs
//! to query `t`. Scores of the tile against a block of [`LANES`] keys are
//! eight such values (one per key), so the running maximum, the rescale
//! factors, the weights and the running sums of all eight queries are plain
//! lane-wise operations: no horizontal reduction anywhere in the loop.
//!
//! Every value is computed by the same IEEE operation, in the same order, as
//! in the one-query path (`Scores`, lanes across keys): that is what makes a
//! query's result independent of the path that computed it.

use super::{LANES, Lane, axpy_tail, chunk, exp, partial_tree};

/// One value per query of a full tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lanes(Lane);

impl Lanes {
    /// Every lane `x`.
    #[inline(always)]
    pub(crate) fn splat(x: f32) -> Lanes {
        Lanes(Lane::splat(x))
    }

    /// The lanes as an array (lane `t` at index `t`).
    #[inline(always)]
    pub(crate) fn to_array(self) -> [f32; LANES] {
        self.0.to_array()
    }

    /// Lane-wise `self − other`.
    #[inline(always)]
    pub(crate) fn sub(self, other: Lanes) -> Lanes {
        Lanes(self.0 - other.0)
    }

    /// Lane-wise `self · other`.
    #[inline(always)]
    pub(crate) fn mul(self, other: Lanes) -> Lanes {
        Lanes(self.0 * other.0)
    }

    /// Lane-wise `self + other`.
    #[inline(always)]
    pub(crate) fn add(self, other: Lanes) -> Lanes {
        Lanes(self.0 + other.0)
    }

    /// Lane-wise maximum of the running maximum `self` (never NaN) and a
    /// score: a NaN score is ignored, as `simd::max` ignores it.
    #[inline(always)]
    pub(crate) fn max_with(self, score: Lanes) -> Lanes {
        Lanes(self.0.max(score.0))
    }

    /// Lane-wise softmax exp (argument `≤ 0` or NaN): the same function as
    /// the one-query path's weights.
    #[inline(always)]
    pub(crate) fn exp(self) -> Lanes {
        Lanes(exp::exp_nonpositive(self.0))
    }

    /// NaN lanes kept, every other lane `+0.0` (as `Scores::nan_or_zero`).
    #[inline(always)]
    pub(crate) fn nan_or_zero(self) -> Lanes {
        Lanes(self.0.is_nan().select(self.0, Lane::ZERO))
    }

    /// Lanes that are `-inf`.
    #[inline(always)]
    pub(crate) fn is_neg_inf(self) -> Mask {
        Mask(self.0.simd_eq(Lane::splat(f32::NEG_INFINITY)))
    }

    /// Lanes where `self > other`, as a mask for [`Lanes::select`].
    #[inline(always)]
    pub(crate) fn gt(self, other: Lanes) -> Mask {
        Mask(self.0.simd_gt(other.0))
    }

    /// `mask ? if_true : self`, lane by lane.
    #[inline(always)]
    pub(crate) fn select(self, mask: Mask, if_true: Lanes) -> Lanes {
        Lanes(mask.0.select(if_true.0, self.0))
    }

    /// Lanes `t` with `j < seen[t]` kept, the others `-inf`: key `j` of a
    /// block, for queries that see `seen[t]` keys of it.
    #[inline(always)]
    pub(crate) fn masked(self, j: usize, seen: &[f32; LANES]) -> Lanes {
        let visible = Lane::splat(j as f32).simd_lt(Lane::from(*seen));
        Lanes(visible.select(self.0, Lane::splat(f32::NEG_INFINITY)))
    }
}

/// A lane mask from a comparison of [`Lanes`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask(Lane);

impl Mask {
    /// Whether any lane is set.
    #[inline(always)]
    pub(crate) fn any(self) -> bool {
        self.0.to_bitmask() != 0
    }

    /// Whether lane `t` is set.
    #[inline(always)]
    pub(crate) fn test(self, t: usize) -> bool {
        self.0.to_bitmask() & (1 << t) != 0
    }
}

/// A full tile of queries, with its first `8·KEPT` dimensions transposed
/// once (lane `t` of `dims[c][dd]` is `q_t[8c + dd]`, `256·KEPT` bytes): the
/// transpose is then paid once per tile rather than once per block of keys.
/// Dimensions past those are transposed as they are used.
pub(crate) struct QueryTile<'a, R: ?Sized, const KEPT: usize> {
    queries: [&'a R; LANES],
    dims: [[Lane; LANES]; KEPT],
}

impl<'a, R: ?Sized + AsRef<[f32]>, const KEPT: usize> QueryTile<'a, R, KEPT> {
    /// Transposes the kept dimensions of `queries` (all of one length).
    #[inline(always)]
    pub(crate) fn new(queries: [&'a R; LANES]) -> Self {
        let mut dims = [[Lane::ZERO; LANES]; KEPT];
        let whole = queries[0].as_ref().len() / LANES;
        for (c, d) in dims.iter_mut().enumerate().take(whole) {
            *d = Lane::transpose(queries.map(|q| Lane::from(chunk(q.as_ref(), c))));
        }
        QueryTile { queries, dims }
    }

    /// Dimensions `8c..8c + 8` of the eight queries, one lane per dimension.
    #[inline(always)]
    fn chunk(&self, c: usize) -> [Lane; LANES] {
        match self.dims.get(c) {
            Some(d) => *d,
            None => Lane::transpose(self.queries.map(|q| Lane::from(chunk(q.as_ref(), c)))),
        }
    }
}

/// The scores `scale · q_t·k_j` of a full tile of queries against a block
/// of keys: entry `j`, lane `t` is query `t` against key `j`, the bits of
/// [`crate::reference::score`].
///
/// Lanes run across queries: for each key, eight partial sums (partial `r`
/// over the dimensions `d ≡ r (mod 8)`, rows zero-padded to whole lanes),
/// each step multiplying one dimension of all eight queries (a lane of the
/// tile's transpose) by the key's value broadcast, then adding — one
/// product and one sum per lane, each rounded on its own, in order of `d`
/// within each partial, from its first product. The eight partials are
/// independent chains, and the same tree as the one-query path's
/// `dot_block` ends each score.
#[inline(always)]
pub(crate) fn scores_across_queries<R: ?Sized + AsRef<[f32]>, const KEPT: usize>(
    tile: &QueryTile<'_, R, KEPT>,
    keys: &[&R; LANES],
    scale: f32,
) -> [Lanes; LANES] {
    let len = tile.queries[0].as_ref().len();
    let whole = len / LANES;
    // A plain loop, not `keys.map`: the closure of an array map is not
    // always inlined.
    let mut scores = [Lanes(Lane::ZERO); LANES];
    for (score, k) in scores.iter_mut().zip(keys) {
        let k = k.as_ref();
        // Partial `r` starts from its first product (chunk 0) and adds one
        // product per chunk; the tail chunk is zero-padded on both sides.
        let mut p = [Lane::ZERO; LANES];
        for c in 0..whole {
            let dims = tile.chunk(c);
            for ((p, qd), &kd) in p.iter_mut().zip(&dims).zip(&chunk(k, c)) {
                let product = *qd * Lane::splat(kd);
                *p = if c == 0 { product } else { *p + product };
            }
        }
        if whole * LANES < len {
            for (r, p) in p.iter_mut().enumerate() {
                let d = whole * LANES + r;
                let qd = Lane::from(
                    tile.queries
                        .map(|q| q.as_ref().get(d).copied().unwrap_or(0.0)),
                );
                let product = qd * Lane::splat(k.get(d).copied().unwrap_or(0.0));
                *p = if whole == 0 { product } else { *p + product };
            }
        }
        *score = Lanes(partial_tree(p) * Lane::splat(scale));
    }
    scores
}

/// `out_t[i] += Σ_j p[j][t] · values[j][i]` for a full tile and a full block
/// (every query sees every key): for each value `i`, the terms are added in
/// order of `j` by the same operation as the one-query path's `axpy` (fused
/// on whole lanes, [`axpy_tail`] past them). Each lane-sized chunk of the
/// eight output rows stays in registers across the eight keys.
#[inline(always)]
pub(crate) fn pv_block<R: ?Sized + AsRef<[f32]> + AsMut<[f32]>>(
    outs: &mut [&mut R; LANES],
    p: &[Lanes; LANES],
    values: &[&R; LANES],
) {
    let weights: [[f32; LANES]; LANES] = p.map(Lanes::to_array);
    let len = values[0].as_ref().len();
    let whole = len / LANES;
    for c in 0..whole {
        let mut acc: [Lane; LANES] =
            core::array::from_fn(|t| Lane::from(chunk(outs[t].as_mut(), c)));
        for (v, w) in values.iter().zip(&weights) {
            let vc = Lane::from(chunk(v.as_ref(), c));
            for (a, &wt) in acc.iter_mut().zip(w) {
                *a = Lane::splat(wt).mul_add(vc, *a);
            }
        }
        for (out, a) in outs.iter_mut().zip(acc) {
            if let Some(dst) = out.as_mut().as_chunks_mut::<LANES>().0.get_mut(c) {
                *dst = a.to_array();
            }
        }
    }
    if whole * LANES < len {
        for (t, out) in outs.iter_mut().enumerate() {
            let out_tail = out.as_mut().get_mut(whole * LANES..).unwrap_or_default();
            for (v, w) in values.iter().zip(&weights) {
                let v_tail = v.as_ref().get(whole * LANES..).unwrap_or_default();
                axpy_tail(out_tail, w[t], v_tail);
            }
        }
    }
}
