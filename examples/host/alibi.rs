//! ALiBi on the demo sentence: the plain causal weights beside those with
//! ALiBi's linear recency bias, and the scored kernel with that bias held to
//! the accuracy contract.
//!
//! The kernel does not return its weights, so the weights shown are the
//! textbook softmax (in f64) of the biased scores
//! `s_ij = scale·q_i·k_j − slope·(i − j)` over `j ≤ i`; the output they give
//! is held to the same contract as the kernel's.

use std::io::Write;

use microattn::scoring::alibi_slopes;
use microattn::{
    Scoring, Shape, attention_weights, causal_attention_scored, default_scale, reference,
};

use crate::demo::{self, D, N, Rows};
use crate::failure::Failure;
use crate::heatmap::{self, Palette};
use crate::verify;

/// The slope shown is the first (the steepest) of the standard slopes for
/// this many heads.
const HEADS: usize = 8;

/// The last token of the sentence, "it".
const LAST: usize = N - 1;

/// One row of weights per query token.
type Weights<T> = [[T; N]; N];

/// Prints the two heatmaps side by side, what ALiBi changed for the last
/// token and for the distance read back, and the contract checks.
///
/// # Errors
/// A broken accuracy contract, a problem the crate rejects, or stdout that
/// cannot be written.
pub fn run(out: &mut dyn Write) -> Result<(), Failure> {
    let (labels, q, k, v) = demo::sentence();
    let scale = default_scale(D);
    let mut slopes = [0.0f32; HEADS];
    alibi_slopes(&mut slopes);
    let slope = slopes[0];

    let mut plain = [[0.0f32; N]; N];
    attention_weights(&q, &k, scale, &mut plain);
    let biased = alibi_weights(&q, &k, scale, slope);
    let shown = biased.map(|row| row.map(|w| w as f32));

    let slope_per_head = [slope];
    let shape = Shape::new(N, N, 1, 1, D).with_scale(scale);
    let scoring = Scoring::new().alibi(&slope_per_head);
    let inputs @ (qs, ks, vs) = (q.as_flattened(), k.as_flattened(), v.as_flattened());
    let mut fast = [[0.0f32; D]; N];
    let mut naive = [[0.0f32; D]; N];
    causal_attention_scored(&shape, &scoring, qs, ks, vs, fast.as_flattened_mut())
        .map_err(Failure::rejected)?;
    reference::causal_attention_scored(&shape, &scoring, qs, ks, vs, naive.as_flattened_mut())
        .map_err(Failure::rejected)?;
    let problem = (&shape, &scoring);
    let naive = naive.as_flattened();
    let kernel = verify::scored_contract(
        "causal_attention_scored with ALiBi",
        problem,
        inputs,
        fast.as_flattened(),
        naive,
    )?;
    let from_weights = weighted_values(&biased, &v);
    verify::scored_contract(
        "the ALiBi weights shown, times the values,",
        problem,
        inputs,
        from_weights.as_flattened(),
        naive,
    )?;

    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(
            out,
            "\nALiBi adds a recency bias to each score, s = scale*q.k - slope*(i - j), here with\n\
             slope {slope}, the steepest of the standard slopes for {HEADS} heads\n\
             (microattn::scoring::alibi_slopes). Left: microattn::attention_weights; right:\n\
             the textbook softmax (f64) of the ALiBi scores.\n"
        )?;
        heatmap::render_pair(
            out,
            &labels,
            [
                ("causal (plain)", &plain),
                (&format!("causal + ALiBi, slope {slope}"), &shown),
            ],
            Palette::for_stdout(),
        )?;
        report_last(out, &labels, &plain, &shown)?;
        writeln!(
            out,
            "How far back a token reads on average (sum of w*(i - j), mean over the rows):\n  \
             {:.2} tokens plain, {:.2} with ALiBi.",
            mean_distance(&plain),
            mean_distance(&shown),
        )?;
        writeln!(
            out,
            "microattn::causal_attention_scored with Scoring::new().alibi(&[{slope}]) met the\n\
             accuracy contract against reference::causal_attention_scored_f64\n\
             (reference::check_contract_with_mass): max |fast - f64| = {:.2e}; the weights\n\
             shown, times the values, meet it too.",
            kernel.vs_oracle
        )
    };
    write(out).map_err(Failure::output)
}

/// The textbook weights with ALiBi, in f64: row `i` is the softmax over
/// `j ≤ i` of `scale·q_i·k_j − slope·(i − j)`, 0 above the diagonal.
fn alibi_weights(q: &Rows, k: &Rows, scale: f32, slope: f32) -> Weights<f64> {
    let mut weights = [[0.0f64; N]; N];
    for (i, (qi, row)) in q.iter().zip(&mut weights).enumerate() {
        let scores: Vec<f64> = k[..=i]
            .iter()
            .enumerate()
            .map(|(j, kj)| {
                let dot: f64 = qi
                    .iter()
                    .zip(kj)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                f64::from(scale) * dot - f64::from(slope) * (i - j) as f64
            })
            .collect();
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
        for (w, s) in row.iter_mut().zip(&scores) {
            *w = (s - max).exp() / total;
        }
    }
    weights
}

/// Each row's output from the weights: `Σⱼ w_ij·v_j`, summed in f64.
fn weighted_values(weights: &Weights<f64>, v: &Rows) -> Rows {
    weights.map(|row| {
        let mut sum = [0.0f64; D];
        for (&w, vj) in row.iter().zip(v) {
            for (s, &x) in sum.iter_mut().zip(vj) {
                *s += w * f64::from(x);
            }
        }
        sum.map(|s| s as f32)
    })
}

/// The last token's three largest weights with ALiBi, each beside its plain
/// weight and its distance back.
fn report_last(
    out: &mut dyn Write,
    labels: &[&str; N],
    plain: &Weights<f32>,
    biased: &Weights<f32>,
) -> std::io::Result<()> {
    let mut ranked: Vec<usize> = (0..=LAST).collect();
    ranked.sort_by(|&a, &b| biased[LAST][b].total_cmp(&biased[LAST][a]));
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 2;
    writeln!(
        out,
        "\nWhat \"{}\" reads most with ALiBi, beside its plain weight:",
        labels[LAST]
    )?;
    for &j in ranked.iter().take(3) {
        let label = format!("\"{}\"", labels[j]);
        writeln!(
            out,
            "  {label:<width$} {} back   {:.3} plain -> {:.3} with ALiBi",
            LAST - j,
            plain[LAST][j],
            biased[LAST][j]
        )?;
    }
    Ok(())
}

/// `Σⱼ w_ij·(i − j)` averaged over the rows: how far back a token reads.
fn mean_distance(weights: &Weights<f32>) -> f64 {
    let total: f64 = weights
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row[..=i]
                .iter()
                .enumerate()
                .map(|(j, &w)| f64::from(w) * (i - j) as f64)
                .sum::<f64>()
        })
        .sum();
    total / N as f64
}
