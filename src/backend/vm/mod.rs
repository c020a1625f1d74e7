//! `vm`: the agent in a QEMU guest that boots its own kernel. Every VM boots from its own qcow2
//! overlay of one shared base disk built from the same rootfs as the containers (the
//! counterpart of a container's overlay upper dir). KVM is used when a probe guest boots
//! under it, TCG otherwise; the accelerator is recorded with every sample.

pub mod qemu;

use super::process::{ProcessInstance, spawn_agent_with};
use super::{
    Backend, Instance, LaunchCause, LaunchError, PrepareError, RunContext, Startup, TeardownError,
};
use crate::agent::reader::{AgentError, WorkloadReport};
use crate::deadline::Limit;
use crate::host::cgroup::{CgroupHost, InstanceCgroup, RunCgroups};
use crate::image::Layers;
use crate::image::kernel::{GuestKernel, find_guest_kernel};
use crate::scenario::{Accel, BackendKind, Machine};
use qemu::{GuestBoot, QemuAccel};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub struct VmBackend {
    ctx: RunContext,
    boot: GuestBoot,
    accel: QemuAccel,
    /// Why the accelerator is what it is (the probe's outcome), for meta.json and doctor.
    pub accel_reason: String,
    instances_dir: PathBuf,
    /// Accounting-only cgroups (no limits: `-m` bounds a guest): they give VMs the same
    /// cgroup memory view and nanosecond CPU accounting as containers.
    cgroups: Option<RunCgroups>,
}

impl VmBackend {
    pub fn new(ctx: RunContext) -> Result<VmBackend, PrepareError> {
        let err = |what: String| PrepareError {
            backend: "vm",
            what,
            skip: false,
        };
        let qemu = crate::host::exec::which(qemu::QEMU).ok_or_else(|| {
            err(format!(
                "{} not found: install qemu-system-x86 (scripts/setup.sh)",
                qemu::QEMU
            ))
        })?;
        crate::host::exec::which("qemu-img").ok_or_else(|| {
            err("qemu-img not found: install qemu-utils (scripts/setup.sh)".into())
        })?;
        let cfg = ctx.scenario.vm.clone();
        let kernel: GuestKernel =
            find_guest_kernel(cfg.kernel.as_deref()).map_err(|e| err(e.to_string()))?;
        let layers = Layers::prepare(
            &ctx.scenario.image,
            &ctx.state_dir.join("layers"),
            &ctx.agent_exe,
        )
        .map_err(|e| err(e.to_string()))?;
        let extra = match ctx.scenario.workload {
            crate::scenario::Workload::WriteFile { mib } => mib,
            _ => 0,
        };
        let size = crate::image::vmdisk::default_size_mib(&layers, extra);
        let base = crate::image::vmdisk::build_base_disk(&layers, &ctx.cache_dir, size)
            .map_err(|e| err(e.to_string()))?;
        let initrd = match &cfg.initrd {
            Some(user) => qemu::Initrd::User(user.clone()),
            None => {
                let modules = crate::image::initramfs::resolve_modules(
                    &kernel.modules_dir,
                    crate::image::initramfs::GUEST_MODULES,
                )
                .map_err(|e| err(e.to_string()))?;
                let out = ctx.state_dir.join("initramfs.cpio");
                crate::image::initramfs::build_initramfs(&out, &ctx.agent_exe, &modules)
                    .map_err(|e| err(e.to_string()))?;
                qemu::Initrd::Own(out)
            }
        };
        let instances_dir = ctx.state_dir.join("vms");
        std::fs::create_dir_all(&instances_dir)
            .map_err(|e| err(format!("{}: {e}", instances_dir.display())))?;
        let boot = GuestBoot {
            qemu,
            kernel: kernel.kernel,
            initrd,
            base,
            machine: cfg.machine,
            memory_mib: cfg.memory_mib,
            vcpus: cfg.vcpus,
            workload: ctx.scenario.workload.agent_args(),
        };
        let mut b = VmBackend {
            ctx,
            boot,
            accel: QemuAccel::Tcg,
            accel_reason: String::new(),
            instances_dir,
            cgroups: None,
        };
        // The probe guest runs without an accounting cgroup: none exists yet, so a failed
        // probe (forced KVM that does not work) leaves no cgroup behind.
        b.choose_accel(cfg.accel, Duration::from_secs_f64(cfg.probe_timeout_s))?;
        b.probe_machine(Duration::from_secs_f64(cfg.probe_timeout_s))?;
        // Without root or cgroups, VMs still run; their cgroup view is then empty.
        b.cgroups = CgroupHost::detect()
            .ok()
            .and_then(|h| h.create_run(&b.ctx.run_id).ok());
        Ok(b)
    }

    /// Probes KVM by booting a real guest under it: /dev/kvm can exist while guests hang.
    fn choose_accel(&mut self, wanted: Accel, probe_timeout: Duration) -> Result<(), PrepareError> {
        if wanted == Accel::Tcg {
            self.accel = QemuAccel::Tcg;
            self.accel_reason = "tcg: forced by the scenario".into();
            return Ok(());
        }
        let outcome = if !Path::new("/dev/kvm").exists() {
            Err("/dev/kvm does not exist".to_string())
        } else {
            self.accel = QemuAccel::Kvm;
            let limit = Limit::new(probe_timeout, "vm.probe_timeout_s");
            match self.launch_with("kvm-probe", limit) {
                Ok(inst) => {
                    let ms = inst.startup().startup.as_secs_f64() * 1e3;
                    let _ = Box::new(inst).teardown();
                    Ok(ms)
                }
                Err(e) => Err(format!(
                    "a probe guest under KVM was not ready (limit {:.0} s): {}",
                    probe_timeout.as_secs_f64(),
                    e.cause
                )),
            }
        };
        match (outcome, wanted) {
            (Ok(ms), _) => {
                self.accel = QemuAccel::Kvm;
                self.accel_reason = format!("kvm: a probe guest was ready in {ms:.0} ms");
                Ok(())
            }
            (Err(why), Accel::Kvm) => Err(PrepareError {
                backend: "vm",
                what: format!("accel = \"kvm\" was asked for, but KVM does not work here: {why}"),
                skip: false,
            }),
            (Err(why), _) => {
                self.accel = QemuAccel::Tcg;
                self.accel_reason = format!("tcg: {why}");
                Ok(())
            }
        }
    }

    /// `machine = "microvm"` under TCG: QEMU's microvm did not boot this guest here (it hung
    /// until the 80 s ready limit), so one probe guest, limited by `vm.probe_timeout_s`,
    /// finds out in seconds; if it is not ready the backend is skipped with the reason.
    fn probe_machine(&self, limit: Duration) -> Result<(), PrepareError> {
        if self.boot.machine != Machine::Microvm || self.accel != QemuAccel::Tcg {
            return Ok(());
        }
        let started = Instant::now();
        match self.launch_with("machine-probe", Limit::new(limit, "vm.probe_timeout_s")) {
            Ok(inst) => {
                let _ = Box::new(inst).teardown();
                Ok(())
            }
            Err(e) => Err(PrepareError {
                backend: "vm",
                what: format!(
                    "machine \"microvm\" under {}: a probe guest was not ready after {:.1} s ({}); skipped",
                    self.accel.as_str(),
                    started.elapsed().as_secs_f64(),
                    e.cause
                ),
                skip: true,
            }),
        }
    }

    fn launch_with(&self, name: &str, limit: Limit) -> Result<VmInstance, LaunchError> {
        let lerr = |cause: LaunchCause| LaunchError::new(name, cause);
        let overlay = self.instances_dir.join(format!("{name}.qcow2"));
        let pidfile = self.instances_dir.join(format!("{name}.pid"));
        // From here the files exist; `files` removes them unless the launch succeeds.
        let files = VmFiles {
            overlay: overlay.clone(),
            pidfile: pidfile.clone(),
            live: true,
        };
        // Its own process group: signals for the run reach the harness only (interrupt.rs).
        let out = Command::new("qemu-img")
            .process_group(0)
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&self.boot.base)
            .arg(&overlay)
            .output()
            .map_err(|source| {
                lerr(LaunchCause::Spawn {
                    program: "qemu-img".into(),
                    source,
                    pre_exec: None,
                })
            })?;
        if !out.status.success() {
            return Err(lerr(LaunchCause::Tool {
                program: "qemu-img".into(),
                action: format!("create {}", overlay.display()),
                status: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }));
        }
        let cmd = self.boot.command(self.accel, &overlay, &pidfile);
        let cgroup = match &self.cgroups {
            Some(run) => Some(
                run.create_instance(name, &crate::scenario::Limits::default())
                    .map_err(|e| lerr(e.into()))?,
            ),
            None => None,
        };
        // Joins before exec, before QEMU allocates guest RAM: every page of it is charged.
        let join = cgroup.as_ref().map(|c| c.join_step());
        let mut join = join;
        let join = move || join.as_mut().map_or(Ok(()), |j| j());
        // Without an accounting cgroup (the KVM probe, a host without cgroups) QEMU is
        // recorded in the state dir instead, so `clean` may kill it.
        let record = cgroup.is_none();
        let inner = match spawn_agent_with(&self.ctx, name, cmd, limit, record, join) {
            Ok(i) => i,
            Err(e) => {
                if let Some(cg) = cgroup {
                    let _ = cg.remove(Duration::from_secs(5));
                }
                // The agent's wait covers the whole boot: say so.
                return Err(lerr(LaunchCause::Boot(Box::new(e.cause))));
            }
        };
        Ok(VmInstance {
            inner,
            files,
            cgroup,
        })
    }

    /// The QEMU command line a VM of this backend runs (for the harness-overhead comparison).
    pub fn command_line(&self, overlay: &Path, pidfile: &Path) -> Command {
        self.boot.command(self.accel, overlay, pidfile)
    }

    pub fn base_disk(&self) -> &Path {
        &self.boot.base
    }

    /// The guest every VM of this backend boots, in words (for doctor and reports).
    pub fn describe_guest(&self) -> String {
        let initrd = match &self.boot.initrd {
            qemu::Initrd::Own(_) => {
                "isobench's initramfs (the agent as /init + virtio modules)".to_string()
            }
            qemu::Initrd::User(p) => format!("initrd {}", p.display()),
        };
        format!(
            "kernel {}, {initrd}, {} MiB, {} vCPU, {}",
            self.boot.kernel.display(),
            self.boot.memory_mib,
            self.boot.vcpus,
            self.boot.machine.as_str()
        )
    }
}

impl Backend for VmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Vm
    }
    fn accel(&self) -> &str {
        self.accel.as_str()
    }
    fn launch_files(&self) -> Vec<PathBuf> {
        let initrd = match &self.boot.initrd {
            qemu::Initrd::Own(p) | qemu::Initrd::User(p) => p.clone(),
        };
        vec![self.boot.qemu.clone(), self.boot.kernel.clone(), initrd]
    }
    fn shared_disk(&self) -> Option<(u64, u64)> {
        let b = &self.boot.base;
        Some((
            crate::measure::disk::allocated_kib(b),
            crate::measure::disk::apparent_kib(b),
        ))
    }
    fn accel_reason(&self) -> Option<String> {
        Some(self.accel_reason.clone())
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        Ok(Box::new(self.launch_with(name, self.ctx.ready_limit())?))
    }
    fn finish(&self) -> Result<(), TeardownError> {
        if let Some(c) = &self.cgroups {
            c.remove()?;
        }
        Ok(crate::host::remove_dir_tree(&self.instances_dir)?)
    }
}

/// A VM's files on the host, removed with it.
struct VmFiles {
    overlay: PathBuf,
    pidfile: PathBuf,
    live: bool,
}

impl VmFiles {
    fn remove(&mut self) -> Result<(), TeardownError> {
        self.live = false;
        let mut errs = Vec::new();
        for p in [&self.overlay, &self.pidfile] {
            if let Err(source) = std::fs::remove_file(p)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                errs.push(TeardownError::Io {
                    path: p.clone(),
                    source,
                });
            }
        }
        TeardownError::collect(errs)
    }
}

impl Drop for VmFiles {
    fn drop(&mut self) {
        if self.live {
            let _ = self.remove();
        }
    }
}

pub struct VmInstance {
    inner: ProcessInstance,
    files: VmFiles,
    cgroup: Option<InstanceCgroup>,
}

impl Instance for VmInstance {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn startup(&self) -> &Startup {
        self.inner.startup()
    }
    fn pid(&self) -> i32 {
        self.inner.pid()
    }
    fn wait_done(
        &mut self,
        deadline: crate::deadline::Deadline,
        cancel: &AtomicBool,
    ) -> Result<WorkloadReport, AgentError> {
        self.inner.wait_done(deadline, cancel)
    }
    fn private_dir(&self) -> Option<PathBuf> {
        Some(self.files.overlay.clone())
    }
    fn cgroup(&self) -> Option<&InstanceCgroup> {
        self.cgroup.as_ref()
    }
    fn teardown(self: Box<Self>) -> Result<Duration, TeardownError> {
        let start = Instant::now();
        let VmInstance {
            inner,
            mut files,
            cgroup,
        } = *self;
        // QEMU first: its overlay and cgroup are in use until it is gone.
        let name = inner.name().to_string();
        let r = Box::new(inner).teardown();
        let f = files.remove();
        let c = cgroup
            .map(|cg| cg.remove(Duration::from_secs(5)))
            .transpose();
        r?;
        f.map_err(|e| e.of(&name))?;
        c.map_err(|e| TeardownError::from(e).of(&name))?;
        Ok(start.elapsed())
    }
}
