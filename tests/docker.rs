//! The `docker` backend against the real Docker Engine (Debian's docker.io): a run of N = 2
//! through the binary is measured (start-up, runtime overhead) with the isolation of the
//! profile read back, and leaves no container, daemon, mount or cgroup; through the library, an
//! instance's agent, shim and engine are where the backend says; a SIGKILLed run's private
//! daemon and containers are stopped by `isobench clean`.

#[path = "common/bin.rs"]
mod bin;
mod common;
#[path = "common/host.rs"]
mod host;

use common::{TestRun, skip};
use isobench::results::record::Sample;
use isobench::scenario::BackendKind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Docker's 14 default capabilities as /proc/PID/status shows them.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// True (after saying why) when these tests cannot run here.
fn skip() -> bool {
    if skip::unless_root() {
        return true;
    }
    skip::when(
        isobench::backend::docker::cli::find_cli().is_none()
            || isobench::host::exec::which("dockerd").is_none(),
        "docker.io is not installed (scripts/setup.sh installs it)",
    )
}

/// Processes of the engine on the host now (dockerd, containerd, shims), by pid.
fn engine_processes() -> BTreeSet<(i32, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let comm = comm.trim().to_string();
            (comm == "dockerd" || comm.starts_with("containerd")).then_some((pid, comm))
        })
        .collect()
}

/// Engine processes that appeared since `before` and are still there after `limit`.
fn new_engine_processes(before: &BTreeSet<(i32, String)>, limit: Duration) -> Vec<(i32, String)> {
    let start = Instant::now();
    loop {
        let left: Vec<(i32, String)> = engine_processes().difference(before).cloned().collect();
        if left.is_empty() || start.elapsed() >= limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What /run holds: a private daemon keeps its exec root and containerd's state in a tmpfs of
/// its own mount namespace, never in the host's /run.
fn run_entries() -> BTreeSet<String> {
    std::fs::read_dir("/run")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn docker_scenario(name: &str, extra: &str) -> String {
    format!("name = \"{name}\"\nbackends = [\"docker\"]\ncounts = [2]\nwarmup = 0\n{extra}\n")
}

#[test]
fn a_run_of_two_through_docker_is_isolated_measured_and_leaves_nothing() {
    if skip() {
        return;
    }
    let _lock = host::host_lock();
    let before = host::snapshot();
    let engines = engine_processes();
    let run_before = run_entries();
    let s = bin::Scratch::new("docker-run");
    let (state, out) = (s.path("state"), s.path("out"));
    let scenario = s.path("d.toml");
    std::fs::write(
        &scenario,
        docker_scenario(
            "dockerrun",
            "[limits]\nmemory_mib = 64\npids = 64\ncpus = 0.5\n[measure]\ndrop_caches = false\nidle_window_s = 1\n",
        ),
    )
    .unwrap();
    let o = s.run(
        &[
            "run".as_ref(),
            scenario.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--cache-dir".as_ref(),
            s.path("cache").as_os_str(),
        ],
        &[],
        Duration::from_secs(300),
    );
    assert!(o.status.success(), "{o:?}");

    let rows: Vec<Sample> = csv::Reader::from_path(out.join("samples.csv"))
        .unwrap()
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let host_boot_id = isobench::host::boot_id();
    for r in &rows {
        assert_eq!(r.backend, "docker");
        assert!(r.ok, "row not ok: {}", r.error);
        assert!(r.startup_ms.is_some_and(|t| t > 0.0), "{r:?}");
        assert!(r.teardown_ms.is_some_and(|t| t > 0.0), "{r:?}");
        // A container shares the host's kernel.
        assert_eq!(r.boot_id, host_boot_id);
        // The engine costs something per instance: the shim, and the daemons over N.
        assert!(
            r.runtime_overhead_kib.is_some_and(|k| k > 1024),
            "runtime_overhead_kib {:?}",
            r.runtime_overhead_kib
        );
        assert!(r.pss_kib.is_some_and(|k| k > 0) && r.cgroup_mem_kib.is_some_and(|k| k > 0));
        // The docker profile, read back from the host.
        assert_eq!(r.security, "docker");
        assert_eq!(
            (r.cap_eff.as_str(), r.cap_bnd.as_str()),
            (DOCKER_CAPS, DOCKER_CAPS)
        );
        assert_eq!(r.cap_inh, "0000000000000000");
        assert_eq!(r.no_new_privs, Some(true));
        assert_eq!(r.seccomp, "filter");
        assert!(r.ns_private.contains("net") && r.ns_private.contains("pid"));
    }
    let meta = std::fs::read_to_string(out.join("meta.json")).unwrap();
    assert!(
        meta.contains("docker engine 20.") && meta.contains("storage driver overlay2"),
        "meta.json names the engine: {meta}"
    );

    let left = new_engine_processes(&engines, Duration::from_secs(10));
    assert!(left.is_empty(), "engine processes left: {left:?}");
    let run_after = run_entries();
    assert!(
        run_after.is_subset(&run_before)
            || run_after
                .difference(&run_before)
                .all(|e| !e.contains("docker") && !e.contains("containerd")),
        "the daemon wrote into the host's /run: {:?}",
        run_after.difference(&run_before).collect::<Vec<_>>()
    );
    host::assert_clean_since(&before, &state, &[]);
}

#[test]
fn an_instance_is_in_its_cgroup_with_its_shim_and_the_engine_stops_at_finish() {
    if skip() {
        return;
    }
    let _lock = host::host_lock();
    let engines = engine_processes();
    let run = TestRun::new(
        BackendKind::Docker,
        &docker_scenario(
            "t",
            "security = \"runc\"\n[limits]\nmemory_mib = 48\npids = 32\n",
        ),
    );
    let b = run.backend();
    assert!(
        b.accel_reason()
            .is_some_and(|r| r.contains("cgroup driver cgroupfs")),
        "{:?}",
        b.accel_reason()
    );
    let engine = b.engine_pids().expect("docker has an engine");
    assert!(engine.len() >= 2, "dockerd and containerd: {engine:?}");
    let inst = b.launch("docker-0").expect("a docker instance is ready");
    let pid = inst.pid();
    let status = common::read(format!("/proc/{pid}/status"));
    assert!(
        common::read(format!("/proc/{pid}/cmdline")).starts_with(isobench::image::AGENT_IN_ROOTFS),
        "the instance's pid is its agent"
    );
    // runc's three capabilities, no_new_privs and the filter, as the profile says.
    assert!(status.contains("CapEff:\t0000000020000420"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1") && status.contains("Seccomp:\t2"));
    let cg = inst.cgroup().expect("a cgroup");
    let mem = cg.dir_for("memory").expect("a memory cgroup");
    assert!(
        mem.to_string_lossy()
            .contains(&format!("isobench/{}/docker-0/", run.ctx.run_id)),
        "{}",
        mem.display()
    );
    assert_eq!(
        common::read(mem.join("memory.limit_in_bytes")).trim(),
        (48u64 << 20).to_string()
    );
    assert_eq!(inst.pids(), vec![pid]);
    let shim = inst.runtime_pids();
    assert_eq!(shim.len(), 1, "one shim per container");
    assert!(common::read(format!("/proc/{}/comm", shim[0])).starts_with("containerd-shim"));
    assert!(inst.private_dir().is_some_and(|d| d.is_dir()));
    // The daemon's mounts stay in its own namespace.
    let mounts = common::read("/proc/self/mountinfo");
    assert!(
        !mounts.contains(&run.ctx.state_dir.to_string_lossy().into_owned()),
        "a mount under the state dir in the host's namespace"
    );

    inst.teardown().expect("teardown");
    // Gone, or a zombie of an init that does not reap (the test is no subreaper).
    assert!(isobench::host::is_gone(pid) && isobench::host::is_gone(shim[0]));
    let cli = isobench::backend::docker::cli::Cli {
        exe: isobench::backend::docker::cli::find_cli().unwrap(),
        host: format!("unix://{}", run.ctx.state_dir.join("docker.sock").display()),
    };
    let ps = cli.run(&["ps", "-aq"], Duration::from_secs(30)).unwrap();
    assert!(ps.is_empty(), "containers left: {ps}");
    drop(run);
    let left = new_engine_processes(&engines, Duration::from_secs(10));
    assert!(left.is_empty(), "engine processes left: {left:?}");
}

#[test]
fn a_killed_docker_run_is_cleaned_by_isobench_clean() {
    if skip() {
        return;
    }
    let _lock = host::host_lock();
    let before = host::snapshot();
    let engines = engine_processes();
    let s = bin::Scratch::new("docker-kill");
    let (state, out) = (s.path("state"), s.path("out"));
    let scenario = s.path("k.toml");
    // A long idle window keeps both containers alive after they are ready.
    std::fs::write(
        &scenario,
        docker_scenario(
            "dockerkill",
            "[measure]\nidle_window_s = 120\nidle_adaptive = false\n",
        ),
    )
    .unwrap();
    let (mut harness, _o, err) = s.spawn(
        &[
            "run".as_ref(),
            scenario.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--cache-dir".as_ref(),
            s.path("cache").as_os_str(),
            "-q".as_ref(),
        ],
        &[],
    );
    // Two agents in containers under the run's cgroup.
    let start = Instant::now();
    let run_id = loop {
        if let Ok(Some(st)) = harness.try_wait() {
            panic!("isobench exited early ({st}): {}", bin::read(&err));
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "two containers were not running after 120 s: {}",
            bin::read(&err)
        );
        std::thread::sleep(Duration::from_millis(100));
        let Some(id) = std::fs::read_dir(&state)
            .ok()
            .and_then(|mut rd| rd.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
        else {
            continue;
        };
        let agents = host::marked_processes()
            .into_iter()
            .filter(|(p, i)| {
                *i == id
                    && std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.starts_with(isobench::image::AGENT_IN_ROOTFS.as_bytes()))
            })
            .count();
        if agents == 2 {
            break id;
        }
    };
    kill(Pid::from_raw(harness.id() as i32), Signal::SIGKILL).unwrap();
    harness.wait().unwrap();
    let left = host::run_leftovers(&run_id);
    assert!(!left.is_empty(), "the killed run left nothing?");
    eprintln!("left by the killed run: {left:?}");
    assert!(
        engine_processes().difference(&engines).count() > 0,
        "the private daemon outlived the harness (it is clean's to stop)"
    );

    let cleaned = s.clean(&state, &[]);
    assert!(cleaned.status.success(), "{cleaned:?}");
    let left = new_engine_processes(&engines, Duration::from_secs(10));
    assert!(left.is_empty(), "engine processes left: {left:?}");
    let marked = host::wait_until_no_marked(std::slice::from_ref(&run_id), Duration::from_secs(5));
    assert!(marked.is_empty(), "processes of the run left: {marked:?}");
    assert!(!state.join(&run_id).exists(), "state dir left");
    host::assert_clean_since(&before, &state, &[run_id]);
}

#[test]
fn clean_cache_removes_isobench_images_from_a_daemon_that_answers() {
    if skip() {
        return;
    }
    let _lock = host::host_lock();
    // A private daemon of a test run stands in for a daemon that was already there: `clean`
    // is pointed at it through DOCKER_HOST.
    let run = TestRun::new(BackendKind::Docker, &docker_scenario("t", ""));
    let host_addr = format!("unix://{}", run.ctx.state_dir.join("docker.sock").display());
    let cli = isobench::backend::docker::cli::Cli {
        exe: isobench::backend::docker::cli::find_cli().unwrap(),
        host: host_addr.clone(),
    };
    let images = || {
        cli.run(
            &[
                "image",
                "ls",
                "--filter",
                "label=isobench.image=1",
                "--format",
                "{{.Repository}}:{{.Tag}}",
            ],
            Duration::from_secs(30),
        )
        .unwrap()
    };
    let before = images();
    assert!(before.starts_with("isobench-rootfs:"), "{before:?}");
    let s = bin::Scratch::new("docker-cache");
    let empty_root = s.path("state");
    std::fs::create_dir_all(&empty_root).unwrap();
    let cache = s.path("cache");
    let args = |dry: bool| {
        let mut a = vec![
            "clean".to_string(),
            "--state-dir".into(),
            empty_root.display().to_string(),
            "--cache".into(),
            "--cache-dir".into(),
            cache.display().to_string(),
        ];
        if dry {
            a.push("--dry-run".into());
        }
        a
    };
    let env = [("DOCKER_HOST", host_addr.as_str())];
    let dry = s.run(&args(true), &env, Duration::from_secs(120));
    assert!(dry.status.success(), "{dry:?}");
    assert!(
        dry.stdout.contains(&format!(
            "would remove from the docker daemon at {host_addr}: image {before}"
        )),
        "{dry:?}"
    );
    assert_eq!(images(), before, "a dry run removed the image");
    let done = s.run(&args(false), &env, Duration::from_secs(120));
    assert!(done.status.success(), "{done:?}");
    assert!(
        done.stdout.contains(&format!(
            "removed from the docker daemon at {host_addr}: image {before}"
        )),
        "{done:?}"
    );
    assert_eq!(images(), "", "the image is still there");
}
