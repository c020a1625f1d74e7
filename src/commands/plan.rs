//! `isobench plan`: fit cost models to a density run and answer capacity questions.

use crate::cli::{Format, PlanArgs};
use crate::plan::*;

/// Runs `isobench plan`, prints its results in `format`, returns the exit code.
pub fn command(args: &PlanArgs, format: Format) -> i32 {
    match run(args, format) {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            eprintln!("isobench: {e}");
            match e {
                PlanError::Write { .. } | PlanError::Plot(_) => crate::exit::MEASURED_FAILURE,
                _ => crate::exit::BAD_INPUT,
            }
        }
    }
}
