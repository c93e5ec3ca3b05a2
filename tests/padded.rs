//! Padded batches: `causal_attention_padded` (and the reference's, which
//! shares its checks, not its split).
//!
//! - a padded query row (position `≥ valid_lens[b]`) is exactly `+0.0`, so a
//!   sequence of valid length 0 is all zeros: a row that sees no key gives 0;
//! - padding is never read: filled with NaN, ±∞ or any bits, the valid rows
//!   have the bits of `causal_attention_dyn` on the unpadded prefix;
//! - the accuracy contract holds for the whole padded output;
//! - every invalid call returns the right `Error` and leaves `out` untouched.

mod common;

use common::{bits, runner};
use microattn::reference::{self, check_contract};
use microattn::strategies::{Fill, HEAD_DIMS, HEAD_GROUPS, fixed_fill};
use microattn::{Buffer, Error, Shape, causal_attention_dyn, causal_attention_padded};
use proptest::prelude::*;

const REGRESSIONS: &str = "proptest-regressions/padded.txt";

/// A padded batch: `batch` sequences of `shape`, each valid up to its
/// length, the padding filled as `pad` says.
struct Batch {
    shape: Shape,
    valid: Vec<usize>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl Batch {
    fn new(shape: Shape, valid: Vec<usize>, seed: u64, pad: Fill) -> Batch {
        let (qs, kvs) = (shape.q_elems().unwrap(), shape.kv_elems().unwrap());
        let (qt, kvt) = (
            shape.heads * shape.head_dim,
            shape.kv_heads * shape.head_dim,
        );
        let offset = shape.kv_len - shape.q_len;
        let mut b = Batch {
            q: Vec::new(),
            k: Vec::new(),
            v: Vec::new(),
            shape,
            valid,
        };
        for (i, &len) in b.valid.iter().enumerate() {
            let s = seed.wrapping_mul(7).wrapping_add(i as u64 * 3);
            let rows = len.saturating_sub(offset).min(shape.q_len);
            let mut q = fixed_fill(s, qs, Fill::Uniform(2.0));
            let mut k = fixed_fill(s + 1, kvs, Fill::Uniform(2.0));
            let mut v = fixed_fill(s + 2, kvs, Fill::Uniform(2.0));
            let junk = |n| fixed_fill(s ^ 0x5eed, n, pad);
            q.splice(rows * qt.., junk(qs - rows * qt));
            k.splice(len * kvt.., junk(kvs - len * kvt));
            v.splice(len * kvt.., junk(kvs - len * kvt));
            b.q.extend(q);
            b.k.extend(k);
            b.v.extend(v);
        }
        b
    }

    fn run(&self, kernel: PaddedKernel) -> Vec<f32> {
        let mut out = vec![f32::NAN; self.q.len()];
        let batch = self.valid.len();
        kernel(
            &self.shape,
            batch,
            &self.valid,
            &self.q,
            &self.k,
            &self.v,
            &mut out,
        )
        .expect("valid batch rejected");
        out
    }
}

type PaddedKernel =
    fn(&Shape, usize, &[usize], &[f32], &[f32], &[f32], &mut [f32]) -> Result<(), Error>;

/// The padded batch's valid rows against `causal_attention_dyn` on each
/// unpadded prefix (bit for bit), and its padded rows against `+0.0`.
fn check_against_prefixes(b: &Batch, out: &[f32]) -> Result<(), String> {
    let s = &b.shape;
    let (qs, kvs) = (s.q_elems().unwrap(), s.kv_elems().unwrap());
    let (qt, kvt) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let offset = s.kv_len - s.q_len;
    for (i, &len) in b.valid.iter().enumerate() {
        let rows = len.saturating_sub(offset).min(s.q_len);
        let seq = &out[i * qs..(i + 1) * qs];
        let (valid, pad) = seq.split_at(rows * qt);
        if let Some(p) = pad.iter().position(|x| x.to_bits() != 0) {
            return Err(format!(
                "sequence {i}: padded value {p} is {:?}, not +0.0",
                pad[p]
            ));
        }
        let prefix = Shape::new(rows, len, s.heads, s.kv_heads, s.head_dim).with_scale(s.scale);
        let mut alone = vec![f32::NAN; rows * qt];
        causal_attention_dyn(
            &prefix,
            &b.q[i * qs..][..rows * qt],
            &b.k[i * kvs..][..len * kvt],
            &b.v[i * kvs..][..len * kvt],
            &mut alone,
        )
        .map_err(|e| format!("prefix rejected: {e}"))?;
        if bits(valid) != bits(&alone) {
            return Err(format!(
                "sequence {i} (valid {len}) differs from its unpadded run"
            ));
        }
    }
    Ok(())
}

/// Padding of every kind: NaN, ±∞, any bits.
const PADS: [Fill; 3] = [
    Fill::Uniform(f32::NAN),
    Fill::Uniform(f32::INFINITY),
    Fill::AnyBits,
];

#[test]
#[cfg_attr(
    miri,
    ignore = "300 batches: the random-batch, bottom-right and zero-row tests cover the same paths under Miri"
)]
fn padding_with_nan_or_inf_never_changes_a_valid_row() {
    for (h, kvh) in HEAD_GROUPS {
        for d in [1, 7, 8, 9, 17] {
            for (q_len, kv_len) in [(9, 9), (17, 17), (3, 11), (1, 16)] {
                let shape = Shape::new(q_len, kv_len, h, kvh, d);
                let valid = vec![kv_len, 0, kv_len / 2, 1, kv_len - 1, kv_len - q_len];
                for pad in PADS {
                    let b = Batch::new(shape, valid.clone(), (q_len * 31 + d) as u64, pad);
                    let out = b.run(causal_attention_padded);
                    check_against_prefixes(&b, &out).unwrap_or_else(|e| panic!("{e}: {shape:?}"));
                    // And the same bits whatever the padding holds.
                    let clean = Batch::new(
                        shape,
                        valid.clone(),
                        (q_len * 31 + d) as u64,
                        Fill::Uniform(0.0),
                    );
                    assert_eq!(
                        bits(&out),
                        bits(&clean.run(causal_attention_padded)),
                        "{shape:?}"
                    );
                }
            }
        }
    }
}

/// The example of the API docs, by hand: sequence 1 has one valid position.
#[test]
fn padded_rows_are_exactly_zero_and_valid_length_zero_is_all_zero() {
    let shape = Shape::new(4, 4, 2, 1, 3);
    let b = Batch::new(shape, vec![0, 2, 4], 5, Fill::Uniform(f32::NAN));
    let out = b.run(causal_attention_padded);
    let qs = shape.q_elems().unwrap();
    assert!(out[..qs].iter().all(|x| x.to_bits() == 0), "valid length 0");
    assert!(
        out[qs + 2 * 6..2 * qs].iter().all(|x| x.to_bits() == 0),
        "rows 2, 3 of sequence 1"
    );
    assert!(
        out[qs..qs + 2 * 6]
            .iter()
            .all(|x| x.is_finite() && *x != 0.0)
    );
    assert!(out[2 * qs..].iter().all(|x| x.is_finite()));
    // The reference agrees on which rows are zero, and within the contract.
    let naive = b.run(reference::causal_attention_padded);
    let mut ref64 = vec![0.0; out.len()];
    reference::causal_attention_padded_f64(&shape, 3, &b.valid, &b.q, &b.k, &b.v, &mut ref64)
        .unwrap();
    check_contract(&out, &naive, &ref64).unwrap();
}

/// Queries aligned bottom-right (`q_len < kv_len`): a sequence shorter than
/// the query's position has padding queries only.
#[test]
fn bottom_right_queries_past_the_valid_length_are_padding() {
    let shape = Shape::new(2, 6, 1, 1, 4);
    // Queries sit at positions 4 and 5.
    let b = Batch::new(shape, vec![6, 5, 4, 3], 9, Fill::Uniform(f32::NAN));
    let out = b.run(causal_attention_padded);
    let row = |s: usize, i: usize| &out[(s * 2 + i) * 4..][..4];
    assert!(row(0, 0).iter().chain(row(0, 1)).all(|x| x.is_finite()));
    assert!(row(1, 0).iter().all(|x| x.is_finite()));
    assert!(
        row(1, 1)
            .iter()
            .chain(row(2, 0))
            .chain(row(2, 1))
            .all(|x| x.to_bits() == 0)
    );
    assert!(row(3, 0).iter().chain(row(3, 1)).all(|x| x.to_bits() == 0));
    check_against_prefixes(&b, &out).unwrap();
}

#[test]
fn contract_and_prefix_bits_on_random_batches() {
    let strategy = (
        prop::sample::select(HEAD_GROUPS.to_vec()),
        // Under Miri (thousands of times slower) small head dims and lengths.
        prop::sample::select(if cfg!(miri) {
            vec![1, 9]
        } else {
            HEAD_DIMS.to_vec()
        }),
        1usize..if cfg!(miri) { 10 } else { 20 },
        0usize..4,
        prop::collection::vec(0usize..=100, 0..4),
        any::<u64>(),
    );
    runner(64, REGRESSIONS)
        .run(
            &strategy,
            |((h, kvh), d, kv_len, extra, fractions, seed)| {
                let q_len = kv_len.saturating_sub(extra).max(1).min(kv_len);
                let shape = Shape::new(q_len, kv_len, h, kvh, d);
                let valid: Vec<usize> = fractions.iter().map(|f| f * kv_len / 100).collect();
                let b = Batch::new(shape, valid.clone(), seed, Fill::AnyBits);
                let out = b.run(causal_attention_padded);
                check_against_prefixes(&b, &out).map_err(TestCaseError::fail)?;
                let naive = b.run(reference::causal_attention_padded);
                let mut ref64 = vec![0.0; out.len()];
                reference::causal_attention_padded_f64(
                    &shape,
                    valid.len(),
                    &valid,
                    &b.q,
                    &b.k,
                    &b.v,
                    &mut ref64,
                )
                .unwrap();
                // The padding is any bits but never read: only finite valid values.
                check_contract(&out, &naive, &ref64).map_err(|e| TestCaseError::fail(e.to_string()))
            },
        )
        .unwrap();
}

/// An invalid call to the padded API and the error it must return.
struct BadCall {
    shape: Shape,
    batch: usize,
    valid: Vec<usize>,
    /// Lengths of the `q`, `k`, `v` and `out` buffers.
    q: usize,
    k: usize,
    v: usize,
    out: usize,
    expected: Error,
}

/// Every invalid call: the right error, `out` untouched, the reference the same.
#[test]
fn every_error_leaves_out_untouched() {
    let s = Shape::new(3, 4, 2, 1, 2);
    let (qs, kvs) = (12, 8);
    let q = vec![1.0; 2 * qs];
    let kv = vec![1.0; 2 * kvs];
    let cases: Vec<BadCall> = vec![
        BadCall {
            shape: Shape::new(3, 4, 0, 1, 2),
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::ZeroDimension { field: "heads" },
        },
        BadCall {
            shape: Shape::new(3, 4, 2, 1, 0),
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::ZeroDimension { field: "head_dim" },
        },
        BadCall {
            shape: Shape::new(3, 4, 3, 2, 2),
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::HeadsNotMultiple {
                heads: 3,
                kv_heads: 2,
            },
        },
        BadCall {
            shape: Shape::new(5, 4, 2, 1, 2),
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::QueryLongerThanKeys {
                q_len: 5,
                kv_len: 4,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs - 1,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::LengthMismatch {
                buffer: Buffer::Query,
                expected: 2 * qs,
                actual: 2 * qs - 1,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::LengthMismatch {
                buffer: Buffer::Key,
                expected: 2 * kvs,
                actual: kvs,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs - 1,
            out: 2 * qs,
            expected: Error::LengthMismatch {
                buffer: Buffer::Value,
                expected: 2 * kvs,
                actual: 2 * kvs - 1,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: qs,
            expected: Error::LengthMismatch {
                buffer: Buffer::Output,
                expected: 2 * qs,
                actual: qs,
            },
        },
        BadCall {
            shape: s.with_scale(f32::NAN),
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::NonFiniteScale,
        },
        BadCall {
            shape: s.with_scale(f32::NEG_INFINITY),
            batch: 2,
            valid: vec![1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::NonFiniteScale,
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::ValidLensLength {
                expected: 2,
                actual: 1,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![1, 1, 1],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::ValidLensLength {
                expected: 2,
                actual: 3,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![4, 5],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::ValidLenTooLong {
                sequence: 1,
                valid_len: 5,
                kv_len: 4,
            },
        },
        BadCall {
            shape: s,
            batch: 2,
            valid: vec![usize::MAX, 0],
            q: 2 * qs,
            k: 2 * kvs,
            v: 2 * kvs,
            out: 2 * qs,
            expected: Error::ValidLenTooLong {
                sequence: 0,
                valid_len: usize::MAX,
                kv_len: 4,
            },
        },
        BadCall {
            shape: Shape::new(1, usize::MAX / 2, 1, 1, 4),
            batch: 1,
            valid: vec![0],
            q: 0,
            k: 0,
            v: 0,
            out: 0,
            expected: Error::SizeOverflow,
        },
        BadCall {
            shape: Shape::new(1, 1, 1, 1, 2),
            batch: usize::MAX,
            valid: vec![],
            q: 0,
            k: 0,
            v: 0,
            out: 0,
            expected: Error::SizeOverflow,
        },
    ];
    let poison = f32::from_bits(0x7fa5_5a5a);
    for call in cases {
        let BadCall {
            shape,
            batch,
            valid,
            q: ql,
            k: kl,
            v: vl,
            out: ol,
            expected,
        } = call;
        let fast_out = {
            let mut out = vec![poison; ol];
            let r = causal_attention_padded(
                &shape,
                batch,
                &valid,
                &q[..ql],
                &kv[..kl],
                &kv[..vl],
                &mut out,
            );
            assert_eq!(r, Err(expected), "{shape:?} batch {batch} valid {valid:?}");
            out
        };
        assert!(
            fast_out.iter().all(|x| x.to_bits() == poison.to_bits()),
            "out touched: {expected}"
        );
        let mut out = vec![poison; ol];
        let r = reference::causal_attention_padded(
            &shape,
            batch,
            &valid,
            &q[..ql],
            &kv[..kl],
            &kv[..vl],
            &mut out,
        );
        assert_eq!(r, Err(expected));
        assert!(out.iter().all(|x| x.to_bits() == poison.to_bits()));
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn empty_batch_and_empty_queries_are_valid() {
    let s = Shape::new(3, 3, 1, 1, 2);
    assert_eq!(
        causal_attention_padded(&s, 0, &[], &[], &[], &[], &mut []),
        Ok(())
    );
    let s0 = Shape::new(0, 3, 1, 1, 2);
    let kv = [1.0; 12];
    assert_eq!(
        causal_attention_padded(&s0, 2, &[3, 1], &[], &kv, &kv, &mut []),
        Ok(())
    );
}

/// The check above can fail: a kernel that reads padding (runs every
/// sequence on its full length) is caught on NaN padding.
#[test]
fn reading_padding_is_caught() {
    fn full_length(
        s: &Shape,
        batch: usize,
        valid: &[usize],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (qs, kvs) = (s.q_elems().unwrap(), s.kv_elems().unwrap());
        for b in 0..batch {
            let _ = valid;
            causal_attention_dyn(
                s,
                &q[b * qs..][..qs],
                &k[b * kvs..][..kvs],
                &v[b * kvs..][..kvs],
                &mut out[b * qs..][..qs],
            )?;
        }
        Ok(())
    }
    let b = Batch::new(
        Shape::new(5, 5, 1, 1, 3),
        vec![5, 2],
        1,
        Fill::Uniform(f32::NAN),
    );
    assert!(check_against_prefixes(&b, &b.run(full_length)).is_err());
    assert!(check_against_prefixes(&b, &b.run(causal_attention_padded)).is_ok());
}
