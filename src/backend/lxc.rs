//! `lxc`: placeholder while the backend is written.
use super::{PrepareError, RunContext};

pub struct LxcBackend;

impl LxcBackend {
    pub fn new(_ctx: RunContext) -> Result<Box<dyn super::Backend>, PrepareError> {
        Err(PrepareError {
            backend: "lxc",
            what: "not yet".into(),
        })
    }
}
