//! gVisor (`runsc`) as an OCI runtime, for real: two sandboxes become ready, each under a
//! user-space kernel of its own (gVisor's uname, no boot_id: the agent reports its absence),
//! counted as kernels with their Sentry + Gofer memory; the syscalls workload shows the cost
//! of a system call served by the Sentry far above a plain process's; the isolation read-back
//! of the Sentry; nothing left after teardown; a killed run is cleaned by `isobench clean`.

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/killed.rs"]
mod killed;

use common::{TestRun, read, skip};
use isobench::backend::oci::{GOFER_COMM, SENTRY_COMM, argv0_is};
use isobench::host::cgroup::CgroupHost;
use isobench::runner::kind;
use isobench::scenario::BackendKind;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn cannot_run() -> bool {
    skip::unless_root() || skip::unless_on_path(&["runsc"])
}

fn scenario(extra: &str) -> String {
    format!("name = \"t\"\nbackends = [\"gvisor\"]\ncounts = [2]\nready_timeout_s = 60\n{extra}\n")
}

/// getppid's ns per operation reported by `inst`'s syscalls workload.
fn getppid_ns(inst: &mut Box<dyn isobench::backend::Instance>) -> f64 {
    let deadline = isobench::deadline::Limit::new(Duration::from_secs(120), "test").from_now();
    let report = inst
        .wait_done(deadline, &AtomicBool::new(false))
        .expect("the syscalls workload finishes");
    let costs = report.syscalls.expect("a syscalls line");
    assert!(
        costs.contains_key("pipe_roundtrip"),
        "every op measured (threads start inside the sandbox): {costs:?}"
    );
    costs["getppid"].ns_per_op
}

#[test]
fn two_sandboxes_run_their_own_kernels_cost_a_syscall_dearly_and_leave_nothing() {
    if cannot_run() {
        return;
    }
    let _lock = host::host_lock();
    let run = TestRun::new(
        BackendKind::Gvisor,
        &scenario("workload = { syscalls = 100 }\n[limits]\nmemory_mib = 256\n"),
    );
    let b = run.backend();
    assert_eq!(b.kind(), BackendKind::Gvisor);
    assert_eq!(b.label(), "oci-runsc-ptrace");
    let mut insts: Vec<Box<dyn isobench::backend::Instance>> = ["g-0", "g-1"]
        .iter()
        .map(|n| b.launch(n).expect("a gVisor sandbox becomes ready"))
        .collect();
    let host_release = read("/proc/sys/kernel/osrelease");
    for i in &insts {
        let st = i.startup();
        eprintln!(
            "{}: start-up {:.1} ms, kernel {}, boot_id {}",
            i.name(),
            st.startup.as_secs_f64() * 1e3,
            st.facts.kernel_release,
            st.facts.boot_id
        );
        assert!(st.startup > Duration::ZERO);
        // gVisor's own kernel: its uname, and no boot_id (reported as absent, never a failure).
        assert!(!st.facts.kernel_release.is_empty());
        assert_ne!(st.facts.kernel_release, host_release);
        assert!(
            st.facts
                .boot_id
                .starts_with(isobench::agent::BOOT_ID_ABSENT),
            "{}",
            st.facts.boot_id
        );
        // The instance's first process is its Sentry, with a Gofer beside it in the cgroup.
        assert!(
            argv0_is(i.pid(), SENTRY_COMM),
            "pid {} is no Sentry",
            i.pid()
        );
        assert!(i.pids().iter().any(|p| argv0_is(*p, GOFER_COMM)));
    }
    // Each Sentry is a kernel: N + 1 with the host's, and their memory is counted.
    let (sentries, kib) =
        kind::user_space_kernels(BackendKind::Gvisor, insts.iter().map(|i| i.as_ref()))
            .expect("gvisor counts user-space kernels");
    assert_eq!(sentries + 1, 3, "distinct kernels for N = 2");
    assert!(kib > 1024, "Sentry + Gofer PSS {kib} KiB");
    eprintln!("Sentry + Gofer PSS for 2 sandboxes: {kib} KiB");

    // The host's boundary around each sandbox: its Sentry runs under a seccomp filter, in
    // namespaces of its own, with the profile applied inside, out of the host's sight.
    let iso = isobench::measure::isolation::read(insts[0].pid(), None, None);
    assert_eq!(iso.seccomp, "filter", "{iso:?}");
    for ns in ["mnt", "net", "ipc", "uts"] {
        assert!(iso.ns_private.contains(ns), "{ns}: {iso:?}");
    }

    // A system call served by the Sentry (ptrace platform) against a plain process's.
    let sandboxed = getppid_ns(&mut insts[0]);
    let proc_run = TestRun::new(
        BackendKind::Process,
        "name = \"t\"\nbackends = [\"process\"]\ncounts = [1]\nworkload = { syscalls = 100 }\n",
    );
    let mut p = proc_run.backend().launch("p-0").expect("a process");
    let plain = getppid_ns(&mut p);
    p.teardown().expect("process teardown");
    eprintln!(
        "getppid: {sandboxed:.0} ns in gVisor, {plain:.0} ns as a process ({:.0}x)",
        sandboxed / plain
    );
    assert!(
        sandboxed > 10.0 * plain,
        "getppid {sandboxed:.0} ns in gVisor is not far above {plain:.0} ns"
    );

    let state_dir = run.ctx.state_dir.clone();
    let sentries: Vec<i32> = insts.iter().map(|i| i.pid()).collect();
    for i in insts {
        i.teardown().expect("teardown");
    }
    for pid in sentries {
        assert!(!common::alive(pid), "Sentry {pid} left");
    }
    let naming = killed::wait_until_none_naming(&state_dir, Duration::from_secs(2));
    assert!(naming.is_empty(), "runsc processes left: {naming:?}");
    for name in ["g-0", "g-1"] {
        for root in CgroupHost::all_roots() {
            let d = root.join("isobench").join(&run.ctx.run_id).join(name);
            assert!(!d.exists(), "cgroup left: {}", d.display());
        }
        let state = state_dir
            .join("oci-runsc/state")
            .join(format!("{name}_sandbox:{name}.state"));
        assert!(!state.exists(), "runsc state left: {}", state.display());
        assert!(!state_dir.join("oci-runsc").join(name).exists());
    }
}

#[test]
fn a_killed_gvisor_run_is_cleaned_by_isobench_clean() {
    if cannot_run() {
        return;
    }
    killed::killed_run_is_cleaned(
        "gvisor",
        "name = \"gvkill\"\nbackends = [\"gvisor\"]\ncounts = [2]\nwarmup = 0\nparallelism = 2\n\
         ready_timeout_s = 60\n[measure]\nidle_window_s = 120\nidle_adaptive = false\n",
        2,
        |id| killed::instances_up(id, |p| argv0_is(p, SENTRY_COMM)),
    );
}

/// Killed while a sandbox starts (runsc has written the container's state, `created`, not
/// yet started), with runsc's own commands killed too, as a SIGKILL of the whole group would:
/// the Sentry runs as uid 65534, which `clean` never signals, and no process of root's is
/// left to end it. Where it outlives the kill of the root processes, `clean` has runsc delete
/// its container; nothing of the run is left.
#[test]
fn a_gvisor_run_killed_while_its_sandbox_starts_is_cleaned() {
    if cannot_run() {
        return;
    }
    let label = "gvisor-starting";
    let created = |id: &str| {
        let root = killed::run_state_dir(label, id).join("oci-runsc/state");
        std::fs::read_dir(root).map_or(0, |rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".state"))
                .count()
        })
    };
    let said = killed::killed_run_is_cleaned_with(
        label,
        "name = \"gvstart\"\nbackends = [\"gvisor\"]\ncounts = [1]\nwarmup = 0\n\
         ready_timeout_s = 60\n[measure]\nidle_window_s = 120\nidle_adaptive = false\n",
        1,
        created,
        killed::Kill {
            wait: std::time::Duration::ZERO,
            helpers: true,
        },
    );
    // Where a Sentry outlived the kill of the run's root processes (clean lists it as another
    // uid's, never signalled: the gap), clean must have deleted its container through runsc;
    // the helper has checked that nothing of the run is left either way.
    if said.contains("runs as uid 65534") {
        assert!(
            said.contains("deleted gVisor container"),
            "a Sentry outlived the kill and runsc was not asked to delete it: {said}"
        );
    }
}

#[test]
fn a_platform_the_installed_runsc_lacks_is_said_as_such() {
    if cannot_run() {
        return;
    }
    let text = "name = \"t\"\nbackends = [\"oci\"]\ncounts = [1]\n[oci]\nruntimes = [\"runsc\"]\nrunsc_platform = \"systrap\"\n";
    let s = isobench::scenario::Scenario::parse(text, "t.toml", std::path::Path::new("/"))
        .expect("systrap is a platform name");
    let offered = std::process::Command::new("runsc")
        .args(["help", "platforms"])
        .output()
        .expect("runsc help platforms");
    if String::from_utf8_lossy(&offered.stdout)
        .split_whitespace()
        .any(|p| p == "systrap")
    {
        eprintln!("this runsc offers systrap: nothing to refuse");
        return;
    }
    let (run_id, state_dir) = common::scratch_state_dir("gvplatform");
    let ctx = isobench::backend::RunContext {
        run_id,
        scenario: std::sync::Arc::new(s),
        state_dir: state_dir.clone(),
        agent_exe: env!("CARGO_BIN_EXE_isobench").into(),
        cancel: std::sync::Arc::new(AtomicBool::new(false)),
        cache_dir: std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
    };
    let err = isobench::backend::create_oci("runsc", &ctx)
        .err()
        .expect("systrap refused");
    let _ = isobench::host::remove_dir_tree(&state_dir);
    assert!(
        err.what
            .contains("runsc_platform = \"systrap\" is not offered"),
        "{}",
        err.what
    );
}
