//! The 16-bit caches (`f16` and `bf16` storage) against `f32` caches fed
//! the widened values.
//!
//! A [`Shadow`] holds, for one element type `E`, a [`KvCache`] and a
//! [`RingKvCache`] storing `E`, and the same two storing `f32`, which are
//! fed every key and value as `E::to_f32(E::from_f32(x))`. Every operation
//! ([`Op`]) goes to all four. Checked after each one:
//!
//! 1. **No panic**, and each 16-bit call returns what its `f32` twin
//!    returns (`Ok`, `CacheFull`, `LengthMismatch`: the same value).
//! 2. **Bits**: `out`, `weights` and `lse` of every `step`, `attend` and
//!    `prefill` are bit-identical to the `f32` twin's, any NaN matching any
//!    NaN (`same_bits`); the buffers start poisoned alike, so what a call
//!    leaves unwritten is compared too.
//! 3. **State**: `len`, `is_empty`, `is_full`, `capacity`, `scale` equal the
//!    twin's, and `keys()` / `values()` widened are the twin's bits (for the
//!    ring: the same two halves).
//! 4. **A failed call changes nothing**: on `CacheFull` or `LengthMismatch`
//!    the stored bits (`keys()`, `values()`, as `E`) and `out` / `lse` are
//!    those before the call.
//! 5. **Rounding on append**, independently of `half`: each stored value
//!    `s` of an input `x` keeps NaN as NaN and the sign of `x`; `|x| ≥`
//!    [`Storage::OVERFLOW`] (`f16`: 65,520, `bf16`: `0x7f7f_8000`, the ties
//!    above the largest finite value, which round to even, i.e. up) is
//!    stored as `±∞`; `MAX < |x| <` `OVERFLOW` as `±MAX`; below, `s` is
//!    finite and `|s − x| ≤ max(u·|x|, SUBNORMAL_STEP / 2)` (the crate's
//!    [`Element::UNIT_ROUNDOFF`] and [`Element::SUBNORMAL_STEP`]).
//!
//! [`wide`] runs the same checks on a second shape, with `D = 17` (two
//! 8-value chunks and a tail, or a 16-value chunk and a tail) and a
//! capacity of several kernel blocks, so that the widening loads, the whole
//! blocks, the ring's seam block and the tails all run; its values come
//! one byte each (a table of edge values, or a small value of random
//! significand and a per-operation magnitude from `f16`'s subnormals to
//! past its range), so that long caches fit in short inputs.

use microattn::{Element, KvCache, RingKvCache, bf16, f16};

use super::same_bits::difference;
use super::{Bytes, POISON};

/// One position's keys (or values), all key/value heads.
pub type Pos<const KVH: usize, const D: usize> = [[f32; D]; KVH];
/// One position's queries, all query heads.
pub type Qs<const H: usize, const D: usize> = [[f32; D]; H];

/// One operation on every cache of a [`Shadow`].
#[derive(Debug)]
pub enum Op<const H: usize, const KVH: usize, const D: usize> {
    Push(Pos<KVH, D>, Pos<KVH, D>),
    Extend(Vec<Pos<KVH, D>>, Vec<Pos<KVH, D>>),
    /// `out` has `out_len` positions, `lse` (if asked for) `lse_len`.
    Prefill {
        q: Vec<Qs<H, D>>,
        k: Vec<Pos<KVH, D>>,
        v: Vec<Pos<KVH, D>>,
        out_len: usize,
        lse_len: Option<usize>,
    },
    /// `step` with `kv`, else `attend`.
    Step {
        q: Qs<H, D>,
        kv: Option<(Pos<KVH, D>, Pos<KVH, D>)>,
        weights: bool,
        lse: bool,
    },
    /// The plain caches; the rings too if `ring`.
    Clear {
        ring: bool,
    },
    /// The plain caches (a ring has no truncate).
    Truncate(usize),
}

/// What the checks need of a 16-bit element beyond [`Element`].
pub trait Storage: Element {
    /// The largest finite value.
    const MAX: f32;
    /// The smallest `|x|` stored as `±∞`: halfway from `MAX` to the next
    /// power of two, a tie that rounds to even (`MAX`'s significand is odd).
    const OVERFLOW: f32;
    fn bits(self) -> u16;
}

impl Storage for f16 {
    const MAX: f32 = 65504.0;
    const OVERFLOW: f32 = 65520.0;
    fn bits(self) -> u16 {
        self.to_bits()
    }
}

impl Storage for bf16 {
    const MAX: f32 = f32::from_bits(0x7f7f_0000);
    const OVERFLOW: f32 = f32::from_bits(0x7f7f_8000);
    fn bits(self) -> u16 {
        self.to_bits()
    }
}

/// `x` as an `f32` cache fed the rounded value holds it.
fn widen<E: Element>(x: f32) -> f32 {
    Element::to_f32(<E as Element>::from_f32(x))
}

fn widen_pos<E: Element, const KVH: usize, const D: usize>(p: &Pos<KVH, D>) -> Pos<KVH, D> {
    p.map(|row| row.map(widen::<E>))
}

fn widen_all<E: Element, const KVH: usize, const D: usize>(p: &[Pos<KVH, D>]) -> Vec<Pos<KVH, D>> {
    p.iter().map(widen_pos::<E, KVH, D>).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Property 2: the same bits, else a panic naming `what` and the first
/// difference.
fn same(a: &[f32], b: &[f32], what: impl Fn() -> String) {
    if let Some(d) = difference(a, b) {
        panic!("{} differs from the f32 twin's: {d}", what());
    }
}

/// Stored positions as their 16-bit patterns.
fn raw<E: Storage, const KVH: usize, const D: usize>(p: &[[[E; D]; KVH]]) -> Vec<u16> {
    p.as_flattened()
        .as_flattened()
        .iter()
        .map(|e| e.bits())
        .collect()
}

/// Stored positions widened to `f32` bits.
fn wide_bits<E: Storage, const KVH: usize, const D: usize>(p: &[[[E; D]; KVH]]) -> Vec<u32> {
    p.as_flattened()
        .as_flattened()
        .iter()
        .map(|e| Element::to_f32(*e).to_bits())
        .collect()
}

/// Property 5 for one value.
fn check_rounding<E: Storage>(x: f32, s: E) {
    let w = Element::to_f32(s);
    let name = E::NAME;
    if x.is_nan() {
        assert!(w.is_nan(), "{name}: NaN {:#x} stored as {w}", x.to_bits());
        return;
    }
    assert_eq!(
        w.is_sign_negative(),
        x.is_sign_negative(),
        "{name}: {x:e} stored as {w:e}, sign changed"
    );
    let a = x.abs();
    if a >= E::OVERFLOW {
        assert!(
            w.is_infinite(),
            "{name}: {x:e} (past range) stored as {w:e}, not ±inf"
        );
    } else if a > E::MAX {
        assert_eq!(
            w.abs(),
            E::MAX,
            "{name}: {x:e} (rounds to MAX) stored as {w:e}"
        );
    } else {
        assert!(w.is_finite(), "{name}: {x:e} (in range) stored as {w:e}");
        let err = (f64::from(w) - f64::from(x)).abs();
        let bound =
            (f64::from(E::UNIT_ROUNDOFF) * f64::from(a)).max(f64::from(E::SUBNORMAL_STEP) / 2.0);
        assert!(
            err <= bound,
            "{name}: {x:e} stored as {w:e}, error {err:e} > {bound:e}"
        );
    }
}

/// Property 5 for positions appended from `inputs` (the same count).
fn check_stored<'a, E: Storage + 'a, const KVH: usize, const D: usize>(
    stored: impl IntoIterator<Item = &'a [[E; D]; KVH]>,
    inputs: &[Pos<KVH, D>],
) {
    for (s, x) in stored.into_iter().zip(inputs) {
        for (s, x) in s.as_flattened().iter().zip(x.as_flattened()) {
            check_rounding(*x, *s);
        }
    }
}

/// The last `n` positions of a plain cache's storage.
fn last<T>(x: &[T], n: usize) -> &[T] {
    &x[x.len() - n.min(x.len())..]
}

/// A 16-bit plain cache and ring, and their `f32` twins fed the widened
/// values.
pub struct Shadow<
    E: Storage,
    const CAP: usize,
    const WINDOW: usize,
    const KVH: usize,
    const D: usize,
> {
    plain: KvCache<CAP, KVH, D, E>,
    plain32: KvCache<CAP, KVH, D>,
    ring: RingKvCache<WINDOW, KVH, D, E>,
    ring32: RingKvCache<WINDOW, KVH, D>,
}

impl<E: Storage, const CAP: usize, const WINDOW: usize, const KVH: usize, const D: usize>
    Shadow<E, CAP, WINDOW, KVH, D>
{
    /// Empty caches with this scale (`None`: the default).
    pub fn new(scale: Option<f32>) -> Self {
        match scale {
            Some(s) => Shadow {
                plain: KvCache::with_scale(s),
                plain32: KvCache::with_scale(s),
                ring: RingKvCache::with_scale(s),
                ring32: RingKvCache::with_scale(s),
            },
            None => Shadow {
                plain: KvCache::new(),
                plain32: KvCache::new(),
                ring: RingKvCache::new(),
                ring32: RingKvCache::new(),
            },
        }
    }

    fn plain_raw(&self) -> (Vec<u16>, Vec<u16>) {
        (raw(self.plain.keys()), raw(self.plain.values()))
    }

    /// The ring's two halves, their lengths and raw bits.
    fn ring_raw(&self) -> ((usize, usize), Vec<u16>, Vec<u16>) {
        let (k, v) = (self.ring.keys(), self.ring.values());
        (
            (k.0.len(), k.1.len()),
            [raw(k.0), raw(k.1)].concat(),
            [raw(v.0), raw(v.1)].concat(),
        )
    }

    /// The ring's positions, oldest first.
    fn ring_positions(&self) -> (Vec<[[E; D]; KVH]>, Vec<[[E; D]; KVH]>) {
        let (k, v) = (self.ring.keys(), self.ring.values());
        ([k.0, k.1].concat(), [v.0, v.1].concat())
    }

    /// Property 5 on the ring's newest positions, pushed from `k`, `v`.
    fn check_ring_stored(&self, k: &[Pos<KVH, D>], v: &[Pos<KVH, D>]) {
        let n = k.len().min(WINDOW);
        let (rk, rv) = self.ring_positions();
        check_stored(last(&rk, n), last(k, n));
        check_stored(last(&rv, n), last(v, n));
    }

    /// Properties 1, 2 and 4 for one operation (property 3 after it).
    pub fn apply<const H: usize>(&mut self, op: &Op<H, KVH, D>) {
        let name = E::NAME;
        match op {
            Op::Push(k, v) => {
                let (kw, vw) = (widen_pos::<E, KVH, D>(k), widen_pos::<E, KVH, D>(v));
                let before = self.plain_raw();
                let r = self.plain.push(k, v);
                assert_eq!(r, self.plain32.push(&kw, &vw), "{name} push result");
                if r.is_err() {
                    assert_eq!(
                        self.plain_raw(),
                        before,
                        "{name}: failed push changed the cache"
                    );
                } else {
                    check_stored(last(self.plain.keys(), 1), std::slice::from_ref(k));
                    check_stored(last(self.plain.values(), 1), std::slice::from_ref(v));
                }
                self.ring.push(k, v);
                self.ring32.push(&kw, &vw);
                self.check_ring_stored(std::slice::from_ref(k), std::slice::from_ref(v));
            }
            Op::Extend(k, v) => {
                let (kw, vw) = (widen_all::<E, KVH, D>(k), widen_all::<E, KVH, D>(v));
                let before = self.plain_raw();
                let r = self.plain.extend(k, v);
                assert_eq!(r, self.plain32.extend(&kw, &vw), "{name} extend result");
                if r.is_err() {
                    assert_eq!(
                        self.plain_raw(),
                        before,
                        "{name}: failed extend changed the cache"
                    );
                } else {
                    check_stored(last(self.plain.keys(), k.len()), k);
                    check_stored(last(self.plain.values(), v.len()), v);
                }
                let before = self.ring_raw();
                let r = self.ring.extend(k, v);
                assert_eq!(r, self.ring32.extend(&kw, &vw), "{name} ring extend result");
                if r.is_err() {
                    assert_eq!(
                        self.ring_raw(),
                        before,
                        "{name}: failed ring extend changed it"
                    );
                } else {
                    self.check_ring_stored(k, v);
                }
            }
            Op::Prefill {
                q,
                k,
                v,
                out_len,
                lse_len,
            } => self.prefill(q, k, v, *out_len, *lse_len, op),
            Op::Step {
                q,
                kv,
                weights,
                lse,
            } => self.step(q, kv.as_ref(), *weights, *lse, op),
            Op::Clear { ring } => {
                self.plain.clear();
                self.plain32.clear();
                if *ring {
                    self.ring.clear();
                    self.ring32.clear();
                }
            }
            Op::Truncate(len) => {
                self.plain.truncate(*len);
                self.plain32.truncate(*len);
            }
        }
        self.check_state();
    }

    fn prefill<const H: usize>(
        &mut self,
        q: &[Qs<H, D>],
        k: &[Pos<KVH, D>],
        v: &[Pos<KVH, D>],
        out_len: usize,
        lse_len: Option<usize>,
        op: &Op<H, KVH, D>,
    ) {
        let name = E::NAME;
        let scale = self.plain.scale();
        let held = (self.plain.len(), self.ring.len());
        let (kw, vw) = (widen_all::<E, KVH, D>(k), widen_all::<E, KVH, D>(v));
        let buffers = || {
            (
                vec![[[POISON; D]; H]; out_len],
                lse_len.map(|n| vec![[POISON; H]; n]),
            )
        };
        // Plain.
        let (mut out, mut lse) = buffers();
        let (mut out32, mut lse32) = buffers();
        let before = self.plain_raw();
        let r = self.plain.prefill(q, k, v, &mut out, lse.as_deref_mut());
        let r32 = self
            .plain32
            .prefill(q, &kw, &vw, &mut out32, lse32.as_deref_mut());
        assert_eq!(r, r32, "{name} prefill result");
        let flat = |o: &[Qs<H, D>]| bits(o.as_flattened().as_flattened());
        let flat_lse = |l: &Option<Vec<[f32; H]>>| l.as_ref().map(|l| bits(l.as_flattened()));
        same(
            out.as_flattened().as_flattened(),
            out32.as_flattened().as_flattened(),
            || format!("{name} prefill out, scale {scale:e}, {held:?} held, {op:?}"),
        );
        if let (Some(l), Some(l32)) = (&lse, &lse32) {
            same(l.as_flattened(), l32.as_flattened(), || {
                format!("{name} prefill lse, scale {scale:e}, {held:?} held, {op:?}")
            });
        }
        if r.is_err() {
            assert_eq!(
                self.plain_raw(),
                before,
                "{name}: failed prefill changed the cache"
            );
            assert_eq!(
                flat(&out),
                flat(&buffers().0),
                "{name}: failed prefill wrote out"
            );
            assert_eq!(
                flat_lse(&lse),
                flat_lse(&buffers().1),
                "{name}: failed prefill wrote lse"
            );
        } else {
            check_stored(last(self.plain.keys(), k.len()), k);
            check_stored(last(self.plain.values(), v.len()), v);
        }
        // Ring.
        let (mut out, mut lse) = buffers();
        let (mut out32, mut lse32) = buffers();
        let before = self.ring_raw();
        let r = self.ring.prefill(q, k, v, &mut out, lse.as_deref_mut());
        let r32 = self
            .ring32
            .prefill(q, &kw, &vw, &mut out32, lse32.as_deref_mut());
        assert_eq!(r, r32, "{name} ring prefill result");
        same(
            out.as_flattened().as_flattened(),
            out32.as_flattened().as_flattened(),
            || format!("{name} ring prefill out, scale {scale:e}, {held:?} held, {op:?}"),
        );
        if let (Some(l), Some(l32)) = (&lse, &lse32) {
            same(l.as_flattened(), l32.as_flattened(), || {
                format!("{name} ring prefill lse, scale {scale:e}, {held:?} held, {op:?}")
            });
        }
        if r.is_err() {
            assert_eq!(
                self.ring_raw(),
                before,
                "{name}: failed ring prefill changed it"
            );
            assert_eq!(
                flat(&out),
                flat(&buffers().0),
                "{name}: failed ring prefill wrote out"
            );
        } else {
            self.check_ring_stored(k, v);
        }
    }

    fn step<const H: usize>(
        &mut self,
        q: &Qs<H, D>,
        kv: Option<&(Pos<KVH, D>, Pos<KVH, D>)>,
        want_w: bool,
        want_lse: bool,
        op: &Op<H, KVH, D>,
    ) {
        let name = E::NAME;
        let scale = self.plain.scale();
        let kvw = kv.map(|(k, v)| (widen_pos::<E, KVH, D>(k), widen_pos::<E, KVH, D>(v)));
        // Plain.
        let mut o = [[[POISON; D]; H]; 2];
        let mut w = [[[POISON; CAP]; H]; 2];
        let mut l = [[POISON; H]; 2];
        let before = self.plain_raw();
        let ([o16, o32], [w16, w32], [l16, l32]) = (&mut o, &mut w, &mut l);
        let (r, r32) = match (kv, &kvw) {
            (Some((k, v)), Some((kw, vw))) => (
                self.plain
                    .step(q, k, v, o16, want_w.then_some(w16), want_lse.then_some(l16)),
                self.plain32.step(
                    q,
                    kw,
                    vw,
                    o32,
                    want_w.then_some(w32),
                    want_lse.then_some(l32),
                ),
            ),
            _ => {
                self.plain
                    .attend(q, o16, want_w.then_some(w16), want_lse.then_some(l16));
                self.plain32
                    .attend(q, o32, want_w.then_some(w32), want_lse.then_some(l32));
                (Ok(()), Ok(()))
            }
        };
        assert_eq!(r, r32, "{name} step result");
        let what = if kv.is_some() { "step" } else { "attend" };
        let len = self.plain.len();
        same(o[0].as_flattened(), o[1].as_flattened(), || {
            format!("{name} {what} out, {len} positions, scale {scale:e}, {op:?}")
        });
        same(w[0].as_flattened(), w[1].as_flattened(), || {
            format!("{name} {what} weights, {len} positions, scale {scale:e}, {op:?}")
        });
        same(&l[0], &l[1], || {
            format!("{name} {what} lse, {len} positions, scale {scale:e}, {op:?}")
        });
        if r.is_err() {
            assert_eq!(
                self.plain_raw(),
                before,
                "{name}: failed step changed the cache"
            );
            let untouched = o[0]
                .as_flattened()
                .iter()
                .chain(w[0].as_flattened())
                .chain(&l[0]);
            assert!(
                untouched
                    .into_iter()
                    .all(|x| x.to_bits() == POISON.to_bits()),
                "{name}: failed step wrote"
            );
        } else if let Some((k, v)) = kv {
            check_stored(last(self.plain.keys(), 1), std::slice::from_ref(k));
            check_stored(last(self.plain.values(), 1), std::slice::from_ref(v));
        }
        // Ring.
        let mut o = [[[POISON; D]; H]; 2];
        let mut w = [[[POISON; WINDOW]; H]; 2];
        let mut l = [[POISON; H]; 2];
        let ([o16, o32], [w16, w32], [l16, l32]) = (&mut o, &mut w, &mut l);
        match (kv, &kvw) {
            (Some((k, v)), Some((kw, vw))) => {
                self.ring
                    .step(q, k, v, o16, want_w.then_some(w16), want_lse.then_some(l16));
                self.ring32.step(
                    q,
                    kw,
                    vw,
                    o32,
                    want_w.then_some(w32),
                    want_lse.then_some(l32),
                );
                self.check_ring_stored(std::slice::from_ref(k), std::slice::from_ref(v));
            }
            _ => {
                self.ring
                    .attend(q, o16, want_w.then_some(w16), want_lse.then_some(l16));
                self.ring32
                    .attend(q, o32, want_w.then_some(w32), want_lse.then_some(l32));
            }
        }
        let len = self.ring.len();
        same(o[0].as_flattened(), o[1].as_flattened(), || {
            format!("{name} ring {what} out, {len} positions, scale {scale:e}, {op:?}")
        });
        same(w[0].as_flattened(), w[1].as_flattened(), || {
            format!("{name} ring {what} weights, {len} positions, scale {scale:e}, {op:?}")
        });
        same(&l[0], &l[1], || {
            format!("{name} ring {what} lse, {len} positions, scale {scale:e}, {op:?}")
        });
    }

    /// Property 3.
    fn check_state(&self) {
        let name = E::NAME;
        let (p, p32) = (&self.plain, &self.plain32);
        assert_eq!(p.len(), p32.len(), "{name} len");
        assert_eq!(p.is_empty(), p32.is_empty(), "{name} is_empty");
        assert_eq!(p.is_full(), p32.is_full(), "{name} is_full");
        assert_eq!(p.capacity(), CAP);
        assert_eq!(p.scale().to_bits(), p32.scale().to_bits(), "{name} scale");
        let flat = |x: &[Pos<KVH, D>]| bits(x.as_flattened().as_flattened());
        assert_eq!(
            wide_bits(p.keys()),
            flat(p32.keys()),
            "{name} keys, widened"
        );
        assert_eq!(
            wide_bits(p.values()),
            flat(p32.values()),
            "{name} values, widened"
        );

        let (r, r32) = (&self.ring, &self.ring32);
        assert_eq!(r.len(), r32.len(), "{name} ring len");
        assert_eq!(r.is_empty(), r32.is_empty(), "{name} ring is_empty");
        assert_eq!(r.is_full(), r32.is_full(), "{name} ring is_full");
        assert_eq!(r.capacity(), WINDOW);
        assert_eq!(
            r.scale().to_bits(),
            r32.scale().to_bits(),
            "{name} ring scale"
        );
        for (h, h32, what) in [
            (r.keys(), r32.keys(), "keys"),
            (r.values(), r32.values(), "values"),
        ] {
            assert_eq!(
                (h.0.len(), h.1.len()),
                (h32.0.len(), h32.1.len()),
                "{name} ring {what}: halves"
            );
            assert_eq!(
                [wide_bits(h.0), wide_bits(h.1)].concat(),
                [flat(h32.0), flat(h32.1)].concat(),
                "{name} ring {what}, widened"
            );
        }
    }
}

/// Edge values for the one-byte reader: NaNs (quiet, signalling, with a
/// payload), infinities, zeros, `f16`'s largest value and the ties around
/// it, `bf16`'s overflow tie, subnormals of both types and of `f32`, ties
/// to even in the significand.
const EDGES: [f32; 32] = [
    f32::NAN,
    f32::from_bits(0xffc0_0000),
    f32::from_bits(0x7f80_0001),
    f32::from_bits(0x7fc0_dead),
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    65504.0,
    -65504.0,
    f32::from_bits(0x477f_efff),
    65520.0,
    -65520.0,
    65536.0,
    f32::MAX,
    -f32::MAX,
    f32::from_bits(0x7f7f_7fff),
    f32::from_bits(0x7f7f_8000),
    f32::MIN_POSITIVE,
    f32::from_bits(1),
    f32::from_bits(0x3380_0000),
    f32::from_bits(0x3300_0000),
    f32::from_bits(0x3340_0000),
    f32::from_bits(0x3880_0000),
    1.0,
    -1.0,
    f32::from_bits(0x3f80_1000),
    f32::from_bits(0x3f80_3000),
    f32::from_bits(0x3f81_0000),
    0.1,
    100.0,
    -100.0,
];

/// The one-byte value reader of [`wide`]: per operation, raw bits (4 bytes
/// a value) or one byte a value with a magnitude and a random stream.
struct Values {
    raw: bool,
    scale: f32,
    state: u32,
}

impl Values {
    fn new(bytes: &mut Bytes<'_>) -> Self {
        let b = bytes.u8();
        let seed = bytes.u32();
        Values {
            raw: b % 4 == 0,
            // 2^-28 .. 2^19: f16 underflow to past its range.
            scale: 2f32.powi(i32::from(b / 4 % 48) - 28),
            state: seed | 1,
        }
    }
    fn next(&mut self, bytes: &mut Bytes<'_>) -> f32 {
        if self.raw {
            return f32::from_bits(bytes.u32());
        }
        let b = bytes.u8();
        if usize::from(b) < EDGES.len() {
            return EDGES[usize::from(b)];
        }
        // xorshift32: a significand of random bits.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let frac = 1.0 + (self.state >> 9) as f32 / 8_388_608.0;
        f32::from(b as i8) / 8.0 * frac * self.scale
    }
    fn array<const R: usize, const D: usize>(&mut self, bytes: &mut Bytes<'_>) -> [[f32; D]; R] {
        let mut a = [[0.0; D]; R];
        a.as_flattened_mut()
            .iter_mut()
            .for_each(|x| *x = self.next(bytes));
        a
    }
    fn arrays<const R: usize, const D: usize>(
        &mut self,
        bytes: &mut Bytes<'_>,
        n: usize,
    ) -> Vec<[[f32; D]; R]> {
        (0..n).map(|_| self.array::<R, D>(bytes)).collect()
    }
}

/// A count usually `n`, sometimes one more or one less.
fn maybe_wrong(bytes: &mut Bytes<'_>, n: usize) -> usize {
    match bytes.u8() {
        0 => n + 1,
        1 => n.saturating_sub(1),
        _ => n,
    }
}

/// One operation for a cache of `cap` positions, `len` of them held.
fn op<const H: usize, const KVH: usize, const D: usize>(
    bytes: &mut Bytes<'_>,
    cap: usize,
    len: usize,
) -> Op<H, KVH, D> {
    let which = bytes.u8() % 8;
    let mut vals = Values::new(bytes);
    match which {
        0 => {
            let p = vals.arrays(bytes, 2);
            Op::Push(p[0], p[1])
        }
        // Up to cap + 1 positions, or exactly what fills the cache.
        1 | 7 => {
            let n = if which == 7 {
                cap.saturating_sub(len)
            } else {
                usize::from(bytes.u8()) % (cap + 2)
            };
            let nv = maybe_wrong(bytes, n);
            Op::Extend(vals.arrays(bytes, n), vals.arrays(bytes, nv))
        }
        2 => {
            let n = usize::from(bytes.u8()) % (cap + 2);
            let want_lse = bytes.u8() % 2 == 0;
            let (nk, nout) = (maybe_wrong(bytes, n), maybe_wrong(bytes, n));
            let lse_len = want_lse.then(|| maybe_wrong(bytes, n));
            let k = vals.arrays(bytes, nk);
            let v = vals.arrays(bytes, n);
            let q = vals.arrays(bytes, n);
            Op::Prefill {
                q,
                k,
                v,
                out_len: nout,
                lse_len,
            }
        }
        3 | 4 => {
            let b = bytes.u8();
            let q = vals.array::<H, D>(bytes);
            let kv = (which == 3).then(|| {
                let p = vals.arrays(bytes, 2);
                (p[0], p[1])
            });
            Op::Step {
                q,
                kv,
                weights: b & 1 != 0,
                lse: b & 2 != 0,
            }
        }
        5 => Op::Clear {
            ring: bytes.u8() % 2 == 0,
        },
        _ => Op::Truncate(usize::from(bytes.u8()) % (cap + 2)),
    }
}

/// The wide shape: `D = 17`, 4 query heads over 2 key/value heads, a plain
/// cache of 40 and a ring of 35 positions.
const WIDE_CAP: usize = 40;
const WIDE_WINDOW: usize = 35;
const WIDE_KVH: usize = 2;
const WIDE_H: usize = 4;
const WIDE_D: usize = 17;

/// The input read again as operations on the wide shape, both 16-bit
/// types (the first byte: the scale, as for the narrow shape).
pub fn wide(data: &[u8]) {
    let mut bytes = Bytes(data);
    let scale = match bytes.u8() % 4 {
        0 => Some(f32::from_bits(bytes.u32())),
        1 => Some(bytes.f32(Some(2.0 * microattn::default_scale(WIDE_D)))),
        _ => None,
    };
    let mut half = Shadow::<f16, WIDE_CAP, WIDE_WINDOW, WIDE_KVH, WIDE_D>::new(scale);
    let mut brain = Shadow::<bf16, WIDE_CAP, WIDE_WINDOW, WIDE_KVH, WIDE_D>::new(scale);
    let mut ops = 0;
    while !bytes.is_empty() && ops < 48 {
        ops += 1;
        let op = op::<WIDE_H, WIDE_KVH, WIDE_D>(&mut bytes, WIDE_CAP, half.plain.len());
        half.apply(&op);
        brain.apply(&op);
    }
}
