//! The `lxc` backend against LXC 5, for real: two containers become ready on the host's
//! kernel (its boot_id), in the cgroup under the run's with the scenario's limits, with the
//! profile's capabilities, no_new_privs, seccomp (threads start: the clone rule's argument
//! test is right) and device rules as the host reads them back; nothing is left after
//! teardown; a killed run is cleaned by `isobench clean`; the generated config says what the
//! scenario asks.

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/killed.rs"]
mod killed;

use common::{TestRun, read, skip};
use isobench::host::cgroup::{CgroupHost, CgroupMode};
use isobench::image::AGENT_IN_ROOTFS;
use isobench::scenario::BackendKind;
use isobench::security::{DOCKER_CAPS, mask};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn cannot_run() -> bool {
    skip::unless_root() || skip::unless_on_path(&["lxc-start"])
}

fn scenario(extra: &str) -> String {
    format!("name = \"t\"\nbackends = [\"lxc\"]\ncounts = [2]\n{extra}\n")
}

#[test]
fn two_lxc_containers_share_the_host_kernel_in_their_cgroups_confined_and_leave_nothing() {
    if cannot_run() {
        return;
    }
    let _lock = host::host_lock();
    let run = TestRun::new(
        BackendKind::Lxc,
        &scenario("workload = { syscalls = 50 }\n[limits]\nmemory_mib = 48\npids = 32\n"),
    );
    let b = run.backend();
    assert_eq!(b.kind(), BackendKind::Lxc);
    assert_eq!(b.label(), "lxc");
    let names = ["lxc-a", "lxc-b"];
    let mut insts: Vec<Box<dyn isobench::backend::Instance>> = names
        .iter()
        .map(|n| b.launch(n).expect("an LXC container becomes ready"))
        .collect();
    let cgroups = CgroupHost::detect().unwrap();
    for (i, name) in insts.iter().zip(names) {
        let st = i.startup();
        eprintln!("{name}: start-up {:.1} ms", st.startup.as_secs_f64() * 1e3);
        assert!(st.startup > Duration::ZERO);
        // The host's kernel, the agent as init of its own PID namespace, its own hostname.
        assert_eq!(st.facts.kernel_release, read("/proc/sys/kernel/osrelease"));
        // LXC mounts a random boot_id of its own over the kernel's: the agent says so, and
        // it counts as no kernel (the batch's distinct_kernels stays 1).
        let host_boot_id = read("/proc/sys/kernel/random/boot_id");
        let mocked = st
            .facts
            .boot_id
            .strip_prefix(isobench::agent::BOOT_ID_MOUNTED)
            .unwrap_or_else(|| panic!("boot_id {} not marked mounted", st.facts.boot_id));
        assert_ne!(mocked, host_boot_id);
        assert_eq!(st.facts.pid, 1);
        assert_eq!(st.facts.hostname, name);
        let agent = i.pid();
        assert!(
            killed::cmdline_starts(agent, AGENT_IN_ROOTFS),
            "pid {agent} is not the agent"
        );
        // Its cgroup is the run's, with the limits; the monitor (lxc-start) counts too.
        let cg = i.cgroup().expect("an LXC instance has a cgroup");
        let limit = cg
            .read("memory", "memory.max")
            .or_else(|_| cg.read("memory", "memory.limit_in_bytes"))
            .expect("memory limit readable");
        assert_eq!(limit, (48u64 << 20).to_string());
        assert_eq!(cg.read("pids", "pids.max").unwrap(), "32");
        let want = format!("/isobench/{}/{name}", run.ctx.run_id);
        let line = read(format!("/proc/{agent}/cgroup"));
        assert!(
            line.lines()
                .any(|l| l.split(':').nth(1) == Some("memory") && l.ends_with(&want)),
            "agent not in {want}: {line}"
        );
        assert!(i.pids().len() >= 2, "agent and monitor: {:?}", i.pids());
        // What the host reads back: Docker's capabilities, no_new_privs, seccomp, all
        // namespaces, the device allow-list.
        let iso = isobench::measure::isolation::read(agent, Some(&cgroups), None);
        assert_eq!(
            u64::from_str_radix(&iso.cap_eff, 16).unwrap(),
            mask(DOCKER_CAPS),
            "{iso:?}"
        );
        assert_eq!(
            u64::from_str_radix(&iso.cap_bnd, 16).unwrap(),
            mask(DOCKER_CAPS)
        );
        assert_eq!(iso.no_new_privs, Some(true));
        assert_eq!(iso.seccomp, "filter");
        assert_eq!(iso.ns_private, "cgroup,ipc,mnt,net,pid,uts");
        if cgroups.mode != CgroupMode::V2 {
            assert_ne!(iso.devices, "all", "{iso:?}");
        }
    }
    // Threads start under the seccomp policy (clone allowed without namespace flags, clone3
    // ENOSYS): every micro-benchmark ran.
    for i in &mut insts {
        let deadline = isobench::deadline::Limit::new(Duration::from_secs(60), "test").from_now();
        let report = i
            .wait_done(deadline, &AtomicBool::new(false))
            .expect("the syscalls workload finishes");
        let costs = report.syscalls.expect("a syscalls line");
        for op in ["getppid", "pipe_roundtrip", "first_write"] {
            assert!(costs.contains_key(op), "{op}: {costs:?}");
        }
    }
    let lxcpath = run.ctx.state_dir.join("lxc");
    let agents: Vec<i32> = insts.iter().map(|i| i.pid()).collect();
    for i in insts {
        i.teardown().expect("teardown");
    }
    for pid in agents {
        assert!(!common::alive(pid), "agent {pid} left");
    }
    let naming = killed::wait_until_none_naming(&lxcpath, Duration::from_secs(2));
    assert!(naming.is_empty(), "lxc processes left: {naming:?}");
    for name in names {
        for root in CgroupHost::all_roots() {
            let d = root.join("isobench").join(&run.ctx.run_id);
            for n in [name.to_string(), format!("{name}.monitor")] {
                assert!(!d.join(&n).exists(), "cgroup left: {}/{n}", d.display());
            }
        }
        assert!(!lxcpath.join(name).exists(), "instance dir left");
        assert!(!lxcpath.join(format!("{name}.log")).exists(), "log left");
    }
    let mounts: Vec<String> = read("/proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(&*lxcpath.to_string_lossy()))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
}

#[test]
fn a_killed_lxc_run_is_cleaned_by_isobench_clean() {
    if cannot_run() {
        return;
    }
    killed::killed_run_is_cleaned(
        "lxc",
        "name = \"lxckill\"\nbackends = [\"lxc\"]\ncounts = [3]\nwarmup = 0\nparallelism = 3\n\
         ready_timeout_s = 30\n[measure]\nidle_window_s = 120\nidle_adaptive = false\n",
        3,
        |id| killed::instances_up(id, |p| killed::cmdline_starts(p, AGENT_IN_ROOTFS)),
    );
}

#[test]
fn the_lxc_config_follows_the_scenario() {
    let (run_id, state_dir) = common::scratch_state_dir("lxcconfig");
    let text = scenario(
        "[limits]\nmemory_mib = 48\ncpus = 0.25\npids = 32\n[namespaces]\nnet = false\nuts = false\n",
    );
    let s =
        isobench::scenario::Scenario::parse(&text, "t.toml", std::path::Path::new("/")).unwrap();
    let ctx = isobench::backend::RunContext {
        run_id: run_id.clone(),
        scenario: std::sync::Arc::new(s),
        state_dir: state_dir.clone(),
        agent_exe: env!("CARGO_BIN_EXE_isobench").into(),
        cancel: std::sync::Arc::new(AtomicBool::new(false)),
        cache_dir: std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
    };
    let dir = std::path::Path::new("/x/lxc/i0");
    let v1 = isobench::backend::lxc::config(&ctx, "i0", dir, CgroupMode::Hybrid);
    let v2 = isobench::backend::lxc::config(&ctx, "i0", dir, CgroupMode::V2);
    let _ = isobench::host::remove_dir_tree(&state_dir);
    println!("{v1}");
    let has = |c: &str, l: &str| c.lines().any(|x| x == l);
    assert!(has(&v1, "lxc.rootfs.path = dir:/x/lxc/i0/rootfs"));
    assert!(has(
        &v1,
        &format!("lxc.init.cmd = {AGENT_IN_ROOTFS} agent idle")
    ));
    assert!(
        has(&v1, "lxc.namespace.keep = net uts"),
        "net and uts shared"
    );
    assert!(
        !v1.contains("lxc.net.0.type"),
        "no network namespace, no network"
    );
    assert!(
        !v1.contains("lxc.uts.name"),
        "no UTS namespace, no hostname"
    );
    assert!(has(&v1, "lxc.cgroup.relative = 0"));
    assert!(has(
        &v1,
        &format!("lxc.cgroup.dir.container = isobench/{run_id}/i0")
    ));
    assert!(has(
        &v1,
        &format!("lxc.environment = ISOBENCH_RUN_ID={run_id}")
    ));
    assert!(has(&v1, "lxc.cgroup.memory.limit_in_bytes = 50331648"));
    assert!(has(&v1, "lxc.cgroup.cpu.cfs_quota_us = 25000"));
    assert!(has(&v1, "lxc.cgroup.pids.max = 32"));
    assert!(has(&v1, "lxc.cgroup.devices.deny = a"));
    assert!(has(&v1, "lxc.cgroup.devices.allow = c 1:3 rwm"));
    assert!(has(&v2, "lxc.cgroup2.memory.max = 50331648"));
    assert!(has(&v2, "lxc.cgroup2.cpu.max = 25000 100000"));
    assert!(has(&v1, "lxc.no_new_privs = 1"));
    assert!(has(&v1, "lxc.seccomp.profile = /x/lxc/i0/seccomp"));
    let keep = v1
        .lines()
        .find_map(|l| l.strip_prefix("lxc.cap.keep = "))
        .expect("lxc.cap.keep");
    assert_eq!(keep.split(' ').count(), DOCKER_CAPS.len());
    assert!(keep.split(' ').any(|c| c == "chown") && !keep.contains("sys_admin"));
}

#[test]
fn a_missing_lxc_or_runsc_is_one_line_and_exit_2_with_nothing_created() {
    if skip::unless_root() {
        return;
    }
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("peers-preflight-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    for (backend, tool) in [("lxc", "lxc-start"), ("gvisor", "runsc")] {
        let file = base.join(format!("{backend}.toml"));
        std::fs::write(
            &file,
            format!("name = \"t\"\nbackends = [\"{backend}\"]\ncounts = [1]\n"),
        )
        .unwrap();
        let out = base.join(format!("out-{backend}"));
        let state = base.join(format!("state-{backend}"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_isobench"))
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .arg("--state-dir")
            .arg(&state)
            .env("PATH", "/nonexistent")
            .output()
            .expect("isobench runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{backend}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{backend}: one line: {err}");
        assert!(
            err.contains(&format!("backend {backend}: {tool} is not on PATH")),
            "{err}"
        );
        assert!(!out.exists(), "{backend}: results dir created");
        assert!(
            std::fs::read_dir(&state).map_or(true, |mut d| d.next().is_none()),
            "{backend}: state created"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
