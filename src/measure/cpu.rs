//! CPU time an instance used, from its cgroup or from its processes, and the idle cost
//! derived from two readings.

use crate::host::cgroup::InstanceCgroup;
use std::time::Duration;

/// CPU time the cgroup's tasks used since it was created, ns: v1 `cpuacct.usage` (ns), v2
/// `cpu.stat` `usage_usec` * 1000. None if unreadable.
///
/// The v1 file is tried first and v2's if it is missing: on v2 the "cpuacct" lookup lands in
/// the unified directory, which has no cpuacct.usage, and v1's cpu.stat has no usage_usec,
/// so no mode is needed from the caller.
pub fn cgroup_cpu_ns(cg: &InstanceCgroup) -> Option<u64> {
    if let Ok(text) = cg.read("cpuacct", "cpuacct.usage")
        && let Ok(ns) = text.trim().parse::<u64>()
    {
        return Some(ns);
    }
    let stat = cg.read("cpu", "cpu.stat").ok()?;
    stat.lines().find_map(|l| {
        let usec: u64 = l.strip_prefix("usage_usec ")?.trim().parse().ok()?;
        usec.checked_mul(1000)
    })
}

/// utime + stime of /proc/PID/stat summed over `pids`, ns. The process line of stat counts
/// every thread of the process (live and exited), not its waited-for children. Precision is
/// one clock tick (sysconf(_SC_CLK_TCK), 10 ms at the usual 100 Hz). None if no pid could be
/// read.
pub fn pids_cpu_ns(pids: &[i32]) -> Option<u64> {
    let tps = procfs::ticks_per_second().max(1);
    let mut ticks: u64 = 0;
    let mut any = false;
    for &pid in pids {
        let Ok(stat) = procfs::process::Process::new(pid).and_then(|p| p.stat()) else {
            continue;
        };
        ticks += stat.utime + stat.stime;
        any = true;
    }
    // u128: ticks * 1e9 overflows u64 after ~584 years of CPU at 100 Hz, but be exact anyway.
    any.then(|| (u128::from(ticks) * 1_000_000_000 / u128::from(tps)) as u64)
}

/// CPU milliseconds used per second of wall time between two CPU readings (ns) taken
/// `window` apart: 1000 is one core kept busy. 0 for an empty window; a counter that went
/// backwards (a recreated cgroup) gives 0, not a huge number.
pub fn idle_cpu_ms_per_s(before_ns: u64, after_ns: u64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    after_ns.saturating_sub(before_ns) as f64 / 1e6 / secs
}

/// The idle window's shortest length: before it, no reading counts as holding still.
pub const IDLE_MIN: Duration = Duration::from_millis(250);
/// The shortest stretch of the window whose rate is compared with the whole window's.
pub const IDLE_STEP: Duration = Duration::from_millis(100);

/// Whether a batch's idle CPU rate holds still, so that the idle window may end before its
/// bound (`measure.idle_window_s`). `samples` are (seconds since the window opened, the
/// batch's summed CPU ns), the first at 0; `n` instances are summed.
///
/// It holds when the window has lasted [`IDLE_MIN`] and the rate over its latest stretch (at
/// least [`IDLE_STEP`] long, within the later half of the window) is within 10% of the rate
/// over the whole window, or both are within 0.001 ms/s per instance of each other (the
/// figure's resolution in samples.csv). Instances that are idle for real (the agent waits in
/// pause(2)) hold at once; activity that decays after start-up (a guest that has just
/// booted) or comes in bursts does not, and gets the whole bound.
pub fn idle_rate_holds(samples: &[(f64, u64)], n: usize) -> bool {
    let (Some(&(t0, c0)), Some(&(t, c))) = (samples.first(), samples.last()) else {
        return false;
    };
    let t = t - t0;
    if t < IDLE_MIN.as_secs_f64() {
        return false;
    }
    let step = IDLE_STEP.as_secs_f64();
    let Some(&(tp, cp)) = samples
        .iter()
        .rev()
        .find(|(ts, _)| t0 + t - ts >= step - 1e-9)
    else {
        return false;
    };
    if tp - t0 < t / 2.0 {
        return false;
    }
    let ms_per_s = |dc: u64, dt: f64| dc as f64 / 1e6 / dt;
    let whole = ms_per_s(c.saturating_sub(c0), t);
    let recent = ms_per_s(c.saturating_sub(cp), t0 + t - tp);
    let diff = (whole - recent).abs();
    diff <= 0.1 * whole.max(recent) || diff <= 0.001 * n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::testutil::KillOnDrop;

    #[test]
    fn an_idle_rate_holds_once_the_window_is_long_enough_and_its_latest_stretch_agrees() {
        let ms = |v: f64| (v * 1e6) as u64;
        // Nothing used at all: holds at the minimum, given a stretch to compare.
        assert!(idle_rate_holds(&[(0.0, 0), (0.15, 0), (0.25, 0)], 1000));
        assert!(
            !idle_rate_holds(&[(0.0, 0), (0.1, 0), (0.2, 0)], 1000),
            "too short"
        );
        // Only the opening and one reading: there is no later stretch to compare.
        assert!(!idle_rate_holds(&[(0.0, 0), (0.8, 0)], 10));
        // A steady 10 ms/s.
        assert!(idle_rate_holds(
            &[(0.0, 0), (0.3, ms(3.0)), (0.4, ms(4.0))],
            2
        ));
        // Decaying after a boot: 20 ms/s over the window, 5 ms/s lately.
        assert!(!idle_rate_holds(
            &[(0.0, 0), (0.3, ms(7.5)), (0.4, ms(8.0))],
            2
        ));
        // A burst in the latest stretch.
        assert!(!idle_rate_holds(
            &[(0.0, 0), (0.3, ms(3.0)), (0.4, ms(6.0))],
            2
        ));
        // Differences below the figure's resolution hold: 1 us over 0.1 s for 100 instances.
        assert!(idle_rate_holds(&[(0.0, 0), (0.3, 0), (0.4, 1000)], 100));
    }
    use std::process::Command;
    use std::time::Instant;

    /// The spinning tests run one at a time, so that they do not starve each other.
    static SPINNERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn spawn(cmd: &str, args: &[&str]) -> KillOnDrop {
        KillOnDrop(Command::new(cmd).args(args).spawn().expect("spawn"))
    }

    #[test]
    fn a_busy_child_uses_cpu_and_an_idle_one_does_not() {
        let busy = spawn("sh", &["-c", "while :; do :; done"]);
        let idle = spawn("sleep", &["15"]);
        let (bp, ip) = (busy.0.id() as i32, idle.0.id() as i32);
        let _one = SPINNERS.lock().unwrap_or_else(|e| e.into_inner());
        let start = Instant::now();
        let b0 = pids_cpu_ns(&[bp]).expect("read the busy child");
        std::thread::sleep(Duration::from_millis(500));
        let mut b1 = pids_cpu_ns(&[bp]).expect("read the busy child");
        // Other tests (or other work on a shared host) may hold both CPUs: allow up to 10 s
        // more, and say so. The check is that the reading is the child's CPU time, not speed.
        while b1 < 300_000_000 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
            b1 = pids_cpu_ns(&[bp]).expect("read the busy child");
        }
        if start.elapsed() > Duration::from_millis(600) {
            println!(
                "note: CPUs contended, busy child took {:?}",
                start.elapsed()
            );
        }
        let took = start.elapsed();
        let i1 = pids_cpu_ns(&[ip]).expect("read the idle child");
        let rate = idle_cpu_ms_per_s(b0, b1, took);
        println!(
            "busy: {} ms total, {rate:.0} ms/s over {took:?}; idle: {} ms",
            b1 / 1_000_000,
            i1 / 1_000_000
        );
        assert!(b1 >= 300_000_000, "busy child used only {b1} ns");
        assert!(i1 <= 20_000_000, "idle child used {i1} ns");
        assert_eq!(pids_cpu_ns(&[i32::MAX]), None);
        assert_eq!(pids_cpu_ns(&[ip, i32::MAX]), Some(i1));
    }

    #[test]
    fn idle_rate_arithmetic() {
        let s = Duration::from_secs(2);
        assert_eq!(idle_cpu_ms_per_s(0, 1_000_000_000, s), 500.0);
        assert_eq!(idle_cpu_ms_per_s(5, 5, s), 0.0);
        assert_eq!(idle_cpu_ms_per_s(10, 5, s), 0.0);
        assert_eq!(idle_cpu_ms_per_s(0, 10, Duration::ZERO), 0.0);
    }

    #[test]
    fn cgroup_cpu_of_a_busy_child() {
        let Some(run) = crate::measure::testutil::test_cgroups("measure-cpu-test", "cpu") else {
            return;
        };
        let cg = run
            .0
            .create_instance("cpu", &crate::scenario::Limits::default())
            .expect("create the instance cgroup");
        let _one = SPINNERS.lock().unwrap_or_else(|e| e.into_inner());
        let before = cgroup_cpu_ns(&cg).expect("read an empty cgroup's CPU time");
        let busy = spawn("sh", &["-c", "while :; do :; done"]);
        let pid = busy.0.id() as i32;
        cg.add_pid(pid).expect("join the cgroup");
        // The spinner's own CPU time (schedstat's first field, ns) is the reference, not the
        // wall clock: on a loaded host 500 ms of wall time may give it far less CPU.
        let own = |pid: i32| -> u64 {
            let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
            s.split_whitespace().next().unwrap().parse().unwrap()
        };
        let own_at_join = own(pid);
        std::thread::sleep(Duration::from_millis(500));
        let own_at_end = own(pid);
        let after = cgroup_cpu_ns(&cg).expect("read the cgroup's CPU time");
        let spun = own_at_end - own_at_join;
        println!(
            "cgroup CPU: {before} ns empty, {after} ns after 500 ms; the spinner ran {spun} ns"
        );
        assert!(
            spun >= 20_000_000,
            "the spinner got only {spun} ns of CPU in 500 ms"
        );
        assert!(
            after - before >= spun * 9 / 10,
            "cgroup counted {} ns of the spinner's {spun} ns",
            after - before
        );
        drop(busy);
    }
}
