//! The errors that cross the backend seam, typed: what failed (a pid, a path, a runtime's
//! command with its exit status and output), never a sentence a caller has to parse. The
//! runner turns them into text only where text is the product (a row's `error` column, a
//! warning).

use crate::agent::reader::AgentError;
use crate::deadline::seconds;
use crate::host::cgroup::CgroupError;
use crate::host::remove::RemoveError;
use std::path::PathBuf;
use std::time::Duration;

/// Launching one instance failed; nothing of it is left behind.
#[derive(Debug, thiserror::Error)]
#[error("{instance}: {cause}")]
pub struct LaunchError {
    pub instance: String,
    pub cause: LaunchCause,
}

impl LaunchError {
    pub fn new(instance: &str, cause: impl Into<LaunchCause>) -> LaunchError {
        LaunchError {
            instance: instance.to_string(),
            cause: cause.into(),
        }
    }

    /// What the instance itself printed before it failed (a runtime's or QEMU's own error
    /// lines, which reach the agent's pipe), if the failure was seen through the agent's pipe.
    pub fn instance_output(&self) -> &[String] {
        self.cause.instance_output()
    }
}

/// Why a launch failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchCause {
    /// The agent never said `ready` (or its output ended, or the run was interrupted).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// A VM's agent waits cover the whole boot: the guest did not come up.
    #[error("booting the guest (QEMU): {0}")]
    Boot(#[source] Box<LaunchCause>),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syscall of the harness (pipe, clone, writing the config) failed.
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        source: std::io::Error,
    },
    /// The process could not be started; `pre_exec` says what ran between fork and exec.
    #[error("spawning {program}: {source}{}", pre_exec_note(.pre_exec))]
    Spawn {
        program: String,
        source: std::io::Error,
        pre_exec: Option<String>,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("recording pid {pid} for isobench clean: {source}")]
    RecordPid { pid: i32, source: std::io::Error },
    /// A helper tool (`qemu-img`) ran and failed: its exit status and its own words.
    #[error("{program} {action}: {}", tool_said(*.status, .stderr))]
    Tool {
        program: String,
        action: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("not a valid container id (letters, digits, _ + - . only): {0:?}")]
    BadName(String),
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    #[error("{what} contains NUL")]
    Nul { what: &'static str },
    #[error("writing config.json: {0}")]
    Config(#[from] serde_json::Error),
    /// Our container's init reported a failed step before exec.
    #[error("{stage} failed: {}", std::io::Error::from_raw_os_error(*.errno))]
    ChildStage { stage: &'static str, errno: i32 },
    /// The agent was ready but its process is not where the runtime was told to put it.
    #[error("ready, but no process in its cgroup {} (did {runtime} put it elsewhere?)", .cgroup.display())]
    NoProcess { cgroup: PathBuf, runtime: String },
}

impl LaunchCause {
    pub fn instance_output(&self) -> &[String] {
        match self {
            LaunchCause::Agent(a) => a.output(),
            LaunchCause::Boot(b) => b.instance_output(),
            _ => &[],
        }
    }
}

fn pre_exec_note(p: &Option<String>) -> String {
    p.as_ref()
        .map(|s| format!(" (in the spawn or its pre-exec step: {s})"))
        .unwrap_or_default()
}

fn tool_said(status: Option<i32>, stderr: &str) -> String {
    let status = match status {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    };
    if stderr.trim().is_empty() {
        status
    } else {
        format!("{status}: {}", stderr.trim())
    }
}

/// Removing an instance (or what a backend shared between instances) did not go cleanly:
/// what is left, by pid, path or runtime command.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("waiting for pid {pid}: {source}")]
    Wait { pid: i32, source: std::io::Error },
    #[error("waitpid {pid}: {source}")]
    WaitPid { pid: i32, source: nix::errno::Errno },
    #[error(
        "pids {pids:?} below pid {parent} still running {} after it was killed",
        seconds(*.waited)
    )]
    Stragglers {
        parent: i32,
        pids: Vec<i32>,
        waited: Duration,
    },
    #[error(
        "container init pid {pid} still running {} after `{} kill`",
        seconds(*.waited),
        .runtime.display()
    )]
    StillRunning {
        pid: i32,
        runtime: PathBuf,
        waited: Duration,
    },
    /// An OCI runtime's command failed: its exit status and its stderr, as it said them.
    #[error("{} {action} {id}: {}", .runtime.display(), tool_said(*.status, .stderr))]
    Runtime {
        runtime: PathBuf,
        action: &'static str,
        id: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("{}: {source}", .program.display())]
    RunTool {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Remove(#[from] RemoveError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The Docker Engine did not remove a container, or a private daemon did not stop.
    #[error(transparent)]
    Docker(#[from] crate::backend::docker::DockerError),
    /// Several things were left; each says what.
    #[error("{}", list(.0))]
    Several(Vec<TeardownError>),
    /// What instance or backend the failures belong to.
    #[error("{owner}: teardown: {source}")]
    Of {
        owner: String,
        source: Box<TeardownError>,
    },
}

fn list(errs: &[TeardownError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl TeardownError {
    /// Ok if nothing went wrong, the one error, or all of them.
    pub fn collect(mut errs: Vec<TeardownError>) -> Result<(), TeardownError> {
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(TeardownError::Several(errs)),
        }
    }

    /// Names the instance or backend the error belongs to.
    pub fn of(self, owner: impl Into<String>) -> TeardownError {
        TeardownError::Of {
            owner: owner.into(),
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_is_itself_several_are_listed() {
        assert!(TeardownError::collect(Vec::new()).is_ok());
        let gone = |pid| TeardownError::Stragglers {
            parent: 1,
            pids: vec![pid],
            waited: Duration::from_secs(5),
        };
        let one = TeardownError::collect(vec![gone(7)]).unwrap_err();
        assert!(matches!(one, TeardownError::Stragglers { .. }));
        let two = TeardownError::collect(vec![gone(7), gone(8)])
            .unwrap_err()
            .of("c-1");
        let text = two.to_string();
        assert!(text.starts_with("c-1: teardown: pids [7]"), "{text}");
        assert!(text.contains("; pids [8]"), "{text}");
    }

    #[test]
    fn a_runtime_failure_keeps_its_status_and_words() {
        let e = TeardownError::Runtime {
            runtime: "/usr/sbin/runc".into(),
            action: "delete --force",
            id: "c-1".into(),
            status: Some(1),
            stderr: "container not stopped\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "/usr/sbin/runc delete --force c-1: exit status 1: container not stopped"
        );
    }

    #[test]
    fn the_instance_output_is_read_from_fields_not_text() {
        let e = LaunchError::new(
            "probe",
            LaunchCause::Boot(Box::new(LaunchCause::Agent(AgentError::Eof {
                expected: "ready",
                output: vec!["crun: cannot open cgroup".into()],
            }))),
        );
        assert_eq!(e.instance_output(), ["crun: cannot open cgroup"]);
        assert!(
            LaunchError::new("x", LaunchCause::BadName("..".into()))
                .instance_output()
                .is_empty()
        );
    }
}
