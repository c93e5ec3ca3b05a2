//! Command-line parsing: which mode to run, with which files.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::failure::Failure;

/// What `--help` prints.
pub const USAGE: &str = "\
Causal scaled dot-product attention with microattn.

USAGE:
  host                      the demo sentence (heatmap of the weights, then
                            the same beside the weights with ALiBi, and the
                            scored kernel checked against the f64 oracle),
                            then timings of the fast kernel against the
                            reference
  host --decode [--kv E]    the demo sentence token by token through a KV
                            cache: each step's attention weights; then a
                            decode run of KvCache<2048, 8, 64, E> against
                            one of KvCache<2048, 8, 64> (bytes per position,
                            step time, output difference); E is the storage
                            element: f32 (default), f16 or bf16
  host --q Q --k K --v V --out OUT [--scale S]
                            causal attention of .npy arrays: little-endian f32,
                            C order, q [N, D] or [N, H, D], k and v [M, D] or
                            [M, KVH, D] with N <= M (the queries are the last N
                            positions); writes OUT in q's shape; S defaults
                            to 1/sqrt(D)
  host --write-sample DIR   writes DIR/q.npy, DIR/k.npy, DIR/v.npy, a small
                            multi-head case to try the .npy mode with
  host --help               this text

Through cargo: cargo run --release --example host -- <ARGS>
Colour: on when stdout is a terminal and NO_COLOR is unset or empty.
Exit status: 0 done, 2 bad arguments or files, 1 any other failure.
";

/// The mode chosen by the arguments.
#[derive(Debug)]
pub enum Command {
    /// No arguments: the demo sentence, plain and with ALiBi, then the
    /// timings.
    Demo,
    /// `--decode [--kv E]`: the sentence token by token through a KV cache
    /// storing `E`.
    Decode(Kv),
    /// `--help` or `-h`.
    Help,
    /// `--write-sample DIR`.
    WriteSample(PathBuf),
    /// The `.npy` mode.
    Npy(NpyArgs),
}

/// The storage element of the `--decode` mode's cache (`--kv`).
#[derive(Debug, Clone, Copy)]
pub enum Kv {
    /// `f32` (the default).
    F32,
    /// `microattn::f16`.
    F16,
    /// `microattn::bf16`.
    Bf16,
}

/// The files and scale of the `.npy` mode.
#[derive(Debug)]
pub struct NpyArgs {
    /// Queries, `[N, D]` or `[N, H, D]`.
    pub q: PathBuf,
    /// Keys, `[M, D]` or `[M, KVH, D]`.
    pub k: PathBuf,
    /// Values, the shape of the keys.
    pub v: PathBuf,
    /// Where the output goes, in the shape of the queries.
    pub out: PathBuf,
    /// The score scale, `1/√D` if `None`.
    pub scale: Option<f32>,
}

/// Every flag seen, before deciding on a mode.
#[derive(Default)]
struct Flags {
    q: Option<PathBuf>,
    k: Option<PathBuf>,
    v: Option<PathBuf>,
    out: Option<PathBuf>,
    scale: Option<f32>,
    write_sample: Option<PathBuf>,
    decode: bool,
    kv: Option<Kv>,
}

/// Parses the arguments (without the program name).
///
/// # Errors
/// An unknown argument, a flag without a value, a flag given twice, a
/// `--scale` that is not a number, a `--kv` that is not an element name or
/// comes without `--decode`, or an incomplete `.npy` mode.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let mut args = args.into_iter();
    let mut flags = Flags::default();
    let mut any = false;
    while let Some(arg) = args.next() {
        any = true;
        let flag = &*arg.to_string_lossy();
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--decode" if flags.decode => {
                return Err(Failure::input("--decode given twice"));
            }
            "--decode" => flags.decode = true,
            "--q" => set(&mut flags.q, flag, value(flag, args.next())?.into())?,
            "--k" => set(&mut flags.k, flag, value(flag, args.next())?.into())?,
            "--v" => set(&mut flags.v, flag, value(flag, args.next())?.into())?,
            "--out" => set(&mut flags.out, flag, value(flag, args.next())?.into())?,
            "--write-sample" => set(
                &mut flags.write_sample,
                flag,
                value(flag, args.next())?.into(),
            )?,
            "--scale" => set(&mut flags.scale, flag, scale(&value(flag, args.next())?)?)?,
            "--kv" => set(&mut flags.kv, flag, kv(&value(flag, args.next())?)?)?,
            _ => {
                return Err(Failure::input(format!(
                    "unknown argument `{flag}` (see --help)"
                )));
            }
        }
    }
    if any {
        flags.into_command()
    } else {
        Ok(Command::Demo)
    }
}

impl Flags {
    /// The mode the flags ask for, if they make a complete one.
    fn into_command(self) -> Result<Command, Failure> {
        let Flags {
            q,
            k,
            v,
            out,
            scale,
            write_sample,
            decode,
            kv,
        } = self;
        let npy_flag = q.is_some() || k.is_some() || v.is_some() || out.is_some();
        if decode {
            if npy_flag || scale.is_some() || write_sample.is_some() {
                return Err(Failure::input("--decode takes no other flag than --kv"));
            }
            return Ok(Command::Decode(kv.unwrap_or(Kv::F32)));
        }
        if kv.is_some() {
            return Err(Failure::input("--kv needs --decode"));
        }
        if let Some(dir) = write_sample {
            if npy_flag || scale.is_some() {
                return Err(Failure::input("--write-sample takes no other flag"));
            }
            return Ok(Command::WriteSample(dir));
        }
        Ok(Command::Npy(NpyArgs {
            q: required(q, "--q")?,
            k: required(k, "--k")?,
            v: required(v, "--v")?,
            out: required(out, "--out")?,
            scale,
        }))
    }
}

/// The value after `flag`; a missing one or another flag in its place is an
/// error.
fn value(flag: &str, next: Option<OsString>) -> Result<OsString, Failure> {
    match next {
        Some(v) if !v.to_string_lossy().starts_with("--") => Ok(v),
        Some(v) => Err(Failure::input(format!(
            "{flag} needs a value, found the flag `{}`",
            v.display()
        ))),
        None => Err(Failure::input(format!("{flag} needs a value"))),
    }
}

/// Stores a flag's value; a flag given twice is an error.
fn set<T>(slot: &mut Option<T>, flag: &str, value: T) -> Result<(), Failure> {
    if slot.replace(value).is_some() {
        return Err(Failure::input(format!("{flag} given twice")));
    }
    Ok(())
}

/// The value of `--scale` as a number (finiteness is the crate's check).
fn scale(text: &OsStr) -> Result<f32, Failure> {
    text.to_str()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| Failure::input(format!("--scale `{}` is not a number", text.display())))
}

/// The value of `--kv` as a storage element.
fn kv(text: &OsStr) -> Result<Kv, Failure> {
    match text.to_str() {
        Some("f32") => Ok(Kv::F32),
        Some("f16") => Ok(Kv::F16),
        Some("bf16") => Ok(Kv::Bf16),
        _ => Err(Failure::input(format!(
            "--kv `{}` is not a storage element: f32, f16 or bf16",
            text.display()
        ))),
    }
}

/// A flag the `.npy` mode cannot do without.
fn required(path: Option<PathBuf>, flag: &str) -> Result<PathBuf, Failure> {
    path.ok_or_else(|| {
        Failure::input(format!(
            "missing {flag}: the .npy mode needs --q, --k, --v and --out (see --help)"
        ))
    })
}
