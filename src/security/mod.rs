//! Security profiles: what confines an instance besides its namespaces and cgroup limits.
//!
//! One profile per scenario (`security = "docker" | "runc" | "none"`), applied to every backend
//! that can take it (our own containers, OCI bundles' config.json; Docker, LXC and gVisor peers
//! when they land), so peers are measured like for like. What each profile holds is data here,
//! in one place: the capability sets, the seccomp allow-list ([`seccomp`]), the device
//! allow-list ([`devices`]) and the masked and read-only /proc paths. What an instance really
//! got is read back from the host side by `measure::isolation`, never assumed from this.

pub mod bpf;
pub mod devices;
pub mod seccomp;

use serde::{Deserialize, Serialize};

/// A scenario's security profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// What `docker run` gives a container by default: Docker's 14 capabilities, Docker's
    /// default seccomp allow-list, no_new_privs, the device allow-list, masked and read-only
    /// /proc paths; inheritable and ambient capabilities empty.
    #[default]
    Docker,
    /// What `runc spec` writes: 3 capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE), plus the
    /// same seccomp allow-list (with the rules Docker grants only to the capabilities runc's
    /// set lacks left out), devices, masks and no_new_privs.
    Runc,
    /// Namespaces and cgroup limits only: every capability, no seccomp, no device rules, no
    /// masks, no no_new_privs. The floor that shows what the other layers cost.
    None,
}

impl Profile {
    pub const ALL: &'static [Profile] = &[Profile::Docker, Profile::Runc, Profile::None];

    pub fn as_str(&self) -> &'static str {
        match self {
            Profile::Docker => "docker",
            Profile::Runc => "runc",
            Profile::None => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.iter().copied().find(|p| p.as_str() == name)
    }

    /// The capabilities the instance keeps in its bounding, permitted and effective sets;
    /// `None` means all of them (the `none` profile drops nothing).
    pub fn capabilities(&self) -> Option<&'static [Cap]> {
        match self {
            Profile::Docker => Some(DOCKER_CAPS),
            Profile::Runc => Some(RUNC_SPEC_CAPS),
            Profile::None => None,
        }
    }

    /// Whether the instance keeps `cap` under this profile.
    pub fn keeps(&self, cap: Cap) -> bool {
        self.capabilities().is_none_or(|caps| caps.contains(&cap))
    }

    /// Whether the profile confines at all beyond namespaces and cgroup limits.
    pub fn confines(&self) -> bool {
        *self != Profile::None
    }

    /// /proc (and /sys) paths hidden from the instance: files get /dev/null bound over them,
    /// directories an empty read-only tmpfs.
    pub fn masked_paths(&self) -> &'static [&'static str] {
        if self.confines() { MASKED_PATHS } else { &[] }
    }

    /// /proc paths the instance sees read-only.
    pub fn readonly_paths(&self) -> &'static [&'static str] {
        if self.confines() { READONLY_PATHS } else { &[] }
    }

    /// The device allow-list, or `None` when devices are not restricted.
    pub fn devices(&self) -> Option<&'static [devices::DeviceRule]> {
        self.confines().then_some(devices::ALLOWED)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Linux capability, by its number in linux/capability.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(pub u32);

/// Capability names by number (linux/capability.h), CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
pub const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

impl Cap {
    pub const CHOWN: Cap = Cap(0);
    pub const DAC_OVERRIDE: Cap = Cap(1);
    pub const DAC_READ_SEARCH: Cap = Cap(2);
    pub const FOWNER: Cap = Cap(3);
    pub const FSETID: Cap = Cap(4);
    pub const KILL: Cap = Cap(5);
    pub const SETGID: Cap = Cap(6);
    pub const SETUID: Cap = Cap(7);
    pub const SETPCAP: Cap = Cap(8);
    pub const NET_BIND_SERVICE: Cap = Cap(10);
    pub const NET_RAW: Cap = Cap(13);
    pub const SYS_MODULE: Cap = Cap(16);
    pub const SYS_RAWIO: Cap = Cap(17);
    pub const SYS_CHROOT: Cap = Cap(18);
    pub const SYS_PTRACE: Cap = Cap(19);
    pub const SYS_PACCT: Cap = Cap(20);
    pub const SYS_ADMIN: Cap = Cap(21);
    pub const SYS_BOOT: Cap = Cap(22);
    pub const SYS_NICE: Cap = Cap(23);
    pub const SYS_TIME: Cap = Cap(25);
    pub const SYS_TTY_CONFIG: Cap = Cap(26);
    pub const MKNOD: Cap = Cap(27);
    pub const AUDIT_WRITE: Cap = Cap(29);
    pub const SETFCAP: Cap = Cap(31);
    pub const SYSLOG: Cap = Cap(34);
    pub const PERFMON: Cap = Cap(38);
    pub const BPF: Cap = Cap(39);

    /// `CAP_CHOWN`, or `cap_41` for a number this table does not know.
    pub fn name(&self) -> String {
        CAP_NAMES
            .get(self.0 as usize)
            .map_or_else(|| format!("cap_{}", self.0), |n| (*n).to_string())
    }

    /// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap), read once:
    /// every container launch asks.
    pub fn last() -> u32 {
        static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *LAST.get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .unwrap_or(CAP_NAMES.len() as u32 - 1)
        })
    }
}

/// The capabilities in the harness's own bounding set: all an instance of the `none` profile
/// can be given (a sandboxed host may withhold some even from root).
pub fn own_bounding_set() -> Vec<Cap> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .map(caps_in)
        .unwrap_or_else(|| (0..=Cap::last()).map(Cap).collect())
}

/// A capability set as the kernel's 64-bit mask (the CapEff/CapBnd format of /proc/PID/status).
pub fn mask(caps: &[Cap]) -> u64 {
    caps.iter().fold(0u64, |m, c| m | (1u64 << c.0))
}

/// The capabilities in `mask`, lowest first.
pub fn caps_in(mask: u64) -> Vec<Cap> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(Cap)
        .collect()
}

/// Docker's default capabilities (moby's oci/caps defaults): what `docker run` keeps.
pub const DOCKER_CAPS: &[Cap] = &[
    Cap::CHOWN,
    Cap::DAC_OVERRIDE,
    Cap::FSETID,
    Cap::FOWNER,
    Cap::MKNOD,
    Cap::NET_RAW,
    Cap::SETGID,
    Cap::SETUID,
    Cap::SETFCAP,
    Cap::SETPCAP,
    Cap::NET_BIND_SERVICE,
    Cap::SYS_CHROOT,
    Cap::KILL,
    Cap::AUDIT_WRITE,
];

/// What `runc spec` writes into a new config.json.
pub const RUNC_SPEC_CAPS: &[Cap] = &[Cap::AUDIT_WRITE, Cap::KILL, Cap::NET_BIND_SERVICE];

/// Masked paths of Docker's and runc's default configs, relative to the container's root.
/// /sys entries matter only where a /sys is mounted (OCI bundles; our own containers mount none).
const MASKED_PATHS: &[&str] = &[
    "proc/acpi",
    "proc/asound",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// Read-only paths of Docker's and runc's default configs.
const READONLY_PATHS: &[&str] = &[
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_keeps_its_fourteen_and_runc_spec_its_three() {
        assert_eq!(DOCKER_CAPS.len(), 14);
        assert!(Profile::Docker.keeps(Cap::MKNOD));
        assert!(!Profile::Runc.keeps(Cap::MKNOD));
        assert!(!Profile::Docker.keeps(Cap::SYS_ADMIN));
        assert!(Profile::None.keeps(Cap::SYS_ADMIN));
        assert_eq!(mask(RUNC_SPEC_CAPS), (1 << 5) | (1 << 10) | (1 << 29));
        assert_eq!(caps_in(mask(DOCKER_CAPS)).len(), 14);
        assert_eq!(Cap(27).name(), "CAP_MKNOD");
        assert_eq!(Cap(63).name(), "cap_63");
    }

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_name(p.as_str()), Some(*p));
        }
        assert_eq!(Profile::from_name("Docker"), None);
    }

    #[test]
    fn none_confines_nothing() {
        assert!(Profile::None.masked_paths().is_empty());
        assert!(Profile::None.readonly_paths().is_empty());
        assert!(Profile::None.devices().is_none());
        assert!(Profile::Docker.masked_paths().contains(&"proc/kcore"));
    }
}
