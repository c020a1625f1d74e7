//! Instances that die after they were ready, for real: a process, a container, an oci-runc
//! container and a QEMU guest killed from outside, and a container OOM-killed at its memory
//! limit. The death watch notices each at once (not at teardown), the row is not ok and its
//! `error` says what happened, the batch neither hangs nor crashes, and teardown of the dead
//! instance leaves nothing on the host.

mod common;
#[path = "common/host.rs"]
mod host;

use common::{TestRun, skip};
use isobench::results::record::Sample;
use isobench::runner::batch;
use isobench::scenario::BackendKind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Batches here are about dying, not measuring: no cache drops, no idle window.
const QUIET: &str = "[measure]\nmemory = false\nidle_window_s = 0\n";

fn scenario(backend: &str, extra: &str) -> String {
    format!(
        "name = \"death\"\nbackends = [\"{backend}\"]\ncounts = [1]\nwarmup = 0\n{extra}\n{QUIET}"
    )
}

fn cannot_run(kind: &str) -> bool {
    let tools: &[&str] = match kind {
        "oci" => &["runc"],
        "vm" => &["qemu-system-x86_64"],
        _ => &[],
    };
    skip::unless_root() || skip::unless_on_path(tools)
}

/// What one batch of one instance came to.
struct Seen {
    row: Sample,
    /// How long after the kill (if the test killed it) the watch had the death.
    noticed_after: Option<Duration>,
    died_before_teardown: bool,
}

/// Launches one instance of `run`'s backend as a batch does, optionally SIGKILLs its first
/// host process from outside, waits for the watch to see a death, then measures and tears
/// the batch down as the runner does. Asserts the host is clean afterwards.
fn batch_of_one(run: TestRun, kill_it: bool, wait_for_death: Duration) -> Seen {
    let before = host::snapshot();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let env = batch::Env::new(&run.ctx, run.backend(), &pool);
    let live = batch::launch_all(&env, batch::BatchId { n: 1, rep: 0 });
    let pid = match &live.launched[0].1 {
        Ok(inst) => inst.pid(),
        Err(e) => panic!("launch failed: {e}"),
    };
    let killed_at = kill_it.then(|| {
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
        Instant::now()
    });
    let start = Instant::now();
    while !live.watch.is_dead(0) && start.elapsed() < wait_for_death {
        std::thread::sleep(Duration::from_millis(2));
    }
    let noticed_after = killed_at
        .filter(|_| live.watch.is_dead(0))
        .map(|t| t.elapsed());
    let died_before_teardown = live.watch.is_dead(0);
    let t = Instant::now();
    let out = batch::measure_and_teardown(&env, live);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the batch took {:?} with a dead instance",
        t.elapsed()
    );
    let row = out.rows.into_iter().next().expect("one row");
    let (state_dir, run_id) = (run.ctx.state_dir.clone(), run.ctx.run_id.clone());
    drop(run);
    host::assert_clean_since(&before, &state_dir, &[run_id]);
    Seen {
        row,
        noticed_after,
        died_before_teardown,
    }
}

/// The row of an instance killed from outside: not ok, says SIGKILL after ready, was torn
/// down all the same; and the watch had it within moments of the kill.
fn assert_killed(seen: &Seen, what: &str) {
    let r = &seen.row;
    assert!(!r.ok, "a killed instance's row is not ok: {r:?}");
    let want = format!("{what} killed by SIGKILL after ready, ");
    assert!(
        r.error.starts_with(&want) && r.error.ends_with(" s after start"),
        "error {:?} should start with {want:?}",
        r.error
    );
    assert!(
        r.teardown_ms.is_some(),
        "teardown of the dead instance: {r:?}"
    );
    let noticed = seen
        .noticed_after
        .expect("the watch saw the death before teardown");
    assert!(
        noticed < Duration::from_millis(500),
        "noticed {noticed:?} after the kill"
    );
}

/// The test of one backend: launched, killed from outside after ready, noticed at once, named
/// in its row as `what`, torn down, nothing left.
fn killed_after_ready(kind: &str, what: &str, make: impl FnOnce() -> TestRun) {
    if cannot_run(kind) {
        return;
    }
    let _lock = host::host_lock();
    assert_killed(&batch_of_one(make(), true, Duration::from_secs(5)), what);
}

#[test]
fn a_process_killed_after_ready_is_noticed_and_named() {
    killed_after_ready("process", "agent", || {
        TestRun::new(BackendKind::Process, &scenario("process", ""))
    });
}

#[test]
fn a_container_killed_after_ready_is_noticed_and_named() {
    killed_after_ready("container", "agent", || {
        TestRun::new(BackendKind::Container, &scenario("container", ""))
    });
}

#[test]
fn an_oci_runc_container_killed_after_ready_is_noticed_and_named() {
    killed_after_ready("oci", "agent", || {
        TestRun::new_oci("runc", &scenario("oci", "[oci]\nruntimes = [\"runc\"]"))
    });
}

#[test]
fn a_qemu_killed_after_its_guest_was_ready_is_noticed_and_named() {
    killed_after_ready("vm", "qemu", || {
        TestRun::new(
            BackendKind::Vm,
            &scenario("vm", "ready_timeout_s = 120\n[vm]\naccel = \"tcg\""),
        )
    });
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed_and_says_so() {
    if cannot_run("container") {
        return;
    }
    let _lock = host::host_lock();
    let run = TestRun::new(
        BackendKind::Container,
        &scenario(
            "container",
            "workload = { touch-memory = 64 }\n[limits]\nmemory_mib = 16",
        ),
    );
    let seen = batch_of_one(run, false, Duration::from_secs(10));
    let r = &seen.row;
    assert!(
        seen.died_before_teardown,
        "the watch saw the OOM kill: {r:?}"
    );
    assert!(!r.ok, "{r:?}");
    assert!(
        r.error.starts_with(
            "oom-killed at memory limit 16 MiB (agent killed by SIGKILL after ready, "
        ),
        "error: {:?}",
        r.error
    );
    assert!(
        r.teardown_ms.is_some(),
        "teardown of the dead instance: {r:?}"
    );
}

#[test]
fn a_live_instance_is_no_death() {
    if cannot_run("container") {
        return;
    }
    let _lock = host::host_lock();
    let run = TestRun::new(BackendKind::Container, &scenario("container", ""));
    let seen = batch_of_one(run, false, Duration::from_millis(300));
    assert!(!seen.died_before_teardown);
    assert!(
        seen.row.ok,
        "teardown's kill is not a death: {:?}",
        seen.row
    );
    assert_eq!(seen.row.error, "");
}
