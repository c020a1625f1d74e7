//! Plain-text output, once: aligned tables and number formatting for the terminal and the
//! reports.

pub mod format;
pub mod table;

/// How a command prints its results: aligned text for people, or one JSON document on stdout
/// for other tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}
