//! From the raw file to a [`Scenario`]: one small function per section, each checking ranges
//! and rules and building its public type. Every error names the key and what is allowed.

use super::error::ScenarioError;
use super::raw::{
    Int, Num, RawLimits, RawMeasure, RawNamespaces, RawOci, RawScenario, RawUntil, RawVm,
    RawWorkload,
};
use super::{
    Accel, BackendKind, ImageSpec, Limits, Machine, MeasureConfig, Namespaces, OciConfig, Scenario,
    UntilConfig, VmConfig, Workload,
};
use crate::agent::workload::{FORK_MAX, SYSCALLS_BUDGET_MS_DEFAULT, SYSCALLS_BUDGET_MS_MAX};
use crate::security::Profile;
use std::path::{Path, PathBuf};

const NAME_MAX_LEN: usize = 40;
const COUNT_MAX: i64 = 100_000;
/// OCI runtimes the `oci` backend knows how to drive.
pub const OCI_RUNTIMES: &[&str] = &["runc", "crun", "runsc"];
/// gVisor's platforms (`runsc --platform`) a scenario may ask for; the backend checks that the
/// installed runsc offers it (runsc 2022-12 of Debian 12 has ptrace and kvm, newer systrap).
pub const RUNSC_PLATFORMS: &[&str] = &["ptrace", "kvm", "systrap"];
const PARALLELISM_MAX: i64 = 1024;
const REPETITIONS_MAX: i64 = 10_000;
const WARMUP_MAX: i64 = 1000;
const READY_TIMEOUT_MAX_S: f64 = 3600.0;
const MEMORY_MIB_MAX: i64 = 1_048_576;
const CPUS_MAX: f64 = 1024.0;
/// Linux's PID_MAX_LIMIT on 64-bit: no pids.max above it can mean anything.
const PIDS_MAX: i64 = 4_194_304;
/// Largest workload size, in MiB: large enough for any realistic test, small enough that a typo
/// cannot ask every instance for terabytes.
const WORKLOAD_MIB_MAX: i64 = 65536;
/// The longest idle window and KSM wait, seconds.
const WINDOW_MAX_S: f64 = 3600.0;
const VM_MEMORY_MIB_MIN: i64 = 32;
const VM_VCPUS_MAX: i64 = 256;
const VM_PROBE_TIMEOUT_MAX_S: f64 = 600.0;

const IMAGE_ALLOWED: &str = "allowed: \"busybox\", a directory, or a .tar/.tar.gz/.tgz file";

/// The file being validated: what errors name, and what relative paths are relative to.
struct Check<'a> {
    origin: &'a str,
    base_dir: &'a Path,
}

impl Check<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::invalid(self.origin, key, message)
    }

    /// A rule broken by a value of `key`.
    fn broke(&self, key: &str) -> impl FnOnce(Rule) -> ScenarioError + '_ {
        let key = key.to_string();
        move |rule| self.err(&key, rule.to_string())
    }

    /// An integer in lo..=hi, converted to the public type.
    fn ranged(&self, key: &str, value: Int, lo: i64, hi: i64) -> Result<u64, ScenarioError> {
        if (lo..=hi).contains(&value.0) {
            // In range and lo >= 0, so the conversion cannot fail.
            Ok(value.0.unsigned_abs())
        } else {
            Err(self.err(
                key,
                format!("{} is out of range; allowed {lo}..={hi}", value.0),
            ))
        }
    }

    /// A u32 for fields whose maxima are far below u32::MAX.
    fn ranged32(&self, key: &str, value: Int, lo: i64, hi: i64) -> Result<u32, ScenarioError> {
        let v = self.ranged(key, value, lo, hi)?;
        u32::try_from(v)
            .map_err(|_| self.err(key, format!("{v} is out of range; allowed {lo}..={hi}")))
    }

    /// A float in (0, hi]; written so that NaN fails too.
    fn positive(&self, key: &str, value: Num, hi: f64) -> Result<f64, ScenarioError> {
        if value.0 > 0.0 && value.0 <= hi {
            Ok(value.0)
        } else {
            Err(self.err(
                key,
                format!("{} is out of range; allowed > 0 and <= {hi}", value.0),
            ))
        }
    }

    /// [`Check::ranged32`] of an optional key, `default` when absent.
    fn opt32(
        &self,
        key: &str,
        v: Option<Int>,
        lo: i64,
        hi: i64,
        default: u32,
    ) -> Result<u32, ScenarioError> {
        v.map_or(Ok(default), |v| self.ranged32(key, v, lo, hi))
    }
}

/// Validates every section, in the file's documented order (the first error found is the
/// one reported), and builds the scenario.
pub(super) fn validate(
    raw: RawScenario,
    text: &str,
    origin: &str,
    base_dir: &Path,
) -> Result<Scenario, ScenarioError> {
    let c = Check { origin, base_dir };
    validate_name(&raw.name).map_err(c.broke("name"))?;
    let image = image(&c, raw.image.as_deref())?;
    let workload = workload(&c, raw.workload)?;
    let backends = backends(&c, &raw.backends)?;
    let counts = validate_counts(&raw.counts).map_err(c.broke("counts"))?;
    let parallelism = match raw.parallelism {
        Some(p) => c.ranged32("parallelism", p, 1, PARALLELISM_MAX)?,
        None => default_parallelism(),
    };
    let repetitions = c.opt32("repetitions", raw.repetitions, 1, REPETITIONS_MAX, 1)?;
    let warmup = c.opt32("warmup", raw.warmup, 0, WARMUP_MAX, 1)?;
    let ready_timeout_s = raw
        .ready_timeout_s
        .map(|t| c.positive("ready_timeout_s", t, READY_TIMEOUT_MAX_S))
        .transpose()?
        .unwrap_or(30.0);
    let limits = limits(&c, raw.limits)?;
    let namespaces = namespaces(raw.namespaces);
    let profiles = validate_profiles(raw.security).map_err(c.broke("security"))?;
    let oci = oci(&c, raw.oci, &backends)?;
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
        security: profiles[0],
        profiles,
        oci,
        measure: measure(&c, raw.measure)?,
        until: raw.until.map(|u| until(&c, u)).transpose()?,
        vm: raw
            .vm
            .map_or_else(|| Ok(VmConfig::default()), |v| vm(&c, v))?,
        text: text.to_owned(),
        origin: origin.to_owned(),
    })
}

/// `image`: "busybox" (the default), or a directory or tarball that exists now.
fn image(c: &Check, given: Option<&str>) -> Result<ImageSpec, ScenarioError> {
    match given {
        None | Some("busybox") => Ok(ImageSpec::Busybox),
        Some(given) => resolve_image(given, c.base_dir).map_err(c.broke("image")),
    }
}

/// `workload`: idle by default; each sized form within its own range.
fn workload(c: &Check, raw: Option<RawWorkload>) -> Result<Workload, ScenarioError> {
    Ok(match raw {
        None | Some(RawWorkload::Idle) => Workload::Idle,
        Some(RawWorkload::Probe) => Workload::Probe,
        Some(RawWorkload::Syscalls(ms)) => Workload::Syscalls {
            budget_ms: match ms {
                None => SYSCALLS_BUDGET_MS_DEFAULT as u64,
                Some(ms) => c.ranged("workload.syscalls", Int(ms), 1, SYSCALLS_BUDGET_MS_MAX)?,
            },
        },
        Some(RawWorkload::TouchMemory(mib)) => Workload::TouchMemory {
            mib: c.ranged("workload.touch-memory", Int(mib), 1, WORKLOAD_MIB_MAX)?,
        },
        Some(RawWorkload::WriteFile(mib)) => Workload::WriteFile {
            mib: c.ranged("workload.write-file", Int(mib), 1, WORKLOAD_MIB_MAX)?,
        },
        Some(RawWorkload::Fork(count)) => Workload::Fork {
            count: c.ranged("workload.fork", Int(count), 1, FORK_MAX)?,
        },
    })
}

/// `backends`: a non-empty list of known backends, each once.
fn backends(c: &Check, names: &[String]) -> Result<Vec<BackendKind>, ScenarioError> {
    let allowed = BackendKind::allowed_names();
    if names.is_empty() {
        return Err(c.err(
            "backends",
            format!("empty; list at least one of: {allowed}"),
        ));
    }
    let mut backends = Vec::with_capacity(names.len());
    for name in names {
        let kind = BackendKind::from_name(name).ok_or_else(|| {
            c.err(
                "backends",
                format!("unknown backend {name:?}; allowed: {allowed}"),
            )
        })?;
        if backends.contains(&kind) {
            return Err(c.err(
                "backends",
                format!("{name:?} is listed twice; each backend may appear once"),
            ));
        }
        backends.push(kind);
    }
    Ok(backends)
}

/// `[limits]`: each limit optional, each within its range.
fn limits(c: &Check, raw: Option<RawLimits>) -> Result<Limits, ScenarioError> {
    let Some(l) = raw else {
        return Ok(Limits::default());
    };
    Ok(Limits {
        memory_mib: l
            .memory_mib
            .map(|v| c.ranged("limits.memory_mib", v, 1, MEMORY_MIB_MAX))
            .transpose()?,
        cpus: l
            .cpus
            .map(|v| c.positive("limits.cpus", v, CPUS_MAX))
            .transpose()?,
        pids: l
            .pids
            .map(|v| c.ranged("limits.pids", v, 1, PIDS_MAX))
            .transpose()?,
    })
}

/// `[namespaces]`: every type on unless switched off.
fn namespaces(raw: Option<RawNamespaces>) -> Namespaces {
    let d = Namespaces::default();
    let Some(n) = raw else { return d };
    Namespaces {
        pid: n.pid.unwrap_or(d.pid),
        mount: n.mount.unwrap_or(d.mount),
        uts: n.uts.unwrap_or(d.uts),
        ipc: n.ipc.unwrap_or(d.ipc),
        net: n.net.unwrap_or(d.net),
        cgroup: n.cgroup.unwrap_or(d.cgroup),
    }
}

/// `[oci]`: a non-empty list of runtimes, each a known name (found on PATH when the run
/// prepares it) or a path to an executable file (relative to the scenario's directory), no
/// runtime twice; gVisor's platform one of [`RUNSC_PLATFORMS`] (whether the installed runsc
/// offers it is the backend's check). `gvisor` among the backends runs runsc already, so
/// runsc may not be listed here too.
fn oci(
    c: &Check,
    raw: Option<RawOci>,
    backends: &[BackendKind],
) -> Result<OciConfig, ScenarioError> {
    let d = OciConfig::default();
    let Some(o) = raw else { return Ok(d) };
    let given = o.runtimes.unwrap_or_else(|| d.runtimes.clone());
    let allowed = format!(
        "allowed: a list of {}, or paths to an executable file",
        OCI_RUNTIMES.join(", ")
    );
    if given.is_empty() {
        return Err(c.err("oci.runtimes", format!("empty; {allowed}")));
    }
    let mut runtimes: Vec<String> = Vec::with_capacity(given.len());
    for r in &given {
        let rt = oci_runtime(c, r, &allowed)?;
        let name = super::runtime_name(&rt);
        if runtimes.iter().any(|x| super::runtime_name(x) == name) {
            return Err(c.err(
                "oci.runtimes",
                format!("runtime {name:?} is listed twice; each runtime may appear once"),
            ));
        }
        if super::is_runsc(&rt) && backends.contains(&BackendKind::Gvisor) {
            return Err(c.err(
                "oci.runtimes",
                format!(
                    "{r:?} is gVisor, which the gvisor backend runs already; list it once \
                     (backends = [\"gvisor\"] or runsc here)"
                ),
            ));
        }
        runtimes.push(rt);
    }
    let runsc_platform = match o.runsc_platform {
        None => d.runsc_platform,
        Some(p) if RUNSC_PLATFORMS.contains(&p.as_str()) => p,
        Some(p) => {
            return Err(c.err(
                "oci.runsc_platform",
                format!(
                    "{p:?} is not allowed; allowed: {}",
                    RUNSC_PLATFORMS.join(", ")
                ),
            ));
        }
    };
    Ok(OciConfig {
        runtimes,
        runsc_platform,
    })
}

/// One `[oci] runtimes` entry: a known name as it is, or a path (anything with a `/`) that is
/// an executable regular file now, whose file name can label rows and container ids.
fn oci_runtime(c: &Check, r: &str, allowed: &str) -> Result<String, ScenarioError> {
    use std::os::unix::fs::PermissionsExt;
    if !r.contains('/') {
        return if OCI_RUNTIMES.contains(&r) {
            Ok(r.to_string())
        } else {
            Err(c.err("oci.runtimes", format!("unknown runtime {r:?}; {allowed}")))
        };
    }
    let path = c.base_dir.join(r);
    let shown = path.display();
    let meta = std::fs::metadata(&path)
        .map_err(|e| c.err("oci.runtimes", format!("{shown}: {e}; {allowed}")))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(c.err(
            "oci.runtimes",
            format!("{shown} is not an executable file; {allowed}"),
        ));
    }
    let rt = path.display().to_string();
    let name = super::runtime_name(&rt);
    let token = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
    if !token {
        return Err(c.err(
            "oci.runtimes",
            format!(
                "{shown}: the file name {name:?} labels rows and container ids; allowed: \
                 letters, digits, '_', '.', '-'"
            ),
        ));
    }
    Ok(rt)
}

/// `[measure]`: switches and windows; an idle window of 0 turns idle CPU off.
fn measure(c: &Check, raw: Option<RawMeasure>) -> Result<MeasureConfig, ScenarioError> {
    let d = MeasureConfig::default();
    let Some(m) = raw else { return Ok(d) };
    let idle_window_s = match m.idle_window_s {
        None => d.idle_window_s,
        Some(Num(0.0)) => 0.0,
        Some(w) => c.positive("measure.idle_window_s", w, WINDOW_MAX_S)?,
    };
    Ok(MeasureConfig {
        memory: m.memory.unwrap_or(d.memory),
        drop_caches: m.drop_caches.unwrap_or(d.drop_caches),
        idle_window_s,
        idle_adaptive: m.idle_adaptive.unwrap_or(d.idle_adaptive),
        ksm: m.ksm.unwrap_or(d.ksm),
        ksm_timeout_s: m
            .ksm_timeout_s
            .map(|t| c.positive("measure.ksm_timeout_s", t, WINDOW_MAX_S))
            .transpose()?
            .unwrap_or(d.ksm_timeout_s),
        settle_timeout_s: m
            .settle_timeout_s
            .map(|t| c.positive("measure.settle_timeout_s", t, WINDOW_MAX_S))
            .transpose()?
            .unwrap_or(d.settle_timeout_s),
    })
}

/// `[until]`: step and max as counts are, the floor as a memory size (0 allowed).
fn until(c: &Check, u: RawUntil) -> Result<UntilConfig, ScenarioError> {
    Ok(UntilConfig {
        step: c.ranged32("until.step", u.step, 1, COUNT_MAX)?,
        max: c.ranged32("until.max", u.max, 1, COUNT_MAX)?,
        mem_available_floor_mib: c.ranged(
            "until.mem_available_floor_mib",
            u.mem_available_floor_mib,
            0,
            MEMORY_MIB_MAX,
        )?,
    })
}

/// `[vm]`: the guest's files (which must exist), accelerator, machine, size and own counts.
fn vm(c: &Check, v: RawVm) -> Result<VmConfig, ScenarioError> {
    let d = VmConfig::default();
    Ok(VmConfig {
        kernel: vm_file(c, "vm.kernel", v.kernel)?,
        initrd: vm_file(c, "vm.initrd", v.initrd)?,
        accel: vm_accel(c, v.accel.as_deref())?,
        machine: vm_machine(c, v.machine.as_deref())?,
        memory_mib: v
            .memory_mib
            .map(|m| c.ranged("vm.memory_mib", m, VM_MEMORY_MIB_MIN, MEMORY_MIB_MAX))
            .transpose()?
            .unwrap_or(d.memory_mib),
        vcpus: c.opt32("vm.vcpus", v.vcpus, 1, VM_VCPUS_MAX, d.vcpus)?,
        probe_timeout_s: v
            .probe_timeout_s
            .map(|t| c.positive("vm.probe_timeout_s", t, VM_PROBE_TIMEOUT_MAX_S))
            .transpose()?
            .unwrap_or(d.probe_timeout_s),
        counts: v
            .counts
            .map(|counts| validate_counts(&counts).map_err(c.broke("vm.counts")))
            .transpose()?,
    })
}

/// A kernel or initrd path (relative to the scenario's directory) that is a file now.
fn vm_file(c: &Check, key: &str, p: Option<String>) -> Result<Option<PathBuf>, ScenarioError> {
    let Some(p) = p else { return Ok(None) };
    let path = c.base_dir.join(&p);
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err(c.err(
            key,
            format!(
                "{} is not a file (allowed: a path to a kernel or initrd image)",
                path.display()
            ),
        ))
    }
}

fn vm_accel(c: &Check, given: Option<&str>) -> Result<Accel, ScenarioError> {
    match given {
        None | Some("auto") => Ok(Accel::Auto),
        Some("kvm") => Ok(Accel::Kvm),
        Some("tcg") => Ok(Accel::Tcg),
        Some(other) => Err(c.err(
            "vm.accel",
            format!("{other:?} is not allowed; allowed: auto, kvm, tcg"),
        )),
    }
}

fn vm_machine(c: &Check, given: Option<&str>) -> Result<Machine, ScenarioError> {
    match given {
        None | Some("q35") => Ok(Machine::Q35),
        Some("microvm") => Ok(Machine::Microvm),
        Some(other) => Err(c.err(
            "vm.machine",
            format!("{other:?} is not allowed; allowed: q35, microvm"),
        )),
    }
}

const PROFILES_ALLOWED: &str = "allowed: \"docker\", \"runc\", \"none\", or a list of them";
const NAME_RULE: &str =
    "allowed: 1 to 40 characters of a-z, 0-9, '_' and '-', starting with a-z or 0-9";

/// A rule a value of one key broke; the caller adds the file and the key.
#[derive(Debug, thiserror::Error)]
enum Rule {
    #[error("empty; {PROFILES_ALLOWED}")]
    NoProfile,
    #[error("{0} is not a profile; {PROFILES_ALLOWED}")]
    NotProfile(toml::Value),
    #[error("empty; list at least one N, each in 1..={COUNT_MAX}")]
    NoCount,
    #[error("N = {0} is out of range; allowed 1..={COUNT_MAX}")]
    CountRange(i64),
    /// `shown` is the value as the file's reader knows it (`"docker"`, `N = 4`).
    #[error("{shown} is listed twice; each {what} may appear once")]
    Twice { shown: String, what: &'static str },
    #[error("{0:?} is not a valid name; {NAME_RULE}")]
    Name(String),
    #[error("empty path ({IMAGE_ALLOWED})")]
    EmptyPath,
    #[error("{} does not exist ({IMAGE_ALLOWED})", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is a file without a .tar/.tar.gz/.tgz suffix ({IMAGE_ALLOWED})", .0.display())]
    NotTarball(PathBuf),
    #[error("{} is neither a directory nor a regular file ({IMAGE_ALLOWED})", .0.display())]
    NotFileOrDir(PathBuf),
}

/// `security`: a profile name or a non-empty list of distinct ones; default `docker`.
fn validate_profiles(raw: Option<toml::Value>) -> Result<Vec<Profile>, Rule> {
    let names: Vec<toml::Value> = match raw {
        None => return Ok(vec![Profile::default()]),
        Some(toml::Value::Array(a)) if a.is_empty() => return Err(Rule::NoProfile),
        Some(toml::Value::Array(a)) => a,
        Some(v) => vec![v],
    };
    let mut out: Vec<Profile> = Vec::new();
    for v in names {
        let Some(p) = v.as_str().and_then(Profile::from_name) else {
            return Err(Rule::NotProfile(v));
        };
        if out.contains(&p) {
            return Err(Rule::Twice {
                shown: format!("{:?}", p.as_str()),
                what: "profile",
            });
        }
        out.push(p);
    }
    Ok(out)
}

/// A list of N: non-empty, each in 1..=COUNT_MAX, none twice (a repeated N would measure the
/// same point twice under the same result directory).
fn validate_counts(raw: &[Int]) -> Result<Vec<u32>, Rule> {
    if raw.is_empty() {
        return Err(Rule::NoCount);
    }
    let mut counts = Vec::with_capacity(raw.len());
    for &n in raw {
        let v = u32::try_from(n.0)
            .ok()
            .filter(|&v| (1..=COUNT_MAX).contains(&i64::from(v)))
            .ok_or(Rule::CountRange(n.0))?;
        if counts.contains(&v) {
            return Err(Rule::Twice {
                shown: format!("N = {v}"),
                what: "N",
            });
        }
        counts.push(v);
    }
    Ok(counts)
}

/// The name ends up in directory and cgroup names, hence the conservative alphabet.
fn validate_name(name: &str) -> Result<(), Rule> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= NAME_MAX_LEN {
        Ok(())
    } else {
        Err(Rule::Name(name.to_string()))
    }
}

/// "busybox" is handled by the caller; anything else is a path that must exist now, so a typo
/// fails before any instance is launched rather than in the middle of a run.
fn resolve_image(given: &str, base_dir: &Path) -> Result<ImageSpec, Rule> {
    if given.is_empty() {
        return Err(Rule::EmptyPath);
    }
    let path = base_dir.join(given);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rule::Missing(path)),
        Err(source) => return Err(Rule::Io { path, source }),
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
        (true, false) => Err(Rule::NotTarball(path)),
        (false, _) => Err(Rule::NotFileOrDir(path)),
    }
}

/// One launch in flight per CPU keeps the host busy without measuring run-queue contention;
/// clamped so a very large machine still yields a valid value.
pub(super) fn default_parallelism() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cpus.clamp(1, PARALLELISM_MAX as usize)).unwrap_or(1)
}
