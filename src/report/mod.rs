//! Turning samples into files and text: `samples.csv`, `summary.csv`, the end-of-run table,
//! and `isobench report` (HTML and Markdown with plots).

pub mod claims;
pub mod command;
pub mod document;
pub mod figures;
pub mod flags;
pub mod hosts;
pub mod html;
pub mod isolation;
pub mod markdown;
pub mod terminal;
