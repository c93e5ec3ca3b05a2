//! `--decode [--kv E]`: the demo sentence fed token by token through a
//! `microattn::KvCache` storing `E` (`f32`, `f16` or `bf16`), as a language
//! model's decode loop does: each step appends the token's key and value and
//! runs its query over every cached token, printing that step's attention
//! weights.
//!
//! At the end the rows of all steps form the same heatmap as the demo's, and
//! the run checks the promise of the cache: the step outputs are the bits of
//! one causal pass over the whole sentence (`causal_attention_scaled`) on
//! the cached keys and values widened to `f32`, and the step weights the
//! bits of `attention_weights`. Then `kv_storage` compares `E` with `f32` on
//! a realistic shape.

use std::io::Write;

use microattn::{
    Element, KvCache, attention_weights, bf16, causal_attention_scaled, default_scale, f16,
};

use crate::cli::Kv;
use crate::demo::{self, D, N, Rows};
use crate::failure::Failure;
use crate::heatmap::{self, Palette};
use crate::kv_storage;

/// Width of the bar of a weight of 1.
const BAR: usize = 30;

/// Runs the token-by-token mode on a cache storing `kv`, then the storage
/// comparison.
///
/// # Errors
/// A write to `out` that fails, or a step whose bits differ from the
/// one-pass kernel's (which would be a bug of the crate).
pub fn run(kv: Kv, out: &mut dyn Write) -> Result<(), Failure> {
    match kv {
        Kv::F32 => sentence::<f32>(out).and_then(|()| kv_storage::run::<f32>(out)),
        Kv::F16 => sentence::<f16>(out).and_then(|()| kv_storage::run::<f16>(out)),
        Kv::Bf16 => sentence::<bf16>(out).and_then(|()| kv_storage::run::<bf16>(out)),
    }
}

/// The sentence token by token through a `KvCache<N, 1, D, E>`.
fn sentence<E: Element>(out: &mut dyn Write) -> Result<(), Failure> {
    let (labels, q, k, v) = demo::sentence();
    let scale = default_scale(D);
    let mut cache = KvCache::<N, 1, D, E>::with_scale(scale);
    let mut outputs = [[0.0f32; D]; N];
    let mut weights = [[0.0f32; N]; N];
    let w = |e| Failure::output(e);

    writeln!(
        out,
        "\"{} ...\" token by token\n\
         through a KvCache<{N}, 1, {D}, {}> ({} bytes): each step appends the token's\n\
         key and value, then its query reads every cached token (the same hand-made\n\
         embeddings as the demo).\n",
        labels.join(" "),
        E::NAME,
        core::mem::size_of::<KvCache<N, 1, D, E>>()
    )
    .map_err(w)?;
    for t in 0..N {
        let mut step_out = [[0.0f32; D]; 1];
        let mut step_weights = [[0.0f32; N]; 1];
        cache
            .step(
                &[q[t]],
                &[k[t]],
                &[v[t]],
                &mut step_out,
                Some(&mut step_weights),
                None,
            )
            .map_err(Failure::rejected)?;
        outputs[t] = step_out[0];
        weights[t] = step_weights[0];
        writeln!(
            out,
            "step {t}: \"{}\" (cache {}/{N})",
            labels[t],
            cache.len()
        )
        .map_err(w)?;
        for (label, &weight) in labels.iter().zip(&weights[t]).take(t + 1) {
            let bar = "#".repeat((weight * BAR as f32).round() as usize);
            writeln!(out, "  {label:>9} {weight:5.3} {bar}").map_err(w)?;
        }
    }

    writeln!(
        out,
        "\nAll steps' weights (row: step; column: cached token):"
    )
    .map_err(w)?;
    heatmap::render(out, &labels, &weights, Palette::for_stdout()).map_err(w)?;

    let mut one_pass = [[0.0f32; D]; N];
    let (k, v) = (widen(cache.keys()), widen(cache.values()));
    causal_attention_scaled(&q, &k, &v, scale, &mut one_pass);
    let mut one_pass_weights = [[0.0f32; N]; N];
    attention_weights(&q, &k, scale, &mut one_pass_weights);
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    if !same(outputs.as_flattened(), one_pass.as_flattened())
        || !same(weights.as_flattened(), one_pass_weights.as_flattened())
    {
        return Err(Failure::check(
            "decode steps differ from the one-pass kernel: the cache's bit-exactness is broken",
        ));
    }
    writeln!(
        out,
        "\nThe {N} steps' outputs and weights equal one causal pass over the sentence\n\
         (causal_attention_scaled, attention_weights) on the cached keys and values\n\
         widened to f32, bit for bit."
    )
    .map_err(w)
}

/// The cache's `N` rows (one head) widened to `f32`.
fn widen<E: Element>(rows: &[[[E; D]; 1]]) -> Rows {
    let mut wide = [[0.0f32; D]; N];
    for (w, [row]) in wide.iter_mut().zip(rows) {
        *w = row.map(E::to_f32);
    }
    wide
}
