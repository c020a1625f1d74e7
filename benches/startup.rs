//! Start-up latency per backend under criterion: time from just before the spawn until the
//! agent's `ready` line (the same definition as `isobench run`), teardown excluded.
//! Few samples and Flat sampling: each iteration launches a real instance.

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use isobench::backend::vm::VmBackend;
use isobench::backend::{self, Backend, RunContext};
use isobench::scenario::{BackendKind, Scenario};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use std::time::Instant;

fn context(kind: BackendKind) -> RunContext {
    let toml = format!(
        "name = \"bench\"\nbackends = [\"{}\"]\ncounts = [1]\nwarmup = 0\n[limits]\nmemory_mib = 64\npids = 64\n",
        kind.as_str()
    );
    let id = isobench::host::run_id::RunId::for_this_process(&format!("bench{}", kind.as_str()))
        .expect("bench run id");
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let state_dir = isobench::host::state_dir::create(&root, &id, &root)
        .expect("bench state dir")
        .path;
    let run_id = id.to_string();
    RunContext {
        run_id,
        scenario: Arc::new(
            Scenario::parse(&toml, "bench", Path::new("/")).expect("bench scenario"),
        ),
        state_dir,
        agent_exe: PathBuf::from(env!("CARGO_BIN_EXE_isobench")),
        cancel: Arc::new(AtomicBool::new(false)),
        cache_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
    }
}

fn startup(c: &mut Criterion) {
    let mut g = c.benchmark_group("startup");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let root = nix::unistd::geteuid().is_root();
    for kind in [
        BackendKind::Process,
        BackendKind::Unshare,
        BackendKind::Container,
    ] {
        if kind != BackendKind::Process && !root {
            eprintln!("skipped startup/{}: needs root", kind.as_str());
            continue;
        }
        let ctx = context(kind);
        let b = backend::create(kind, &ctx).expect("backend prepares");
        g.bench_function(kind.as_str(), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let inst = b.launch(&format!("b{i}")).expect("launch");
                    total += inst.startup().startup;
                    inst.teardown().expect("teardown");
                }
                total
            })
        });
        b.finish().expect("backend cleanup");
        let _ = isobench::host::remove_dir_tree(&ctx.state_dir);
    }
    g.finish();
}

/// Time from spawning `cmd` until its output contains a line `ready`: how a user would time a
/// plain QEMU command line, with no isobench code in the path.
fn plain_ready(mut cmd: Command) -> Duration {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("qemu spawns");
    let out = child.stdout.take().expect("stdout");
    let ready = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.trim_end() == "ready");
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the plain guest never printed ready");
    took
}

/// VM start-up through isobench, and the harness's overhead: the same guest (kernel, initrd,
/// disk, memory, accelerator) booted by isobench and by its plain QEMU command line, in
/// interleaved pairs so that drift of a noisy host hits both alike.
fn vm(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root()
        || isobench::host::exec::which("qemu-system-x86_64").is_none()
    {
        eprintln!("skipped vm benches: need root and qemu-system-x86_64");
        return;
    }
    let ctx = context(BackendKind::Vm);
    let vm = VmBackend::new(ctx.clone()).expect("vm backend prepares");
    let mut g = c.benchmark_group("startup");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function(format!("vm-{}", vm.accel()), |bench| {
        bench.iter_custom(|iters| {
            (0..iters)
                .map(|i| {
                    let inst = vm.launch(&format!("v{i}")).expect("vm launch");
                    let t = inst.startup().startup;
                    inst.teardown().expect("teardown");
                    t
                })
                .sum()
        })
    });
    g.finish();

    let pairs: usize = std::env::var("ISOBENCH_VM_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = ctx.state_dir.join("plain");
    std::fs::create_dir_all(&dir).expect("plain dir");
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        let inst = vm.launch(&format!("pair{i}")).expect("vm launch");
        ours.push(inst.startup().startup.as_secs_f64() * 1e3);
        inst.teardown().expect("teardown");
        let overlay = dir.join(format!("p{i}.qcow2"));
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(vm.base_disk())
            .arg(&overlay)
            .status()
            .expect("qemu-img");
        assert!(ok.success());
        plain.push(
            plain_ready(vm.command_line(&overlay, &dir.join(format!("p{i}.pid")))).as_secs_f64()
                * 1e3,
        );
        let _ = std::fs::remove_file(&overlay);
    }
    let (o, p) = (
        isobench::stats::percentile(&ours, 50.0).unwrap_or(f64::NAN),
        isobench::stats::percentile(&plain, 50.0).unwrap_or(f64::NAN),
    );
    eprintln!(
        "vm harness overhead ({} pairs, accel {}): isobench p50 {o:.0} ms, plain qemu p50 {p:.0} ms, ratio {:.3} (isobench means {:.0} ms, plain {:.0} ms)",
        pairs,
        vm.accel(),
        o / p,
        isobench::stats::mean(&ours).unwrap_or(f64::NAN),
        isobench::stats::mean(&plain).unwrap_or(f64::NAN)
    );
    vm.finish().expect("vm cleanup");
    let _ = isobench::host::remove_dir_tree(&ctx.state_dir);
}

criterion_group!(benches, startup, vm);
criterion_main!(benches);
