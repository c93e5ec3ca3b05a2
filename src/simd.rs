//! Lanes: the only module that names `wide` types (this file, `exp` and
//! `tile`).
//!
//! Rows are plain `&[f32]` (or `&[f32; D]`) of any length. Along a row
//! (accumulator updates, rescale, division, maximum) whole lanes run on
//! [`Lane`], and the rest on narrower steps ([`axpy_tail`]). A block's
//! scores end with one key per lane (see [`dot_block`]), so the softmax of a
//! block runs on lanes.
//!
//! The lane width is the build's widest: `wide::f32x16` where the build has
//! AVX-512F (`-C target-cpu=x86-64-v4`, or `native` on such a CPU),
//! `wide::f32x8` elsewhere (AVX2+FMA, two SSE2 halves, NEON, simd128, or
//! scalar arrays on a microcontroller). `wide` picks its backend when it is
//! compiled (`target_feature`), and so does this file.
//!
//! Rounding differs between backends (`mul_add` is fused only where the
//! target has FMA), so results are bit-identical within one build, and
//! within the accuracy contract across builds.

use crate::element::{Element, Row};
use wide::{f32x4, f32x8};
#[cfg(not(target_feature = "avx512f"))]
use wide::{f32x8 as Lane, i32x8 as IntLane};
#[cfg(target_feature = "avx512f")]
use wide::{f32x16 as Lane, i32x16 as IntLane};

mod bounded;
mod exp;
mod scoring;
mod tanh;
mod tile;
#[cfg(target_feature = "avx512f")]
mod transpose;

pub(crate) use bounded::{axpy_block_bounded, finish_bounded, rescale_or_start, select};
pub(crate) use tanh::tanh;
pub(crate) use tile::{PerQuery, QueryTile, TILE, pack, pv_block, scores_across_queries};

/// Number of `f32` values in one [`Lane`].
pub(crate) const LANE_WIDTH: usize = if cfg!(target_feature = "avx512f") {
    16
} else {
    8
};

/// Whether `wide` runs [`Lane`] on real SIMD registers (SSE2 or AVX, NEON,
/// simd128). Elsewhere (microcontrollers) a lane is a plain array of
/// scalars, so shuffles are copies and unrolled lane loops are only code:
/// the kernel then picks the loops that are cheapest in scalar code, with
/// the same operations in the same order (the same bits).
pub(crate) const VECTOR: bool = cfg!(any(
    target_feature = "sse2",
    target_feature = "neon",
    target_feature = "simd128"
));

/// The lanes this build of the kernel runs on: their width and the
/// backend `wide` compiled them to (the demo and the benches print it).
///
/// ```
/// assert!(microattn::LANE_NAME.contains("f32"));
/// ```
pub const LANE_NAME: &str = if cfg!(target_feature = "avx512f") {
    "16 × f32, AVX-512F"
} else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
    "8 × f32, AVX2+FMA"
} else if cfg!(target_feature = "avx") {
    "8 × f32, AVX (no FMA)"
} else if cfg!(target_feature = "sse2") {
    "8 × f32, 2 × SSE2 (no FMA)"
} else if cfg!(target_feature = "neon") {
    "8 × f32, 2 × NEON"
} else if cfg!(target_feature = "simd128") {
    "8 × f32, 2 × simd128"
} else {
    "8 × f32, scalar"
};

/// A block of [`LANE_WIDTH`] rows (keys or values) of one head, in order; only
/// the first `n` (an argument beside it) count. `R` is `[f32; D]` for a
/// compile-time head dimension, so row lengths are constants, or `[f32]`.
pub(crate) type Block<'a, R> = [&'a R; LANE_WIDTH];

/// One block's scores (or weights) for one query, one key per lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scores(Lane);

/// Lane `j` holds `j` (to mask lanes past a block's length).
const LANE_INDEX: [f32; LANE_WIDTH] = {
    let mut index = [0.0; LANE_WIDTH];
    let mut j = 0;
    while j < LANE_WIDTH {
        index[j] = j as f32;
        j += 1;
    }
    index
};

impl Scores {
    /// Scores given lane by lane (for the tests of the kernel's steps).
    #[cfg(test)]
    pub(crate) fn from_array(scores: [f32; LANE_WIDTH]) -> Scores {
        Scores(Lane::from(scores))
    }

    /// The first `n` lanes kept, the others `-inf` (so they never raise a
    /// maximum and weigh exactly 0).
    #[inline(always)]
    pub(crate) fn masked(self, n: usize) -> Scores {
        let valid = Lane::from(LANE_INDEX).simd_lt(Lane::splat(n as f32));
        Scores(valid.select(self.0, Lane::splat(f32::NEG_INFINITY)))
    }

    /// The largest score, ignoring NaN (`-inf` if none).
    #[inline(always)]
    pub(crate) fn max(self) -> f32 {
        max(&self.0.to_array())
    }

    /// `exp(s − m)` per lane (the softmax exp of [`exp`]; `s ≤ m` for
    /// every unmasked lane), so masked lanes weigh 0.
    #[inline(always)]
    pub(crate) fn exp_minus(self, m: f32) -> Scores {
        Scores(exp::exp_nonpositive(self.0 - Lane::splat(m)))
    }

    /// NaN lanes kept, every other lane `+0.0`: the weights of a block seen
    /// before any score above `-inf`.
    #[inline(always)]
    pub(crate) fn nan_or_zero(self) -> Scores {
        Scores(self.0.is_nan().select(self.0, Lane::ZERO))
    }

    /// Bit `j` set for each of the first `n` keys whose score is not `-inf`:
    /// the keys whose values the block reads (a `-inf` score is a mask).
    #[inline(always)]
    fn weighed(self, n: usize) -> u32 {
        let masked = self.0.simd_eq(Lane::splat(f32::NEG_INFINITY)).to_bitmask();
        !masked & first_keys(n)
    }

    /// `l + w₀ + w₁ + … + w₇`, added one lane after the other in order
    /// (the order every path of the kernel uses for the running sum).
    #[inline(always)]
    pub(crate) fn add_in_order_to(self, l: f32) -> f32 {
        self.0.to_array().iter().fold(l, |l, &w| l + w)
    }
}

/// [`dot_block`] for `H` queries at once, query `h` against its own block
/// of keys `keys[h]` (all of them computed), on targets with SIMD lanes.
///
/// With AVX-512, sixteen keys and sixteen dimensions at a time
/// ([`sixteen_dims`]); then (and on every other target) eight keys at a
/// time on `f32x8`, which `wide` transposes with shuffles: each key's chain
/// takes the same operations whatever the vector width. Each 8-value chunk of eight
/// key rows is transposed once, so that one `mul_add` advances eight keys'
/// chains by one dimension; the chains of every query and every half of a
/// block advance side by side, so that their latencies overlap (one chain
/// alone would wait on each `mul_add`).
#[inline(always)]
pub(crate) fn dot_blocks<R: ?Sized + AsRef<[f32]>, K: ?Sized + Row, const H: usize>(
    qs: [&R; H],
    keys: [&Block<'_, K>; H],
    scale: f32,
) -> [Scores; H] {
    const HALVES: usize = LANE_WIDTH / 8;
    let len = qs.iter().map(|q| q.as_ref().len()).min().unwrap_or(0);
    let mut acc = [[f32x8::ZERO; HALVES]; H];
    #[cfg(target_feature = "avx512f")]
    let first = sixteen_dims(&qs, &keys, len, &mut acc);
    #[cfg(not(target_feature = "avx512f"))]
    let first = 0;
    for c in first..len / 8 {
        let mut dims = [[[f32x8::ZERO; 8]; HALVES]; H];
        for (dims, keys) in dims.iter_mut().zip(&keys) {
            for (half, keys) in dims.iter_mut().zip(keys.as_chunks::<8>().0) {
                // A plain loop, not `keys.map`: the closure of an array
                // map is not always inlined.
                let mut rows = [f32x8::ZERO; 8];
                for (row, k) in rows.iter_mut().zip(keys) {
                    *row = f32x8::from(chunk::<_, 8>(k.elems(), c));
                }
                *half = f32x8::transpose(rows);
            }
        }
        for i in 0..8 {
            for ((acc, dims), q) in acc.iter_mut().zip(&dims).zip(&qs) {
                let qd = f32x8::splat(q.as_ref().get(c * 8 + i).copied().unwrap_or(0.0));
                for (a, half) in acc.iter_mut().zip(dims) {
                    *a = qd.mul_add(half[i], *a);
                }
            }
        }
    }
    for d in len / 8 * 8..len {
        for ((acc, keys), q) in acc.iter_mut().zip(&keys).zip(&qs) {
            let qd = f32x8::splat(q.as_ref().get(d).copied().unwrap_or(0.0));
            for (a, keys) in acc.iter_mut().zip(keys.as_chunks::<8>().0) {
                let mut kd = [0.0; 8];
                for (slot, k) in kd.iter_mut().zip(keys) {
                    *slot = k.elems().get(d).map_or(0.0, |&x| x.to_f32());
                }
                *a = qd.mul_add(f32x8::from(kd), *a);
            }
        }
    }
    let mut out = [Scores(Lane::ZERO); H];
    for (out, acc) in out.iter_mut().zip(acc) {
        let mut scores = [0.0; LANE_WIDTH];
        for (s, a) in scores.as_chunks_mut::<8>().0.iter_mut().zip(acc) {
            *s = a.to_array();
        }
        *out = Scores(Lane::from(scores) * Lane::splat(scale));
    }
    out
}

/// The first `len / 16` chunks of 16 dimensions of [`dot_blocks`] on
/// AVX-512: for each query, its block's 16 key chunks widened into
/// `f32x16` rows and transposed at once ([`transpose::sixteen`]), then one
/// `mul_add` per dimension advances all 16 keys' chains, in the order of
/// the dimensions, as the 8-value chunks do. Returns the number of 8-value
/// chunks it took.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
fn sixteen_dims<R: ?Sized + AsRef<[f32]>, K: ?Sized + Row, const H: usize>(
    qs: &[&R; H],
    keys: &[&Block<'_, K>; H],
    len: usize,
    acc: &mut [[f32x8; 2]; H],
) -> usize {
    for c in 0..len / 16 {
        for ((acc, keys), q) in acc.iter_mut().zip(keys).zip(qs) {
            // The transpose's first step (rows r and r + 8 trading halves)
            // is done by the loads: row r gets the first 8 dimensions of
            // keys r and r + 8, row r + 8 their last 8.
            let mut rows = [Lane::ZERO; 16];
            let (upper, lower) = rows.split_at_mut(8);
            let (first, second) = keys.split_at(8);
            for (((up, low), a), b) in upper.iter_mut().zip(lower).zip(first).zip(second) {
                *up = Lane::from(chunk_pair(a.elems(), b.elems(), 2 * c));
                *low = Lane::from(chunk_pair(a.elems(), b.elems(), 2 * c + 1));
            }
            let columns = transpose::after_halves(rows);
            let [low, high] = acc.map(f32x8::to_array);
            let mut joined = [0.0; 16];
            joined[..8].copy_from_slice(&low);
            joined[8..].copy_from_slice(&high);
            let mut a = Lane::from(joined);
            let q = q.as_ref();
            for (i, column) in columns.iter().enumerate() {
                let qd = Lane::splat(q.get(c * 16 + i).copied().unwrap_or(0.0));
                a = qd.mul_add(*column, a);
            }
            let sum = a.to_array();
            let (low, high) = sum.split_at(8);
            for (half, values) in acc.iter_mut().zip([low, high]) {
                *half = f32x8::from(values.first_chunk::<8>().copied().unwrap_or_default());
            }
        }
    }
    len / 16 * 2
}

/// The 8-value chunks `c` of `a` and of `b`, side by side, widened (zeros
/// past a row's end): gathered as stored, then widened 16 at a time.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
fn chunk_pair<E: Element>(a: &[E], b: &[E], c: usize) -> [f32; 16] {
    let (a, b) = (a.as_chunks::<8>().0.get(c), b.as_chunks::<8>().0.get(c));
    match (a, b) {
        (Some(a), Some(b)) => {
            let mut both = [E::ZERO; 16];
            let (low, high) = both.split_at_mut(8);
            low.copy_from_slice(a);
            high.copy_from_slice(b);
            E::widen(&both)
        }
        _ => [0.0; 16],
    }
}

/// `N`-value chunk `c` of `row`, widened to `f32` (zeros past its end,
/// which only an unused slot of a block reaches).
#[inline(always)]
fn chunk<E: Element, const N: usize>(row: &[E], c: usize) -> [f32; N] {
    row.as_chunks::<N>().0.get(c).map_or([0.0; N], E::widen)
}

/// The scores `scale · q·k` of one query against a block of keys, one key
/// per lane. Only the first `n` lanes count (the caller masks the others);
/// on scalar lanes only those are computed.
///
/// Every score of the kernel is the same chain: `s = 0`, then
/// `s = q_d·k_d + s` for `d = 0, 1, …` in order by [`Lane::mul_add`] (fused
/// where the target has FMA), then `s·scale`. Here lanes run across keys
/// ([`dot_blocks`]).
/// The tile ([`scores_across_queries`]) runs the same chains with lanes
/// across queries.
#[inline(always)]
pub(crate) fn dot_block<R: ?Sized + AsRef<[f32]>, K: ?Sized + Row>(
    q: &R,
    keys: &Block<'_, K>,
    n: usize,
    scale: f32,
) -> Scores {
    if VECTOR {
        let [scores] = dot_blocks([q], [keys], scale);
        scores
    } else {
        // Scalar lanes: the same chain, one key at a time (`mul_add` of
        // scalar lanes is `q·k + s`, two roundings, as here).
        let q = q.as_ref();
        let mut scores = [0.0; LANE_WIDTH];
        // `n` keys, a run-time count: the loop stays a loop (unrolled it
        // would be most of the kernel's code on a microcontroller).
        for (score, k) in scores.iter_mut().zip(keys).take(n) {
            let s = q
                .iter()
                .zip(k.elems())
                .fold(0.0, |s, (&qd, &kd)| qd * kd.to_f32() + s);
            *score = s * scale;
        }
        Scores(Lane::from(scores))
    }
}

/// `acc[i] += Σ_j p[j] · values[j][i]` over the block's first `n` keys
/// whose score is not `-inf` (a masked key's value is never read), for each
/// `i` the terms added in order of `j` by the operation [`axpy`] uses for
/// that `i` (fused on whole lanes, [`axpy_tail`] past them). Each lane-sized
/// chunk of `acc` is loaded once, updated by the keys in registers and
/// stored once.
#[inline(always)]
pub(crate) fn axpy_block<R: ?Sized + AsMut<[f32]>, V: ?Sized + Row>(
    acc: &mut R,
    p: Scores,
    scores: Scores,
    values: &Block<'_, V>,
    n: usize,
) {
    let n = n.min(LANE_WIDTH);
    if VECTOR {
        // One test per block on SIMD lanes; the rare block that holds a
        // masked key goes key by key, so the common one stays straight-line.
        let weighed = scores.weighed(n);
        if weighed != first_keys(n) {
            axpy_weighed(acc, p, values, weighed);
            return;
        }
    }
    // On scalar lanes each key is tested where it is used: cheaper there, in
    // code and instructions, than a mask.
    let read = |s: f32| VECTOR || s != f32::NEG_INFINITY;
    let (p, s) = (p.0.to_array(), scores.0.to_array());
    let acc = acc.as_mut();
    let whole = acc.len() / LANE_WIDTH;
    let (acc_lanes, acc_tail) = acc.as_chunks_mut::<LANE_WIDTH>();
    for (c, a) in acc_lanes.iter_mut().enumerate() {
        let mut sum = Lane::from(*a);
        // A full block as a loop of constant length unrolls on SIMD targets;
        // where lanes are plain arrays that copy would only double the code.
        if n == LANE_WIDTH && VECTOR {
            for (&pj, v) in p.iter().zip(values) {
                sum = Lane::splat(pj).mul_add(Lane::from(chunk(v.elems(), c)), sum);
            }
        } else {
            for ((&pj, &sj), v) in p.iter().zip(&s).zip(values).take(n) {
                if read(sj) {
                    sum = Lane::splat(pj).mul_add(Lane::from(chunk(v.elems(), c)), sum);
                }
            }
        }
        *a = sum.to_array();
    }
    if !acc_tail.is_empty() {
        for ((&pj, &sj), v) in p.iter().zip(&s).zip(values).take(n) {
            if read(sj) {
                let mut buf = [0.0; LANE_WIDTH];
                let v_tail = v.elems().get(whole * LANE_WIDTH..).unwrap_or_default();
                axpy_tail(acc_tail, pj, Element::as_f32(v_tail, &mut buf));
            }
        }
    }
}

/// Bits `0..n` set (`n ≤ LANE_WIDTH`): every one of a block's first `n` keys.
#[inline(always)]
fn first_keys(n: usize) -> u32 {
    (1u32 << n.min(LANE_WIDTH)) - 1
}

/// [`axpy_block`] over the keys of `weighed` (bit `j` for key `j`) only:
/// the others' values are never read. Each value is updated by the same
/// operations, in the same order of `j`, as in [`axpy_block`] over those keys.
#[inline(never)]
fn axpy_weighed<R: ?Sized + AsMut<[f32]>, V: ?Sized + Row>(
    acc: &mut R,
    p: Scores,
    values: &Block<'_, V>,
    weighed: u32,
) {
    let p = p.0.to_array();
    for (j, (&pj, v)) in p.iter().zip(values).enumerate() {
        if weighed & (1 << j) != 0 {
            axpy(acc.as_mut(), pj, v.elems());
        }
    }
}

/// `acc[i] += p · x[i]` over the common length: [`LANE_WIDTH`] at a time (fused
/// where the target has FMA), then [`axpy_tail`] on the rest.
#[inline(always)]
pub(crate) fn axpy<E: Element>(acc: &mut [f32], p: f32, x: &[E]) {
    axpy_lanes(acc, p, x);
    let whole = acc.len() / LANE_WIDTH * LANE_WIDTH;
    let acc_tail = acc.get_mut(whole..).unwrap_or_default();
    let mut buf = [0.0; LANE_WIDTH];
    let x_tail = E::as_f32(x.get(whole..).unwrap_or_default(), &mut buf);
    axpy_tail(acc_tail, p, x_tail);
}

/// The whole lanes of [`axpy`] (the values before its tail).
#[inline(always)]
fn axpy_lanes<E: Element>(acc: &mut [f32], p: f32, x: &[E]) {
    let (acc_lanes, _) = acc.as_chunks_mut::<LANE_WIDTH>();
    let (x_lanes, _) = x.as_chunks::<LANE_WIDTH>();
    let pv = Lane::splat(p);
    for (a, x) in acc_lanes.iter_mut().zip(x_lanes) {
        *a = pv
            .mul_add(Lane::from(E::widen(x)), Lane::from(*a))
            .to_array();
    }
}

/// The part of [`axpy`] past the last whole lane (fewer than [`LANE_WIDTH`]
/// values): 8-value steps while 8 or more remain (only with 16 lanes), then
/// one 4-value step, then scalars (not fused). Every path of the kernel
/// updates these values through this one function, so each value is always
/// computed by the same operation.
#[inline(always)]
pub(crate) fn axpy_tail(acc: &mut [f32], p: f32, x: &[f32]) {
    let (acc_eights, acc) = acc.as_chunks_mut::<8>();
    let (x_eights, x) = x.as_chunks::<8>();
    for (a, x) in acc_eights.iter_mut().zip(x_eights) {
        *a = f32x8::splat(p)
            .mul_add(f32x8::from(*x), f32x8::from(*a))
            .to_array();
    }
    let (acc_fours, acc_rest) = acc.as_chunks_mut::<4>();
    let (x_fours, x_rest) = x.as_chunks::<4>();
    for (a, x) in acc_fours.iter_mut().zip(x_fours) {
        *a = f32x4::splat(p)
            .mul_add(f32x4::from(*x), f32x4::from(*a))
            .to_array();
    }
    for (a, x) in acc_rest.iter_mut().zip(x_rest) {
        *a += p * x;
    }
}

/// `e^x` for one `x ≤ 0` (or NaN) by the lane exp, so a rescale factor is
/// the same bits as a weight computed on lanes.
#[inline(always)]
pub(crate) fn exp_one(x: f32) -> f32 {
    exp::exp_nonpositive(Lane::splat(x)).to_array()[0]
}

/// `acc[i] *= alpha`.
#[inline(always)]
pub(crate) fn scale(acc: &mut [f32], alpha: f32) {
    let (lanes, tail) = acc.as_chunks_mut::<LANE_WIDTH>();
    let av = Lane::splat(alpha);
    for a in lanes {
        *a = (Lane::from(*a) * av).to_array();
    }
    for a in tail {
        *a *= alpha;
    }
}

/// `acc[i] /= d`. Division (not multiplication by `1/d`) keeps each value
/// correctly rounded.
#[inline(always)]
pub(crate) fn div(acc: &mut [f32], d: f32) {
    let (lanes, tail) = acc.as_chunks_mut::<LANE_WIDTH>();
    let dv = Lane::splat(d);
    for a in lanes {
        *a = (Lane::from(*a) / dv).to_array();
    }
    for a in tail {
        *a /= d;
    }
}

/// The largest value of `x`, ignoring NaN; `-inf` for an empty or all-NaN row.
///
/// Order-independent, so it equals a sequential `if v > m { m = v }` fold
/// (up to the sign of a zero maximum).
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let (lanes, tail) = x.as_chunks::<LANE_WIDTH>();
    let mut m = Lane::splat(f32::NEG_INFINITY);
    for l in lanes {
        m = m.max(Lane::from(*l));
    }
    let mut best = f32::NEG_INFINITY;
    for &v in m.to_array().iter().chain(tail) {
        if v > best {
            best = v;
        }
    }
    best
}
