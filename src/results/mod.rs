//! What a run writes and every analysis reads: the records (one struct per file row), the
//! metrics (one row per figure: unit, definition, rounding, ...), their CSV files, meta.json,
//! the summary, and loading a run directory back.

pub mod csv;
pub mod load;
pub mod meta;
pub mod metrics;
pub mod record;
pub mod summary;
