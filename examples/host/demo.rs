//! The lesson's example: "The trophy didn't fit in the suitcase because it …".
//!
//! Nine tokens with hand-made embeddings and query/key projections,
//! *constructed* (not learned) so that the mechanism is visible: the pronoun
//! "it" asks for a big noun, the only big noun before it is "trophy", so its
//! attention row puts most of the weight there and its output is close to
//! trophy's value vector.

use std::io::{self, Write};

use microattn::{attention_weights, causal_attention_scaled, default_scale};

use crate::heatmap::{self, Palette};

/// Tokens.
pub const N: usize = 9;
/// Embedding and head dimension: one dimension per feature.
pub const D: usize = 8;

/// The features, one per dimension, in order.
const FEATURES: [&str; D] = ["det", "noun", "verb", "pron", "big", "box", "neg", "link"];
const DET: usize = 0;
const NOUN: usize = 1;
const VERB: usize = 2;
const PRON: usize = 3;
const BIG: usize = 4;
const BOX: usize = 5;
const NEG: usize = 6;
const LINK: usize = 7;

/// The sentence: each token and the features it has (each worth 1.0).
const SENTENCE: [(&str, &[usize]); N] = [
    ("The", &[DET]),
    ("trophy", &[NOUN, BIG]),
    ("didn't", &[NEG]),
    ("fit", &[VERB]),
    ("in", &[LINK]),
    ("the", &[DET]),
    ("suitcase", &[NOUN, BOX]),
    ("because", &[LINK]),
    ("it", &[PRON]),
];
/// Index of "it" and of "trophy" in [`SENTENCE`].
const IT: usize = 8;
const TROPHY: usize = 1;

/// A projection as sparse rules `(feature, head dimension, weight)`:
/// `out[dim] += x[feature] · weight`.
type Projection = [(usize, usize, f32)];

/// Queries: a pronoun asks for a noun and, twice as much, for a big thing; a
/// verb asks for a noun.
const QUERY: &Projection = &[(PRON, NOUN, 4.0), (PRON, BIG, 8.0), (VERB, NOUN, 4.0)];
/// Keys: every token offers its "noun" and "big" features, nothing else.
const KEY: &Projection = &[(NOUN, NOUN, 1.0), (BIG, BIG, 1.0)];

/// One `[f32; D]` row per token.
pub type Rows = [[f32; D]; N];

/// The sentence's token labels, queries, keys and values (the values are
/// the embeddings), as the demo and the `--decode` mode use them.
pub fn sentence() -> ([&'static str; N], Rows, Rows, Rows) {
    let labels = SENTENCE.map(|(token, _)| token);
    let embeddings = SENTENCE.map(|(_, features)| embed(features));
    let q = embeddings.map(|x| project(&x, QUERY));
    let k = embeddings.map(|x| project(&x, KEY));
    (labels, q, k, embeddings)
}

/// Prints the construction, the heatmap of the weights, what "it" reads and
/// how close its output is to trophy's value.
pub fn run(out: &mut dyn Write) -> io::Result<()> {
    let (labels, q, k, v) = sentence();
    let scale = default_scale(D);

    let mut outputs = [[0.0f32; D]; N];
    causal_attention_scaled(&q, &k, &v, scale, &mut outputs);
    let mut weights = [[0.0f32; N]; N];
    attention_weights(&q, &k, scale, &mut weights);

    describe(out, &labels)?;
    heatmap::render(out, &labels, &weights, Palette::for_stdout())?;
    writeln!(out)?;
    report_mask(out, &weights)?;
    report_row(out, &labels, &weights, IT)?;
    compare_output(out, &labels, &outputs[IT], &v)
}

/// A token's embedding: 1.0 on each of its features.
fn embed(features: &[usize]) -> [f32; D] {
    let mut x = [0.0; D];
    for &f in features {
        x[f] = 1.0;
    }
    x
}

/// `x` through a projection.
fn project(x: &[f32; D], rules: &Projection) -> [f32; D] {
    let mut y = [0.0; D];
    for &(feature, dim, weight) in rules {
        y[dim] += x[feature] * weight;
    }
    y
}

/// The sentence and how its numbers were made.
fn describe(out: &mut dyn Write, labels: &[&str; N]) -> io::Result<()> {
    let rules = |p: &Projection| {
        p.iter()
            .map(|&(from, to, w)| format!("{} -> {} x{w}", FEATURES[from], FEATURES[to]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "\"{} ...\"\n", labels.join(" "))?;
    writeln!(
        out,
        "The numbers are constructed by hand to show the mechanism, not learned:\n\
         - features, one per dimension: {};\n\
         - embeddings: 1.0 on each feature of the token, 0 elsewhere;\n\
         - queries: {};\n\
         - keys: {};\n\
         - values: the embeddings; scale 1/sqrt({D}).\n\
         A token whose query asks for nothing scores every token 0 and spreads its\n\
         weight evenly. Outputs: microattn::causal_attention_scaled (the fused\n\
         kernel); weights: microattn::attention_weights.\n",
        FEATURES.join(" "),
        rules(QUERY),
        rules(KEY),
    )?;
    writeln!(
        out,
        "Causal attention weights (row: query token; column: token it reads from):"
    )
}

/// What the causal mask did, measured: the weights above the diagonal.
fn report_mask(out: &mut dyn Write, weights: &[[f32; N]; N]) -> io::Result<()> {
    let above = weights
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().skip(i + 1));
    let (count, nonzero) = above.fold((0, 0), |(count, nonzero), &w| {
        (count + 1, nonzero + usize::from(w != 0.0))
    });
    if nonzero == 0 {
        writeln!(
            out,
            "All {count} weights above the diagonal are exactly 0: no token reads a later one."
        )
    } else {
        writeln!(
            out,
            "{nonzero} of the {count} weights above the diagonal are not 0: the mask leaks!"
        )
    }
}

/// The largest weight in row `i` ("it": on "trophy"), measured, and the
/// runner-up.
fn report_row(
    out: &mut dyn Write,
    labels: &[&str; N],
    weights: &[[f32; N]; N],
    i: usize,
) -> io::Result<()> {
    let mut ranked: Vec<(f32, &str)> = weights[i].iter().copied().zip(*labels).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let [(w1, first), (w2, second), ..] = ranked[..] else {
        return Ok(());
    };
    writeln!(
        out,
        "\"{}\" reads mostly from \"{first}\": weight {w1:.3}, the largest in its row\n\
         (next: \"{second}\", {w2:.3}).",
        labels[i]
    )
}

/// The output of "it" beside trophy's value vector, and how similar it is to
/// every value vector.
fn compare_output(
    out: &mut dyn Write,
    labels: &[&str; N],
    output: &[f32; D],
    values: &[[f32; D]; N],
) -> io::Result<()> {
    let rows = [
        (format!("output of \"{}\"", labels[IT]), output),
        (format!("value of \"{}\"", labels[TROPHY]), &values[TROPHY]),
    ];
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    writeln!(
        out,
        "\n{:width$}{}",
        "",
        FEATURES.map(|f| format!("{f:>6}")).concat()
    )?;
    for (name, x) in &rows {
        writeln!(
            out,
            "{name:<width$}{}",
            x.map(|v| format!("{v:>6.2}")).concat()
        )?;
    }
    let mut similar: Vec<(f32, &str)> = values
        .iter()
        .zip(labels)
        .map(|(value, &label)| (cosine(output, value), label))
        .collect();
    similar.sort_by(|a, b| b.0.total_cmp(&a.0));
    let listed: Vec<String> = similar
        .iter()
        .take(3)
        .map(|(c, label)| format!("\"{label}\" {c:.3}"))
        .collect();
    writeln!(
        out,
        "cosine similarity of the output of \"{}\" with the value vectors, highest first:\n  {}",
        labels[IT],
        listed.join(", ")
    )
}

/// `a·b / (|a|·|b|)`, 0 if either is zero.
fn cosine(a: &[f32; D], b: &[f32; D]) -> f32 {
    let dot = |x: &[f32; D], y: &[f32; D]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    if norms == 0.0 { 0.0 } else { dot(a, b) / norms }
}
