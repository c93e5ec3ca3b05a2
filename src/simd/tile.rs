//! Lanes across queries: the register-blocked path of the kernel.
//!
//! A full tile is [`TILE`] queries, one vector of lanes; lane `t` of a
//! [`PerQuery`] value belongs to query `t`. Scores of the tile against a block
//! of keys are one such value per key, so the running maximum, the rescale
//! factors, the weights and the running sums of the whole tile are plain
//! lane-wise operations: no horizontal reduction anywhere in the loop.
//!
//! Every value is computed by the same IEEE operation, in the same order, as
//! in the one-query path (`Scores`, lanes across keys): that is what makes a
//! query's result independent of the path that computed it.

use super::{LANE_WIDTH, Lane, axpy_lanes, axpy_tail, chunk, exp};

/// Vectors of lanes per tile.
const VECTORS: usize = 1;

/// Queries per tile: one vector of lanes.
pub(crate) const TILE: usize = VECTORS * LANE_WIDTH;

/// Lanes of each of four rows that the value update keeps in registers:
/// 16 accumulators where the build has 32 vector registers (AVX-512), 8
/// where it has 16 (AVX2; 16 would spill).
const ROW_LANES: usize = if LANE_WIDTH == 16 { 4 } else { 2 };

/// Keys whose scores the microkernel keeps in registers at once: a whole
/// block, one accumulator per key (16 of the 32 vector registers with
/// AVX-512, 8 of 16 with AVX2).
const KEYS_AT_ONCE: usize = if LANE_WIDTH == 16 { 16 } else { 8 };

/// One value per query of a full tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerQuery([Lane; VECTORS]);

impl PerQuery {
    /// Every lane `x`.
    #[inline(always)]
    pub(crate) fn splat(x: f32) -> PerQuery {
        PerQuery([Lane::splat(x); VECTORS])
    }

    /// The lanes as an array (lane `t` at index `t`).
    #[inline(always)]
    pub(crate) fn to_array(self) -> [f32; TILE] {
        let mut out = [0.0; TILE];
        for (chunk, v) in out.as_chunks_mut::<LANE_WIDTH>().0.iter_mut().zip(self.0) {
            *chunk = v.to_array();
        }
        out
    }

    /// Lane-wise `f(self, other)`.
    #[inline(always)]
    fn zip(self, other: PerQuery, f: impl Fn(Lane, Lane) -> Lane) -> PerQuery {
        let mut out = self.0;
        for (o, b) in out.iter_mut().zip(other.0) {
            *o = f(*o, b);
        }
        PerQuery(out)
    }

    /// Lane-wise `self − other`.
    #[inline(always)]
    pub(crate) fn sub(self, other: PerQuery) -> PerQuery {
        self.zip(other, |a, b| a - b)
    }

    /// Lane-wise `self · other`.
    #[inline(always)]
    pub(crate) fn mul(self, other: PerQuery) -> PerQuery {
        self.zip(other, |a, b| a * b)
    }

    /// Lane-wise `self + other`.
    #[inline(always)]
    pub(crate) fn add(self, other: PerQuery) -> PerQuery {
        self.zip(other, |a, b| a + b)
    }

    /// Lane-wise maximum of the running maximum `self` (never NaN) and a
    /// score: a NaN score is ignored, as `simd::max` ignores it.
    #[inline(always)]
    pub(crate) fn max_with(self, score: PerQuery) -> PerQuery {
        self.zip(score, |a, b| a.max(b))
    }

    /// Lane-wise softmax exp (argument `≤ 0` or NaN): the same function as
    /// the one-query path's weights.
    #[inline(always)]
    pub(crate) fn exp(self) -> PerQuery {
        let mut out = self.0;
        for o in out.iter_mut() {
            *o = exp::exp_nonpositive(*o);
        }
        PerQuery(out)
    }

    /// NaN lanes kept, every other lane `+0.0` (as `Scores::nan_or_zero`).
    #[inline(always)]
    pub(crate) fn nan_or_zero(self) -> PerQuery {
        let mut out = self.0;
        for o in out.iter_mut() {
            *o = o.is_nan().select(*o, Lane::ZERO);
        }
        PerQuery(out)
    }

    /// Lanes that are `-inf`.
    #[inline(always)]
    pub(crate) fn is_neg_inf(self) -> Mask {
        let mut out = self.0;
        for o in out.iter_mut() {
            *o = o.simd_eq(Lane::splat(f32::NEG_INFINITY));
        }
        Mask(out)
    }

    /// Lanes where `self > other`, as a mask for [`PerQuery::select`].
    #[inline(always)]
    pub(crate) fn gt(self, other: PerQuery) -> Mask {
        Mask(self.zip(other, |a, b| a.simd_gt(b)).0)
    }

    /// `mask ? if_true : self`, lane by lane.
    #[inline(always)]
    pub(crate) fn select(self, mask: Mask, if_true: PerQuery) -> PerQuery {
        let mut out = self.0;
        for ((o, m), t) in out.iter_mut().zip(mask.0).zip(if_true.0) {
            *o = m.select(t, *o);
        }
        PerQuery(out)
    }

    /// Lanes `t` with `j < seen[t]` kept, the others `-inf`: key `j` of a
    /// block, for queries that see `seen[t]` keys of it.
    #[inline(always)]
    pub(crate) fn masked(self, j: usize, seen: &PerQuery) -> PerQuery {
        let j = Lane::splat(j as f32);
        self.zip(*seen, |s, seen| {
            j.simd_lt(seen).select(s, Lane::splat(f32::NEG_INFINITY))
        })
    }

    /// Lane `t` (0 past the last).
    #[inline(always)]
    pub(crate) fn lane(&self, t: usize) -> f32 {
        self.0
            .get(t / LANE_WIDTH)
            .map_or(0.0, |v| v.as_array()[t % LANE_WIDTH])
    }

    /// The lanes from an array (lane `t` from index `t`).
    #[inline(always)]
    pub(crate) fn from_array(values: [f32; TILE]) -> PerQuery {
        let mut lanes = [Lane::ZERO; VECTORS];
        for (lane, chunk) in lanes.iter_mut().zip(values.as_chunks::<LANE_WIDTH>().0) {
            *lane = Lane::from(*chunk);
        }
        PerQuery(lanes)
    }
}

/// A lane mask from a comparison of [`PerQuery`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask([Lane; VECTORS]);

impl Mask {
    /// Bit `t` set for each set lane `t`.
    #[inline(always)]
    pub(crate) fn bits(self) -> u64 {
        let mut bits = 0;
        for (v, m) in self.0.iter().enumerate() {
            bits |= u64::from(m.to_bitmask()) << (v * LANE_WIDTH);
        }
        bits
    }

    /// Whether any lane is set.
    #[inline(always)]
    pub(crate) fn any(self) -> bool {
        self.bits() != 0
    }

    /// Whether lane `t` is set.
    #[inline(always)]
    pub(crate) fn test(self, t: usize) -> bool {
        self.bits() & (1 << t) != 0
    }
}

/// A tile of queries, its first `KEPT` dimensions transposed once (lane `t`
/// of `dims[d]` is `q_t[d]`, `4·TILE·KEPT` bytes): the transpose is paid
/// once per tile rather than once per block of keys. The kernel keeps every
/// dimension (`KEPT ≥ D`) and sends longer rows through the one-query path.
pub(crate) struct QueryTile<const KEPT: usize> {
    dims: [[Lane; VECTORS]; KEPT],
    len: usize,
}

impl<const KEPT: usize> QueryTile<KEPT> {
    /// The length of the queries (the dimensions kept).
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Transposes `queries` (all of one length, at most `KEPT`); lanes
    /// without a query hold zeros.
    #[inline(always)]
    pub(crate) fn new<R: ?Sized + AsRef<[f32]>>(queries: &[Option<&R>; TILE]) -> Self {
        let len = queries
            .iter()
            .flatten()
            .map(|q| q.as_ref().len())
            .min()
            .unwrap_or(0)
            .min(KEPT);
        let mut dims = [[Lane::ZERO; VECTORS]; KEPT];
        for (d, dim) in dims.iter_mut().enumerate().take(len) {
            let mut lanes = [0.0; TILE];
            for (lane, q) in lanes.iter_mut().zip(queries) {
                if let Some(q) = q {
                    *lane = q.as_ref().get(d).copied().unwrap_or(0.0);
                }
            }
            *dim = PerQuery::from_array(lanes).0;
        }
        QueryTile { dims, len }
    }
}

/// Each row of `rows` (at most `KEPT` values) copied into `buffer`, one
/// row each.
#[inline(always)]
pub(crate) fn pack<R: ?Sized + AsRef<[f32]>, const KEPT: usize, const B: usize>(
    buffer: &mut [[f32; KEPT]; B],
    rows: &[&R; B],
) {
    for (dst, row) in buffer.iter_mut().zip(rows) {
        let row = row.as_ref();
        let (row_lanes, row_tail) = row.as_chunks::<LANE_WIDTH>();
        let (dst_lanes, _) = dst.as_chunks_mut::<LANE_WIDTH>();
        for (a, b) in dst_lanes.iter_mut().zip(row_lanes) {
            *a = *b;
        }
        let done = row_lanes.len() * LANE_WIDTH;
        let rest = dst.get_mut(done..).unwrap_or_default();
        for (a, b) in rest.iter_mut().zip(row_tail) {
            *a = *b;
        }
    }
}

/// The scores `scale · q_t·k_j` of a tile of queries against a block of
/// keys: entry `j`, lane `t` is query `t` against key `j`.
///
/// Each is the kernel's chain (see `dot_block`): `s = 0`, then
/// `s = q_d·k_d + s` by `mul_add` for `d` in order, then `s·scale`. Lanes run across
/// queries: for each dimension, the tile's query vector is loaded once and
/// multiplied by [`KEYS_AT_ONCE`] keys' values broadcast (an operand of the
/// fused multiply-add itself with AVX-512), into as many independent
/// accumulators (register blocking: the chains hide the latency).
#[inline(always)]
pub(crate) fn scores_across_queries<const KEPT: usize, const B: usize>(
    tile: &QueryTile<KEPT>,
    keys: &[&[f32; KEPT]; B],
    scale: f32,
) -> [PerQuery; B] {
    let mut scores = [PerQuery::splat(0.0); B];
    let scale = Lane::splat(scale);
    let (groups, _) = scores.as_chunks_mut::<KEYS_AT_ONCE>();
    let (key_groups, _) = keys.as_chunks::<KEYS_AT_ONCE>();
    let qs = tile.dims.get(..tile.len).unwrap_or_default();
    for (out, keys) in groups.iter_mut().zip(key_groups) {
        let acc = score_chains(qs, keys);
        for (s, mut a) in out.iter_mut().zip(acc) {
            for v in a.iter_mut() {
                *v *= scale;
            }
            *s = PerQuery(a);
        }
    }
    scores
}

/// The score chains of a tile's query vectors (`qs[d]`: dimension `d` of
/// every query, at most `KEPT` of them) against [`KEYS_AT_ONCE`] key rows:
/// the accumulators, before the scale. Out of line, so that its
/// accumulators stay in registers whatever the caller inlines around it.
#[inline(never)]
fn score_chains<const KEPT: usize>(
    qs: &[[Lane; VECTORS]],
    keys: &[&[f32; KEPT]; KEYS_AT_ONCE],
) -> [[Lane; VECTORS]; KEYS_AT_ONCE] {
    let mut acc = [[Lane::ZERO; VECTORS]; KEYS_AT_ONCE];
    // `d < KEPT`, the rows' constant length: no bounds check below.
    for (d, q) in qs.iter().enumerate().take(KEPT) {
        for (a, k) in acc.iter_mut().zip(keys) {
            let kd = Lane::splat(k[d]);
            for (a, q) in a.iter_mut().zip(q) {
                *a = q.mul_add(kd, *a);
            }
        }
    }
    acc
}

/// `out_t[i] += Σ_{j < seen[t]} p[j][t] · values[j][i]` for the tile's
/// present queries (`outs[t]` is query `t`'s row, `seen` never decreases
/// with `t`): for each value `i`, the terms are added in order of `j` by the
/// same operation as the one-query path's `axpy` (fused on whole lanes,
/// [`axpy_tail`] past them). Chunks of four queries' rows, up to [`ROW_LANES`] lanes
/// of each, stay in registers across the keys all four see, so each loaded
/// lane of values serves four queries; the few keys past those (on the
/// diagonal) go query by query.
#[inline(always)]
pub(crate) fn pv_block<R: ?Sized + AsMut<[f32]>, V: ?Sized + AsRef<[f32]>, const B: usize>(
    outs: &mut [&mut R],
    p: &[PerQuery; B],
    values: &[&V; B],
    seen: &[usize; TILE],
) {
    let len = values[0].as_ref().len();
    let whole = len / LANE_WIDTH;
    let (groups, rest) = outs.as_chunks_mut::<4>();
    let mut seen_by = seen.iter().copied();
    for (g, group) in groups.iter_mut().enumerate() {
        let mine: [usize; 4] = core::array::from_fn(|_| seen_by.next().unwrap_or(0));
        let all = mine.iter().copied().min().unwrap_or(0);
        pv_rows::<R, V, B, 4>(group, g, 0, whole, all, p, values);
        for (i, (out, &n)) in group.iter_mut().zip(&mine).enumerate() {
            let keys = values.iter().zip(p).take(n).skip(all);
            for (v, w) in keys {
                axpy_lanes(out.as_mut(), w.lane(4 * g + i), v.as_ref());
            }
        }
    }
    let g = groups.len();
    for (i, out) in rest.iter_mut().enumerate() {
        let n = seen_by.next().unwrap_or(0);
        pv_rows::<R, V, B, 1>(core::array::from_mut(out), g, i, whole, n, p, values);
    }
    if whole * LANE_WIDTH < len {
        for ((t, out), &n) in outs.iter_mut().enumerate().zip(seen) {
            let out_tail = out
                .as_mut()
                .get_mut(whole * LANE_WIDTH..)
                .unwrap_or_default();
            for (v, w) in values.iter().zip(p).take(n) {
                let v_tail = v.as_ref().get(whole * LANE_WIDTH..).unwrap_or_default();
                axpy_tail(out_tail, w.lane(t), v_tail);
            }
        }
    }
}

/// [`pv_block`] on the whole lanes of `Q` rows (those of tile lanes
/// `4g + lane..4g + lane + Q`) and the block's first `n` keys,
/// [`ROW_LANES`] lanes of each row at a time.
#[inline(always)]
fn pv_rows<R: ?Sized + AsMut<[f32]>, V: ?Sized + AsRef<[f32]>, const B: usize, const Q: usize>(
    rows: &mut [&mut R; Q],
    g: usize,
    lane: usize,
    whole: usize,
    n: usize,
    weights: &[PerQuery; B],
    values: &[&V; B],
) {
    if n == 0 {
        return;
    }
    let mut c = 0;
    while c + ROW_LANES <= whole {
        pv_micro::<R, V, B, Q, ROW_LANES>(rows, g, lane, c, n, weights, values);
        c += ROW_LANES;
    }
    if ROW_LANES > 2 && c + 2 <= whole {
        pv_micro::<R, V, B, Q, 2>(rows, g, lane, c, n, weights, values);
        c += 2;
    }
    if c < whole {
        pv_micro::<R, V, B, Q, 1>(rows, g, lane, c, n, weights, values);
    }
}

/// `Q` rows (tile lanes `4g + lane..`), `C` lanes of each from lane-sized
/// chunk `c` on, kept in registers across the block's first `n` keys. Out
/// of line for the same reason as [`score_chains`].
#[inline(never)]
fn pv_micro<
    R: ?Sized + AsMut<[f32]>,
    V: ?Sized + AsRef<[f32]>,
    const B: usize,
    const Q: usize,
    const C: usize,
>(
    rows: &mut [&mut R; Q],
    g: usize,
    lane: usize,
    c: usize,
    n: usize,
    weights: &[PerQuery; B],
    values: &[&V; B],
) {
    let mut acc = [[Lane::ZERO; C]; Q];
    for (a, out) in acc.iter_mut().zip(rows.iter_mut()) {
        for (i, l) in a.iter_mut().enumerate() {
            *l = Lane::from(chunk(out.as_mut(), c + i));
        }
    }
    for (v, w) in values.iter().zip(weights).take(n) {
        // Lanes `4g + lane..4g + lane + Q` of key `j`'s weights (four
        // lanes never straddle two vectors).
        let first = 4 * g + lane;
        let Some(w) = w.0.get(first / LANE_WIDTH) else {
            continue;
        };
        let Some(w) = w
            .as_array()
            .get(first % LANE_WIDTH..)
            .and_then(|w| w.first_chunk::<Q>())
        else {
            continue;
        };
        // The row's lanes `c..c + C`, cut once (one check per key, not
        // one per lane).
        let (lanes, _) = v
            .as_ref()
            .get(c * LANE_WIDTH..)
            .unwrap_or_default()
            .as_chunks::<LANE_WIDTH>();
        let Some(lanes) = lanes.first_chunk::<C>() else {
            continue;
        };
        let mut vs = [Lane::ZERO; C];
        for (vi, lane) in vs.iter_mut().zip(lanes) {
            *vi = Lane::from(*lane);
        }
        for (a, &wt) in acc.iter_mut().zip(w) {
            let wt = Lane::splat(wt);
            for (l, vi) in a.iter_mut().zip(&vs) {
                *l = wt.mul_add(*vi, *l);
            }
        }
    }
    for (a, out) in acc.iter().zip(rows.iter_mut()) {
        let (chunks, _) = out.as_mut().as_chunks_mut::<LANE_WIDTH>();
        for (i, l) in a.iter().enumerate() {
            if let Some(dst) = chunks.get_mut(c + i) {
                *dst = l.to_array();
            }
        }
    }
}
