//! Turning samples into files and text: `samples.csv`, `summary.csv`, the end-of-run table,
//! and `isobench report` (HTML and Markdown with plots).

pub mod command;
pub mod csv;
pub mod load;
pub mod plot;
pub mod summary;
pub mod table;
