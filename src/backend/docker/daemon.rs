//! The Docker Engine a run talks to: one that already answers (`$DOCKER_HOST`, else
//! /var/run/docker.sock), or a private `dockerd` started for the run and stopped at its end.
//!
//! The private daemon:
//! - its data root (images, containers' layers, containerd's root) is `<state dir>/docker`, so
//!   the image is imported once per run and goes with the state dir; its API socket is
//!   `<state dir>/docker.sock`;
//! - it runs in a mount namespace of its own, made private, with a fresh tmpfs on /run:
//!   its exec root and pidfile (/run/docker), containerd's state, the shims' sockets
//!   (containerd 1.6 puts them in /run/containerd/s whatever its configuration) and runc's
//!   state all live there, and every overlay it mounts stays in that namespace. Nothing of it
//!   shows in the host's mount table, and all of it vanishes with the daemon's processes, even
//!   when the run is killed. (The exec root is not under the state dir for the same reason as
//!   the shims: unix socket paths are limited to 108 bytes, which a long run id would pass.)
//! - `--iptables=false --ip-masq=false --bridge=none`: no host networking is touched;
//! - it joins the cgroup `isobench/<run-id>/dockerd`, and so do containerd and every shim it
//!   starts; containers go to `isobench/<run-id>/<instance>/<container id>`
//!   (`--cgroup-parent`). `isobench clean` finds all of them by cgroup, and the daemon also by
//!   its pid record (pid + start time) in the state dir;
//! - stopped by SIGTERM (dockerd stops containerd), then SIGKILL after [`STOP_WAIT`]; what is
//!   left in its cgroup is killed when the cgroup is removed.

use super::DockerError;
use super::cli::Cli;
use crate::host::cgroup::{CgroupHost, InstanceCgroup, Limits};
use crate::host::run_id::PidRecord;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The system daemon's socket when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// How long a daemon may take to answer a ping.
const PING_LIMIT: Duration = Duration::from_secs(5);
/// How long a private daemon may take to come up (it starts containerd first).
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a private daemon gets to stop after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(20);
/// The cgroup of the private daemon, containerd and the shims, below the run's.
pub const ENGINE_CGROUP: &str = "dockerd";
/// A unix socket path's limit (sun_path, with its NUL).
const SUN_PATH_MAX: usize = 107;

/// What the engine is: recorded in meta.json.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineInfo {
    pub version: String,
    pub storage_driver: String,
    pub cgroup_driver: String,
    /// A private dockerd started for the run.
    pub private: bool,
}

impl EngineInfo {
    /// `docker info`'s three fields, one per line (see [`Engine::info`]).
    pub fn parse(text: &str, private: bool) -> Option<EngineInfo> {
        let mut l = text.lines().map(str::trim);
        let (version, storage, cgroup) = (l.next()?, l.next()?, l.next()?);
        if version.is_empty() || storage.is_empty() || cgroup.is_empty() {
            return None;
        }
        Some(EngineInfo {
            version: version.into(),
            storage_driver: storage.into(),
            cgroup_driver: cgroup.into(),
            private,
        })
    }

    /// The line meta.json carries.
    pub fn describe(&self) -> String {
        format!(
            "docker engine {} ({}): storage driver {}, cgroup driver {}",
            self.version,
            if self.private {
                "a private dockerd started for the run"
            } else {
                "the daemon that answered"
            },
            self.storage_driver,
            self.cgroup_driver
        )
    }
}

/// A private dockerd of this run.
struct Private {
    child: Child,
    /// The proof for `clean` that the daemon is the run's (besides its cgroup).
    _record: PidRecord,
    cgroup: InstanceCgroup,
    data_root: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

/// The engine of a run.
pub struct Engine {
    pub cli: Cli,
    pub info: EngineInfo,
    private: Option<Private>,
}

/// The daemon address to try before starting a private one: `$DOCKER_HOST`, else the system
/// socket if it exists.
fn existing_address() -> Option<String> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => Some(h),
        _ => Path::new(DEFAULT_SOCKET)
            .exists()
            .then(|| format!("unix://{DEFAULT_SOCKET}")),
    }
}

/// The CLI bound to a daemon that answers now (`$DOCKER_HOST`, else the system socket), if
/// any: what `clean --cache` removes isobench's images from.
pub fn answering(exe: &Path) -> Option<Cli> {
    let cli = Cli {
        exe: exe.to_path_buf(),
        host: existing_address()?,
    };
    cli.run(&["version"], PING_LIMIT).is_ok().then_some(cli)
}

impl Engine {
    /// The daemon that answers, or a private one started for run `run_id` in `state_dir`.
    pub fn connect_or_start(
        exe: &Path,
        run_id: &str,
        state_dir: &Path,
    ) -> Result<Engine, DockerError> {
        if let Some(cli) = answering(exe) {
            let info = Self::info(&cli, false)?;
            if info.cgroup_driver != "cgroupfs" {
                return Err(DockerError::CgroupDriver(info.cgroup_driver));
            }
            return Ok(Engine {
                cli,
                info,
                private: None,
            });
        }
        Self::start_private(exe, run_id, state_dir)
    }

    fn info(cli: &Cli, private: bool) -> Result<EngineInfo, DockerError> {
        let text = cli.run(
            &[
                "info",
                "--format",
                "{{.ServerVersion}}\n{{.Driver}}\n{{.CgroupDriver}}",
            ],
            PING_LIMIT,
        )?;
        EngineInfo::parse(&text, private).ok_or_else(|| DockerError::Cli {
            cmd: "docker info".into(),
            why: format!("unexpected answer {text:?}"),
        })
    }

    fn start_private(exe: &Path, run_id: &str, state_dir: &Path) -> Result<Engine, DockerError> {
        let dockerd = crate::host::exec::which("dockerd")
            .ok_or(DockerError::NotInstalled { what: "dockerd" })?;
        let data_root = state_dir.join("docker");
        let socket = state_dir.join("docker.sock");
        let log = state_dir.join("dockerd.log");
        if socket.as_os_str().len() > SUN_PATH_MAX {
            return Err(DockerError::SocketPath(socket));
        }
        std::fs::create_dir_all(&data_root).map_err(|e| DockerError::Io {
            path: data_root.clone(),
            source: e,
        })?;
        let log_file = std::fs::File::create(&log).map_err(|e| DockerError::Io {
            path: log.clone(),
            source: e,
        })?;
        let log_err = log_file.try_clone().map_err(|e| DockerError::Io {
            path: log.clone(),
            source: e,
        })?;
        let cgroup = CgroupHost::detect()
            .and_then(|h| h.create_run(run_id))
            .and_then(|r| r.create_instance(ENGINE_CGROUP, &Limits::default()))?;
        let host = format!("unix://{}", socket.display());
        let mut cmd = Command::new(&dockerd);
        cmd.arg("--data-root")
            .arg(&data_root)
            .arg("--host")
            .arg(&host)
            .args([
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
                "--log-level=warn",
            ])
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let mut join = cgroup.join_step();
        // SAFETY: between fork and exec only async-signal-safe calls: setsid, the cgroup join
        // (open/write/close on paths built before the fork) and private_run's syscalls.
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid()?;
                join()?;
                private_run()
            });
        }
        let child = cmd.spawn().map_err(|e| DockerError::Spawn {
            exe: dockerd.clone(),
            source: e,
        })?;
        let pid = child.id() as i32;
        let record = match PidRecord::create(state_dir, pid) {
            Ok(r) => r,
            Err(e) => {
                stop_child(child, &cgroup);
                return Err(DockerError::Io {
                    path: state_dir.join(crate::host::run_id::PIDS_DIR),
                    source: e,
                });
            }
        };
        let mut engine = Engine {
            cli: Cli {
                exe: exe.to_path_buf(),
                host,
            },
            info: EngineInfo::default(),
            private: Some(Private {
                child,
                _record: record,
                cgroup,
                data_root,
                socket,
                log,
            }),
        };
        // On error `engine` drops, which stops the daemon.
        engine.wait_up()?;
        engine.info = Self::info(&engine.cli, true)?;
        Ok(engine)
    }

    /// Waits until the private daemon answers, or says why it did not (its log's last lines).
    fn wait_up(&mut self) -> Result<(), DockerError> {
        let start = Instant::now();
        loop {
            let Some(p) = self.private.as_mut() else {
                return Ok(());
            };
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(DockerError::Daemon(format!(
                    "dockerd exited ({status}): {}",
                    log_tail(&p.log)
                )));
            }
            if p.socket.exists() && self.cli.run(&["version"], PING_LIMIT).is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_LIMIT {
                return Err(DockerError::Daemon(format!(
                    "dockerd did not answer on {} within {}: {}",
                    p.socket.display(),
                    crate::deadline::seconds(START_LIMIT),
                    log_tail(&p.log)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The private daemon's data root, if the engine is private.
    pub fn data_root(&self) -> Option<&Path> {
        self.private.as_ref().map(|p| p.data_root.as_path())
    }

    /// The engine's shared processes: dockerd and containerd (the shims are per container).
    pub fn pids(&self) -> Vec<i32> {
        match &self.private {
            // containerd is dockerd's child; the shims are re-parented away from it.
            Some(p) => crate::host::with_descendants(p.child.id() as i32)
                .into_iter()
                .filter(|pid| matches!(comm(*pid).as_deref(), Some("dockerd" | "containerd")))
                .collect(),
            None => procs_named(&["dockerd", "containerd"]),
        }
    }

    /// Stops a private daemon (SIGTERM, then SIGKILL) and removes its cgroup, data root and
    /// socket; nothing for a daemon that was already there.
    pub fn stop(&mut self) -> Vec<DockerError> {
        let Some(p) = self.private.take() else {
            return Vec::new();
        };
        let mut errs = Vec::new();
        let Private {
            child,
            _record,
            cgroup,
            data_root,
            socket,
            log,
        } = p;
        errs.extend(stop_child(child, &cgroup));
        drop(_record);
        if let Err(e) = crate::host::remove_dir_tree(&data_root) {
            errs.push(e.into());
        }
        for f in [&socket, &log] {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => errs.push(DockerError::Io {
                    path: f.clone(),
                    source: e,
                }),
                _ => {}
            }
        }
        errs
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// SIGTERM to dockerd, a wait for it to stop containerd and exit, SIGKILL if it did not; then
/// the engine cgroup removed, which kills whatever is still in it (containerd, shims).
fn stop_child(mut child: Child, cgroup: &InstanceCgroup) -> Vec<DockerError> {
    let mut errs = Vec::new();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    let exited = loop {
        match child.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if start.elapsed() < STOP_WAIT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => break false,
        }
    };
    if !exited {
        errs.push(DockerError::StillRunning {
            pid: pid.as_raw(),
            what: "dockerd",
            after: "SIGTERM (killed)",
            waited: STOP_WAIT,
        });
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Err(e) = cgroup.remove(Duration::from_secs(5)) {
        errs.push(e.into());
    }
    errs
}

/// The pre-exec step of dockerd: a mount namespace of its own, private, with a fresh tmpfs on
/// /run (see the module docs). Async-signal-safe: syscalls on static strings.
fn private_run() -> std::io::Result<()> {
    crate::backend::oci::private_mount(
        c"tmpfs",
        c"/run",
        c"tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        c"mode=0755",
    )
}

/// The last lines of a daemon log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    if lines.is_empty() {
        return format!("{} is empty", log.display());
    }
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// A process's command name.
fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every process whose command name is one of `names` (a daemon that was already there).
fn procs_named(names: &[&str]) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| comm(*pid).is_some_and(|c| names.contains(&c.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_infos_three_lines_parse_and_describe_the_engine() {
        let i = EngineInfo::parse("20.10.24+dfsg1\noverlay2\ncgroupfs\n", true).unwrap();
        assert_eq!(i.storage_driver, "overlay2");
        assert_eq!(i.cgroup_driver, "cgroupfs");
        assert!(i.describe().contains("private dockerd"));
        assert!(EngineInfo::parse("20.10\n\ncgroupfs", false).is_none());
        assert!(EngineInfo::parse("20.10", false).is_none());
    }
}
