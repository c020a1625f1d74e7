//! The agent as a VM guest's /init, from the initramfs isobench builds: load the virtio
//! modules, mount the instance's disk (/dev/vda, ext4), switch root to it and exec the agent
//! there, so the workload runs from the same rootfs the containers use.
//!
//! Kernel arguments after `--` arrive here as our arguments (`agent WORKLOAD...`).

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

/// True when this process is the initramfs's init: PID 1 started as `/init`.
pub fn is_guest_init(argv0: &str) -> bool {
    std::process::id() == 1 && argv0 == "/init"
}

const DISK: &str = "/dev/vda";
const NEWROOT: &str = "/newroot";
const DISK_WAIT: Duration = Duration::from_secs(20);

/// Never returns on success (it execs the agent); an error is printed on the console and
/// init exits, which panics the guest kernel and ends QEMU (`panic=-1 -no-reboot`).
pub fn run(args: &[String]) -> String {
    match boot(args) {
        Ok(never) => match never {},
        Err(e) => format!("isobench-init: {e}"),
    }
}

/// A step of the guest's init that failed, and on what.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{step} {target}: {source}")]
    Sys {
        step: &'static str,
        target: String,
        source: nix::errno::Errno,
    },
    #[error("{DISK} did not appear within {} s (virtio-blk missing?)", DISK_WAIT.as_secs())]
    NoDisk,
    #[error("{0}: contains NUL")]
    Nul(&'static str),
}

fn io(step: &'static str, path: &str) -> impl FnOnce(std::io::Error) -> InitError {
    let path = path.to_string();
    move |source| InitError::Io { step, path, source }
}

fn sys(step: &'static str, target: &str) -> impl FnOnce(nix::errno::Errno) -> InitError {
    let target = target.to_string();
    move |source| InitError::Sys {
        step,
        target,
        source,
    }
}

fn mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: nix::mount::MsFlags,
) -> Result<(), InitError> {
    std::fs::create_dir_all(target).map_err(io("mkdir", target))?;
    nix::mount::mount(Some(src), target, Some(fstype), flags, None::<&str>)
        .map_err(sys("mount", &format!("{fstype} on {target}")))
}

fn boot(args: &[String]) -> Result<std::convert::Infallible, InitError> {
    use nix::mount::MsFlags;
    mount("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID)?;
    mount(
        "proc",
        "/proc",
        "proc",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )?;
    mount(
        "sysfs",
        "/sys",
        "sysfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )?;

    let order = std::fs::read_to_string("/modules/order").unwrap_or_default();
    for name in order.lines().filter(|l| !l.is_empty()) {
        let path = format!("/modules/{name}");
        let f = std::fs::File::open(&path).map_err(io("open", &path))?;
        match nix::kmod::finit_module(&f, c"", nix::kmod::ModuleInitFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(sys("loading", &path)(e)),
        }
        // Free the initramfs copy: it stays in guest RAM otherwise.
        let _ = std::fs::remove_file(&path);
    }

    // Drivers probe asynchronously: the disk node appears a little after the module loads.
    let start = Instant::now();
    while !Path::new(DISK).exists() {
        if start.elapsed() > DISK_WAIT {
            return Err(InitError::NoDisk);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    mount(DISK, NEWROOT, "ext4", MsFlags::empty())?;
    for d in ["/dev", "/proc", "/sys"] {
        let target = format!("{NEWROOT}{d}");
        std::fs::create_dir_all(&target).map_err(io("mkdir", &target))?;
        nix::mount::mount(
            Some(d),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(sys("moving", d))?;
    }
    let _ = std::fs::remove_file("/init");
    // switch_root: make the disk the root of the mount tree, then of this process.
    std::env::set_current_dir(NEWROOT).map_err(io("chdir", NEWROOT))?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("moving", "the root"))?;
    nix::unistd::chroot(".").map_err(sys("chroot", "."))?;
    std::env::set_current_dir("/").map_err(io("chdir", "/"))?;

    let exe =
        CString::new(crate::agent::AGENT_IN_ROOTFS).map_err(|_| InitError::Nul("agent path"))?;
    let mut argv = vec![exe.clone()];
    argv.extend(args.iter().filter_map(|a| CString::new(a.as_str()).ok()));
    let env = [
        c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        c"HOME=/root".to_owned(),
        // The guest's kernel is the agent's own: its kernel threads are the guest's.
        CString::new(format!("{}=1", crate::agent::COUNT_KTHREADS_ENV))
            .map_err(|_| InitError::Nul("agent environment"))?,
        // When this init began, on the guest's clock: the boot's kernel and init phases.
        CString::new(format!(
            "{}={}",
            crate::agent::INIT_NS_ENV,
            crate::agent::start_ns()
        ))
        .map_err(|_| InitError::Nul("agent environment"))?,
    ];
    let e = nix::unistd::execve(&exe, &argv, &env)
        .err()
        .unwrap_or(nix::errno::Errno::UnknownErrno);
    Err(sys("exec", crate::agent::AGENT_IN_ROOTFS)(e))
}
