//! `--write-sample DIR`: a small deterministic multi-head case as q.npy, k.npy
//! and v.npy, so that the `.npy` mode can be tried at once.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::failure::Failure;
use crate::npy_io;
use crate::rng::XorShift;

/// Tokens.
const N: usize = 5;
/// Query heads.
const H: usize = 4;
/// Key/value heads (two query heads share each).
const KVH: usize = 2;
/// Head dimension.
const D: usize = 8;
/// Seed of the values (uniform in [-1, 1)).
const SEED: u64 = 0x5EED_0A77;

/// Writes the three files into `dir` (created if missing) and prints the
/// command that runs the `.npy` mode on them.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write(dir: &Path, out: &mut dyn Write) -> Result<(), Failure> {
    fs::create_dir_all(dir).map_err(|e| {
        Failure::input(format!(
            "{}: cannot create the directory: {e}",
            dir.display()
        ))
    })?;
    let mut rng = XorShift::new(SEED);
    for (name, heads) in [("q.npy", H), ("k.npy", KVH), ("v.npy", KVH)] {
        let shape = [N, heads, D];
        let mut data = vec![0.0f32; N * heads * D];
        rng.fill(&mut data);
        npy_io::write(&dir.join(name), &shape, &data)?;
    }
    let file = |name: &str| dir.join(name).display().to_string();
    let (q, k, v, result) = (file("q.npy"), file("k.npy"), file("v.npy"), file("out.npy"));
    writeln!(
        out,
        "wrote {q} [{N}, {H}, {D}], {k} and {v} [{N}, {KVH}, {D}]\n\
         now run:\n  cargo run --release --example host -- --q {q} --k {k} --v {v} --out {result}"
    )
    .map_err(Failure::output)
}
