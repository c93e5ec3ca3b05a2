//! The one error type of the example: a one-line message and the exit status
//! it gives.

use std::fmt;
use std::io;

/// Exit status for bad arguments, bad input files and rejected shapes.
const BAD_INPUT: u8 = 2;
/// Exit status for everything else: a failed self-check, an unwritable stdout.
const FAILED: u8 = 1;

/// Why the example stopped: printed as `error: {message}` on stderr.
#[derive(Debug)]
pub struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    /// A bad argument or input file (exit status 2).
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: BAD_INPUT,
        }
    }

    /// A shape or scale the crate rejects, in the crate's own words (exit
    /// status 2).
    pub fn rejected(error: microattn::Error) -> Self {
        Failure::input(format!("microattn rejects the problem: {error}"))
    }

    /// A failed self-check, such as the fast kernel breaking its accuracy
    /// contract (exit status 1).
    pub fn check(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: FAILED,
        }
    }

    /// Stdout could not be written, e.g. a closed pipe (exit status 1).
    pub fn output(error: io::Error) -> Self {
        Failure {
            message: format!("cannot write to stdout: {error}"),
            status: FAILED,
        }
    }

    /// The process exit status for this failure.
    pub fn status(&self) -> u8 {
        self.status
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
