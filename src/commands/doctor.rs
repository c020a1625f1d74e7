//! `isobench doctor`: what this host can run, each line ok or missing with how to fix it.
//! Namespace and overlayfs checks are functional (a forked child tries them), not guesses
//! from file presence.

use crate::host::cgroup::CgroupHost;
use std::path::Path;

/// One line of `doctor`: printed as text or JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// A missing required item stops the default scenario; others only limit what can run.
    pub required: bool,
    pub detail: String,
    pub fix: String,
}

fn check(name: &str, required: bool, r: Result<String, (String, String)>) -> Check {
    match r {
        Ok(detail) => Check {
            name: name.into(),
            ok: true,
            required,
            detail,
            fix: String::new(),
        },
        Err((detail, fix)) => Check {
            name: name.into(),
            ok: false,
            required,
            detail,
            fix,
        },
    }
}

pub const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("pid", libc::CLONE_NEWPID),
    ("mount", libc::CLONE_NEWNS),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// Runs `f` in a forked child and reports whether it returned true.
fn in_child(f: impl FnOnce() -> bool) -> bool {
    // SAFETY: doctor runs before any other thread exists, so the child may call anything.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let ok = f();
            // SAFETY: leave the child without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            matches!(
                nix::sys::wait::waitpid(child, None),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
            )
        }
        Err(_) => false,
    }
}

fn overlay_works() -> bool {
    let base = std::env::temp_dir().join(format!("isobench-doctor-{}", std::process::id()));
    let dirs = ["lower", "upper", "work", "merged"].map(|d| base.join(d));
    if dirs.iter().any(|d| std::fs::create_dir_all(d).is_err()) {
        return false;
    }
    let ok = in_child(|| {
        use nix::mount::{MsFlags, mount};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_ok()
            && mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .is_ok()
            && mount(
                Some("overlay"),
                &dirs[3],
                Some("overlay"),
                MsFlags::empty(),
                Some(
                    format!(
                        "lowerdir={},upperdir={},workdir={}",
                        dirs[0].display(),
                        dirs[1].display(),
                        dirs[2].display()
                    )
                    .as_str(),
                ),
            )
            .is_ok()
    });
    let _ = std::fs::remove_dir_all(&base);
    ok
}

fn version_of(cmd: &str, arg: &str) -> Option<String> {
    let out = std::process::Command::new(cmd).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or("").trim().to_string())
}

const SETUP: &str = "run scripts/setup.sh as root";

/// On v1 hierarchies mounted without `favordynmods`, moving a process into a cgroup (every
/// container's and process's join) first waits for an RCU grace period when no other move
/// happened within one: milliseconds on a busy host, visible in `cgroup_ms` at N = 1 (issue
/// 12). Said, not changed: the host's mount options are not isobench's to set.
fn grace_period_note(h: &CgroupHost) -> &'static str {
    let favoured = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .any(|l| l.contains(" - cgroup ") && l.contains("favordynmods"))
        })
        .unwrap_or(false);
    if h.mode == crate::host::cgroup::CgroupMode::V2 || favoured {
        ""
    } else {
        "; v1 without favordynmods: a cgroup join after a quiet spell waits an RCU grace period (cgroup_ms)"
    }
}

pub fn run_checks() -> Vec<Check> {
    let mut v = Vec::new();
    let root = crate::host::is_root();
    v.push(check(
        "root",
        true,
        if root {
            Ok("running as root".into())
        } else {
            Err(("not root".into(), "run isobench as root (sudo)".into()))
        },
    ));
    v.push(check(
        "cgroups",
        true,
        match CgroupHost::detect() {
            Ok(h) => {
                let c = h.controllers();
                let missing: Vec<&str> = ["memory", "cpu", "pids"]
                    .into_iter()
                    .filter(|w| !c.iter().any(|x| x == w))
                    .collect();
                if missing.is_empty() {
                    Ok(format!(
                        "{} ({}){}",
                        h.mode.as_str(),
                        c.join(", "),
                        grace_period_note(&h)
                    ))
                } else {
                    Err((
                        format!(
                            "{}: controllers {} missing",
                            h.mode.as_str(),
                            missing.join(", ")
                        ),
                        "enable them (v2: cgroup.subtree_control of the root)".into(),
                    ))
                }
            }
            Err(e) => Err((e.to_string(), "mount cgroup2 at /sys/fs/cgroup".into())),
        },
    ));
    for (name, flag) in NAMESPACES {
        let ok = root
            && in_child(|| {
                nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(*flag)).is_ok()
            });
        v.push(check(
            &format!("namespace {name}"),
            true,
            if ok {
                Ok("unshare works".into())
            } else {
                Err((
                    if root {
                        "unshare failed".into()
                    } else {
                        "not checked (needs root)".into()
                    },
                    format!("a kernel with CONFIG_{}_NS", name.to_uppercase()),
                ))
            },
        ));
    }
    v.push(check(
        "overlayfs",
        true,
        if root && overlay_works() {
            Ok("mounts".into())
        } else {
            Err((
                "cannot mount overlay".into(),
                "modprobe overlay (and run as root)".into(),
            ))
        },
    ));
    v.push(check(
        "busybox",
        true,
        crate::image::find_busybox()
            .map(|p| format!("{} (static)", p.display()))
            .map_err(|e| (e.to_string(), SETUP.into())),
    ));
    v.push(check(
        "unshare",
        false,
        version_of("unshare", "--version")
            .ok_or_else(|| ("not found".into(), "install util-linux".into())),
    ));
    for rt in ["runc", "crun"] {
        v.push(check(
            rt,
            false,
            version_of(rt, "--version")
                .ok_or_else(|| ("not found (needed by the oci backend)".into(), SETUP.into())),
        ));
    }
    v.push(docker_check(root));
    v.push(check(
        "runsc",
        false,
        version_of("runsc", "--version")
            .map(|ver| {
                let platforms = std::process::Command::new("runsc")
                    .args(["help", "platforms"])
                    .output()
                    .map(|o| {
                        String::from_utf8_lossy(&o.stdout)
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                format!("{ver}; platforms: {platforms}")
            })
            .ok_or_else(|| {
                (
                    "not found (needed by the gvisor backend)".into(),
                    SETUP.into(),
                )
            }),
    ));
    v.push(check(
        "lxc",
        false,
        version_of("lxc-start", "--version")
            .map(|ver| format!("LXC {ver}"))
            .ok_or_else(|| {
                (
                    "lxc-start not found (needed by the lxc backend)".into(),
                    SETUP.into(),
                )
            }),
    ));
    v.push(check(
        "qemu",
        false,
        version_of("qemu-system-x86_64", "--version").ok_or_else(|| {
            (
                "qemu-system-x86_64 not found (needed by the vm backend)".into(),
                SETUP.into(),
            )
        }),
    ));
    if root && crate::host::exec::which(crate::backend::vm::qemu::QEMU).is_some() {
        v.extend(vm_checks());
    } else {
        v.push(check(
            "kvm",
            false,
            Err(("not probed (needs root and QEMU)".into(), SETUP.into())),
        ));
    }
    v
}

/// The docker backend's engine: a daemon that answers, or a private dockerd started (and
/// stopped) in a scratch state dir exactly as a run would start one.
fn docker_check(root: bool) -> Check {
    use crate::backend::docker::{cli, daemon::Engine};
    let name = "docker";
    let Some(exe) = cli::find_cli() else {
        return check(
            name,
            false,
            Err((
                "the docker CLI is not on PATH (needed by the docker backend)".into(),
                SETUP.into(),
            )),
        );
    };
    if !root {
        return check(
            name,
            false,
            Err((
                "not probed (needs root)".into(),
                "run isobench as root (sudo)".into(),
            )),
        );
    }
    let created = crate::host::run_id::RunId::for_this_process("doctor")
        .map_err(|e| e.to_string())
        .and_then(|id| {
            let root = Path::new(crate::host::state_dir::DEFAULT_STATE_ROOT);
            crate::host::state_dir::create(root, &id, root)
                .map(|c| (id, c))
                .map_err(|e| e.to_string())
        });
    let (run_id, created) = match created {
        Ok(c) => c,
        Err(e) => return check(name, false, Err((e, String::new()))),
    };
    let r = match Engine::connect_or_start(&exe, run_id.as_str(), &created.path) {
        Ok(mut engine) => {
            let said = engine.info.describe();
            let left = engine.stop();
            if left.is_empty() {
                Ok(said)
            } else {
                let left: Vec<String> = left.iter().map(ToString::to_string).collect();
                Err((
                    format!("{said}; stopping it: {}", left.join("; ")),
                    "isobench clean".into(),
                ))
            }
        }
        Err(e) => Err((e.to_string(), SETUP.into())),
    };
    let _ = crate::host::cgroup::CgroupHost::remove_run_everywhere(run_id.as_str());
    let _ = crate::host::remove_dir_tree(&created.path);
    crate::host::remove_made(&created.root_made);
    check(name, false, r)
}

/// Prepares a real `vm` backend in a scratch state dir: that finds the guest kernel, builds
/// the initramfs and base disk, and runs the KVM probe exactly as a run would.
fn vm_checks() -> Vec<Check> {
    // What can fail without a state dir is settled first, so no early return leaves one.
    let toml = "name = \"doctor\"\nbackends = [\"vm\"]\ncounts = [1]\n";
    let scenario = match crate::scenario::Scenario::parse(toml, "doctor", Path::new("/")) {
        Ok(s) => s,
        Err(e) => return vec![check("vm", false, Err((e.to_string(), String::new())))],
    };
    let Ok(agent_exe) = std::env::current_exe() else {
        return vec![check(
            "vm",
            false,
            Err(("cannot locate the isobench binary".into(), String::new())),
        )];
    };
    // A state dir like a run's (owner file included), so `isobench clean` can remove what a
    // killed doctor left.
    let created = crate::host::run_id::RunId::for_this_process("doctor")
        .map_err(|e| e.to_string())
        .and_then(|id| {
            let root = Path::new(crate::host::state_dir::DEFAULT_STATE_ROOT);
            crate::host::state_dir::create(root, &id, root)
                .map(|c| (id, c))
                .map_err(|e| e.to_string())
        });
    let (run_id, created) = match created {
        Ok(c) => c,
        Err(e) => return vec![check("vm", false, Err((e, String::new())))],
    };
    let state_dir = created.path.clone();
    let ctx = crate::backend::RunContext {
        run_id: run_id.to_string(),
        scenario: std::sync::Arc::new(scenario),
        state_dir: state_dir.clone(),
        agent_exe,
        cancel: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        cache_dir: crate::host::state_dir::DEFAULT_CACHE_DIR.into(),
    };
    let out = match crate::backend::vm::VmBackend::new(ctx) {
        Ok(b) => {
            use crate::backend::Backend;
            let kvm = b.accel() == "kvm";
            let v = vec![
                check("guest", false, Ok(b.describe_guest())),
                check(
                    "kvm",
                    false,
                    if kvm {
                        Ok(b.accel_reason.clone())
                    } else {
                        Err((
                            b.accel_reason.clone(),
                            "VMs run under TCG (slower); enable nested virtualization or fix KVM"
                                .into(),
                        ))
                    },
                ),
            ];
            let _ = b.finish();
            v
        }
        Err(e) => vec![check("vm", false, Err((e.to_string(), SETUP.into())))],
    };
    let _ = crate::host::remove_dir_tree(&state_dir);
    crate::host::remove_made(&created.root_made);
    out
}

pub fn render(checks: &[Check]) -> String {
    let w = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut s = String::new();
    for c in checks {
        let status = if c.ok {
            "ok"
        } else if c.required {
            "MISSING"
        } else {
            "missing"
        };
        s.push_str(&format!("{:<w$}  {:<7}  {}", c.name, status, c.detail));
        if !c.ok {
            s.push_str(&format!(" -> fix: {}", c.fix));
        }
        s.push('\n');
    }
    s
}

/// Runs `isobench doctor`: exit 0 when every required check passed, 2 otherwise.
pub fn command(format: crate::cli::Format) -> i32 {
    let checks = run_checks();
    if format == crate::cli::Format::Json {
        match serde_json::to_string_pretty(&checks) {
            Ok(t) => outln!("{t}"),
            Err(e) => {
                eprintln!("isobench: doctor: {e}");
                return crate::exit::MEASURED_FAILURE;
            }
        }
    } else {
        out!("{}", render(&checks));
    }
    if checks.iter().all(|c| c.ok || !c.required) {
        crate::exit::OK
    } else {
        crate::exit::BAD_INPUT
    }
}
