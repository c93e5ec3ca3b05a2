//! `microattn::rope` against `reference::rope_rotate_f64`.
//!
//! The input is read again, from its start, as a RoPE problem: a base (one
//! of the usual ones, raw f64 bits, or a value in `(1, 1e7]`), a layout,
//! one of a few table shapes, a start position (often past the table) and
//! a run of up to 6 positions of 2 heads with raw f32 bits or bounded
//! values. Checked:
//!
//! 1. **No panic**; an invalid base is `InvalidRope` exactly when it is not
//!    finite or not greater than 1.
//! 2. A run reaching past the table is `PositionOutOfRange` (the first
//!    position past it), with every row unchanged.
//! 3. Each row of the run has the bits `Rope::rotate` gives it alone (any
//!    NaN matching any NaN: `same_bits`); position 0 keeps every bit.
//! 4. With bounded values, every rotated value is within the a-priori bound
//!    of the f64 rotation (`tests/rope.rs` derives it):
//!    `(|x| + |y|)·(e + γ₂·(1 + e) + 2⁻⁵⁰)`, `e = u/2 + 2⁻⁵⁰·p·θᵢ + 2⁻⁵²`.

use microattn::Error;
use microattn::reference::rope_rotate_f64;
use microattn::rope::{Layout, Rope};

use super::Bytes;
use super::same_bits::difference;

const U: f64 = 1.0 / 16_777_216.0;
const ANGLE_REL: f64 = 1.0 / 1_125_899_906_842_624.0;
const EVAL_ABS: f64 = 1.0 / 4_503_599_627_370_496.0;

pub fn check(data: &[u8]) {
    let mut bytes = Bytes(data);
    let base = match bytes.u8() % 5 {
        0 => 10_000.0,
        1 => 500_000.0,
        2 => f64::from_bits(u64::from(bytes.u32()) << 32 | u64::from(bytes.u32())),
        _ => 1.0 + f64::from(bytes.u32()) / f64::from(u32::MAX) * 1e7,
    };
    let layout = if bytes.u8() % 2 == 0 {
        Layout::HalfSplit
    } else {
        Layout::Interleaved
    };
    match bytes.u8() % 4 {
        0 => run::<64, 8>(&mut bytes, base, layout),
        1 => run::<300, 6>(&mut bytes, base, layout),
        2 => run::<40, 2>(&mut bytes, base, layout),
        _ => run::<128, 32>(&mut bytes, base, layout),
    }
}

fn run<const M: usize, const D: usize>(bytes: &mut Bytes<'_>, base: f64, layout: Layout) {
    let rope = match Rope::<M, D>::new(base, layout) {
        Ok(rope) => {
            assert!(base.is_finite() && base > 1.0, "base {base} accepted");
            Box::new(rope)
        }
        Err(e) => {
            assert!(!(base.is_finite() && base > 1.0), "base {base} rejected");
            assert!(matches!(e, Error::InvalidRope { .. }), "{e:?}");
            return;
        }
    };
    let n = usize::from(bytes.u8() % 7);
    let start = match bytes.u8() % 4 {
        0 => M.saturating_sub(n) + usize::from(bytes.u8() % 3),
        1 => usize::MAX - usize::from(bytes.u8() % 4),
        _ => usize::from(bytes.u8()) * usize::from(bytes.u8()) % M,
    };
    let bounded = bytes.u8() % 2 == 0;
    let mut rows = vec![[[0.0f32; D]; 2]; n];
    for x in rows.as_flattened_mut().as_flattened_mut() {
        let bits = bytes.u32();
        *x = if bounded {
            bits as i32 as f32 / 2_147_483_648.0 * 100.0
        } else {
            f32::from_bits(bits)
        };
    }
    let before = rows.clone();
    let got = rope.rotate_run(&mut rows, start);
    let bits = |r: &[[[f32; D]; 2]]| {
        r.as_flattened()
            .as_flattened()
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    };
    if n > 0 && start.checked_add(n).is_none_or(|end| end > M) {
        assert_eq!(
            got,
            Err(Error::PositionOutOfRange {
                position: start.max(M),
                max: M
            })
        );
        assert_eq!(bits(&rows), bits(&before), "rows written on error");
        return;
    }
    assert_eq!(got, Ok(()));
    for (t, (heads, old)) in rows.iter().zip(&before).enumerate() {
        let position = start + t;
        for (row, old) in heads.iter().zip(old) {
            let mut alone = *old;
            rope.rotate(&mut alone, position).expect("in range");
            if let Some(d) = difference(row, &alone) {
                panic!("run vs alone at {position}: {d}");
            }
            if position == 0 {
                assert_eq!(row.map(f32::to_bits), old.map(f32::to_bits), "position 0");
            }
            if bounded {
                within_bound(row, old, position, base, layout);
            }
        }
    }
}

fn within_bound<const D: usize>(
    got: &[f32; D],
    row: &[f32; D],
    p: usize,
    base: f64,
    layout: Layout,
) {
    let want = rope_rotate_f64(row, p, base, layout);
    let gamma2 = 2.0 * U / (1.0 - 2.0 * U);
    for i in 0..D / 2 {
        let (a, b) = match layout {
            Layout::HalfSplit => (i, i + D / 2),
            Layout::Interleaved => (2 * i, 2 * i + 1),
        };
        let angle = p as f64 * base.powf(-((2 * i) as f64) / D as f64);
        let e = U / 2.0 + ANGLE_REL * angle + EVAL_ABS;
        let mag = f64::from(row[a]).abs() + f64::from(row[b]).abs();
        let bound = mag * (e + gamma2 * (1.0 + e) + ANGLE_REL);
        for j in [a, b] {
            let err = (f64::from(got[j]) - want[j]).abs();
            assert!(
                err <= bound,
                "value {j} at position {p}, base {base}, {layout:?}: {} vs {}, off by {err:e} > {bound:e}",
                got[j],
                want[j]
            );
        }
    }
}
