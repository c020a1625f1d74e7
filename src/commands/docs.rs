//! `isobench completions SHELL` and `isobench man`: shell completions (clap_complete) and the
//! man page (clap_mangen), both generated from the clap definitions in cli.rs, so they never
//! disagree with `--help`.

use crate::cli::Cli;
use clap::CommandFactory;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics on a write error (a closed pipe).
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "isobench", &mut text);
    emit("completions", &text)
}

/// Prints the man page (roff) on stdout.
pub fn man() -> i32 {
    let mut text = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut text) {
        eprintln!("isobench: man: {e}");
        return crate::exit::MEASURED_FAILURE;
    }
    emit("man", &text)
}

/// Writes `text` to stdout; a reader that stopped early (`| head`) is not an error.
fn emit(what: &str, text: &[u8]) -> i32 {
    use std::io::Write;
    match std::io::stdout().write_all(text) {
        Ok(()) => crate::exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::exit::OK,
        Err(e) => {
            eprintln!("isobench: {what}: {e}");
            crate::exit::MEASURED_FAILURE
        }
    }
}
