//! The `oci` backend against the host's real runtimes: a runc container is ready, runs on the
//! host's kernel, in the cgroup runc made with the scenario's limits, writes into its own
//! upper dir, mounts nothing in the host's namespace, and leaves nothing after teardown; crun
//! either works or says why; a killed run is cleaned by `isobench clean`.

mod common;
#[path = "common/host.rs"]
mod host;

use common::{alive, nsenter, read, skip};
use isobench::backend::oci::OciBackend;
use isobench::backend::{Backend, PrepareError, RunContext};
use isobench::host::cgroup::CgroupHost;
use isobench::image::AGENT_IN_ROOTFS;
use isobench::scenario::Scenario;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Returns true (after saying why) when the OCI tests cannot run here.
fn skip(runtime: &str) -> bool {
    skip::unless_root() || skip::unless_on_path(&[runtime])
}

fn oci_scenario(extra: &str) -> String {
    format!("name = \"t\"\nbackends = [\"oci\"]\ncounts = [1]\n{extra}\n")
}

/// `TestRun` of tests/common for an OCI runtime (`backend::create` refuses `oci`): a context
/// with its own run id and state dir, and the backend; all of it removed when dropped.
struct OciRun {
    ctx: RunContext,
    backend: Option<OciBackend>,
}

impl OciRun {
    fn context(toml: &str) -> RunContext {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let scenario =
            Scenario::parse(toml, "test.toml", Path::new("/")).expect("test scenario parses");
        let (run_id, state_dir) = common::scratch_state_dir(&format!("ocitest{n}"));
        RunContext {
            run_id,
            scenario: Arc::new(scenario),
            state_dir,
            agent_exe: PathBuf::from(env!("CARGO_BIN_EXE_isobench")),
            cancel: Arc::new(AtomicBool::new(false)),
            cache_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        }
    }

    /// The backend for `runtime`, or the error preparing it (the guard still cleans up).
    fn new(runtime: &str, toml: &str) -> Result<OciRun, Box<(OciRun, PrepareError)>> {
        let mut run = OciRun {
            ctx: Self::context(toml),
            backend: None,
        };
        match OciBackend::new(run.ctx.clone(), runtime) {
            Ok(b) => {
                run.backend = Some(b);
                Ok(run)
            }
            Err(e) => Err(Box::new((run, e))),
        }
    }

    fn backend(&self) -> &OciBackend {
        self.backend.as_ref().unwrap()
    }
}

impl Drop for OciRun {
    fn drop(&mut self) {
        if let Some(b) = self.backend.take() {
            let _ = b.finish();
        }
        let _ = isobench::host::remove_dir_tree(&self.ctx.state_dir);
        // What a run's end removes (the run's cgroup dirs shared by its backends).
        let _ = CgroupHost::remove_run_everywhere(&self.ctx.run_id);
    }
}

/// `<hierarchy>/isobench/<run>/<name>` in every hierarchy that has it.
fn instance_cgroups(run_id: &str, name: &str) -> Vec<PathBuf> {
    CgroupHost::all_roots()
        .into_iter()
        .map(|r| r.join("isobench").join(run_id).join(name))
        .filter(|d| d.exists())
        .collect()
}

fn mountinfo_lines_with(needle: &str) -> Vec<String> {
    read("/proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_runc_container_runs_in_its_cgroup_and_overlay_and_leaves_nothing() {
    if skip("runc") {
        return;
    }
    let _lock = host::host_lock();
    let run = OciRun::new(
        "runc",
        &oci_scenario("[limits]\nmemory_mib = 48\npids = 32\n"),
    )
    .map_err(|b| b.1)
    .expect("runc prepares");
    let b = run.backend();
    assert_eq!(b.label(), "oci-runc");
    let name = "oci-a";
    let inst = b.launch(name).expect("a runc container becomes ready");
    let facts = &inst.startup().facts;
    let su = inst.startup().startup.as_secs_f64() * 1e3;
    eprintln!("runc start-up: {su:.1} ms");

    // The host's kernel, its own PID namespace (the agent is PID 1) and hostname.
    assert_eq!(facts.kernel_release, read("/proc/sys/kernel/osrelease"));
    assert_eq!(facts.boot_id, read("/proc/sys/kernel/random/boot_id"));
    assert_eq!(facts.pid, 1, "the agent is PID 1 of its PID namespace");
    assert_eq!(facts.hostname, name);

    // Its processes are in the cgroup runc made, which carries the limits.
    let pids = inst.pids();
    let agent = inst.pid();
    assert!(
        pids.contains(&agent),
        "agent {agent} not among pids {pids:?}"
    );
    let want = format!("/isobench/{}/{name}", run.ctx.run_id);
    for p in &pids {
        let cg = read(format!("/proc/{p}/cgroup"));
        let mem = cg
            .lines()
            .find(|l| l.split(':').nth(1) == Some("memory"))
            .unwrap_or_else(|| panic!("no memory line in /proc/{p}/cgroup:\n{cg}"));
        assert!(mem.ends_with(&want), "pid {p} is in {mem}, not {want}");
    }
    let cgroup = inst.cgroup().expect("an OCI instance has a cgroup");
    let limit = cgroup
        .read("memory", "memory.max")
        .or_else(|_| cgroup.read("memory", "memory.limit_in_bytes"))
        .expect("memory limit readable");
    assert_eq!(limit, (48u64 << 20).to_string());
    assert_eq!(cgroup.read("pids", "pids.max").unwrap(), "32");
    let procs = cgroup.read("memory", "cgroup.procs").unwrap();
    assert!(procs.lines().any(|l| l == agent.to_string()), "{procs}");
    let cg_dirs = instance_cgroups(&run.ctx.run_id, name);
    assert!(!cg_dirs.is_empty());

    // The agent carries the run-id marker: how `isobench clean` finds a leftover container.
    let env = std::fs::read(format!("/proc/{agent}/environ")).unwrap();
    let marker = format!("ISOBENCH_RUN_ID={}", run.ctx.run_id);
    assert!(
        env.split(|c| *c == 0).any(|v| v == marker.as_bytes()),
        "no run-id marker in the agent's environment"
    );

    // The default profile's (Docker's) capabilities, no_new_privs.
    let want = isobench::security::mask(isobench::security::DOCKER_CAPS);
    for field in ["CapBnd", "CapEff"] {
        let v = common::status_field(agent, field);
        assert_eq!(u64::from_str_radix(&v, 16).unwrap(), want, "{field}");
    }
    assert_eq!(common::status_field(agent, "NoNewPrivs"), "1");

    // Writes land in its private upper dir, not in the shared image.
    let (ok, out) = nsenter(agent, &["/bin/sh", "-c", "echo hi > /root/x"]);
    assert!(ok, "nsenter write failed: {out}");
    let upper = inst.private_dir().expect("an upper dir");
    assert_eq!(read(upper.join("root/x")), "hi");
    assert!(
        !run.ctx.state_dir.join("layers/busybox/root/x").exists(),
        "the shared image changed"
    );

    // Nothing of it is mounted in the host's namespace.
    let bundle = b.bundle_dir(name);
    assert!(bundle.join("config.json").is_file());
    let seen = mountinfo_lines_with(&run.ctx.state_dir.to_string_lossy());
    assert!(seen.is_empty(), "host mounts of the run: {seen:?}");
    let seen = mountinfo_lines_with(&run.ctx.run_id);
    assert!(seen.is_empty(), "host mounts naming the run: {seen:?}");

    let state = b.state_root().join(name);
    assert!(state.exists(), "runc keeps its state under --root");
    inst.teardown().expect("teardown succeeds");

    for p in pids {
        assert!(!alive(p), "process {p} of the container survived teardown");
    }
    let left = host::wait_until_no_marked(
        std::slice::from_ref(&run.ctx.run_id),
        Duration::from_secs(2),
    );
    assert!(left.is_empty(), "marked processes left: {left:?}");
    assert!(!state.exists(), "runc state left: {}", state.display());
    let left = instance_cgroups(&run.ctx.run_id, name);
    assert!(left.is_empty(), "cgroups left after teardown: {left:?}");
    assert!(!bundle.exists(), "bundle left: {}", bundle.display());

    // finish() leaves no instance cgroup and no bundle or state of the runtime.
    let b = {
        let mut run = run;
        let b = run.backend.take().unwrap();
        b.finish().expect("finish");
        for root in CgroupHost::all_roots() {
            let d = root.join("isobench").join(&run.ctx.run_id);
            if let Ok(rd) = std::fs::read_dir(&d) {
                let subdirs: Vec<_> = rd
                    .flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path())
                    .collect();
                assert!(
                    subdirs.is_empty(),
                    "left under {}: {subdirs:?}",
                    d.display()
                );
            }
        }
        assert!(!run.ctx.state_dir.join("oci-runc").exists());
        run
    };
    drop(b);
}

#[test]
fn crun_either_runs_a_container_or_says_why_not() {
    if skip("crun") {
        return;
    }
    let _lock = host::host_lock();
    match OciRun::new("crun", &oci_scenario("")) {
        Ok(run) => {
            let inst = run
                .backend()
                .launch("crun-a")
                .expect("crun prepared, so it launches");
            assert_eq!(inst.startup().facts.pid, 1);
            assert_eq!(
                inst.startup().facts.boot_id,
                read("/proc/sys/kernel/random/boot_id")
            );
            let bundle = run.backend().bundle_dir("crun-a");
            inst.teardown().expect("teardown succeeds");
            assert!(!bundle.exists());
            assert!(instance_cgroups(&run.ctx.run_id, "crun-a").is_empty());
            eprintln!("crun works here");
        }
        Err(failed) => {
            let (run, e) = *failed;
            assert!(
                e.what.contains("crun"),
                "the error should name crun: {}",
                e.what
            );
            eprintln!("crun is unavailable here: {e}");
            // A failed preparation leaves no instance behind.
            assert!(!run.ctx.state_dir.join("oci-crun").exists());
            assert!(instance_cgroups(&run.ctx.run_id, "probe").is_empty());
            let left =
                host::wait_until_no_marked(std::slice::from_ref(&run.ctx.run_id), Duration::ZERO);
            assert!(left.is_empty(), "{left:?}");
        }
    }
}

#[test]
fn a_launch_cut_short_at_any_stage_leaves_nothing() {
    if skip("runc") {
        return;
    }
    let _lock = host::host_lock();
    // Ready timeouts that end the probe launch at different stages of runc's work (before
    // its init exists, while it sets the container up, just before the agent is ready).
    for timeout in [0.002, 0.01, 0.02, 0.03, 0.04] {
        let Err(failed) = OciRun::new(
            "runc",
            &oci_scenario(&format!("ready_timeout_s = {timeout}")),
        ) else {
            eprintln!("{timeout} s: the probe was ready in time");
            continue;
        };
        let (run, e) = *failed;
        eprintln!("{timeout} s: {e}");
        assert!(e.what.starts_with("runc: "), "{}", e.what);
        let id = run.ctx.run_id.clone();
        let left = host::wait_until_no_marked(std::slice::from_ref(&id), Duration::from_secs(2));
        assert!(left.is_empty(), "{timeout} s: processes left: {left:?}");
        let cg = instance_cgroups(&id, "probe");
        assert!(cg.is_empty(), "{timeout} s: cgroups left: {cg:?}");
        assert!(
            !run.ctx.state_dir.join("oci-runc").exists(),
            "{timeout} s: bundle or runtime state left"
        );
        let m = mountinfo_lines_with(&run.ctx.state_dir.to_string_lossy());
        assert!(m.is_empty(), "{timeout} s: mounts left: {m:?}");
    }
}

/// Start-up of runc here, p50 over 20 launches (one at a time): `cargo test --release --test
/// oci -- --ignored --nocapture`.
#[test]
#[ignore]
fn runc_startup_p50() {
    if skip("runc") {
        return;
    }
    let _lock = host::host_lock();
    let run = OciRun::new("runc", &oci_scenario(""))
        .map_err(|b| b.1)
        .expect("runc prepares");
    let mut startup = Vec::new();
    let mut teardown = Vec::new();
    for i in 0..20 {
        let inst = run.backend().launch(&format!("s{i}")).expect("launch");
        startup.push(inst.startup().startup.as_secs_f64() * 1e3);
        teardown.push(inst.teardown().expect("teardown").as_secs_f64() * 1e3);
    }
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len().is_multiple_of(2) {
            (v[m - 1] + v[m]) / 2.0
        } else {
            v[m]
        }
    };
    eprintln!(
        "runc over {} launches: start-up p50 {:.1} ms (min {:.1}, max {:.1}); teardown p50 {:.1} ms",
        startup.len(),
        p50(&mut startup),
        startup[0],
        startup[startup.len() - 1],
        p50(&mut teardown)
    );
}

/// Kills the child (if still there) and reaps it when dropped.
struct Harness(std::process::Child);

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_oci_run_is_cleaned_by_isobench_clean() {
    if skip("runc") {
        return;
    }
    let _lock = host::host_lock();
    let before = host::snapshot();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "oci-killed-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let (sdir, out, cache) = (base.join("state"), base.join("out"), base.join("cache"));
    let scenario = base.join("ocikill.toml");
    // A long idle window keeps the three containers alive after they are ready.
    std::fs::write(
        &scenario,
        "name = \"ocikill\"\nbackends = [\"oci\"]\ncounts = [3]\nwarmup = 0\nparallelism = 3\n\
         ready_timeout_s = 30\n[oci]\nruntimes = [\"runc\"]\n[measure]\nidle_window_s = 120\nidle_adaptive = false\n",
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_isobench");
    let mut harness = Harness(
        Command::new(exe)
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&out)
            .arg("--state-dir")
            .arg(&sdir)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("-q")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(base.join("stderr")).unwrap())
            .spawn()
            .expect("isobench runs"),
    );

    // Wait for three ready containers: their agents (each carrying the run's marker and its
    // instance's name) are in runc-made cgroups and the bundles exist.
    let start = Instant::now();
    let run_id = loop {
        if let Ok(Some(st)) = harness.0.try_wait() {
            panic!(
                "isobench exited early ({st}): {}",
                std::fs::read_to_string(base.join("stderr")).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "three containers were not running after 60 s: {}",
            std::fs::read_to_string(base.join("stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
        let Some(id) = std::fs::read_dir(&sdir)
            .ok()
            .and_then(|mut rd| rd.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
        else {
            continue;
        };
        let oci = sdir.join(&id).join("oci-runc");
        let bundles: Vec<String> = std::fs::read_dir(&oci)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "state" && n != "probe")
                    .collect()
            })
            .unwrap_or_default();
        // Ready means the agent runs: not runc's init still waiting in a created container.
        let agents = bundles
            .iter()
            .filter(|n| {
                instance_cgroups(&id, n).iter().any(|d| {
                    isobench::host::cgroup::procs(d).iter().any(|p| {
                        std::fs::read(format!("/proc/{p}/cmdline"))
                            .is_ok_and(|c| c.starts_with(AGENT_IN_ROOTFS.as_bytes()))
                    })
                })
            })
            .count();
        if bundles.len() == 3 && agents == 3 {
            break id;
        }
    };
    let pid = harness.0.id() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    harness.0.wait().unwrap();

    // Something is left: the state dir, and the containers themselves (runc's container init
    // is not the harness's child and has no parent-death signal).
    let state_dir = sdir.join(&run_id);
    assert!(state_dir.exists(), "the killed run left no state dir?");
    eprintln!("left by the killed run: {:?}", host::run_leftovers(&run_id));

    let cleaned = Command::new(exe)
        .arg("clean")
        .arg("--state-dir")
        .arg(&sdir)
        .output()
        .expect("isobench clean runs");
    eprintln!(
        "isobench clean: {}\n{}",
        String::from_utf8_lossy(&cleaned.stdout),
        String::from_utf8_lossy(&cleaned.stderr)
    );
    assert!(cleaned.status.success(), "isobench clean failed");

    let left = host::wait_until_no_marked(std::slice::from_ref(&run_id), Duration::from_secs(5));
    assert!(left.is_empty(), "processes of the run left: {left:?}");
    for root in CgroupHost::all_roots() {
        let d = root.join("isobench").join(&run_id);
        assert!(!d.exists(), "cgroup left: {}", d.display());
    }
    assert!(
        !state_dir.exists(),
        "state dir left: {}",
        state_dir.display()
    );
    let mounts = mountinfo_lines_with(&sdir.to_string_lossy());
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    host::assert_clean_since(&before, &sdir, &[run_id]);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn the_bundle_config_follows_the_scenario() {
    let ctx = OciRun::context(&oci_scenario(
        "[limits]\nmemory_mib = 48\ncpus = 0.25\npids = 32\n[namespaces]\nnet = false\nuts = false\n",
    ));
    let c = isobench::backend::oci::bundle_config(&ctx, "i0");
    let _ = isobench::host::remove_dir_tree(&ctx.state_dir);
    println!("{}", serde_json::to_string_pretty(&c).unwrap());
    assert_eq!(c["ociVersion"], "1.0.2");
    assert_eq!(c["process"]["args"][0], AGENT_IN_ROOTFS);
    assert_eq!(c["process"]["args"][1], "agent");
    assert_eq!(c["process"]["capabilities"]["bounding"][0], "CAP_CHOWN");
    assert_eq!(
        c["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        isobench::security::DOCKER_CAPS.len()
    );
    let env: Vec<&str> = c["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&format!("ISOBENCH_RUN_ID={}", ctx.run_id).as_str()));
    assert_eq!(
        c["linux"]["cgroupsPath"],
        format!("/isobench/{}/i0", ctx.run_id)
    );
    let r = &c["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 48u64 << 20);
    assert_eq!(r["cpu"]["quota"], 25_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["pids"]["limit"], 32);
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "mount", "cgroup"]);
    assert!(c.get("hostname").is_none(), "no UTS namespace, no hostname");
    assert_eq!(c["root"]["readonly"], false);
}
