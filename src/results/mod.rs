//! What a run writes and every analysis reads: the records (one struct per file row), their
//! CSV files, meta.json, the summary, and loading a run directory back.

pub mod csv;
pub mod load;
pub mod meta;
pub mod record;
pub mod summary;
