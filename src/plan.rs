//! `isobench plan`: not written yet.

use crate::cli::{Format, PlanArgs};

/// Runs `isobench plan`, prints its results in `format`, returns the exit code.
pub fn command(_args: &PlanArgs, _format: Format) -> i32 {
    eprintln!("isobench plan: not implemented yet");
    crate::exit::MEASURED_FAILURE
}
