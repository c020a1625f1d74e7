//! Our own container launcher: namespaces, an overlay root with pivot_root, a fresh /proc,
//! a minimal /dev, OCI default masks and capabilities, and a cgroup with limits written before
//! the workload execs.
//!
//! One clone carries every namespace flag (vfork-like, on a stack of its own: spawn.rs), so
//! the agent is PID 1 of its PID namespace
//! without the double fork `unshare --fork` needs. The mounts live only in the child's mount
//! namespace: they disappear with it, even if the harness is killed.

pub mod child;
pub mod mntns;
pub mod spawn;
pub mod sync;

use super::{
    Backend, Instance, LaunchCause, LaunchError, PrepareError, RunContext, Startup, TeardownError,
};
use crate::agent::reader::{AgentError, AgentReader, WorkloadReport};
use crate::host::cgroup::{CgroupHost, InstanceCgroup, RunCgroups};
use crate::image::{AGENT_IN_ROOTFS, Layers};
use crate::scenario::BackendKind;
use child::{ChildFds, ChildSpec, FsSpec};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use rustix::fs::{Mode, OFlags};
use spawn::Join;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Where every instance's overlay root is mounted, in the instance's own mount namespace:
/// one directory for all of them (each sees only its own mount on it), so a launch makes two
/// directories (upper, work) rather than a mount point of its own too.
const ROOT_MOUNTPOINT: &str = ".root";

/// Instance directories go into this many buckets below `instances` (`b00`/<name>, ...).
/// The buckets are spread over the filesystem's block groups (host::spread_subdirs), and an
/// instance's directory lands in its bucket's group: spread as before, without ext4's
/// search of every group for the emptiest one at each instance's mkdir (find_group_orlov:
/// 3% of the host's CPU in a batch of 1000 on a 250 GB disk). 64 buckets keep about 16
/// instances of a batch of 1000 to a group.
const BUCKETS: usize = 64;

/// How long teardown waits for the kernel to empty a cgroup after the kill.
const CGROUP_EMPTY_WAIT: Duration = Duration::from_secs(5);

pub struct ContainerBackend {
    ctx: RunContext,
    layers: Option<Layers>,
    cgroups: RunCgroups,
    instances_dir: PathBuf,
    /// The profile's seccomp program, compiled once per run (None: no filter).
    seccomp: Option<std::sync::Arc<Vec<crate::security::bpf::Insn>>>,
    /// The child shares the descriptor table until it takes its low part (spawn.rs).
    share_files: bool,
    /// The mount namespace each instance's is copied from (mntns.rs); None: from the host's.
    mount_template: Option<mntns::MountTemplate>,
    /// Whether each of the profile's masked paths is a directory on the host (child.rs).
    masked_dirs: Vec<bool>,
    /// `instances_dir`, open: each instance's directories are made from it by name.
    instances_fd: OwnedFd,
    /// Launches so far: the next one's bucket.
    launches: std::sync::atomic::AtomicUsize,
    /// /dev/null, every agent's stdin.
    null: OwnedFd,
}

fn bucket_name(b: usize) -> String {
    format!("b{b:02}")
}

fn cstr(p: impl AsRef<Path>) -> CString {
    // Paths come from our own state dir and the scenario; an interior NUL would be a bug.
    CString::new(p.as_ref().as_os_str().as_bytes()).unwrap_or_else(|_| c"/nonexistent".to_owned())
}

impl ContainerBackend {
    pub fn new(ctx: RunContext) -> Result<ContainerBackend, PrepareError> {
        let err = |what: String| PrepareError {
            backend: "container",
            what,
            skip: false,
        };
        if !crate::host::is_root() {
            return Err(err(
                "needs root (namespaces, mounts and cgroups): run isobench as root".into(),
            ));
        }
        let ns = ctx.scenario.namespaces;
        let layers = if ns.mount {
            Some(
                Layers::prepare(
                    &ctx.scenario.image,
                    &ctx.state_dir.join("layers"),
                    &ctx.agent_exe,
                )
                .map_err(|e| err(e.to_string()))?,
            )
        } else {
            None
        };
        let profile = ctx.scenario.security;
        let seccomp = crate::security::seccomp::compile(profile)
            .map_err(|e| err(e.to_string()))?
            .map(std::sync::Arc::new);
        let host = CgroupHost::detect().map_err(|e| err(e.to_string()))?;
        let mut cgroups = host
            .create_run(&ctx.run_id)
            .map_err(|e| err(e.to_string()))?;
        if let Some(rules) = profile.devices() {
            cgroups = cgroups
                .confine_devices(&ctx.run_id, rules)
                .map_err(|e| err(format!("security profile {profile}: {e}")))?;
        }
        let instances_dir = ctx.state_dir.join("instances");
        let root = instances_dir.join(ROOT_MOUNTPOINT);
        std::fs::create_dir_all(&root).map_err(|e| err(format!("{}: {e}", root.display())))?;
        crate::host::spread_subdirs(&instances_dir);
        for b in 0..BUCKETS {
            let bucket = instances_dir.join(bucket_name(b));
            match std::fs::create_dir(&bucket) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(err(format!("{}: {e}", bucket.display())));
                }
                _ => {}
            }
        }
        let open = |p: &Path, flags| {
            rustix::fs::open(p, flags | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty())
                .map(crate::host::fd::park)
                .map_err(|e| err(format!("{}: {e}", p.display())))
        };
        let instances_fd = open(&instances_dir, OFlags::PATH | OFlags::DIRECTORY)?;
        let null = open(Path::new("/dev/null"), OFlags::RDONLY)?;
        // Without it (a kernel or sandbox that refuses a thread its own mount namespace) each
        // instance copies the host's whole tree, as before.
        let mount_template = layers.as_ref().and_then(|l| {
            let [agent, image] = l.dirs();
            mntns::MountTemplate::new(&[ctx.state_dir.as_path(), agent, image]).ok()
        });
        Ok(ContainerBackend {
            ctx,
            layers,
            cgroups,
            instances_dir,
            seccomp,
            share_files: spawn::can_share_files(),
            mount_template,
            // Our own fixed list, read on the host's kernel, whose /proc the instance's is.
            masked_dirs: profile
                .masked_paths()
                .iter()
                .map(|p| {
                    Path::new("/")
                        .join(p)
                        .symlink_metadata()
                        .is_ok_and(|m| m.is_dir())
                })
                .collect(),
            instances_fd,
            launches: Default::default(),
            null,
        })
    }

    fn child_spec(&self, name: &str, dir: &Path) -> ChildSpec {
        let s = &self.ctx.scenario;
        let (exe, argv0) = if self.layers.is_some() {
            (cstr(AGENT_IN_ROOTFS), AGENT_IN_ROOTFS.to_string())
        } else {
            (
                cstr(&self.ctx.agent_exe),
                self.ctx.agent_exe.display().to_string(),
            )
        };
        let mut args = vec![CString::new(argv0).unwrap_or_default(), c"agent".to_owned()];
        args.extend(
            s.workload
                .agent_args()
                .into_iter()
                .filter_map(|a| CString::new(a).ok()),
        );
        let mut env = vec![
            c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            c"HOME=/root".to_owned(),
        ];
        env.extend(
            self.ctx
                .marker_env(name)
                .iter()
                .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok()),
        );
        let mut spec = ChildSpec::new(exe, args, env, s.security, self.seccomp.clone());
        spec.cgroup_ns = s.namespaces.cgroup;
        if s.namespaces.uts {
            spec.hostname = CString::new(name).ok();
        }
        if let Some(layers) = &self.layers {
            let root = self.instances_dir.join(ROOT_MOUNTPOINT);
            let opts = format!(
                "lowerdir={},upperdir={},workdir={}",
                layers.lowerdir(),
                dir.join("upper").display(),
                dir.join("work").display()
            );
            // Every path below the root is relative: the child works from inside its root
            // once the overlay is mounted (child.rs), so no mount walks the host's path to it.
            let rel = |p: &str| cstr(p);
            spec.fs = Some(FsSpec {
                overlay_opts: CString::new(opts).unwrap_or_default(),
                proc_dir: rel("proc"),
                dev_dir: rel("dev"),
                dev_null: rel("dev/null"),
                dev_nodes: child::DEV_NODES
                    .iter()
                    .map(|(n, maj, min)| (rel(&format!("dev/{n}")), libc::makedev(*maj, *min)))
                    .collect(),
                dev_links: child::DEV_LINKS
                    .iter()
                    .map(|(l, t)| (rel(&format!("dev/{l}")), cstr(t)))
                    .collect(),
                masked: s
                    .security
                    .masked_paths()
                    .iter()
                    .zip(&self.masked_dirs)
                    .map(|(p, dir)| (rel(p), *dir))
                    .collect(),
                readonly: s.security.readonly_paths().iter().map(|p| rel(p)).collect(),
                root: cstr(&root),
            });
        }
        spec
    }

    fn clone_flags(&self) -> libc::c_int {
        let ns = self.ctx.scenario.namespaces;
        let mut f = 0;
        for (on, flag) in [
            (ns.pid, libc::CLONE_NEWPID),
            // With a template the child enters it and unshares a copy of it (child.rs).
            (ns.mount && self.mount_template.is_none(), libc::CLONE_NEWNS),
            (ns.uts, libc::CLONE_NEWUTS),
            (ns.ipc, libc::CLONE_NEWIPC),
            (ns.net, libc::CLONE_NEWNET),
        ] {
            if on {
                f |= flag;
            }
        }
        f
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

impl Backend for ContainerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Container
    }

    fn label(&self) -> String {
        super::profile_label(self.kind().as_str().to_string(), &self.ctx.scenario)
    }

    fn shared_disk(&self) -> Option<(u64, u64)> {
        self.layers.as_ref().map(|l| l.disk_usage())
    }

    fn security(&self) -> Option<crate::security::Profile> {
        Some(self.ctx.scenario.security)
    }

    fn device_program(&self) -> Option<u32> {
        self.cgroups.device_program_id()
    }

    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        let lerr = |cause: LaunchCause| LaunchError::new(name, cause);
        let sys = |call: &'static str| move |source| lerr(LaunchCause::Sys { call, source });
        let n = self
            .launches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let rel = PathBuf::from(bucket_name(n % BUCKETS)).join(name);
        let dir = self.instances_dir.join(&rel);
        if self.layers.is_some() {
            for sub in ["", "upper", "work"] {
                let at = rel.join(sub);
                rustix::fs::mkdirat(&self.instances_fd, &at, Mode::from_raw_mode(0o755)).map_err(
                    |e| {
                        let (path, source) = (self.instances_dir.join(&at), e.into());
                        lerr(LaunchCause::Io { path, source })
                    },
                )?;
            }
        }
        // From here on, `Partial` owns what exists and removes it if launch fails.
        let mut partial = Partial {
            pid: None,
            cgroup: None,
            dir: Some(dir.clone()),
        };
        let cg = partial.cgroup.insert(
            self.cgroups
                .create_instance(name, &self.ctx.scenario.limits)
                .map_err(|e| lerr(e.into()))?,
        );
        let spec = self.child_spec(name, &dir);
        let cg_dir = cg.open_v2_dir().map_err(|e| lerr(e.into()))?;
        let (msg_r, msg_w) = pipe().map_err(sys("pipe"))?;
        let (out_r, out_w) = pipe().map_err(sys("pipe"))?;
        let mut fds = ChildFds {
            msg_w: msg_w.as_raw_fd(),
            out_w: out_w.as_raw_fd(),
            null_r: self.null.as_raw_fd(),
            cgroup_join: Vec::new(),
            share_table: self.share_files,
            mount_template: self.mount_template.as_ref().map(|t| t.fd()),
        };
        let flags = self.clone_flags() as u64;

        let start = Instant::now();
        let start_ns = crate::agent::mono_ns();
        let mut ret = match &cg_dir {
            Some(dir) => spawn::spawn(flags, Join::Into(dir.as_raw_fd()), &spec, &fds),
            None => Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
        };
        // cgroup v1 and hybrid (or a v2 kernel without CLONE_INTO_CGROUP): the child writes
        // itself into descriptors opened now.
        let mut procs = Vec::new();
        if cg_dir.is_none() || ret.is_err() {
            procs = cg.open_procs().map_err(|e| lerr(e.into()))?;
            fds.cgroup_join = procs.iter().map(|f| f.as_raw_fd()).collect();
            ret = spawn::spawn(flags, Join::Itself, &spec, &fds);
        }
        let pid = ret.map_err(sys("clone"))?;
        let spawned = start.elapsed();
        partial.pid = Some(pid);
        drop((msg_w, out_w, procs, cg_dir));
        crate::fault::point(crate::fault::Boundary::Boot);

        // Straight to the agent's `ready`: the child's one message (its stamps, or what
        // failed) is on the pipe by then, and is read without waiting.
        let deadline = self.ctx.ready_deadline(start);
        let mut reader = AgentReader::new(out_r);
        let ready = reader.wait_ready(deadline, &self.ctx.cancel);
        let left = sync::drain(msg_r.as_fd());
        let ready = ready.map_err(|e| match left.error {
            Some((stage, errno)) => lerr(LaunchCause::ChildStage {
                stage: stage.describe(),
                errno,
            }),
            None => lerr(e.into()),
        })?;
        let (startup, facts) = (ready.at - start, ready.facts);
        let first_output = reader.first_byte().map(|t| t - start);
        let st = left.stamps.unwrap_or_default();
        let at = |ns: u64| super::since(start_ns, ns);
        let mut startup = Startup {
            startup,
            spawn: Some(spawned),
            first_output,
            clone: at(st.started),
            cgroup: at(st.cgroup),
            rootfs: at(st.rootfs),
            setup: at(st.pivot),
            exec: at(st.exec),
            facts,
            ..Startup::default()
        };
        startup.agent_phases(start_ns);
        let (pid, cgroup, dir) = partial.disarm();
        Ok(Box::new(ContainerInstance {
            name: name.to_string(),
            startup,
            pid,
            cgroup,
            dir,
            reader,
            live: true,
        }))
    }

    fn finish(&self) -> Result<(), TeardownError> {
        let mut errs = Vec::new();
        if let Err(e) = self.cgroups.remove() {
            errs.push(e.into());
        }
        if let Err(e) = crate::host::remove_dir_tree(&self.instances_dir) {
            errs.push(e.into());
        }
        TeardownError::collect(errs)
    }
}

/// What a launch has created so far; removed on drop unless the launch succeeds.
struct Partial {
    pid: Option<i32>,
    cgroup: Option<InstanceCgroup>,
    dir: Option<PathBuf>,
}

impl Partial {
    fn disarm(mut self) -> (i32, Option<InstanceCgroup>, Option<PathBuf>) {
        (
            self.pid.take().unwrap_or(0),
            self.cgroup.take(),
            self.dir.take(),
        )
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = destroy(self.pid.take(), self.cgroup.take(), self.dir.take());
    }
}

/// Kills the instance (SIGKILL to PID 1 ends its whole PID namespace), reaps it, removes its
/// cgroup and its overlay directories.
fn destroy(
    pid: Option<i32>,
    cgroup: Option<InstanceCgroup>,
    dir: Option<PathBuf>,
) -> Result<(), TeardownError> {
    let mut errs = Vec::new();
    if let Some(pid) = pid.filter(|p| *p > 0) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        if let Err(source) = waitpid(Pid::from_raw(pid), None) {
            errs.push(TeardownError::WaitPid { pid, source });
        }
    }
    if let Some(cg) = cgroup
        && let Err(e) = cg.remove(CGROUP_EMPTY_WAIT)
    {
        errs.push(e.into());
    }
    if let Some(dir) = dir
        && let Err(e) = crate::host::remove_dir_tree(&dir)
    {
        errs.push(e.into());
    }
    TeardownError::collect(errs)
}

pub struct ContainerInstance {
    name: String,
    startup: Startup,
    pid: i32,
    cgroup: Option<InstanceCgroup>,
    dir: Option<PathBuf>,
    reader: AgentReader,
    live: bool,
}

impl Instance for ContainerInstance {
    fn name(&self) -> &str {
        &self.name
    }
    fn startup(&self) -> &Startup {
        &self.startup
    }
    fn pid(&self) -> i32 {
        self.pid
    }
    fn wait_done(
        &mut self,
        deadline: crate::deadline::Deadline,
        cancel: &AtomicBool,
    ) -> Result<WorkloadReport, AgentError> {
        self.reader.wait_done(deadline, cancel)
    }
    fn cgroup(&self) -> Option<&InstanceCgroup> {
        self.cgroup.as_ref()
    }
    fn private_dir(&self) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .filter(|_| self.startup.setup.is_some())
            .map(|d| d.join("upper"))
    }
    fn teardown(mut self: Box<Self>) -> Result<Duration, TeardownError> {
        let start = Instant::now();
        self.live = false;
        destroy(Some(self.pid), self.cgroup.take(), self.dir.take())
            .map_err(|e| e.of(&self.name))?;
        Ok(start.elapsed())
    }
}

impl Drop for ContainerInstance {
    fn drop(&mut self) {
        if self.live {
            let _ = destroy(Some(self.pid), self.cgroup.take(), self.dir.take());
        }
    }
}
