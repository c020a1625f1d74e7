//! `docker`: the same rootfs and agent through the real Docker Engine (Debian's `docker.io`).
//!
//! The engine is the daemon that answers, or a private dockerd started for the run
//! ([`daemon`]); the image is the run's layers imported once ([`image`]); each instance is
//! one `docker run` with the scenario's namespaces, limits and security profile ([`args`]),
//! its cgroup under the run's (`--cgroup-parent /isobench/<run-id>/<name>`, so the container
//! is in `isobench/<run-id>/<name>/<container id>`).
//!
//! Start-up is measured as for every backend: from just before the spawn of `docker run` until
//! the agent's `ready` line. The CLI runs attached to the container's stdout and stderr
//! (`--attach stdout --attach stderr`, without `-d`), so `ready` arrives on the CLI's stdout
//! the moment the agent prints it: the figure is create + start + the first line, as a user
//! of `docker run` sees it; `run -d` followed by `docker logs -f` would add the log driver's
//! and a second client's delay to it. The attached CLI stays alive until the instance is torn
//! down (it carries the `done` line); it runs in the harness's cgroup, so it is not counted in
//! the instance's memory, nor in `runtime_overhead_kib` (it is the harness's reader, not part
//! of the engine), but it is in the host-wide figures (`host_avail_kib`).
//!
//! Teardown is `docker rm -f` (SIGKILL, then the container's removal: its layer, its cgroup),
//! timed; the attached CLI exits by itself when its container ends.
//!
//! Memory: the container's own views as for the others (its cgroup's processes and memory),
//! plus `runtime_overhead_kib`: the PSS of the instance's containerd-shim plus the PSS of
//! dockerd and containerd shared out over the live instances.

pub mod args;
pub mod cli;
pub mod daemon;
pub mod image;

use super::process::{ProcessInstance, spawn_agent_with};
use super::{
    Backend, Instance, LaunchCause, LaunchError, PrepareError, RunContext, Startup, TeardownError,
};
use crate::agent::reader::{AgentError, WorkloadReport};
use crate::deadline::Limit;
use crate::host::cgroup::{self, CgroupHost, InstanceCgroup};
use crate::image::{ImageError, Layers};
use crate::scenario::BackendKind;
use cli::Cli;
use daemon::Engine;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How long `docker rm -f` and the other per-instance calls may take on a busy host.
const CALL_LIMIT: Duration = Duration::from_secs(60);
/// How long teardown waits for the attached CLI to exit after its container was removed, and
/// for a cgroup to empty.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// What went wrong talking to or starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("{what} is not on PATH: install docker.io (scripts/setup.sh)")]
    NotInstalled { what: &'static str },
    #[error("spawning {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("`{cmd}` failed: {why}")]
    Cli { cmd: String, why: String },
    #[error("`{cmd}` did not finish within {}", crate::deadline::seconds(*.limit))]
    Timeout { cmd: String, limit: Duration },
    #[error("private daemon: {0}")]
    Daemon(String),
    #[error(
        "{0}: longer than a unix socket path may be (107 bytes); use a shorter --state-dir or run label"
    )]
    SocketPath(PathBuf),
    #[error(
        "the daemon that answered uses the {0} cgroup driver; isobench needs cgroupfs to put containers under the run's cgroup (unset DOCKER_HOST or stop that daemon to get a private one)"
    )]
    CgroupDriver(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pid {pid} ({what}) still running {} after {after}", crate::deadline::seconds(*.waited))]
    StillRunning {
        pid: i32,
        what: &'static str,
        after: &'static str,
        waited: Duration,
    },
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Remove(#[from] crate::host::remove::RemoveError),
}

impl From<DockerError> for PrepareError {
    fn from(e: DockerError) -> PrepareError {
        // An engine that cannot be reached or started is a finding about the host: the run
        // goes on without it.
        PrepareError {
            backend: "docker",
            what: e.to_string(),
            skip: true,
        }
    }
}

/// A container id as docker prints it: 64 lowercase hex digits.
pub fn valid_container_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The instance's cgroup parent relative to every hierarchy root: `isobench/<run-id>/<name>`.
fn cgroup_rel(run_id: &str, name: &str) -> PathBuf {
    Path::new(cgroup::TOP).join(run_id).join(name)
}

pub struct DockerBackend {
    ctx: RunContext,
    engine: Mutex<Engine>,
    /// The engine's description for meta.json, and its CLI (cloned out of the lock).
    describe: String,
    cli: Cli,
    image: String,
    host: CgroupHost,
    /// `<state dir>/docker-run`: the seccomp profile and the cid files.
    dir: PathBuf,
    seccomp_file: Option<PathBuf>,
    shared: Option<(u64, u64)>,
    /// Every instance name launched (for `finish`).
    names: Mutex<Vec<String>>,
}

impl DockerBackend {
    /// Connects to (or starts) the engine and imports the image.
    pub fn new(ctx: RunContext) -> Result<DockerBackend, PrepareError> {
        let exe = cli::find_cli().ok_or(DockerError::NotInstalled {
            what: "the docker CLI",
        })?;
        let host = CgroupHost::detect().map_err(DockerError::from)?;
        host.hold_run_everywhere(&ctx.run_id)
            .map_err(DockerError::from)?;
        let dir = ctx.state_dir.join("docker-run");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DockerError::Io { path, source }
        };
        let cid_dir = dir.join("cid");
        std::fs::create_dir_all(&cid_dir).map_err(io(&cid_dir))?;
        let engine = Engine::connect_or_start(&exe, &ctx.run_id, &ctx.state_dir)?;
        let layers = Layers::prepare(
            &ctx.scenario.image,
            &ctx.state_dir.join("layers"),
            &ctx.agent_exe,
        )
        .map_err(DockerError::from)?;
        // On error from here `engine` drops, which stops a private daemon.
        let image = image::ensure(&engine.cli, &layers, &dir)?;
        let shared = image::layer_dir(&engine.cli, &image, engine.data_root()).map(|d| {
            use crate::measure::disk::{allocated_kib, apparent_kib};
            (allocated_kib(&d), apparent_kib(&d))
        });
        let seccomp_file = match crate::security::seccomp::oci(ctx.scenario.security) {
            Some(profile) => {
                let f = dir.join("seccomp.json");
                let text = serde_json::to_vec_pretty(&profile).map_err(|e| DockerError::Io {
                    path: f.clone(),
                    source: e.into(),
                })?;
                std::fs::write(&f, text).map_err(io(&f))?;
                Some(f)
            }
            None => None,
        };
        Ok(DockerBackend {
            describe: engine.info.describe(),
            cli: engine.cli.clone(),
            engine: Mutex::new(engine),
            ctx,
            image,
            host,
            dir,
            seccomp_file,
            shared,
            names: Mutex::new(Vec::new()),
        })
    }

    /// The engine's description (version, storage and cgroup drivers, private or not).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The image every instance runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The CLI bound to the engine.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    fn launch_with(&self, name: &str, limit: Limit) -> Result<DockerInstance, LaunchError> {
        let lerr = |cause: LaunchCause| LaunchError::new(name, cause);
        if !super::oci::valid_container_id(name) || name.starts_with('.') {
            return Err(lerr(LaunchCause::BadName(name.to_string())));
        }
        let cidfile = self.dir.join("cid").join(name);
        if cidfile.exists() {
            return Err(lerr(LaunchCause::Exists(cidfile)));
        }
        if let Ok(mut names) = self.names.lock() {
            names.push(name.to_string());
        }
        let rel = cgroup_rel(&self.ctx.run_id, name);
        // From here on, `leftovers` removes the container (if created) unless the launch
        // succeeds.
        let mut leftovers = Leftovers {
            cli: self.cli.clone(),
            cidfile: cidfile.clone(),
            cid: None,
            cgroup_rel: rel.clone(),
            pids: Vec::new(),
            live: true,
        };
        let parent = format!("/{}", rel.display());
        let run_args = args::run_args(
            &self.ctx,
            name,
            &args::RunArgs {
                image: &self.image,
                cgroup_parent: &parent,
                cidfile: &cidfile,
                seccomp_file: self.seccomp_file.as_deref(),
            },
        );
        let mut cmd = self.cli.session_command();
        cmd.args(&run_args);
        // The CLI stays in the harness's cgroup: recorded, so `clean` may kill it.
        let inner = spawn_agent_with(&self.ctx, name, cmd, limit, true, || Ok(()))?;
        let cid = std::fs::read_to_string(&cidfile).unwrap_or_default();
        let cid = cid.trim();
        if !valid_container_id(cid) {
            let why = LaunchCause::Io {
                path: cidfile.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("ready, but no container id here ({cid:?})"),
                ),
            };
            let _ = leftovers.remove(Some(inner));
            return Err(lerr(why));
        }
        leftovers.cid = Some(cid.to_string());
        let cgroup =
            InstanceCgroup::existing(&self.host, &self.ctx.run_id, &format!("{name}/{cid}"));
        let agent_pid = cgroup.dirs().iter().flat_map(|d| cgroup::procs(d)).next();
        let Some(agent_pid) = agent_pid else {
            let why = LaunchCause::NoProcess {
                cgroup: rel.join(cid),
                runtime: "docker".into(),
            };
            let _ = leftovers.remove(Some(inner));
            return Err(lerr(why));
        };
        // The container's init's parent on the host is its shim (runc exited after start).
        let shim_pid = procfs::process::Process::new(agent_pid)
            .and_then(|p| p.stat())
            .map(|s| s.ppid)
            .ok()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.starts_with("containerd-shim"))
            });
        leftovers.pids = std::iter::once(agent_pid).chain(shim_pid).collect();
        let upper = self
            .cli
            .run(
                &[
                    "container",
                    "inspect",
                    "--format",
                    "{{.GraphDriver.Data.UpperDir}}",
                    cid,
                ],
                CALL_LIMIT,
            )
            .ok()
            .zip(
                self.engine
                    .lock()
                    .ok()
                    .and_then(|e| e.data_root().map(Path::to_path_buf)),
            )
            .and_then(|(p, root)| image::under(Path::new(&p), &root));
        Ok(DockerInstance {
            name: name.to_string(),
            startup: inner.startup().clone(),
            inner: Some(inner),
            agent_pid,
            shim_pid,
            cgroup,
            upper,
            leftovers,
        })
    }
}

impl Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }
    fn label(&self) -> String {
        super::profile_label("docker".into(), &self.ctx.scenario)
    }
    fn accel_reason(&self) -> Option<String> {
        Some(self.describe.clone())
    }
    fn launch_files(&self) -> Vec<PathBuf> {
        vec![self.cli.exe.clone()]
    }
    fn security(&self) -> Option<crate::security::Profile> {
        Some(self.ctx.scenario.security)
    }
    /// The image's layer in the private daemon's data root, shared by every instance.
    fn shared_disk(&self) -> Option<(u64, u64)> {
        self.shared
    }
    fn engine_pids(&self) -> Option<Vec<i32>> {
        Some(self.engine.lock().map(|e| e.pids()).unwrap_or_default())
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        Ok(Box::new(self.launch_with(name, self.ctx.ready_limit())?))
    }
    /// Removes every container of the run the engine still has (by the run's label), the
    /// instances' cgroup parents in every hierarchy, stops a private daemon and removes its
    /// data root; `isobench/<run-id>` itself is removed only in hierarchies isobench's own
    /// containers do not use (as the oci backend does).
    fn finish(&self) -> Result<(), TeardownError> {
        let mut errs: Vec<TeardownError> = Vec::new();
        let filter = format!("label={}={}", args::RUN_LABEL, self.ctx.run_id);
        match self
            .cli
            .run(&["ps", "-aq", "--filter", &filter], CALL_LIMIT)
        {
            Ok(ids) => {
                let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
                if !ids.is_empty() {
                    let mut a = vec!["rm", "-f"];
                    a.extend(ids);
                    if let Err(e) = self.cli.run(&a, CALL_LIMIT) {
                        errs.push(e.into());
                    }
                }
            }
            Err(e) => errs.push(e.into()),
        }
        if let Ok(mut engine) = self.engine.lock() {
            errs.extend(engine.stop().into_iter().map(TeardownError::from));
        }
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        let rels: Vec<PathBuf> = names
            .iter()
            .map(|name| cgroup_rel(&self.ctx.run_id, name))
            .collect();
        errs.extend(
            self.host
                .remove_runtime_cgroups(&self.ctx.run_id, &rels, EXIT_WAIT)
                .into_iter()
                .map(TeardownError::from),
        );
        if let Err(e) = crate::host::remove_dir_tree(&self.dir) {
            errs.push(e.into());
        }
        TeardownError::collect(errs).map_err(|e| e.of("docker"))
    }
}

/// What one instance has besides its processes: the container in the engine, its cid file,
/// its cgroup parent. Removed on drop if not removed before.
struct Leftovers {
    cli: Cli,
    cidfile: PathBuf,
    cid: Option<String>,
    cgroup_rel: PathBuf,
    /// The container's init and its shim once known: `rm -f` returns before the shim has
    /// exited, and neither is our child (the harness reaps them as subreaper).
    pids: Vec<i32>,
    live: bool,
}

impl Leftovers {
    /// `docker rm -f` of the container (its id from the cid file if the launch did not get
    /// that far), the attached CLI reaped, the cgroup parent and the cid file removed.
    fn remove(&mut self, client: Option<ProcessInstance>) -> Result<(), TeardownError> {
        self.live = false;
        let mut errs: Vec<TeardownError> = Vec::new();
        let cid = self.cid.clone().or_else(|| {
            std::fs::read_to_string(&self.cidfile)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| valid_container_id(s))
        });
        if let Some(cid) = &cid
            && let Err(e) = self.cli.run(&["rm", "-f", cid], CALL_LIMIT)
        {
            errs.push(e.into());
        }
        for &pid in &self.pids {
            if !crate::host::wait_gone(pid, EXIT_WAIT) {
                errs.push(
                    DockerError::StillRunning {
                        pid,
                        what: "container init or shim",
                        after: "`docker rm -f`",
                        waited: EXIT_WAIT,
                    }
                    .into(),
                );
            }
        }
        if let Some(mut p) = client {
            // It exits once its container is gone; killed if it did not.
            p.wait_exit(EXIT_WAIT);
            if let Err(e) = Box::new(p).teardown() {
                errs.push(e);
            }
        }
        for root in CgroupHost::all_roots() {
            if let Err(e) = cgroup::remove_tree(&root.join(&self.cgroup_rel), EXIT_WAIT) {
                errs.push(e.into());
            }
        }
        match std::fs::remove_file(&self.cidfile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => errs.push(TeardownError::Io {
                path: self.cidfile.clone(),
                source: e,
            }),
            _ => {}
        }
        TeardownError::collect(errs)
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if self.live {
            let _ = self.remove(None);
        }
    }
}

pub struct DockerInstance {
    name: String,
    /// The attached `docker run`: the agent's lines arrive on its stdout.
    inner: Option<ProcessInstance>,
    startup: Startup,
    agent_pid: i32,
    shim_pid: Option<i32>,
    cgroup: InstanceCgroup,
    upper: Option<PathBuf>,
    leftovers: Leftovers,
}

impl DockerInstance {
    /// The container's id.
    pub fn container_id(&self) -> &str {
        self.leftovers.cid.as_deref().unwrap_or("")
    }

    /// The pid of the containerd-shim that serves this container, if found.
    pub fn shim_pid(&self) -> Option<i32> {
        self.shim_pid
    }

    /// The pid of the attached `docker run`.
    pub fn client_pid(&self) -> i32 {
        self.inner.as_ref().map(|p| p.pid()).unwrap_or(0)
    }
}

impl Instance for DockerInstance {
    fn name(&self) -> &str {
        &self.name
    }
    fn startup(&self) -> &Startup {
        &self.startup
    }
    /// The agent's host pid (the container's first process).
    fn pid(&self) -> i32 {
        self.agent_pid
    }
    fn runtime_pids(&self) -> Vec<i32> {
        self.shim_pid.into_iter().collect()
    }
    fn wait_done(
        &mut self,
        deadline: crate::deadline::Deadline,
        cancel: &AtomicBool,
    ) -> Result<WorkloadReport, AgentError> {
        match &mut self.inner {
            Some(p) => p.wait_done(deadline, cancel),
            None => Err(AgentError::Cancelled),
        }
    }
    fn cgroup(&self) -> Option<&InstanceCgroup> {
        Some(&self.cgroup)
    }
    fn private_dir(&self) -> Option<PathBuf> {
        self.upper.clone()
    }
    fn teardown(mut self: Box<Self>) -> Result<Duration, TeardownError> {
        let start = Instant::now();
        let inner = self.inner.take();
        self.leftovers
            .remove(inner)
            .map_err(|e| e.of(self.name.clone()))?;
        Ok(start.elapsed())
    }
}

impl Drop for DockerInstance {
    fn drop(&mut self) {
        if self.leftovers.live {
            let inner = self.inner.take();
            let _ = self.leftovers.remove(inner);
        }
    }
}
