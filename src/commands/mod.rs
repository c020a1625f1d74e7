//! One module per subcommand: the glue between the command line (cli.rs) and the library,
//! printing results as text or JSON and choosing the exit code. `main.rs` only parses and
//! dispatches here.

pub mod clean;
pub mod compare;
pub mod docs;
pub mod doctor;
pub mod plan;
pub mod report;
pub mod run;
