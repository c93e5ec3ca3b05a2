//! What `--decode --kv E` costs and saves: the same decode run through a
//! `KvCache<L, KVH, D, E>` and a `KvCache<L, KVH, D>` (`f32`, the
//! yardstick), on a language model's shape (`L = 2048` positions, 8
//! key/value heads of `D = 64`, 8 query heads) and seeded random inputs in
//! [-1, 1). For each: the bytes per cached position (`2·KVH·D·size_of(E)`),
//! the time of one step at the full length (the cache truncated back to
//! `L − 1` before each call, as in `benches/decode.rs`; the two caches timed
//! in turns), and the largest difference of any step's output from the
//! `f32` run's.

use std::hint::black_box;
use std::io::Write;

use microattn::{Element, KvCache};

use crate::failure::Failure;
use crate::rng::XorShift;
use crate::timing::{self, Runs};

/// Positions: the run makes `L` steps, the last one over `L` positions.
const L: usize = 2048;
/// Key/value heads.
const KVH: usize = 8;
/// Head dimension.
const D: usize = 64;
/// Query heads.
const H: usize = 8;
/// Seed of the inputs.
const SEED: u64 = 0x0DEC_0DE5;
/// Rounds of timing, alternating between the two caches (so that neither
/// gets the better turn of the machine); each storage keeps its best median.
const ROUNDS: usize = 5;
/// Stack of the measuring thread: in a debug build the caches (8 MiB in
/// `f32`) pass through the stack on their way into their `Box`.
const STACK: usize = 64 << 20;

/// One position's queries (and one step's output).
type Queries = [[f32; D]; H];
/// One position's keys or values.
type Heads = [[f32; D]; KVH];

/// The step times of the two caches and their largest output difference.
struct Measured {
    chosen_secs: f64,
    f32_secs: f64,
    error: f64,
}

/// A cache after the decode run: every step's output, and the cache, ready
/// to time its last step again.
struct Decoded<E: Element> {
    cache: Box<KvCache<L, KVH, D, E>>,
    outputs: Vec<Queries>,
}

/// Runs the decode on an `E` cache and on an `f32` cache and prints both.
///
/// # Errors
/// A write to `out` that fails; a step the crate rejects (a bug: the run
/// never overfills the cache); no thread to measure on.
pub fn run<E: Element>(out: &mut dyn Write) -> Result<(), Failure> {
    let runs = Runs::for_this_build();
    let how = runs.describe();
    let Measured {
        chosen_secs,
        f32_secs,
        error,
    } = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || measure::<E>(&runs))
        .map_err(|e| Failure::check(format!("cannot start the measuring thread: {e}")))?
        .join()
        .map_err(|_| Failure::check("the measuring thread panicked"))??;

    let w = |e| Failure::output(e);
    writeln!(
        out,
        "\nStorage: {L} decode steps through KvCache<{L}, {KVH}, {D}, {}> and through\n\
         KvCache<{L}, {KVH}, {D}> (f32, the yardstick), {H} query heads, seeded random\n\
         inputs in [-1, 1) (the sentence's keys and values, 0 and 1, are exact in\n\
         every storage).\n\
         Step time at {L} positions: the best of {ROUNDS} alternating rounds, each the\n\
         {how}.",
        E::NAME,
    )
    .map_err(w)?;
    writeln!(
        out,
        "{:>15} {:>14} {:>9} {:>9} {:>20}",
        "storage", "bytes/position", "step µs", "vs f32", "max|out - out_f32|"
    )
    .map_err(w)?;
    for (name, bytes, secs, error) in [
        (E::NAME, 2 * KVH * D * size_of::<E>(), chosen_secs, error),
        ("f32 (yardstick)", 2 * KVH * D * 4, f32_secs, 0.0),
    ] {
        writeln!(
            out,
            "{name:>15} {bytes:>14} {:>9.1} {:>8.2}x {error:>20.2e}",
            secs * 1e6,
            secs / f32_secs,
        )
        .map_err(w)?;
    }
    Ok(())
}

/// Both decode runs, their output difference, and their step times.
fn measure<E: Element>(runs: &Runs) -> Result<Measured, Failure> {
    let mut rng = XorShift::new(SEED);
    let mut random = |len| {
        let mut x = vec![[[0.0f32; D]; KVH]; len];
        rng.fill(x.as_flattened_mut().as_flattened_mut());
        x
    };
    // KVH = H, so queries have the shape of keys.
    let (q, k, v) = (random(L), random(L), random(L));
    let mut chosen = Decoded::<E>::run(&q, &k, &v)?;
    let mut yardstick = Decoded::<f32>::run(&q, &k, &v)?;
    let error = chosen
        .outputs
        .as_flattened()
        .as_flattened()
        .iter()
        .zip(yardstick.outputs.as_flattened().as_flattened())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .fold(0.0, f64::max);
    let last = (&q[L - 1], &k[L - 1], &v[L - 1]);
    let (mut chosen_secs, mut f32_secs) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..ROUNDS {
        chosen_secs = chosen_secs.min(chosen.time_step(last, runs)?);
        f32_secs = f32_secs.min(yardstick.time_step(last, runs)?);
    }
    Ok(Measured {
        chosen_secs,
        f32_secs,
        error,
    })
}

impl<E: Element> Decoded<E> {
    /// The decode run through a `KvCache<L, KVH, D, E>`: one step per
    /// position.
    fn run(q: &[Heads], k: &[Heads], v: &[Heads]) -> Result<Self, Failure> {
        let mut cache = Box::new(KvCache::<L, KVH, D, E>::new());
        let mut outputs = vec![[[0.0f32; D]; H]; L];
        for (((o, q), k), v) in outputs.iter_mut().zip(q).zip(k).zip(v) {
            cache
                .step(q, k, v, o, None, None)
                .map_err(Failure::rejected)?;
        }
        Ok(Decoded { cache, outputs })
    }

    /// The median time of the last step again (the cache truncated back to
    /// `L − 1` positions before each call).
    fn time_step(
        &mut self,
        (q, k, v): (&Heads, &Heads, &Heads),
        runs: &Runs,
    ) -> Result<f64, Failure> {
        let mut out = [[0.0f32; D]; H];
        let mut result = Ok(());
        let secs = timing::median_secs(runs, || {
            self.cache.truncate(L - 1);
            let step = self.cache.step(
                black_box(q),
                black_box(k),
                black_box(v),
                &mut out,
                None,
                None,
            );
            result = result.and(step);
            black_box(&mut out);
        });
        result.map_err(Failure::rejected)?;
        Ok(secs)
    }
}
