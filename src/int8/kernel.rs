//! The integer kernel: one query row of one head over its visible keys, in
//! integer arithmetic only, and the driver that runs it over a problem.
//!
//! Per row, with `q' = q − zq` widened once to `i16`:
//! 1. every score `sⱼ = Σ_d q'_d·kⱼ_d` (`i32`, exact) and their maximum.
//!    The key zero point is left out: it adds `−zk·Σ_d q'_d` to every
//!    score of the row, which the softmax cancels (only differences to the
//!    maximum are used). The first [`STORED`] scores are kept; later ones
//!    are computed again in step 2.
//! 2. for each key, its weight `wⱼ = weight(exponent(max − sⱼ))` (skipped
//!    past the prepared cutoff, where it is 0), the sum `Σ wⱼ` and
//!    `Σ wⱼ·vⱼ_d` per dimension: `i32` sums over blocks of [`BLOCK`] keys
//!    (which cannot overflow: `|w·v| ≤ 2^23`), added into `i64` totals.
//! 3. `num_d = total_d − zv·Σ w`, then the mean in `Q16` value steps by
//!    one reciprocal per row, `round(2^46 / Σ w)`, and one rounding product
//!    per output; the caller's sink requantizes it.
//!
//! Integer sums are exact, so the blocking changes no bit; the order of
//! the steps is the specification the reference
//! ([`reference::int8`](crate::reference::int8)) writes out plainly.
//! The zero point of a key is left out of its score, of a value out of the
//! sums until step 3: both are exact rewritings.

use super::exp2::weight;
use super::params::Params;
use crate::check::Sizes;

/// The largest head dimension of the integer path: the size of the
/// runtime API's row scratch (`i16` queries, `i32` and `i64` sums).
pub const MAX_HEAD_DIM: usize = 256;

/// Scores of a row kept between the two passes (an `i32` each on the
/// stack); later keys' scores are computed twice.
pub(crate) const STORED: usize = 64;

/// Keys per `i32` block of the value sums: `256·2^16·128 = 2^31`.
const BLOCK: usize = 256;

/// Rows of one key/value head in a token-major `i8` buffer: row `j` is
/// `flat[j·stride + offset..][..d]`.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) flat: &'a [i8],
    pub(crate) stride: usize,
    pub(crate) offset: usize,
    pub(crate) d: usize,
}

impl<'a> Rows<'a> {
    /// Row `j` (empty past the buffer, which checked callers never reach).
    #[inline(always)]
    fn get(&self, j: usize) -> &'a [i8] {
        let at = j * self.stride + self.offset;
        self.flat
            .get(at..)
            .and_then(|r| r.get(..self.d))
            .unwrap_or(&[])
    }
}

/// `Σ a·b` over the shorter of the two rows, exact (each product is below
/// `2^16` and the sum of up to `MAX_HEAD_DIM` of them below `2^24`).
#[inline(always)]
fn dot(a: &[i16], b: &[i8]) -> i32 {
    a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
        s.wrapping_add(i32::from(x) * i32::from(y))
    })
}

/// One query row (`q`, `d` values) of one head over the first `len` rows of
/// `keys` and `values`; calls `sink(dim, mean)` once per dimension with the
/// mean in `Q16` value steps. `DM ≥ d` sizes the scratch; `len = 0` gives
/// mean 0 everywhere.
#[inline(always)]
pub(crate) fn row<const DM: usize>(
    p: &Params,
    q: &[i8],
    keys: Rows<'_>,
    values: Rows<'_>,
    len: usize,
    mut sink: impl FnMut(usize, i32),
) {
    let d = keys.d.min(DM);
    let zq = p.query().zero_point;
    let mut qz = [0i16; DM];
    for (w, &x) in qz.iter_mut().zip(q) {
        *w = (i32::from(x) - zq) as i16;
    }
    let qz = qz.get(..d).unwrap_or(&[]);

    let mut scores = [0i32; STORED];
    let mut max = i32::MIN;
    for j in 0..len {
        let s = dot(qz, keys.get(j));
        if let Some(slot) = scores.get_mut(j) {
            *slot = s;
        }
        max = max.max(s);
    }

    let cutoff = p.cutoff();
    let mut den: u64 = 0;
    let mut acc = [0i32; DM];
    let mut total = [0i64; DM];
    let flush = |acc: &mut [i32; DM], total: &mut [i64; DM]| {
        for (t, a) in total.iter_mut().zip(acc.iter_mut()) {
            *t += i64::from(*a);
            *a = 0;
        }
    };
    for j in 0..len {
        let s = match scores.get(j) {
            Some(&s) => s,
            None => dot(qz, keys.get(j)),
        };
        let diff = max.wrapping_sub(s) as u32;
        if diff <= cutoff {
            let w = weight(p.exponent(diff));
            den += u64::from(w);
            let w = w as i32;
            for (a, &x) in acc.iter_mut().zip(values.get(j)) {
                *a = a.wrapping_add(w * i32::from(x));
            }
        }
        if j % BLOCK == BLOCK - 1 {
            flush(&mut acc, &mut total);
        }
    }
    flush(&mut acc, &mut total);

    // den ≥ 2^16 when len > 0 (the maximum's weight), so recip ≤ 2^30.
    let recip = ((1u64 << 46) + den / 2).checked_div(den).unwrap_or(0);
    let zv = i64::from(p.value().zero_point);
    let den = den as i64;
    for (dim, &t) in total.iter().take(d).enumerate() {
        // |num| ≤ 255·den, so |num·recip| < 2^55.
        let num = t - zv * den;
        let mean = (num * recip as i64 + (1 << 29)) >> 30;
        sink(dim, mean as i32);
    }
}

/// Every query row of a checked problem (token-major buffers, bottom-right
/// alignment); `sink(index, mean)` gets the flat output index of each
/// value.
#[inline(always)]
pub(crate) fn run<const DM: usize>(
    p: &Params,
    s: &Sizes,
    (q, k, v): (&[i8], &[i8], &[i8]),
    mut sink: impl FnMut(usize, i32),
) {
    let d = s.head_dim.get();
    let offset = s.kv_len.saturating_sub(s.q_len);
    for i in 0..s.q_len {
        for h in 0..s.heads.get() {
            let at = (i * s.heads.get() + h) * d;
            let q_row = q.get(at..).and_then(|r| r.get(..d)).unwrap_or(&[]);
            let rows = |flat| Rows {
                flat,
                stride: s.kv_token,
                offset: (h / s.group) * d,
                d,
            };
            row::<DM>(p, q_row, rows(k), rows(v), offset + i + 1, |dim, mean| {
                sink(at + dim, mean);
            });
        }
    }
}
