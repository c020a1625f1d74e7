//! `process`: the agent as a plain child process, no isolation at all. The floor every other
//! backend's figures are compared to. Also the spawn path of `unshare`.

use super::{Backend, Instance, LaunchCause, LaunchError, RunContext, Startup, TeardownError};
use crate::agent::reader::{AgentError, AgentReader, WorkloadReport};
use crate::host::cgroup::{CgroupHost, InstanceCgroup, RunCgroups};
use crate::host::run_id::PidRecord;
use crate::scenario::BackendKind;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How long teardown waits for an instance's descendants to end after its first process was
/// killed (they die of the parent-death signal).
const DESCENDANT_WAIT: Duration = Duration::from_secs(5);

pub struct ProcessBackend {
    ctx: RunContext,
    place: HostPlace,
}

impl ProcessBackend {
    pub fn new(ctx: RunContext) -> ProcessBackend {
        let place = HostPlace::new(&ctx, "process");
        ProcessBackend { ctx, place }
    }
}

/// Where instances without a root of their own (process, unshare) keep what is theirs on the
/// host: a private directory under the run's state dir (the agent's `write-file` goes there,
/// not into the host's /var/tmp) and an accounting-only cgroup (no limits: these backends
/// isolate nothing), which gives them the same cgroup memory view and CPU accounting as the
/// others. Joining it costs a few syscalls inside the start-up window, as for every backend.
pub struct HostPlace {
    dir: PathBuf,
    cgroups: Option<RunCgroups>,
}

impl HostPlace {
    pub fn new(ctx: &RunContext, label: &str) -> HostPlace {
        // Without root or cgroups the instances still run; their cgroup view is then empty.
        let cgroups = if crate::host::is_root() {
            CgroupHost::detect()
                .ok()
                .and_then(|h| h.create_run(&ctx.run_id).ok())
        } else {
            None
        };
        HostPlace {
            dir: ctx.state_dir.join(label),
            cgroups,
        }
    }

    /// Launches `cmd` as instance `name` in its own directory and cgroup.
    pub fn launch(
        &self,
        ctx: &RunContext,
        name: &str,
        mut cmd: Command,
    ) -> Result<Box<dyn Instance>, LaunchError> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| {
            LaunchError::new(
                name,
                LaunchCause::Io {
                    path: dir.clone(),
                    source,
                },
            )
        })?;
        cmd.env(crate::agent::workload::WRITE_DIR_ENV, &dir);
        let cgroup = match &self.cgroups {
            Some(run) => match run.create_instance(name, &crate::scenario::Limits::default()) {
                Ok(c) => Some(c),
                Err(e) => {
                    let _ = crate::host::remove_dir_tree(&dir);
                    return Err(LaunchError::new(name, e));
                }
            },
            None => None,
        };
        // Outside a run cgroup (no cgroups here), only a pid record proves it is the run's.
        let record = cgroup.is_none();
        let mut join = cgroup.as_ref().map(|c| c.join_step());
        let step = move || join.as_mut().map_or(Ok(()), |j| j());
        match spawn_agent_with(ctx, name, cmd, ctx.ready_limit(), record, step) {
            Ok(mut inst) => {
                inst.private = Some(dir);
                inst.cgroup = cgroup;
                Ok(Box::new(inst))
            }
            Err(e) => {
                if let Some(c) = cgroup {
                    let _ = c.remove(Duration::from_secs(5));
                }
                let _ = crate::host::remove_dir_tree(&dir);
                Err(e)
            }
        }
    }

    /// Removes the run's directories and cgroups of this backend.
    pub fn finish(&self) -> Result<(), TeardownError> {
        if let Some(c) = &self.cgroups {
            c.remove()?;
        }
        Ok(crate::host::remove_dir_tree(&self.dir)?)
    }
}

impl Backend for ProcessBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Process
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        let mut cmd = Command::new(&self.ctx.agent_exe);
        cmd.arg("agent")
            .args(self.ctx.scenario.workload.agent_args());
        self.place.launch(&self.ctx, name, cmd)
    }
    fn finish(&self) -> Result<(), TeardownError> {
        self.place.finish()
    }
}

/// Spawns `cmd` (which runs the agent, directly or through a wrapper), in its own session and
/// with a parent-death signal, and waits for `ready`. Start-up is timed from just before the
/// fork until `ready` is read, as for every backend. `step` runs in the child between fork
/// and exec, after setsid and the parent-death signal (joining a cgroup; the `oci` backend's
/// private mount namespace and overlay). It runs in the forked child of a multithreaded
/// process: it must not allocate or take locks, only make async-signal-safe calls on data
/// prepared before the spawn. With `record`, the process is recorded in the run's state dir
/// right after the spawn (a [`PidRecord`], removed once it is reaped): the proof `isobench
/// clean` needs for a process that is not in a run cgroup. Recording costs a /proc read and a
/// file creation (tens of microseconds) inside the start-up window, so only processes outside
/// a run cgroup are recorded.
pub fn spawn_agent_with<F>(
    ctx: &RunContext,
    name: &str,
    mut cmd: Command,
    limit: crate::deadline::Limit,
    record: bool,
    mut step: F,
) -> Result<ProcessInstance, LaunchError>
where
    F: FnMut() -> std::io::Result<()> + Send + Sync + 'static,
{
    let lerr = |cause: LaunchCause| LaunchError::new(name, cause);
    let pipe_err = |source| {
        lerr(LaunchCause::Sys {
            call: "pipe",
            source,
        })
    };
    let (out_r, out_w) = std::io::pipe().map_err(pipe_err)?;
    let out_w2 = out_w.try_clone().map_err(pipe_err)?;
    cmd.stdin(Stdio::null())
        .stdout(out_w)
        .stderr(out_w2)
        .envs(ctx.marker_env(name));
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (setsid, prctl, and `step`, whose contract is the same) without allocating.
    unsafe {
        cmd.pre_exec(move || {
            // Own session: the terminal's Ctrl-C goes to the harness, which tears down in order.
            nix::unistd::setsid()?;
            // Dies with the harness: nothing of a killed run keeps running.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            step()
        });
    }
    let start = Instant::now();
    let start_ns = crate::agent::mono_ns();
    let child = cmd.spawn().map_err(|source| {
        lerr(LaunchCause::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
            pre_exec: None,
        })
    })?;
    let spawn = start.elapsed();
    // The Command still holds the write ends: drop it so EOF shows if the agent dies.
    drop(cmd);
    let mut inst = ProcessInstance {
        name: name.to_string(),
        startup: Startup::default(),
        child: Some(child),
        reader: AgentReader::new(out_r.into()),
        private: None,
        cgroup: None,
        record: None,
    };
    if record {
        // On error the instance drops: the child is killed and reaped.
        let pid = inst.pid();
        inst.record = Some(
            PidRecord::create(&ctx.state_dir, pid)
                .map_err(|source| lerr(LaunchCause::RecordPid { pid, source }))?,
        );
    }
    crate::fault::point(crate::fault::Boundary::Boot);
    let ready = inst
        .reader
        .wait_ready(limit.from(start), &ctx.cancel)
        .map_err(|e| lerr(e.into()))?;
    let (startup, facts) = (ready.at - start, ready.facts);
    let first_output = inst.reader.first_byte().map(|t| t - start);
    inst.startup = Startup {
        startup,
        spawn: Some(spawn),
        first_output,
        facts,
        ..Startup::default()
    };
    inst.startup.agent_phases(start_ns);
    Ok(inst)
}

pub struct ProcessInstance {
    name: String,
    startup: Startup,
    child: Option<Child>,
    reader: AgentReader,
    /// Set by [`HostPlace`]: the instance's own directory and accounting cgroup.
    private: Option<PathBuf>,
    cgroup: Option<InstanceCgroup>,
    /// The process's record in the run's state dir, if it is outside a run cgroup; a field, so
    /// it is removed only after `Drop` killed and reaped the process.
    record: Option<PidRecord>,
}

impl ProcessInstance {
    /// Removes the instance's directory and cgroup (after its processes are gone).
    fn remove_place(&mut self) -> Result<(), TeardownError> {
        let mut errs = Vec::new();
        if let Some(c) = self.cgroup.take()
            && let Err(e) = c.remove(Duration::from_secs(5))
        {
            errs.push(e.into());
        }
        if let Some(d) = self.private.take()
            && let Err(e) = crate::host::remove_dir_tree(&d)
        {
            errs.push(e.into());
        }
        TeardownError::collect(errs)
    }
}

impl ProcessInstance {
    /// Waits up to `limit` for the process to exit by itself (a runtime that cleans up after
    /// its container); true once it has exited and been reaped.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let Some(c) = self.child.as_mut() else {
            return true;
        };
        let start = Instant::now();
        let mut pause = Duration::from_micros(500);
        loop {
            match c.try_wait() {
                Ok(Some(_)) => {
                    self.child = None;
                    return true;
                }
                Err(_) => return false,
                Ok(None) if start.elapsed() >= limit => return false,
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
            }
        }
    }
}

impl Instance for ProcessInstance {
    fn name(&self) -> &str {
        &self.name
    }
    fn startup(&self) -> &Startup {
        &self.startup
    }
    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
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
        self.private.clone()
    }
    fn teardown(mut self: Box<Self>) -> Result<Duration, TeardownError> {
        let start = Instant::now();
        if let Some(mut c) = self.child.take() {
            let pid = c.id() as i32;
            // Its descendants (unshare's agent) die with it (parent-death signal) and, the
            // harness being a subreaper, become ours to reap.
            let family = crate::host::with_descendants(pid);
            let _ = c.kill();
            c.wait()
                .map_err(|source| TeardownError::Wait { pid, source }.of(&self.name))?;
            let stragglers: Vec<i32> = family
                .into_iter()
                .filter(|p| *p != pid)
                .filter(|p| !crate::host::wait_gone(*p, DESCENDANT_WAIT))
                .collect();
            if !stragglers.is_empty() {
                return Err(TeardownError::Stragglers {
                    parent: pid,
                    pids: stragglers,
                    waited: DESCENDANT_WAIT,
                }
                .of(&self.name));
            }
        }
        self.remove_place().map_err(|e| e.of(&self.name))?;
        Ok(start.elapsed())
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.remove_place();
    }
}
