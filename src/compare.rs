//! `isobench compare`: not written yet.

use crate::cli::{CompareArgs, Format};

/// Runs `isobench compare`, prints its results in `format`, returns the exit code.
pub fn command(_args: &CompareArgs, _format: Format) -> i32 {
    eprintln!("isobench compare: not implemented yet");
    crate::exit::MEASURED_FAILURE
}
