//! Backends: one trait for every way of running the agent (a plain process, `unshare`, our own
//! containers; VMs and OCI runtimes later), and one factory over them.

pub mod container;
pub mod docker;
pub mod error;
pub mod lxc;
pub mod mock;
pub mod oci;
pub mod process;
pub mod unshare;
pub mod vm;

use crate::agent::Facts;
use crate::agent::reader::{AgentError, WorkloadReport};
use crate::deadline::{Deadline, Limit};
use crate::scenario::{BackendKind, Scenario};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Everything a backend needs to know about the run it serves.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub scenario: Arc<Scenario>,
    /// `<state root>/<run-id>`: overlays, image layers and markers of this run, removed at its end.
    pub state_dir: PathBuf,
    /// The isobench binary on the host: the agent every instance runs.
    pub agent_exe: PathBuf,
    /// Set by SIGINT/SIGTERM: launches stop, waits return early.
    pub cancel: Arc<AtomicBool>,
    /// Content-addressed artefacts kept across runs (VM base disks): see `isobench clean --cache`.
    pub cache_dir: PathBuf,
}

impl RunContext {
    /// Environment variables every instance carries: the run-id marker, a hint that points
    /// `isobench clean` at a killed run (never a proof that a process is the run's).
    pub fn marker_env(&self, instance: &str) -> [(String, String); 2] {
        [
            (crate::host::run_id::RUN_ID_ENV.into(), self.run_id.clone()),
            ("ISOBENCH_INSTANCE".into(), instance.into()),
        ]
    }

    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.scenario.ready_timeout_s)
    }

    /// How long an instance may take to be ready (and a workload to be done).
    pub fn ready_limit(&self) -> Limit {
        Limit::new(self.ready_timeout(), "ready_timeout_s")
    }

    pub fn ready_deadline(&self, start: Instant) -> Deadline {
        self.ready_limit().from(start)
    }
}

/// Start-up of one instance, all durations measured from the same start (see results::metrics).
#[derive(Debug, Clone, Default)]
pub struct Startup {
    pub startup: Duration,
    pub spawn: Option<Duration>,
    /// First byte of the instance's output (a VM's console: its kernel is running).
    pub first_output: Option<Duration>,
    /// Container phases, stamped by the child on its own CLOCK_MONOTONIC: its first
    /// instruction after clone (in its namespaces), in its cgroup, root filesystem mounted,
    /// pivot_root done (`setup`), about to exec the agent.
    pub clone: Option<Duration>,
    pub cgroup: Option<Duration>,
    pub rootfs: Option<Duration>,
    pub setup: Option<Duration>,
    pub exec: Option<Duration>,
    /// The agent's own stamps (backends on the host's kernel, whose clock is the harness's):
    /// its `main` entered, and just before it wrote `ready`.
    pub agent_start: Option<Duration>,
    pub agent_ready: Option<Duration>,
    /// A VM's boot on the host's time line, from the guest's own clock: when the guest
    /// kernel's clock started, and when its /init entered `main`.
    pub vm_kernel: Option<Duration>,
    pub vm_init: Option<Duration>,
    pub facts: Facts,
}

impl Startup {
    /// Fills the agent's phases from its facts for a launch that started at CLOCK_MONOTONIC
    /// `start_ns`, when the agent runs on the harness's kernel (the same boot id): a guest's
    /// clock is its own.
    ///
    /// A VM's agent (its facts carry init's stamp) has the guest's clock: its stamps are
    /// placed on the host's time line by their distance to `ready`, whose arrival the harness
    /// saw (`startup`): the guest clock's start (the kernel's boot), /init's `main` and the
    /// agent's `main`. The serial line's latency is neglected; TCG and KVM guests' clocks
    /// follow the host's.
    pub fn agent_phases(&mut self, start_ns: u64) {
        if self.facts.boot_id.is_empty() || self.facts.boot_id != *host_boot_id() {
            if let (Some(init), Some(ready)) = (self.facts.init_ns, self.facts.ready_ns) {
                let back = |t: u64| {
                    let before_ready = Duration::from_nanos(ready.checked_sub(t)?);
                    self.startup.checked_sub(before_ready)
                };
                self.vm_kernel = back(0);
                self.vm_init = back(init);
                self.agent_start = self.facts.start_ns.and_then(back);
            }
            return;
        }
        self.agent_start = self.facts.start_ns.and_then(|t| since(start_ns, t));
        self.agent_ready = self.facts.ready_ns.and_then(|t| since(start_ns, t));
    }
}

/// The host kernel's boot id, read once.
fn host_boot_id() -> &'static String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// A CLOCK_MONOTONIC stamp `t_ns` as a phase of a launch that started at `start_ns`; None for
/// a stamp not taken (0) or outside the launch (before its start, or in the future), which a
/// clock other than the harness's would give.
pub fn since(start_ns: u64, t_ns: u64) -> Option<Duration> {
    (t_ns >= start_ns && t_ns <= crate::agent::mono_ns())
        .then(|| Duration::from_nanos(t_ns - start_ns))
}

pub use error::{LaunchCause, LaunchError, TeardownError};

/// Preparing a backend failed: the environment cannot run it (exit code 2), or, with `skip`,
/// this host cannot run it as configured (a finding about the host, found by a short probe:
/// the run goes on without it and meta.json says why).
#[derive(Debug, thiserror::Error)]
#[error("backend {backend}: {what}")]
pub struct PrepareError {
    pub backend: &'static str,
    pub what: String,
    pub skip: bool,
}

pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// The name in result rows: the kind, or `oci-runc`/`oci-crun` for OCI runtimes.
    fn label(&self) -> String {
        self.kind().as_str().to_string()
    }
    /// `kvm`/`tcg` for VMs, `none` otherwise.
    fn accel(&self) -> &str {
        "none"
    }
    /// Why the accelerator is what it is (the KVM probe's outcome).
    fn accel_reason(&self) -> Option<String> {
        None
    }
    /// Launches one instance and returns once its agent is ready. On error nothing of the
    /// instance is left behind.
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError>;
    /// What every instance shares on disk, counted once per run: (allocated KiB, apparent
    /// KiB = what a full copy per instance would cost). None where nothing is shared.
    fn shared_disk(&self) -> Option<(u64, u64)> {
        None
    }
    /// Files every launch reads besides the agent (a runtime, QEMU, the guest's kernel and
    /// initramfs): warmed into the page cache after a baseline reading dropped it.
    fn launch_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// The security profile the backend applies to its instances; None for backends that take
    /// none (a plain process, unshare, a VM behind its hypervisor).
    fn security(&self) -> Option<crate::security::Profile> {
        None
    }
    /// The kernel id of the eBPF device program the backend attaches (cgroup v2), so the
    /// isolation read-back can tell it from others.
    fn device_program(&self) -> Option<u32> {
        None
    }
    /// The host processes of an engine every instance shares (docker's dockerd and
    /// containerd): their memory is shared out over the live instances in
    /// `runtime_overhead_kib`. None for backends without an engine.
    fn engine_pids(&self) -> Option<Vec<i32>> {
        None
    }
    /// Removes what the backend shared between instances (image layers, run cgroups).
    fn finish(&self) -> Result<(), TeardownError> {
        Ok(())
    }
}

pub trait Instance: Send {
    fn name(&self) -> &str;
    fn startup(&self) -> &Startup;
    /// The host pid of the instance's first process.
    fn pid(&self) -> i32;
    /// Every host process of the instance (its cgroup's, or its first process and all its
    /// descendants): what its memory is summed over.
    fn pids(&self) -> Vec<i32> {
        if let Some(cg) = self.cgroup() {
            let mut v: Vec<i32> = cg
                .dirs()
                .iter()
                .take(1)
                .flat_map(|d| crate::host::cgroup::procs(d))
                .collect();
            if !v.is_empty() {
                v.sort_unstable();
                return v;
            }
        }
        crate::host::with_descendants(self.pid())
    }
    /// Waits until the workload finished its work (the agent's `done` line).
    fn wait_done(
        &mut self,
        deadline: Deadline,
        cancel: &AtomicBool,
    ) -> Result<WorkloadReport, AgentError>;
    /// Host processes of the backend's engine that serve this instance alone (docker's
    /// containerd-shim), counted in its `runtime_overhead_kib`.
    fn runtime_pids(&self) -> Vec<i32> {
        Vec::new()
    }
    /// The instance's own cgroup, for backends that make one.
    fn cgroup(&self) -> Option<&crate::host::cgroup::InstanceCgroup> {
        None
    }
    /// The instance's private copy-on-write layer on the host (overlay upper dir).
    fn private_dir(&self) -> Option<PathBuf> {
        None
    }
    /// Kills the instance and removes everything it had; returns how long that took.
    /// Dropping an instance without calling this also cleans up (without timing).
    fn teardown(self: Box<Self>) -> Result<Duration, TeardownError>;
}

/// A backend's row label when the run measures several security profiles: `container+none`,
/// `oci-runc+docker` (`+` is allowed in OCI container ids and cgroup names, which instance
/// names become); just `base` otherwise.
pub fn profile_label(base: String, scenario: &Scenario) -> String {
    if scenario.labels_profiles() {
        format!("{base}+{}", scenario.security)
    } else {
        base
    }
}

/// What makes a run's backends, one per peer of the plan: [`Real`] for every run; tests of
/// the runner's pure logic pass a [`mock::MockFactory`] to `runner::run_with`.
pub trait Factory: Sync {
    /// The backend of `kind` (for `oci`, of `runtime`), prepared for the run `ctx`.
    fn create(
        &self,
        kind: BackendKind,
        runtime: Option<&str>,
        ctx: &RunContext,
    ) -> Result<Box<dyn Backend>, PrepareError>;
}

/// The backends a scenario names, as they really run.
pub struct Real;

impl Factory for Real {
    fn create(
        &self,
        kind: BackendKind,
        runtime: Option<&str>,
        ctx: &RunContext,
    ) -> Result<Box<dyn Backend>, PrepareError> {
        match runtime {
            Some(rt) => create_oci(rt, ctx),
            None => create(kind, ctx),
        }
    }
}

/// Builds the backend for `kind`, preparing what it shares across instances.
pub fn create(kind: BackendKind, ctx: &RunContext) -> Result<Box<dyn Backend>, PrepareError> {
    Ok(match kind {
        BackendKind::Process => Box::new(process::ProcessBackend::new(ctx.clone())),
        BackendKind::Unshare => Box::new(unshare::UnshareBackend::new(ctx.clone())?),
        BackendKind::Container => Box::new(container::ContainerBackend::new(ctx.clone())?),
        BackendKind::Vm => Box::new(vm::VmBackend::new(ctx.clone())?),
        BackendKind::Docker => Box::new(docker::DockerBackend::new(ctx.clone())?),
        BackendKind::Gvisor => Box::new(oci::OciBackend::new(ctx.clone(), "runsc")?),
        BackendKind::Lxc => Box::new(lxc::LxcBackend::new(ctx.clone())?),
        BackendKind::Oci => {
            return Err(PrepareError {
                backend: "oci",
                what: "one backend per runtime: use create_oci".into(),
                skip: false,
            });
        }
    })
}

/// The `oci` backend for one runtime (`runc`, `crun`, `runsc`, or a path to one).
pub fn create_oci(runtime: &str, ctx: &RunContext) -> Result<Box<dyn Backend>, PrepareError> {
    Ok(Box::new(oci::OciBackend::new(ctx.clone(), runtime)?))
}
