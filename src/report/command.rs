//! `isobench report`: not written yet.

use crate::cli::{Format, ReportArgs};

/// Runs `isobench report`, prints its results in `format`, returns the exit code.
pub fn command(_args: &ReportArgs, _format: Format) -> i32 {
    eprintln!("isobench report: not implemented yet");
    crate::exit::MEASURED_FAILURE
}
