//! Turning samples into files and text: `samples.csv`, `summary.csv` and the end-of-run table.

pub mod csv;
pub mod summary;
pub mod table;
