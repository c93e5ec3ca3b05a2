//! A 16 × 16 transpose of `f32x16` rows for AVX-512 builds, by two-source
//! permutes (`[a, b].shuffle`, one `vpermt2ps` each): 64 shuffles for 256
//! values, where `wide`'s own 16-lane transpose moves them one at a time and
//! two 8 × 8 transposes of `f32x8` take 48 shuffles for 128.
//!
//! It swaps the off-diagonal blocks of every 2b × 2b block for b = 8, 4,
//! 2, 1: the rows `r` and `r + b` (`r & b = 0`) exchange the columns where
//! `c & b ≠ 0` of the first with the columns where `c & b = 0` of the
//! second, which after all four sizes has moved element `(r, c)` to
//! `(c, r)`. Only values move, so a transposed row holds the same bits.

use wide::{ShuffleExt, f32x16, u32x16};

/// The permute indices of one block size `b`: for the upper row (keeps its
/// columns `c & b = 0`, takes the lower row's `c − b` elsewhere) and for the
/// lower row (takes the upper row's `c + b` where `c & b = 0`, keeps its
/// own elsewhere). Indices 16.. select from the lower row.
const fn indices(b: usize) -> ([u32; 16], [u32; 16]) {
    let (mut upper, mut lower) = ([0u32; 16], [0u32; 16]);
    let mut c = 0;
    while c < 16 {
        if c & b == 0 {
            upper[c] = c as u32;
            lower[c] = (c + b) as u32;
        } else {
            upper[c] = (16 + c - b) as u32;
            lower[c] = (16 + c) as u32;
        }
        c += 1;
    }
    (upper, lower)
}

/// The indices for b = 8, 4, 2, 1.
const STAGES: [([u32; 16], [u32; 16]); 4] = [indices(8), indices(4), indices(2), indices(1)];

/// `rows` transposed: row `i` of the result holds element `i` of every
/// input row, in row order.
#[cfg(test)]
fn sixteen(rows: [f32x16; 16]) -> [f32x16; 16] {
    swap_blocks(rows, &STAGES)
}

/// The transpose of a matrix whose first step (b = 8) is already done:
/// rows `r` and `r + 8` (r < 8) hold `[M[r][..8], M[r + 8][..8]]` and
/// `[M[r][8..], M[r + 8][8..]]`, which loads can gather without a shuffle.
#[inline(always)]
pub(crate) fn after_halves(rows: [f32x16; 16]) -> [f32x16; 16] {
    let [_, rest @ ..] = STAGES;
    swap_blocks(rows, &rest)
}

/// The block swaps of `stages` (block sizes from `8 >> (4 − stages.len())`
/// down to 1).
#[inline(always)]
fn swap_blocks<const S: usize>(
    rows: [f32x16; 16],
    stages: &[([u32; 16], [u32; 16]); S],
) -> [f32x16; 16] {
    let mut m = rows;
    for (stage, (upper, lower)) in stages.iter().enumerate() {
        let b = 8 >> (stage + 4 - S);
        let (upper, lower) = (u32x16::from(*upper), u32x16::from(*lower));
        for r in 0..16 {
            if r & b == 0 {
                let pair = [m[r], m[r + b]];
                (m[r], m[r + b]) = (pair.shuffle(upper), pair.shuffle(lower));
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element lands at its mirrored place.
    #[test]
    fn sixteen_transposes() {
        let rows: [f32x16; 16] =
            core::array::from_fn(|r| f32x16::from(core::array::from_fn(|c| (r * 16 + c) as f32)));
        let cols = sixteen(rows);
        for (i, col) in cols.iter().enumerate() {
            for (r, &x) in col.to_array().iter().enumerate() {
                assert_eq!(x, (r * 16 + i) as f32, "element ({r}, {i})");
            }
        }
        // The same from the halves a load gathers.
        let halves: [f32x16; 16] = core::array::from_fn(|r| {
            let (top, c0) = (r % 8, 8 * (r / 8));
            f32x16::from(core::array::from_fn(|c| {
                let row = if c < 8 { top } else { top + 8 };
                (row * 16 + c0 + c % 8) as f32
            }))
        });
        assert_eq!(
            after_halves(halves).map(f32x16::to_array),
            cols.map(f32x16::to_array)
        );
    }
}
