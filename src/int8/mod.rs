//! Integer attention for microcontrollers without an FPU: `i8` queries,
//! keys and values quantized as TFLite quantizes activations, `i32`
//! scores, a fixed-point softmax, and an `i8` output (or `f32` on hosts).
//!
//! # When to pick it
//! On a core without an FPU (Cortex-M0/M0+, RISC-V `rv32imc`) every `f32`
//! operation of the float path is a library call; this path does none.
//! Its [`KvCache`] holds a position in a quarter of the `f32` cache's
//! bytes. Pick it when the model is int8 already (TFLite, CMSIS-NN), or
//! when RAM or the lack of an FPU rules the float path out.
//!
//! # Quantization
//! Each tensor has one scale and zero point ([`Quant`]): `real = scale ·
//! (q − zero_point)`, as in a TFLite model's tensor parameters. [`Params`]
//! prepares them, once, before any call; a call is integer-only.
//!
//! ```
//! use microattn::int8::{self, Params, Quant};
//! // From a TFLite model: the tensors feeding BATCH_MATMUL → SOFTMAX →
//! // BATCH_MATMUL, e.g. `quantization: {scale: [0.0235], zero_point: [-4]}`.
//! let q = Quant { scale: 0.0235, zero_point: -4 };
//! let k = Quant { scale: 0.0190, zero_point: 2 };
//! let v = Quant { scale: 0.0412, zero_point: 0 };
//! let out = Quant { scale: 0.0400, zero_point: 1 };
//! let params = Params::new(q, k, v, out, 4)?; // score scale 1/√4
//!
//! // 3 positions, 1 head, head dimension 4.
//! let xq = [[[10i8, -20, 30, 5]], [[0, 0, 0, 0]], [[-7, 9, 1, 2]]];
//! let xk = [[[3i8, 1, -2, 8]], [[40, -3, 2, 0]], [[-1, -1, 9, 9]]];
//! let xv = [[[25i8, -25, 100, 0]], [[-50, 60, 0, 7]], [[1, 2, 3, 4]]];
//! let mut o = [[[0i8; 4]; 1]; 3];
//! int8::causal_multi_head(&params, &xq, &xk, &xv, &mut o);
//! // Position 0 sees only itself: its value, requantized to the output's
//! // scale and zero point: round(0.0412·25 / 0.04) + 1 = 26 + 1.
//! assert_eq!(o[0][0][0], 27);
//! # Ok::<(), microattn::Error>(())
//! ```
//!
//! # What a call computes
//! For query `i` and each key `j ≤ i` it sees (bottom-right alignment, as
//! in the float path), the score `sⱼ = Σ_d (q_d − zq)(kⱼ_d − zk)` exactly
//! in `i32`. With `m = maxⱼ sⱼ`, the weight of key `j` is
//! [`weight`]`(`[`Params::exponent`]`(m − sⱼ))`: `2^16·2^(−x)` for `x =
//! (m − sⱼ)·scale·Sq·Sk·log2(e)`, the exponent rounded to `2^−16`, the
//! power of two from a table (within 1.24 units), rounded to an integer.
//! The sums `W = Σⱼ wⱼ` and `A_d = Σⱼ wⱼ·(vⱼ_d − zv)` are exact. With `b`
//! the bit length of `W` minus 16 and `F = round(2^30 / (W >> b))`, the
//! mean is `round(A_d / 2^(b+8))·F`, about `A_d·2^22 / W` (`Q22` value
//! steps), and the output [`Params::requantize`]s it: rounded to `Q8`,
//! times `Sv/So` as a 15-bit mantissa, rounded, plus `zo`, saturated to
//! `i8`. Every rounding takes halves up. The `f32` variants return
//! `Sv·mean/2^22` instead. [`reference::int8`](crate::reference::int8)
//! writes this out plainly; every path here equals it bit for bit, on
//! every target.
//!
//! # Accuracy
//! Against the `f64` oracle on the dequantized inputs
//! ([`reference::int8::oracle`](crate::reference::int8::oracle)), in output
//! steps, for a row of `L` visible keys and `M = Sv/So`:
//!
//! `|out − oracle| ≤ 0.5 + M·(0.045 + 0.002·L)`
//! ([`reference::int8::bound`](crate::reference::int8::bound)), from:
//!
//! - 0.5: the output's rounding (saturation only moves it closer);
//! - a value spread of at most 255 steps (`vⱼ − zv` of `i8` values): a
//!   relative error `ε` of each weight, or common to all of them, moves the
//!   mean by at most `255·ε`;
//! - each weight's relative error, at most `4.9·10⁻⁵`: the exponent's
//!   error, at most one unit of `2^−16` (its rounding, and its
//!   multiplier's at the smallest accepted scales), `ln 2·2^−16`, and the
//!   table's 1.24 units of a weight of at least `2^15`;
//! - the common errors: `F`'s rounding and `W`'s truncation to 16 bits,
//!   `6.1·10⁻⁵`, and the output mantissa's, `3.1·10⁻⁵`: with the above,
//!   `255·1.41·10⁻⁴ < 0.036`;
//! - `A_d`'s rounding to `2^(b+8)`, at most `2^−8` value steps, and the
//!   `Q8` mean's, `2^−9`: below `0.006`;
//! - per key, its weight's rounding to an integer: half a unit against
//!   `W ≥ 2^16` (the maximum's weight is exactly `2^16`),
//!   `255·2^−17 < 0.002`.
//!
//! With `M ≤ 1` and `L ≤ 227` that is below 1 output step. For rows of up
//! to 64 keys the outputs are within 1 step of the oracle over the whole
//! accepted range of `M` (up to 16): the bound is loose there (its weight
//! terms assume every error at its worst, in the same direction), and over
//! 21 million outputs of the tests' grid the largest error was 0.65 steps
//! (at `M` between 8 and 16; 0.51 for `M ≤ 1`). The property tests hold
//! the bound, and the 1-step promise for rows of up to 64 keys, over
//! shapes up to 64 positions, `D` 1..64, every head grouping, zero points
//! across `i8` and scales over several decades.
//!
//! # Memory
//! No heap. One call keeps on the stack the query row as `i16`, the value
//! sums as `i32` (and `i64` for rows that may pass 128 keys): `6D` or
//! `14D` bytes, and up to 24 scores (96 bytes); `D` the fixed-size call's
//! head dimension, [`MAX_HEAD_DIM`] for the runtime API. Measured in the
//! firmware (`.ci/footprint`): at most 500 bytes below the caller for the
//! `(32, 2, 1, 16)` call on Cortex-M0, M4F, M33 and RISC-V.

mod branchless;
mod cache;
mod exp2;
mod kernel;
mod multiplier;
mod params;

pub use cache::KvCache;
pub use kernel::MAX_HEAD_DIM;
pub use params::{Params, Quant};

use crate::Shape;
use crate::check::{self, assert_heads};
use crate::error::Error;

/// The power-of-two weight of an exponent in `Q16`: `2^16·2^(−t/2^16)`
/// within 1.24 units, rounded to an integer in `0..=2^16`; 0 for `t ≥
/// 17·2^16`. The one exponential of the integer path, shared by the kernel
/// and its reference (it is part of what they specify).
///
/// ```
/// use microattn::int8::weight;
/// assert_eq!(weight(0), 65536); // 2^0
/// assert_eq!(weight(1 << 16), 32768); // 2^−1
/// assert_eq!(weight(17 << 16), 0);
/// ```
#[inline]
#[must_use]
pub fn weight(t: u32) -> u32 {
    exp2::weight(t)
}

/// Runs a fixed shape `(N, H, KVH, D)` through the kernel with the head
/// dimension as the scratch size.
#[inline(always)]
fn run_fixed<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    params: &Params,
    (q, k, v): (&[i8], &[i8], &[i8]),
    sink: impl FnMut(usize, i32),
) {
    const {
        assert_heads::<N, H, KVH, D>();
        assert!(D <= MAX_HEAD_DIM, "D must be at most int8::MAX_HEAD_DIM");
    };
    if let Ok(s) = check::shape(N, N, H, KVH, D) {
        kernel::run::<D>(params, &s, N, (q, k, v), sink);
    }
}

/// Causal multi-head attention on `i8` tensors, `i8` output: the integer
/// counterpart of [`causal_multi_head`](crate::causal_multi_head), same
/// layout (`[token][head][dim]`) and head grouping (query head `h` reads
/// key/value head `h / (H / KVH)`), with the quantization and score scale
/// of `params`.
///
/// Every value of `out` is written. Integer arithmetic only; the result is
/// [`reference::int8::causal_attention_dyn`](crate::reference::int8::causal_attention_dyn)'s,
/// bit for bit. A zero dimension, `H % KVH != 0` or `D > MAX_HEAD_DIM` is
/// a compile-time error.
///
/// ```
/// use microattn::int8::{self, Params, Quant};
/// let a = Quant { scale: 0.05, zero_point: 0 };
/// let p = Params::new(a, a, a, a, 2)?;
/// let x = [[[20i8, -20]; 2]; 3]; // 3 tokens, 2 heads
/// let kv = [[[20i8, -20]; 1]; 3]; // 1 shared key/value head
/// let mut out = [[[0i8; 2]; 2]; 3];
/// int8::causal_multi_head(&p, &x, &kv, &kv, &mut out);
/// assert_eq!(out, x); // equal values: every mean is that value
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_multi_head<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    params: &Params,
    q: &[[[i8; D]; H]; N],
    k: &[[[i8; D]; KVH]; N],
    v: &[[[i8; D]; KVH]; N],
    out: &mut [[[i8; D]; H]; N],
) {
    let out = out.as_flattened_mut().as_flattened_mut();
    run_fixed::<N, H, KVH, D>(
        params,
        (
            q.as_flattened().as_flattened(),
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
        ),
        |at, mean| {
            if let Some(o) = out.get_mut(at) {
                *o = params.requantize_row_mean(mean);
            }
        },
    );
}

/// [`causal_multi_head`] with a real (`f32`) output, `Sv·mean` for hosts
/// and tests: the same integer kernel, then one multiply per output.
///
/// ```
/// use microattn::int8::{self, Params, Quant};
/// let a = Quant { scale: 0.5, zero_point: 0 };
/// let p = Params::new(a, a, a, a, 1)?;
/// let mut out = [[[0.0f32; 1]; 1]; 1];
/// int8::causal_multi_head_f32(&p, &[[[3]]], &[[[1]]], &[[[5]]], &mut out);
/// assert_eq!(out[0][0][0], 2.5);
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_multi_head_f32<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    params: &Params,
    q: &[[[i8; D]; H]; N],
    k: &[[[i8; D]; KVH]; N],
    v: &[[[i8; D]; KVH]; N],
    out: &mut [[[f32; D]; H]; N],
) {
    let out = out.as_flattened_mut().as_flattened_mut();
    run_fixed::<N, H, KVH, D>(
        params,
        (
            q.as_flattened().as_flattened(),
            k.as_flattened().as_flattened(),
            v.as_flattened().as_flattened(),
        ),
        |at, mean| {
            if let Some(o) = out.get_mut(at) {
                *o = params.dequantize_mean(mean);
            }
        },
    );
}

/// The runtime-length integer API: [`causal_multi_head`] for a
/// [`Shape`] known only at run time, flat token-major `i8` buffers as in
/// [`causal_attention_dyn`](crate::causal_attention_dyn). The shape's
/// `scale` is not used: the score scale is the one prepared in `params`.
///
/// # Errors
/// Checked before any arithmetic; on error `out` is untouched: the shape
/// and buffer errors of [`causal_attention_dyn`](crate::causal_attention_dyn)
/// (except [`Error::NonFiniteScale`]), then [`Error::HeadDimTooLarge`] if
/// `head_dim > MAX_HEAD_DIM`.
///
/// ```
/// use microattn::{Shape, int8::{self, Params, Quant}};
/// let a = Quant { scale: 0.1, zero_point: 3 };
/// let p = Params::new(a, a, a, a, 2)?;
/// let shape = Shape::new(2, 2, 1, 1, 2);
/// let x = [13i8, 3, 3, 13];
/// let mut out = [0i8; 4];
/// int8::causal_attention_dyn(&shape, &p, &x, &x, &x, &mut out)?;
/// assert_eq!(out[..2], x[..2]);
/// # Ok::<(), microattn::Error>(())
/// ```
#[inline]
pub fn causal_attention_dyn(
    shape: &Shape,
    params: &Params,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    out: &mut [i8],
) -> Result<(), Error> {
    let s = check::int8_runtime(shape, [q.len(), k.len(), v.len(), out.len()])?;
    kernel::run::<MAX_HEAD_DIM>(params, &s, s.kv_len, (q, k, v), |at, mean| {
        if let Some(o) = out.get_mut(at) {
            *o = params.requantize_row_mean(mean);
        }
    });
    Ok(())
}

/// [`causal_attention_dyn`] with a real (`f32`) output, as
/// [`causal_multi_head_f32`].
///
/// # Errors
/// As [`causal_attention_dyn`].
#[inline]
pub fn causal_attention_dyn_f32(
    shape: &Shape,
    params: &Params,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    out: &mut [f32],
) -> Result<(), Error> {
    let s = check::int8_runtime(shape, [q.len(), k.len(), v.len(), out.len()])?;
    kernel::run::<MAX_HEAD_DIM>(params, &s, s.kv_len, (q, k, v), |at, mean| {
        if let Some(o) = out.get_mut(at) {
            *o = params.dequantize_mean(mean);
        }
    });
    Ok(())
}
