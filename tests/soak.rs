//! The soak: launch/teardown cycles of real containers through the library, each one a batch
//! of N = 1 as a run makes it (launch under the death watch, measure, teardown), with the
//! harness's open fds, the host's mount count, the cgroup directories under isobench/ and the
//! harness's RSS read at the start and at the end. All must stay flat: a leak of one fd, mount
//! or cgroup per cycle, or of a few KiB of memory, shows.
//!
//! Cycles: ISOBENCH_SOAK_CYCLES (default 100, which `cargo test` runs); the full soak is
//! `ISOBENCH_SOAK_CYCLES=1000 cargo test --test soak -- --nocapture`. The figures are printed.

mod common;
#[path = "common/host.rs"]
mod host;

use common::{TestRun, skip};
use isobench::runner::batch;
use isobench::scenario::BackendKind;
use std::time::Instant;

const SCENARIO: &str = "name = \"soak\"\nbackends = [\"container\"]\ncounts = [1]\nwarmup = 0\n\
                        [measure]\nmemory = false\nidle_window_s = 0\n";

/// Cycles before the first reading: allocator arenas and thread-pool stacks settle in them.
const WARMUP_CYCLES: usize = 10;

/// What a leak would grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    fds: usize,
    mounts: usize,
    cgroup_dirs: usize,
    rss_kib: u64,
}

fn figures() -> Figures {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |rd| rd.count());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_or(0, |t| t.lines().count());
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    Figures {
        fds,
        mounts,
        cgroup_dirs: host::isobench_cgroup_dirs().len(),
        rss_kib,
    }
}

fn cycles() -> usize {
    std::env::var("ISOBENCH_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[test]
fn launch_and_teardown_cycles_leak_nothing() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let run = TestRun::new(BackendKind::Container, SCENARIO);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let env = batch::Env::new(&run.ctx, run.backend(), &pool);
    let cycle = |k: usize| {
        let live = batch::launch_all(
            &env,
            batch::BatchId {
                n: 1,
                rep: k as u32,
            },
        );
        let out = batch::measure_and_teardown(&env, live);
        let row = &out.rows[0];
        assert!(row.ok && row.teardown_ms.is_some(), "cycle {k}: {row:?}");
    };
    for k in 0..WARMUP_CYCLES {
        cycle(k);
    }
    let n = cycles();
    let start = figures();
    let t = Instant::now();
    for k in 0..n {
        cycle(WARMUP_CYCLES + k);
    }
    let took = t.elapsed();
    let end = figures();
    eprintln!(
        "soak: {n} launch/teardown cycles of a container in {:.1} s ({:.1} ms each)\n\
         soak:              start    end\n\
         soak: open fds     {:>6} {:>6}\n\
         soak: host mounts  {:>6} {:>6}\n\
         soak: cgroup dirs  {:>6} {:>6}   (below isobench/, every hierarchy)\n\
         soak: RSS KiB      {:>6} {:>6}",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / n as f64,
        start.fds,
        end.fds,
        start.mounts,
        end.mounts,
        start.cgroup_dirs,
        end.cgroup_dirs,
        start.rss_kib,
        end.rss_kib
    );
    assert_eq!(end.fds, start.fds, "open fds: {start:?} -> {end:?}");
    assert_eq!(end.mounts, start.mounts, "mounts: {start:?} -> {end:?}");
    assert_eq!(
        end.cgroup_dirs, start.cgroup_dirs,
        "cgroup dirs: {start:?} -> {end:?}"
    );
    // The allocator keeps some freed memory; a leak of even 1 KiB per cycle would pass 1 MiB
    // in the full soak.
    let grown = end.rss_kib.saturating_sub(start.rss_kib);
    assert!(
        grown <= 1024,
        "RSS grew by {grown} KiB: {start:?} -> {end:?}"
    );
}
