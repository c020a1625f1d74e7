//! Cgroups on v1, hybrid and v2 hosts, detected at run time from /proc/self/mountinfo.
//!
//! Written by hand rather than with cgroups-rs: isobench needs exactly the memory, cpu, cpuacct
//! and pids controllers, must treat "hybrid" (v1 controllers plus a controller-less cgroup2
//! mount) as v1, and creates one cgroup per instance on the launch path, where cgroups-rs would
//! create a directory in every mounted hierarchy.

use crate::security::devices::{DeviceError, DeviceProgram, DeviceRule};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resource limits applied to every instance; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory_mib: Option<u64>,
    /// CPU time as a fraction of one CPU (0.5 = half a CPU).
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
}

/// The directory under each hierarchy root that holds every isobench run.
pub const TOP: &str = "isobench";

/// v1 controllers isobench uses; on v2 the same names minus cpuacct (folded into cpu).
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids"];
const V2_CONTROLLERS: &[&str] = &["memory", "cpu", "pids"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Pure cgroup v2 (unified hierarchy at /sys/fs/cgroup).
    V2,
    /// cgroup v1 controllers only.
    V1,
    /// v1 controllers plus a cgroup2 mount (usually without controllers).
    Hybrid,
}

impl CgroupMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            CgroupMode::V2 => "v2",
            CgroupMode::V1 => "v1",
            CgroupMode::Hybrid => "hybrid",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no cgroup filesystem is mounted (read /proc/self/mountinfo); mount cgroup2 at /sys/fs/cgroup"
    )]
    NotMounted,
    #[error("cgroup controller {0} is not available on this host")]
    MissingController(&'static str),
    /// The v1 devices controller shares a hierarchy with memory, cpu or pids: instances could
    /// not share one devices cgroup there without sharing those too.
    #[error(
        "the v1 devices controller is mounted together with another controller at {0}; isobench needs it in a hierarchy of its own (as systemd and Docker mount it)"
    )]
    DevicesCoMounted(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// rmdir kept failing with EBUSY for the whole allowance (every retry killed what was
    /// left inside).
    #[error(
        "cgroup {path} still busy after {} of retries (processes left in it?)",
        crate::deadline::seconds(*.waited)
    )]
    Busy { path: PathBuf, waited: Duration },
    #[error(transparent)]
    Devices(#[from] DeviceError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cgroup hierarchies of this host as isobench uses them.
#[derive(Debug, Clone)]
pub struct CgroupHost {
    pub mode: CgroupMode,
    /// The cgroup2 mount, if any (in hybrid mode it carries no controllers we use).
    pub unified: Option<PathBuf>,
    /// For v1/hybrid: (controller, mount point). For v2: empty.
    pub v1: Vec<(&'static str, PathBuf)>,
    /// The v1 devices hierarchy, where device allow-lists are enforced on v1 and hybrid hosts
    /// (only instances of a confining security profile get a directory in it).
    pub devices_v1: Option<PathBuf>,
}

impl CgroupHost {
    pub fn detect() -> Result<CgroupHost, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        Self::from_mountinfo(&text)
    }

    /// Parses mountinfo text (see proc(5)): field 5 is the mount point; after the ` - `
    /// separator come fstype, source and super options, where v1 lists its controllers.
    pub fn from_mountinfo(text: &str) -> Result<CgroupHost, CgroupError> {
        let mut unified = None;
        let mut v1: Vec<(&'static str, PathBuf)> = Vec::new();
        let mut devices_v1 = None;
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut r = right.split(' ');
            let (fstype, _source, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
            match fstype {
                Some("cgroup2") if unified.is_none() => {
                    unified = Some(PathBuf::from(unescape(mount_point)))
                }
                Some("cgroup") => {
                    if devices_v1.is_none() && opts.split(',').any(|o| o == "devices") {
                        devices_v1 = Some(PathBuf::from(unescape(mount_point)));
                    }
                    for c in V1_CONTROLLERS {
                        if opts.split(',').any(|o| o == *c) && !v1.iter().any(|(k, _)| k == c) {
                            v1.push((c, PathBuf::from(unescape(mount_point))));
                        }
                    }
                }
                _ => {}
            }
        }
        let mode = match (&unified, v1.is_empty()) {
            (Some(_), true) => CgroupMode::V2,
            (Some(_), false) => CgroupMode::Hybrid,
            (None, false) => CgroupMode::V1,
            (None, true) => return Err(CgroupError::NotMounted),
        };
        if mode == CgroupMode::V2 {
            devices_v1 = None;
        }
        Ok(CgroupHost {
            mode,
            unified,
            v1,
            devices_v1,
        })
    }

    /// Controllers isobench can use here. On v2 the root's cgroup.controllers lists every
    /// controller the kernel has (cpuset, io, hugetlb, ...): only the ones isobench uses are
    /// kept, as the v1 branch does, so meta.json and doctor name the same set in every mode.
    pub fn controllers(&self) -> Vec<String> {
        match self.mode {
            CgroupMode::V2 => {
                let root = self
                    .unified
                    .as_deref()
                    .unwrap_or(Path::new("/sys/fs/cgroup"));
                std::fs::read_to_string(root.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter(|c| V2_CONTROLLERS.contains(c))
                    .map(str::to_string)
                    .collect()
            }
            _ => self.v1.iter().map(|(c, _)| c.to_string()).collect(),
        }
    }

    /// The distinct hierarchy roots an instance gets a directory in.
    pub fn roots(&self) -> Vec<PathBuf> {
        match self.mode {
            CgroupMode::V2 => self.unified.iter().cloned().collect(),
            _ => {
                let mut roots: Vec<PathBuf> = Vec::new();
                for (_, p) in &self.v1 {
                    if !roots.contains(p) {
                        roots.push(p.clone());
                    }
                }
                roots
            }
        }
    }

    /// Creates `isobench/<run_id>` in every hierarchy (and, on v2, delegates the controllers
    /// down to it, since v2 only lets a cgroup use what its parent enabled).
    pub fn create_run(&self, run_id: &str) -> Result<RunCgroups, CgroupError> {
        let mut dirs = Vec::new();
        for root in self.roots() {
            let top = root.join(TOP);
            let run = top.join(run_id);
            make_run_dir(&run)?;
            if self.mode == CgroupMode::V2 {
                let available = self.controllers();
                let wanted: Vec<&str> = V2_CONTROLLERS
                    .iter()
                    .copied()
                    .filter(|c| available.iter().any(|a| a == c))
                    .collect();
                let enable: String = wanted.iter().map(|c| format!("+{c} ")).collect();
                for dir in [root.as_path(), top.as_path()] {
                    let f = dir.join("cgroup.subtree_control");
                    let cur = std::fs::read_to_string(&f).unwrap_or_default();
                    if wanted
                        .iter()
                        .any(|c| !cur.split_whitespace().any(|x| x == *c))
                    {
                        std::fs::write(&f, enable.trim_end()).map_err(io(&f))?;
                    }
                }
                let f = run.join("cgroup.subtree_control");
                std::fs::write(&f, enable.trim_end()).map_err(io(&f))?;
            }
            dirs.push(run);
        }
        // Without them (a descriptor limit reached) every path is walked whole, as before.
        let opened: Option<Vec<OwnedFd>> = dirs.iter().map(|d| open_dir(d).ok()).collect();
        Ok(RunCgroups {
            host: self.clone(),
            dirs,
            opened: opened.map(Arc::new),
            devices: None,
        })
    }

    /// Every cgroup hierarchy mounted on this host (v1 ones of any controller or name, and
    /// cgroup2): OCI runtimes create an instance's cgroup in all of them.
    pub fn all_roots() -> Vec<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v: Vec<PathBuf> = Vec::new();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fstype = right.split(' ').next().unwrap_or("");
            if let (true, Some(mp)) = (
                fstype == "cgroup" || fstype == "cgroup2",
                left.split(' ').nth(4),
            ) {
                let p = PathBuf::from(unescape(mp));
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
        v
    }

    /// Makes `isobench/<run_id>` in every hierarchy mounted here, for a runtime that makes its
    /// instances' cgroups below it in all of them (runc, crun, runsc, LXC, dockerd). Why: the
    /// runtime's own mkdir of `isobench/<run_id>` fails with ENOENT when another run removes
    /// the empty `isobench/` at that moment (seen in a CI run: "runc run failed: ... mkdir
    /// /sys/fs/cgroup/devices/isobench/<run>: no such file or directory"); made here, with the
    /// retry `create_run` has, `isobench/` is not empty while the run lasts. The runtime's
    /// finish (`remove_runtime_cgroups`) and the run's end remove them. On v2 that is
    /// `create_run`'s, controllers delegated down to the run as the runtime expects.
    pub fn hold_run_everywhere(&self, run_id: &str) -> Result<(), CgroupError> {
        if self.mode == CgroupMode::V2 {
            return self.create_run(run_id).map(|_| ());
        }
        for root in Self::all_roots() {
            let run = root.join(TOP).join(run_id);
            make_run_dir(&run)?;
            // v1 cpuset starts a new cgroup with no CPUs and no memory nodes, and nothing can
            // join it (ENOSPC); a runtime fills in what it made itself, not what it found.
            for dir in [root.join(TOP), run] {
                inherit_cpuset(&dir)?;
            }
        }
        Ok(())
    }

    /// Removes `isobench/<run_id>` from every hierarchy (killing what is inside), then the
    /// `isobench` dirs that are left empty.
    pub fn remove_run_everywhere(run_id: &str) -> Result<(), CgroupError> {
        let mut first_err = None;
        for root in Self::all_roots() {
            if let Err(e) = remove_tree(&root.join(TOP).join(run_id), Duration::from_secs(5)) {
                first_err.get_or_insert(e);
            }
            let _ = std::fs::remove_dir(root.join(TOP));
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Every directory in `isobench/` on this host, across hierarchies, as (raw name, path):
    /// what `clean` sees, and validates as run ids before using.
    pub fn run_dirs() -> Vec<(std::ffi::OsString, PathBuf)> {
        let mut out = Vec::new();
        for root in Self::all_roots() {
            if let Ok(rd) = std::fs::read_dir(root.join(TOP)) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        out.push((e.file_name(), e.path()));
                    }
                }
            }
        }
        out
    }

    /// Removes `isobench/` in each hierarchy if it is empty; a busy one belongs to another run.
    pub fn remove_top_if_empty(&self) {
        for root in Self::all_roots() {
            let _ = std::fs::remove_dir(root.join(TOP));
        }
    }
}

/// Makes `isobench/<run-id>` (and `isobench/`) in one hierarchy. Several runs may create and
/// remove `isobench/` at once: retried if a peer removed it in between.
/// `dir` opened to reach what is below it by name (O_PATH: no read, no write), out of the way
/// of a launch's descriptor copy (host::fd).
fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    Ok(crate::host::fd::park(fd))
}

fn make_run_dir(run: &Path) -> Result<(), CgroupError> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(run) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => return Err(io(run)(e)),
        }
    }
}

/// In a v1 cpuset hierarchy, gives `dir` its parent's `cpuset.cpus` and `cpuset.mems` where
/// they are empty (as runc does for the cgroups it makes), and sets `cgroup.clone_children`
/// so that cgroups made below it start with them too (LXC's monitor cgroup relies on that,
/// as LXC sets it on the parents it makes itself); elsewhere nothing.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    if dir.join("cpuset.cpus").exists() {
        let f = dir.join("cgroup.clone_children");
        std::fs::write(&f, "1").map_err(io(&f))?;
    }
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(cur) = std::fs::read_to_string(&own) else {
            continue;
        };
        if !cur.trim().is_empty() {
            continue;
        }
        let Some(parent) = dir.parent() else {
            continue;
        };
        let from = parent.join(file);
        let value = std::fs::read_to_string(&from).map_err(io(&from))?;
        std::fs::write(&own, value.trim()).map_err(io(&own))?;
    }
    Ok(())
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `isobench/<run-id>` in every hierarchy.
#[derive(Debug)]
pub struct RunCgroups {
    host: CgroupHost,
    dirs: Vec<PathBuf>,
    /// `dirs`, open: see [`At`].
    opened: Option<Arc<Vec<OwnedFd>>>,
    devices: Option<RunDevices>,
}

/// An instance's cgroup directories reached from their open parents: mkdirat and openat walk
/// one or two names, not the whole path through cgroupfs, whose every component is
/// revalidated under the hierarchy's lock, the lock each concurrent launch's mkdir takes to
/// write. A launch opens seven control files and makes three directories on v1.
#[derive(Debug, Clone)]
struct At {
    /// The run's directory in each hierarchy, one per entry of `InstanceCgroup::dirs`.
    runs: Arc<Vec<OwnedFd>>,
    /// The instance's directory name in each.
    name: String,
    /// The shared cgroups it joins, one per entry of `InstanceCgroup::joined`.
    joined: Option<Arc<Vec<OwnedFd>>>,
}

/// Where a controller's files are: the instance's own directory `i` or the shared one `i`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Own(usize),
    Joined(usize),
}

/// How a run's instances get their device allow-list.
#[derive(Debug)]
enum RunDevices {
    /// v1: one cgroup `isobench/<run-id>/devices` in the devices hierarchy, with
    /// `devices.deny` = all and one `devices.allow` line per rule, written once; every instance
    /// joins it. The kernel checks a device access against the cgroup the process is in, so
    /// one shared allow-list confines each instance exactly as one of its own would (as runc
    /// makes per container); what it saves is a cgroup and nine control-file writes per
    /// launch, 9% of the launching thread's CPU at N = 1000 on this host.
    V1 {
        /// `isobench/<run-id>` in the devices hierarchy.
        run_dir: PathBuf,
        /// The shared cgroup below it.
        dir: PathBuf,
        /// `dir`, open (see [`At`]).
        opened: Option<Arc<Vec<OwnedFd>>>,
    },
    /// v2: one eBPF program per run, attached to each instance's cgroup.
    V2 { program: DeviceProgram },
}

/// The v1 devices cgroup a run's instances share (below `isobench/<run-id>`).
const SHARED_DEVICES: &str = "devices";

impl RunCgroups {
    pub fn mode(&self) -> CgroupMode {
        self.host.mode
    }

    /// Makes every instance created from now on get the device allow-list `rules`: the v1
    /// devices controller, or on v2 an eBPF device program loaded here once.
    pub fn confine_devices(
        mut self,
        run_id: &str,
        rules: &'static [DeviceRule],
    ) -> Result<RunCgroups, CgroupError> {
        self.devices = Some(match (&self.host.mode, &self.host.devices_v1) {
            (CgroupMode::V2, _) => RunDevices::V2 {
                program: DeviceProgram::load(rules).map_err(CgroupError::Devices)?,
            },
            (_, Some(mount)) if self.host.roots().contains(mount) => {
                return Err(CgroupError::DevicesCoMounted(mount.clone()));
            }
            (_, Some(mount)) => {
                let run_dir = mount.join(TOP).join(run_id);
                make_run_dir(&run_dir)?;
                let dir = run_dir.join(SHARED_DEVICES);
                // Another peer of this run (another security profile) may have left it
                // behind: it is the run's, and its list is written again below.
                match std::fs::create_dir(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(io(&dir)(e));
                    }
                    _ => {}
                }
                // Not in `dirs`: instances make no directory of their own there. `remove`
                // removes the run's devices dir with the rest.
                // Before any instance joins it: a cgroup's allow-list only narrows.
                let write = |file: &str, line: &str| {
                    let p = dir.join(file);
                    std::fs::write(&p, line).map_err(io(&p))
                };
                write("devices.deny", "a")?;
                for r in rules {
                    write("devices.allow", &r.v1_line())?;
                }
                let opened = open_dir(&dir).ok().map(|fd| Arc::new(vec![fd]));
                RunDevices::V1 {
                    run_dir,
                    dir,
                    opened,
                }
            }
            (_, None) => return Err(CgroupError::MissingController("devices")),
        });
        Ok(self)
    }

    /// Creates the instance's cgroup with its limits written before any process joins it.
    pub fn create_instance(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<InstanceCgroup, CgroupError> {
        let mut cg = InstanceCgroup {
            mode: self.host.mode,
            dirs: self.dirs.iter().map(|d| d.join(name)).collect(),
            joined: Vec::new(),
            v1: self.host.v1.clone(),
            at: self.opened.as_ref().map(|runs| At {
                runs: runs.clone(),
                name: name.to_string(),
                joined: None,
            }),
        };
        if let Some(RunDevices::V1 { dir, opened, .. }) = &self.devices
            && let Some(mount) = &self.host.devices_v1
        {
            cg.v1.push(("devices", mount.clone()));
            cg.joined.push(dir.clone());
            match (&mut cg.at, opened) {
                (Some(at), Some(fds)) => at.joined = Some(fds.clone()),
                _ => cg.at = None,
            }
        }
        for (i, d) in cg.dirs.iter().enumerate() {
            match &cg.at {
                Some(at) => rustix::fs::mkdirat(
                    &at.runs[i],
                    at.name.as_str(),
                    rustix::fs::Mode::from_raw_mode(0o755),
                )
                .map_err(std::io::Error::from),
                None => std::fs::create_dir(d),
            }
            .map_err(io(d))?;
        }
        if let Err(e) = cg
            .write_limits(limits)
            .and_then(|()| self.apply_devices(&cg))
        {
            let _ = cg.remove(Duration::from_millis(100));
            return Err(e);
        }
        Ok(cg)
    }

    /// Attaches the run's device program to a new instance's cgroup (v2), before any process
    /// joins it; on v1 the instance joins the run's shared devices cgroup instead.
    fn apply_devices(&self, cg: &InstanceCgroup) -> Result<(), CgroupError> {
        match &self.devices {
            // v1: the shared cgroup has the list; the instance joins it with the others.
            None | Some(RunDevices::V1 { .. }) => Ok(()),
            Some(RunDevices::V2 { program }) => {
                let dir = cg.dirs.first().ok_or(CgroupError::NotMounted)?;
                program.attach(dir).map_err(CgroupError::Devices)
            }
        }
    }

    /// The kernel id of the run's eBPF device program (v2), to recognise it in read-backs.
    pub fn device_program_id(&self) -> Option<u32> {
        match &self.devices {
            Some(RunDevices::V2 { program }) => Some(program.id),
            _ => None,
        }
    }

    /// Kills whatever is left in the run's cgroups, then removes them (deepest first).
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        let devices = match &self.devices {
            Some(RunDevices::V1 { run_dir, .. }) => Some(run_dir),
            _ => None,
        };
        for d in self.dirs.iter().chain(devices) {
            if let Err(e) = remove_tree(d, Duration::from_secs(2)) {
                first_err.get_or_insert(e);
            }
        }
        self.host.remove_top_if_empty();
        first_err.map_or(Ok(()), Err)
    }
}

impl InstanceCgroup {
    /// The cgroup `isobench/<run_id>/<name>` that someone else made (an OCI runtime), in the
    /// hierarchies isobench reads (memory, cpu, cpuacct, pids). Not removed by isobench's own
    /// teardown calls unless asked: its maker removes it.
    pub fn existing(host: &CgroupHost, run_id: &str, name: &str) -> InstanceCgroup {
        let mut v1 = host.v1.clone();
        let mut roots = host.roots();
        if let Some(d) = &host.devices_v1 {
            v1.push(("devices", d.clone()));
            if !roots.contains(d) {
                roots.push(d.clone());
            }
        }
        InstanceCgroup {
            mode: host.mode,
            dirs: roots
                .iter()
                .map(|r| r.join(TOP).join(run_id).join(name))
                .collect(),
            joined: Vec::new(),
            v1,
            at: None,
        }
    }
}

/// One instance's cgroup, a directory in each hierarchy.
#[derive(Debug)]
pub struct InstanceCgroup {
    mode: CgroupMode,
    /// The instance's own directories: made for it and removed with it.
    dirs: Vec<PathBuf>,
    /// Cgroups it joins that belong to its run (v1's shared devices cgroup): joined, read,
    /// never removed with the instance.
    joined: Vec<PathBuf>,
    v1: Vec<(&'static str, PathBuf)>,
    /// `dirs` and `joined` reached from open parents (instances isobench makes).
    at: Option<At>,
}

impl InstanceCgroup {
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The directory that holds `controller`'s files for this instance.
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        self.slot_for(controller).map(|s| self.path_of(s))
    }

    fn slot_for(&self, controller: &str) -> Option<Slot> {
        match self.mode {
            CgroupMode::V2 => (!self.dirs.is_empty()).then_some(Slot::Own(0)),
            _ => {
                let (_, mount) = self.v1.iter().find(|(c, _)| *c == controller)?;
                let own = self.dirs.iter().position(|d| d.starts_with(mount));
                own.map(Slot::Own).or_else(|| {
                    let j = self.joined.iter().position(|d| d.starts_with(mount));
                    j.map(Slot::Joined)
                })
            }
        }
    }

    fn path_of(&self, slot: Slot) -> &Path {
        match slot {
            Slot::Own(i) => &self.dirs[i],
            Slot::Joined(i) => &self.joined[i],
        }
    }

    /// The own and joined directories, in that order.
    fn slots(&self) -> impl Iterator<Item = Slot> {
        let own = (0..self.dirs.len()).map(Slot::Own);
        own.chain((0..self.joined.len()).map(Slot::Joined))
    }

    /// `file` in the directory of `slot`, opened for writing (close-on-exec).
    fn open_write(&self, slot: Slot, file: &str) -> Result<OwnedFd, CgroupError> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let opened = match (&self.at, slot) {
            (Some(at), Slot::Own(i)) => rustix::fs::openat(
                &at.runs[i],
                format!("{}/{file}", at.name),
                flags,
                Mode::empty(),
            ),
            (
                Some(At {
                    joined: Some(j), ..
                }),
                Slot::Joined(i),
            ) => rustix::fs::openat(&j[i], file, flags, Mode::empty()),
            _ => rustix::fs::open(self.path_of(slot).join(file), flags, Mode::empty()),
        };
        opened.map_err(|e| io(&self.path_of(slot).join(file))(e.into()))
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn write(&self, controller: &'static str, file: &str, value: &str) -> Result<(), CgroupError> {
        use std::io::Write;
        let slot = self
            .slot_for(controller)
            .ok_or(CgroupError::MissingController(controller))?;
        let mut f = std::fs::File::from(self.open_write(slot, file)?);
        f.write_all(value.as_bytes())
            .map_err(|e| io(&self.path_of(slot).join(file))(e))
    }

    fn write_limits(&self, limits: &Limits) -> Result<(), CgroupError> {
        const PERIOD_US: u64 = 100_000;
        let v2 = self.mode == CgroupMode::V2;
        if let Some(mib) = limits.memory_mib {
            let bytes = (mib << 20).to_string();
            self.write(
                "memory",
                if v2 {
                    "memory.max"
                } else {
                    "memory.limit_in_bytes"
                },
                &bytes,
            )?;
        }
        if let Some(cpus) = limits.cpus {
            let quota = ((cpus * PERIOD_US as f64).round() as u64).max(1000);
            if v2 {
                self.write("cpu", "cpu.max", &format!("{quota} {PERIOD_US}"))?;
            } else {
                // A new v1 cgroup's period is the kernel's default, 100 ms (PERIOD_US), so
                // only the quota is written: each write re-checks the bandwidth of every
                // cgroup of the cpu hierarchy (tg_set_bandwidth), a cost that grows with N.
                self.write("cpu", "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        if let Some(pids) = limits.pids {
            self.write("pids", "pids.max", &pids.to_string())?;
        }
        Ok(())
    }

    /// The file a single-threaded process writes "0" into to move itself into this cgroup.
    ///
    /// On v1 that is `tasks`: moving the writer's own thread lets the kernel skip the global
    /// cgroup_threadgroup_rwsem (cgroup_procs_write_start: no pid and not a whole threadgroup),
    /// whose write side waits an RCU grace period on hierarchies without favordynmods. Through
    /// `cgroup.procs` the same join took 15 ms p50 after a pause on this host, through `tasks`
    /// 32 us; and the grace period is waited under cgroup_mutex, so concurrent launches queue
    /// behind it. For a process with one thread, moving its thread moves the process. v2 has
    /// no `tasks` in a domain cgroup: `cgroup.procs` (the container avoids the write there with
    /// CLONE_INTO_CGROUP).
    pub fn self_join_file(&self) -> &'static str {
        match self.mode {
            CgroupMode::V2 => "cgroup.procs",
            _ => "tasks",
        }
    }

    /// A pre-exec step that moves the calling process into this cgroup (writing "0" to
    /// [`Self::self_join_file`] moves the writer itself), so that everything it allocates
    /// after exec is charged here. The caller must be single-threaded, as a child between
    /// fork and exec is. Async-signal-safe: the paths are built now, before any fork.
    pub fn join_step(&self) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
        use std::os::unix::ffi::OsStrExt;
        let file = self.self_join_file();
        let procs: Vec<std::ffi::CString> = self
            .dirs
            .iter()
            .chain(&self.joined)
            .filter_map(|d| std::ffi::CString::new(d.join(file).as_os_str().as_bytes()).ok())
            .collect();
        move || {
            for p in &procs {
                // SAFETY: open/write/close on a NUL-terminated path built before the fork.
                unsafe {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                        let e = std::io::Error::last_os_error();
                        if fd >= 0 {
                            libc::close(fd);
                        }
                        return Err(e);
                    }
                    libc::close(fd);
                }
            }
            Ok(())
        }
    }

    /// [`Self::self_join_file`] of every hierarchy, opened for writing (close-on-exec): a
    /// single-threaded process that inherits them writes "0" into each to move itself in
    /// (container/child.rs), without building a path or allocating after its fork.
    pub fn open_procs(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        let file = self.self_join_file();
        self.slots().map(|s| self.open_write(s, file)).collect()
    }

    /// The v2 cgroup's directory, opened for clone3's CLONE_INTO_CGROUP (the child is born in
    /// it: no migration at all). None on v1 and hybrid hosts, whose controllers are v1.
    pub fn open_v2_dir(&self) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        if self.mode != CgroupMode::V2 {
            return Ok(None);
        }
        let Some(d) = self.dirs.first() else {
            return Ok(None);
        };
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(d)
            .map(|f| Some(std::os::fd::OwnedFd::from(f)))
            .map_err(io(d))
    }

    /// Moves `pid` into the instance's cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let s = pid.to_string();
        for d in self.dirs.iter().chain(&self.joined) {
            let p = d.join("cgroup.procs");
            std::fs::write(&p, &s).map_err(io(&p))?;
        }
        Ok(())
    }

    /// Reads a control file of `controller` (for reports and tests).
    pub fn read(&self, controller: &'static str, file: &str) -> Result<String, CgroupError> {
        let dir = self
            .dir_for(controller)
            .ok_or(CgroupError::MissingController(controller))?;
        let p = dir.join(file);
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(io(&p))
    }

    /// Removes the cgroup, killing anything still inside; rmdir is retried while the kernel
    /// finishes reaping (EBUSY), up to `wait`.
    pub fn remove(&self, wait: Duration) -> Result<(), CgroupError> {
        let mut first_err = None;
        for d in &self.dirs {
            if let Err(e) = remove_tree(d, wait) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Pids listed in a cgroup directory's cgroup.procs (not recursive).
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

impl CgroupHost {
    /// At a runtime's finish (runc, crun, runsc, LXC, Docker): removes what is left of the
    /// cgroups it made for the run's instances (`rels`, relative to every hierarchy root), and
    /// `isobench/<run-id>` itself in the hierarchies our own containers do not use (the runtime
    /// made it there); elsewhere other backends of the run may share it, and the run's end
    /// removes it. Returns what could not be removed.
    pub fn remove_runtime_cgroups(
        &self,
        run_id: &str,
        rels: &[PathBuf],
        wait: Duration,
    ) -> Vec<CgroupError> {
        let mut errs = Vec::new();
        let ours = self.roots();
        for root in CgroupHost::all_roots() {
            for rel in rels {
                if let Err(e) = remove_tree(&root.join(rel), wait) {
                    errs.push(e);
                }
            }
            if !ours.contains(&root) {
                let top = root.join(TOP);
                let _ = std::fs::remove_dir(top.join(run_id));
                let _ = std::fs::remove_dir(&top);
            }
        }
        errs
    }
}

/// Kills every process in `dir` and its children cgroups, then removes them deepest first,
/// within `wait` for the whole tree (an error says how long it waited in total).
pub fn remove_tree(dir: &Path, wait: Duration) -> Result<(), CgroupError> {
    remove_tree_with(dir, Instant::now(), wait, true)
}

/// Removes `dir` and its children cgroups deepest first, within `wait` for the whole tree,
/// and never signals anything in them: for `clean`, which kills only processes it proved are
/// a dead run's own.
pub fn remove_empty_tree(dir: &Path, wait: Duration) -> Result<(), CgroupError> {
    remove_tree_with(dir, Instant::now(), wait, false)
}

fn remove_tree_with(
    dir: &Path,
    start: Instant,
    wait: Duration,
    kill: bool,
) -> Result<(), CgroupError> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree_with(&e.path(), start, wait, kill)?;
            }
        }
    }
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                for pid in procs(dir).into_iter().filter(|_| kill) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if start.elapsed() >= wait {
                    return Err(CgroupError::Busy {
                        path: dir.to_path_buf(),
                        waited: start.elapsed(),
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(io(dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid shared:16 - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
";
    const V2: &str = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn hybrid_is_detected_and_combined_mounts_are_one_root() {
        let h = CgroupHost::from_mountinfo(HYBRID).unwrap();
        assert_eq!(h.mode, CgroupMode::Hybrid);
        assert_eq!(
            h.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            h.roots().len(),
            3,
            "cpu,cpuacct share one hierarchy: {:?}",
            h.roots()
        );
        let mut c = h.controllers();
        c.sort();
        assert_eq!(c, ["cpu", "cpuacct", "memory", "pids"]);
    }

    #[test]
    fn pure_v2_and_v1_are_detected() {
        let h = CgroupHost::from_mountinfo(V2).unwrap();
        assert_eq!(h.mode, CgroupMode::V2);
        assert_eq!(h.roots(), vec![PathBuf::from("/sys/fs/cgroup")]);
        let v1: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            CgroupHost::from_mountinfo(&v1).unwrap().mode,
            CgroupMode::V1
        );
        assert!(matches!(
            CgroupHost::from_mountinfo("1 2 3:4 / / rw - ext4 /dev/vda rw\n"),
            Err(CgroupError::NotMounted)
        ));
    }

    #[test]
    fn instance_dirs_map_controllers_to_their_hierarchy() {
        let h = CgroupHost::from_mountinfo(HYBRID).unwrap();
        let run = RunCgroups {
            host: h.clone(),
            dirs: h.roots().iter().map(|r| r.join("isobench/r1")).collect(),
            opened: None,
            devices: None,
        };
        let mut v1 = h.v1.clone();
        v1.push(("devices", PathBuf::from("/sys/fs/cgroup/devices")));
        let cg = InstanceCgroup {
            mode: run.host.mode,
            dirs: run.dirs.iter().map(|d| d.join("i0")).collect(),
            joined: vec![PathBuf::from("/sys/fs/cgroup/devices/isobench/r1/devices")],
            v1,
            at: None,
        };
        assert_eq!(
            cg.dir_for("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/isobench/r1/i0"))
        );
        assert_eq!(
            cg.dir_for("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/isobench/r1/i0"))
        );
        // The run's shared devices cgroup is where the instance's device list is read.
        assert_eq!(
            cg.dir_for("devices"),
            Some(Path::new("/sys/fs/cgroup/devices/isobench/r1/devices"))
        );
        assert_eq!(cg.dir_for("hugetlb"), None);
    }

    #[test]
    fn v2_controllers_are_the_ones_isobench_uses() {
        let root = std::env::temp_dir().join(format!("isobench-cg-v2-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        let h = CgroupHost {
            mode: CgroupMode::V2,
            unified: Some(root.clone()),
            v1: Vec::new(),
            devices_v1: None,
        };
        assert_eq!(h.controllers(), ["cpu", "memory", "pids"]);
        std::fs::write(root.join("cgroup.controllers"), "cpu io\n").unwrap();
        assert_eq!(h.controllers(), ["cpu"], "a missing one is not invented");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn octal_escapes_in_mount_points_are_decoded() {
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
