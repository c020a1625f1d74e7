//! The security profiles on the real kernel: what a root process inside an instance can do
//! under each profile (the agent's `probe` workload, run from inside), what the host reads back
//! (capabilities, no_new_privs, seccomp, namespaces, device rules), the pids limit against a
//! forking workload, and the eBPF device program on a cgroup2 hierarchy.

mod common;
#[path = "common/host.rs"]
mod host;

use common::*;
use isobench::scenario::BackendKind;
use isobench::security::{DOCKER_CAPS, RUNC_SPEC_CAPS, mask};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_isobench");

/// One row of samples.csv as column -> value.
type Row = BTreeMap<String, String>;

fn rows(run_dir: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(run_dir.join("samples.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Runs the probe workload under `profile` on the container, oci-runc and process backends
/// and returns the rows by backend label.
fn probe_run(profile: &str, tmp: &Path) -> BTreeMap<String, Row> {
    let scenario = tmp.join(format!("probe-{profile}.toml"));
    std::fs::write(
        &scenario,
        format!(
            "name = \"probe-{profile}\"\nsecurity = \"{profile}\"\nworkload = \"probe\"\n\
             backends = [\"container\", \"oci\", \"process\"]\ncounts = [1]\nwarmup = 0\n\
             [oci]\nruntimes = [\"runc\"]\n[measure]\nmemory = false\nidle_window_s = 0\n"
        ),
    )
    .unwrap();
    let out = tmp.join(format!("run-{profile}"));
    let state = tmp.join("state");
    let o = Command::new(BIN)
        .args(["run", "-q"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "run under {profile} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["security"][0], profile, "meta.json names the profile");
    let by_label: BTreeMap<String, Row> = rows(&out)
        .into_iter()
        .map(|r| (r["backend"].clone(), r))
        .collect();
    // A backend the run found unavailable has no row: say what the run said about it.
    for label in ["container", "oci-runc", "process"] {
        assert!(
            by_label.contains_key(label),
            "no {label} row under {profile} (rows: {:?}); the run said: {}",
            by_label.keys().collect::<Vec<_>>(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    by_label
}

fn probe(row: &Row) -> BTreeMap<String, String> {
    serde_json::from_str(&row["probe"]).unwrap_or_else(|e| panic!("probe {:?}: {e}", row["probe"]))
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("{v:?}: {e}"))
}

/// What a masked file reads as inside: `masked`, or ENOENT on kernels built without it (this
/// development host has no /proc/kcore and no /proc/sysrq-trigger).
fn expect_masked(p: &BTreeMap<String, String>, key: &str, host_path: &str) {
    let want = if Path::new(host_path).exists() {
        "masked"
    } else {
        "ENOENT"
    };
    assert_eq!(p[key], want, "{key}: {p:?}");
}

fn expect_read_only(p: &BTreeMap<String, String>, key: &str, host_path: &str) {
    let want = if Path::new(host_path).exists() {
        "EROFS"
    } else {
        "ENOENT"
    };
    assert_eq!(p[key], want, "{key}: {p:?}");
}

#[test]
fn each_profile_confines_our_containers_and_runc_alike_and_the_rows_say_so() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let tmp = tempdir();
    let tmp = tmp.path();
    let all_ns = "cgroup,ipc,mnt,net,pid,uts";

    // docker: Docker's 14 capabilities, seccomp, no_new_privs, the device allow-list, masks.
    let rows = probe_run("docker", tmp);
    for backend in ["container", "oci-runc"] {
        let r = &rows[backend];
        assert_eq!(r["ok"], "true", "{r:?}");
        assert_eq!(r["security"], "docker");
        assert_eq!(hex(&r["cap_eff"]), mask(DOCKER_CAPS), "{backend}");
        assert_eq!(hex(&r["cap_bnd"]), mask(DOCKER_CAPS), "{backend}");
        assert_eq!(
            hex(&r["cap_inh"]),
            0,
            "{backend}: inheritable must be empty"
        );
        assert_eq!(hex(&r["cap_amb"]), 0, "{backend}: ambient must be empty");
        assert_eq!(r["no_new_privs"], "true");
        assert_eq!(r["seccomp"], "filter");
        assert_eq!(r["ns_private"], all_ns);
        let p = probe(r);
        assert_eq!(p["mount_tmpfs"], "EPERM", "{backend}: {p:?}");
        assert_eq!(p["unshare_user"], "EPERM", "{backend}: {p:?}");
        // The filter's second action: clone3 gets ENOSYS, not the default EPERM.
        assert_eq!(p["clone3"], "ENOSYS", "{backend}: {p:?}");
        assert_eq!(p["timer_list"], "masked", "{backend}: {p:?}");
        expect_masked(&p, "kcore", "/proc/kcore");
        expect_masked(&p, "acpi", "/proc/acpi");
        expect_read_only(&p, "sysrq_trigger_open_write", "/proc/sysrq-trigger");
        assert_eq!(p["proc_sys_open_write"], "EROFS", "{backend}: {p:?}");
        assert_ne!(p["open_block"], "ok", "{backend}: {p:?}");
    }
    let c = &rows["container"];
    // Ours: one seccomp filter, as the runtimes' (security/bpf.rs), and no mknod of a block
    // device.
    assert_eq!(c["seccomp_filters"], "1");
    assert_eq!(probe(c)["mknod_block"], "EPERM");
    assert_eq!(
        c["devices"],
        "c 1:3 rwm; c 1:5 rwm; c 1:7 rwm; c 1:8 rwm; c 1:9 rwm; c 5:0 rwm; c 5:2 rwm; c 136:* rwm"
    );
    // runc appends its own defaults, which let mknod through but not the open: the row shows
    // what was verified, and the probe agrees with it.
    let o = &rows["oci-runc"];
    assert_eq!(o["seccomp_filters"], "1");
    let p = probe(o);
    if o["devices"].contains("b *:* m") {
        assert_eq!(p["mknod_block"], "ok", "{p:?}");
    } else {
        assert_eq!(p["mknod_block"], "EPERM", "{p:?}");
    }
    assert_ne!(p["open_block"], "ok", "{p:?}");
    // A plain process takes no profile: it has the harness's capabilities and namespaces.
    let pr = &rows["process"];
    assert_eq!(pr["security"], "");
    assert_eq!(pr["ns_private"], "");
    assert_eq!(pr["seccomp"], "disabled");

    // runc: runc spec's three capabilities; without CAP_MKNOD even runc's own rules cannot
    // let a block device node be made.
    let rows = probe_run("runc", tmp);
    for backend in ["container", "oci-runc"] {
        let r = &rows[backend];
        assert_eq!(r["ok"], "true", "{r:?}");
        assert_eq!(hex(&r["cap_eff"]), mask(RUNC_SPEC_CAPS), "{backend}");
        assert_eq!(hex(&r["cap_bnd"]), mask(RUNC_SPEC_CAPS), "{backend}");
        assert_eq!(r["seccomp"], "filter");
        let p = probe(r);
        assert_eq!(p["mknod_block"], "EPERM", "{backend}: {p:?}");
        assert_eq!(p["mount_tmpfs"], "EPERM", "{backend}: {p:?}");
        assert_eq!(p["unshare_user"], "EPERM", "{backend}: {p:?}");
    }

    // none: namespaces and limits only. Root inside can mknod, mount in its own mount
    // namespace and make a user namespace; nothing is masked.
    let rows = probe_run("none", tmp);
    for backend in ["container", "oci-runc"] {
        let r = &rows[backend];
        assert_eq!(r["ok"], "true", "{r:?}");
        assert_eq!(r["security"], "none");
        assert_eq!(r["no_new_privs"], "false", "{backend}");
        assert_eq!(r["seccomp"], "disabled", "{backend}");
        assert_eq!(r["ns_private"], all_ns);
        let p = probe(r);
        assert_eq!(p["mknod_block"], "ok", "{backend}: {p:?}");
        assert_eq!(p["mount_tmpfs"], "ok", "{backend}: {p:?}");
        assert_eq!(p["unshare_user"], "ok", "{backend}: {p:?}");
        assert_eq!(p["clone3"], "EINVAL", "{backend}: {p:?}");
        assert_eq!(p["timer_list"], "readable", "{backend}: {p:?}");
        if Path::new("/proc/acpi").is_dir() {
            assert_eq!(p["acpi"], "readable", "{backend}: {p:?}");
        }
    }
    assert_eq!(rows["container"]["devices"], "all");
}

#[test]
fn a_forking_workload_stops_at_the_pids_limit_with_a_clear_error_under_every_profile() {
    if skip::unless_root() {
        return;
    }
    for profile in ["docker", "runc", "none"] {
        let run = TestRun::new(
            BackendKind::Container,
            &scenario(&format!(
                "security = \"{profile}\"\nworkload = {{ fork = 100 }}\n[limits]\npids = 16\n"
            )),
        );
        let mut inst = run.backend().launch("fork").expect("container launches");
        let err = inst
            .wait_done(
                isobench::deadline::Deadline::from_now(Duration::from_secs(30), "test"),
                &run.ctx.cancel,
            )
            .expect_err("100 children cannot fit under pids.max = 16");
        let msg = err.to_string();
        assert!(
            msg.contains("fork 100: refused after") && msg.contains("EAGAIN"),
            "{profile}: {msg}"
        );
        // The cgroup holds exactly its limit: the agent and 15 children.
        assert_eq!(inst.pids().len(), 16, "{profile}: processes in the cgroup");
        inst.teardown().expect("teardown of a full instance");
    }
}

/// The cgroup2 hierarchy of this host: the whole tree on v2, the controller-less mount of a
/// hybrid host (eBPF device programs attach to any cgroup2 directory).
fn cgroup2_root() -> PathBuf {
    isobench::host::cgroup::CgroupHost::detect()
        .unwrap()
        .unified
        .expect("a cgroup2 mount (v2 or hybrid)")
}

/// A device outside the allow-list that this host lets root open (a sandboxed host's own
/// device rules may refuse some, such as its disks), to try from inside the confined cgroup.
fn some_unlisted_device() -> PathBuf {
    [
        "/dev/kvm",
        "/dev/kmsg",
        "/dev/loop-control",
        "/dev/net/tun",
        "/dev/vda",
        "/dev/sda",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| opens(p))
    .expect("a device outside the allow-list that root can open here")
}

/// Whether a shell can open `dev` for reading (nothing is read).
fn opens(dev: &Path) -> bool {
    Command::new("/bin/sh")
        .args(["-c", &format!("exec 3<{}", dev.display())])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn the_ebpf_device_program_allows_the_list_and_nothing_else() {
    use isobench::security::devices::{ALLOWED, DeviceProgram, effective_programs};
    if skip::unless_root() {
        return;
    }
    let dir = cgroup2_root().join(format!("isobench-devtest-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let guard = RemoveCgroup(dir.clone());
    let prog = DeviceProgram::load(ALLOWED).expect("the kernel accepts the program");
    prog.attach(&dir).expect("attach to a cgroup2 directory");
    assert_eq!(effective_programs(&dir).unwrap(), vec![prog.id]);

    let tmp = tempdir();
    let tmp = tmp.path();
    let dev = some_unlisted_device();
    let script = format!(
        "head -c1 /dev/zero >/dev/null && echo zero-ok; \
         head -c1 /dev/urandom >/dev/null && echo urandom-ok; \
         mknod {node} b 7 0 2>/dev/null || echo mknod-denied; \
         mknod {cnode} c 1 3 && echo mknod-null-ok; \
         (exec 3<{dev}) 2>/dev/null || echo unlisted-denied",
        node = tmp.join("blk").display(),
        cnode = tmp.join("null").display(),
        dev = dev.display(),
    );
    let procs = std::ffi::CString::new(
        dir.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let out = {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &script]);
        // SAFETY: the step runs between fork and exec and only calls open/write/close on a
        // path built before the fork (no allocation, no locks).
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let said = String::from_utf8_lossy(&out.stdout);
    for want in [
        "zero-ok",
        "urandom-ok",
        "mknod-denied",
        "mknod-null-ok",
        "unlisted-denied",
    ] {
        assert!(said.contains(want), "{want} missing:\n{said}");
    }
    // Outside the cgroup the same device opens: the program made the difference.
    assert!(opens(&dev), "{} opens outside", dev.display());
    drop(guard);
}

struct RemoveCgroup(PathBuf);

impl Drop for RemoveCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A fresh directory under the target's tmp dir (beside the binary, so image layers can
/// hard-link the agent), removed when the returned guard drops.
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("isolation-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

#[test]
fn the_syscalls_workload_measures_every_operation_inside_each_instance() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let tmp = tempdir();
    let scenario = tmp.path().join("syscalls.toml");
    std::fs::write(
        &scenario,
        "name = \"sys\"\nworkload = { syscalls = 5 }\nbackends = [\"process\", \"container\"]\n\
         counts = [1]\nwarmup = 0\n[measure]\nmemory = false\nidle_window_s = 0\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let o = Command::new(BIN)
        .args(["run", "-q"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("system calls, median ns per operation"),
        "{stdout}"
    );
    let mut r = csv::Reader::from_path(out.join("syscalls.csv")).unwrap();
    let rows: Vec<isobench::results::record::SyscallRow> =
        r.deserialize().map(|x| x.unwrap()).collect();
    let cost = |backend: &str, op: &str| {
        let row = rows
            .iter()
            .find(|r| r.backend == backend && r.op == op)
            .unwrap_or_else(|| panic!("no {op} row for {backend}: {rows:?}"));
        assert!(row.ops > 0 && row.ns_per_op > 0.0, "{row:?}");
        row.ns_per_op
    };
    for backend in ["process", "container"] {
        for op in isobench::agent::syscalls::OPS {
            cost(backend, op);
        }
    }
    // The first write to a file of the image copies it up in a container; a process writes
    // in place: at least ten times the cost (measured: about a hundred times).
    assert!(
        cost("container", "first_write") > 10.0 * cost("process", "first_write"),
        "copy-up {} ns vs plain write {} ns",
        cost("container", "first_write"),
        cost("process", "first_write")
    );
    // One row per instance and operation, nothing else.
    assert_eq!(rows.len(), 2 * isobench::agent::syscalls::OPS.len());
}
