//! `isobench report`: the HTML and Markdown report of one or more run directories.

use crate::cli::{Format, ReportArgs};
use crate::exit;
use crate::report::command::*;

/// Runs `isobench report`, prints its results in `format`, returns the exit code.
pub fn command(args: &ReportArgs, format: Format) -> i32 {
    match report(args) {
        Ok(r) => {
            let printed = match format {
                Format::Text => print_text(&r),
                Format::Json => print_json(&r),
            };
            match printed {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("isobench report: writing to stdout: {e}");
                    exit::MEASURED_FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("isobench report: {e}");
            e.exit_code()
        }
    }
}
