//! Deliberately broken kernels: each check must catch one of these.

use super::*;

/// Non-causal: adds a little of the last key position's value row (of the
/// right key/value head) to every output.
pub fn leaky(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    if s.kv_len == 0 {
        return Ok(());
    }
    let last = s.kv_len - 1;
    for t in 0..s.q_len {
        for h in 0..s.heads {
            let src = row(last, h / group(s), s.kv_heads, s.head_dim);
            let dst = row(t, h, s.heads, s.head_dim);
            for (o, x) in out[dst].iter_mut().zip(&v[src]) {
                *o += 1e-3 * x;
            }
        }
    }
    Ok(())
}

/// Heads talk: adds a little of the next query head's output to each head.
pub fn head_mixing(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    let copy = out.to_vec();
    for t in 0..s.q_len {
        for h in 0..s.heads {
            let src = row(t, (h + 1) % s.heads, s.heads, s.head_dim);
            for (o, x) in out[row(t, h, s.heads, s.head_dim)]
                .iter_mut()
                .zip(&copy[src])
            {
                *o += 1e-3 * x;
            }
        }
    }
    Ok(())
}

/// Reads its output: leaves the last value as it was.
pub fn lazy(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    let mut tmp = out.to_vec();
    FAST(s, q, k, v, &mut tmp)?;
    let n = out.len().saturating_sub(1);
    out[..n].copy_from_slice(&tmp[..n]);
    Ok(())
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Not deterministic: nudges its first value by one ULP on every other call.
pub fn jittery(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    if CALLS.fetch_add(1, Ordering::Relaxed) % 2 == 1
        && let Some(x) = out.first_mut()
    {
        *x = f32::from_bits(x.to_bits() ^ 1);
    }
    Ok(())
}

/// Slightly off everywhere: the output scaled by `1 + 1e-3`.
pub fn biased(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    out.iter_mut().for_each(|x| *x *= 1.0 + 1e-3);
    Ok(())
}

/// Overshoots: pushes each output away from 0 by a tenth of the largest value.
pub fn overshooting(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    FAST(s, q, k, v, out)?;
    let big = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    out.iter_mut().for_each(|x| *x += 0.1 * big.copysign(*x));
    Ok(())
}

/// Each query of `c` run on its own — one query against the keys it sees,
/// the shape of a decode step — gives the bits it gets in the whole run.
/// The whole run computes full tiles of queries on lanes across queries and
/// a lone query on lanes across keys, so this holds the two paths of the
/// kernel to the same bits.
pub fn one_query_at_a_time(kernel: Kernel, c: &Case) -> Verdict {
    let s = c.shape;
    let mut whole = vec![0.0; c.q.len()];
    kernel(&s, &c.q, &c.k, &c.v, &mut whole).map_err(|e| e.to_string())?;
    let q_row = s.heads * s.head_dim;
    let kv_row = s.kv_heads * s.head_dim;
    let offset = s.kv_len - s.q_len;
    for i in 0..s.q_len {
        let kv_len = offset + i + 1;
        let one = Shape::new(1, kv_len, s.heads, s.kv_heads, s.head_dim).with_scale(s.scale);
        let mut out = vec![0.0; q_row];
        let q = &c.q[i * q_row..(i + 1) * q_row];
        let (k, v) = (&c.k[..kv_len * kv_row], &c.v[..kv_len * kv_row]);
        kernel(&one, q, k, v, &mut out).map_err(|e| e.to_string())?;
        same_bits(
            &format!("query {i} alone vs in the whole run"),
            &out,
            &whole[i * q_row..(i + 1) * q_row],
        )?;
    }
    Ok(())
}
