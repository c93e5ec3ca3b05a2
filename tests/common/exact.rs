//! The exact properties (bit for bit) as checks returning a verdict.

use super::*;

/// `case` with everything at positions `≥ cut` replaced by `future`'s values
/// (queries by position `offset + i`, keys and values by position).
pub fn replace_future(case: &Case, future: &Case, cut: usize) -> Case {
    let s = case.shape;
    let mut out = case.clone();
    let q_tok = s.heads * s.head_dim;
    let kv_tok = s.kv_heads * s.head_dim;
    let q_from = cut.saturating_sub(offset(&s)).min(s.q_len) * q_tok;
    let kv_from = cut.min(s.kv_len) * kv_tok;
    out.q[q_from..].copy_from_slice(&future.q[q_from..]);
    out.k[kv_from..].copy_from_slice(&future.k[kv_from..]);
    out.v[kv_from..].copy_from_slice(&future.v[kv_from..]);
    out
}

/// Causality: replacing everything at positions `≥ cut` (by anything, NaN
/// included) leaves every query at a position `< cut` unchanged, bit for bit.
pub fn causality(kernel: Kernel, case: &Case, future: &Case, cut: usize) -> Verdict {
    let s = case.shape;
    let before = run(kernel, case);
    let after = run(kernel, &replace_future(case, future, cut));
    let kept = cut.saturating_sub(offset(&s)).min(s.q_len) * s.heads * s.head_dim;
    same_bits(
        &format!("causality, positions < {cut}, {s:?}"),
        &before[..kept],
        &after[..kept],
    )
}

/// Position 0 sees only itself: for self-attention, query 0 of head `h` is
/// `v[0]` of its key/value head, bit for bit.
pub fn first_row_is_v0(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    assert_eq!(s.q_len, s.kv_len, "test bug: self-attention only");
    if s.q_len == 0 {
        return Ok(());
    }
    let out = run(kernel, case);
    for h in 0..s.heads {
        let g = h / group(&s);
        same_bits(
            &format!("row 0, head {h} vs v[0] of kv head {g}, {s:?}"),
            &out[row(0, h, s.heads, s.head_dim)],
            &case.v[row(0, g, s.kv_heads, s.head_dim)],
        )?;
    }
    Ok(())
}

/// Which head's inputs a head-independence check replaces.
#[derive(Clone, Copy, Debug)]
pub enum HeadChange {
    /// `q` of this query head, at every position.
    Query(usize),
    /// `k` and `v` of this key/value head, at every position.
    KeyValue(usize),
}

/// Heads are independent: replacing one head's inputs (by `other`'s) leaves
/// the output of every query head not reading them unchanged, bit for bit.
pub fn head_independence(kernel: Kernel, case: &Case, other: &Case, change: HeadChange) -> Verdict {
    let s = case.shape;
    let d = s.head_dim;
    let mut changed = case.clone();
    let reads: Box<dyn Fn(usize) -> bool> = match change {
        HeadChange::Query(hq) => {
            for t in 0..s.q_len {
                let r = row(t, hq, s.heads, d);
                changed.q[r.clone()].copy_from_slice(&other.q[r]);
            }
            Box::new(move |h| h == hq)
        }
        HeadChange::KeyValue(g) => {
            for t in 0..s.kv_len {
                let r = row(t, g, s.kv_heads, d);
                changed.k[r.clone()].copy_from_slice(&other.k[r.clone()]);
                changed.v[r.clone()].copy_from_slice(&other.v[r]);
            }
            let gs = group(&s);
            Box::new(move |h| h / gs == g)
        }
    };
    let (a, b) = (run(kernel, case), run(kernel, &changed));
    for t in 0..s.q_len {
        for h in (0..s.heads).filter(|&h| !reads(h)) {
            let r = row(t, h, s.heads, d);
            same_bits(
                &format!("{change:?} changed query {t} head {h}, {s:?}"),
                &a[r.clone()],
                &b[r],
            )?;
        }
    }
    Ok(())
}

/// NaN payloads the output is poisoned with: quiet, negative, signalling.
pub const POISONS: [u32; 3] = [0x7fc0_0000, 0xffff_ffff, 0x7f80_0001];

/// Determinism and a write-only output: the same call, with `out` holding
/// zeros, NaNs of several payloads or garbage before it, gives the same bits
/// every time, and (the inputs being finite) no NaN survives.
pub fn deterministic_and_write_only(kernel: Kernel, case: &Case) -> Verdict {
    let s = case.shape;
    let first = run_with(kernel, case, 0.0);
    for init in POISONS.map(f32::from_bits).into_iter().chain([12345.0]) {
        let again = run_with(kernel, case, init);
        same_bits(
            &format!("out initialised to {init:e}, {s:?}"),
            &first,
            &again,
        )?;
        if let Some(i) = again.iter().position(|x| x.is_nan()) {
            return Err(format!("NaN at {i} after poisoning, {s:?}"));
        }
    }
    Ok(())
}

/// Two kernels agree bit for bit on `case`.
pub fn same_as(a: Kernel, b: Kernel, case: &Case, what: &str) -> Verdict {
    same_bits(
        &format!("{what}, {:?}", case.shape),
        &run(a, case),
        &run(b, case),
    )
}
