//! `oci`: the same rootfs and agent through a real OCI runtime (runc, crun, gVisor's runsc, or
//! one given by path), one backend per runtime, labelled `oci-<runtime>` in result rows
//! (`oci-runsc-<platform>` for gVisor, whose kind is `gvisor`).
//!
//! gVisor runs each sandbox under a user-space kernel of its own: `runsc-sandbox` (the Sentry,
//! which serves every system call of the container) and `runsc-gofer` (its file server), both
//! in the instance's cgroup with the platform's stub processes (ptrace). runsc gets its own
//! global flags (see [`runsc_flags`]); it handles the hybrid host's v1 cgroups itself (tried
//! here: it makes the `cgroupsPath` in every v1 hierarchy and removes it at `delete`).
//!
//! Every instance is a bundle `<state_dir>/oci-<runtime>/<name>/` (config.json written here,
//! `upper/`, `work/`, `rootfs/`) started with `<runtime> --root <state_dir>/oci-<runtime>/state
//! run --detach --bundle <bundle> <name>`, so the runtime's state of a killed run lies inside
//! the run's state dir, which `isobench clean` removes. Detached, as container engines run it:
//! no runtime process stays per instance, so the figures are the runtime's and the container's.
//!
//! The root is an overlay exactly like our own containers': the run's shared read-only layers
//! (agent, image) under a private upper/work per instance. It is never mounted in the host's
//! mount namespace: the runtime process is spawned with a pre-exec step that unshares a mount
//! namespace of its own, makes it private and mounts the overlay on `<bundle>/rootfs` there.
//! The container's mount namespace is created from that one, and both vanish with their
//! processes, whatever happens to the harness.
//!
//! Start-up is measured as for every backend: from just before the spawn of the runtime
//! until the agent's `ready` line (the runtime passes its stdio through to the container).
//! Teardown is `<runtime> kill`, the wait for the container's init to vanish from /proc, and
//! `<runtime> delete` (cgroups, state); `delete --force` only if that did not do it (runc
//! 1.1's `delete --force` polls the killed container every 100 ms, which would dominate the
//! figure).

use super::process::{ProcessInstance, spawn_agent_with};
use super::{
    Backend, Instance, LaunchCause, LaunchError, PrepareError, RunContext, Startup, TeardownError,
};
use crate::agent::reader::{AgentError, WorkloadReport};
use crate::deadline::Limit;
use crate::host::cgroup::{self, CgroupHost, InstanceCgroup};
use crate::image::{AGENT_IN_ROOTFS, Layers};
use crate::scenario::{BackendKind, OciConfig};
use crate::security::{Cap, Profile};
use serde_json::{Value, json};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The OCI runtime-spec version of the bundles written here.
pub const OCI_VERSION: &str = "1.0.2";

/// How long teardown waits for the runtime process to exit by itself after `delete --force`
/// (it reaps its container and removes what it made), and for a cgroup to empty.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// The capability names the profile keeps (for `none`, every capability the harness itself
/// may hand on: its own bounding set).
pub fn profile_capabilities(profile: Profile) -> Vec<String> {
    match profile.capabilities() {
        Some(caps) => caps.iter().map(Cap::name).collect(),
        None => crate::security::own_bounding_set()
            .iter()
            .map(Cap::name)
            .collect(),
    }
}

/// runsc's global flags, given to every runsc command of the run (the state lives under
/// `--root` as for the others):
/// - `--platform`: `[oci] runsc_platform`, how the Sentry intercepts the app's system calls;
/// - `--network=none`: a loopback only, as the other peers' empty network namespace (runsc's
///   default, `sandbox`, would build its own network stack over the host's interfaces);
/// - `--overlay2=none`: the root's writes go through the Gofer to the bundle's overlay, whose
///   upper dir is the instance's private disk as for every peer (a memory-backed overlay inside
///   the Sentry would hide them from the disk reading);
///
/// Not `--oci-seccomp`: runsc's default, and what Docker with the runsc runtime does, is to
/// leave the config's seccomp filter out (the Sentry is the filter of the app's system calls).
/// Tried here: with it, runsc 2022-12 answers clone3 with EPERM where the profile says ENOSYS,
/// so glibc cannot start a thread (the pipe round trip of the `syscalls` workload failed).
pub fn runsc_flags(oci: &OciConfig) -> Vec<String> {
    vec![
        format!("--platform={}", oci.runsc_platform),
        "--network=none".into(),
        "--overlay2=none".into(),
    ]
}

/// Capabilities runsc 2022-12 does not know and refuses the whole config for ("converting
/// capabilities: unknown capability"): newer than CAP_AUDIT_READ. Left out of a gVisor
/// bundle (only profile `none`, which hands on the harness's bounding set, names them).
const RUNSC_UNKNOWN_CAPS: &[&str] = &["CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"];

/// `config` for runsc: the capabilities it does not know removed from every set.
fn for_runsc(mut config: Value) -> Value {
    if let Some(sets) = config["process"]["capabilities"].as_object_mut() {
        for set in sets.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.retain(|c| !c.as_str().is_some_and(|c| RUNSC_UNKNOWN_CAPS.contains(&c)));
            }
        }
    }
    config
}

/// The Sentry's argv[0] (`runsc-sandbox`) and the Gofer's (`runsc-gofer`): gVisor's kernel.
pub const SENTRY_COMM: &str = "runsc-sandbox";
pub const GOFER_COMM: &str = "runsc-gofer";

/// Whether `pid`'s argv[0] is `name` (how runsc names its processes).
pub fn argv0_is(pid: i32, name: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|c| c.split(|b| *b == 0).next().map(|a| a == name.as_bytes()))
        .unwrap_or(false)
}

/// A container id both runtimes accept: `[A-Za-z0-9_+.-]+`, not `.` or `..`.
pub fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
}

/// The instance's cgroup relative to every hierarchy root: `isobench/<run-id>/<name>`.
fn cgroup_rel(run_id: &str, name: &str) -> PathBuf {
    Path::new(cgroup::TOP).join(run_id).join(name)
}

/// The bundle's config.json for instance `name`: the agent as the container's process,
/// `runc spec`'s mounts, the scenario's security profile (capabilities, no_new_privs, seccomp,
/// devices, masked and read-only paths: the same as our own containers get), namespaces and
/// limits, and the instance's cgroup.
pub fn bundle_config(ctx: &RunContext, name: &str) -> Value {
    let s = &ctx.scenario;
    let ns = s.namespaces;
    let mut args = vec![AGENT_IN_ROOTFS.to_string(), "agent".to_string()];
    args.extend(s.workload.agent_args());
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/root".to_string(),
    ];
    env.extend(ctx.marker_env(name).iter().map(|(k, v)| format!("{k}={v}")));
    let profile = s.security;
    let caps = profile_capabilities(profile);

    let namespaces: Vec<Value> = [
        (ns.pid, "pid"),
        (ns.net, "network"),
        (ns.ipc, "ipc"),
        (ns.uts, "uts"),
        (ns.mount, "mount"),
        (ns.cgroup, "cgroup"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, t)| json!({ "type": t }))
    .collect();

    let mut resources = json!({ "devices": crate::security::devices::oci(profile.devices()) });
    if let Some(mib) = s.limits.memory_mib {
        resources["memory"] = json!({ "limit": mib << 20 });
    }
    if let Some(cpus) = s.limits.cpus {
        const PERIOD_US: u64 = 100_000;
        // The same rounding as our own containers' cgroups (host/cgroup.rs).
        let quota = ((cpus * PERIOD_US as f64).round() as u64).max(1000);
        resources["cpu"] = json!({ "quota": quota, "period": PERIOD_US });
    }
    if let Some(pids) = s.limits.pids {
        resources["pids"] = json!({ "limit": pids });
    }

    let masked: Vec<String> = profile
        .masked_paths()
        .iter()
        .map(|p| format!("/{p}"))
        .collect();
    let readonly: Vec<String> = profile
        .readonly_paths()
        .iter()
        .map(|p| format!("/{p}"))
        .collect();

    let mut config = json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": env,
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": profile.confines(),
        },
        "root": { "path": "rootfs", "readonly": false },
        // `runc spec`'s default mounts: what people run.
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
        ],
        "linux": {
            // Absolute: a relative path would be taken below the runtime's own cgroup (which
            // is the harness's, not necessarily the root), where neither our readings nor
            // `isobench clean` look.
            "cgroupsPath": format!("/{}", cgroup_rel(&ctx.run_id, name).display()),
            "resources": resources,
            "namespaces": namespaces,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
        },
    });
    if ns.uts {
        config["hostname"] = json!(name);
    }
    if let Some(seccomp) = crate::security::seccomp::oci(profile) {
        config["linux"]["seccomp"] = seccomp;
    }
    config
}

pub struct OciBackend {
    ctx: RunContext,
    /// The runtime's name (`runc`, `runsc`, a path's file name).
    runtime: String,
    exe: PathBuf,
    /// Global flags before every command (runsc's, see [`runsc_flags`]).
    flags: Vec<String>,
    layers: Layers,
    host: CgroupHost,
    /// `<state_dir>/oci-<runtime>`: bundles and the runtime's state root.
    dir: PathBuf,
    /// `--root` of every runtime command.
    state_root: PathBuf,
    /// Every instance name launched, for `finish` to check their cgroups are gone.
    names: Mutex<Vec<String>>,
    /// How the probe went (shown in meta.json's accelerator notes).
    probe: String,
}

impl OciBackend {
    /// Prepares the backend for `runtime` (found on PATH) and proves it works here by
    /// launching and tearing down one probe instance; a runtime that cannot run a container
    /// on this host is a `PrepareError` carrying the runtime's own message.
    pub fn new(ctx: RunContext, runtime: &str) -> Result<OciBackend, PrepareError> {
        // Detached containers' inits must be re-parented to us, to be reaped at teardown.
        crate::host::become_subreaper();
        let err = |what: String| PrepareError {
            backend: "oci",
            what: format!("{runtime}: {what}"),
            skip: false,
        };
        if !crate::host::is_root() {
            return Err(err(
                "needs root (namespaces, mounts and cgroups): run isobench as root".into(),
            ));
        }
        if !ctx.scenario.namespaces.mount {
            return Err(err(
                "an OCI container needs its mount namespace: set [namespaces] mount = true".into(),
            ));
        }
        // A path was validated with the scenario (an executable file); a name is looked up.
        let exe = if runtime.contains('/') {
            PathBuf::from(runtime)
        } else {
            crate::host::exec::which(runtime).ok_or_else(|| {
                err(format!(
                    "{runtime} not found on PATH: install it (scripts/setup.sh)"
                ))
            })?
        };
        let gvisor = crate::scenario::is_runsc(runtime);
        let flags = if gvisor {
            runsc_platform_offered(&exe, &ctx.scenario.oci.runsc_platform)
                .map_err(|e| err(e.to_string()))?;
            runsc_flags(&ctx.scenario.oci)
        } else {
            Vec::new()
        };
        let runtime = crate::scenario::runtime_name(runtime);
        let layers = Layers::prepare(
            &ctx.scenario.image,
            &ctx.state_dir.join("layers"),
            &ctx.agent_exe,
        )
        .map_err(|e| err(e.to_string()))?;
        let host = CgroupHost::detect().map_err(|e| err(e.to_string()))?;
        host.hold_run_everywhere(&ctx.run_id)
            .map_err(|e| err(e.to_string()))?;
        let dir = ctx.state_dir.join(format!("oci-{runtime}"));
        let state_root = dir.join("state");
        std::fs::create_dir_all(&state_root)
            .map_err(|e| err(format!("{}: {e}", state_root.display())))?;
        let mut b = OciBackend {
            ctx,
            runtime: runtime.to_string(),
            exe,
            flags,
            layers,
            host,
            dir,
            state_root,
            names: Mutex::new(Vec::new()),
            probe: String::new(),
        };
        let limit = b.ctx.ready_limit();
        match b.launch_with("probe", limit) {
            Ok(inst) => {
                let ms = inst.startup().startup.as_secs_f64() * 1e3;
                Box::new(inst).teardown().map_err(|e| err(e.to_string()))?;
                b.probe = format!("a probe container was ready in {ms:.0} ms");
                Ok(b)
            }
            Err(e) => {
                let _ = b.finish();
                Err(err(runtime_message(&e)))
            }
        }
    }

    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// Whether this is gVisor: a user-space kernel (Sentry + Gofer) per sandbox.
    pub fn is_gvisor(&self) -> bool {
        self.runtime == "runsc"
    }

    /// The runtime's binary.
    pub fn runtime_exe(&self) -> &Path {
        &self.exe
    }

    /// `--root` of the runtime: its state of this run's containers.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The bundle directory of instance `name`.
    pub fn bundle_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn launch_with(&self, name: &str, limit: Limit) -> Result<OciInstance, LaunchError> {
        let lerr = |cause: LaunchCause| LaunchError::new(name, cause);
        if !valid_container_id(name) {
            return Err(lerr(LaunchCause::BadName(name.to_string())));
        }
        let bundle = self.bundle_dir(name);
        if bundle.exists() {
            return Err(lerr(LaunchCause::Exists(bundle)));
        }
        if let Ok(mut names) = self.names.lock() {
            names.push(name.to_string());
        }
        // From here on, `leftovers` removes whatever exists unless the launch succeeds.
        let mut leftovers = Leftovers {
            exe: self.exe.clone(),
            flags: self.flags.clone(),
            state_root: self.state_root.clone(),
            id: name.to_string(),
            bundle: bundle.clone(),
            cgroup_rel: cgroup_rel(&self.ctx.run_id, name),
            pid_ns: self.ctx.scenario.namespaces.pid,
            agent_pid: None,
            live: true,
        };
        let (upper, work, rootfs) = (
            bundle.join("upper"),
            bundle.join("work"),
            bundle.join("rootfs"),
        );
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| lerr(LaunchCause::Io { path, source })
        };
        for d in [&upper, &work, &rootfs] {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let config = bundle.join("config.json");
        let mut config_json = bundle_config(&self.ctx, name);
        if self.is_gvisor() {
            config_json = for_runsc(config_json);
        }
        let text = serde_json::to_vec_pretty(&config_json).map_err(|e| lerr(e.into()))?;
        std::fs::write(&config, text).map_err(io(&config))?;

        // Everything the pre-exec step uses is built here: it runs in the forked child of a
        // multithreaded process, where allocating could deadlock.
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.layers.lowerdir(),
            upper.display(),
            work.display()
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

        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.flags)
            .arg("--root")
            .arg(&self.state_root)
            .arg("run")
            // Detached, as container engines run it: the runtime starts the container and
            // exits, so no runtime process per instance stays alive to be counted against
            // the runtime (an engine's own shim per container is not part of runc or crun).
            // The container keeps the runtime's stdio: our pipe still carries the agent's lines.
            .arg("--detach")
            .arg("--bundle")
            .arg(&bundle)
            .arg(name);
        // The runtime process stays in the harness's cgroup: recorded, so `clean` may kill it.
        let inner =
            spawn_agent_with(&self.ctx, name, cmd, limit, true, step).map_err(|e| {
                match e.cause {
                    LaunchCause::Spawn {
                        program, source, ..
                    } => lerr(LaunchCause::Spawn {
                        program,
                        source,
                        pre_exec: Some(format!(
                            "private mount namespace, overlay on {}",
                            rootfs.display()
                        )),
                    }),
                    cause => lerr(cause),
                }
            })?;
        let cgroup = InstanceCgroup::existing(&self.host, &self.ctx.run_id, name);
        // The agent's host pid: right after `ready` it is the only process of the cgroup the
        // runtime made (the runtime process itself stays in the harness's cgroup). Under
        // gVisor the agent is no host process: the instance's first process is its Sentry.
        let procs: Vec<i32> = cgroup
            .dirs()
            .iter()
            .flat_map(|d| cgroup::procs(d))
            .collect();
        let agent_pid = if self.is_gvisor() {
            procs.iter().copied().find(|&p| argv0_is(p, SENTRY_COMM))
        } else {
            procs.first().copied()
        };
        let Some(agent_pid) = agent_pid else {
            let why = LaunchCause::NoProcess {
                cgroup: leftovers.cgroup_rel.clone(),
                runtime: self.runtime.clone(),
            };
            let _ = leftovers.remove(Some(inner));
            return Err(lerr(why));
        };
        leftovers.agent_pid = Some(agent_pid);
        Ok(OciInstance {
            startup: inner.startup().clone(),
            inner: Some(inner),
            agent_pid,
            cgroup,
            upper,
            leftovers,
        })
    }
}

/// The pre-exec step of the runtime process: a private mount namespace of its own with the
/// overlay on the bundle's rootfs. Async-signal-safe: three syscalls on prepared strings.
pub(super) fn private_overlay(target: &CString, opts: &CString) -> std::io::Result<()> {
    private_mount(c"overlay", target, c"overlay", 0, opts)
}

/// A pre-exec step (also dockerd's): a mount namespace of its own, made private so nothing
/// mounted from here on propagates back to the host, then one mount in it. Async-signal-safe:
/// three syscalls on NUL-terminated strings prepared before the fork.
pub(super) fn private_mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: &CStr,
) -> std::io::Result<()> {
    // SAFETY: plain syscalls on NUL-terminated strings that outlive the calls.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The runtime's own words from a failed launch: the lines it printed (which the agent
/// reader keeps), followed by what the harness saw. Read from the error's fields, never
/// from its text.
pub(super) fn runtime_message(e: &LaunchError) -> String {
    let said = e.instance_output();
    if said.is_empty() {
        return format!("probe container: {}", e.cause);
    }
    let seen = match &e.cause {
        LaunchCause::Agent(AgentError::Timeout {
            expected, deadline, ..
        }) => format!("agent not `{expected}` {}", deadline.after()),
        LaunchCause::Agent(AgentError::Eof { expected, .. }) => {
            format!("agent output ended before `{expected}`")
        }
        other => other.to_string(),
    };
    format!("{} (probe container: {seen})", said.join(" | "))
}

/// Checks that the installed runsc offers `platform` (`runsc help platforms` lists them, one
/// a line), so a platform this version lacks is said as such rather than as a failed probe.
fn runsc_platform_offered(exe: &Path, platform: &str) -> Result<(), PlatformError> {
    let out = Command::new(exe)
        .args(["help", "platforms"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PlatformError::Run {
            exe: exe.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let offered: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if offered.iter().any(|p| p == platform) {
        Ok(())
    } else {
        Err(PlatformError::NotOffered {
            platform: platform.to_string(),
            exe: exe.to_path_buf(),
            offered,
        })
    }
}

/// The scenario's gVisor platform cannot be used with the installed runsc.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{}: {source}", .exe.display())]
    Run {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "[oci] runsc_platform = {platform:?} is not offered by {} (it offers: {})",
        .exe.display(),
        .offered.join(", ")
    )]
    NotOffered {
        platform: String,
        exe: PathBuf,
        offered: Vec<String>,
    },
}

impl Backend for OciBackend {
    fn kind(&self) -> BackendKind {
        if self.is_gvisor() {
            BackendKind::Gvisor
        } else {
            BackendKind::Oci
        }
    }
    fn launch_files(&self) -> Vec<PathBuf> {
        vec![self.exe.clone()]
    }
    fn label(&self) -> String {
        super::profile_label(
            crate::scenario::oci_label(&self.runtime, &self.ctx.scenario.oci),
            &self.ctx.scenario,
        )
    }
    fn accel_reason(&self) -> Option<String> {
        Some(format!(
            "{} ({}): {}",
            self.runtime,
            self.exe.display(),
            self.probe
        ))
    }
    /// The image and agent layers, shared read-only by every instance (as our containers').
    fn security(&self) -> Option<crate::security::Profile> {
        Some(self.ctx.scenario.security)
    }

    fn shared_disk(&self) -> Option<(u64, u64)> {
        Some(self.layers.disk_usage())
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        Ok(Box::new(self.launch_with(name, self.ctx.ready_limit())?))
    }
    /// Removes the bundles and the runtime's state root, and checks that no cgroup of this
    /// runtime's instances is left in any hierarchy (the runtime removes them when its
    /// container ends; a leftover is removed here). `isobench/<run-id>` itself is removed only in hierarchies
    /// isobench's own containers do not use (the runtime made it there); elsewhere it may be
    /// shared with other backends of the run, and the run's end removes it.
    fn finish(&self) -> Result<(), TeardownError> {
        let mut errs: Vec<TeardownError> = Vec::new();
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
        TeardownError::collect(errs).map_err(|e| e.of(format!("oci-{}", self.runtime)))
    }
}

/// What one instance has on the host besides its processes: the runtime's container (state
/// and cgroups), the bundle with its upper dir. Removed on drop if not removed before.
struct Leftovers {
    exe: PathBuf,
    flags: Vec<String>,
    state_root: PathBuf,
    id: String,
    bundle: PathBuf,
    cgroup_rel: PathBuf,
    /// Whether the container has a PID namespace of its own (killing its init kills all).
    pid_ns: bool,
    /// The container's first process once known: with `run --detach` it is not our child,
    /// so its end is seen in /proc.
    agent_pid: Option<i32>,
    live: bool,
}

impl Leftovers {
    fn runtime_cmd(&self) -> Command {
        let mut c = Command::new(&self.exe);
        // A process group of its own: a second Ctrl-C (or `timeout`'s signal to the whole
        // group) reaches the harness, which goes on tearing down, never a `kill` or `delete`
        // half way (see interrupt.rs).
        c.process_group(0);
        c.args(&self.flags)
            .arg("--root")
            .arg(&self.state_root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Kills the container through the runtime (`kill`, every process of it when it has no
    /// PID namespace of its own), waits for the runtime process, which reaps the container
    /// and deletes it (its cgroups and state), then `delete --force` if the runtime left its
    /// state (no runtime process: a failed launch), and removes what may still be there:
    /// cgroups in any hierarchy, the runtime's state dir of the container, the bundle.
    fn remove(&mut self, runtime_proc: Option<ProcessInstance>) -> Result<(), TeardownError> {
        self.live = false;
        let mut errs = Vec::new();
        // Every process of the container's cgroup now: under gVisor the Sentry and the Gofer,
        // which are re-parented to the harness (a subreaper) and must be reaped like an init.
        let mut procs: Vec<i32> = CgroupHost::all_roots()
            .iter()
            .flat_map(|r| cgroup::procs(&r.join(&self.cgroup_rel)))
            .collect();
        procs.sort_unstable();
        procs.dedup();
        let mut kill = self.runtime_cmd();
        kill.arg("kill");
        if !self.pid_ns {
            kill.arg("--all");
        }
        let _ = kill.args([self.id.as_str(), "KILL"]).output();
        // The detached runtime process exited after the start: reap it.
        if let Some(p) = runtime_proc
            && let Err(e) = Box::new(p).teardown()
        {
            errs.push(e);
        }
        // The container's init was re-parented to the harness (a subreaper, see runner.rs)
        // when the detached runtime exited: reap it; if it went elsewhere, its end shows in /proc.
        if let Some(pid) = self.agent_pid
            && !crate::host::wait_gone(pid, EXIT_WAIT)
        {
            errs.push(TeardownError::StillRunning {
                pid,
                runtime: self.exe.clone(),
                waited: EXIT_WAIT,
            });
        }
        for pid in procs {
            if Some(pid) != self.agent_pid && !crate::host::wait_gone(pid, EXIT_WAIT) {
                errs.push(TeardownError::StillRunning {
                    pid,
                    runtime: self.exe.clone(),
                    waited: EXIT_WAIT,
                });
            }
        }
        // runc and crun keep a directory per container; runsc a state file and a lock file
        // per sandbox (`<id>_sandbox:<id>.state`, `.lock`).
        let gvisor_state = self
            .state_root
            .join(format!("{}_sandbox:{}.state", self.id, self.id));
        let state = if gvisor_state.exists() {
            gvisor_state.clone()
        } else {
            self.state_root.join(&self.id)
        };
        // A stopped container is deleted at once; `--force` (which polls every 100 ms in
        // runc 1.1) only when the plain delete did not do it.
        if state.exists() {
            let _ = self.runtime_cmd().args(["delete", &self.id]).output();
        }
        if state.exists() {
            match self
                .runtime_cmd()
                .args(["delete", "--force", &self.id])
                .output()
            {
                Ok(o) if !o.status.success() && state.exists() => {
                    errs.push(TeardownError::Runtime {
                        runtime: self.exe.clone(),
                        action: "delete --force",
                        id: self.id.clone(),
                        status: o.status.code(),
                        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                    });
                }
                Err(source) => errs.push(TeardownError::RunTool {
                    program: self.exe.clone(),
                    source,
                }),
                _ => {}
            }
        }
        for root in CgroupHost::all_roots() {
            if let Err(e) = cgroup::remove_tree(&root.join(&self.cgroup_rel), EXIT_WAIT) {
                errs.push(e.into());
            }
        }
        for d in [&state, &self.bundle] {
            if let Err(e) = crate::host::remove_dir_tree(d) {
                errs.push(e.into());
            }
        }
        // runsc's lock file stays after its `delete`; the state file if the delete failed.
        for path in [gvisor_state.with_extension("lock"), gvisor_state] {
            match std::fs::remove_file(&path) {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                    errs.push(TeardownError::Io { path, source });
                }
                _ => {}
            }
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

pub struct OciInstance {
    /// The runtime process (`<runtime> run --detach`, exited once the container started), whose
    /// stdout pipe the container kept: the agent's lines arrive on it.
    inner: Option<ProcessInstance>,
    startup: Startup,
    agent_pid: i32,
    cgroup: InstanceCgroup,
    upper: PathBuf,
    leftovers: Leftovers,
}

impl OciInstance {
    /// The host pid the runtime process had (it exits once the container started).
    pub fn runtime_pid(&self) -> i32 {
        self.inner.as_ref().map(|p| p.pid()).unwrap_or(0)
    }

    pub fn bundle_dir(&self) -> &Path {
        &self.leftovers.bundle
    }
}

impl Instance for OciInstance {
    fn name(&self) -> &str {
        &self.leftovers.id
    }
    fn startup(&self) -> &Startup {
        &self.startup
    }
    /// The agent's host pid (the container's first process), as for our own containers.
    fn pid(&self) -> i32 {
        self.agent_pid
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
            .map_err(|e| e.of(&self.leftovers.id))?;
        Ok(start.elapsed())
    }
}

impl Drop for OciInstance {
    fn drop(&mut self) {
        if self.leftovers.live {
            let inner = self.inner.take();
            let _ = self.leftovers.remove(inner);
        }
    }
}
