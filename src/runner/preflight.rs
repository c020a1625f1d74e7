//! What a scenario needs of the host, checked before a run creates anything, so that bad
//! input or an unusable host (exit 2) leaves nothing behind.

use crate::host::cgroup::CgroupHost;
use crate::runner::error::RunError;
use crate::scenario::{BackendKind, Scenario};

/// Checks what a scenario needs before anything is created, so bad input leaves nothing.
pub fn preflight(scenario: &Scenario) -> Result<(), RunError> {
    for b in &scenario.backends {
        let needs_root = matches!(
            b,
            BackendKind::Container
                | BackendKind::Unshare
                | BackendKind::Docker
                | BackendKind::Gvisor
                | BackendKind::Lxc
        );
        if needs_root && !crate::host::is_root() {
            return Err(RunError::NotRoot(b.as_str()));
        }
    }
    let has = |k| scenario.backends.contains(&k);
    if has(BackendKind::Container) {
        container(scenario)?;
    }
    if has(BackendKind::Vm) {
        vm(scenario)?;
    }
    if has(BackendKind::Docker) {
        docker()?;
    }
    if has(BackendKind::Gvisor) {
        tools("gvisor", &[("runsc", "runsc")])?;
    }
    if has(BackendKind::Lxc) {
        tools(
            "lxc",
            &[
                ("lxc-start", "lxc"),
                ("lxc-stop", "lxc"),
                ("lxc-info", "lxc"),
            ],
        )?;
    }
    if has(BackendKind::Unshare) && crate::host::exec::which("unshare").is_none() {
        return Err(RunError::Environment(
            "backend unshare: the unshare command (util-linux) is not on PATH".into(),
        ));
    }
    Ok(())
}

/// Each of `tools` (command, Debian package) on PATH, else one line naming the first missing.
fn tools(backend: &str, tools: &[(&str, &str)]) -> Result<(), RunError> {
    for (cmd, pkg) in tools {
        if crate::host::exec::which(cmd).is_none() {
            return Err(RunError::Environment(format!(
                "backend {backend}: {cmd} is not on PATH: install {pkg} (scripts/setup.sh)"
            )));
        }
    }
    Ok(())
}

/// A cgroup hierarchy to make instance cgroups in, and busybox for the default image.
fn container(scenario: &Scenario) -> Result<(), RunError> {
    CgroupHost::detect().map_err(|e| RunError::Environment(format!("backend container: {e}")))?;
    if scenario.namespaces.mount && scenario.image == crate::scenario::ImageSpec::Busybox {
        crate::image::find_busybox()
            .map_err(|e| RunError::Environment(format!("image busybox: {e}")))?;
    }
    Ok(())
}

/// QEMU and the disk tools, the guest kernel and the modules of isobench's initramfs:
/// read-only look-ups, so a missing kernel is bad input found before anything is made.
fn vm(scenario: &Scenario) -> Result<(), RunError> {
    for (cmd, pkg) in [
        (crate::backend::vm::qemu::QEMU, "qemu-system-x86"),
        ("qemu-img", "qemu-utils"),
        ("mkfs.ext4", "e2fsprogs"),
    ] {
        if crate::host::exec::which(cmd).is_none() {
            return Err(RunError::Environment(format!(
                "backend vm: {cmd} is not on PATH: install {pkg} (scripts/setup.sh)"
            )));
        }
    }
    let vm_err = |e: crate::image::ImageError| RunError::Environment(format!("backend vm: {e}"));
    let kernel =
        crate::image::kernel::find_guest_kernel(scenario.vm.kernel.as_deref()).map_err(vm_err)?;
    if scenario.vm.initrd.is_none() {
        crate::image::initramfs::resolve_modules(
            &kernel.modules_dir,
            crate::image::initramfs::GUEST_MODULES,
        )
        .map_err(vm_err)?;
    }
    Ok(())
}

/// The docker CLI, and dockerd unless a daemon may already answer (`DOCKER_HOST`, or the
/// system socket): whether it answers is found when the backend is prepared.
fn docker() -> Result<(), RunError> {
    let missing = |what: &str| {
        RunError::Environment(format!(
            "backend docker: {what} is not on PATH: install docker.io (scripts/setup.sh)"
        ))
    };
    if crate::backend::docker::cli::find_cli().is_none() {
        return Err(missing("the docker CLI"));
    }
    let existing = std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty())
        || std::path::Path::new(crate::backend::docker::daemon::DEFAULT_SOCKET).exists();
    if !existing && crate::host::exec::which("dockerd").is_none() {
        return Err(missing("dockerd"));
    }
    Ok(())
}
