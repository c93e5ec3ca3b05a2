//! `RingKvCache` with attention sinks against a `KvCache` holding the
//! positions it should hold.
//!
//! The input is read again, from its start, as a sequence of positions
//! (values raw bits or small, one word each) pushed into a ring of 6
//! positions with 2 sinks, each followed by a decode step. Checked after
//! each one:
//!
//! 1. **No panic**; `keys()` and `values()` hold positions 0 and 1, then
//!    the last 4 (fewer while filling), in that order, bit for bit.
//! 2. **Bits**: the step's `out`, `weights` and `lse` are those of a
//!    `KvCache` fed just those positions, any NaN matching any NaN.

use microattn::{KvCache, RingKvCache};

use super::same_bits::difference;
use super::{Bytes, POISON};

const WINDOW: usize = 6;
const SINKS: usize = 2;
const KVH: usize = 1;
const H: usize = 2;
const D: usize = 3;

type Pos<const X: usize> = [[f32; D]; X];

fn position<const X: usize>(bytes: &mut Bytes<'_>, raw: bool) -> Pos<X> {
    let mut p = [[0.0; D]; X];
    for x in p.as_flattened_mut() {
        let w = bytes.u32();
        *x = if raw {
            f32::from_bits(w)
        } else {
            (w as i32 as f32 / 2_147_483_648.0) * 4.0
        };
    }
    p
}

pub fn check(data: &[u8]) {
    let mut bytes = Bytes(data);
    let raw = bytes.u8() % 4 == 0;
    let steps = usize::from(bytes.u8() % 24);
    let mut ring = RingKvCache::<WINDOW, KVH, D, f32, SINKS>::new();
    let mut seen: Vec<(Pos<KVH>, Pos<KVH>)> = Vec::new();
    for p in 0..steps {
        let (q, k, v) = (
            position::<H>(&mut bytes, raw),
            position::<KVH>(&mut bytes, raw),
            position::<KVH>(&mut bytes, raw),
        );
        seen.push((k, v));
        let held: Vec<usize> = if p < WINDOW {
            (0..=p).collect()
        } else {
            (0..SINKS).chain(p + 1 + SINKS - WINDOW..=p).collect()
        };
        let (mut out, mut w, mut lse) = ([[POISON; D]; H], [[POISON; WINDOW]; H], [POISON; H]);
        ring.step(&q, &k, &v, &mut out, Some(&mut w), Some(&mut lse));
        let (older, newer) = ring.keys();
        let keys: Vec<u32> = older
            .iter()
            .chain(newer)
            .flatten()
            .flatten()
            .map(|x| x.to_bits())
            .collect();
        let want: Vec<u32> = held
            .iter()
            .flat_map(|&j| seen[j].0)
            .flatten()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(keys, want, "step {p}: held keys, want positions {held:?}");
        let mut plain = KvCache::<WINDOW, KVH, D>::new();
        for &j in &held {
            plain
                .push(&seen[j].0, &seen[j].1)
                .expect("room for the held positions");
        }
        let (mut o2, mut w2, mut l2) = ([[POISON; D]; H], [[POISON; WINDOW]; H], [POISON; H]);
        plain.attend(&q, &mut o2, Some(&mut w2), Some(&mut l2));
        for (what, a, b) in [
            ("out", out.as_flattened(), o2.as_flattened()),
            ("weights", w.as_flattened(), w2.as_flattened()),
            ("lse", &lse[..], &l2[..]),
        ] {
            if let Some(d) = difference(a, b) {
                panic!("step {p}, positions {held:?}: {what}: {d}");
            }
        }
    }
}
