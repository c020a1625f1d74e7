//! `oci`: the same rootfs and agent through a real OCI runtime (runc, crun). Being written.

use super::{Backend, Instance, LaunchError, PrepareError, RunContext};
use crate::scenario::BackendKind;

pub struct OciBackend {
    runtime: String,
}

impl OciBackend {
    pub fn new(_ctx: RunContext, runtime: &str) -> Result<OciBackend, PrepareError> {
        Err(PrepareError {
            backend: "oci",
            what: format!("{runtime}: not implemented yet"),
        })
    }
}

impl Backend for OciBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Oci
    }
    fn label(&self) -> String {
        format!("oci-{}", self.runtime)
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        Err(LaunchError::new(name, "not implemented"))
    }
}
