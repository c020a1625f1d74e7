//! The isolation an instance really has, read back from the host side while it runs: its
//! capability sets, no_new_privs and seccomp state from /proc/PID/status of the agent, which
//! namespaces it does not share with the harness, and the device rules of its cgroup. What
//! lands in the results is what was verified here, not what the profile asked for.

use crate::host::cgroup::{CgroupHost, CgroupMode};
use std::path::PathBuf;

/// Namespace types compared, as /proc/PID/ns names them.
const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];

/// What one instance's agent runs with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Isolation {
    /// CapEff, CapBnd, CapInh, CapAmb as /proc/PID/status prints them (16 hex digits).
    pub cap_eff: String,
    pub cap_bnd: String,
    pub cap_inh: String,
    pub cap_amb: String,
    pub no_new_privs: Option<bool>,
    /// `disabled`, `strict` or `filter`.
    pub seccomp: String,
    pub seccomp_filters: Option<u32>,
    /// Namespace types whose inode differs from the harness's, comma-separated.
    pub ns_private: String,
    /// The device rules in force, see [`device_rules`].
    pub devices: String,
}

/// The value of `key:` in /proc/PID/status text.
fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Reads what `pid` runs with; fields it cannot read stay empty (a process that died). The
/// device rules are those of the cgroup /proc/PID/cgroup says the process is in, not of the
/// one it was meant to join.
pub fn read(pid: i32, host: Option<&CgroupHost>, device_program: Option<u32>) -> Isolation {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| field(&status, k).unwrap_or_default().to_string();
    Isolation {
        cap_eff: get("CapEff"),
        cap_bnd: get("CapBnd"),
        cap_inh: get("CapInh"),
        cap_amb: get("CapAmb"),
        no_new_privs: field(&status, "NoNewPrivs").map(|v| v == "1"),
        seccomp: match field(&status, "Seccomp") {
            Some("0") => "disabled".into(),
            Some("1") => "strict".into(),
            Some("2") => "filter".into(),
            Some(other) => other.to_string(),
            None => String::new(),
        },
        seccomp_filters: field(&status, "Seccomp_filters").and_then(|v| v.parse().ok()),
        ns_private: private_namespaces(pid).join(","),
        devices: host
            .map(|h| device_rules(pid, h, device_program))
            .unwrap_or_default(),
    }
}

/// Namespace types in which `pid` differs from the harness (the host's namespaces, unless the
/// harness itself runs in a container).
pub fn private_namespaces(pid: i32) -> Vec<&'static str> {
    NAMESPACES
        .iter()
        .copied()
        .filter(|ns| {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok();
            let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).ok();
            theirs.is_some() && theirs != ours
        })
        .collect()
}

/// The directory of `pid`'s cgroup in the hierarchy mounted at `mount`, from the line of
/// /proc/PID/cgroup that `pick` selects; None when there is none or its path is not a plain
/// absolute path (never joined then).
fn cgroup_dir(pid: i32, mount: &std::path::Path, pick: impl Fn(&str) -> bool) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        pick(controllers).then_some(path)
    })?;
    let rel = rel.strip_prefix('/')?;
    let plain = std::path::Path::new(rel)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| mount.join(rel))
}

/// The device rules in force for `pid`, read from its own cgroup: on v1 the devices
/// hierarchy's `devices.list` (`all` for the unrestricted `a *:* rwm`), lines joined with
/// `; `; on v2 the eBPF device programs in effect (`ebpf: 1 program (isobench's)`), or `none`
/// when no program confines it. What cannot be read says so.
pub fn device_rules(pid: i32, host: &CgroupHost, ours: Option<u32>) -> String {
    if host.mode == CgroupMode::V2 {
        let Some(dir) = host
            .unified
            .as_deref()
            .and_then(|m| cgroup_dir(pid, m, |c| c.is_empty()))
        else {
            return "unknown: no cgroup2 path in /proc/PID/cgroup".into();
        };
        return match crate::security::devices::effective_programs(&dir) {
            Ok(ids) if ids.is_empty() => "none".into(),
            Ok(ids) => {
                let mine = ours.is_some_and(|id| ids.contains(&id));
                format!(
                    "ebpf: {} program{}{}",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" },
                    if mine { " (isobench's)" } else { "" }
                )
            }
            Err(e) => format!("unreadable: {e}"),
        };
    }
    let Some(mount) = host.devices_v1.as_deref() else {
        return "unknown: no devices hierarchy mounted".into();
    };
    let Some(dir) = cgroup_dir(pid, mount, |c| c.split(',').any(|x| x == "devices")) else {
        return "unknown: no devices line in /proc/PID/cgroup".into();
    };
    let list = dir.join("devices.list");
    match std::fs::read_to_string(&list) {
        Ok(l) if l.trim() == "a *:* rwm" => "all".into(),
        Ok(l) => l.lines().collect::<Vec<_>>().join("; "),
        Err(e) => format!("unreadable: {}: {e}", list.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_status_reads_back() {
        let me = read(std::process::id() as i32, None, None);
        assert_eq!(me.devices, "");
        assert_eq!(me.cap_eff.len(), 16, "{me:?}");
        assert!(me.no_new_privs.is_some());
        assert!(!me.seccomp.is_empty());
        // The harness shares every namespace with itself.
        assert_eq!(me.ns_private, "");
    }

    #[test]
    fn status_fields_are_found_by_exact_key() {
        let s = "Seccomp:\t2\nSeccomp_filters:\t3\nCapEff:\t0000000000000001\n";
        assert_eq!(field(s, "Seccomp"), Some("2"));
        assert_eq!(field(s, "Seccomp_filters"), Some("3"));
        assert_eq!(field(s, "CapBnd"), None);
    }
}
