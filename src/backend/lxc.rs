//! `lxc`: the same rootfs and agent through LXC 5's own tools (`lxc-start`, `lxc-stop`), each
//! instance from a configuration file isobench writes.
//!
//! Every instance is `<state_dir>/lxc/<name>/` (the run's lxcpath): `config`, `seccomp` (the
//! profile's policy in LXC's format), `upper/`, `work/`, `rootfs/`, and beside it `<name>.log`. Its root is
//! an overlay exactly like every other container's (the run's shared read-only layers under a
//! private upper dir), mounted the way the `oci` backend mounts it: `lxc-start` is spawned
//! with a pre-exec step that unshares a mount namespace of its own and mounts the overlay on
//! `rootfs/` there (`lxc.rootfs.path = dir:`), so nothing is ever mounted in the host's
//! namespace and the mount vanishes with the container's processes.
//!
//! `lxc-start -F` (foreground) with `lxc.init.cmd` = the agent: the agent is the container's
//! init, and with `lxc.console.path = none` it keeps `lxc-start`'s stdio, so its lines come
//! through our pipe. Start-up is, as for every backend, from just before the spawn of
//! `lxc-start` until the agent's `ready`. `lxc-start` stays alive as the container's monitor:
//! LXC's own cost per instance, counted in the instance's processes (as QEMU is a VM's).
//!
//! Cgroups: `lxc.cgroup.relative = 0` and `lxc.cgroup.dir.container = isobench/<run-id>/<name>`
//! (the monitor in `<name>.monitor` beside it), so accounting reads the same cgroup as for the
//! other backends and `isobench clean` finds what a killed run left under the run's cgroup.
//! LXC makes the directories in every v1 hierarchy (and the controller-less cgroup2 mount of a
//! hybrid host, tried here) and removes them when the container stops.
//!
//! Security: the profile's capabilities (`lxc.cap.keep`), no_new_privs, seccomp (security/
//! seccomp.rs's allow-list in LXC's policy format, see [`crate::security::seccomp::lxc`]) and
//! device allow-list (`lxc.cgroup.devices.*`, `lxc.cgroup2.devices.*` on v2). Not applied:
//! the profile's masked and read-only paths (LXC's `proc:mixed sys:ro` mounts are its own
//! answer to the same problem: /proc/sys and /sys read-only). No network: `lxc.net.0.type =
//! empty` (a loopback only), as the other peers' empty network namespace.
//!
//! Teardown: `lxc-stop -k` (SIGKILL to the container's init, through the monitor), the wait
//! for init to vanish and for `lxc-start` to exit, then removal of whatever is left: cgroups,
//! the instance's directory. No `lxc-destroy`: the directory is ours, and removing it never
//! follows a symlink nor crosses a mount (`host::remove`).

use super::oci::private_overlay;
use super::process::{ProcessInstance, spawn_agent_with};
use super::{
    Backend, Instance, LaunchCause, LaunchError, PrepareError, RunContext, Startup, TeardownError,
};
use crate::agent::reader::{AgentError, WorkloadReport};
use crate::deadline::Limit;
use crate::host::cgroup::{self, CgroupHost, CgroupMode, InstanceCgroup};
use crate::image::{AGENT_IN_ROOTFS, Layers};
use crate::scenario::BackendKind;
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How long teardown waits for the container's init and for `lxc-start` to end, and for a
/// cgroup to empty.
const EXIT_WAIT: Duration = Duration::from_secs(5);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LaunchCause + '_ {
    move |source| LaunchCause::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The last line LXC logged for instance `name` (its log lies beside the instance's
/// directory, so it outlives a failed launch's removal), for a probe's error.
fn last_logged(lxcpath: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(lxcpath.join(format!("{name}.log"))).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// The instance's cgroup relative to every hierarchy root: `isobench/<run-id>/<name>`.
fn cgroup_rel(run_id: &str, name: &str) -> PathBuf {
    Path::new(cgroup::TOP).join(run_id).join(name)
}

/// Where LXC puts the monitor (`lxc-start`) of `name`: beside the container's cgroup.
fn monitor_rel(run_id: &str, name: &str) -> PathBuf {
    Path::new(cgroup::TOP)
        .join(run_id)
        .join(format!("{name}.monitor"))
}

/// The LXC configuration of instance `name` whose directory is `dir`: rootfs, no network,
/// the agent as init, the run's cgroup, the scenario's limits and namespaces, the profile's
/// capabilities, no_new_privs, seccomp policy file (`seccomp` in `dir`, when the profile has
/// one) and devices. `mode` picks `lxc.cgroup.*` (v1, hybrid) or `lxc.cgroup2.*` keys.
pub fn config(ctx: &RunContext, name: &str, dir: &Path, mode: CgroupMode) -> String {
    let s = &ctx.scenario;
    let profile = s.security;
    let ns = s.namespaces;
    let mut c = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(c, "{k} = {v}");
    };
    line(
        "lxc.rootfs.path",
        &format!("dir:{}", dir.join("rootfs").display()),
    );
    if ns.uts {
        line("lxc.uts.name", name);
    }
    // Namespaces the scenario turns off are kept (shared with the host); mount is required.
    let keep: Vec<&str> = [
        (ns.pid, "pid"),
        (ns.net, "net"),
        (ns.ipc, "ipc"),
        (ns.uts, "uts"),
        (ns.cgroup, "cgroup"),
    ]
    .into_iter()
    .filter(|(on, _)| !on)
    .map(|(_, t)| t)
    .collect();
    if !keep.is_empty() {
        line("lxc.namespace.keep", &keep.join(" "));
    }
    if ns.net {
        line("lxc.net.0.type", "empty");
    }
    line("lxc.console.path", "none");
    line("lxc.tty.max", "0");
    line("lxc.pty.max", "16");
    line("lxc.autodev", "1");
    line("lxc.mount.auto", "proc:mixed sys:ro cgroup:ro");
    line("lxc.apparmor.profile", "unconfined");
    let mut init = vec![AGENT_IN_ROOTFS.to_string(), "agent".to_string()];
    init.extend(s.workload.agent_args());
    line("lxc.init.cmd", &init.join(" "));
    line("lxc.init.cwd", "/");
    line(
        "lxc.environment",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    line("lxc.environment", "HOME=/root");
    for (k, v) in ctx.marker_env(name) {
        line("lxc.environment", &format!("{k}={v}"));
    }
    // The same open-files limit as the OCI bundles (runc spec's default).
    line("lxc.prlimit.nofile", "1024");
    line("lxc.cgroup.relative", "0");
    line(
        "lxc.cgroup.dir.container",
        &cgroup_rel(&ctx.run_id, name).display().to_string(),
    );
    line(
        "lxc.cgroup.dir.monitor",
        &monitor_rel(&ctx.run_id, name).display().to_string(),
    );
    let v2 = mode == CgroupMode::V2;
    let key = |k: &str| {
        if v2 {
            format!("lxc.cgroup2.{k}")
        } else {
            format!("lxc.cgroup.{k}")
        }
    };
    const PERIOD_US: u64 = 100_000;
    if let Some(mib) = s.limits.memory_mib {
        let k = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        line(&key(k), &(mib << 20).to_string());
    }
    if let Some(cpus) = s.limits.cpus {
        // The same rounding as our own containers' cgroups (host/cgroup.rs).
        let quota = ((cpus * PERIOD_US as f64).round() as u64).max(1000);
        if v2 {
            line(&key("cpu.max"), &format!("{quota} {PERIOD_US}"));
        } else {
            line(&key("cpu.cfs_period_us"), &PERIOD_US.to_string());
            line(&key("cpu.cfs_quota_us"), &quota.to_string());
        }
    }
    if let Some(pids) = s.limits.pids {
        line(&key("pids.max"), &pids.to_string());
    }
    if let Some(rules) = profile.devices() {
        line(&key("devices.deny"), "a");
        for r in rules {
            line(&key("devices.allow"), &r.v1_line());
        }
    }
    if profile.capabilities().is_some() {
        let caps = super::oci::profile_capabilities(profile);
        let names: Vec<String> = caps
            .iter()
            .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
            .collect();
        // An empty keep list would mean "keep all" to nobody: LXC reads `none` as drop all.
        line(
            "lxc.cap.keep",
            &if names.is_empty() {
                "none".to_string()
            } else {
                names.join(" ")
            },
        );
    }
    if profile.confines() {
        line("lxc.no_new_privs", "1");
    }
    if crate::security::seccomp::lxc(profile).is_some() {
        line(
            "lxc.seccomp.profile",
            &dir.join("seccomp").display().to_string(),
        );
    }
    c
}

pub struct LxcBackend {
    ctx: RunContext,
    start_exe: PathBuf,
    stop_exe: PathBuf,
    layers: Layers,
    host: CgroupHost,
    /// `<state_dir>/lxc`: the run's lxcpath, one directory per instance.
    lxcpath: PathBuf,
    /// Every instance name launched, for `finish` to check their cgroups are gone.
    names: Mutex<Vec<String>>,
    /// `lxc-start --version` and how the probe went (meta.json's accelerator notes).
    probe: String,
}

impl LxcBackend {
    /// Prepares the backend and proves LXC works here by launching and tearing down one probe
    /// instance; a failure is a `PrepareError` carrying LXC's own message.
    pub fn new(ctx: RunContext) -> Result<LxcBackend, PrepareError> {
        // The container's init is lxc-start's child; if lxc-start dies first, ours to reap.
        crate::host::become_subreaper();
        let err = |what: String| PrepareError {
            backend: "lxc",
            what,
            skip: false,
        };
        if !crate::host::is_root() {
            return Err(err(
                "needs root (namespaces, mounts and cgroups): run isobench as root".into(),
            ));
        }
        if !ctx.scenario.namespaces.mount {
            return Err(err(
                "an LXC container needs its mount namespace: set [namespaces] mount = true".into(),
            ));
        }
        let which = |cmd: &str| {
            crate::host::exec::which(cmd).ok_or_else(|| {
                err(format!(
                    "{cmd} not found on PATH: install lxc (scripts/setup.sh)"
                ))
            })
        };
        let start_exe = which("lxc-start")?;
        let stop_exe = which("lxc-stop")?;
        let version = Command::new(&start_exe)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let layers = Layers::prepare(
            &ctx.scenario.image,
            &ctx.state_dir.join("layers"),
            &ctx.agent_exe,
        )
        .map_err(|e| err(e.to_string()))?;
        let host = CgroupHost::detect().map_err(|e| err(e.to_string()))?;
        host.hold_run_everywhere(&ctx.run_id)
            .map_err(|e| err(e.to_string()))?;
        let lxcpath = ctx.state_dir.join("lxc");
        std::fs::create_dir_all(&lxcpath)
            .map_err(|e| err(format!("{}: {e}", lxcpath.display())))?;
        let mut b = LxcBackend {
            ctx,
            start_exe,
            stop_exe,
            layers,
            host,
            lxcpath,
            names: Mutex::new(Vec::new()),
            probe: String::new(),
        };
        let limit = b.ctx.ready_limit();
        match b.launch_with("probe", limit) {
            Ok(inst) => {
                let ms = inst.startup().startup.as_secs_f64() * 1e3;
                Box::new(inst).teardown().map_err(|e| err(e.to_string()))?;
                b.probe = format!("LXC {version}: a probe container was ready in {ms:.0} ms");
                Ok(b)
            }
            Err(e) => {
                let logged = last_logged(&b.lxcpath, "probe");
                let _ = b.finish();
                let mut what = super::oci::runtime_message(&e);
                if let Some(l) = logged {
                    what = format!("{what} (lxc.log: {l})");
                }
                Err(err(what))
            }
        }
    }

    /// The run's lxcpath (`lxc-* -P`).
    pub fn lxcpath(&self) -> &Path {
        &self.lxcpath
    }

    /// Writes the instance's config and seccomp policy and makes its directories.
    fn write_files(&self, name: &str, dir: &Path) -> Result<(), LaunchCause> {
        for d in ["upper", "work", "rootfs"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        if let Some(policy) = crate::security::seccomp::lxc(self.ctx.scenario.security) {
            let p = dir.join("seccomp");
            std::fs::write(&p, policy).map_err(io(&p))?;
        }
        let p = dir.join("config");
        std::fs::write(&p, config(&self.ctx, name, dir, self.host.mode)).map_err(io(&p))
    }

    fn launch_with(&self, name: &str, limit: Limit) -> Result<LxcInstance, LaunchError> {
        let lerr = |cause: LaunchCause| LaunchError::new(name, cause);
        if !super::oci::valid_container_id(name) {
            return Err(lerr(LaunchCause::BadName(name.to_string())));
        }
        let dir = self.lxcpath.join(name);
        if dir.exists() {
            return Err(lerr(LaunchCause::Exists(dir)));
        }
        if let Ok(mut names) = self.names.lock() {
            names.push(name.to_string());
        }
        // From here on, `leftovers` removes whatever exists unless the launch succeeds.
        let mut leftovers = Leftovers {
            stop_exe: self.stop_exe.clone(),
            lxcpath: self.lxcpath.clone(),
            name: name.to_string(),
            dir: dir.clone(),
            log: self.lxcpath.join(format!("{name}.log")),
            cgroups: vec![
                cgroup_rel(&self.ctx.run_id, name),
                monitor_rel(&self.ctx.run_id, name),
            ],
            agent_pid: None,
            live: true,
        };
        self.write_files(name, &dir).map_err(lerr)?;
        // Everything the pre-exec step uses is built here: it runs in the forked child of a
        // multithreaded process, where allocating could deadlock.
        let rootfs = dir.join("rootfs");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.layers.lowerdir(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let opts = CString::new(opts).map_err(|_| {
            lerr(LaunchCause::Nul {
                what: "overlay options",
            })
        })?;
        let target = CString::new(rootfs.as_os_str().as_bytes()).map_err(|_| {
            lerr(LaunchCause::Nul {
                what: "rootfs path",
            })
        })?;
        let step = move || private_overlay(&target, &opts);

        let log = leftovers.log.clone();
        let mut cmd = Command::new(&self.start_exe);
        cmd.arg("-P")
            .arg(&self.lxcpath)
            .arg("-n")
            .arg(name)
            // Foreground: lxc-start is the monitor and the agent keeps its stdio (our pipe).
            .arg("-F")
            .arg("-o")
            .arg(&log)
            .args(["-l", "ERROR"]);
        // lxc-start moves itself into the monitor cgroup under the run's; recorded all the
        // same, so `clean` may kill it if it is found elsewhere.
        let inner = spawn_agent_with(&self.ctx, name, cmd, limit, true, step)?;
        let cgroup = InstanceCgroup::existing(&self.host, &self.ctx.run_id, name);
        // Right after `ready` the agent (the container's init) is its cgroup's only process.
        let agent_pid = cgroup.dirs().iter().flat_map(|d| cgroup::procs(d)).next();
        let Some(agent_pid) = agent_pid else {
            let why = LaunchCause::NoProcess {
                cgroup: leftovers.cgroups[0].clone(),
                runtime: "LXC".into(),
            };
            let _ = leftovers.remove(Some(inner));
            return Err(lerr(why));
        };
        leftovers.agent_pid = Some(agent_pid);
        Ok(LxcInstance {
            startup: inner.startup().clone(),
            monitor_pid: inner.pid(),
            inner: Some(inner),
            agent_pid,
            cgroup,
            upper: dir.join("upper"),
            leftovers,
        })
    }
}

impl Backend for LxcBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Lxc
    }
    fn label(&self) -> String {
        super::profile_label("lxc".to_string(), &self.ctx.scenario)
    }
    fn launch_files(&self) -> Vec<PathBuf> {
        vec![self.start_exe.clone(), self.stop_exe.clone()]
    }
    fn accel_reason(&self) -> Option<String> {
        Some(format!(
            "lxc-start ({}): {}",
            self.start_exe.display(),
            self.probe
        ))
    }
    fn security(&self) -> Option<crate::security::Profile> {
        Some(self.ctx.scenario.security)
    }
    /// The image and agent layers, shared read-only by every instance.
    fn shared_disk(&self) -> Option<(u64, u64)> {
        Some(self.layers.disk_usage())
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        Ok(Box::new(self.launch_with(name, self.ctx.ready_limit())?))
    }
    /// Removes the lxcpath and checks that no cgroup of an instance (or of its monitor) is
    /// left in any hierarchy. `isobench/<run-id>` itself is removed only in hierarchies our
    /// own containers do not use (LXC made it there); elsewhere the run's end removes it.
    fn finish(&self) -> Result<(), TeardownError> {
        let mut errs: Vec<TeardownError> = Vec::new();
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        let rels: Vec<PathBuf> = names
            .iter()
            .flat_map(|name| {
                [
                    cgroup_rel(&self.ctx.run_id, name),
                    monitor_rel(&self.ctx.run_id, name),
                ]
            })
            .collect();
        errs.extend(
            self.host
                .remove_runtime_cgroups(&self.ctx.run_id, &rels, EXIT_WAIT)
                .into_iter()
                .map(TeardownError::from),
        );
        if let Err(e) = crate::host::remove_dir_tree(&self.lxcpath) {
            errs.push(e.into());
        }
        TeardownError::collect(errs).map_err(|e| e.of("lxc"))
    }
}

/// What one instance has on the host besides its processes: its cgroups (container and
/// monitor) and its directory. Removed on drop if not removed before.
struct Leftovers {
    stop_exe: PathBuf,
    lxcpath: PathBuf,
    name: String,
    dir: PathBuf,
    /// LXC's log of the instance (`lxc-start -o`), beside its directory.
    log: PathBuf,
    cgroups: Vec<PathBuf>,
    /// The container's init once known (lxc-start's child, seen gone in /proc).
    agent_pid: Option<i32>,
    live: bool,
}

impl Leftovers {
    /// `lxc-stop -k` (SIGKILL to init through the monitor), then the wait for init and for
    /// `lxc-start` to end, then whatever is left: processes and cgroups, the directory.
    fn remove(&mut self, monitor: Option<ProcessInstance>) -> Result<(), TeardownError> {
        self.live = false;
        let mut errs: Vec<TeardownError> = Vec::new();
        let mut stop = Command::new(&self.stop_exe);
        // A process group of its own: a second Ctrl-C reaches the harness, never an lxc-stop
        // half way (see interrupt.rs).
        stop.process_group(0)
            .arg("-P")
            .arg(&self.lxcpath)
            .arg("-n")
            .arg(&self.name)
            .arg("-k")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        if let Some(pid) = self.agent_pid
            && !crate::host::wait_gone(pid, EXIT_WAIT)
        {
            errs.push(TeardownError::StillRunning {
                pid,
                runtime: self.stop_exe.clone(),
                waited: EXIT_WAIT,
            });
        }
        // lxc-start exits once its container is gone: reap it (killed if it did not).
        if let Some(p) = monitor
            && let Err(e) = Box::new(p).teardown()
        {
            errs.push(e);
        }
        for root in CgroupHost::all_roots() {
            for rel in &self.cgroups {
                if let Err(e) = cgroup::remove_tree(&root.join(rel), EXIT_WAIT) {
                    errs.push(e.into());
                }
            }
        }
        if let Err(e) = crate::host::remove_dir_tree(&self.dir) {
            errs.push(e.into());
        }
        match std::fs::remove_file(&self.log) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                errs.push(TeardownError::Io {
                    path: self.log.clone(),
                    source,
                });
            }
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

pub struct LxcInstance {
    /// `lxc-start -F`, the container's monitor, whose stdout pipe the agent kept.
    inner: Option<ProcessInstance>,
    monitor_pid: i32,
    startup: Startup,
    agent_pid: i32,
    cgroup: InstanceCgroup,
    upper: PathBuf,
    leftovers: Leftovers,
}

impl LxcInstance {
    /// The host pid of `lxc-start`, the instance's monitor.
    pub fn monitor_pid(&self) -> i32 {
        self.monitor_pid
    }

    /// The instance's directory in the run's lxcpath.
    pub fn dir(&self) -> &Path {
        &self.leftovers.dir
    }
}

impl Instance for LxcInstance {
    fn name(&self) -> &str {
        &self.leftovers.name
    }
    fn startup(&self) -> &Startup {
        &self.startup
    }
    /// The agent's host pid (the container's init), as for the other containers.
    fn pid(&self) -> i32 {
        self.agent_pid
    }
    /// The container's processes and its monitor (`lxc-start`): LXC's cost per instance.
    fn pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .cgroup
            .dirs()
            .iter()
            .take(1)
            .flat_map(|d| cgroup::procs(d))
            .collect();
        if crate::host::is_gone(self.monitor_pid) {
            v.sort_unstable();
            return v;
        }
        v.push(self.monitor_pid);
        v.sort_unstable();
        v.dedup();
        v
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
        Some(self.upper.clone())
    }
    fn teardown(mut self: Box<Self>) -> Result<Duration, TeardownError> {
        let start = Instant::now();
        let inner = self.inner.take();
        self.leftovers
            .remove(inner)
            .map_err(|e| e.of(self.leftovers.name.clone()))?;
        Ok(start.elapsed())
    }
}

impl Drop for LxcInstance {
    fn drop(&mut self) {
        if self.leftovers.live {
            let inner = self.inner.take();
            let _ = self.leftovers.remove(inner);
        }
    }
}
