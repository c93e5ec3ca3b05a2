//! The `f32` caches' scored calls: prefill and decode steps with a
//! [`Scoring`], one path for all (the kernel's scored one-query path), so
//! a prompt then steps gives the bits of one prefill.

use super::plain::KvCache;
use super::ring::RingKvCache;
use super::{Pair, Store};
use crate::check::{self, assert_heads};
use crate::error::Error;
use crate::kernel;
use crate::scoring::{Checked, Scoring};

impl<S> Pair<S> {
    /// One position's queries over every position held, oldest first, as
    /// if they sat at the newest one, with a checked scoring (one query over
    /// the positions held). Nothing held: exactly 0, and log-sum-exp the
    /// sink logit or `-inf`.
    fn attend_scored<const H: usize, const KVH: usize, const D: usize>(
        &self,
        q: &[[f32; D]; H],
        scoring: &Checked<'_>,
        out: &mut [[f32; D]; H],
        lse: Option<&mut [f32; H]>,
    ) where
        S: Store<KVH, D, f32>,
    {
        let (keys, values) = (self.keys.positions(), self.values.positions());
        if keys.is_empty() {
            out.as_flattened_mut().fill(0.0);
            if let Some(lse) = lse {
                for (h, l) in lse.iter_mut().enumerate() {
                    *l = scoring.row(h, 0).sink.unwrap_or(f32::NEG_INFINITY);
                }
            }
            return;
        }
        kernel::run_positions::<H, KVH, D>(
            keys,
            values,
            self.keys.oldest(),
            self.scale::<D>(),
            q,
            out,
            lse.map(|l| &mut l[..]),
            Some(scoring),
        );
    }
}

impl<const CAP: usize, const KVH: usize, const D: usize> KvCache<CAP, KVH, D, f32> {
    /// [`prefill`](Self::prefill) with the scores changed as `scoring`
    /// says. Its buffers cover every position the queries see: a key mask
    /// or key bias has `len + n` entries (the positions held, then the
    /// new ones), a score bias `n × (len + n)` values (or one such plane per
    /// head); query `t` sits at position `len + t` (ALiBi's `i`).
    ///
    /// # Errors
    /// As [`prefill`](Self::prefill), then [`Scoring::check`]; on error
    /// nothing is written (cache, `out`, `lse` unchanged).
    ///
    /// ```
    /// use microattn::{KvCache, Scoring};
    /// let (q, k, v) = ([[[1.0f32]; 1]; 2], [[[1.0f32]; 1]; 2], [[[2.0f32]; 1], [[4.0]; 1]]);
    /// let sinks = [0.0f32];
    /// let mut out = [[[0.0f32; 1]; 1]; 2];
    /// let mut cache = KvCache::<4, 1, 1>::new();
    /// cache.prefill_scored(&q, &k, &v, &Scoring::new().sinks(&sinks), &mut out, None)?;
    /// // Position 0: e^1·2 / (e^0 + e^1).
    /// let e = 1f32.exp();
    /// assert!((out[0][0][0] - 2.0 * e / (1.0 + e)).abs() < 1e-6);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn prefill_scored<const H: usize>(
        &mut self,
        q: &[[[f32; D]; H]],
        k: &[[[f32; D]; KVH]],
        v: &[[[f32; D]; KVH]],
        scoring: &Scoring<'_>,
        out: &mut [[[f32; D]; H]],
        lse: Option<&mut [[f32; H]]>,
    ) -> Result<(), Error> {
        const { assert_heads::<CAP, H, KVH, D>() };
        let n = q.len();
        check::prefill::<H, KVH, D>(
            n,
            [k.len(), v.len(), out.len()],
            lse.as_ref().map(|l| l.len()),
        )?;
        self.check_fits(n)?;
        let scoring = scoring.checked(n, self.len() + n, H)?;
        self.append(k, v);
        let (keys, values) = (&self.kv.keys[..], &self.kv.values[..]);
        kernel::run_positions::<H, KVH, D>(
            keys,
            values,
            0,
            self.kv.scale::<D>(),
            q.as_flattened(),
            out.as_flattened_mut(),
            lse.map(<[[f32; H]]>::as_flattened_mut),
            Some(&scoring),
        );
        Ok(())
    }

    /// [`step`](Self::step) with the scores changed as `scoring` says:
    /// appends position `len`, then runs its queries over positions
    /// `0..=len` (a key mask or key bias has `len + 1` entries, a score
    /// bias `len + 1` values or one row per head). Bit for bit the last row
    /// of a [`prefill_scored`](Self::prefill_scored) of every position with
    /// the same scoring of those positions.
    ///
    /// # Errors
    /// [`Error::CacheFull`] if the cache is full, then [`Scoring::check`]'s
    /// errors; on error nothing is written (cache, `out`, `lse` unchanged).
    ///
    /// ```
    /// use microattn::{KvCache, Scoring};
    /// let mut cache = KvCache::<4, 1, 1>::new();
    /// let mut out = [[0.0f32; 1]; 1];
    /// cache.step_scored(&[[1.0]], &[[1.0]], &[[2.0]], &Scoring::new(), &mut out, None)?;
    /// // The second position's own key is masked: it sees only position 0.
    /// let mask = [true, false];
    /// let scoring = Scoring::new().key_mask(&mask);
    /// cache.step_scored(&[[1.0]], &[[1.0]], &[[8.0]], &scoring, &mut out, None)?;
    /// assert_eq!(out, [[2.0]]);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn step_scored<const H: usize>(
        &mut self,
        q: &[[f32; D]; H],
        k: &[[f32; D]; KVH],
        v: &[[f32; D]; KVH],
        scoring: &Scoring<'_>,
        out: &mut [[f32; D]; H],
        lse: Option<&mut [f32; H]>,
    ) -> Result<(), Error> {
        let lse = lse.map(core::slice::from_mut);
        self.prefill_scored(
            core::slice::from_ref(q),
            core::slice::from_ref(k),
            core::slice::from_ref(v),
            scoring,
            core::slice::from_mut(out),
            lse,
        )
    }
    /// [`attend`](Self::attend) with the scores changed as `scoring` says:
    /// one position's queries over every cached position `0..len`, as if
    /// they sat at position `len − 1` (ALiBi's `i`), without appending. A
    /// key mask or key bias has `len` entries, a score bias `len` values or
    /// one row per head. [`step_scored`](Self::step_scored) is
    /// [`push`](Self::push) then this. An empty cache gives exactly 0 (and
    /// log-sum-exp `-inf`, or the sink logit with sinks).
    ///
    /// # Errors
    /// [`Scoring::check`]'s errors for one query over `len` keys; on error
    /// nothing is written.
    ///
    /// ```
    /// use microattn::{KvCache, Scoring};
    /// let mut cache = KvCache::<4, 1, 1>::new();
    /// cache.extend(&[[[1.0]], [[1.0]]], &[[[2.0]], [[4.0]]])?;
    /// let mut out = [[0.0f32; 1]; 1];
    /// let slopes = [1.0f32];
    /// cache.attend_scored(&[[0.0]], &Scoring::new().alibi(&slopes), &mut out, None)?;
    /// // Scores 0 − 1 and 0: weights e^-1 and 1 over the two values.
    /// let e = (-1f32).exp();
    /// assert!((out[0][0] - (2.0 * e + 4.0) / (e + 1.0)).abs() < 1e-6);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn attend_scored<const H: usize>(
        &self,
        q: &[[f32; D]; H],
        scoring: &Scoring<'_>,
        out: &mut [[f32; D]; H],
        lse: Option<&mut [f32; H]>,
    ) -> Result<(), Error> {
        const { assert_heads::<CAP, H, KVH, D>() };
        let scoring = scoring.checked(1, self.len(), H)?;
        self.kv.attend_scored(q, &scoring, out, lse);
        Ok(())
    }
}

impl<const WINDOW: usize, const KVH: usize, const D: usize, const SINKS: usize>
    RingKvCache<WINDOW, KVH, D, f32, SINKS>
{
    /// [`attend`](Self::attend) with the scores changed as `scoring` says:
    /// one position's queries over the positions held, in the ring's
    /// logical order (the sinks, then the window oldest first), as if they
    /// sat at the newest. Every buffer of `scoring` is indexed by that
    /// order (`len` entries), and ALiBi's distance `i − j` is the distance
    /// in it. An empty ring gives exactly 0.
    ///
    /// # Errors
    /// [`Scoring::check`]'s errors for one query over `len` keys; on error
    /// nothing is written.
    ///
    /// ```
    /// use microattn::{RingKvCache, Scoring};
    /// let mut ring = RingKvCache::<2, 1, 1>::new();
    /// ring.extend(&[[[0.0]]; 3], &[[[1.0]], [[2.0]], [[4.0]]])?;
    /// let sinks = [0.0f32];
    /// let mut out = [[0.0f32; 1]; 1];
    /// ring.attend_scored(&[[0.0]], &Scoring::new().sinks(&sinks), &mut out, None)?;
    /// // Positions 1 and 2 and the sink, each weighing 1/3.
    /// assert!((out[0][0] - 2.0).abs() < 1e-6);
    /// # Ok::<(), microattn::Error>(())
    /// ```
    #[inline]
    pub fn attend_scored<const H: usize>(
        &self,
        q: &[[f32; D]; H],
        scoring: &Scoring<'_>,
        out: &mut [[f32; D]; H],
        lse: Option<&mut [f32; H]>,
    ) -> Result<(), Error> {
        const { assert_heads::<WINDOW, H, KVH, D>() };
        let scoring = scoring.checked(1, self.len(), H)?;
        self.kv.attend_scored(q, &scoring, out, lse);
        Ok(())
    }

    /// [`step`](Self::step) with the scores changed as `scoring` says:
    /// pushes the position, then [`attend_scored`](Self::attend_scored)
    /// (its buffers cover the positions held after the push).
    ///
    /// # Errors
    /// [`Scoring::check`]'s errors for one query over the positions held
    /// after the push, checked before it: on error nothing is written and
    /// the ring is unchanged.
    #[inline]
    pub fn step_scored<const H: usize>(
        &mut self,
        q: &[[f32; D]; H],
        k: &[[f32; D]; KVH],
        v: &[[f32; D]; KVH],
        scoring: &Scoring<'_>,
        out: &mut [[f32; D]; H],
        lse: Option<&mut [f32; H]>,
    ) -> Result<(), Error> {
        const { assert_heads::<WINDOW, H, KVH, D>() };
        let after = (self.len() + 1).min(WINDOW);
        let checked = scoring.checked(1, after, H)?;
        self.push(k, v);
        self.kv.attend_scored(q, &checked, out, lse);
        Ok(())
    }
}
