//! The pure cgroup v2 paths, for real: scripts/cgroup-v2-guest.sh boots a QEMU guest (TCG)
//! whose only hierarchy is cgroup2, runs this build's isobench there (process, container and
//! OCI backends with limits, an OOM batch, a SIGKILLed run and `clean`) and brings the run
//! directories back. The guest's own checks are in scripts/cgroup-v2-guest/checks/; this test
//! reads the returned files again itself, so that a guest that checked nothing cannot pass.
//!
//! Needs qemu-system-x86_64, a /boot/vmlinuz-*-cloud-amd64 with its modules, busybox, runc and
//! crun (scripts/setup.sh). Without them the test fails, unless ISOBENCH_ALLOW_SKIP=1.

#[path = "common/skip.rs"]
mod skip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cgroup-v2-guest.sh");
const ISOBENCH: &str = env!("CARGO_BIN_EXE_isobench");

/// What the script needs on the host, or why it cannot run. Missing parts fail the test unless
/// ISOBENCH_ALLOW_SKIP=1, in which case it returns true after saying what is skipped.
fn skip_unless_guest_can_boot() -> bool {
    let mut missing = Vec::new();
    for cmd in ["qemu-system-x86_64", "busybox", "runc", "crun", "setpriv"] {
        if isobench::host::exec::which(cmd).is_none() {
            missing.push(cmd.to_string());
        }
    }
    let cloud_kernel = std::fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("vmlinuz-") && n.ends_with("-cloud-amd64")
        });
    if !cloud_kernel {
        missing.push("/boot/vmlinuz-*-cloud-amd64".into());
    }
    if missing.is_empty() {
        return false;
    }
    skip::because(&format!(
        "the cgroup v2 guest needs {} (scripts/setup.sh)",
        missing.join(", ")
    ))
}

/// A fresh directory of this test under the target's temp dir.
fn test_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cgroup-v2-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// samples.csv as one map per row, column name to value.
fn rows(run: &Path) -> Vec<BTreeMap<String, String>> {
    let path = run.join("samples.csv");
    let mut r = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .zip(rec.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn meta(run: &Path) -> serde_json::Value {
    serde_json::from_str(&read(&run.join("meta.json"))).unwrap()
}

/// The values read back from live instance cgroups for `file`, per instance whose name
/// starts with `prefix` (cgroup-readback.txt: "INSTANCE FILE: VALUE").
fn readback(run: &Path, prefix: &str, file: &str) -> BTreeMap<String, String> {
    read(&run.join("cgroup-readback.txt"))
        .lines()
        .filter_map(|l| {
            let (inst, rest) = l.split_once(' ')?;
            let value = rest.strip_prefix(file)?.strip_prefix(": ")?;
            inst.starts_with(prefix)
                .then(|| (inst.to_string(), value.to_string()))
        })
        .collect()
}

/// Every process whose command line mentions `needle` (the test's own dirs), as "pid cmdline".
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            out.push(format!("{name} {cmd}"));
        }
    }
    out
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_v2_guest_runs_every_cgroup_path_and_leaves_nothing() {
    if skip_unless_guest_can_boot() {
        return;
    }
    let dir = test_dir("guest");
    let (out, tmp) = (dir.join("out"), dir.join("tmp"));
    std::fs::create_dir_all(&tmp).unwrap();
    let start = Instant::now();
    let res = Command::new(SCRIPT)
        .arg(&out)
        .arg(ISOBENCH)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let took = start.elapsed();
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    let tail: Vec<&str> = console.lines().rev().take(60).collect();
    assert!(
        res.status.success(),
        "{res:?}\nconsole (last lines, newest first):\n{}",
        tail.join("\n")
    );
    eprintln!(
        "guest run: {:.0} s\n{}",
        took.as_secs_f64(),
        String::from_utf8_lossy(&res.stdout)
    );
    assert!(
        console.contains("reboot: Power down"),
        "the guest powered off by itself"
    );

    // The host: the work dir is gone, and no QEMU of this test runs.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    assert_eq!(
        processes_mentioning(&tmp.to_string_lossy()),
        Vec::<String>::new()
    );

    // The guest's verdicts: all passed, and the ones this test relies on were made.
    assert_eq!(read(&out.join("guest-status")).trim(), "0");
    let summary = read(&out.join("summary.txt"));
    assert!(!summary.contains("FAIL"), "{summary}");
    for id in [
        "mode.no-v1",
        "mode.doctor",
        "limits.memory.max.container",
        "limits.cpu.max.oci-runc",
        "limits.pids.max.oci-crun",
        "limits.root-delegation",
        "oom.kernel",
        "oom.error",
        "kill.stray",
        "kill.nothing-left",
        "iso.main.devices",
        "probe.docker.inside",
        "probe.none",
    ] {
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with(&format!("ok   {id}: "))),
            "check {id} missing from summary.txt:\n{summary}"
        );
    }

    // Every run saw cgroup v2 with the controllers it needs.
    let (main, oci, oom, kill) = (
        out.join("main"),
        out.join("oci"),
        out.join("oom"),
        out.join("kill"),
    );
    for run in [&main, &oci, &oom, &kill] {
        let m = meta(run);
        assert_eq!(m["cgroup_mode"], "v2", "{}", run.display());
        let ctl = m["cgroup_controllers"].as_array().unwrap();
        for c in ["cpu", "memory", "pids"] {
            assert!(ctl.iter().any(|x| x == c), "{c} in {ctl:?}");
        }
    }

    // The main run: every instance ok, each charged its 8 MiB in its own cgroup.
    let main_rows = rows(&main);
    for backend in ["process", "container"] {
        for (n, want) in [("1", 2), ("10", 20)] {
            let batch: Vec<_> = main_rows
                .iter()
                .filter(|r| r["backend"] == backend && r["n"] == n)
                .collect();
            assert_eq!(batch.len(), want, "{backend} N={n}");
            for r in batch {
                assert_eq!(r["ok"], "true", "{r:?}");
                let cg: u64 = r["cgroup_mem_kib"].parse().unwrap_or(0);
                assert!(cg >= 8192, "memory.current of {r:?}");
                assert!(r["idle_cpu_ms_per_s"].parse::<f64>().is_ok(), "{r:?}");
            }
        }
    }
    let oci_rows = rows(&oci);
    for backend in ["oci-runc", "oci-crun"] {
        let b: Vec<_> = oci_rows
            .iter()
            .filter(|r| r["backend"] == backend)
            .collect();
        assert_eq!(b.len(), 5, "{backend}: N = 1 and 4");
        assert!(b.iter().all(|r| r["ok"] == "true"), "{b:?}");
    }

    // The limits in force, read back from the live cgroups.
    for (run, prefix) in [
        (&main, "container-n"),
        (&oci, "oci-runc-n"),
        (&oci, "oci-crun-n"),
    ] {
        for (file, want) in [
            ("memory.max", "33554432"),
            ("cpu.max", "50000 100000"),
            ("pids.max", "32"),
        ] {
            let got = readback(run, prefix, file);
            assert!(!got.is_empty(), "no {file} read back for {prefix}");
            for (inst, v) in &got {
                assert_eq!(v, want, "{inst} {file}");
            }
        }
    }
    assert!(
        readback(&main, "process-n", "memory.max")
            .values()
            .all(|v| v == "max"),
        "process instances are accounting-only"
    );

    // The OOM batch: both instances killed by the kernel inside their own memory cgroup.
    assert_eq!(read(&oom.join("exit-code")).trim(), "1");
    let oom_rows = rows(&oom);
    assert_eq!(oom_rows.len(), 2, "{oom_rows:?}");
    for r in &oom_rows {
        assert_eq!(r["ok"], "false", "{r:?}");
        assert!(
            r["error"].starts_with("oom-killed at memory limit 16 MiB"),
            "the row names the OOM kill (memory.events oom_kill) and the limit: {r:?}"
        );
    }
    let run_id = meta(&oom)["run_id"].as_str().unwrap().to_string();
    let dmesg = read(&oom.join("dmesg-oom.txt"));
    let kills = dmesg
        .lines()
        .filter(|l| {
            l.contains("constraint=CONSTRAINT_MEMCG")
                && l.contains(&format!("oom_memcg=/isobench/{run_id}/container-n2-"))
        })
        .count();
    assert_eq!(kills, 2, "{dmesg}");

    // The security profiles on v2: our containers' device allow-list is isobench's eBPF
    // program, and from inside, under `docker`, root cannot mknod a block device, read
    // /proc/kcore or write /proc/sysrq-trigger; under `none` it can mknod.
    let probe = out.join("probe");
    let probe_rows = rows(&probe);
    let row = |backend: &str| {
        probe_rows
            .iter()
            .find(|r| r["backend"] == backend)
            .unwrap_or_else(|| panic!("no {backend} row: {probe_rows:?}"))
    };
    let probes = |backend: &str| -> BTreeMap<String, String> {
        serde_json::from_str(&row(backend)["probe"]).unwrap()
    };
    assert_eq!(
        row("container+docker")["devices"],
        "ebpf: 1 program (isobench's)"
    );
    let p = probes("container+docker");
    assert_eq!(p["mknod_block"], "EPERM", "{p:?}");
    assert_eq!(p["kcore"], "masked", "{p:?}");
    assert_eq!(p["sysrq_trigger_open_write"], "EROFS", "{p:?}");
    assert_eq!(p["unshare_user"], "EPERM", "{p:?}");
    assert_eq!(row("container+none")["devices"], "none");
    assert_eq!(probes("container+none")["mknod_block"], "ok");
    assert_ne!(probes("oci-runc+docker")["open_block"], "ok");
    for r in &main_rows {
        if r["backend"] == "container" {
            assert_eq!(r["devices"], "ebpf: 1 program (isobench's)", "{r:?}");
        }
    }

    // Nothing of any run left in the guest; the SIGKILLed one needed clean.
    for run in [&main, &oci, &oom, &kill, &probe] {
        let l = read(&run.join("leftovers.txt"));
        assert!(l.is_empty(), "{}: {l}", run.display());
    }
    assert!(
        read(&kill.join("left-after-kill.txt")).contains("cgroup /sys/fs/cgroup/isobench/"),
        "a SIGKILLed run leaves its cgroups to clean"
    );
    assert!(read(&kill.join("clean.txt")).contains("removed cgroup /sys/fs/cgroup/isobench/"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_or_killed_script_leaves_no_qemu_and_no_work_dir() {
    if skip_unless_guest_can_boot() {
        return;
    }
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for (signal, code) in [(Signal::SIGTERM, Some(143)), (Signal::SIGKILL, None)] {
        let dir = test_dir(&format!("{signal:?}").to_lowercase());
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let needle = tmp.to_string_lossy().into_owned();
        let mut child = Command::new(SCRIPT)
            .arg(dir.join("out"))
            .arg(ISOBENCH)
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("QEMU starts", Duration::from_secs(120), || {
            processes_mentioning(&needle)
                .iter()
                .any(|p| p.contains("qemu-system-x86_64"))
        });
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), code, "{signal:?}: {status:?}");
        // QEMU dies with the script: by the trap on SIGTERM, by its parent-death signal on
        // SIGKILL.
        wait_for("QEMU is gone", Duration::from_secs(10), || {
            processes_mentioning(&needle).is_empty()
        });
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
        match signal {
            // A trapped signal removes the work dir.
            Signal::SIGTERM => assert!(left.is_empty(), "{left:?}"),
            // SIGKILL cannot be trapped: the work dir (initramfs, result image) stays.
            _ => assert_eq!(left.len(), 1, "{left:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// One bad invocation of the script and what its error line must name.
struct BadCase<'a> {
    args: Vec<&'a std::ffi::OsStr>,
    env: Vec<(&'static str, &'static str)>,
    want: &'static str,
}

#[test]
fn bad_input_is_one_line_exit_2_and_creates_nothing() {
    let dir = test_dir("bad");
    let full = dir.join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("x"), "").unwrap();
    let fresh = dir.join("fresh");
    let good = || vec![fresh.as_os_str(), ISOBENCH.as_ref()];
    let cases = [
        BadCase {
            args: vec![],
            env: vec![],
            want: "usage",
        },
        BadCase {
            args: vec![fresh.as_os_str(), "/nonexistent/isobench".as_ref()],
            env: vec![],
            want: "/nonexistent/isobench",
        },
        BadCase {
            args: vec![full.as_os_str(), ISOBENCH.as_ref()],
            env: vec![],
            want: "not empty",
        },
        BadCase {
            args: good(),
            env: vec![("ISOBENCH_GUEST_CPUS", "0")],
            want: "ISOBENCH_GUEST_CPUS=0",
        },
        BadCase {
            args: good(),
            env: vec![("ISOBENCH_GUEST_TIMEOUT_S", "10s")],
            want: "ISOBENCH_GUEST_TIMEOUT_S=10s",
        },
        BadCase {
            args: good(),
            env: vec![("ISOBENCH_GUEST_KERNEL", "/nonexistent/vmlinuz-1.0")],
            want: "/nonexistent/vmlinuz-1.0",
        },
    ];
    for BadCase { args, env, want } in cases {
        let out = Command::new(SCRIPT)
            .args(&args)
            .envs(env.clone())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(want), "{want} in {err}");
        assert!(
            !fresh.exists(),
            "{args:?} {env:?} created {}",
            fresh.display()
        );
        assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
