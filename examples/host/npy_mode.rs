//! The `.npy` mode: causal attention of q, k, v files with
//! `microattn::causal_attention_dyn`, checked against the reference, written
//! in the query's shape.

use std::io::Write;
use std::path::Path;

use microattn::{Shape, causal_attention_dyn, reference};

use crate::cli::NpyArgs;
use crate::failure::Failure;
use crate::npy_io::{self, Array};
use crate::verify;

/// One array's layout: `[tokens, heads, head_dim]`.
#[derive(Clone, Copy)]
struct Layout {
    tokens: usize,
    heads: usize,
    head_dim: usize,
}

/// Reads the three inputs, runs the fast kernel and the reference, writes the
/// output and prints a one-line summary.
///
/// # Errors
/// Any bad file or shape, the crate's rejection of the problem, a failed
/// write, or a broken accuracy contract.
pub fn run(args: &NpyArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let q = npy_io::read(&args.q)?;
    let k = npy_io::read(&args.k)?;
    let v = npy_io::read(&args.v)?;
    let shape = problem_shape((&args.q, &q), (&args.k, &k), (&args.v, &v), args.scale)?;
    let inputs = (q.data.as_slice(), k.data.as_slice(), v.data.as_slice());

    let mut fast = vec![0.0f32; q.data.len()];
    causal_attention_dyn(&shape, inputs.0, inputs.1, inputs.2, &mut fast)
        .map_err(Failure::rejected)?;
    let mut naive = vec![0.0f32; q.data.len()];
    reference::causal_attention_dyn(&shape, inputs.0, inputs.1, inputs.2, &mut naive)
        .map_err(Failure::rejected)?;
    let agreement = verify::contract(&shape, inputs, &fast, &naive)?;

    npy_io::write(&args.out, &q.shape, &fast)?;
    writeln!(
        out,
        "{}: {:?} = causal attention of q {:?} over k, v {:?}, scale {:?}; \
         max |fast - reference| = {:.3e} (within the accuracy contract)",
        args.out.display(),
        q.shape,
        q.shape,
        k.shape,
        shape.scale,
        agreement.vs_naive,
    )
    .map_err(Failure::output)
}

/// The crate's shape for q, k, v: tokens, heads and head dim from the arrays,
/// the scale from `--scale` if given. What only the crate can judge (heads a
/// multiple of kv heads, no zero dimension, q no longer than k) is left to it.
fn problem_shape(
    q: (&Path, &Array),
    k: (&Path, &Array),
    v: (&Path, &Array),
    scale: Option<f32>,
) -> Result<Shape, Failure> {
    let q_layout = layout(q)?;
    let kv_layout = layout(k)?;
    if k.1.shape != v.1.shape {
        return Err(Failure::input(format!(
            "k and v differ in shape: {} is {:?}, {} is {:?}",
            k.0.display(),
            k.1.shape,
            v.0.display(),
            v.1.shape
        )));
    }
    if q_layout.head_dim != kv_layout.head_dim {
        return Err(Failure::input(format!(
            "q and k differ in head dimension (last axis): {} has {}, {} has {}",
            q.0.display(),
            q_layout.head_dim,
            k.0.display(),
            kv_layout.head_dim
        )));
    }
    let shape = Shape::new(
        q_layout.tokens,
        kv_layout.tokens,
        q_layout.heads,
        kv_layout.heads,
        q_layout.head_dim,
    );
    Ok(scale.map_or(shape, |s| shape.with_scale(s)))
}

/// `[N, D]` is one head, `[N, H, D]` is H heads; any other rank is an error.
fn layout((path, array): (&Path, &Array)) -> Result<Layout, Failure> {
    match *array.shape.as_slice() {
        [tokens, head_dim] => Ok(Layout {
            tokens,
            heads: 1,
            head_dim,
        }),
        [tokens, heads, head_dim] => Ok(Layout {
            tokens,
            heads,
            head_dim,
        }),
        ref other => Err(Failure::input(format!(
            "{}: shape {other:?} has rank {}, expected [N, D] or [N, H, D]",
            path.display(),
            other.len()
        ))),
    }
}
