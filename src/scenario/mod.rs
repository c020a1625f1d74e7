//! Scenario files: the TOML model, strict validation with one-line errors, the embedded default.
//!
//! Parsing happens in two steps: serde fills `Raw*` structs that mirror the file and reject
//! unknown keys and wrong types (with line numbers from the toml crate), then `validate` checks
//! ranges and cross-field rules and builds the public types, which are valid by construction.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// The same rootfs and agent through the host's OCI runtimes (runc, crun: `[oci] runtimes`).
    Oci => "oci",
}

impl BackendKind {
    /// The backend called `name`, if any (exact, case-sensitive, as in scenario files).
    pub fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
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

/// Largest workload size, in MiB: large enough for any realistic test, small enough that a typo
/// cannot ask every instance for terabytes.
const WORKLOAD_MIB_MAX: i64 = 65536;
use crate::agent::workload::{FORK_MAX, SYSCALLS_BUDGET_MS_DEFAULT, SYSCALLS_BUDGET_MS_MAX};

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
    pub runtimes: Vec<String>,
}

impl Default for OciConfig {
    fn default() -> Self {
        OciConfig {
            runtimes: vec!["runc".into()],
        }
    }
}

/// The `[measure]` table: which costs are measured after every batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureConfig {
    /// Memory views (PSS/USS/RSS, cgroup, host MemAvailable delta, guest view).
    pub memory: bool,
    /// Drop the host's page cache before each host-view reading (the gVisor/Kata method).
    pub drop_caches: bool,
    /// How long instances idle while their CPU time is measured, seconds (0 = not measured).
    pub idle_window_s: f64,
    /// Merge identical pages (KSM) across the VMs of a batch and record what it shares.
    pub ksm: bool,
    pub ksm_timeout_s: f64,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            memory: true,
            drop_caches: true,
            idle_window_s: 2.0,
            ksm: false,
            ksm_timeout_s: 60.0,
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

/// Why a scenario could not be loaded. Every message is one line and starts with the origin, so
/// it can be printed as is after "error: ".
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("scenario file {origin}: {message}")]
    Io { origin: String, message: String },
    /// The toml crate rejected the file: bad syntax, an unknown key or a wrong type.
    #[error("{origin}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Toml {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    /// A value has the right type but breaks a rule (range, duplicates, missing path...).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    fn invalid(origin: &str, key: &str, message: impl Into<String>) -> Self {
        ScenarioError::Invalid {
            origin: one_line(origin),
            key: one_line(key),
            message: one_line(&message.into()),
        }
    }

    fn from_toml(error: &toml::de::Error, text: &str, origin: &str) -> Self {
        let message = one_line(error.message());
        // The toml crate reports a missing key at offset 0, which would point at an unrelated
        // line 1; the key name in the message is the useful part.
        if message.starts_with("missing field") {
            return ScenarioError::Toml {
                origin: one_line(origin),
                line: None,
                message: format!("{message} (required keys: name, backends, counts)"),
            };
        }
        let line = error.span().map(|span| line_of(text, span.start));
        // Type errors from the toml crate ("invalid type: string \"x\", expected i64") do not
        // say which key they are about; the key path is only in its context-free rendering.
        let key = toml_error_key(error).or_else(|| {
            // A duplicate key carries no key path, but its span covers the repeated key itself.
            let span = error.span()?;
            let key = text.get(span)?.trim();
            (message == "duplicate key" && !key.is_empty()).then(|| one_line(key))
        });
        let message = match key {
            Some(key) => one_line(&format!("{key}: {message}")),
            None => message,
        };
        ScenarioError::Toml {
            origin: one_line(origin),
            line,
            message,
        }
    }
}

/// Collapses any line breaks (from toml messages, odd file names or quoted keys) into single
/// spaces, because every error must fit on one line.
fn one_line(s: &str) -> String {
    if !s.contains(['\n', '\r']) {
        return s.to_owned();
    }
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1-based line number of byte offset `pos` in `text`.
fn line_of(text: &str, pos: usize) -> usize {
    let end = pos.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key path a toml error is about ("limits.memory_mib"), if the crate recorded one.
/// The path is private in `toml::de::Error`; without input attached its `Display` appends it as
/// a final "in `path`" line, which is the only public way to read it.
fn toml_error_key(error: &toml::de::Error) -> Option<String> {
    let mut bare = error.clone();
    bare.set_input(None);
    let rendered = bare.to_string();
    let last = rendered.trim_end().lines().last()?;
    let key = last.strip_prefix("in `")?.strip_suffix('`')?;
    (!key.is_empty()).then(|| key.to_owned())
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
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| ScenarioError::from_toml(&e, text, origin))?;
        validate(raw, text, origin, base_dir)
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

    /// Total instance launches the scenario will make: every backend runs each N once per
    /// repetition, plus its warmup launches. Used for progress bars and time estimates.
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

// ---- raw file model --------------------------------------------------------------------------

/// Integers are read as i64 and range-checked afterwards, so a negative number gets the same
/// "out of range; allowed ..." message as a too-large one instead of a serde type error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a scenario table")]
struct RawScenario {
    name: String,
    description: Option<String>,
    image: Option<String>,
    workload: Option<RawWorkload>,
    backends: Vec<String>,
    counts: Vec<Int>,
    parallelism: Option<Int>,
    repetitions: Option<Int>,
    warmup: Option<Int>,
    ready_timeout_s: Option<Num>,
    limits: Option<RawLimits>,
    namespaces: Option<RawNamespaces>,
    security: Option<toml::Value>,
    vm: Option<RawVm>,
    oci: Option<RawOci>,
    measure: Option<RawMeasure>,
    until: Option<RawUntil>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with optional key runtimes")]
struct RawOci {
    runtimes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys memory, drop_caches, idle_window_s, ksm, ksm_timeout_s"
)]
struct RawMeasure {
    memory: Option<bool>,
    drop_caches: Option<bool>,
    idle_window_s: Option<Num>,
    ksm: Option<bool>,
    ksm_timeout_s: Option<Num>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with keys step, max, mem_available_floor_mib"
)]
struct RawUntil {
    step: Int,
    max: Int,
    mem_available_floor_mib: Int,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys kernel, initrd, accel, machine, memory_mib, vcpus, probe_timeout_s, counts"
)]
struct RawVm {
    kernel: Option<String>,
    initrd: Option<String>,
    accel: Option<String>,
    machine: Option<String>,
    memory_mib: Option<Int>,
    vcpus: Option<Int>,
    probe_timeout_s: Option<Num>,
    counts: Option<Vec<Int>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys memory_mib, cpus, pids"
)]
struct RawLimits {
    memory_mib: Option<Int>,
    cpus: Option<Num>,
    pids: Option<Int>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional boolean keys pid, mount, uts, ipc, net, cgroup"
)]
struct RawNamespaces {
    pid: Option<bool>,
    mount: Option<bool>,
    uts: Option<bool>,
    ipc: Option<bool>,
    net: Option<bool>,
    cgroup: Option<bool>,
}

/// An integer whose type errors say "expected an integer" rather than serde's "expected i64".
#[derive(Clone, Copy)]
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                // Beyond i64 is out of every range anyway; saturate so the range check reports it.
                Ok(Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_i64(V)
    }
}

/// A number where integers are accepted too (`ready_timeout_s = 30`, `cpus = 2`).
#[derive(Clone, Copy)]
struct Num(f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
        }
        d.deserialize_f64(V)
    }
}

/// `"idle"`, `{ touch-memory = MiB }` or `{ write-file = MiB }`. Hand-written rather than an
/// untagged enum so that a mistake gets a precise message (and a line number) instead of
/// "data did not match any variant".
enum RawWorkload {
    Idle,
    Probe,
    Syscalls(Option<i64>),
    TouchMemory(i64),
    WriteFile(i64),
    Fork(i64),
}

const WORKLOAD_EXPECTED: &str = "\"idle\", \"probe\", \"syscalls\", { syscalls = BUDGET_MS }, { touch-memory = MiB }, { write-file = MiB } or { fork = COUNT }";
const WORKLOAD_KEYS: &[&str] = &["touch-memory", "write-file", "fork", "syscalls"];

impl<'de> Deserialize<'de> for RawWorkload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};

        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawWorkload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(WORKLOAD_EXPECTED)
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<RawWorkload, E> {
                match v {
                    "idle" => Ok(RawWorkload::Idle),
                    "probe" => Ok(RawWorkload::Probe),
                    "syscalls" => Ok(RawWorkload::Syscalls(None)),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawWorkload, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(format!(
                        "empty workload table; expected {WORKLOAD_EXPECTED}"
                    )));
                };
                let workload = match key.as_str() {
                    "touch-memory" => RawWorkload::TouchMemory(map.next_value::<Int>()?.0),
                    "write-file" => RawWorkload::WriteFile(map.next_value::<Int>()?.0),
                    "fork" => RawWorkload::Fork(map.next_value::<Int>()?.0),
                    "syscalls" => RawWorkload::Syscalls(Some(map.next_value::<Int>()?.0)),
                    _ => return Err(A::Error::unknown_field(&key, WORKLOAD_KEYS)),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(format!(
                        "a workload table holds exactly one key; expected {WORKLOAD_EXPECTED}"
                    )));
                }
                Ok(workload)
            }
        }
        d.deserialize_any(V)
    }
}

// ---- validation ------------------------------------------------------------------------------

const NAME_MAX_LEN: usize = 40;
const COUNT_MAX: i64 = 100_000;
/// OCI runtimes the `oci` backend knows how to drive.
pub const OCI_RUNTIMES: &[&str] = &["runc", "crun"];
const PARALLELISM_MAX: i64 = 1024;
const REPETITIONS_MAX: i64 = 10_000;
const WARMUP_MAX: i64 = 1000;
const READY_TIMEOUT_MAX_S: f64 = 3600.0;
const MEMORY_MIB_MAX: i64 = 1_048_576;
const CPUS_MAX: f64 = 1024.0;
/// Linux's PID_MAX_LIMIT on 64-bit: no pids.max above it can mean anything.
const PIDS_MAX: i64 = 4_194_304;

const IMAGE_ALLOWED: &str = "allowed: \"busybox\", a directory, or a .tar/.tar.gz/.tgz file";

fn validate(
    raw: RawScenario,
    text: &str,
    origin: &str,
    base_dir: &Path,
) -> Result<Scenario, ScenarioError> {
    let err = |key: &str, message: String| ScenarioError::invalid(origin, key, message);

    // An integer in lo..=hi, converted to the public type.
    let ranged = |key: &str, value: Int, lo: i64, hi: i64| -> Result<u64, ScenarioError> {
        if (lo..=hi).contains(&value.0) {
            // In range and lo >= 0, so the conversion cannot fail.
            Ok(value.0.unsigned_abs())
        } else {
            Err(err(
                key,
                format!("{} is out of range; allowed {lo}..={hi}", value.0),
            ))
        }
    };
    // A u32 for fields whose maxima are far below u32::MAX.
    let ranged32 = |key: &str, value: Int, lo: i64, hi: i64| -> Result<u32, ScenarioError> {
        let v = ranged(key, value, lo, hi)?;
        u32::try_from(v).map_err(|_| err(key, format!("{v} is out of range; allowed {lo}..={hi}")))
    };
    // A float in (0, hi]; written so that NaN fails too.
    let positive = |key: &str, value: Num, hi: f64| -> Result<f64, ScenarioError> {
        if value.0 > 0.0 && value.0 <= hi {
            Ok(value.0)
        } else {
            Err(err(
                key,
                format!("{} is out of range; allowed > 0 and <= {hi}", value.0),
            ))
        }
    };

    validate_name(&raw.name).map_err(|m| err("name", m))?;

    let image = match raw.image.as_deref() {
        None | Some("busybox") => ImageSpec::Busybox,
        Some(given) => resolve_image(given, base_dir).map_err(|m| err("image", m))?,
    };

    let workload = match raw.workload {
        None | Some(RawWorkload::Idle) => Workload::Idle,
        Some(RawWorkload::Probe) => Workload::Probe,
        Some(RawWorkload::Syscalls(ms)) => Workload::Syscalls {
            budget_ms: match ms {
                None => SYSCALLS_BUDGET_MS_DEFAULT as u64,
                Some(ms) => ranged("workload.syscalls", Int(ms), 1, SYSCALLS_BUDGET_MS_MAX)?,
            },
        },
        Some(RawWorkload::TouchMemory(mib)) => Workload::TouchMemory {
            mib: ranged("workload.touch-memory", Int(mib), 1, WORKLOAD_MIB_MAX)?,
        },
        Some(RawWorkload::WriteFile(mib)) => Workload::WriteFile {
            mib: ranged("workload.write-file", Int(mib), 1, WORKLOAD_MIB_MAX)?,
        },
        Some(RawWorkload::Fork(count)) => Workload::Fork {
            count: ranged("workload.fork", Int(count), 1, FORK_MAX)?,
        },
    };

    if raw.backends.is_empty() {
        return Err(err(
            "backends",
            format!(
                "empty; list at least one of: {}",
                BackendKind::allowed_names()
            ),
        ));
    }
    let mut backends = Vec::with_capacity(raw.backends.len());
    for name in &raw.backends {
        let kind = BackendKind::from_name(name).ok_or_else(|| {
            err(
                "backends",
                format!(
                    "unknown backend {name:?}; allowed: {}",
                    BackendKind::allowed_names()
                ),
            )
        })?;
        if backends.contains(&kind) {
            return Err(err(
                "backends",
                format!("{name:?} is listed twice; each backend may appear once"),
            ));
        }
        backends.push(kind);
    }

    let counts = validate_counts(&raw.counts).map_err(|m| err("counts", m))?;

    let parallelism = match raw.parallelism {
        Some(p) => ranged32("parallelism", p, 1, PARALLELISM_MAX)?,
        None => default_parallelism(),
    };
    let repetitions = match raw.repetitions {
        Some(r) => ranged32("repetitions", r, 1, REPETITIONS_MAX)?,
        None => 1,
    };
    let warmup = match raw.warmup {
        Some(w) => ranged32("warmup", w, 0, WARMUP_MAX)?,
        None => 1,
    };
    let ready_timeout_s = match raw.ready_timeout_s {
        Some(t) => positive("ready_timeout_s", t, READY_TIMEOUT_MAX_S)?,
        None => 30.0,
    };

    let limits = match raw.limits {
        None => Limits::default(),
        Some(l) => Limits {
            memory_mib: l
                .memory_mib
                .map(|v| ranged("limits.memory_mib", v, 1, MEMORY_MIB_MAX))
                .transpose()?,
            cpus: l
                .cpus
                .map(|v| positive("limits.cpus", v, CPUS_MAX))
                .transpose()?,
            pids: l
                .pids
                .map(|v| ranged("limits.pids", v, 1, PIDS_MAX))
                .transpose()?,
        },
    };

    let namespaces = match raw.namespaces {
        None => Namespaces::default(),
        Some(n) => {
            let d = Namespaces::default();
            Namespaces {
                pid: n.pid.unwrap_or(d.pid),
                mount: n.mount.unwrap_or(d.mount),
                uts: n.uts.unwrap_or(d.uts),
                ipc: n.ipc.unwrap_or(d.ipc),
                net: n.net.unwrap_or(d.net),
                cgroup: n.cgroup.unwrap_or(d.cgroup),
            }
        }
    };

    let profiles = validate_profiles(raw.security).map_err(|m| err("security", m))?;
    let security = profiles[0];

    let oci = match raw.oci {
        None => OciConfig::default(),
        Some(o) => {
            let runtimes = o.runtimes.unwrap_or_else(|| OciConfig::default().runtimes);
            if runtimes.is_empty() {
                return Err(err(
                    "oci.runtimes",
                    "empty; allowed: a list of runc, crun".into(),
                ));
            }
            for r in &runtimes {
                if !OCI_RUNTIMES.contains(&r.as_str()) {
                    return Err(err(
                        "oci.runtimes",
                        format!(
                            "unknown runtime {r:?}; allowed: {}",
                            OCI_RUNTIMES.join(", ")
                        ),
                    ));
                }
            }
            OciConfig { runtimes }
        }
    };
    let measure = match raw.measure {
        None => MeasureConfig::default(),
        Some(m) => {
            let d = MeasureConfig::default();
            let window = match m.idle_window_s {
                None => d.idle_window_s,
                Some(Num(0.0)) => 0.0,
                Some(w) => positive("measure.idle_window_s", w, 3600.0)?,
            };
            MeasureConfig {
                memory: m.memory.unwrap_or(d.memory),
                drop_caches: m.drop_caches.unwrap_or(d.drop_caches),
                idle_window_s: window,
                ksm: m.ksm.unwrap_or(d.ksm),
                ksm_timeout_s: m
                    .ksm_timeout_s
                    .map(|t| positive("measure.ksm_timeout_s", t, 3600.0))
                    .transpose()?
                    .unwrap_or(d.ksm_timeout_s),
            }
        }
    };
    let until = match raw.until {
        None => None,
        Some(u) => Some(UntilConfig {
            step: ranged32("until.step", u.step, 1, COUNT_MAX)?,
            max: ranged32("until.max", u.max, 1, COUNT_MAX)?,
            mem_available_floor_mib: ranged(
                "until.mem_available_floor_mib",
                u.mem_available_floor_mib,
                0,
                MEMORY_MIB_MAX,
            )?,
        }),
    };
    let vm = match raw.vm {
        None => VmConfig::default(),
        Some(v) => {
            let d = VmConfig::default();
            let file = |key: &str, p: Option<String>| -> Result<Option<PathBuf>, ScenarioError> {
                let Some(p) = p else { return Ok(None) };
                let path = base_dir.join(&p);
                if path.is_file() {
                    Ok(Some(path))
                } else {
                    Err(err(
                        key,
                        format!(
                            "{} is not a file (allowed: a path to a kernel or initrd image)",
                            path.display()
                        ),
                    ))
                }
            };
            let accel = match v.accel.as_deref() {
                None | Some("auto") => Accel::Auto,
                Some("kvm") => Accel::Kvm,
                Some("tcg") => Accel::Tcg,
                Some(other) => {
                    return Err(err(
                        "vm.accel",
                        format!("{other:?} is not allowed; allowed: auto, kvm, tcg"),
                    ));
                }
            };
            let machine = match v.machine.as_deref() {
                None | Some("q35") => Machine::Q35,
                Some("microvm") => Machine::Microvm,
                Some(other) => {
                    return Err(err(
                        "vm.machine",
                        format!("{other:?} is not allowed; allowed: q35, microvm"),
                    ));
                }
            };
            VmConfig {
                kernel: file("vm.kernel", v.kernel)?,
                initrd: file("vm.initrd", v.initrd)?,
                accel,
                machine,
                memory_mib: v
                    .memory_mib
                    .map(|m| ranged("vm.memory_mib", m, 32, 1_048_576))
                    .transpose()?
                    .unwrap_or(d.memory_mib),
                vcpus: v
                    .vcpus
                    .map(|c| ranged32("vm.vcpus", c, 1, 256))
                    .transpose()?
                    .unwrap_or(d.vcpus),
                probe_timeout_s: v
                    .probe_timeout_s
                    .map(|t| positive("vm.probe_timeout_s", t, 600.0))
                    .transpose()?
                    .unwrap_or(d.probe_timeout_s),
                counts: match v.counts {
                    None => None,
                    Some(c) => Some(validate_counts(&c).map_err(|m| err("vm.counts", m))?),
                },
            }
        }
    };

    Ok(Scenario {
        name: raw.name,
        description: raw.description.unwrap_or_default(),
        image,
        workload,
        backends,
        counts,
        parallelism,
        repetitions,
        warmup,
        ready_timeout_s,
        limits,
        namespaces,
        profiles,
        security,
        vm,
        oci,
        measure,
        until,
        text: text.to_owned(),
        origin: origin.to_owned(),
    })
}

/// `security`: a profile name or a non-empty list of distinct ones; default `docker`.
fn validate_profiles(raw: Option<toml::Value>) -> Result<Vec<crate::security::Profile>, String> {
    use crate::security::Profile;
    const ALLOWED: &str = "allowed: \"docker\", \"runc\", \"none\", or a list of them";
    let names: Vec<toml::Value> = match raw {
        None => return Ok(vec![Profile::default()]),
        Some(toml::Value::Array(a)) if a.is_empty() => return Err(format!("empty; {ALLOWED}")),
        Some(toml::Value::Array(a)) => a,
        Some(v) => vec![v],
    };
    let mut out: Vec<Profile> = Vec::new();
    for v in names {
        let p = v
            .as_str()
            .and_then(Profile::from_name)
            .ok_or_else(|| format!("{v} is not a profile; {ALLOWED}"))?;
        if out.contains(&p) {
            return Err(format!(
                "{:?} is listed twice; each profile may appear once",
                p.as_str()
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// A list of N: non-empty, each in 1..=COUNT_MAX, none twice (a repeated N would measure the
/// same point twice under the same result directory).
fn validate_counts(raw: &[Int]) -> Result<Vec<u32>, String> {
    if raw.is_empty() {
        return Err(format!(
            "empty; list at least one N, each in 1..={COUNT_MAX}"
        ));
    }
    let mut counts = Vec::with_capacity(raw.len());
    for &n in raw {
        let v = u32::try_from(n.0)
            .ok()
            .filter(|&v| (1..=COUNT_MAX).contains(&i64::from(v)))
            .ok_or_else(|| format!("N = {} is out of range; allowed 1..={COUNT_MAX}", n.0))?;
        if counts.contains(&v) {
            return Err(format!("N = {v} is listed twice; each N may appear once"));
        }
        counts.push(v);
    }
    Ok(counts)
}

/// The name ends up in directory and cgroup names, hence the conservative alphabet.
fn validate_name(name: &str) -> Result<(), String> {
    const RULE: &str =
        "allowed: 1 to 40 characters of a-z, 0-9, '_' and '-', starting with a-z or 0-9";
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= NAME_MAX_LEN {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid name; {RULE}"))
    }
}

/// "busybox" is handled by the caller; anything else is a path that must exist now, so a typo
/// fails before any instance is launched rather than in the middle of a run.
fn resolve_image(given: &str, base_dir: &Path) -> Result<ImageSpec, String> {
    if given.is_empty() {
        return Err(format!("empty path ({IMAGE_ALLOWED})"));
    }
    let path = base_dir.join(given);
    let shown = path.display();
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{shown} does not exist ({IMAGE_ALLOWED})"));
        }
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    if meta.is_dir() {
        return Ok(ImageSpec::Directory(path));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let is_tarball = [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|ext| file_name.ends_with(ext));
    match (meta.is_file(), is_tarball) {
        (true, true) => Ok(ImageSpec::Tarball(path)),
        (true, false) => Err(format!(
            "{shown} is a file without a .tar/.tar.gz/.tgz suffix ({IMAGE_ALLOWED})"
        )),
        (false, _) => Err(format!(
            "{shown} is neither a directory nor a regular file ({IMAGE_ALLOWED})"
        )),
    }
}

/// One launch in flight per CPU keeps the host busy without measuring run-queue contention;
/// clamped so a very large machine still yields a valid value.
fn default_parallelism() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cpus.clamp(1, PARALLELISM_MAX as usize)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "scenarios/x.toml";

    /// The smallest valid scenario, with `extra` appended (top-level keys or tables).
    fn minimal(extra: &str) -> String {
        format!("name = \"t\"\nbackends = [\"process\"]\ncounts = [1]\n{extra}")
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, ORIGIN, Path::new("/nonexistent-base"))
    }

    /// Parses `text`, expects an error, checks it is one line naming the origin and containing
    /// every fragment, and returns the message.
    fn parse_err(text: &str, fragments: &[&str]) -> String {
        let msg = match parse(text) {
            Ok(s) => panic!("expected an error for {text:?}, got {s:?}"),
            Err(e) => e.to_string(),
        };
        assert_one_line(&msg);
        assert!(
            msg.starts_with(ORIGIN),
            "{msg:?} does not start with the origin"
        );
        for f in fragments {
            assert!(msg.contains(f), "{msg:?} does not contain {f:?}");
        }
        msg
    }

    fn assert_one_line(msg: &str) {
        assert!(!msg.contains(['\n', '\r']), "not one line: {msg:?}");
        assert!(!msg.is_empty());
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "isobench-scenario-test-{}-{tag}-{n}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn embedded_default_parses_with_the_documented_values() {
        let s = Scenario::default_embedded();
        assert_eq!(s.name, "quick");
        assert!(s.description.contains("quick"));
        assert_eq!(s.origin, DEFAULT_SCENARIO_ORIGIN);
        assert_eq!(s.text, DEFAULT_SCENARIO_TEXT);
        assert_eq!(s.image, ImageSpec::Busybox);
        assert_eq!(s.workload, Workload::Idle);
        assert_eq!(
            s.backends,
            vec![
                BackendKind::Process,
                BackendKind::Container,
                BackendKind::Vm
            ]
        );
        assert_eq!(s.counts, vec![1, 10, 100]);
        assert_eq!(s.counts_for(BackendKind::Vm), [1, 2]);
        assert_eq!((s.vm.accel, s.vm.memory_mib), (Accel::Auto, 128));
        assert_eq!(s.parallelism, 2);
        assert_eq!(s.repetitions, 1);
        assert_eq!(s.warmup, 1);
        assert_eq!(s.ready_timeout_s, 30.0);
        assert_eq!(
            s.limits,
            Limits {
                memory_mib: Some(64),
                cpus: Some(0.5),
                pids: Some(64)
            }
        );
        assert_eq!(s.namespaces, Namespaces::default());
    }

    #[test]
    fn startup_scenario_parses() {
        let text = include_str!("../../scenarios/startup.toml");
        let s = Scenario::parse(text, "scenarios/startup.toml", Path::new("scenarios")).unwrap();
        assert_eq!(s.name, "startup");
        assert_eq!(
            s.backends,
            vec![
                BackendKind::Process,
                BackendKind::Unshare,
                BackendKind::Container
            ]
        );
        assert_eq!(s.counts, vec![1, 10]);
        assert_eq!(s.repetitions, 30);
        assert_eq!(s.parallelism, 2);
        assert_eq!(s.warmup, 3);
        assert_eq!(s.limits, Scenario::default_embedded().limits);
        // 3 backends x ((1 + 10) x 30 + 3)
        assert_eq!(s.total_launches(), 3 * (11 * 30 + 3));
    }

    #[test]
    fn defaults_apply() {
        let s = parse(&minimal("")).unwrap();
        assert_eq!(s.description, "");
        assert_eq!(s.image, ImageSpec::Busybox);
        assert_eq!(s.workload, Workload::Idle);
        assert_eq!(s.parallelism, default_parallelism());
        assert!((1..=1024).contains(&s.parallelism));
        assert_eq!(s.repetitions, 1);
        assert_eq!(s.warmup, 1);
        assert_eq!(s.ready_timeout_s, 30.0);
        assert_eq!(s.limits, Limits::default());
        assert_eq!(
            s.namespaces,
            Namespaces {
                pid: true,
                mount: true,
                uts: true,
                ipc: true,
                net: true,
                cgroup: true
            }
        );
        assert_eq!(s.origin, ORIGIN);
        assert_eq!(s.text, minimal(""));
    }

    #[test]
    fn namespaces_can_be_turned_off_one_by_one() {
        let s = parse(&minimal("[namespaces]\nnet = false\ncgroup = false\n")).unwrap();
        assert!(s.namespaces.pid && s.namespaces.mount && s.namespaces.uts && s.namespaces.ipc);
        assert!(!s.namespaces.net && !s.namespaces.cgroup);
    }

    #[test]
    fn floats_accept_integers() {
        let s = parse(&minimal("ready_timeout_s = 5\n[limits]\ncpus = 2\n")).unwrap();
        assert_eq!(s.ready_timeout_s, 5.0);
        assert_eq!(s.limits.cpus, Some(2.0));
        let s = parse(&minimal("ready_timeout_s = 0.25\n")).unwrap();
        assert_eq!(s.ready_timeout_s, 0.25);
    }

    #[test]
    fn range_edges_are_accepted() {
        let name = format!("0{}_", "a-".repeat(19));
        let s = parse(&format!(
            "name = \"{name}\"\nbackends = [\"unshare\"]\n\
             counts = [1, 100000]\nparallelism = 1024\nrepetitions = 10000\nwarmup = 0\n\
             ready_timeout_s = 3600\nworkload = {{ write-file = 65536 }}\n\
             [limits]\nmemory_mib = 1048576\ncpus = 1024\npids = 4194304\n"
        ))
        .unwrap();
        assert_eq!(s.name.len(), 40);
        assert_eq!(s.counts, vec![1, 100_000]);
        assert_eq!(s.parallelism, 1024);
        assert_eq!(s.repetitions, 10_000);
        assert_eq!(s.warmup, 0);
        assert_eq!(s.limits.memory_mib, Some(1_048_576));
        assert_eq!(s.limits.pids, Some(4_194_304));
        assert_eq!(s.workload, Workload::WriteFile { mib: 65536 });
    }

    #[test]
    fn workload_forms_parse() {
        let cases = [
            (
                "workload = \"idle\"\n",
                Workload::Idle,
                vec!["idle"],
                "idle",
            ),
            (
                "workload = { touch-memory = 64 }\n",
                Workload::TouchMemory { mib: 64 },
                vec!["touch-memory", "64"],
                "touch-memory=64",
            ),
            (
                "workload = { write-file = 16 }\n",
                Workload::WriteFile { mib: 16 },
                vec!["write-file", "16"],
                "write-file=16",
            ),
            // A standard table works as well as an inline one.
            (
                "[workload]\ntouch-memory = 1\n",
                Workload::TouchMemory { mib: 1 },
                vec!["touch-memory", "1"],
                "touch-memory=1",
            ),
        ];
        for (extra, want, args, label) in cases {
            let s = parse(&minimal(extra)).unwrap();
            assert_eq!(s.workload, want, "{extra}");
            assert_eq!(s.workload.agent_args(), args);
            assert_eq!(s.workload.label(), label);
        }
    }

    #[test]
    fn the_vm_table_sets_the_guest_and_its_own_counts() {
        let s = parse(&minimal("[vm]\naccel = \"tcg\"\nmachine = \"microvm\"\nmemory_mib = 256\nvcpus = 2\ncounts = [1, 2]\n")).unwrap();
        assert_eq!(
            (s.vm.accel, s.vm.machine, s.vm.memory_mib, s.vm.vcpus),
            (Accel::Tcg, Machine::Microvm, 256, 2)
        );
        assert_eq!(s.counts_for(BackendKind::Vm), [1, 2]);
        assert_eq!(s.counts_for(BackendKind::Process), [1]);
        let d = parse(&minimal("")).unwrap();
        assert_eq!(d.vm, VmConfig::default());
        assert_eq!(
            d.counts_for(BackendKind::Vm),
            [1],
            "without [vm] counts, VMs use counts"
        );
    }

    #[test]
    fn vm_table_errors_name_the_key_and_what_is_allowed() {
        parse_err(
            &minimal("[vm]\naccel = \"hvf\"\n"),
            &["vm.accel", "auto, kvm, tcg"],
        );
        parse_err(
            &minimal("[vm]\nmachine = \"pc\"\n"),
            &["vm.machine", "q35, microvm"],
        );
        parse_err(
            &minimal("[vm]\nkernel = \"/nonexistent/vmlinuz\"\n"),
            &["vm.kernel", "/nonexistent/vmlinuz"],
        );
        parse_err(
            &minimal("[vm]\ncounts = [0]\n"),
            &["vm.counts", "1..=100000"],
        );
        parse_err(
            &minimal("[vm]\nmemory_mib = 8\n"),
            &["vm.memory_mib", "32..="],
        );
        parse_err(
            &minimal("[vm]\ndisk = 1\n"),
            &["unknown field `disk`", "`counts`"],
        );
    }

    #[test]
    fn backend_names_round_trip() {
        assert_eq!(
            BackendKind::allowed_names(),
            "process, unshare, container, vm, oci"
        );
        for &k in BackendKind::ALL {
            assert_eq!(BackendKind::from_name(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
            // serde and as_str must agree: results are written with serde, read back by name.
            let v: toml::Value = toml::Value::try_from(k).unwrap();
            assert_eq!(v.as_str(), Some(k.as_str()));
            let back: BackendKind = v.try_into().unwrap();
            assert_eq!(back, k);
        }
        assert_eq!(BackendKind::from_name("Process"), None);
    }

    #[test]
    fn total_launches_arithmetic() {
        let s = parse(
            "name = \"t\"\nbackends = [\"process\", \"container\"]\ncounts = [1, 10, 100]\n\
             repetitions = 3\nwarmup = 2\n",
        )
        .unwrap();
        // 2 backends x ((1 + 10 + 100) x 3 + 2 warmups)
        assert_eq!(s.total_launches(), 2 * (111 * 3 + 2));
        let s = parse(&minimal("warmup = 0\n")).unwrap();
        assert_eq!(s.total_launches(), 1);
        // process and container at 1 + 10 + 100, vm at 1 + 2, one warmup each.
        assert_eq!(
            Scenario::default_embedded().total_launches(),
            2 * (111 + 1) + (3 + 1)
        );
    }

    #[test]
    fn toml_errors_carry_line_and_key() {
        let msg = parse_err(
            "name = \"t\"\nbackends = [\"process\"]\ncounts = [1]\nfoo = 1\n",
            &["line 4", "unknown field `foo`", "expected one of `name`"],
        );
        assert_eq!(
            msg.split(": ").take(2).collect::<Vec<_>>(),
            vec![ORIGIN, "line 4"]
        );
        parse_err(
            &minimal("[limits]\nmemory_mib = 1\nswap_mib = 2\n"),
            &[
                "line 6",
                "limits",
                "unknown field `swap_mib`",
                "`memory_mib`",
            ],
        );
        parse_err(
            &minimal("[namespaces]\nuser = false\n"),
            &["line 5", "namespaces", "unknown field `user`", "`cgroup`"],
        );
        parse_err(
            &minimal("workload = { touch-memory = 1, write-file = 2 }\n"),
            &["line 4", "workload", "exactly one key"],
        );
        parse_err(
            &minimal("workload = { sleep = 1 }\n"),
            &[
                "line 4",
                "workload",
                "unknown field `sleep`",
                "`touch-memory`",
            ],
        );
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        let bad = |text: &str, fragments: &[&str]| parse_err(text, fragments);
        let p = "[\"process\"]";
        bad(
            &core("5", p, "[1]"),
            &["line 1: name: invalid type", "a string"],
        );
        bad(
            &core("\"t\"", "\"process\"", "[1]"),
            &["line 2: backends: invalid type"],
        );
        bad(
            &core("\"t\"", p, "[\"1\"]"),
            &["line 3: counts: invalid type", "an integer"],
        );
        bad(
            &core("\"t\"", p, "[1.5]"),
            &["line 3: counts: invalid type", "an integer"],
        );
        let bad = |extra: &str, fragments: &[&str]| parse_err(&minimal(extra), fragments);
        bad(
            "parallelism = \"2\"",
            &["line 4: parallelism: invalid type", "an integer"],
        );
        bad(
            "repetitions = true",
            &["line 4: repetitions: invalid type", "an integer"],
        );
        bad(
            "warmup = 1.0",
            &["line 4: warmup: invalid type", "an integer"],
        );
        bad(
            "ready_timeout_s = \"30\"",
            &["line 4: ready_timeout_s: invalid type", "a number"],
        );
        bad(
            "description = 1",
            &["line 4: description: invalid type", "a string"],
        );
        bad("image = 1", &["line 4: image: invalid type", "a string"]);
        bad(
            "limits = 3",
            &["line 4: limits: invalid type", "memory_mib, cpus, pids"],
        );
        bad(
            "[limits]\ncpus = \"half\"",
            &["line 5: limits.cpus: invalid type", "a number"],
        );
        bad(
            "[limits]\npids = 6.5",
            &["line 5: limits.pids: invalid type", "an integer"],
        );
        bad(
            "[namespaces]\npid = \"yes\"",
            &["line 5: namespaces.pid: invalid type", "a boolean"],
        );
        let allowed = WORKLOAD_EXPECTED;
        bad("workload = 5", &["line 4: workload: invalid type", allowed]);
        bad(
            "workload = \"busy\"",
            &["line 4: workload: invalid value", "\"busy\"", allowed],
        );
        bad(
            "workload = {}",
            &["line 4: workload: empty workload table", allowed],
        );
        bad(
            "workload = { touch-memory = \"64\" }",
            &["line 4: workload", "an integer"],
        );
    }

    #[test]
    fn syntax_errors_and_missing_keys() {
        parse_err(&minimal("counts = [1,\n"), &["line 4"]);
        parse_err(
            &minimal("name = \"again\"\n"),
            &["line 4: name: duplicate key"],
        );
        parse_err(
            &minimal("[limits]\npids = 1\npids = 2\n"),
            &["line 6: pids: duplicate key"],
        );
        parse_err("this is not toml\n", &["line 1"]);
        for key in ["name", "backends", "counts"] {
            let text: String = minimal("")
                .lines()
                .filter(|l| !l.starts_with(key))
                .map(|l| format!("{l}\n"))
                .collect();
            let msg = parse_err(&text, &[&format!("missing field `{key}`"), "required keys"]);
            assert!(!msg.contains("line"), "{msg}");
        }
    }

    /// A scenario from its three required values, written as TOML.
    fn core(name: &str, backends: &str, counts: &str) -> String {
        format!("name = {name}\nbackends = {backends}\ncounts = {counts}\n")
    }

    #[test]
    fn name_rules() {
        let bad = |name: &str, fragments: &[&str]| {
            parse_err(&core(name, "[\"process\"]", "[1]"), fragments)
        };
        bad("\"\"", &["name: \"\" is not a valid name", "a-z"]);
        bad("\"Quick\"", &["name: \"Quick\"", "a-z, 0-9, '_' and '-'"]);
        bad("\"-x\"", &["name:", "starting with a-z or 0-9"]);
        bad("\"_x\"", &["name:", "starting with a-z or 0-9"]);
        bad("\"a/b\"", &["name:"]);
        bad("\"a.b\"", &["name:"]);
        bad("\"a b\"", &["name:"]);
        bad("\"café\"", &["name:"]);
        bad(
            &format!("{:?}", "a".repeat(41)),
            &["name:", "1 to 40 characters"],
        );
    }

    #[test]
    fn backend_rules() {
        let bad = |backends: &str, fragments: &[&str]| {
            parse_err(&core("\"t\"", backends, "[1]"), fragments)
        };
        bad("[]", &["backends: empty", "process, unshare, container"]);
        bad(
            "[\"kvm\"]",
            &["backends: unknown backend \"kvm\"; allowed: process, unshare, container"],
        );
        bad("[\"Process\"]", &["backends: unknown backend \"Process\""]);
        bad(
            "[\"process\", \"container\", \"process\"]",
            &["backends: \"process\" is listed twice"],
        );
    }

    #[test]
    fn count_rules() {
        let bad = |counts: &str, fragments: &[&str]| {
            parse_err(&core("\"t\"", "[\"process\"]", counts), fragments)
        };
        bad("[]", &["counts: empty", "1..=100000"]);
        bad(
            "[0]",
            &["counts: N = 0 is out of range; allowed 1..=100000"],
        );
        bad(
            "[1, 100001]",
            &["counts: N = 100001 is out of range; allowed 1..=100000"],
        );
        bad("[-5]", &["counts: N = -5 is out of range"]);
        bad("[10, 10]", &["counts: N = 10 is listed twice"]);
    }

    #[test]
    fn numeric_rules() {
        let bad = |extra: &str, fragments: &[&str]| parse_err(&minimal(extra), fragments);
        bad(
            "parallelism = 0",
            &["parallelism: 0 is out of range; allowed 1..=1024"],
        );
        bad(
            "parallelism = 1025",
            &["parallelism: 1025 is out of range; allowed 1..=1024"],
        );
        bad(
            "repetitions = 0",
            &["repetitions: 0 is out of range; allowed 1..=10000"],
        );
        bad("repetitions = 10001", &["repetitions:", "1..=10000"]);
        bad(
            "warmup = -1",
            &["warmup: -1 is out of range; allowed 0..=1000"],
        );
        bad("warmup = 1001", &["warmup:", "0..=1000"]);
        let timeout = ["ready_timeout_s:", "allowed > 0 and <= 3600"];
        bad("ready_timeout_s = 0", &timeout);
        bad("ready_timeout_s = -1.5", &timeout);
        bad("ready_timeout_s = 3600.5", &timeout);
        bad("ready_timeout_s = nan", &timeout);
        bad("ready_timeout_s = inf", &timeout);
        bad(
            "workload = { touch-memory = 0 }",
            &["workload.touch-memory:", "1..=65536"],
        );
        bad(
            "workload = { write-file = 65537 }",
            &["workload.write-file:", "1..=65536"],
        );
        bad(
            "[limits]\nmemory_mib = 0",
            &["limits.memory_mib:", "1..=1048576"],
        );
        bad(
            "[limits]\nmemory_mib = 1048577",
            &["limits.memory_mib:", "1..=1048576"],
        );
        bad(
            "[limits]\ncpus = 0",
            &["limits.cpus:", "allowed > 0 and <= 1024"],
        );
        bad(
            "[limits]\ncpus = 1024.5",
            &["limits.cpus:", "allowed > 0 and <= 1024"],
        );
        bad(
            "[limits]\ncpus = nan",
            &["limits.cpus:", "allowed > 0 and <= 1024"],
        );
        bad("[limits]\npids = 0", &["limits.pids:", "1..=4194304"]);
        bad("[limits]\npids = 4194305", &["limits.pids:", "1..=4194304"]);
    }

    #[test]
    fn image_rules() {
        let bad = |extra: &str, fragments: &[&str]| parse_err(&minimal(extra), fragments);
        bad("image = \"\"", &["image: empty path", "\"busybox\""]);
        bad(
            "image = \"/nope/rootfs\"",
            &[concat!(
                "image: /nope/rootfs does not exist",
                " (allowed: \"busybox\", a directory, or a .tar/.tar.gz/.tgz file)"
            )],
        );
    }

    #[test]
    fn image_paths_resolve_against_base_dir() {
        let dir = TempDir::new("image");
        std::fs::create_dir(dir.0.join("rootfs")).unwrap();
        for f in ["a.tar", "b.tar.gz", "c.tgz", "notes.txt"] {
            std::fs::write(dir.0.join(f), b"").unwrap();
        }
        let at = |image: &str| {
            Scenario::parse(&minimal(&format!("image = {image:?}\n")), ORIGIN, &dir.0)
        };
        assert_eq!(
            at("rootfs").unwrap().image,
            ImageSpec::Directory(dir.0.join("rootfs"))
        );
        for f in ["a.tar", "b.tar.gz", "c.tgz"] {
            assert_eq!(at(f).unwrap().image, ImageSpec::Tarball(dir.0.join(f)));
        }
        // Absolute paths ignore the base directory.
        let abs = dir.0.join("c.tgz");
        let s = Scenario::parse(
            &minimal(&format!("image = {:?}\n", abs.display().to_string())),
            ORIGIN,
            Path::new("/somewhere/else"),
        )
        .unwrap();
        assert_eq!(s.image, ImageSpec::Tarball(abs));

        let msg = at("notes.txt").unwrap_err().to_string();
        assert_one_line(&msg);
        assert!(msg.starts_with(&format!("{ORIGIN}: image: ")), "{msg}");
        assert!(msg.contains("notes.txt is a file without a .tar"), "{msg}");
        assert!(msg.contains(".tar/.tar.gz/.tgz"), "{msg}");

        let msg = at("missing.tar").unwrap_err().to_string();
        assert_one_line(&msg);
        let missing = dir.0.join("missing.tar");
        assert!(
            msg.contains(&format!("image: {} does not exist", missing.display())),
            "{msg}"
        );
    }

    #[test]
    fn load_reads_the_file_and_resolves_against_its_directory() {
        let dir = TempDir::new("load");
        std::fs::create_dir(dir.0.join("rootfs")).unwrap();
        let path = dir.0.join("s.toml");
        let text = minimal("image = \"rootfs\"\n");
        std::fs::write(&path, &text).unwrap();
        let s = Scenario::load(&path).unwrap();
        assert_eq!(s.image, ImageSpec::Directory(dir.0.join("rootfs")));
        assert_eq!(s.text, text);
        assert_eq!(s.origin, path.display().to_string());

        std::fs::write(&path, "name = \"t\"\nbackends = [\"kvm\"]\ncounts = [1]\n").unwrap();
        let msg = Scenario::load(&path).unwrap_err().to_string();
        assert_one_line(&msg);
        assert!(
            msg.starts_with(&format!("{}: backends: unknown backend", path.display())),
            "{msg}"
        );
    }

    #[test]
    fn load_missing_file_names_the_path() {
        let msg = Scenario::load(Path::new("scenarios/nope.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "scenario file scenarios/nope.toml: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn newlines_never_reach_a_message() {
        // A quoted key with a newline in it ends up in the toml crate's message.
        let msg = parse_err(&minimal("\"a\\nb\" = 1\n"), &["line 4", "unknown field"]);
        assert_one_line(&msg);
        let msg = Scenario::parse("name = 1\n", "odd\nname.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert_one_line(&msg);
        assert!(msg.starts_with("odd name.toml: "), "{msg}");
        assert_eq!(one_line("a\n  b\r\n\nc"), "a b c");
    }

    #[test]
    fn line_numbers_count_from_one() {
        assert_eq!(line_of("", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
