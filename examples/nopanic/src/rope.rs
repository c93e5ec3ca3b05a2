//! The RoPE part of the proof: every public function of `microattn::rope`
//! and the RoPE reference, with bases, positions and run lengths the
//! optimiser cannot see, including invalid bases and positions past the
//! table.

use core::hint::black_box;

use microattn::reference;
use microattn::rope::{Layout, Rope};

use crate::{D, H, K, KVH, N, Q, heads, opaque, part, token};

/// Positions of the tables below.
const POSITIONS: usize = 32;

/// The table built at run time (both layouts), then every rotation.
pub fn all() {
    for layout in [Layout::HalfSplit, Layout::Interleaved] {
        if let Ok(rope) = Rope::<POSITIONS, D>::new(opaque(10_000.0), opaque(layout)) {
            rotations(&rope);
        }
    }
    black_box(Rope::<POSITIONS, D>::new(opaque(f64::NAN), Layout::HalfSplit).is_err());
}

#[inline(never)]
fn rotations(rope: &Rope<POSITIONS, D>) {
    black_box((
        rope.base(),
        rope.layout(),
        rope.cos_sin(opaque(3), opaque(2)),
    ));
    let mut row: [f32; D] = token::<1>(&Q, 5)[0];
    let _ = black_box(rope.rotate(&mut row, opaque(7)));
    let _ = black_box(rope.rotate(&mut row, opaque(POSITIONS)));
    let mut q1 = token::<H>(&Q, 1);
    let _ = black_box(rope.rotate_heads(&mut q1, opaque(9)));
    let mut k1 = token::<KVH>(&K, 2);
    let _ = black_box(rope.rotate_heads(&mut k1, opaque(usize::MAX)));
    let mut q = heads::<H>(&Q);
    let n = opaque(N);
    let run = q.get_mut(..n).unwrap_or(&mut []);
    let _ = black_box(rope.rotate_run(run, opaque(4)));
    let mut k = heads::<KVH>(&K);
    let _ = black_box(rope.rotate_run(&mut k, opaque(POSITIONS - 3)));
    black_box((&row, &q1, &k1, &q, part(&k, opaque(3))));
    let pair = reference::rope_cos_sin_f64(opaque(10_000.0), opaque(D), opaque(5), opaque(1));
    black_box(pair);
    black_box(reference::rope_rotate_f64(
        &row,
        opaque(11),
        opaque(500_000.0),
        rope.layout(),
    ));
}
