//! The QEMU command line of a guest: lean defaults (no default devices, no display, no NIC),
//! the serial console on stdout for the harness to read, one virtio-blk disk.

use crate::scenario::Machine;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const QEMU: &str = "qemu-system-x86_64";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuAccel {
    Kvm,
    Tcg,
}

impl QemuAccel {
    pub fn as_str(&self) -> &'static str {
        match self {
            QemuAccel::Kvm => "kvm",
            QemuAccel::Tcg => "tcg",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Initrd {
    /// isobench's initramfs: the agent is /init and switches to /dev/vda itself.
    Own(PathBuf),
    /// The user's (e.g. Debian's): root=/dev/vda and init= the agent.
    User(PathBuf),
}

/// Everything every VM of a run shares.
#[derive(Debug, Clone)]
pub struct GuestBoot {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initrd: Initrd,
    pub base: PathBuf,
    pub machine: Machine,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub workload: Vec<String>,
}

impl GuestBoot {
    /// The kernel command line. `panic=-1` plus `-no-reboot` make a failed boot end QEMU at
    /// once instead of hanging until the timeout; arguments after `--` go to init.
    /// `loglevel=6` prints the `Linux version` banner (a notice) first, so the first console
    /// byte marks "kernel running", without the cost of the full boot log under TCG.
    pub fn cmdline(&self) -> String {
        let mut c = String::from("console=ttyS0 panic=-1 loglevel=6");
        if let Initrd::User(_) = self.initrd {
            c.push_str(" root=/dev/vda rw init=");
            c.push_str(crate::agent::AGENT_IN_ROOTFS);
        }
        c.push_str(" -- agent");
        for a in &self.workload {
            c.push(' ');
            c.push_str(a);
        }
        c
    }

    pub fn command(&self, accel: QemuAccel, overlay: &Path, pidfile: &Path) -> Command {
        let mut cmd = Command::new(&self.qemu);
        let (machine, blk) = match self.machine {
            Machine::Q35 => ("q35", "virtio-blk-pci"),
            Machine::Microvm => ("microvm", "virtio-blk-device"),
        };
        cmd.args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(["-machine", &format!("{machine},accel={}", accel.as_str())])
        .args([
            "-m",
            &self.memory_mib.to_string(),
            "-smp",
            &self.vcpus.to_string(),
        ]);
        if accel == QemuAccel::Kvm {
            cmd.args(["-cpu", "host"]);
        }
        let initrd = match &self.initrd {
            Initrd::Own(p) | Initrd::User(p) => p,
        };
        cmd.arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", &self.cmdline()]);
        let mut drive = std::ffi::OsString::from("file=");
        drive.push(overlay);
        drive.push(",if=none,id=disk0,format=qcow2");
        cmd.arg("-drive")
            .arg(drive)
            .args(["-device", &format!("{blk},drive=disk0")]);
        cmd.args(["-serial", "stdio"]).arg("-pidfile").arg(pidfile);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(initrd: Initrd) -> GuestBoot {
        GuestBoot {
            qemu: QEMU.into(),
            kernel: "/boot/vmlinuz".into(),
            initrd,
            base: "/base.ext4".into(),
            machine: Machine::Q35,
            memory_mib: 128,
            vcpus: 1,
            workload: vec!["touch-memory".into(), "8".into()],
        }
    }

    #[test]
    fn the_workload_reaches_init_after_the_separator() {
        let c = boot(Initrd::Own("/i".into())).cmdline();
        assert!(c.ends_with(" -- agent touch-memory 8"), "{c}");
        assert!(
            !c.contains("root="),
            "our initramfs finds the disk itself: {c}"
        );
        let u = boot(Initrd::User("/i".into())).cmdline();
        assert!(
            u.contains("root=/dev/vda") && u.contains("init=/.isobench/isobench"),
            "{u}"
        );
    }

    #[test]
    fn the_command_line_is_lean_and_names_the_accelerator() {
        let cmd = boot(Initrd::Own("/i".into())).command(
            QemuAccel::Tcg,
            Path::new("/o.qcow2"),
            Path::new("/p.pid"),
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        for want in [
            "-nodefaults",
            "-display none",
            "q35,accel=tcg",
            "-m 128",
            "-smp 1",
            "file=/o.qcow2,if=none,id=disk0,format=qcow2",
            "virtio-blk-pci,drive=disk0",
            "-serial stdio",
            "-pidfile /p.pid",
        ] {
            assert!(joined.contains(want), "missing {want} in {joined}");
        }
        assert!(!joined.contains("-cpu host"), "TCG cannot use -cpu host");
    }
}
