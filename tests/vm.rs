//! The `vm` backend against real QEMU (TCG here; KVM where a probe guest boots): its own
//! kernel and boot_id, guest-side facts, copy-on-write overlays over an unchanged base disk,
//! and nothing left after teardown or after a killed run plus `isobench clean`.

mod common;
#[path = "common/host.rs"]
mod host;

use common::*;
use isobench::scenario::BackendKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// TCG is forced where a test is not about the accelerator: the KVM probe costs seconds.
const TCG: &str = "ready_timeout_s = 120\n[vm]\naccel = \"tcg\"\n";

fn skip_unless_qemu() -> bool {
    skip::unless_root()
        || skip::unless_on_path(&["qemu-system-x86_64", "qemu-img"])
        || skip::when(
            isobench::image::kernel::find_guest_kernel(None).is_err(),
            "needs a guest kernel (scripts/setup.sh)",
        )
}

#[test]
fn a_vm_boots_its_own_kernel_while_a_container_shares_the_hosts() {
    if skip_unless_qemu() {
        return;
    }
    let host_boot_id = read("/proc/sys/kernel/random/boot_id");
    let guest_kernel = isobench::image::kernel::find_guest_kernel(None).unwrap();
    let vm = TestRun::new(BackendKind::Vm, &scenario(TCG));
    assert_eq!(vm.backend().accel(), "tcg");
    let inst = vm.backend().launch("vm-a").expect("a VM boots under TCG");
    let f = &inst.startup().facts;
    assert_ne!(f.boot_id, host_boot_id, "a VM runs a kernel of its own");
    assert_eq!(f.boot_id.len(), 36, "a boot_id: {:?}", f.boot_id);
    assert_eq!(f.kernel_release, guest_kernel.release);
    assert_eq!(f.pid, 1, "the agent is the guest's init");
    // Guest-side facts come from the guest kernel: 128 MiB of RAM, kernel threads of its own.
    let total = f.mem_total_kib.expect("guest MemTotal");
    assert!(
        total < 128 * 1024 && total > 64 * 1024,
        "guest MemTotal {total} KiB"
    );
    assert!(
        f.kthreads.unwrap_or(0) > 5,
        "guest kernel threads: {:?}",
        f.kthreads
    );
    assert!(
        f.kernel_kib().unwrap_or(0) > 1024,
        "guest kernel memory: {:?}",
        f.kernel_kib()
    );
    // Phases: QEMU spawned, the kernel's first console byte, then ready; and from the
    // guest's own clock, placed on the host's line: the kernel's boot, /init, the agent.
    let st = inst.startup();
    let first = st.first_output.expect("first console byte");
    assert!(st.spawn.unwrap() < first && first < st.startup, "{st:?}");
    let (kernel, init, agent) = (
        st.vm_kernel.expect("vm_kernel"),
        st.vm_init.expect("vm_init"),
        st.agent_start.expect("agent_start of a VM"),
    );
    assert!(
        st.spawn.unwrap() < kernel && kernel < init && init < agent && agent < st.startup,
        "spawn < kernel < init < agent < ready: {st:?}"
    );
    // Under TCG the kernel's boot is most of it: more than 100 ms, and init's part (modules,
    // disk, switch root) is shorter than the kernel's.
    assert!(
        init - kernel > std::time::Duration::from_millis(100),
        "{st:?}"
    );
    assert!(agent - init < init - kernel, "{st:?}");

    let ct = TestRun::new(BackendKind::Container, &scenario(""));
    let c = ct.backend().launch("ct-a").expect("a container launches");
    assert_eq!(
        c.startup().facts.boot_id,
        host_boot_id,
        "a container shares the host kernel"
    );
    c.teardown().unwrap();
    inst.teardown().unwrap();
}

/// Allocated bytes of a file (what copy-on-write really costs), not its apparent size.
fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.blocks() * 512).unwrap_or(0)
}

#[test]
fn the_overlay_grows_when_the_guest_writes_and_the_base_does_not_change() {
    if skip_unless_qemu() {
        return;
    }
    let run = TestRun::new(
        BackendKind::Vm,
        &scenario(&format!("workload = {{ write-file = 16 }}\n{TCG}")),
    );
    let mut inst = run.backend().launch("vm-w").expect("a VM boots");
    let overlay = inst.private_dir().expect("a VM has an overlay");
    let base = run
        .ctx
        .cache_dir
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "ext4"))
        .expect("a base disk in the cache");
    let before = std::fs::metadata(&base).unwrap();
    let grown_from = allocated(&overlay);
    inst.wait_done(
        isobench::deadline::Deadline::from_now(Duration::from_secs(120), "test"),
        &run.ctx.cancel,
    )
    .expect("the guest writes 16 MiB");
    let grown_to = allocated(&overlay);
    assert!(
        grown_to >= grown_from + 16 * 1024 * 1024,
        "overlay grew from {grown_from} to {grown_to} bytes, want +16 MiB"
    );
    let after = std::fs::metadata(&base).unwrap();
    assert_eq!(
        (
            before.len(),
            before.mtime(),
            before.mtime_nsec(),
            before.ctime_nsec()
        ),
        (
            after.len(),
            after.mtime(),
            after.mtime_nsec(),
            after.ctime_nsec()
        ),
        "the base disk changed"
    );

    let pid = inst.pid();
    let cg_dirs = inst
        .cgroup()
        .expect("qemu runs in an accounting cgroup")
        .dirs()
        .to_vec();
    assert!(
        inst.cgroup()
            .unwrap()
            .read("pids", "cgroup.procs")
            .unwrap()
            .lines()
            .any(|l| l == pid.to_string()),
        "qemu joined its cgroup before exec"
    );
    let pidfile = overlay.with_extension("pid");
    assert_eq!(
        read(&pidfile),
        pid.to_string(),
        "QEMU's pidfile names the instance's process"
    );
    inst.teardown().expect("teardown");
    assert!(!alive(pid), "qemu survived teardown");
    assert!(
        !overlay.exists() && !pidfile.exists(),
        "overlay or pidfile left after teardown"
    );
    assert!(
        cg_dirs.iter().all(|d| !d.exists()),
        "cgroup left after teardown: {cg_dirs:?}"
    );
}

#[test]
fn the_kvm_probe_decides_and_says_why() {
    if skip_unless_qemu() {
        return;
    }
    let run = TestRun::new(
        BackendKind::Vm,
        &scenario("[vm]\naccel = \"auto\"\nprobe_timeout_s = 15\n"),
    );
    let b = run.backend();
    let why = b.accel_reason().unwrap_or_default();
    match b.accel() {
        "kvm" => assert!(why.contains("probe guest was ready"), "{why}"),
        "tcg" => {
            eprintln!(
                "note: KVM does not work on this host ({why}); the TCG fallback is what runs"
            );
            assert!(
                why.contains("kvm") || why.contains("KVM"),
                "the fallback must say why: {why}"
            );
        }
        other => panic!("accel {other}"),
    }
    let accel = b.accel().to_string();
    drop(run);
    // Forcing KVM is a clear error exactly where the probe fell back.
    let forced = std::panic::catch_unwind(|| {
        TestRun::new(
            BackendKind::Vm,
            &scenario("[vm]\naccel = \"kvm\"\nprobe_timeout_s = 15\n"),
        )
    });
    match (accel.as_str(), forced) {
        ("kvm", Ok(r)) => assert_eq!(r.backend().accel(), "kvm"),
        ("tcg", Err(_)) => {}
        (a, r) => panic!("auto chose {a} but forcing kvm gave {:?}", r.is_ok()),
    }
}

#[test]
fn a_killed_run_leaves_no_qemu_after_clean() {
    if skip_unless_qemu() {
        return;
    }
    let _lock = host::host_lock();
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vm-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("s.toml");
    std::fs::write(&scenario_path, "name = \"vmkill\"\nbackends = [\"vm\"]\ncounts = [2]\nwarmup = 0\nready_timeout_s = 120\n[vm]\naccel = \"tcg\"\n").unwrap();
    let (out, state) = (dir.join("out"), dir.join("state"));
    let before = host::snapshot();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_isobench"))
        .arg("run")
        .arg(&scenario_path)
        .arg("--out")
        .arg(&out)
        .arg("--state-dir")
        .arg(&state)
        .arg("--cache-dir")
        .arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"))
        .arg("-q")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while its guests boot: once both overlays exist.
    let start = Instant::now();
    let run_id = loop {
        let vms: Vec<PathBuf> = std::fs::read_dir(&state)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("vms"))
            .filter(|p| p.exists())
            .collect();
        if let Some(v) = vms.first()
            && std::fs::read_dir(v)
                .map(|r| {
                    r.flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "qcow2"))
                        .count()
                })
                .unwrap_or(0)
                >= 2
        {
            break v
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started its VMs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        state.join(&run_id).exists(),
        "a killed run cannot clean up after itself"
    );
    // QEMU carries the run's marker and a parent-death signal: it dies with the harness.
    let left = host::wait_until_no_marked(std::slice::from_ref(&run_id), Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "qemu outlived the killed harness: {left:?}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_isobench"))
        .arg("clean")
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&run_id),
        "{out:?}"
    );
    assert!(
        !state.join(&run_id).exists(),
        "overlays and pidfiles are removed by clean"
    );
    host::assert_clean_since(&before, &state, &[run_id]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_machine_that_does_not_boot_in_the_probe_window_is_skipped_in_seconds_with_its_reason() {
    if skip_unless_qemu() {
        return;
    }
    // A probe window no guest meets stands for a machine type that cannot boot here.
    let toml = scenario("[vm]\naccel = \"tcg\"\nmachine = \"microvm\"\nprobe_timeout_s = 0.3\n");
    let scenario = isobench::scenario::Scenario::parse(&toml, "test.toml", Path::new("/"))
        .expect("test scenario parses");
    let (run_id, state_dir) = scratch_state_dir("microvmprobe");
    let ctx = isobench::backend::RunContext {
        run_id,
        scenario: std::sync::Arc::new(scenario),
        state_dir: state_dir.clone(),
        agent_exe: PathBuf::from(env!("CARGO_BIN_EXE_isobench")),
        cancel: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        cache_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
    };
    let t = Instant::now();
    let made = isobench::backend::create(BackendKind::Vm, &ctx);
    let took = t.elapsed();
    let _ = isobench::host::remove_dir_tree(&state_dir);
    let e = match made {
        Ok(_) => panic!("a guest booted within 0.3 s under TCG"),
        Err(e) => e,
    };
    assert!(e.skip, "a host finding, not bad input: {e}");
    assert!(
        e.what.contains("microvm") && e.what.contains("probe guest was not ready"),
        "{e}"
    );
    // Preparing (the base disk is cached) and the probe, not a ready timeout per batch.
    assert!(took < Duration::from_secs(60), "took {took:?}");
}
