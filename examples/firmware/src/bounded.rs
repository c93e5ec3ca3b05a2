//! The inputs and checks of the bounded-time proof: five cases at the
//! firmware's shape that take the kernel through every data-dependent
//! situation its default path has a branch for. With microattn's
//! `bounded-time` feature a call executes the same instructions whatever
//! the data, so the firmware (`src/main.rs`, under this package's
//! `bounded-time` feature) runs [`attention`](crate::attention) and
//! [`scored_attention`] once per case between markers, and `.ci/footprint`
//! compares the five instruction counts of each.
//!
//! | case | queries | keys | values | outputs |
//! |---|---|---|---|---|
//! | [`Ordinary`](Case::Ordinary) | seeded, in [-2, 2) | seeded | seeded | the contract |
//! | [`LargeScores`](Case::LargeScores) | seeded × 10¹² | seeded × 10¹² | seeded | the contract (scores up to about 1.6·10²⁵, finite) |
//! | [`NaNs`](Case::NaNs) | one NaN | one NaN | one NaN | the contract (NaN where the oracle has NaN) |
//! | [`AllMasked`](Case::AllMasked) | all `1.0` | all `−∞` | all NaN | every value `+0.0` (every score `−∞`) |
//! | [`RisingMax`](Case::RisingMax) | all `1.0` | key `j` all `(j + 1)/8` | seeded | the contract (score of key `j`: `(j + 1)/2`, each key a new maximum) |
//!
//! The scored call's key mask keeps every key, except in
//! [`AllMasked`](Case::AllMasked), where it masks every key; either way its
//! output is the plain call's, bit for bit.

use microattn::{Error, Scoring, Shape};

use crate::{
    Accuracy, D, H, Inputs, KVH, KeyValueRow, KeysValues, KvStream, N, Queries, SEED,
    check_against_reference,
};

/// Factor on the seeded queries and keys of [`Case::LargeScores`]: scores
/// `0.25·Σ q·k` up to `0.25·16·(2·10¹²)² ≈ 1.6·10²⁵`, far from `f32::MAX`.
const LARGE: f32 = 1e12;

/// Where [`Case::NaNs`] puts its NaNs: in query position 3's head 1 (that
/// row's head NaN), in key 24 (every row from 24 on NaN), in value 7's
/// column 2 (column 2 of rows 7 to 23 NaN).
const NAN_QUERY: (usize, usize, usize) = (3, 1, 5);
const NAN_KEY: (usize, usize) = (24, 9);
const NAN_VALUE: (usize, usize) = (7, 2);

/// One input of the proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The firmware's seeded inputs.
    Ordinary,
    /// Queries and keys scaled so that the scores are huge but finite.
    LargeScores,
    /// A NaN in one query, one key and one value.
    NaNs,
    /// Every score `−∞` (keys all `−∞`, values all NaN): every key masked.
    AllMasked,
    /// The score rises with the key position: every key raises the running
    /// maximum, so the online softmax rescales at every one.
    RisingMax,
}

impl Case {
    /// Every case, in the order the firmware runs them.
    pub const ALL: [Case; 5] = [
        Case::Ordinary,
        Case::LargeScores,
        Case::NaNs,
        Case::AllMasked,
        Case::RisingMax,
    ];

    /// The case's name in the firmware's output.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Case::Ordinary => "ordinary",
            Case::LargeScores => "large scores",
            Case::NaNs => "NaNs",
            Case::AllMasked => "all masked",
            Case::RisingMax => "rising maximum",
        }
    }

    /// The scored call's key mask: every key kept, or (in
    /// [`AllMasked`](Case::AllMasked)) every key masked.
    #[must_use]
    pub const fn key_mask(self) -> [bool; N] {
        [!matches!(self, Case::AllMasked); N]
    }

    /// Fills `inputs` with this case's queries, keys and values, from the
    /// firmware's seeded inputs.
    pub fn fill(self, inputs: &mut Inputs) {
        inputs.generate(SEED);
        let q = inputs.q.as_flattened_mut().as_flattened_mut();
        match self {
            Case::Ordinary => return,
            Case::LargeScores => q.iter_mut().for_each(|x| *x *= LARGE),
            Case::NaNs => {
                let (t, h, d) = NAN_QUERY;
                inputs.q[t][h][d] = f32::NAN;
            }
            Case::AllMasked | Case::RisingMax => q.fill(1.0),
        }
        refill(inputs, |j, k, v| match self {
            Case::Ordinary => {}
            Case::LargeScores => k.as_flattened_mut().iter_mut().for_each(|x| *x *= LARGE),
            Case::NaNs => {
                if j == NAN_KEY.0 {
                    k[0][NAN_KEY.1] = f32::NAN;
                }
                if j == NAN_VALUE.0 {
                    v[0][NAN_VALUE.1] = f32::NAN;
                }
            }
            Case::AllMasked => {
                *k = [[f32::NEG_INFINITY; D]; KVH];
                *v = [[f32::NAN; D]; KVH];
            }
            Case::RisingMax => *k = [[(j + 1) as f32 / 8.0; D]; KVH],
        });
    }

    /// Checks `out`, the output of a call on this case's `inputs`: all
    /// `+0.0` for [`AllMasked`](Case::AllMasked), the accuracy contract
    /// against the reference otherwise.
    #[must_use]
    pub fn check(self, inputs: &Inputs, out: &Queries) -> Verdict {
        match self {
            Case::AllMasked => Verdict::Zeros {
                nonzero: out
                    .as_flattened()
                    .as_flattened()
                    .iter()
                    .filter(|x| x.to_bits() != 0)
                    .count(),
            },
            _ => Verdict::Contract(check_against_reference(inputs, out)),
        }
    }
}

/// What [`Case::check`] found.
#[derive(Clone, Copy, Debug)]
pub enum Verdict {
    /// The accuracy contract's quantities and verdict.
    Contract(Accuracy),
    /// Outputs that must be `+0.0`: how many are not (bit for bit).
    Zeros {
        /// Values whose bits are not those of `+0.0`.
        nonzero: usize,
    },
}

impl Verdict {
    /// `true` if the check passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        match self {
            Verdict::Contract(acc) => acc.verdict.is_ok(),
            Verdict::Zeros { nonzero } => *nonzero == 0,
        }
    }
}

/// Empties `inputs`' cache and appends the seeded keys and values of every
/// position again, each changed by `change(position, key, value)` first.
fn refill(inputs: &mut Inputs, change: impl Fn(usize, &mut KeyValueRow, &mut KeyValueRow)) {
    inputs.cache.clear();
    let mut stream = KvStream::new(inputs.seed);
    for j in 0..N {
        let (mut k, mut v) = stream.next_position();
        change(j, &mut k, &mut v);
        // Cannot fail: N pushes into an emptied cache of capacity N. If one
        // did, `Inputs::kv` would be `None` and the run would fail.
        if inputs.cache.push(&k, &v).is_err() {
            break;
        }
    }
}

/// The measured scored call: [`causal_attention_scored`] over all `N`
/// positions with a key mask and nothing else. Never inlined, so that it has
/// a symbol for the footprint script.
///
/// # Errors
/// None for these fixed sizes: [`causal_attention_scored`]'s checks, which
/// the buffers' lengths pass.
///
/// [`causal_attention_scored`]: microattn::causal_attention_scored
#[inline(never)]
pub fn scored_attention(
    mask: &[bool; N],
    q: &Queries,
    k: &KeysValues,
    v: &KeysValues,
    out: &mut Queries,
) -> Result<(), Error> {
    microattn::causal_attention_scored(
        &Shape::new(N, N, H, KVH, D),
        &Scoring::new().key_mask(mask),
        q.as_flattened().as_flattened(),
        k.as_flattened().as_flattened(),
        v.as_flattened().as_flattened(),
        out.as_flattened_mut().as_flattened_mut(),
    )
}
