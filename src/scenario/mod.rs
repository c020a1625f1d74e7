//! Scenario files: what a run measures. This file holds the public types, valid by
//! construction; reading a file takes two steps: serde fills the `Raw*` structs of raw.rs,
//! which mirror the file and reject unknown keys and wrong types (with line numbers from the
//! toml crate), then validate.rs checks ranges and cross-field rules, one small function per
//! section, and builds these types. error.rs makes every failure one line naming the file,
//! the key and what is allowed.

mod error;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use error::ScenarioError;
pub use validate::{OCI_RUNTIMES, RUNSC_PLATFORMS};

use error::one_line;
use std::fmt;
use std::path::{Path, PathBuf};

/// The scenario used when the user gives none; `include_str!` keeps the binary self-contained.
pub const DEFAULT_SCENARIO_TEXT: &str = include_str!("../../scenarios/quick.toml");
/// Recorded as the origin of the embedded default, so meta.json says where the text came from.
pub const DEFAULT_SCENARIO_ORIGIN: &str = "scenarios/quick.toml (embedded)";

/// Defines `BackendKind` from one list so the enum, its names, `ALL` and serde cannot drift
/// apart: adding a backend is one `Variant => "name",` line here.
macro_rules! backend_kinds {
    ($($(#[$attr:meta])* $variant:ident => $name:literal,)+) => {
        /// A way of starting an instance; the things a scenario compares.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum BackendKind {
            $($(#[$attr])* #[serde(rename = $name)] $variant,)+
        }

        impl BackendKind {
            /// Every backend, in the order they are listed in help and error messages.
            pub const ALL: &'static [BackendKind] = &[$(BackendKind::$variant,)+];

            /// The name used in scenario files, on the command line and in result files.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(BackendKind::$variant => $name,)+
                }
            }
        }
    };
}

backend_kinds! {
    /// A plain child process of isobench: the floor every other backend is compared with.
    Process => "process",
    /// util-linux `unshare` with fresh namespaces: namespaces without any container runtime.
    Unshare => "unshare",
    /// A container built by isobench itself (namespaces, cgroup, pivot_root into the image).
    Container => "container",
    /// A QEMU guest booting its own kernel from a copy-on-write overlay of the image's disk.
    Vm => "vm",
    /// The same rootfs and agent through the host's OCI runtimes (runc, crun, runsc, or one
    /// given by path: `[oci] runtimes`).
    Oci => "oci",
    /// The real Docker Engine (`docker.io`): the daemon that answers, or a private dockerd.
    Docker => "docker",
    /// gVisor: the OCI backend with `runsc`, whose every sandbox runs a user-space kernel (the
    /// Sentry) of its own; the platform is `[oci] runsc_platform`.
    Gvisor => "gvisor",
    /// LXC 5 (`lxc-start`) from a generated config, lxcpath under the run's state dir.
    Lxc => "lxc",
}

impl BackendKind {
    /// The backend called `name`, if any (exact, case-sensitive, as in scenario files).
    pub fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
    }

    /// The kind a result row's backend label names: `container+docker` is a container,
    /// `oci-runc` and `oci-crun+none` OCI runtimes, `oci-runsc-ptrace` gVisor (see
    /// [`oci_label`]). Rows keep the label as text (it says more than the kind); analyses
    /// that need the kind ask here, never compare labels themselves.
    pub fn of_label(label: &str) -> Option<BackendKind> {
        let base = label.split_once('+').map_or(label, |(b, _)| b);
        BackendKind::from_name(base).or_else(|| {
            let rt = base.strip_prefix("oci-").filter(|rt| !rt.is_empty())?;
            let gvisor = rt == "runsc" || rt.starts_with("runsc-");
            Some(if gvisor {
                BackendKind::Gvisor
            } else {
                BackendKind::Oci
            })
        })
    }

    /// "process, unshare, container": for error messages and help text.
    pub fn allowed_names() -> String {
        BackendKind::ALL
            .iter()
            .map(BackendKind::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The root filesystem every instance starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSpec {
    /// The busybox rootfs isobench builds itself.
    Busybox,
    /// An unpacked rootfs directory (absolute, or relative to the working directory).
    Directory(PathBuf),
    /// A rootfs tarball: .tar, .tar.gz or .tgz.
    Tarball(PathBuf),
}

/// What each instance does once it has reported ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// Nothing: measures the bare cost of an instance.
    Idle,
    /// The isolation probes (mknod of a block device, /proc/kcore, /proc/sysrq-trigger,
    /// mount(2), a user namespace), run from inside the instance; their outcome lands in the
    /// row's `probe` column.
    Probe,
    /// Allocates and touches `mib` MiB of memory, so it is really resident.
    TouchMemory { mib: u64 },
    /// Writes `mib` MiB to a file inside the instance's filesystem.
    WriteFile { mib: u64 },
    /// Forks `count` children that idle: a pids limit below it stops the workload with an
    /// error naming the limit.
    Fork { count: u64 },
    /// System-call micro-benchmarks (agent/syscalls.rs), each run for `budget_ms`; their cost
    /// per operation lands in syscalls.csv.
    Syscalls { budget_ms: u64 },
}

impl Workload {
    /// Arguments for the agent: `["idle"]`, `["touch-memory", "64"]`, `["write-file", "16"]`.
    pub fn agent_args(&self) -> Vec<String> {
        match self {
            Workload::Idle => vec!["idle".to_owned()],
            Workload::Probe => vec!["probe".to_owned()],
            Workload::TouchMemory { mib } => vec!["touch-memory".to_owned(), mib.to_string()],
            Workload::WriteFile { mib } => vec!["write-file".to_owned(), mib.to_string()],
            Workload::Fork { count } => vec!["fork".to_owned(), count.to_string()],
            Workload::Syscalls { budget_ms } => {
                vec!["syscalls".to_owned(), budget_ms.to_string()]
            }
        }
    }

    /// A short label for reports and directory names: "idle", "touch-memory=64".
    pub fn label(&self) -> String {
        match self {
            Workload::Idle => "idle".to_owned(),
            Workload::Probe => "probe".to_owned(),
            Workload::TouchMemory { mib } => format!("touch-memory={mib}"),
            Workload::WriteFile { mib } => format!("write-file={mib}"),
            Workload::Fork { count } => format!("fork={count}"),
            Workload::Syscalls { budget_ms } => format!("syscalls={budget_ms}"),
        }
    }
}

/// Resource limits applied to every instance (a cgroup's, defined with the cgroup code).
pub use crate::host::cgroup::Limits;

/// Which namespaces the isolating backends create. All on by default, so that turning one off
/// is an explicit choice in the scenario file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Namespaces {
    pub pid: bool,
    pub mount: bool,
    pub uts: bool,
    pub ipc: bool,
    pub net: bool,
    pub cgroup: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            pid: true,
            mount: true,
            uts: true,
            ipc: true,
            net: true,
            cgroup: true,
        }
    }
}

/// How VMs are accelerated: `auto` probes KVM by booting a guest and falls back to TCG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// The QEMU machine type of the `vm` backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    Q35,
    Microvm,
}

impl Machine {
    pub fn as_str(&self) -> &'static str {
        match self {
            Machine::Q35 => "q35",
            Machine::Microvm => "microvm",
        }
    }
}

/// The `[vm]` table: the guest every `vm` instance boots.
#[derive(Debug, Clone, PartialEq)]
pub struct VmConfig {
    /// Guest kernel; default: the newest /boot/vmlinuz-*-cloud-amd64.
    pub kernel: Option<PathBuf>,
    /// An initrd of the user's (booted with root=/dev/vda); default: isobench's own initramfs.
    pub initrd: Option<PathBuf>,
    pub accel: Accel,
    pub machine: Machine,
    pub memory_mib: u64,
    pub vcpus: u32,
    /// How long the KVM probe guest may take to become ready before KVM counts as broken.
    pub probe_timeout_s: f64,
    /// N values for the vm backend instead of the scenario's `counts`.
    pub counts: Option<Vec<u32>>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            kernel: None,
            initrd: None,
            accel: Accel::Auto,
            machine: Machine::Q35,
            memory_mib: 128,
            vcpus: 1,
            probe_timeout_s: 10.0,
            counts: None,
        }
    }
}

/// The `[oci]` table: which OCI runtimes the `oci` backend runs, each as a peer in the run.
#[derive(Debug, Clone, PartialEq)]
pub struct OciConfig {
    /// Names looked up on PATH (runc, crun, runsc) or paths to an executable (validated).
    pub runtimes: Vec<String>,
    /// gVisor's platform (`runsc --platform`): how the Sentry intercepts system calls.
    pub runsc_platform: String,
}

impl Default for OciConfig {
    fn default() -> Self {
        OciConfig {
            runtimes: vec!["runc".into()],
            runsc_platform: "ptrace".into(),
        }
    }
}

/// The runtime's name of an `[oci] runtimes` entry: itself, or a path's file name.
pub fn runtime_name(runtime: &str) -> &str {
    Path::new(runtime)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(runtime)
}

/// Whether an `[oci] runtimes` entry is gVisor's runsc (by its name, as given or on disk).
pub fn is_runsc(runtime: &str) -> bool {
    runtime_name(runtime) == "runsc"
}

/// The row label of an OCI runtime's peer: `oci-runc`, `oci-crun`, and for gVisor the platform
/// too, `oci-runsc-ptrace`, so every row says how its system calls were intercepted.
pub fn oci_label(runtime: &str, oci: &OciConfig) -> String {
    let name = runtime_name(runtime);
    if is_runsc(runtime) {
        format!("oci-{name}-{}", oci.runsc_platform)
    } else {
        format!("oci-{name}")
    }
}

/// The `[measure]` table: which costs are measured after every batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureConfig {
    /// Memory views (PSS/USS/RSS, cgroup, host MemAvailable delta, guest view).
    pub memory: bool,
    /// Drop the host's page cache before each host-view reading (the gVisor/Kata method).
    pub drop_caches: bool,
    /// How long instances idle while their CPU time is measured, seconds (0 = not measured):
    /// the whole window, or at most that when `idle_adaptive`.
    pub idle_window_s: f64,
    /// End the idle window once the batch's idle CPU rate holds still
    /// (`measure::cpu::idle_rate_holds`) rather than always after `idle_window_s`.
    pub idle_adaptive: bool,
    /// Merge identical pages (KSM) across the VMs of a batch and record what it shares.
    pub ksm: bool,
    pub ksm_timeout_s: f64,
    /// The bound of each host-memory reading's wait for MemAvailable to hold still, seconds
    /// (the reading is taken when it holds still, or at the bound).
    pub settle_timeout_s: f64,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            memory: true,
            drop_caches: true,
            idle_window_s: 2.0,
            idle_adaptive: true,
            ksm: false,
            ksm_timeout_s: 60.0,
            settle_timeout_s: 5.0,
        }
    }
}

/// The `[until]` table: instead of fixed N, keep adding `step` instances (all alive at once)
/// until MemAvailable falls below the floor, a launch fails, or `max` is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct UntilConfig {
    pub step: u32,
    pub max: u32,
    pub mem_available_floor_mib: u64,
}

/// A validated scenario: what to launch, how many, how often, with which limits.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub image: ImageSpec,
    pub workload: Workload,
    pub backends: Vec<BackendKind>,
    pub counts: Vec<u32>,
    pub parallelism: u32,
    pub repetitions: u32,
    pub warmup: u32,
    pub ready_timeout_s: f64,
    pub limits: Limits,
    pub namespaces: Namespaces,
    /// The security profiles to measure, in the order given (`security = "docker"` or a
    /// list): backends that take a profile (container, oci) run once per profile.
    pub profiles: Vec<crate::security::Profile>,
    /// The profile in effect for the backend being run: the first of `profiles` until the
    /// runner hands each backend its own (see [`Scenario::with_profile`]).
    pub security: crate::security::Profile,
    pub vm: VmConfig,
    pub oci: OciConfig,
    pub measure: MeasureConfig,
    /// An open-ended density sweep instead of `counts` (None: use `counts`).
    pub until: Option<UntilConfig>,
    /// the file's text, verbatim, recorded in meta.json
    pub text: String,
    /// where it came from: a path as the user gave it, or DEFAULT_SCENARIO_ORIGIN
    pub origin: String,
}

impl Scenario {
    /// Reads and validates a scenario file; relative image paths resolve against the file's
    /// directory, so a scenario and its rootfs can be moved together.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            origin: one_line(&origin),
            message: one_line(&e.to_string()),
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        Scenario::parse(&text, &origin, base_dir)
    }

    /// Validates scenario `text`; `origin` names it in errors and in meta.json, `base_dir` is
    /// what relative image paths are relative to.
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Scenario, ScenarioError> {
        let raw: raw::RawScenario =
            toml::from_str(text).map_err(|e| ScenarioError::from_toml(&e, text, origin))?;
        validate::validate(raw, text, origin, base_dir)
    }

    /// This scenario with `profile` in effect, for one backend of a run that measures several.
    pub fn with_profile(&self, profile: crate::security::Profile) -> Scenario {
        Scenario {
            security: profile,
            ..self.clone()
        }
    }

    /// Whether row labels must name the profile: several are measured side by side.
    pub fn labels_profiles(&self) -> bool {
        self.profiles.len() > 1
    }

    /// The embedded quick scenario.
    ///
    /// # Panics
    /// Only if the embedded file is broken, which a unit test rules out before release.
    pub fn default_embedded() -> Scenario {
        match Scenario::parse(
            DEFAULT_SCENARIO_TEXT,
            DEFAULT_SCENARIO_ORIGIN,
            Path::new("."),
        ) {
            Ok(scenario) => scenario,
            Err(e) => panic!("the embedded default scenario is invalid: {e}"),
        }
    }

    /// Total instance launches of one peer per backend: each N once per repetition, plus the
    /// warmup launches. runner::plan counts every peer (OCI runtimes, security profiles) and
    /// the `[until]` sweep.
    pub fn total_launches(&self) -> u64 {
        self.backends
            .iter()
            .map(|&b| {
                let per_repetition = self
                    .counts_for(b)
                    .iter()
                    .fold(0u64, |sum, &n| sum.saturating_add(u64::from(n)));
                per_repetition
                    .saturating_mul(u64::from(self.repetitions))
                    .saturating_add(u64::from(self.warmup))
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The N values measured for `backend`: `[vm] counts` for VMs when given (memory bounds
    /// VM density long before it bounds containers), `counts` otherwise.
    pub fn counts_for(&self, backend: BackendKind) -> &[u32] {
        match (backend, &self.vm.counts) {
            (BackendKind::Vm, Some(c)) => c,
            _ => &self.counts,
        }
    }
}
