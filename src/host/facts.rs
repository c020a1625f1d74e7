//! Facts about this host that do not depend on a run: name, label, kernel, CPU, memory, and
//! whether it is bare metal or a virtual machine (and under which hypervisor).

pub use crate::results::meta::Virtualization;
use std::path::Path;

/// Facts about this host that do not depend on the run.
pub struct HostFacts {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpu_cores: usize,
    pub mem_total_kib: u64,
    pub virtualization: Virtualization,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        let uts = nix::sys::utsname::uname().ok();
        let s = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let (cpu_model, cpu_cores, mem_total_kib) = match sysinfo::System::new() {
            Ok(mut sys) => {
                sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
                sys.refresh_memory();
                let model = sys
                    .cpus()
                    .first()
                    .map(|c| c.brand().trim().to_string())
                    .unwrap_or_default();
                (model, sys.cpus().len(), sys.total_memory() / 1024)
            }
            Err(_) => (String::new(), 0, 0),
        };
        HostFacts {
            hostname: s(|u| u.nodename()),
            kernel: format!("{} {}", s(|u| u.release()), s(|u| u.version())),
            cpu_model,
            cpu_cores,
            mem_total_kib,
            virtualization: detect_virtualization(),
        }
    }
}

/// Reads the evidence of this host's virtualization.
pub fn detect_virtualization() -> Virtualization {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let flag = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| cpuinfo_has_hypervisor_flag(&c))
        .unwrap_or(false);
    let sdv = crate::host::exec::which("systemd-detect-virt");
    let ask = |sdv: &Path, what: &str| {
        // It exits 1 and prints "none" when there is none: the text is the answer.
        std::process::Command::new(sdv)
            .arg(what)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let detect_virt = sdv.as_deref().and_then(|p| ask(p, "--vm"));
    let container = sdv
        .as_deref()
        .and_then(|p| ask(p, "--container"))
        .filter(|c| c != "none")
        .unwrap_or_default();
    judge_virtualization(
        read("/sys/class/dmi/id/sys_vendor"),
        read("/sys/class/dmi/id/product_name"),
        flag,
        detect_virt,
        container,
    )
}

/// The verdict from the evidence: systemd-detect-virt when it answers, else the cpuinfo
/// flag (the hypervisor named from DMI), else DMI alone.
pub fn judge_virtualization(
    sys_vendor: String,
    product_name: String,
    cpu_hypervisor_flag: bool,
    detect_virt: Option<String>,
    container: String,
) -> Virtualization {
    let from_dmi = dmi_hypervisor(&sys_vendor, &product_name);
    let (kind, hypervisor) = match detect_virt.as_deref() {
        Some("none") if !cpu_hypervisor_flag => ("bare-metal", String::new()),
        Some(v) if v != "none" => ("vm", v.to_string()),
        _ if cpu_hypervisor_flag || from_dmi.is_some() => {
            ("vm", from_dmi.unwrap_or_default().to_string())
        }
        _ if sys_vendor.is_empty() && product_name.is_empty() => {
            // No DMI, no flag, no systemd-detect-virt: most likely metal, but a guest
            // without DMI (some ARM clouds) looks the same.
            ("unknown", String::new())
        }
        _ => ("bare-metal", String::new()),
    };
    Virtualization {
        kind: kind.to_string(),
        hypervisor,
        container,
        sys_vendor,
        product_name,
        cpu_hypervisor_flag,
        detect_virt,
    }
}

/// True when the `flags` line of /proc/cpuinfo names `hypervisor`.
fn cpuinfo_has_hypervisor_flag(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "hypervisor"))
}

/// The hypervisor DMI names, for the vendors whose strings are well known.
fn dmi_hypervisor(vendor: &str, product: &str) -> Option<&'static str> {
    let v = vendor.to_ascii_lowercase();
    let p = product.to_ascii_lowercase();
    let known: &[(&str, &str)] = &[
        ("qemu", "qemu"),
        ("kvm", "kvm"),
        ("vmware", "vmware"),
        ("innotek", "oracle"),
        ("virtualbox", "oracle"),
        ("xen", "xen"),
        ("amazon ec2", "amazon"),
        ("google compute engine", "google"),
        ("openstack", "openstack"),
        ("bochs", "bochs"),
        ("parallels", "parallels"),
    ];
    if let Some((_, h)) = known.iter().find(|(k, _)| v.contains(k) || p.contains(k)) {
        return Some(h);
    }
    // Hyper-V guests say "Microsoft Corporation" / "Virtual Machine"; Microsoft's own metal
    // (Surface) says the same vendor, so the product must agree.
    (v.contains("microsoft") && p.contains("virtual machine")).then_some("microsoft")
}

/// A host label: how fleet reports, plans and run directories name a host type or host.
pub const LABEL_MAX: usize = 63;

/// Why a host label was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    #[error(
        "{flag} {value:?}: give 1 to {LABEL_MAX} characters of A-Z a-z 0-9 . _ -, not starting with . or -"
    )]
    Bad { flag: &'static str, value: String },
    #[error(
        "the hostname {name:?} is not a valid host label (1 to {LABEL_MAX} of A-Z a-z 0-9 . _ -, not starting with . or -): give --host-label"
    )]
    Hostname { name: String },
}

/// Checks a host label: 1..=63 of `[A-Za-z0-9._-]`, not starting with `.` or `-`, so that it
/// is safe as a file name, a CSV cell and an inventory name alike.
pub fn check_label(flag: &'static str, value: &str) -> Result<String, LabelError> {
    let ok = !value.is_empty()
        && value.len() <= LABEL_MAX
        && !value.starts_with(['.', '-'])
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(LabelError::Bad {
            flag,
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for good in ["node-1", "c5.xlarge", "a", "big_box", &"x".repeat(63)] {
            assert_eq!(check_label("--host-label", good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "-x",
            ".",
            "..",
            "a/b",
            "a b",
            "é",
            "a\nb",
            &"x".repeat(64),
        ] {
            let e = check_label("--host-label", bad).unwrap_err();
            assert!(e.to_string().starts_with("--host-label"), "{e}");
        }
    }

    #[test]
    fn virtualization_verdicts() {
        let j = |v: &str, p: &str, flag, sdv: Option<&str>| {
            judge_virtualization(v.into(), p.into(), flag, sdv.map(Into::into), String::new())
        };
        let metal = j("Dell Inc.", "PowerEdge R650", false, Some("none"));
        assert_eq!(
            (metal.kind.as_str(), metal.hypervisor.as_str()),
            ("bare-metal", "")
        );
        let kvm = j("QEMU", "Standard PC (Q35 + ICH9, 2009)", true, Some("kvm"));
        assert_eq!((kvm.kind.as_str(), kvm.hypervisor.as_str()), ("vm", "kvm"));
        let hyperv = j("Microsoft Corporation", "Virtual Machine", true, None);
        assert_eq!(hyperv.hypervisor, "microsoft");
        let ec2 = j("Amazon EC2", "m5.large", true, None);
        assert_eq!(ec2.hypervisor, "amazon");
        // The flag alone: a VM, the hypervisor unknown.
        let flag = j("", "", true, None);
        assert_eq!((flag.kind.as_str(), flag.hypervisor.as_str()), ("vm", ""));
        assert_eq!(flag.describe(), "vm (hypervisor unknown)");
        // systemd-detect-virt "none" but the flag set: trust the flag.
        assert_eq!(j("", "", true, Some("none")).kind, "vm");
        assert_eq!(j("", "", false, None).kind, "unknown");
        assert_eq!(j("ASUS", "X99", false, None).kind, "bare-metal");
    }

    #[test]
    fn cpuinfo_flag() {
        assert!(cpuinfo_has_hypervisor_flag(
            "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"
        ));
        assert!(!cpuinfo_has_hypervisor_flag(
            "flags\t\t: fpu vme\nmodel name\t: hypervisor-ish\n"
        ));
    }
}
