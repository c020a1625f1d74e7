//! `unshare`: util-linux `unshare --fork --pid --mount --uts --ipc --net` running the same
//! agent from the host's filesystem. Not a container (no root switch, no cgroup): the
//! reference point our container launcher's start-up is held against.

use super::process::HostPlace;
use super::{Backend, Instance, LaunchError, PrepareError, RunContext, TeardownError};
use crate::scenario::BackendKind;
use std::process::Command;

pub const UNSHARE_ARGS: &[&str] = &[
    "--fork",
    "--pid",
    "--mount",
    "--uts",
    "--ipc",
    "--net",
    "--kill-child",
];

pub struct UnshareBackend {
    ctx: RunContext,
    place: HostPlace,
}

impl UnshareBackend {
    pub fn new(ctx: RunContext) -> Result<UnshareBackend, PrepareError> {
        // unshare's agent outlives unshare by a moment at teardown: it must be ours to reap.
        crate::host::become_subreaper();
        if !crate::host::is_root() {
            return Err(PrepareError {
                backend: "unshare",
                what: "needs root to create namespaces: run isobench as root".into(),
                skip: false,
            });
        }
        let place = HostPlace::new(&ctx, "unshare");
        Ok(UnshareBackend { ctx, place })
    }
}

impl Backend for UnshareBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Unshare
    }
    fn finish(&self) -> Result<(), TeardownError> {
        self.place.finish()
    }
    fn launch_files(&self) -> Vec<std::path::PathBuf> {
        crate::host::exec::which("unshare").into_iter().collect()
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        // --kill-child: the agent (PID 1 of the new namespace) dies when unshare does, so
        // killing unshare at teardown ends the whole instance.
        let mut cmd = Command::new("unshare");
        cmd.args(UNSHARE_ARGS)
            .arg(&self.ctx.agent_exe)
            .arg("agent")
            .args(self.ctx.scenario.workload.agent_args());
        self.place.launch(&self.ctx, name, cmd)
    }
}
