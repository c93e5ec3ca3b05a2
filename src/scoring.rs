//! What a scored call adds to the plain causal scores ([`Scoring`]), its
//! one check against a problem's sizes, and the view of it one query row
//! takes.

use crate::error::{Buffer, Error};

/// Changes to the scores of causal attention beyond the causal mask, for
/// [`causal_attention_scored`](crate::causal_attention_scored) and a
/// [`KvCache`](crate::KvCache)'s scored calls. Each is off unless set;
/// with none set a scored call gives the plain call's bits.
///
/// For query position `i` (its absolute position, bottom-right aligned as
/// in [`Shape`](crate::Shape)), head `h` and key position `j ≤ i`, the
/// score `s = scale·q·k` becomes, in this order:
///
/// 1. `s = cap·tanh(s / cap)` with a [soft cap](Self::soft_cap)
///    (Gemma 2's logit soft-capping);
/// 2. `s = s + key_bias[j]` ([`key_bias`](Self::key_bias)), then
///    `s = s + score_bias[i, j]` ([`score_bias`](Self::score_bias)), then
///    `s = s + slope[h]·(j − i)` ([`alibi`](Self::alibi), the bias
///    `−slope·(i − j)`), each one `f32` addition;
/// 3. `s = −∞` where `key_mask[j]` is `false` ([`key_mask`](Self::key_mask)).
///
/// A score of `−∞`, from the mask or from a `−∞` bias, is a mask: its key
/// is never multiplied into the output (a NaN in its value changes
/// nothing), and a row whose every key is masked is exactly 0. A
/// [sink logit](Self::sinks) joins each row's softmax denominator with no
/// value: `out = Σⱼ e^{sⱼ}·vⱼ / (e^{sink} + Σⱼ e^{sⱼ})`.
///
/// The buffers are per call: a key mask or key bias has one entry per key
/// position (`kv_len`), a score bias `q_len × kv_len` values (row `t` for
/// query position `t` of the call, shared by every head) or `heads × q_len ×
/// kv_len` (one plane per head), ALiBi slopes and sink logits one per
/// query head.
///
/// ```
/// use microattn::{Scoring, Shape, causal_attention_scored};
/// let shape = Shape::new(2, 2, 1, 1, 1).with_scale(1.0);
/// let (q, k, v) = ([1.0f32, 1.0], [1.0f32, 1.0], [10.0f32, 20.0]);
/// let mut out = [0.0f32; 2];
/// // Key 1 masked for every query: both rows see only key 0.
/// let scoring = Scoring::new().key_mask(&[true, false]);
/// causal_attention_scored(&shape, &scoring, &q, &k, &v, &mut out)?;
/// assert_eq!(out, [10.0, 10.0]);
/// # Ok::<(), microattn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scoring<'a> {
    key_mask: Option<&'a [bool]>,
    key_bias: Option<&'a [f32]>,
    score_bias: Option<&'a [f32]>,
    slopes: Option<&'a [f32]>,
    soft_cap: Option<f32>,
    sinks: Option<&'a [f32]>,
}

impl<'a> Scoring<'a> {
    /// Nothing added: the plain causal scores.
    #[must_use]
    #[inline]
    pub const fn new() -> Self {
        Scoring {
            key_mask: None,
            key_bias: None,
            score_bias: None,
            slopes: None,
            soft_cap: None,
            sinks: None,
        }
    }

    /// Keys `j` with `mask[j] == false` are masked for every query (on top
    /// of causality); `kv_len` entries.
    #[must_use]
    #[inline]
    pub const fn key_mask(self, mask: &'a [bool]) -> Self {
        Scoring {
            key_mask: Some(mask),
            ..self
        }
    }

    /// `bias[j]` added to every query's score of key `j`; `kv_len` values.
    #[must_use]
    #[inline]
    pub const fn key_bias(self, bias: &'a [f32]) -> Self {
        Scoring {
            key_bias: Some(bias),
            ..self
        }
    }

    /// `bias[t·kv_len + j]` (or `bias[(h·q_len + t)·kv_len + j]`, one plane
    /// per head) added to the score of query position `t` of the call and
    /// key `j`; entries for keys a query does not see are never read.
    #[must_use]
    #[inline]
    pub const fn score_bias(self, bias: &'a [f32]) -> Self {
        Scoring {
            score_bias: Some(bias),
            ..self
        }
    }

    /// ALiBi: head `h` adds `−slopes[h]·(i − j)` to the score of key `j`
    /// from query position `i`, computed in the kernel (no `N × N` buffer;
    /// exact distances up to `2²⁴` positions). [`alibi_slopes`] gives the
    /// standard slopes.
    #[must_use]
    #[inline]
    pub const fn alibi(self, slopes: &'a [f32]) -> Self {
        Scoring {
            slopes: Some(slopes),
            ..self
        }
    }

    /// Logit soft-capping: `s ← cap·tanh(s / cap)` before the biases and
    /// masks, with the kernel's lane `tanh` (its error bound is in the
    /// crate docs' numerics). An infinite score becomes `±cap`.
    #[must_use]
    #[inline]
    pub const fn soft_cap(self, cap: f32) -> Self {
        Scoring {
            soft_cap: Some(cap),
            ..self
        }
    }

    /// A learned logit per head that joins the softmax's denominator and
    /// weighs no value (the "sink" of gpt-oss); one per query head.
    #[must_use]
    #[inline]
    pub const fn sinks(self, logits: &'a [f32]) -> Self {
        Scoring {
            sinks: Some(logits),
            ..self
        }
    }

    /// The key mask, if set.
    #[must_use]
    #[inline]
    pub const fn get_key_mask(&self) -> Option<&'a [bool]> {
        self.key_mask
    }

    /// The per-key bias, if set.
    #[must_use]
    #[inline]
    pub const fn get_key_bias(&self) -> Option<&'a [f32]> {
        self.key_bias
    }

    /// The per-(query, key) bias, if set.
    #[must_use]
    #[inline]
    pub const fn get_score_bias(&self) -> Option<&'a [f32]> {
        self.score_bias
    }

    /// The ALiBi slopes, if set.
    #[must_use]
    #[inline]
    pub const fn get_alibi(&self) -> Option<&'a [f32]> {
        self.slopes
    }

    /// The soft cap, if set.
    #[must_use]
    #[inline]
    pub const fn get_soft_cap(&self) -> Option<f32> {
        self.soft_cap
    }

    /// The sink logits, if set.
    #[must_use]
    #[inline]
    pub const fn get_sinks(&self) -> Option<&'a [f32]> {
        self.sinks
    }

    /// Checks these settings against a call of `q_len` queries over
    /// `kv_len` keys with `heads` query heads. The scored calls run it
    /// before any arithmetic; it is public for the reference and for
    /// callers who prepare a scoring once.
    ///
    /// # Errors
    /// In this order:
    /// - [`Error::LengthMismatch`] for a buffer of the wrong length
    ///   ([`Buffer::KeyMask`], [`Buffer::KeyBias`], [`Buffer::ScoreBias`],
    ///   [`Buffer::Slopes`], [`Buffer::Sinks`]);
    /// - [`Error::SizeOverflow`] if `heads·q_len·kv_len` overflows and a
    ///   score bias is set;
    /// - [`Error::InvalidScoring`] for a soft cap that is not finite and
    ///   positive, a slope or a sink logit that is not finite.
    ///
    /// ```
    /// use microattn::{Buffer, Error, Scoring};
    /// let ok = Scoring::new().alibi(&[0.5, 0.25]);
    /// assert_eq!(ok.check(3, 5, 2), Ok(()));
    /// let short = Scoring::new().key_mask(&[true; 4]);
    /// assert!(matches!(short.check(3, 5, 2), Err(Error::LengthMismatch { buffer: Buffer::KeyMask, .. })));
    /// let zero_cap = Scoring::new().soft_cap(0.0);
    /// assert!(matches!(zero_cap.check(3, 5, 2), Err(Error::InvalidScoring { what: "soft cap", .. })));
    /// ```
    #[inline]
    pub fn check(&self, q_len: usize, kv_len: usize, heads: usize) -> Result<(), Error> {
        self.checked(q_len, kv_len, heads).map(|_| ())
    }

    /// [`check`](Self::check), keeping what the kernel needs.
    #[inline]
    pub(crate) fn checked(
        &self,
        q_len: usize,
        kv_len: usize,
        heads: usize,
    ) -> Result<Checked<'a>, Error> {
        let length = |buffer, expected: usize, actual: Option<usize>| match actual {
            Some(actual) if actual != expected => Err(Error::LengthMismatch {
                buffer,
                expected,
                actual,
            }),
            _ => Ok(()),
        };
        length(Buffer::KeyMask, kv_len, self.key_mask.map(<[bool]>::len))?;
        length(Buffer::KeyBias, kv_len, self.key_bias.map(<[f32]>::len))?;
        let mut per_head_bias = false;
        if let Some(bias) = self.score_bias {
            let plane = q_len.checked_mul(kv_len).ok_or(Error::SizeOverflow)?;
            if bias.len() != plane {
                let all = plane.checked_mul(heads).ok_or(Error::SizeOverflow)?;
                length(
                    Buffer::ScoreBias,
                    plane,
                    (bias.len() != all).then_some(bias.len()),
                )?;
                per_head_bias = true;
            }
        }
        length(Buffer::Slopes, heads, self.slopes.map(<[f32]>::len))?;
        length(Buffer::Sinks, heads, self.sinks.map(<[f32]>::len))?;
        if let Some(cap) = self.soft_cap
            && !(cap.is_finite() && cap > 0.0)
        {
            return Err(Error::InvalidScoring {
                what: "soft cap",
                reason: "must be finite and positive",
            });
        }
        let finite = |what, values: Option<&[f32]>| {
            if values.is_some_and(|x| x.iter().any(|x| !x.is_finite())) {
                return Err(Error::InvalidScoring {
                    what,
                    reason: "must be finite",
                });
            }
            Ok(())
        };
        finite("slope", self.slopes)?;
        finite("sink", self.sinks)?;
        Ok(Checked {
            scoring: *self,
            q_len,
            kv_len,
            heads,
            per_head_bias,
        })
    }
}

/// A [`Scoring`] that passed [`Scoring::check`] for these sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checked<'a> {
    scoring: Scoring<'a>,
    q_len: usize,
    kv_len: usize,
    heads: usize,
    per_head_bias: bool,
}

/// What one query row's scores take from a checked [`Scoring`]: every
/// buffer cut to the keys it sees, indexed by key position.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowScoring<'a> {
    /// The soft cap.
    pub(crate) soft_cap: Option<f32>,
    /// The per-key bias.
    pub(crate) key_bias: Option<&'a [f32]>,
    /// This row's slice of the per-(query, key) bias.
    pub(crate) score_bias: Option<&'a [f32]>,
    /// This head's ALiBi slope and the query's position.
    pub(crate) alibi: Option<(f32, usize)>,
    /// The per-key mask.
    pub(crate) key_mask: Option<&'a [bool]>,
    /// This head's sink logit.
    pub(crate) sink: Option<f32>,
}

impl<'a> Checked<'a> {
    /// The view of output row `row` (token-major, then head) of a query that
    /// sees keys `0..visible` (so it sits at position `visible − 1`).
    #[inline(always)]
    pub(crate) fn row(&self, row: usize, visible: usize) -> RowScoring<'a> {
        let s = &self.scoring;
        let (token, head) = (row / self.heads.max(1), row % self.heads.max(1));
        let seen = |n: usize| ..visible.min(n);
        let score_bias = s.score_bias.and_then(|b| {
            let plane = if self.per_head_bias { head } else { 0 };
            let first = (plane * self.q_len + token) * self.kv_len;
            b.get(first..first + visible.min(self.kv_len))
        });
        RowScoring {
            soft_cap: s.soft_cap,
            key_bias: s.key_bias.and_then(|b| b.get(seen(b.len()))),
            score_bias,
            alibi: s
                .slopes
                .and_then(|x| x.get(head))
                .map(|&slope| (slope, visible.saturating_sub(1))),
            key_mask: s.key_mask.and_then(|m| m.get(seen(m.len()))),
            sink: s.sinks.and_then(|x| x.get(head)).copied(),
        }
    }
}

/// The standard ALiBi slopes for `slopes.len()` heads: for `n` heads, a
/// power of two, head `h` gets `2^(−8(h+1)/n)`; otherwise the slopes of the
/// largest power of two `m < n`, then every other slope of `2m` heads
/// (`2^(−8(2k+1)/(2m))`) for the remaining `n − m` heads (the rule of the
/// ALiBi paper's code, as BLOOM and MPT use it).
///
/// ```
/// let mut slopes = [0.0f32; 8];
/// microattn::scoring::alibi_slopes(&mut slopes);
/// assert_eq!(slopes, [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625]);
/// let mut odd = [0.0f32; 3];
/// microattn::scoring::alibi_slopes(&mut odd);
/// assert_eq!(odd, [0.0625, 0.00390625, 0.25]); // 2 heads' slopes, then 4 heads' first
/// ```
#[inline]
pub fn alibi_slopes(slopes: &mut [f32]) {
    let n = slopes.len();
    if n == 0 {
        return;
    }
    let m = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let slope = |k: usize, of: usize| crate::math::exp2_f64(-8.0 * k as f64 / of as f64) as f32;
    for (h, s) in slopes.iter_mut().enumerate() {
        *s = if h < m {
            slope(h + 1, m)
        } else {
            slope(2 * (h - m) + 1, 2 * m)
        };
    }
}
