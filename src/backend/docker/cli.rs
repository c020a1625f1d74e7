//! The docker CLI, run with a time limit.
//!
//! Why the CLI and not bollard (the Docker API client crate): bollard needs tokio and hyper,
//! a second I/O model in a crate that is synchronous throughout, for a handful of calls per
//! run; the CLI is the client people use, and Debian's `docker.io` ships it built from the
//! same release as its dockerd, so the API version always matches. The one call per instance
//! on the measured path is `docker run` itself, which is what a user's start-up is made of.

use super::DockerError;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Debian's CLI, from the same source package as its dockerd; another `docker` on PATH (a
/// newer static client in /usr/local/bin) is used only when that one is absent.
const PACKAGED_CLI: &str = "/usr/bin/docker";

/// The docker CLI bound to one daemon (`--host`).
#[derive(Debug, Clone)]
pub struct Cli {
    pub exe: PathBuf,
    pub host: String,
}

/// The docker CLI's binary, if installed.
pub fn find_cli() -> Option<PathBuf> {
    let packaged = Path::new(PACKAGED_CLI);
    if packaged.is_file() {
        return Some(packaged.to_path_buf());
    }
    crate::host::exec::which("docker")
}

impl Cli {
    /// A command of this CLI against its daemon, in a process group of its own (a Ctrl-C to
    /// the terminal's group reaches the harness, which tears down in order).
    pub fn command(&self) -> Command {
        let mut c = self.session_command();
        c.process_group(0);
        c
    }

    /// A command of this CLI against its daemon, for a caller that makes it a session leader
    /// itself (`spawn_agent_with`: setsid fails in a process that already leads a group).
    pub fn session_command(&self) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("--host").arg(&self.host).stdin(Stdio::null());
        c
    }

    /// Runs `docker <args>` and returns its stdout, trimmed; killed after `limit`.
    pub fn run(&self, args: &[&str], limit: Duration) -> Result<String, DockerError> {
        let mut c = self.command();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let what = format!("docker {}", args.join(" "));
        use crate::host::exec::{Limited, output_within};
        let out = match output_within(c, limit).map_err(|e| DockerError::Spawn {
            exe: self.exe.clone(),
            source: e,
        })? {
            Limited::Done(out) => out,
            Limited::WaitFailed(e) => {
                return Err(DockerError::Cli {
                    cmd: what,
                    why: e.to_string(),
                });
            }
            Limited::TimedOut => return Err(DockerError::Timeout { cmd: what, limit }),
        };
        if !out.status.success() {
            return Err(DockerError::Cli {
                cmd: what,
                why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}
