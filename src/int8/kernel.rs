//! The integer kernel: one query row of one head over its visible keys, in
//! integer arithmetic only, and the driver that runs it over a problem.
//!
//! Per row of `L` keys, with `q' = q − zq` widened once to `i16`:
//! 1. every score `sⱼ = Σ_d q'_d·kⱼ_d` (`i32`, exact) and their maximum
//!    `m`. The key zero point is left out: it adds `−zk·Σ_d q'_d` to every
//!    score of the row, which the softmax cancels (only `m − sⱼ` is used).
//! 2. every weight `wⱼ = weight(exponent(m − sⱼ))` in `0..=2^16` (0 without
//!    computing it past the prepared cutoff) and their sum `W`.
//! 3. [`Normalizer`]: `W`'s leading 16 bits, one division, and each weight
//!    becomes `uⱼ ≈ wⱼ·2^23/W` by one multiply and one rounding shift, so
//!    that `Σ uⱼ ≈ 2^23`.
//! 4. `Σⱼ uⱼ·vⱼ_d` per dimension (`i32`: at most about `2^23·128`), minus
//!    `zv·Σ uⱼ`, is the mean value in `Q23` steps; the prepared
//!    requantization turns it into an output.
//!
//! The first [`STORED`] scores (then weights) of a row stay on the stack
//! between the passes; later keys' scores and weights are computed again,
//! bit for bit the same. The reference
//! ([`reference::int8`](crate::reference::int8)) writes the same
//! arithmetic out plainly.

use super::exp2::weight;
use super::params::Params;
use crate::check::Sizes;

/// The largest head dimension of the integer path: the size of the
/// runtime API's row scratch, and what keeps a score below `2^31`.
pub const MAX_HEAD_DIM: usize = 256;

/// Scores (then weights) of a row kept between the passes, an `i32` or
/// `u32` each on the stack.
pub(crate) const STORED: usize = 64;

/// Turns a row's weights into `Q23` fractions of their sum: `W`'s leading
/// bits `W16 = W >> b` in `[2^15, 2^16)`, `F = round(2^30 / W16)`, and
/// `u = round(w·F / 2^(b + 7))` (halves up), so `Σ u ≈ 2^23`. Every step
/// fits `u32`: `w·F ≤ 2^16·2^15`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Normalizer {
    factor: u32,
    shift: u32,
}

impl Normalizer {
    /// The normalizer of a row whose weights sum to `total` (at least
    /// `2^16` for a row with a key: its maximum's weight is `2^16`); a zero
    /// total makes every fraction 0.
    #[inline(always)]
    pub(crate) fn new(total: u64) -> Self {
        let bits = 64 - total.leading_zeros();
        let b = bits.saturating_sub(16);
        let top = (total >> b) as u32;
        match ((1u32 << 30) + top / 2).checked_div(top) {
            Some(factor) if b >= 1 => Normalizer {
                factor,
                shift: b + 7,
            },
            _ => Normalizer {
                factor: 0,
                shift: 8,
            },
        }
    }

    /// The `Q23` fraction of one weight.
    #[inline(always)]
    pub(crate) fn apply(self, w: u32) -> u32 {
        // shift ≥ 8; w·factor ≤ 2^31 and the half < 2^31.
        let half = 1u32.checked_shl(self.shift - 1).unwrap_or(0);
        (w * self.factor + half)
            .checked_shr(self.shift)
            .unwrap_or(0)
    }
}

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
/// `2^15` in size and the sum of up to `MAX_HEAD_DIM` of them below `2^23`).
#[inline(always)]
fn dot(a: &[i16], b: &[i8]) -> i32 {
    a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
        s.wrapping_add(i32::from(x) * i32::from(y))
    })
}

/// One query row (`q`) of one head over the first `len` rows of `keys` and
/// `values`; calls `sink(dim, mean)` once per dimension with the mean value
/// in `Q23` value steps. `DM ≥ keys.d` sizes the scratch; `len = 0` gives
/// mean 0 everywhere.
#[inline(always)]
pub(crate) fn row<const DM: usize>(
    p: &Params,
    q: &[i8],
    keys: Rows<'_>,
    values: Rows<'_>,
    len: usize,
    mut sink: impl FnMut(usize, i64),
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
    let mut kept = heapless::Vec::<u32, STORED>::new();
    let mut max = i32::MIN;
    for j in 0..len {
        let s = dot(qz, keys.get(j));
        let _ = kept.push(s as u32);
        max = max.max(s);
    }

    // Pass 2: weights (kept in place of the scores) and their sum.
    let cutoff = p.cutoff();
    let weigh = |s: i32| {
        let difference = max.wrapping_sub(s) as u32;
        if difference <= cutoff {
            weight(p.exponent_within_cutoff(difference))
        } else {
            0
        }
    };
    let mut total: u64 = 0;
    for slot in kept.iter_mut() {
        *slot = weigh(*slot as i32);
        total += u64::from(*slot);
    }
    for j in kept.len()..len {
        total += u64::from(weigh(dot(qz, keys.get(j))));
    }

    // The kept weights become their Q23 fractions, in place.
    let norm = Normalizer::new(total);
    let mut sum_u: i32 = 0;
    for w in kept.iter_mut() {
        *w = norm.apply(*w);
        sum_u += *w as i32;
    }

    // Pass 3: fractions times values. Kept keys four dimensions at a time,
    // with the four sums in registers; then the keys past them.
    let mut acc = [0i32; DM];
    let first = values
        .flat
        .get(values.offset..)
        .unwrap_or(&[])
        .chunks(values.stride.max(1));
    let mut groups = acc.get_mut(..d).unwrap_or(&mut []).chunks_exact_mut(4);
    let mut dim = 0;
    for group in groups.by_ref() {
        let mut a = [0i32; 4];
        for (&u, row) in kept.iter().zip(first.clone()) {
            if let Some(x) = row.get(dim..dim + 4) {
                let u = u as i32;
                a[0] += u * i32::from(x[0]);
                a[1] += u * i32::from(x[1]);
                a[2] += u * i32::from(x[2]);
                a[3] += u * i32::from(x[3]);
            }
        }
        group.copy_from_slice(&a);
        dim += 4;
    }
    for a in groups.into_remainder() {
        for (&u, row) in kept.iter().zip(first.clone()) {
            *a += u as i32 * row.get(dim).map_or(0, |&x| i32::from(x));
        }
        dim += 1;
    }
    for j in kept.len()..len {
        let w = weigh(dot(qz, keys.get(j)));
        if w == 0 {
            continue;
        }
        let u = norm.apply(w) as i32;
        sum_u += u;
        for (a, &x) in acc.iter_mut().zip(values.get(j)) {
            *a += u * i32::from(x);
        }
    }

    let offset = i64::from(p.value().zero_point) * i64::from(sum_u);
    for (dim, &a) in acc.iter().take(d).enumerate() {
        sink(dim, i64::from(a) - offset);
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
    mut sink: impl FnMut(usize, i64),
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
