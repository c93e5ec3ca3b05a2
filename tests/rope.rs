//! RoPE tables and rotations (`microattn::rope`) against the f64 reference
//! (`reference::rope_cos_sin_f64`, `reference::rope_rotate_f64`):
//!
//! - every table entry within `½·ulp + 2⁻⁵⁰·p·θᵢ + 2⁻⁵²` of `libm`'s f64
//!   value (`entry_bound`), a table built by the compiler equal bit for bit
//!   to one built at run time;
//! - every rotated value within the a-priori bound of the f64 rotation
//!   (`rotation_bound`), and every pair's norm kept within it, both layouts;
//! - position 0 keeps every bit (−0.0, ±∞ and NaN too); a run of positions
//!   gives each position the bits it gets alone; a position past the table
//!   is `PositionOutOfRange` with nothing written; invalid bases are
//!   `InvalidRope`;
//! - rotated queries and keys through a `KvCache`: decode steps equal one
//!   prefill bit for bit.
//!
//! Each check is a function returning `Err` on a violation, and
//! `the_checks_reject_broken_rotations` shows each one failing on a
//! deliberately broken rotation.

mod common;

use common::{Verdict, prop};
use microattn::reference::{rope_cos_sin_f64, rope_rotate_f64};
use microattn::rope::{Layout, Rope};
use microattn::{Error, KvCache};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/rope.txt";

/// The unit roundoff of `f32`, `2⁻²⁴`.
const U: f64 = 1.0 / 16_777_216.0;

/// What two f64 computations of the angle `p·θ` (the table's own `ln`,
/// `exp` and product; `libm`'s `pow` and product) may differ by, relative
/// to the angle: a few f64 ULP each.
const ANGLE_REL: f64 = 1.0 / 1_125_899_906_842_624.0; // 2⁻⁵⁰

/// What the two f64 `sin`/`cos` evaluations may differ by, absolute.
const EVAL_ABS: f64 = 1.0 / 4_503_599_627_370_496.0; // 2⁻⁵²

/// What rows hold before a call that must not write them: finite, so that
/// a rotation would change it.
const POISON: f32 = 3.25;

/// The spacing of `f32` values in the binade of `|x|` (`2⁻¹⁴⁹` below the
/// normal range).
fn ulp32(x: f64) -> f64 {
    let x = x.abs();
    if x < f64::from(f32::MIN_POSITIVE) {
        return f64::from(f32::from_bits(1));
    }
    let exponent = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    2f64.powi(exponent - 23)
}

/// How many f32 values apart `a` and `b` are (across 0 too).
fn ulps(a: f32, b: f32) -> u32 {
    let ordered = |x: f32| {
        let bits = x.to_bits() as i32;
        if bits < 0 { i32::MIN - bits } else { bits }
    };
    ordered(a).abs_diff(ordered(b))
}

/// `position·θ_pair`, for the bounds (any f64 evaluation will do).
fn angle(base: f64, d: usize, position: usize, pair: usize) -> f64 {
    position as f64 * base.powf(-((2 * pair) as f64) / d as f64)
}

/// How far a table entry may be from `libm`'s f64 value `exact` of the
/// same angle: half an f32 ULP (the one rounding to f32), plus what the
/// two f64 angles and evaluations may differ by.
fn entry_bound(entry: f32, exact: f64, angle: f64) -> f64 {
    0.5 * ulp32(exact.abs().max(f64::from(entry).abs())) + ANGLE_REL * angle + EVAL_ABS
}

/// The a-priori bound of a rotated value against the f64 rotation of the
/// same pair `(x, y)`: each table entry is within `e = u/2 + 2⁻⁵⁰·angle +
/// 2⁻⁵²` of its f64 value (a value of magnitude at most 1 rounds to `f32`
/// within `u/2`), which moves `x·c − y·s` by at most `(|x| + |y|)·e`; the
/// two products and the sum round within `γ₂·(|x|·|c| + |y|·|s|)`, `|c|,
/// |s| ≤ 1`; the f64 rotation's own rounding is below `2⁻⁵⁰·(|x| + |y|)`.
fn rotation_bound(x: f32, y: f32, angle: f64) -> f64 {
    let gamma2 = 2.0 * U / (1.0 - 2.0 * U);
    let e = U / 2.0 + ANGLE_REL * angle + EVAL_ABS;
    (f64::from(x).abs() + f64::from(y).abs()) * (e + gamma2 * (1.0 + e) + ANGLE_REL)
}

/// The dimensions of pair `i` in a row of `d` values.
fn pair(layout: Layout, d: usize, i: usize) -> (usize, usize) {
    match layout {
        Layout::HalfSplit => (i, i + d / 2),
        Layout::Interleaved => (2 * i, 2 * i + 1),
    }
}

/// A rotation of one row at a position, as `Rope::rotate` (or a broken one).
type Rotate<const M: usize, const D: usize> =
    fn(&Rope<M, D>, &mut [f32; D], usize) -> Result<(), Error>;

/// A rotation of a run of positions, as `Rope::rotate_run` (or a broken one).
type RotateRun<const M: usize, const D: usize, const H: usize> =
    fn(&Rope<M, D>, &mut [[[f32; D]; H]], usize) -> Result<(), Error>;

fn rotate<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    row: &mut [f32; D],
    position: usize,
) -> Result<(), Error> {
    rope.rotate(row, position)
}

fn rotate_run<const M: usize, const D: usize, const H: usize>(
    rope: &Rope<M, D>,
    rows: &mut [[[f32; D]; H]],
    start: usize,
) -> Result<(), Error> {
    rope.rotate_run(rows, start)
}

/// Every entry of `rope` within [`entry_bound`]; returns the largest
/// distance in f32 ULP from the f32 rounding of `libm`'s value and the
/// largest fraction an entry's error beyond half an ULP takes of the
/// angle's and evaluation's allowance (`2⁻⁵⁰·p·θᵢ + 2⁻⁵²`).
fn check_entries<const M: usize, const D: usize>(rope: &Rope<M, D>) -> Result<(u32, f64), String> {
    let (mut worst, mut used) = (0, 0.0f64);
    for p in 0..M {
        for i in 0..D / 2 {
            let (c, s) = rope.cos_sin(p, i).ok_or("entry missing")?;
            let (c64, s64) = rope_cos_sin_f64(rope.base(), D, p, i);
            let a = angle(rope.base(), D, p, i);
            for (what, got, exact) in [("cos", c, c64), ("sin", s, s64)] {
                let err = (f64::from(got) - exact).abs();
                if err > entry_bound(got, exact, a) {
                    return Err(format!(
                        "{what}(p {p}, pair {i}) of Rope<{M}, {D}> base {}: {got:e} vs {exact:e}, off by {err:e} > {:e}",
                        rope.base(),
                        entry_bound(got, exact, a)
                    ));
                }
                worst = worst.max(ulps(got, exact as f32));
                let half_ulp = 0.5 * ulp32(exact.abs().max(f64::from(got).abs()));
                used = used.max((err - half_ulp) / (ANGLE_REL * a + EVAL_ABS));
            }
        }
    }
    Ok((worst, used))
}

/// `rotate` of `row` at `position` within [`rotation_bound`] of the f64
/// rotation, value by value.
fn check_against_reference<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    rotate: Rotate<M, D>,
    row: &[f32; D],
    position: usize,
) -> Verdict {
    let mut got = *row;
    rotate(rope, &mut got, position).map_err(|e| e.to_string())?;
    let want = rope_rotate_f64(row, position, rope.base(), rope.layout());
    for i in 0..D / 2 {
        let (a, b) = pair(rope.layout(), D, i);
        let bound = rotation_bound(row[a], row[b], angle(rope.base(), D, position, i));
        for j in [a, b] {
            let err = (f64::from(got[j]) - want[j]).abs();
            if err.is_nan() || err > bound {
                return Err(format!(
                    "value {j} at position {position}: {} vs {}, off by {err:e} > {bound:e} ({:?}, base {})",
                    got[j],
                    want[j],
                    rope.layout(),
                    rope.base()
                ));
            }
        }
    }
    Ok(())
}

/// Every pair's norm kept: `|‖rotated‖ − ‖(x, y)‖| ≤ √2·rotation_bound`
/// (the f64 rotation keeps the norm to f64 rounding; each value of the
/// rotated pair is within the bound of it).
fn check_norms<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    rotate: Rotate<M, D>,
    row: &[f32; D],
    position: usize,
) -> Verdict {
    let mut got = *row;
    rotate(rope, &mut got, position).map_err(|e| e.to_string())?;
    for i in 0..D / 2 {
        let (a, b) = pair(rope.layout(), D, i);
        let norm = |x: f32, y: f32| f64::from(x).hypot(f64::from(y));
        let (before, after) = (norm(row[a], row[b]), norm(got[a], got[b]));
        let bound = 2f64.sqrt()
            * rotation_bound(row[a], row[b], angle(rope.base(), D, position, i))
            + before * ANGLE_REL;
        let drift = (after - before).abs();
        if drift.is_nan() || drift > bound {
            return Err(format!(
                "pair {i} at position {position}: norm {before} became {after} (bound {bound:e})"
            ));
        }
    }
    Ok(())
}

/// Position 0 keeps every bit of the row.
fn check_identity<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    rotate: Rotate<M, D>,
    row: &[f32; D],
) -> Verdict {
    let mut got = *row;
    rotate(rope, &mut got, 0).map_err(|e| e.to_string())?;
    if got.map(f32::to_bits) != row.map(f32::to_bits) {
        return Err(format!("position 0 changed {row:?} into {got:?}"));
    }
    Ok(())
}

/// A run from `start` gives each position the bits `Rope::rotate` gives
/// each of its rows alone.
fn check_run<const M: usize, const D: usize, const H: usize>(
    rope: &Rope<M, D>,
    run: RotateRun<M, D, H>,
    rows: &[[[f32; D]; H]],
    start: usize,
) -> Verdict {
    let mut got = rows.to_vec();
    run(rope, &mut got, start).map_err(|e| e.to_string())?;
    for (t, (heads, want)) in got.iter().zip(rows).enumerate() {
        for (h, (row, want)) in heads.iter().zip(want).enumerate() {
            let mut alone = *want;
            rope.rotate(&mut alone, start + t)
                .map_err(|e| e.to_string())?;
            if row.map(f32::to_bits) != alone.map(f32::to_bits) {
                return Err(format!(
                    "run from {start}: position {} head {h} differs from its rotation alone",
                    start + t
                ));
            }
        }
    }
    Ok(())
}

/// A run reaching past the table is `PositionOutOfRange` (the first
/// position past it) and writes nothing. The rows are poisoned with a
/// finite value, not NaN: a rotation in place turns a NaN into a NaN of
/// the same bits, so NaN would not show a write.
fn check_out_of_range<const M: usize, const D: usize, const H: usize>(
    rope: &Rope<M, D>,
    run: RotateRun<M, D, H>,
    n: usize,
    start: usize,
) -> Verdict {
    let poison = POISON;
    let mut rows = vec![[[poison; D]; H]; n];
    let got = run(rope, &mut rows, start);
    let want = Err(Error::PositionOutOfRange {
        position: start.max(M),
        max: M,
    });
    if got != want {
        return Err(format!("run of {n} from {start}: {got:?}, want {want:?}"));
    }
    if rows
        .as_flattened()
        .as_flattened()
        .iter()
        .any(|x| x.to_bits() != poison.to_bits())
    {
        return Err(format!("run of {n} from {start}: wrote rows on {want:?}"));
    }
    Ok(())
}

/// A table of `M` positions, head dimension `D`, on a thread of its own
/// with a stack the table fits (a debug build copies it a few times).
fn table<const M: usize, const D: usize>(base: f64, layout: Layout) -> Box<Rope<M, D>> {
    match std::thread::Builder::new()
        .stack_size(8 * size_of::<Rope<M, D>>() + (1 << 20))
        .spawn(move || build::<M, D>(base, layout))
    {
        Ok(thread) => thread.join().expect("table built"),
        // No threads (wasm32-wasip1): on this thread's stack, which holds
        // the tables of every test but the large sweep's.
        Err(_) => build::<M, D>(base, layout),
    }
}

/// The table, built in a frame of its own: inlined into [`table`], its
/// stack would be reserved on the calling test's thread even when the
/// spawned thread builds it.
#[inline(never)]
fn build<const M: usize, const D: usize>(base: f64, layout: Layout) -> Box<Rope<M, D>> {
    Box::new(Rope::<M, D>::new(base, layout).expect("valid base"))
}

/// The table entries within the derived bound, and (measured: at most 1
/// ULP, and at most 0.69 of the angle allowance, on these tables) within
/// one f32 ULP of `libm`'s value rounded to f32, on tables whose angles
/// reach 65,535 radians
/// (`θ₀ = 1`) and frequencies of every size, for the usual bases, a base
/// close to 1 (every frequency near 1: large angles everywhere) and a
/// non-power-of-two head dimension.
#[test]
#[cfg_attr(
    target_family = "wasm",
    ignore = "tables of 1 and 2 MB: wasm32-wasip1 has no threads and a 1 MB stack; the f64 arithmetic is IEEE's on every target"
)]
fn every_table_entry_is_within_its_bound() {
    let results = [
        check_entries(&*table::<65_536, 8>(10_000.0, Layout::HalfSplit)),
        check_entries(&*table::<65_536, 8>(500_000.0, Layout::HalfSplit)),
        check_entries(&*table::<65_536, 8>(1.5, Layout::HalfSplit)),
        check_entries(&*table::<4_096, 64>(10_000.0, Layout::HalfSplit)),
        check_entries(&*table::<4_096, 64>(1_000_000.0, Layout::HalfSplit)),
        check_entries(&*table::<4_096, 64>(1.000_01, Layout::HalfSplit)),
        check_entries(&*table::<1_000, 6>(3.0, Layout::Interleaved)),
        check_entries(&*table::<8, 4>(f64::MAX, Layout::HalfSplit)),
    ];
    for r in results {
        let (ulps, used) = r.unwrap();
        println!("{ulps} ULP from libm's value rounded to f32; {used:.3} of the angle allowance");
        assert!(ulps <= 1, "{ulps} ULP");
    }
}

/// With small angles (here below 255 radians) the angle term is below half
/// an f32 ULP of every entry: each entry is the f32 rounding of `libm`'s
/// value or one ULP from it.
#[test]
fn small_tables_are_within_one_ulp() {
    for base in [10_000.0, 500_000.0, 2.0] {
        let (worst, _) = check_entries(&*table::<256, 16>(base, Layout::HalfSplit)).unwrap();
        assert!(worst <= 1, "{worst} ULP at base {base}");
    }
}

/// A table built by the compiler is the one built at run time, bit for bit.
#[test]
fn compile_time_table_equals_run_time_table() {
    static BUILT: Rope<512, 16> = match Rope::new(10_000.0, Layout::Interleaved) {
        Ok(rope) => rope,
        Err(_) => panic!("invalid RoPE base"),
    };
    let now = table::<512, 16>(core::hint::black_box(10_000.0), Layout::Interleaved);
    for p in 0..512 {
        for i in 0..8 {
            let (a, b) = (BUILT.cos_sin(p, i).unwrap(), now.cos_sin(p, i).unwrap());
            assert_eq!(
                (a.0.to_bits(), a.1.to_bits()),
                (b.0.to_bits(), b.1.to_bits()),
                "entry (p {p}, pair {i})"
            );
        }
    }
}

/// Bases: the usual ones, one near 1, and any in between.
fn base() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(10_000.0),
        Just(500_000.0),
        Just(1_000_000.0),
        Just(1.0001),
        1.001f64..1e7,
    ]
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::HalfSplit), Just(Layout::Interleaved)]
}

/// A row of `D` values of magnitude up to 1, 100 or 1e20, some exactly 0.
fn row<const D: usize>() -> impl Strategy<Value = [f32; D]> {
    prop_oneof![Just(1.0f32), Just(100.0), Just(1e20)].prop_flat_map(|m| {
        proptest::collection::vec(prop_oneof![4 => -m..m, 1 => Just(0.0f32)], D)
            .prop_map(|v| <[f32; D]>::try_from(v).expect("D values"))
    })
}

/// The rotation promises on one shape: against the reference, norms,
/// position 0, runs of 1..=5 positions of 3 heads.
fn promises<const M: usize, const D: usize>(
    base: f64,
    layout: Layout,
    rows: &[[f32; D]],
    position: usize,
) -> Verdict {
    let rope = table::<M, D>(base, layout);
    let position = position % M;
    for row in rows {
        check_against_reference(&rope, rotate, row, position)?;
        check_norms(&rope, rotate, row, position)?;
        check_identity(&rope, rotate, row)?;
    }
    let run: Vec<[[f32; D]; 3]> = rows.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let start = position.min(M - run.len());
    check_run(&rope, rotate_run::<M, D, 3>, &run, start)?;
    check_out_of_range(&rope, rotate_run::<M, D, 3>, run.len(), M - run.len() + 1)
}

proptest! {
    #![proptest_config(common::config(64, REGRESSIONS))]

    #[test]
    fn rotations_keep_the_promises_d8(
        base in base(), layout in layout(),
        rows in proptest::collection::vec(row::<8>(), 3..=15), position in any::<usize>(),
    ) {
        prop(promises::<4_096, 8>(base, layout, &rows, position))?;
    }

    #[test]
    fn rotations_keep_the_promises_d6(
        base in base(), layout in layout(),
        rows in proptest::collection::vec(row::<6>(), 3..=15), position in any::<usize>(),
    ) {
        prop(promises::<100, 6>(base, layout, &rows, position))?;
    }

    #[test]
    fn rotations_keep_the_promises_d64(
        base in base(), layout in layout(),
        rows in proptest::collection::vec(row::<64>(), 3..=15), position in any::<usize>(),
    ) {
        prop(promises::<512, 64>(base, layout, &rows, position))?;
    }

    #[test]
    fn rotations_keep_the_promises_d2(
        base in base(), layout in layout(),
        rows in proptest::collection::vec(row::<2>(), 3..=15), position in any::<usize>(),
    ) {
        prop(promises::<32_768, 2>(base, layout, &rows, position))?;
    }
}

/// Position 0 keeps the bits of hostile values too: −0.0 (which
/// `x·1 − y·0` would turn into +0.0), ±∞ and NaN (which `∞·0` would
/// make).
#[test]
fn position_zero_keeps_every_bit() {
    let row = [
        -0.0f32,
        -1.0,
        f32::INFINITY,
        2.0,
        f32::NAN,
        -0.0,
        1e-45,
        f32::NEG_INFINITY,
    ];
    for layout in [Layout::HalfSplit, Layout::Interleaved] {
        let rope = table::<4, 8>(10_000.0, layout);
        check_identity(&rope, rotate, &row).unwrap();
        let mut heads = [row; 3];
        rope.rotate_heads(&mut heads, 0).unwrap();
        assert_eq!(
            heads.map(|r| r.map(f32::to_bits)),
            [row.map(f32::to_bits); 3]
        );
    }
}

/// Every way past the table: a single position at `MAX_POS`, runs that
/// start inside and end outside, runs that start far outside (even at
/// `usize::MAX`); an empty run is fine anywhere.
#[test]
fn positions_past_the_table_write_nothing() {
    let rope = table::<16, 4>(10_000.0, Layout::HalfSplit);
    for (n, start) in [
        (1, 16),
        (1, 17),
        (2, 15),
        (16, 1),
        (17, 0),
        (3, usize::MAX),
        (1, usize::MAX),
    ] {
        check_out_of_range(&rope, rotate_run::<16, 4, 2>, n, start).unwrap();
    }
    let poison = POISON;
    let mut row = [poison; 4];
    assert_eq!(
        rope.rotate(&mut row, 16),
        Err(Error::PositionOutOfRange {
            position: 16,
            max: 16
        })
    );
    let mut heads = [[poison; 4]; 3];
    assert_eq!(
        rope.rotate_heads(&mut heads, usize::MAX),
        Err(Error::PositionOutOfRange {
            position: usize::MAX,
            max: 16
        })
    );
    assert!(
        row.iter()
            .chain(heads.as_flattened())
            .all(|x| x.to_bits() == poison.to_bits())
    );
    assert_eq!(rope.rotate_run::<2>(&mut [], usize::MAX), Ok(()));
    assert_eq!(rope.cos_sin(16, 0), None);
    assert_eq!(rope.cos_sin(0, 2), None);
}

/// A base that is not finite and greater than 1 is `InvalidRope`.
#[test]
fn invalid_bases_are_rejected() {
    for base in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        0.5,
        0.0,
        -0.0,
        -10_000.0,
        1e-310,
    ] {
        let got = Rope::<4, 2>::new(base, Layout::HalfSplit);
        assert!(
            matches!(got, Err(Error::InvalidRope { .. })),
            "base {base}: {got:?}"
        );
    }
    for base in [1.0 + f64::EPSILON, 2.0, f64::MAX] {
        assert!(
            Rope::<4, 2>::new(base, Layout::HalfSplit).is_ok(),
            "base {base}"
        );
    }
}

/// Queries and keys rotated at their positions, then through a `KvCache`:
/// decode steps give the bits of one prefill (and of `causal_multi_head`
/// on the rotated inputs), since each position's rotation depends on
/// nothing else.
#[test]
fn decode_steps_equal_one_prefill_after_rotation() {
    const N: usize = 21;
    let rope = table::<64, 8>(10_000.0, Layout::HalfSplit);
    let value = |t: usize, h: usize, d: usize, salt: usize| {
        ((t * 31 + h * 7 + d * 3 + salt) % 17) as f32 / 8.0 - 1.0
    };
    let q: Vec<[[f32; 8]; 2]> = (0..N)
        .map(|t| core::array::from_fn(|h| core::array::from_fn(|d| value(t, h, d, 1))))
        .collect();
    let k: Vec<[[f32; 8]; 1]> = (0..N)
        .map(|t| core::array::from_fn(|h| core::array::from_fn(|d| value(t, h, d, 2))))
        .collect();
    let v: Vec<[[f32; 8]; 1]> = (0..N)
        .map(|t| core::array::from_fn(|h| core::array::from_fn(|d| value(t, h, d, 3))))
        .collect();

    // One prefill of the whole run, rotated as a run.
    let (mut qr, mut kr) = (q.clone(), k.clone());
    rope.rotate_run(&mut qr, 0).unwrap();
    rope.rotate_run(&mut kr, 0).unwrap();
    let mut whole = KvCache::<64, 1, 8>::new();
    let mut out_whole = vec![[[0.0f32; 8]; 2]; N];
    whole.prefill(&qr, &kr, &v, &mut out_whole, None).unwrap();

    // Decode steps, each position rotated at the cache's length.
    let mut steps = KvCache::<64, 1, 8>::new();
    let mut out_steps = vec![[[0.0f32; 8]; 2]; N];
    for t in 0..N {
        let (mut qt, mut kt) = (q[t], k[t]);
        rope.rotate_heads(&mut qt, steps.len()).unwrap();
        rope.rotate_heads(&mut kt, steps.len()).unwrap();
        steps
            .step(&qt, &kt, &v[t], &mut out_steps[t], None, None)
            .unwrap();
    }
    let bits = |x: &[[[f32; 8]; 2]]| {
        x.as_flattened()
            .as_flattened()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&out_steps), bits(&out_whole));
    assert_eq!(steps.keys(), whole.keys());

    let mut fixed = Box::new([[[0.0f32; 8]; 2]; N]);
    let as_array = |x: &[[[f32; 8]; 2]]| <[[[f32; 8]; 2]; N]>::try_from(x).unwrap();
    let kr: [[[f32; 8]; 1]; N] = kr.try_into().unwrap();
    let v: [[[f32; 8]; 1]; N] = v.try_into().unwrap();
    microattn::causal_multi_head(&as_array(&qr), &kr, &v, &mut fixed);
    assert_eq!(bits(&out_steps), bits(&fixed[..]));
}

/// Rotation by the opposite angle: `(x·c + y·s, −x·s + y·c)`.
fn opposite<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    row: &mut [f32; D],
    position: usize,
) -> Result<(), Error> {
    turned_by(rope, row, position, |x, y, c, s| {
        (x * c + y * s, y * c - x * s)
    })
}

/// The right rotation, then each pair stretched by `1 + 2⁻¹⁶`.
fn stretched<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    row: &mut [f32; D],
    position: usize,
) -> Result<(), Error> {
    rope.rotate(row, position)?;
    row.iter_mut().for_each(|x| *x *= 1.0 + 1.0 / 65_536.0);
    Ok(())
}

/// The rotation computed at position 0 too (`x·1 − y·0`), not skipped.
fn computed_at_zero<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    row: &mut [f32; D],
    position: usize,
) -> Result<(), Error> {
    turned_by(rope, row, position, |x, y, c, s| {
        (x * c - y * s, x * s + y * c)
    })
}

/// `row` turned pair by pair by `f(x, y, cos, sin)` with the table's
/// entries, position 0 included.
fn turned_by<const M: usize, const D: usize>(
    rope: &Rope<M, D>,
    row: &mut [f32; D],
    position: usize,
    f: impl Fn(f32, f32, f32, f32) -> (f32, f32),
) -> Result<(), Error> {
    for i in 0..D / 2 {
        let (c, s) = rope
            .cos_sin(position, i)
            .ok_or(Error::PositionOutOfRange { position, max: M })?;
        let (a, b) = pair(rope.layout(), D, i);
        (row[a], row[b]) = f(row[a], row[b], c, s);
    }
    Ok(())
}

/// A run whose rows are each rotated one position too far.
fn shifted_run<const M: usize, const D: usize, const H: usize>(
    rope: &Rope<M, D>,
    rows: &mut [[[f32; D]; H]],
    start: usize,
) -> Result<(), Error> {
    for (t, heads) in rows.iter_mut().enumerate() {
        rope.rotate_heads(heads, (start + t + 1).min(M - 1))?;
    }
    Ok(())
}

/// A run that rotates the positions inside the table before it reports
/// the one outside.
fn eager_run<const M: usize, const D: usize, const H: usize>(
    rope: &Rope<M, D>,
    rows: &mut [[[f32; D]; H]],
    start: usize,
) -> Result<(), Error> {
    for (t, heads) in rows.iter_mut().enumerate() {
        rope.rotate_heads(heads, start.saturating_add(t))?;
    }
    Ok(())
}

/// Each check accepts the real rotation and rejects a broken one.
#[test]
fn the_checks_reject_broken_rotations() {
    let rope = table::<64, 8>(10_000.0, Layout::Interleaved);
    let row = [0.5f32, -0.25, 1.0, 0.75, -1.0, 0.125, 0.3, -0.6];
    check_against_reference(&rope, rotate, &row, 5).unwrap();
    check_against_reference(&rope, opposite, &row, 5).unwrap_err();
    check_norms(&rope, rotate, &row, 5).unwrap();
    check_norms(&rope, stretched, &row, 5).unwrap_err();
    let signed = [-0.0f32, -1.0, 1.0, 2.0, -0.0, -0.5, 0.0, 1.0];
    check_identity(&rope, rotate, &signed).unwrap();
    check_identity(&rope, computed_at_zero, &signed).unwrap_err();
    let run = [[row; 2]; 4];
    check_run(&rope, rotate_run::<64, 8, 2>, &run, 3).unwrap();
    check_run(&rope, shifted_run::<64, 8, 2>, &run, 3).unwrap_err();
    check_out_of_range(&rope, rotate_run::<64, 8, 2>, 4, 62).unwrap();
    check_out_of_range(&rope, eager_run::<64, 8, 2>, 4, 62).unwrap_err();
}
