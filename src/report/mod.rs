//! Turning samples into files and text: `samples.csv`, `summary.csv`, the end-of-run table,
//! and `isobench report` (HTML and Markdown with plots).

pub mod axis;
pub mod chart;
pub mod claims;
pub mod command;
pub mod csv;
pub mod document;
pub mod figures;
pub mod format;
pub mod html;
pub mod isolation;
pub mod load;
pub mod markdown;
pub mod plot;
pub mod series;
pub mod summary;
pub mod table;
