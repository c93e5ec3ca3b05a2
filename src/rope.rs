//! Rotary position embedding (RoPE): a fixed table of `cos` and `sin` per
//! position and frequency, and the rotation of query and key rows by it.
//!
//! A row `x` of head dimension `D` at position `p` is split into `D/2`
//! pairs; pair `i` is turned by the angle `p·θᵢ`, `θᵢ = base^(−2i/D)`:
//!
//! ```text
//! (x, y) ↦ (x·cos(p·θᵢ) − y·sin(p·θᵢ),  x·sin(p·θᵢ) + y·cos(p·θᵢ))
//! ```
//!
//! Which dimensions form pair `i` is the model's [`Layout`]. Rotate the
//! queries and the keys (never the values) at their positions before they
//! reach the attention call or a cache: the score of a query at `m` and a
//! key at `n` then depends on `m − n` only. [`Rope`] holds the table and
//! does the rotation; [`reference::rope_rotate_f64`](crate::reference::rope_rotate_f64)
//! is its specification in f64.
//!
//! # Accuracy
//! Each table entry is the f64 `cos` or `sin` of the f64 angle `p·θᵢ`
//! (the crate's own `const` f64 `ln`, `exp`, `sin` and `cos`), rounded once
//! to `f32`. Against `libm`'s f64 value of the same formula
//! ([`reference::rope_cos_sin_f64`](crate::reference::rope_cos_sin_f64))
//! every entry is within `½·ulp + 2⁻⁵⁰·p·θᵢ + 2⁻⁵²` (`ulp` of `f32` at the
//! value): the one rounding to `f32`, plus what the two f64 computations of
//! the angle and of `sin`/`cos` may differ by in their last bits.
//! Measured in `tests/rope.rs` over every entry of tables up to 65,536
//! positions (angles up to 65,535 radians): every entry is `libm`'s value
//! rounded to `f32` or one ULP from it, and the part beyond half an ULP
//! takes at most 0.69 of the angle's allowance.
//!
//! A rotated value is `x·c − y·s` (or `x·s + y·c`) in `f32`, two products
//! and one sum each rounded on its own (no fused multiply-add, so the bits
//! are the same on every target). Against the f64 rotation by `libm`'s
//! values it is within
//!
//! ```text
//! (|x| + |y|)·(e + γ₂·(1 + e) + 2⁻⁵⁰),   e = u/2 + 2⁻⁵⁰·p·θᵢ + 2⁻⁵²,   u = 2⁻²⁴, γ₂ = 2u/(1 − 2u)
//! ```
//!
//! (each entry is within `e` of its f64 value, since a value of magnitude
//! at most 1 rounds to `f32` within `u/2`, which moves the result by at
//! most `(|x| + |y|)·e`; the two products and the sum round within
//! `γ₂·(|x|·|c| + |y|·|s|)`; the f64 rotation's own rounding is below
//! `2⁻⁵⁰·(|x| + |y|)`), about `2.5u·(|x| + |y|)`. `tests/rope.rs` and the
//! `attention` fuzz target hold every rotation to it, and every pair's norm
//! to `√2` times it.

mod const_math;

use crate::error::Error;

/// Which dimensions of a row of head dimension `D` are turned together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Dimension `i` pairs with `i + D/2` (Llama, GPT-NeoX, Hugging Face's
    /// `rotate_half`).
    HalfSplit,
    /// Dimension `2i` pairs with `2i + 1` (GPT-J, Meta's original Llama
    /// code).
    Interleaved,
}

/// The largest number of positions a table can hold, `2²⁰`.
pub const MAX_POSITIONS: usize = 1 << 20;

/// A RoPE table for positions `0..MAX_POS` and head dimension `D`, and the
/// rotation of rows by it.
///
/// `D` must be even and at least 2, and `MAX_POS` between 1 and
/// [`MAX_POSITIONS`]; anything else is a compile-time error.
///
/// # Memory
/// `size_of::<Rope<MAX_POS, D>>()` is `2·MAX_POS·(D/2)·4` bytes of `cos`
/// and `sin` (one `f32` each per position and pair), plus 16 bytes for the
/// base and the layout. `Rope<2048, 64>` takes 512 KiB + 16 bytes,
/// `Rope<512, 16>` (a microcontroller) 32 KiB + 16.
///
/// ```
/// use microattn::rope::Rope;
/// assert_eq!(core::mem::size_of::<Rope<512, 16>>(), 2 * 512 * 8 * 4 + 16);
/// ```
///
/// # Building it at compile time
/// [`new`](Self::new) is a `const fn`, so a table can be a `static`,
/// computed by the compiler (in flash on a microcontroller). In a `static`
/// or `const` item an invalid base is a compile error:
///
/// ```
/// use microattn::rope::{Layout, Rope};
/// static ROPE: Rope<64, 8> = match Rope::new(10_000.0, Layout::HalfSplit) {
///     Ok(rope) => rope,
///     Err(_) => panic!("invalid RoPE base"),
/// };
/// assert_eq!(ROPE.cos_sin(0, 1), Some((1.0, 0.0)));
/// ```
///
/// The compiler evaluates one `sin` and `cos` per position and pair, a few
/// tens of microseconds each: `Rope<8192, 64>` (262,144 entries) builds
/// in about 10 seconds; `Rope<16384, 64>` runs into the deny-by-default
/// `long_running_const_eval` lint, which `#[allow(long_running_const_eval)]`
/// on the item lifts (`Rope<32768, 64>`: about 40 seconds). Or build a
/// table that big at run time, with the same call.
///
/// # Example: a prompt, then decode steps
/// Rotate each query and key at its position, then hand them to the
/// [`KvCache`](crate::KvCache): a cache's length is the position of the
/// next token.
///
/// ```
/// use microattn::KvCache;
/// use microattn::rope::{Layout, Rope};
///
/// static ROPE: Rope<16, 4> = match Rope::new(10_000.0, Layout::HalfSplit) {
///     Ok(rope) => rope,
///     Err(_) => panic!("invalid RoPE base"),
/// };
/// // 2 query heads over 1 key/value head, D = 4.
/// let mut cache = KvCache::<16, 1, 4>::new();
///
/// // The prompt: positions 0, 1, 2.
/// let mut q = [[[0.1f32, 0.2, 0.3, 0.4]; 2]; 3];
/// let mut k = [[[0.5f32, -0.5, 0.25, 1.0]; 1]; 3];
/// let v = [[[1.0f32, 2.0, 3.0, 4.0]; 1]; 3];
/// ROPE.rotate_run(&mut q, cache.len())?;
/// ROPE.rotate_run(&mut k, cache.len())?;
/// let mut out = [[[0.0f32; 4]; 2]; 3];
/// cache.prefill(&q, &k, &v, &mut out, None)?;
///
/// // A decode step: the next token sits at position cache.len() = 3.
/// let (mut q1, mut k1) = ([[0.3f32; 4]; 2], [[0.1f32; 4]; 1]);
/// ROPE.rotate_heads(&mut q1, cache.len())?;
/// ROPE.rotate_heads(&mut k1, cache.len())?;
/// let mut next = [[0.0f32; 4]; 2];
/// cache.step(&q1, &k1, &[[1.0, 2.0, 3.0, 4.0]], &mut next, None, None)?;
/// assert_eq!(cache.len(), 4);
/// # Ok::<(), microattn::Error>(())
/// ```
///
/// ```compile_fail
/// // An odd head dimension has no pairs.
/// let _ = microattn::rope::Rope::<8, 5>::new(10_000.0, microattn::rope::Layout::HalfSplit);
/// ```
#[derive(Clone)]
pub struct Rope<const MAX_POS: usize, const D: usize> {
    /// Per position: `cos(p·θᵢ)` for `i < D/2`, then `sin(p·θᵢ)`.
    table: [[f32; D]; MAX_POS],
    base: f64,
    layout: Layout,
}

impl<const MAX_POS: usize, const D: usize> core::fmt::Debug for Rope<MAX_POS, D> {
    /// The shape and parameters (not the table).
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rope")
            .field("max_positions", &MAX_POS)
            .field("head_dim", &D)
            .field("base", &self.base)
            .field("layout", &self.layout)
            .finish()
    }
}

impl<const MAX_POS: usize, const D: usize> Rope<MAX_POS, D> {
    /// Computes the table for frequencies `θᵢ = base^(−2i/D)` (`i < D/2`) at
    /// positions `0..MAX_POS`. A `const fn`: usable in a `static` (see
    /// [Building it at compile time](Self#building-it-at-compile-time)) or
    /// at run time, where it never panics.
    ///
    /// # Errors
    /// [`Error::InvalidRope`] if `base` is not finite or not greater than 1.
    ///
    /// ```
    /// use microattn::{Error, rope::{Layout, Rope}};
    /// let rope = Rope::<8, 4>::new(500_000.0, Layout::Interleaved)?;
    /// assert_eq!(rope.base(), 500_000.0);
    /// assert!(matches!(Rope::<8, 4>::new(1.0, Layout::HalfSplit), Err(Error::InvalidRope { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub const fn new(base: f64, layout: Layout) -> Result<Self, Error> {
        const {
            assert!(
                D >= 2 && D.is_multiple_of(2),
                "head dimension D must be even"
            );
            assert!(MAX_POS > 0, "a RoPE table holds at least one position");
            assert!(
                MAX_POS <= MAX_POSITIONS,
                "a RoPE table holds at most 2^20 positions"
            );
        };
        if !base.is_finite() {
            return Err(Error::InvalidRope {
                reason: "base is not finite",
            });
        }
        if base <= 1.0 {
            return Err(Error::InvalidRope {
                reason: "base is not greater than 1",
            });
        }
        let half = D / 2;
        let ln_base = const_math::ln(base);
        let mut table = [[0.0f32; D]; MAX_POS];
        let mut i = 0;
        while i < half {
            let theta = const_math::exp(-((2 * i) as f64 / D as f64) * ln_base);
            let mut p = 0;
            while p < MAX_POS {
                let (sin, cos) = const_math::sin_cos(p as f64 * theta);
                table[p][i] = cos as f32;
                table[p][half + i] = sin as f32;
                p += 1;
            }
            i += 1;
        }
        Ok(Rope {
            table,
            base,
            layout,
        })
    }

    /// The base the frequencies were computed from.
    #[must_use]
    #[inline]
    pub const fn base(&self) -> f64 {
        self.base
    }

    /// The pairing of dimensions the rotations use.
    #[must_use]
    #[inline]
    pub const fn layout(&self) -> Layout {
        self.layout
    }

    /// The table entry of pair `pair` at `position`: `(cos, sin)` of
    /// `position·θ_pair`, or `None` past the table (`position ≥ MAX_POS` or
    /// `pair ≥ D/2`).
    ///
    /// ```
    /// use microattn::rope::{Layout, Rope};
    /// let rope = Rope::<4, 2>::new(10_000.0, Layout::HalfSplit)?;
    /// // θ₀ = 1: the angle is the position.
    /// let (cos, sin) = rope.cos_sin(3, 0).unwrap_or_default();
    /// assert!((cos - 3f32.cos()).abs() < 1e-7 && (sin - 3f32.sin()).abs() < 1e-7);
    /// assert_eq!(rope.cos_sin(4, 0), None);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[must_use]
    #[inline]
    pub fn cos_sin(&self, position: usize, pair: usize) -> Option<(f32, f32)> {
        let (cos, sin) = self.table.get(position)?.split_at(D / 2);
        Some((*cos.get(pair)?, *sin.get(pair)?))
    }

    /// Rotates one row (one head) in place as the token at `position`.
    /// Position 0 is the identity: the row keeps its bits.
    ///
    /// # Errors
    /// [`Error::PositionOutOfRange`] if `position ≥ MAX_POS`; the row is
    /// unchanged.
    ///
    /// ```
    /// use microattn::rope::{Layout, Rope};
    /// let rope = Rope::<8, 2>::new(10_000.0, Layout::HalfSplit)?;
    /// let mut row = [1.0f32, 0.0];
    /// rope.rotate(&mut row, 2)?; // θ₀ = 1: turned by 2 radians
    /// let (cos, sin) = rope.cos_sin(2, 0).unwrap_or_default();
    /// assert_eq!(row, [cos, sin]);
    /// assert!((cos - 2f32.cos()).abs() < 1e-7 && (sin - 2f32.sin()).abs() < 1e-7);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn rotate(&self, row: &mut [f32; D], position: usize) -> Result<(), Error> {
        self.rotate_heads(core::array::from_mut(row), position)
    }

    /// Rotates every head's row of one position in place: a decode step's
    /// query (`H` heads), or one position's keys (`KVH` heads) before
    /// [`KvCache::push`](crate::KvCache::push) or
    /// [`KvCache::step`](crate::KvCache::step).
    ///
    /// # Errors
    /// [`Error::PositionOutOfRange`] if `position ≥ MAX_POS`; the rows are
    /// unchanged.
    #[inline]
    pub fn rotate_heads<const H: usize>(
        &self,
        rows: &mut [[f32; D]; H],
        position: usize,
    ) -> Result<(), Error> {
        self.rotate_run(core::array::from_mut(rows), position)
    }

    /// Rotates a run of positions in place, `rows[t]` (all its heads) as
    /// the token at `start + t`: a prompt's queries or keys before
    /// [`KvCache::prefill`](crate::KvCache::prefill) or
    /// [`KvCache::extend`](crate::KvCache::extend), with `start` the
    /// cache's length. Each position gives the bits [`rotate`](Self::rotate)
    /// gives it alone (a NaN is NaN either way; its payload is not part of
    /// the promise, as everywhere in the crate). An empty run does
    /// nothing.
    ///
    /// # Errors
    /// [`Error::PositionOutOfRange`] (the first position past the table) if
    /// `start + rows.len() > MAX_POS`, checked before anything is written:
    /// every row is unchanged.
    ///
    /// ```
    /// use microattn::{Error, rope::{Layout, Rope}};
    /// let rope = Rope::<4, 2>::new(10_000.0, Layout::HalfSplit)?;
    /// let mut rows = [[[1.0f32, 0.0]; 1]; 3];
    /// let err = rope.rotate_run(&mut rows, 2);
    /// assert_eq!(err, Err(Error::PositionOutOfRange { position: 4, max: 4 }));
    /// assert_eq!(rows, [[[1.0, 0.0]; 1]; 3]); // nothing written
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn rotate_run<const H: usize>(
        &self,
        rows: &mut [[[f32; D]; H]],
        start: usize,
    ) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let Some(tables) = self
            .table
            .get(start..)
            .and_then(|rest| rest.get(..rows.len()))
        else {
            return Err(Error::PositionOutOfRange {
                position: start.max(MAX_POS),
                max: MAX_POS,
            });
        };
        for (t, (heads, table)) in rows.iter_mut().zip(tables).enumerate() {
            if start == 0 && t == 0 {
                continue;
            }
            for row in heads {
                turn_row(table, row, self.layout);
            }
        }
        Ok(())
    }
}

/// Turns each pair of `row` by its `(cos, sin)` in `table`.
#[inline(always)]
fn turn_row<const D: usize>(table: &[f32; D], row: &mut [f32; D], layout: Layout) {
    let (cos, sin) = table.split_at(D / 2);
    match layout {
        Layout::HalfSplit => {
            let (xs, ys) = row.split_at_mut(D / 2);
            for (((x, y), &c), &s) in xs.iter_mut().zip(ys).zip(cos).zip(sin) {
                (*x, *y) = turn(*x, *y, c, s);
            }
        }
        Layout::Interleaved => {
            for (([x, y], &c), &s) in row.as_chunks_mut::<2>().0.iter_mut().zip(cos).zip(sin) {
                (*x, *y) = turn(*x, *y, c, s);
            }
        }
    }
}

/// `(x·c − y·s, x·s + y·c)`, each product and sum rounded on its own.
#[inline(always)]
fn turn(x: f32, y: f32, c: f32, s: f32) -> (f32, f32) {
    (x * c - y * s, x * s + y * c)
}
