//! Plain-text output, once: aligned tables and number formatting for the terminal and the
//! reports.

pub mod format;
pub mod table;
