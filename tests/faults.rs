//! The fault walk: a real `isobench run` stopped dead (SIGKILL, armed by `ISOBENCH_FAULT`) at
//! every phase boundary, on the backends where that boundary means something, then `isobench
//! clean`: no process, mount, cgroup, state dir, qcow2 overlay or changed KSM setting of the run
//! may remain (tests/common/host.rs `assert_clean_since`). Also runs killed from outside in the
//! middle of a batch, for the backends whose killed runs are not tested elsewhere (container in
//! cli.rs, oci-runc in oci.rs, vm in vm.rs).
//!
//! Small N and no cost measurements keep each case to a second or two; VMs (TCG boots take
//! ~5 s here) only where the boundary is theirs: a guest's boot, and KSM during a measurement.
//! Every case runs `clean`, which acts on the whole host: each holds the host-wide test lock.

#[path = "common/bin.rs"]
mod bin;
#[path = "common/host.rs"]
mod host;
#[path = "common/skip.rs"]
mod skip;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A scenario for `backend` (`process`, `unshare`, `container`, `oci-runc`, `vm`): batches of
/// three launched one at a time (one VM), `repetitions` of them, nothing but start-up measured
/// unless `measure` adds to the [measure] table.
fn scenario(backend: &str, repetitions: u32, measure: &str) -> String {
    let (kind, tables) = match backend {
        "oci-runc" => ("oci", "[oci]\nruntimes = [\"runc\"]\n"),
        "vm" => ("vm", "[vm]\naccel = \"tcg\"\ncounts = [1]\n"),
        other => (other, ""),
    };
    format!(
        "name = \"fault\"\nimage = \"busybox\"\nbackends = [\"{kind}\"]\ncounts = [3]\n\
         parallelism = 1\nwarmup = 0\nrepetitions = {repetitions}\nready_timeout_s = 120\n\
         {tables}[measure]\nmemory = false\nidle_window_s = 0\n{measure}"
    )
}

/// `run SCENARIO --out OUT --state-dir ROOT --cache-dir (the tests' shared cache) -q`.
fn run_args(s: &bin::Scratch, text: &str) -> Vec<PathBuf> {
    let file = s.path("s.toml");
    std::fs::write(&file, text).unwrap();
    [
        "run".into(),
        file,
        "--out".into(),
        s.path("out"),
        "--state-dir".into(),
    ]
    .into_iter()
    .chain([
        s.path("state"),
        "--cache-dir".into(),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        "-q".into(),
    ])
    .collect()
}

/// The run ids in the state root: a run makes its state dir before anything else of it.
fn run_ids(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// After the harness (pid `harness`) was killed: `clean` names its run and leaves nothing.
fn clean_after_kill(s: &bin::Scratch, before: &host::HostSnapshot, harness: u32, what: &str) {
    let root = s.path("state");
    let ids = run_ids(&root);
    assert_eq!(ids.len(), 1, "{what}: one run state dir: {ids:?}");
    assert!(
        ids[0].contains(&format!("-p{harness}t")),
        "{what}: the run id names the killed harness {harness}: {}",
        ids[0]
    );
    let out = s.clean(&root, &[]);
    assert_eq!(out.status.code(), Some(0), "{what}: {out:?}");
    assert!(
        out.stdout.contains(&format!("cleaned run {}", ids[0])),
        "{what}: {out:?}"
    );
    host::assert_clean_since(before, &root, &ids);
}

/// One case of the walk: `isobench run` with `ISOBENCH_FAULT=fault` on `backend` must die by
/// SIGKILL, and `clean` must leave nothing of it.
fn walk(fault: &str, backend: &str, measure: &str) {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let what = format!("ISOBENCH_FAULT={fault} on {backend}");
    let s = bin::Scratch::new(&format!("fault-{}-{backend}", fault.replace(':', "-")));
    let before = host::snapshot();
    let start = Instant::now();
    let (mut child, o, e) = s.spawn(
        &run_args(&s, &scenario(backend, 1, measure)),
        &[(isobench::fault::FAULT_ENV, fault)],
    );
    let harness = child.id();
    let status = bin::wait_timeout(&mut child, Duration::from_secs(180)).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what}: still running after 180 s\n{}", bin::read(&e))
    });
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{what}: ended with {status} instead of dying at the boundary\n{}\n{}",
        bin::read(&o),
        bin::read(&e)
    );
    eprintln!("{what}: killed after {:?}", start.elapsed());
    if measure.contains("ksm = true") {
        // The run died while merging: only `clean` can put KSM's settings back.
        assert_ne!(host::ksm_settings(), before.ksm, "{what}: KSM was not on");
    }
    clean_after_kill(&s, &before, harness, &what);
}

/// Defines one test per case of the walk, and `WALK`, the list of them.
macro_rules! walk_cases {
    ($($test:ident: $fault:literal on $backend:literal $(with $measure:literal)?;)+) => {
        const WALK: &[(&str, &str)] = &[$(($fault, $backend)),+];
        $(
            #[test]
            fn $test() {
                walk($fault, $backend, concat!("" $(, $measure)?));
            }
        )+
    };
}

walk_cases! {
    state_dir_process: "state-dir" on "process";
    prepared_container: "prepared" on "container";
    prepared_oci: "prepared" on "oci-runc";
    boot_process: "boot" on "process";
    boot_unshare: "boot" on "unshare";
    boot_container: "boot" on "container";
    // The first spawn of runc is the probe container, during the backend's preparation.
    boot_oci_probe: "boot" on "oci-runc";
    boot_oci: "boot:1" on "oci-runc";
    boot_vm: "boot" on "vm";
    launch_process: "launch:1" on "process";
    launch_unshare: "launch:1" on "unshare";
    launch_container: "launch:1" on "container";
    launch_oci: "launch:1" on "oci-runc";
    measure_container: "measure" on "container";
    measure_vm_ksm: "measure" on "vm" with "ksm = true\nksm_timeout_s = 2\n";
    teardown_container: "teardown:1" on "container";
    teardown_oci: "teardown:0" on "oci-runc";
    finish_process: "finish" on "process";
}

#[test]
fn the_walk_covers_every_boundary() {
    for (_, name, _) in isobench::fault::BOUNDARIES {
        assert!(
            WALK.iter().any(|(f, _)| f.split(':').next() == Some(*name)),
            "boundary {name} is not walked"
        );
    }
}

#[test]
fn a_bad_fault_value_is_bad_input_and_creates_nothing() {
    let s = bin::Scratch::new("fault-bad");
    for bad in ["nowhere", "boot:x", "boot:-1", "launch:1:2"] {
        let out = s.run(
            &run_args(&s, &scenario("process", 1, "")),
            &[(isobench::fault::FAULT_ENV, bad)],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert!(out.stdout.is_empty(), "{bad}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "one line: {out:?}");
        for want in [
            format!("{}=\"{bad}\"", isobench::fault::FAULT_ENV),
            "allowed: <boundary>[:<k>]".into(),
            "state-dir, prepared, boot, launch, measure, teardown, finish".into(),
        ] {
            assert!(out.stderr.contains(&want), "{bad}: no {want:?} in {out:?}");
        }
        assert!(
            !s.path("out").exists() && !s.path("state").exists(),
            "{bad}: created"
        );
    }
}

/// A run killed from outside once two instances of a batch are up; then `clean`.
fn killed_from_outside(backend: &str) {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let what = format!("{backend} killed mid-batch");
    let s = bin::Scratch::new(&format!("killed-{backend}"));
    let before = host::snapshot();
    let (mut child, _, e) = s.spawn(&run_args(&s, &scenario(backend, 1000, "")), &[]);
    let harness = child.id();
    let tag = format!("-p{harness}t");
    let start = Instant::now();
    loop {
        let up = host::marked_processes()
            .iter()
            .filter(|(_, id)| id.contains(&tag))
            .count();
        if up >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none(),
            "{what}: two instances never ran\n{}",
            bin::read(&e)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    clean_after_kill(&s, &before, harness, &what);
}

#[test]
fn a_process_run_killed_mid_batch_is_cleaned() {
    killed_from_outside("process");
}

#[test]
fn an_unshare_run_killed_mid_batch_is_cleaned() {
    killed_from_outside("unshare");
}
