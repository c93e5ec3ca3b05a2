//! Named, never-inlined instantiations of the kernels for the common shapes.
//!
//! The generic entry points ([`causal_attention`], [`causal_multi_head`]) are
//! inlined into their callers, so in a profile or a disassembly their code
//! hides inside whatever called them. Each function here is one fixed shape
//! under a plain, searchable name (`microattn::entry::causal_n256_d64`), kept
//! out of line with `#[inline(never)]`: `perf report`, `callgrind_annotate`
//! and `objdump --disassemble=…` find it by name. They compute exactly what
//! the generic functions compute for the same shape (same bits).
//!
//! `examples/profile.rs` runs any of them in a loop.
//!
//! ```
//! use microattn::entry;
//! let q = [[0.5f32; 16]; 16];
//! let mut out = [[0.0f32; 16]; 16];
//! entry::causal_n16_d16(&q, &q, &q, &mut out);
//! assert_eq!(out[15], [0.5; 16]);
//! ```

use crate::attention::{causal_attention, causal_multi_head};

/// Declares one never-inlined single-head entry point per `(name, N, D)`.
macro_rules! single_head {
    ($($name:ident: $n:literal, $d:literal;)*) => {$(
        #[doc = concat!("[`causal_attention`] at N = ", $n, ", D = ", $d,
            " with the default scale, out of line.")]
        #[inline(never)]
        pub fn $name(
            q: &[[f32; $d]; $n],
            k: &[[f32; $d]; $n],
            v: &[[f32; $d]; $n],
            out: &mut [[f32; $d]; $n],
        ) {
            causal_attention(q, k, v, out);
        }
    )*};
}

/// Declares one never-inlined multi-head entry point per `(name, N, H, KVH, D)`.
macro_rules! multi_head {
    ($($name:ident: $n:literal, $h:literal, $kvh:literal, $d:literal;)*) => {$(
        #[doc = concat!("[`causal_multi_head`] at N = ", $n, ", H = ", $h,
            ", KVH = ", $kvh, ", D = ", $d, " with the default scale, out of line.")]
        #[inline(never)]
        pub fn $name(
            q: &[[[f32; $d]; $h]; $n],
            k: &[[[f32; $d]; $kvh]; $n],
            v: &[[[f32; $d]; $kvh]; $n],
            out: &mut [[[f32; $d]; $h]; $n],
        ) {
            causal_multi_head(q, k, v, out);
        }
    )*};
}

single_head! {
    causal_n16_d16: 16, 16;
    causal_n64_d32: 64, 32;
    causal_n128_d64: 128, 64;
    causal_n256_d64: 256, 64;
    causal_n512_d64: 512, 64;
    causal_n1024_d64: 1024, 64;
}

multi_head! {
    causal_n256_h8_d64: 256, 8, 8, 64;
    causal_n256_h8_kv2_d64: 256, 8, 2, 64;
    causal_n64_h4_d16: 64, 4, 4, 16;
}
