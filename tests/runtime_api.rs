//! The runtime-length API (`causal_attention_dyn`, and the reference's
//! `causal_attention_dyn` / `causal_attention_f64`, which share its checks):
//!
//! - every invalid shape or buffer returns the right `Error` variant, with
//!   the right fields, without panicking, and leaves `out` untouched;
//! - `q_len < kv_len` (bottom-right alignment: query `i` sees keys
//!   `0..=kv_len − q_len + i`) meets the accuracy contract, and gives, bit
//!   for bit, the last `q_len` rows of a self-attention run over the whole
//!   sequence (each query's work depends only on the keys it sees);
//! - `q_len = 0` is valid and writes nothing.

mod common;

use common::{FAST, NAIVE, bits, contract, run, same_bits};
use microattn::strategies::{
    Case, Fill, HEAD_DIMS, HEAD_GROUPS, Magnitude, cross_case, cross_shape, fixed_case, fixed_fill,
    seeded_case,
};
use microattn::{Buffer, Error, Shape, reference};
use proptest::prelude::*;

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/runtime_api.txt";

/// What each of the three runtime entry points returned, after checking
/// that none of them touched its output buffer.
fn all_entry_points(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out_len: usize,
) -> [Result<(), Error>; 3] {
    // Distinct poison bits, so that any write shows.
    let poison = f32::from_bits(0x7fa5_5a5a);
    let mut out = vec![poison; out_len];
    let fast = microattn::causal_attention_dyn(s, q, k, v, &mut out);
    let naive = reference::causal_attention_dyn(s, q, k, v, &mut out);
    let mut out64 = vec![f64::from_bits(0x7ff5_5a5a_5a5a_5a5a); out_len];
    let oracle = reference::causal_attention_f64(s, q, k, v, &mut out64);
    if fast.is_err() || naive.is_err() {
        assert!(
            out.iter().all(|x| x.to_bits() == poison.to_bits()),
            "out written on error {fast:?} / {naive:?}"
        );
    }
    if oracle.is_err() {
        assert!(
            out64.iter().all(|x| x.to_bits() == 0x7ff5_5a5a_5a5a_5a5a),
            "f64 out written on error {oracle:?}"
        );
    }
    [fast, naive, oracle]
}

/// All three entry points reject `(s, q, k, v, out_len)` with `expected`.
#[track_caller]
fn rejects(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out_len: usize, expected: Error) {
    for (name, got) in ["fast", "reference", "f64 oracle"]
        .iter()
        .zip(all_entry_points(s, q, k, v, out_len))
    {
        assert_eq!(got, Err(expected), "{name} on {s:?}");
    }
}

/// Buffers of exactly the right lengths for `s` (which must not overflow).
fn buffers(s: &Shape) -> (Vec<f32>, Vec<f32>, Vec<f32>, usize) {
    let c = fixed_case(*s, 1.0, 11);
    let out_len = c.q.len();
    (c.q, c.k, c.v, out_len)
}

#[test]
fn zero_dimensions_are_rejected() {
    for (field, s) in [
        ("heads", Shape::new(2, 2, 0, 1, 4)),
        ("kv_heads", Shape::new(2, 2, 2, 0, 4)),
        // The default scale 1/√0 is inf: the zero is still what is reported.
        ("head_dim", Shape::new(2, 2, 2, 1, 0)),
        ("head_dim", Shape::new(2, 2, 2, 1, 0).with_scale(1.0)),
    ] {
        rejects(&s, &[], &[], &[], 0, Error::ZeroDimension { field });
        // Also with non-empty buffers of whatever length.
        rejects(
            &s,
            &[0.5; 8],
            &[0.5; 4],
            &[0.5; 4],
            8,
            Error::ZeroDimension { field },
        );
    }
}

#[test]
fn heads_not_a_multiple_are_rejected() {
    for (heads, kv_heads) in [(3, 2), (1, 2), (5, 4), (7, 3)] {
        let s = Shape::new(2, 2, heads, kv_heads, 4);
        let (q, k, v, n) = (
            vec![0.0; 2 * heads * 4],
            vec![0.0; 2 * kv_heads * 4],
            vec![0.0; 2 * kv_heads * 4],
            2 * heads * 4,
        );
        rejects(
            &s,
            &q,
            &k,
            &v,
            n,
            Error::HeadsNotMultiple { heads, kv_heads },
        );
    }
}

#[test]
fn more_queries_than_keys_are_rejected() {
    for (q_len, kv_len) in [(1, 0), (3, 2), (65, 64), (usize::MAX, 0)] {
        let s = Shape::new(q_len, kv_len, 1, 1, 4);
        rejects(
            &s,
            &[],
            &[],
            &[],
            0,
            Error::QueryLongerThanKeys { q_len, kv_len },
        );
    }
}

#[test]
fn non_finite_scales_are_rejected() {
    for scale in [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0xffc0_0001),
    ] {
        let s = Shape::new(3, 3, 2, 1, 4).with_scale(scale);
        let (q, k, v, n) = buffers(&Shape::new(3, 3, 2, 1, 4));
        rejects(&s, &q, &k, &v, n, Error::NonFiniteScale);
    }
    // Finite extremes are accepted (NaN or not in the output is another matter).
    for scale in [0.0, -0.0, f32::MAX, f32::MIN_POSITIVE, -1.0] {
        let s = Shape::new(3, 3, 2, 1, 4).with_scale(scale);
        let (q, k, v, n) = buffers(&s);
        for got in all_entry_points(&s, &q, &k, &v, n) {
            assert_eq!(got, Ok(()), "scale {scale:e}");
        }
    }
}

#[test]
fn overflowing_sizes_are_rejected() {
    let big = usize::MAX;
    for s in [
        // heads · head_dim overflows
        Shape::new(1, 1, big, 1, 2),
        Shape::new(0, 0, 2, 1, big),
        // kv_heads · head_dim overflows (heads = kv_heads)
        Shape::new(1, 1, big / 2 + 1, big / 2 + 1, 2),
        // q_len · heads · head_dim overflows
        Shape::new(big, big, 2, 1, 1),
        Shape::new(big / 4, big / 4, 1, 1, 8),
        // kv_len · kv_heads · head_dim overflows, q side fits
        Shape::new(1, big, 1, 1, 2),
        Shape::new(big, big, 4, 4, 4),
    ] {
        rejects(&s, &[], &[], &[], 0, Error::SizeOverflow);
        rejects(&s, &[1.0; 4], &[1.0; 4], &[1.0; 4], 4, Error::SizeOverflow);
    }
}

/// Lengths that fit in `usize` but no buffer can have: a length mismatch,
/// reported with the implied length.
#[test]
fn impossible_lengths_are_length_mismatches() {
    let big = usize::MAX;
    let s = Shape::new(big, big, 1, 1, 1);
    rejects(
        &s,
        &[],
        &[],
        &[],
        0,
        Error::LengthMismatch {
            buffer: Buffer::Query,
            expected: big,
            actual: 0,
        },
    );
    let s = Shape::new(1, big, 1, 1, 1);
    rejects(
        &s,
        &[0.0],
        &[],
        &[],
        1,
        Error::LengthMismatch {
            buffer: Buffer::Key,
            expected: big,
            actual: 0,
        },
    );
}

/// Each buffer too short or too long (by one, by a whole token, empty,
/// doubled), one at a time, the others right.
#[test]
fn every_length_mismatch_is_reported() {
    for s in [
        Shape::new(5, 5, 2, 1, 3),
        Shape::new(2, 7, 4, 2, 9),
        Shape::new(1, 1, 1, 1, 1),
        Shape::new(9, 9, 8, 1, 17),
    ] {
        let (q, k, v, out_len) = buffers(&s);
        let token = s.heads * s.head_dim;
        let kv_token = s.kv_heads * s.head_dim;
        for which in [Buffer::Query, Buffer::Key, Buffer::Value, Buffer::Output] {
            let right = match which {
                Buffer::Query | Buffer::Output => q.len(),
                _ => k.len(),
            };
            let step = match which {
                Buffer::Query | Buffer::Output => token,
                _ => kv_token,
            };
            let mut wrong = vec![right + 1, right + step, 0, 2 * right];
            if right >= 1 {
                wrong.push(right - 1);
            }
            if right >= step {
                wrong.push(right - step);
            }
            for len in wrong.into_iter().filter(|&l| l != right) {
                let resized = vec![0.25f32; len];
                let (mut qq, mut kk, mut vv, mut oo) = (&q[..], &k[..], &v[..], out_len);
                match which {
                    Buffer::Query => qq = &resized,
                    Buffer::Key => kk = &resized,
                    Buffer::Value => vv = &resized,
                    Buffer::Output => oo = len,
                    _ => unreachable!(),
                }
                let expected = Error::LengthMismatch {
                    buffer: which,
                    expected: right,
                    actual: len,
                };
                rejects(&s, qq, kk, vv, oo, expected);
            }
        }
    }
}

proptest! {
    #![proptest_config(common::config(64, REGRESSIONS))]

    /// A random valid shape, one buffer resized at random: the mismatch is
    /// reported for that buffer with both lengths, nothing is written.
    #[test]
    fn random_length_mismatches_are_reported(
        (s, which, delta) in (cross_shape(), 0..4usize, prop_oneof![-70isize..=-1, 1isize..=70])
    ) {
        let (q, k, v, out_len) = buffers(&s);
        let right = if which == 0 || which == 3 { q.len() } else { k.len() };
        let len = right.saturating_add_signed(delta);
        prop_assume!(len != right);
        let resized = vec![0.5f32; len];
        let (buffer, got) = match which {
            0 => (Buffer::Query, all_entry_points(&s, &resized, &k, &v, out_len)),
            1 => (Buffer::Key, all_entry_points(&s, &q, &resized, &v, out_len)),
            2 => (Buffer::Value, all_entry_points(&s, &q, &k, &resized, out_len)),
            _ => (Buffer::Output, all_entry_points(&s, &q, &k, &v, len)),
        };
        for r in got {
            prop_assert_eq!(r, Err(Error::LengthMismatch { buffer, expected: right, actual: len }));
        }
    }

    /// Fewer queries than keys meets the accuracy contract.
    #[test]
    fn fewer_queries_than_keys_meet_the_contract(
        c in Magnitude::any().prop_flat_map(cross_case)
    ) {
        common::prop(contract(FAST, NAIVE, &c))?;
    }

    /// Fewer queries than keys is the tail of self-attention over the whole
    /// sequence, bit for bit, for the fast kernel and for the reference.
    #[test]
    fn fewer_queries_than_keys_are_the_tail_of_self_attention(
        (full, q_len) in (cross_shape(), Magnitude::any())
            .prop_flat_map(|(s, m)| {
                let whole = Shape::new(s.kv_len, s.kv_len, s.heads, s.kv_heads, s.head_dim);
                (seeded_case(whole, Fill::Edgy(m.bound(s.head_dim))), Just(s.q_len))
            })
    ) {
        let s = full.shape;
        let skip = (s.kv_len - q_len) * s.heads * s.head_dim;
        let tail = Case {
            shape: Shape::new(q_len, s.kv_len, s.heads, s.kv_heads, s.head_dim),
            q: full.q[skip..].to_vec(),
            ..full.clone()
        };
        for (name, kernel) in [("fast", FAST), ("reference", NAIVE)] {
            let whole = run(kernel, &full);
            common::prop(same_bits(
                &format!("{name}: q_len {q_len} of {:?}", s),
                &run(kernel, &tail),
                &whole[skip..],
            ))?;
        }
    }
}

/// The alignment is bottom-right, checked by hand: with one query, it sees
/// every key; with keys all equal but the last, only the last query sees it.
#[test]
fn queries_are_aligned_to_the_last_keys() {
    // 1 query over 3 keys, q = 0: uniform weights over all 3 value rows.
    let s = Shape::new(1, 3, 1, 1, 1);
    let mut out = [f32::NAN];
    microattn::causal_attention_dyn(&s, &[0.0], &[1.0, 2.0, 3.0], &[3.0, 6.0, 9.0], &mut out)
        .unwrap();
    assert!((out[0] - 6.0).abs() <= 4.0 * f32::EPSILON * 6.0, "{out:?}");
    // 2 queries over 3 keys: query 0 sits at position 1 and sees keys 0, 1.
    let s = Shape::new(2, 3, 1, 1, 1);
    let mut out = [f32::NAN; 2];
    microattn::causal_attention_dyn(&s, &[0.0, 0.0], &[0.0; 3], &[2.0, 4.0, 1000.0], &mut out)
        .unwrap();
    assert_eq!(out[0], 3.0);
    assert!(
        (out[1] - 1006.0 / 3.0).abs() <= 4.0 * f32::EPSILON * 400.0,
        "{out:?}"
    );
}

/// `q_len = 0` is valid for any number of keys and writes nothing.
#[test]
fn no_queries_is_valid() {
    for kv_len in [0, 1, 9, 64] {
        for &d in &HEAD_DIMS[..4] {
            for (h, kvh) in HEAD_GROUPS {
                let s = Shape::new(0, kv_len, h, kvh, d);
                let kv = fixed_fill(1, kv_len * kvh * d, Fill::Uniform(1.0));
                for got in all_entry_points(&s, &[], &kv, &kv, 0) {
                    assert_eq!(got, Ok(()), "{s:?}");
                }
            }
        }
    }
}

/// The checks above can fail: a write on error is caught.
#[test]
fn untouched_check_catches_a_write() {
    let s = Shape::new(2, 2, 1, 1, 4);
    let (q, k, v, n) = buffers(&s);
    // A valid call does write, so the same poison comparison would flag it.
    let mut out = vec![f32::from_bits(0x7fa5_5a5a); n];
    FAST(&s, &q, &k, &v, &mut out).unwrap();
    assert_ne!(bits(&out), vec![0x7fa5_5a5a; n]);
}
