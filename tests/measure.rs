//! What instances cost, measured on real instances: memory views against a workload that
//! touches a known amount, and a run whose rows and kernel.csv carry every figure.

mod common;
#[path = "common/host.rs"]
mod host;

use common::*;
use isobench::measure;
use isobench::scenario::BackendKind;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1024;

#[test]
fn sixty_four_touched_mib_show_in_the_pss_and_cgroup_views() {
    if skip::unless_root() {
        return;
    }
    let run = TestRun::new(
        BackendKind::Container,
        &scenario("workload = { touch-memory = 64 }\n[limits]\nmemory_mib = 128\n"),
    );
    let mut inst = run.backend().launch("touch").expect("container launches");
    inst.wait_done(
        isobench::deadline::Deadline::from_now(Duration::from_secs(30), "test"),
        &run.ctx.cancel,
    )
    .expect("the workload touches its memory");
    let pm = measure::memory::rollup(&inst.pids());
    assert!(pm.pss_kib >= 64 * MIB, "PSS {} KiB < 64 MiB", pm.pss_kib);
    assert!(pm.uss_kib >= 64 * MIB && pm.uss_kib <= pm.rss_kib, "{pm:?}");
    let cg =
        measure::memory::cgroup_mem_kib(inst.cgroup().unwrap()).expect("cgroup memory readable");
    assert!(cg >= 64 * MIB, "cgroup {cg} KiB < 64 MiB");
    assert!(cg < 128 * MIB, "cgroup {cg} KiB over the 128 MiB limit");
    inst.teardown().unwrap();

    // The floor: the same workload as a plain process shows the same 64 MiB in PSS.
    let run = TestRun::new(
        BackendKind::Process,
        &scenario("workload = { touch-memory = 64 }\n"),
    );
    let mut p = run.backend().launch("touch-p").expect("process launches");
    p.wait_done(
        isobench::deadline::Deadline::from_now(Duration::from_secs(30), "test"),
        &run.ctx.cancel,
    )
    .unwrap();
    let pm = measure::memory::rollup(&p.pids());
    assert!(pm.pss_kib >= 64 * MIB, "process PSS {} KiB", pm.pss_kib);
    p.teardown().unwrap();
}

fn csv_rows(path: &std::path::Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row.get(col)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{col} is empty or missing in {row:?}"))
}

#[test]
fn a_run_fills_every_cost_column_and_counts_kernels() {
    if skip::unless_root() || skip::unless_on_path(&["qemu-system-x86_64"]) {
        return;
    }
    let _lock = host::host_lock();
    let before = host::snapshot();
    let (out, state, res) = run_scenario(
        "measure-run",
        "name = \"costs\"\nbackends = [\"process\", \"container\", \"vm\"]\ncounts = [2]\nwarmup = 0\nworkload = { write-file = 4 }\nready_timeout_s = 120\n\
         [vm]\naccel = \"tcg\"\ncounts = [1]\n[measure]\nidle_window_s = 1\n",
    );
    assert!(res.status.success(), "{res:?}");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains("PSS (MiB)") && stdout.contains("vm / container (vm N=1, container N=2)"),
        "the costs table and ratios are printed:\n{stdout}"
    );

    let rows = csv_rows(&out.join("samples.csv"));
    assert_eq!(rows.len(), 2 + 2 + 1);
    for r in &rows {
        let b = r["backend"].as_str();
        for col in [
            "pss_kib",
            "uss_kib",
            "rss_kib",
            "host_avail_kib",
            "idle_cpu_ms_per_s",
        ] {
            num(r, col);
        }
        assert!(num(r, "pss_kib") > 0.0, "{r:?}");
        // write-file = 4: the private layer (upper dir, qcow2 overlay, or for a plain process
        // its own directory under the run) holds at least the 4 MiB written.
        assert!(num(r, "disk_private_kib") >= 4.0 * 1024.0, "{r:?}");
        if b != "process" {
            assert!(
                num(r, "disk_shared_kib") > 0.0 && num(r, "disk_full_copy_kib") > 0.0,
                "{r:?}"
            );
        }
        // Every backend has a cgroup of its own now (accounting-only for process and vm).
        assert!(num(r, "cgroup_mem_kib") > 0.0, "{r:?}");
        if b == "vm" {
            for col in [
                "guest_mem_total_kib",
                "guest_mem_used_kib",
                "guest_kernel_kib",
                "guest_kthreads",
                "vmm_overhead_kib",
            ] {
                num(r, col);
            }
            // An idle 128 MiB TCG guest costs the host tens of MiB at least, in both views.
            assert!(num(r, "pss_kib") > 32.0 * 1024.0, "{r:?}");
            assert!(
                num(r, "cgroup_mem_kib") > 32.0 * 1024.0,
                "qemu is charged to its own cgroup: {r:?}"
            );
        }
    }

    let kernel = csv_rows(&out.join("kernel.csv"));
    let by: HashMap<&str, &HashMap<String, String>> =
        kernel.iter().map(|k| (k["backend"].as_str(), k)).collect();
    assert_eq!(
        num(by["container"], "distinct_kernels"),
        1.0,
        "containers share the host kernel"
    );
    assert_eq!(num(by["process"], "distinct_kernels"), 1.0);
    assert_eq!(
        num(by["vm"], "distinct_kernels"),
        2.0,
        "the host plus one guest kernel"
    );
    assert!(
        num(by["vm"], "guest_kthreads_total") > 5.0
            && num(by["vm"], "guest_kernel_kib_total") > 1024.0
    );
    assert!(num(by["vm"], "kernel_kib_per_kernel") > 1024.0);
    for k in &kernel {
        assert!(
            num(k, "host_kthreads_before") > 0.0 && num(k, "measure_ms") >= 0.0,
            "{k:?}"
        );
    }
    let run_id = rows[0]["run_id"].clone();
    host::assert_clean_since(&before, &state, &[run_id]);
    assert!(
        !std::path::Path::new("/var/tmp/isobench-write-file").exists(),
        "a plain process wrote into the host's /var/tmp"
    );
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

/// Runs `isobench run` on `toml` with its own dirs (under the target's tmp dir, whose parent
/// the caller may remove) and returns (out dir, state dir, output).
fn run_scenario(tag: &str, toml: &str) -> (PathBuf, PathBuf, std::process::Output) {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("s.toml");
    std::fs::write(&scenario_path, toml).unwrap();
    let (out, state) = (dir.join("out"), dir.join("state"));
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_isobench"))
        .arg("run")
        .arg(&scenario_path)
        .args([
            "--out",
            out.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            // VM base disks: shared by the tests, outside the host's own cache.
            "--cache-dir",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/cache"),
            "-q",
        ])
        .output()
        .unwrap();
    (out, state, res)
}

const UNTIL: &str = "name = \"until\"\nbackends = [\"container\"]\ncounts = [1]\nwarmup = 0\nparallelism = 2\n[measure]\nidle_window_s = 0\ndrop_caches = false\n";

#[test]
fn until_stops_at_max_and_records_why() {
    if skip::unless_root() {
        return;
    }
    let (out, state, res) = run_scenario(
        "until-max",
        &format!("{UNTIL}[until]\nstep = 3\nmax = 7\nmem_available_floor_mib = 0\n"),
    );
    assert!(res.status.success(), "{res:?}");
    let u = csv_rows(&out.join("until.csv"));
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(
        num(&u[0], "n_reached"),
        7.0,
        "steps of 3 capped at max = 7: {u:?}"
    );
    assert!(u[0]["stop_reason"].contains("max = 7"), "{u:?}");
    let rows = csv_rows(&out.join("samples.csv"));
    assert_eq!(rows.len(), 7, "every instance of the sweep has a row");
    assert!(
        rows.iter().all(|r| r["n"] == "7" && r["ok"] == "true"),
        "rows carry the N reached"
    );
    assert!(!state.exists(), "nothing left");
}

#[test]
fn until_stops_at_the_memavailable_floor() {
    if skip::unless_root() {
        return;
    }
    // A floor above any host's memory: the sweep stops after its first step, and says why.
    let (out, _state, res) = run_scenario(
        "until-floor",
        &format!("{UNTIL}[until]\nstep = 2\nmax = 100\nmem_available_floor_mib = 1048576\n"),
    );
    assert!(res.status.success(), "{res:?}");
    let u = csv_rows(&out.join("until.csv"));
    assert_eq!(num(&u[0], "n_reached"), 2.0, "{u:?}");
    assert!(
        u[0]["stop_reason"].contains("MemAvailable") && u[0]["stop_reason"].contains("floor"),
        "{u:?}"
    );
    assert!(num(&u[0], "mem_available_kib_at_stop") > 0.0);
}
