//! The integer kernel: one query row of one head over its visible keys, in
//! integer arithmetic only, and the driver that runs it over a problem.
//!
//! Per row of `L` keys, with `q' = q − zq` widened once to `i16`:
//! 1. every score `sⱼ = Σ_d q'_d·kⱼ_d` (`i32`, exact) and their maximum
//!    `m`. The key zero point is left out: it adds `−zk·Σ_d q'_d` to every
//!    score of the row, which the softmax cancels (only `m − sⱼ` is used).
//! 2. every weight `wⱼ = weight(exponent(m − sⱼ))` in `0..=2^16` (0 without
//!    computing it past the prepared cutoff), their sum `W` and
//!    `Σⱼ wⱼ·vⱼ_d` per dimension, exact: in `i32` for rows of up to
//!    [`SHORT`] keys, else in `i32` over blocks of [`BLOCK`] keys
//!    (`|w·v| ≤ 2^23`) added into `i64` totals; the value zero point comes
//!    off once at the end, `A_d = Σⱼ wⱼ·(vⱼ_d − zv)`.
//! 3. [`Normalizer`]: `W`'s leading 16 bits, one division, then one
//!    rounding shift and one product per output give the mean `A_d / W` in
//!    `Q22` value steps; the caller's sink requantizes it.
//!
//! The first [`STORED`] scores of a short row ([`STORED_LONG`] of a long
//! one) stay on the stack between the passes; later keys' scores are
//! computed again, bit for bit the same.
//! Integer sums are exact, so the blocking changes no bit. The reference
//! ([`reference::int8`](crate::reference::int8)) writes the same arithmetic
//! out plainly.

use super::branchless::{self, at_least, pick};
use super::exp2::weight;
use super::params::Params;
use crate::check::Sizes;
use crate::kernel::BOUNDED;

/// The largest head dimension of the integer path: the size of the
/// runtime API's row scratch, and what keeps a score below `2^31`.
pub const MAX_HEAD_DIM: usize = 256;

/// Scores of a short row kept between the two passes, an `i32` each on
/// the stack: 24 keeps one call within 512 bytes of stack on every
/// microcontroller the firmware measures.
pub(crate) const STORED: usize = 24;

/// Scores of a long row kept between the passes (1 KiB of stack, for the
/// hosts that run long rows).
const STORED_LONG: usize = 256;

/// Rows of at most this many keys sum in `i32` only.
pub(crate) const SHORT: usize = 128;

/// Keys per `i32` block of the value sums: `256·2^16·128 = 2^31`.
const BLOCK: usize = 256;

/// The mean of a row from its weighted value sums: with `b` the bit length
/// of `W` minus 16 (so `W >> b` lies in `[2^15, 2^16)`) and
/// `F = round(2^30 / (W >> b))`, the mean of a sum `A` is
/// `round(A / 2^(b+8))·F ≈ A·2^22 / W`, in `Q22` value steps. The first
/// factor is below `2^16` in size (`|A| ≤ 255·W`) and `F ≤ 2^15`, so the
/// product fits `i32`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Normalizer {
    factor: i32,
    shift: u32,
}

impl Normalizer {
    /// The normalizer of a row whose weights sum to `total` (at least
    /// `2^16` for a row with a key: its maximum's weight is `2^16`); a zero
    /// total gives mean 0.
    #[inline(always)]
    pub(crate) fn new(total: u64) -> Self {
        if BOUNDED {
            return Self::new_bounded(total);
        }
        Self::new_branching(total)
    }

    /// [`new`](Self::new) of the default build.
    #[inline(always)]
    fn new_branching(total: u64) -> Self {
        let b = (64 - total.leading_zeros()).saturating_sub(16);
        let top = (total >> b) as u32;
        match ((1u32 << 30) + top / 2).checked_div(top) {
            Some(factor) if b >= 1 => Normalizer {
                factor: factor as i32,
                shift: b + 8,
            },
            _ => Normalizer {
                factor: 0,
                shift: 8,
            },
        }
    }

    /// [`new`](Self::new) for a total that fits `u32` (every row of up
    /// to [`SHORT`] keys), with neither a leading-zero count nor a
    /// division from the compiler's runtime (library calls on cores
    /// without them): the same `b` and `F`.
    #[inline(always)]
    pub(crate) fn new_u32(total: u32) -> Self {
        if BOUNDED {
            return Self::new_u32_bounded(total);
        }
        let mut b = 0;
        while total >> b >= 1 << 16 {
            b += 1;
        }
        let top = total >> b;
        if b == 0 || top == 0 {
            return Normalizer {
                factor: 0,
                shift: 8,
            };
        }
        // round(2^30 / top) = floor((2^30 + top/2) / top), one quotient
        // bit at a time: top ≥ 2^15, so the quotient is below 2^16 and
        // `top << 15` below 2^31.
        let mut rest = (1u32 << 30) + top / 2;
        let mut factor = 0u32;
        for bit in (0..16).rev() {
            if rest >= top << bit {
                rest -= top << bit;
                factor |= 1 << bit;
            }
        }
        Normalizer {
            factor: factor as i32,
            shift: b + 8,
        }
    }

    /// [`new_u32`](Self::new_u32) without a branch on the total, for the
    /// bounded-time build: the same `b` and `F`, each found a fixed number
    /// of steps at a time with masks (`branchless`).
    #[inline(always)]
    pub(crate) fn new_u32_bounded(total: u32) -> Self {
        // Sixteen steps bring any u32 below 2^16; once there, no step
        // shifts further.
        let mut b = 0;
        for _ in 0..16 {
            b += at_least(total >> b, 1 << 16) & 1;
        }
        let factor = Self::factor_bounded(total >> b);
        // A total below 2^16 (b = 0) is a row without a key: mean 0.
        let keyless = !at_least(total, 1 << 16);
        Normalizer {
            factor: (factor & !keyless) as i32,
            shift: pick(keyless, 8, b + 8),
        }
    }

    /// [`new`](Self::new) without a branch on the total and without the
    /// compiler's 64-bit shift and division routines, for the bounded-time
    /// build: the same `b` and `F`.
    #[inline(always)]
    pub(crate) fn new_bounded(total: u64) -> Self {
        // `b` is the largest shift that leaves `top ≥ 2^15` (the bit length
        // of a total of at least 2^16, minus 16), found by six steps of
        // 32, 16, 8, 4, 2 and 1 bits, each taken if it leaves 2^15 or more.
        // After a step of `s` bits, taken or not, `top < 2^(15+s)`: the
        // first step's result fits u32, and after the second `top` does.
        let high = (total >> 32) as u32;
        let take = at_least(high, 1 << 15);
        let wide = branchless::pick_u64(take, u64::from(high), total);
        let mut b = 32 & take;
        let part = (wide >> 16) as u32;
        let take = at_least(part, 1 << 15);
        let mut top = pick(take, part, wide as u32);
        b += 16 & take;
        for s in [8, 4, 2, 1] {
            let take = at_least(top >> s, 1 << 15);
            top = pick(take, top >> s, top);
            b += s & take;
        }
        let factor = Self::factor_bounded(top);
        // A total below 2^16 (b = 0) is a row without a key: mean 0.
        let keyless = !at_least(b, 1);
        Normalizer {
            factor: (factor & !keyless) as i32,
            shift: pick(keyless, 8, b + 8),
        }
    }

    /// `round(2^30 / top) = floor((2^30 + top/2) / top)` for `top < 2^16`,
    /// one quotient bit at a time with masks (16 steps whatever `top`): for
    /// `top ≥ 2^15` the quotient is below 2^16 and `top << 15` below 2^31.
    /// (For a smaller `top`, a keyless row's, the bits are discarded.)
    #[inline(always)]
    fn factor_bounded(top: u32) -> u32 {
        let mut rest = (1u32 << 30) + top / 2;
        let mut factor = 0u32;
        for bit in (0..16).rev() {
            let step = top << bit;
            let fits = at_least(rest, step);
            rest -= step & fits;
            factor |= (1 << bit) & fits;
        }
        factor
    }

    /// The mean of one weighted sum, in `Q22` value steps.
    #[inline(always)]
    pub(crate) fn mean(self, sum: i64) -> i32 {
        if BOUNDED {
            return self.mean_bounded(sum);
        }
        self.mean_branching(sum)
    }

    /// [`mean`](Self::mean) of the bounded-time build: the general form
    /// for every sum, the same value (the clamp never acts on a row's sum),
    /// without a branch on its size and with the shift by constants
    /// ([`branchless::shift_right`]).
    #[inline(always)]
    fn mean_bounded(self, sum: i64) -> i32 {
        let scaled = ((branchless::shift_right(sum, self.shift - 1) + 1) >> 1) as i32;
        branchless::clamp(scaled, -0xFFFF, 0xFFFF).wrapping_mul(self.factor)
    }

    /// [`mean`](Self::mean) of the default build.
    #[inline(always)]
    fn mean_branching(self, sum: i64) -> i32 {
        match i32::try_from(sum) {
            // (A shift past 31 needs a total of 2^40: 2^24 keys.)
            Ok(x) if self.shift <= 31 => self.mean_i32(x),
            // round(x / 2^s) = (floor(x / 2^(s−1)) + 1) >> 1: no addition
            // can overflow.
            _ => {
                let scaled = ((sum >> (self.shift - 1)) + 1) >> 1;
                scaled.clamp(-0xFFFF, 0xFFFF) as i32 * self.factor
            }
        }
    }

    /// [`mean`](Self::mean) of a sum that fits `i32`, in `i32`. A row's
    /// sum `A` has `|A| ≤ 255·W < 255·2^(b+16)`, so the rounded
    /// `A / 2^(b+8)` stays below `2^16` in size and the product with
    /// `F ≤ 2^15` below `2^31`.
    #[inline(always)]
    pub(crate) fn mean_i32(self, sum: i32) -> i32 {
        let scaled = ((sum >> (self.shift - 1)) + 1) >> 1;
        scaled.wrapping_mul(self.factor)
    }
}

/// Rows of one key/value head in a token-major `i8` buffer: row `j` is
/// `flat[j·stride..][..d]`, `flat` starting at the head's first value.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    flat: &'a [i8],
    stride: usize,
    d: usize,
}

impl<'a> Rows<'a> {
    /// The rows of the head whose first value is `flat[offset]`.
    #[inline(always)]
    pub(crate) fn new(flat: &'a [i8], stride: usize, offset: usize, d: usize) -> Self {
        Rows {
            flat: flat.get(offset..).unwrap_or(&[]),
            stride,
            d,
        }
    }

    /// Row `j` (empty past the buffer, which checked callers never reach).
    #[inline(always)]
    fn get(&self, j: usize) -> &'a [i8] {
        self.flat
            .get(j * self.stride..)
            .and_then(|r| r.get(..self.d))
            .unwrap_or(&[])
    }
}

/// `Σ a·b` over the shorter of the two rows, exact (each product is below
/// `2^15` in size and the sum of up to `MAX_HEAD_DIM` of them below `2^23`).
#[inline(always)]
fn dot(a: &[i16], b: &[i8]) -> i32 {
    a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
        s.wrapping_add(i32::from(x) * i32::from(y))
    })
}

/// Two rows' [`dot`]s with one pass over `a` (each `a` value loaded once
/// for both products).
#[inline(always)]
fn dot2(a: &[i16], b0: &[i8], b1: &[i8]) -> (i32, i32) {
    let n = a.len().min(b0.len()).min(b1.len());
    let (Some(a), Some(b0), Some(b1)) = (a.get(..n), b0.get(..n), b1.get(..n)) else {
        return (0, 0);
    };
    let (mut s0, mut s1) = (0i32, 0i32);
    for ((&x, &y0), &y1) in a.iter().zip(b0).zip(b1) {
        let x = i32::from(x);
        s0 = s0.wrapping_add(x * i32::from(y0));
        s1 = s1.wrapping_add(x * i32::from(y1));
    }
    (s0, s1)
}

/// The weight of key `j` in a row whose maximum score is `max`: its score
/// from `kept` if pass 1 kept it, computed again otherwise.
#[inline(always)]
fn key_weight(p: &Params, max: i32, kept: &[u32], qz: &[i16], keys: Rows<'_>, j: usize) -> u32 {
    let s = match kept.get(j) {
        Some(&s) => s as i32,
        None => dot(qz, keys.get(j)),
    };
    let difference = max.wrapping_sub(s) as u32;
    if BOUNDED {
        // The exponent of every key, at most the cutoff's, and a mask.
        let within = at_least(p.cutoff(), difference);
        let t = p.exponent_within_cutoff(pick(within, difference, p.cutoff()));
        return weight(t) & within;
    }
    if difference <= p.cutoff() {
        weight(p.exponent_within_cutoff(difference))
    } else {
        0
    }
}

/// One query row (`q`) of one head over the first `len` rows of `keys` and
/// `values`; calls `sink(dim, mean)` once per dimension with the mean value
/// in `Q22` value steps. `DM ≥ keys.d` sizes the scratch; `len = 0` gives
/// mean 0 everywhere. `max_len ≥ len` is what the caller knows of the
/// length (a constant for fixed shapes and caches): rows of at most
/// [`SHORT`] keys run in `i32` only.
#[inline(always)]
pub(crate) fn row<const DM: usize>(
    p: &Params,
    q: &[i8],
    rows: (Rows<'_>, Rows<'_>),
    len: usize,
    max_len: usize,
    sink: impl FnMut(usize, i32),
) {
    if max_len <= SHORT {
        row_keeping::<DM, STORED>(p, q, rows, len, max_len, sink);
    } else {
        row_keeping::<DM, STORED_LONG>(p, q, rows, len, max_len, sink);
    }
}

/// [`row`], keeping `KEPT` scores between the passes.
#[inline(always)]
fn row_keeping<const DM: usize, const KEPT: usize>(
    p: &Params,
    q: &[i8],
    (keys, values): (Rows<'_>, Rows<'_>),
    len: usize,
    max_len: usize,
    mut sink: impl FnMut(usize, i32),
) {
    let d = keys.d.min(DM);
    let zq = p.query().zero_point;
    let mut qz = [0i16; DM];
    for (w, &x) in qz.iter_mut().zip(q) {
        *w = (i32::from(x) - zq) as i16;
    }
    let qz = qz.get(..d).unwrap_or(&[]);

    // Pass 1: scores and their maximum. (`heapless::Vec`: no stores for
    // slots a short row never uses.)
    let mut kept = heapless::Vec::<u32, KEPT>::new();
    let mut max = i32::MIN;
    let larger = |a: i32, b: i32| {
        if BOUNDED {
            branchless::max(a, b)
        } else {
            a.max(b)
        }
    };
    let mut j = 0;
    // Two keys per load of the query where rows are short (cores with few
    // registers); one at a time on long rows (hosts, whose vector dot
    // products reduce better alone).
    while max_len <= SHORT && j + 1 < len {
        let (s0, s1) = dot2(qz, keys.get(j), keys.get(j + 1));
        let _ = kept.push(s0 as u32);
        let _ = kept.push(s1 as u32);
        max = larger(larger(max, s0), s1);
        j += 2;
    }
    while j < len {
        let s = dot(qz, keys.get(j));
        let _ = kept.push(s as u32);
        max = larger(max, s);
        j += 1;
    }

    // Pass 2: each key's weight, added to the total and, times its
    // values, to the value sums.
    let weight_of = |j: usize| key_weight(p, max, &kept, qz, keys, j);
    let mut total: u64 = 0;
    let zv = p.value().zero_point;
    if max_len <= SHORT {
        // |A| ≤ 255·W ≤ 255·2^16·SHORT < 2^31: all in i32. Two keys at a
        // time (each sum loaded and stored once per pair); an odd last key
        // is paired with itself at weight 0.
        let mut block = [0i32; DM];
        let mut j = 0;
        while j < len {
            let second = (j + 1).min(len - 1);
            let w0 = weight_of(j);
            let w1 = if second > j { weight_of(second) } else { 0 };
            total += u64::from(w0) + u64::from(w1);
            let (w0, w1) = (w0 as i32, w1 as i32);
            let rows = values.get(j).iter().zip(values.get(second));
            for (a, (&x0, &x1)) in block.iter_mut().zip(rows) {
                *a += w0 * i32::from(x0) + w1 * i32::from(x1);
            }
            j += 2;
        }
        let total = total as u32;
        let norm = Normalizer::new_u32(total);
        let offset = zv * total as i32;
        for (dim, &a) in block.iter().take(d).enumerate() {
            sink(dim, norm.mean_i32(a - offset));
        }
    } else {
        let mut totals = [0i64; DM];
        let mut start = 0;
        while start < len {
            let end = len.min(start + BLOCK);
            // One key at a time here: the block's sums stay in vector
            // registers on hosts, where long rows run.
            let mut block = [0i32; DM];
            for j in start..end {
                let w = weight_of(j);
                if w == 0 && !BOUNDED {
                    continue;
                }
                total += u64::from(w);
                let w = w as i32;
                for (a, &x) in block.iter_mut().zip(values.get(j)) {
                    *a += w * i32::from(x);
                }
            }
            for (t, &a) in totals.iter_mut().zip(&block) {
                *t += i64::from(a);
            }
            start = end;
        }
        let norm = Normalizer::new(total);
        let offset = i64::from(zv) * total as i64;
        for (dim, &t) in totals.iter().take(d).enumerate() {
            sink(dim, norm.mean(t - offset));
        }
    }
}

/// Every query row of a checked problem (token-major buffers, bottom-right
/// alignment); `sink(index, mean)` gets the flat output index of each
/// value.
#[inline(always)]
pub(crate) fn run<const DM: usize>(
    p: &Params,
    s: &Sizes,
    max_len: usize,
    (q, k, v): (&[i8], &[i8], &[i8]),
    mut sink: impl FnMut(usize, i32),
) {
    let d = s.head_dim.get();
    let offset = s.kv_len.saturating_sub(s.q_len);
    for i in 0..s.q_len {
        for h in 0..s.heads.get() {
            let at = (i * s.heads.get() + h) * d;
            let q_row = q.get(at..).and_then(|r| r.get(..d)).unwrap_or(&[]);
            let rows = |flat| Rows::new(flat, s.kv_token, (h / s.group) * d, d);
            let len = offset + i + 1;
            row::<DM>(p, q_row, (rows(k), rows(v)), len, max_len, |dim, mean| {
                sink(at + dim, mean);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `u32` normalizers (branching and bounded) are the general one,
    /// over every total a short row can have at its ends and on a dense
    /// grid.
    #[test]
    fn the_u32_normalizer_is_the_general_one() {
        let mut total = 1u32 << 16;
        while total <= 1 << 24 {
            for t in [total, total + 1, total - 1] {
                let a = Normalizer::new_branching(u64::from(t));
                for b in [Normalizer::new_u32(t), Normalizer::new_u32_bounded(t)] {
                    assert_eq!((a.factor, a.shift), (b.factor, b.shift), "{t}");
                }
            }
            total += 977;
        }
        let a = Normalizer::new_branching(0);
        for b in [Normalizer::new_u32(0), Normalizer::new_u32_bounded(0)] {
            assert_eq!((a.factor, a.shift), (b.factor, b.shift));
        }
    }

    /// The bounded normalizer and mean of long rows are the default ones:
    /// totals on a geometric grid up to 2^40 (2^24 keys) and every power
    /// of two to 2^63 with its neighbours, each with sums up to `255·W` in
    /// size (a row's bound).
    #[test]
    fn the_bounded_long_normalizer_is_the_default_one() {
        let mut totals = std::vec![0u64, 1, 0xFFFF, u64::MAX];
        for k in 0..64 {
            totals.extend([1u64 << k, (1u64 << k) + 1, (1u64 << k) - 1]);
        }
        let mut total = 1u64 << 16;
        while total < 1 << 40 {
            totals.extend([total, total + 1]);
            total += total / 97 + 1;
        }
        for &t in &totals {
            let a = Normalizer::new_branching(t);
            let b = Normalizer::new_bounded(t);
            assert_eq!((a.factor, a.shift), (b.factor, b.shift), "{t}");
            if t > 1 << 40 {
                continue;
            }
            let w = t as i64;
            let mut sums = std::vec![0i64, 1, -1, w, -w, 255 * w, -255 * w];
            for k in 1..64 {
                let part = 255 * w / (k * k + 3);
                sums.extend([part, -part, part + 1, -part - 1]);
            }
            for sum in sums {
                assert_eq!(a.mean_branching(sum), a.mean_bounded(sum), "{sum} / {t}");
            }
        }
    }
}
