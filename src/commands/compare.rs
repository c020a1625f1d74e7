//! `isobench compare`: compare two run directories and print the verdicts.

use crate::cli::{CompareArgs, Format};
use crate::compare::{compare, render};

/// Runs `isobench compare`, prints its results in `format`, returns the exit code.
pub fn command(args: &CompareArgs, format: Format) -> i32 {
    match compare(args) {
        Ok(c) => {
            match format {
                Format::Text => out!("{}", render::text(&c)),
                Format::Json => outln!("{}", render::json(&c)),
            }
            c.exit_code
        }
        Err(e) => {
            eprintln!("isobench compare: {e}");
            crate::exit::BAD_INPUT
        }
    }
}
