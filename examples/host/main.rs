//! The host example of `microattn`: a demo on a real sentence (plain and
//! with ALiBi), a timing of the fast kernel against the textbook reference,
//! and a `.npy` front end.
//!
//! ```text
//! cargo run --release --example host                          # demo, ALiBi, then timings
//! cargo run --release --example host -- --decode              # token by token, KV cache
//! cargo run --release --example host -- --decode --kv f16     # the same, 16-bit cache
//! cargo run --release --example host -- --write-sample DIR    # q/k/v .npy files to try
//! cargo run --release --example host -- --q q.npy --k k.npy --v v.npy --out out.npy [--scale S]
//! cargo run --release --example host -- --help
//! ```
//!
//! Every failure is one `error: …` line on stderr and a non-zero exit status
//! (2 for bad arguments or files), never a panic.

mod alibi;
mod cli;
mod decode;
mod demo;
mod failure;
mod heatmap;
mod kv_storage;
mod npy_io;
mod npy_mode;
mod rng;
mod sample;
mod timing;
mod verify;

use std::io::{self, Write};
use std::process::ExitCode;

use cli::Command;
use failure::Failure;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.status())
        }
    }
}

/// Parses the arguments and runs the chosen mode, printing to stdout.
fn run() -> Result<(), Failure> {
    let command = cli::parse(std::env::args_os().skip(1))?;
    let mut out = io::stdout().lock();
    match command {
        Command::Demo => {
            demo::run(&mut out).map_err(Failure::output)?;
            alibi::run(&mut out)?;
            timing::run(&mut out)
        }
        Command::Decode(kv) => decode::run(kv, &mut out),
        Command::Help => out
            .write_all(cli::USAGE.as_bytes())
            .map_err(Failure::output),
        Command::WriteSample(dir) => sample::write(&dir, &mut out),
        Command::Npy(args) => npy_mode::run(&args, &mut out),
    }
}
