//! `causal_attention_scored` and a cache's `step_scored` against the
//! textbook reference.
//!
//! The input is read again, from its start, as a shape (valid or not), a
//! scale, buffer lengths sometimes off by one, each setting of a `Scoring`
//! on or off (key mask, key bias, score bias of one plane or one per head,
//! ALiBi slopes, soft cap, sinks) with lengths sometimes off by one and
//! parameters that may be NaN, ±∞, 0 or negative, and values raw bits or
//! bounded. Checked:
//!
//! 1. **No panic**; the kernel returns exactly what the reference returns
//!    (`Ok` or the same `Error`); on `Err`, `out` is untouched.
//! 2. **Contract**: with bounded values (every input finite, `|x| ≤ 4`)
//!    and ordinary parameters (`|x| ≤ 8`), the output meets
//!    `check_contract_with_mass` against the scored f64 oracle. Raw bits
//!    and huge parameters overflow f32 scores where f64 ones do not, so
//!    there only 1 and 3 hold.
//! 3. **Cache bits**: with a valid scoring on a fixed shape, decode steps
//!    (`step_scored`, the settings cut to each step's keys) give the bits
//!    of the runtime call, any NaN matching any NaN.

use microattn::reference::{
    attention_mass_scored_f64, causal_attention_scored as naive, causal_attention_scored_f64,
    check_contract_with_mass,
};
use microattn::{KvCache, Scoring, Shape, causal_attention_scored};

use super::same_bits::difference;
use super::{Bytes, HEADS, POISON, Values, maybe_wrong, values};

/// The settings a `Scoring` borrows, owned.
#[derive(Debug, Default)]
struct Owned {
    mask: Option<Vec<bool>>,
    key_bias: Option<Vec<f32>>,
    score_bias: Option<Vec<f32>>,
    slopes: Option<Vec<f32>>,
    cap: Option<f32>,
    sinks: Option<Vec<f32>>,
}

impl Owned {
    fn read(
        bytes: &mut Bytes<'_>,
        q_len: usize,
        kv_len: usize,
        heads: usize,
        mode: Values,
    ) -> Self {
        let on = bytes.u8();
        let mut o = Owned::default();
        if on & 1 != 0 {
            let n = maybe_wrong(bytes, kv_len);
            o.mask = Some((0..n).map(|_| bytes.u8() % 4 != 0).collect());
        }
        if on & 2 != 0 {
            let n = maybe_wrong(bytes, kv_len);
            o.key_bias = Some(values(bytes, n, mode));
        }
        if on & 4 != 0 {
            let planes = if bytes.u8() % 2 == 0 { 1 } else { heads };
            let n = maybe_wrong(bytes, planes * q_len * kv_len);
            o.score_bias = Some(values(bytes, n, mode));
        }
        if on & 8 != 0 {
            let n = maybe_wrong(bytes, heads);
            o.slopes = Some(parameters(bytes, n));
        }
        if on & 16 != 0 {
            o.cap = Some(parameters(bytes, 1)[0]);
        }
        if on & 32 != 0 {
            let n = maybe_wrong(bytes, heads);
            o.sinks = Some(parameters(bytes, n));
        }
        o
    }

    fn scoring(&self) -> Scoring<'_> {
        let mut s = Scoring::new();
        if let Some(x) = &self.mask {
            s = s.key_mask(x);
        }
        if let Some(x) = &self.key_bias {
            s = s.key_bias(x);
        }
        if let Some(x) = &self.score_bias {
            s = s.score_bias(x);
        }
        if let Some(x) = &self.slopes {
            s = s.alibi(x);
        }
        if let Some(c) = self.cap {
            s = s.soft_cap(c);
        }
        if let Some(x) = &self.sinks {
            s = s.sinks(x);
        }
        s
    }
}

/// Scoring parameters: mostly ordinary (`(0, 4]`), sometimes NaN, ±∞, 0,
/// negative or raw bits.
fn parameters(bytes: &mut Bytes<'_>, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match bytes.u8() % 12 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => 0.0,
            4 => -1.5,
            5 => f32::from_bits(bytes.u32()),
            k => f32::from(k) * 0.5 - 1.0,
        })
        .collect()
}

pub fn check(data: &[u8]) {
    let mut bytes = Bytes(data);
    let q_len = usize::from(bytes.u8() % 40);
    let kv_len = q_len + usize::from(bytes.u8() % 9);
    let (heads, kv_heads) = HEADS[usize::from(bytes.u8()) % HEADS.len()];
    let head_dim = usize::from(bytes.u8() % 20) + 1;
    let mode = if bytes.u8() % 4 == 0 {
        Values::Raw
    } else {
        Values::Bounded(4.0)
    };
    let shape = Shape::new(q_len, kv_len, heads, kv_heads, head_dim);
    let q_n = maybe_wrong(&mut bytes, q_len * heads * head_dim);
    let kv_n = maybe_wrong(&mut bytes, kv_len * kv_heads * head_dim);
    let out_n = q_len * heads * head_dim;
    let owned = Owned::read(&mut bytes, q_len, kv_len, heads, mode);
    let scoring = owned.scoring();
    let (q, k, v) = (
        values(&mut bytes, q_n, mode),
        values(&mut bytes, kv_n, mode),
        values(&mut bytes, kv_n, mode),
    );
    let mut out = vec![POISON; out_n];
    let got = causal_attention_scored(&shape, &scoring, &q, &k, &v, &mut out);
    let mut slow = vec![POISON; out_n];
    let want = naive(&shape, &scoring, &q, &k, &v, &mut slow);
    assert_eq!(got, want, "{shape:?} {owned:?}");
    if got.is_err() {
        assert!(
            out.iter().all(|x| x.to_bits() == POISON.to_bits()),
            "causal_attention_scored wrote out on {got:?}"
        );
        return;
    }
    // Slopes, sinks and caps of raw bits can overflow an f32 bias to −∞
    // (a mask) where the f64 oracle's stays finite: the contract is for
    // ordinary parameters.
    let ordinary =
        |x: &Option<Vec<f32>>| x.as_ref().is_none_or(|x| x.iter().all(|v| v.abs() <= 8.0));
    let ordinary = ordinary(&owned.slopes)
        && ordinary(&owned.sinks)
        && owned.cap.is_none_or(|c| c.abs() <= 8.0);
    if mode != Values::Raw && ordinary {
        let (mut oracle, mut mass) = (vec![0.0f64; out_n], vec![0.0f64; out_n]);
        causal_attention_scored_f64(&shape, &scoring, &q, &k, &v, &mut oracle).unwrap();
        attention_mass_scored_f64(&shape, &scoring, &q, &k, &v, &mut mass).unwrap();
        if let Err(e) = check_contract_with_mass(&out, &slow, &oracle, &mass) {
            panic!("{e}: {shape:?} {owned:?}\nq {q:?}\nk {k:?}\nv {v:?}");
        }
    }
    steps::<7, 2, 1, 3>(&mut Bytes(data), mode);
}

/// Property 3 on a fixed shape: `N` positions, `H` heads over `KVH`.
fn steps<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    bytes: &mut Bytes<'_>,
    mode: Values,
) {
    let shape = Shape::new(N, N, H, KVH, D);
    let mut owned = Owned::read(bytes, N, N, H, mode);
    if let Some(b) = &mut owned.score_bias {
        b.truncate(N * N);
    }
    if owned.scoring().check(N, N, H).is_err() {
        return;
    }
    let q = values(bytes, N * H * D, mode);
    let k = values(bytes, N * KVH * D, mode);
    let v = values(bytes, N * KVH * D, mode);
    let mut flat = vec![POISON; N * H * D];
    causal_attention_scored(&shape, &owned.scoring(), &q, &k, &v, &mut flat).unwrap();
    let at = |x: &[f32], t: usize, g: usize| -> [[f32; D]; 4] {
        let mut a = [[0.0; D]; 4];
        for (i, row) in a.iter_mut().take(g).enumerate() {
            row.copy_from_slice(&x[(t * g + i) * D..][..D]);
        }
        a
    };
    let mut cache = KvCache::<N, KVH, D>::new();
    for t in 0..N {
        let (qt, kt, vt) = (at(&q, t, H), at(&k, t, KVH), at(&v, t, KVH));
        let cut = Owned {
            mask: owned.mask.as_ref().map(|m| m[..=t].to_vec()),
            key_bias: owned.key_bias.as_ref().map(|b| b[..=t].to_vec()),
            score_bias: owned
                .score_bias
                .as_ref()
                .map(|b| b[t * N..=t * N + t].to_vec()),
            slopes: owned.slopes.clone(),
            cap: owned.cap,
            sinks: owned.sinks.clone(),
        };
        let mut row = [[POISON; D]; H];
        let q_row: [[f32; D]; H] = core::array::from_fn(|h| qt[h]);
        let k_row: [[f32; D]; KVH] = core::array::from_fn(|g| kt[g]);
        let v_row: [[f32; D]; KVH] = core::array::from_fn(|g| vt[g]);
        cache
            .step_scored(&q_row, &k_row, &v_row, &cut.scoring(), &mut row, None)
            .unwrap();
        if let Some(d) = difference(row.as_flattened(), &flat[t * H * D..][..H * D]) {
            panic!("step {t} of {N} with {owned:?}: {d}");
        }
    }
}
