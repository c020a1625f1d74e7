//! Start-up latency per backend under criterion: time from just before the spawn until the
//! agent's `ready` line (the same definition as `isobench run`), teardown excluded, beside
//! the kernel floor (benches/floor.rs: the same kernel operations in a minimal loop).
//! Each launcher's bench also launches one floor per instance, interleaved (which of a pair goes
//! first alternates), and prints the ratio of the two medians: drift of a noisy host hits both
//! alike.
//! Few samples and Flat sampling: each iteration launches a real instance.
//!
//! Every bench is a criterion bench: `cargo bench -- --list` lists them, `cargo bench --
//! container` runs one; a bench is prepared only when it runs. Plots are off (criterion's
//! default `plotters` feature is off in Cargo.toml): its plotting needs system fonts and
//! panicked on a fresh machine without them; the figures are in the terminal output and in
//! target/criterion/*/estimates.json.

#[path = "support/floor.rs"]
mod floor;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use floor::Floor;
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

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn context_named(kind: &str, toml_backend: &str) -> RunContext {
    let toml = format!(
        "name = \"bench\"\nbackends = [\"{toml_backend}\"]\ncounts = [1]\nwarmup = 0\n[limits]\nmemory_mib = 64\npids = 64\n"
    );
    let id = isobench::host::run_id::RunId::for_this_process(&format!("bench{kind}"))
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

fn context(kind: BackendKind) -> RunContext {
    context_named(kind.as_str(), kind.as_str())
}

/// The floor, prepared once per bench that needs it: its own state dir with the busybox
/// image's layers, and a memory cgroup of its own run id.
struct FloorBench {
    floor: Floor,
    ctx: RunContext,
}

impl FloorBench {
    fn new() -> FloorBench {
        let ctx = context_named("floor", "container");
        let layers = isobench::image::Layers::prepare(
            &ctx.scenario.image,
            &ctx.state_dir.join("layers"),
            &ctx.agent_exe,
        )
        .expect("floor layers");
        let memory = Floor::memory_root().expect("a memory cgroup controller");
        let cgroup = memory.join(isobench::host::cgroup::TOP).join(&ctx.run_id);
        let floor = Floor::new(&layers.lowerdir(), &ctx.state_dir.join("floor"), &cgroup);
        FloorBench { floor, ctx }
    }

    fn finish(self) {
        self.floor.finish();
        end_run(&self.ctx);
    }
}

/// What the runner does at a run's end, for a bench's own run: its state dir and
/// `isobench/<run-id>` in every cgroup hierarchy go. An OCI runtime's run dirs in the
/// hierarchies isobench uses are left to the run's end (`CgroupHost::hold_run_everywhere`),
/// so without this a bench of runc left them behind.
fn end_run(ctx: &RunContext) {
    let _ = isobench::host::cgroup::CgroupHost::remove_run_everywhere(&ctx.run_id);
    let _ = isobench::host::remove_dir_tree(&ctx.state_dir);
}

fn group(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("startup");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

fn p50(v: &[f64]) -> f64 {
    isobench::stats::percentile(v, 50.0).unwrap_or(f64::NAN)
}

/// The kernel floor alone.
fn floor(c: &mut Criterion) {
    if !root() {
        eprintln!("skipped startup/floor: needs root");
        return;
    }
    let mut g = group(c);
    let mut fb: Option<FloorBench> = None;
    g.bench_function("floor", |bench| {
        let f = fb.get_or_insert_with(FloorBench::new);
        bench.iter_custom(|iters| (0..iters).map(|_| f.floor.launch()).sum())
    });
    g.finish();
    if let Some(f) = fb {
        f.finish();
    }
}

type PhaseOf = fn(&backend::Startup) -> Option<Duration>;

/// The start-up phases a launcher's bench prints the medians of (results::metrics defines them).
const PHASES: [(&str, PhaseOf); 9] = [
    ("spawn", |s| s.spawn),
    ("clone", |s| s.clone),
    ("cgroup", |s| s.cgroup),
    ("rootfs", |s| s.rootfs),
    ("setup", |s| s.setup),
    ("exec", |s| s.exec),
    ("agent_start", |s| s.agent_start),
    ("agent_ready", |s| s.agent_ready),
    ("ready", |s| Some(s.startup)),
];

/// One launcher: `make` builds its backend (only when the bench runs); each timed launch is
/// paired with one floor launch, and the ratio of the medians is printed at the end.
fn launcher(c: &mut Criterion, name: &str, make: &dyn Fn() -> (RunContext, Box<dyn Backend>)) {
    let mut g = group(c);
    let mut state: Option<(RunContext, Box<dyn Backend>, FloorBench)> = None;
    let (mut ours, mut floors) = (Vec::new(), Vec::new());
    let mut phases: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len()];
    g.bench_function(name, |bench| {
        let (_, b, fb) = state.get_or_insert_with(|| {
            let (ctx, b) = make();
            (ctx, b, FloorBench::new())
        });
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                // Which of the pair goes first alternates: a launch leaves the kernel's
                // cgroup-migration lock warm for a grace period (see doctor's cgroups line),
                // and the one right after it would always get that for free.
                let floor_first = ours.len() % 2 == 1;
                if floor_first {
                    floors.push(fb.floor.launch().as_secs_f64() * 1e3);
                }
                let inst = b.launch(&format!("b{i}")).expect("launch");
                let st = inst.startup();
                let t = st.startup;
                total += t;
                for (v, p) in phases.iter_mut().zip(PHASES) {
                    if let Some(d) = p.1(st) {
                        v.push(d.as_secs_f64() * 1e3);
                    }
                }
                inst.teardown().expect("teardown");
                ours.push(t.as_secs_f64() * 1e3);
                if !floor_first {
                    floors.push(fb.floor.launch().as_secs_f64() * 1e3);
                }
            }
            total
        })
    });
    g.finish();
    if let Some((ctx, b, fb)) = state {
        let (o, f) = (p50(&ours), p50(&floors));
        eprintln!(
            "startup/{name}: p50 {o:.3} ms, kernel floor p50 {f:.3} ms (interleaved, {} pairs): ratio {:.2}",
            ours.len(),
            o / f
        );
        let seen: Vec<String> = PHASES
            .iter()
            .zip(&phases)
            .filter(|(_, v)| !v.is_empty())
            .map(|(p, v)| format!("{} {:.3}", p.0, p50(v)))
            .collect();
        eprintln!(
            "startup/{name}: phases p50 (ms from the start): {}",
            seen.join(", ")
        );
        b.finish().expect("backend cleanup");
        fb.finish();
        end_run(&ctx);
    }
}

fn startup(c: &mut Criterion) {
    let root = root();
    for kind in [
        BackendKind::Process,
        BackendKind::Unshare,
        BackendKind::Container,
    ] {
        if !root {
            eprintln!("skipped startup/{}: needs root", kind.as_str());
            continue;
        }
        launcher(c, kind.as_str(), &|| {
            let ctx = context(kind);
            let b = backend::create(kind, &ctx).expect("backend prepares");
            (ctx, b)
        });
    }
    // crun 1.8 (Debian 12's) refuses a hybrid cgroup host: runc only.
    for rt in ["runc"] {
        if !root || isobench::host::exec::which(rt).is_none() {
            eprintln!("skipped startup/oci-{rt}: needs root and {rt}");
            continue;
        }
        launcher(c, &format!("oci-{rt}"), &|| {
            let ctx = context_named(&format!("oci{rt}"), "oci");
            let b = backend::create_oci(rt, &ctx).expect("oci backend prepares");
            (ctx, b)
        });
    }
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
    if !root() || isobench::host::exec::which("qemu-system-x86_64").is_none() {
        eprintln!("skipped vm benches: need root and qemu-system-x86_64");
        return;
    }
    let mut state: Option<(RunContext, VmBackend)> = None;
    let prepare = || {
        let ctx = context(BackendKind::Vm);
        let vm = VmBackend::new(ctx.clone()).expect("vm backend prepares");
        (ctx, vm)
    };
    let mut g = c.benchmark_group("vm");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("boot", |bench| {
        let (_, vm) = state.get_or_insert_with(prepare);
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
    // The harness's overhead over a plain QEMU boot of the same guest: each iteration is one
    // pair, isobench's boot timed, the plain one recorded; the ratio prints at the end.
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    g.bench_function("overhead-pairs", |bench| {
        let (ctx, vm) = state.get_or_insert_with(prepare);
        let dir = ctx.state_dir.join("plain");
        std::fs::create_dir_all(&dir).expect("plain dir");
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let i = ours.len();
                let inst = vm.launch(&format!("pair{i}")).expect("vm launch");
                total += inst.startup().startup;
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
                    plain_ready(vm.command_line(&overlay, &dir.join(format!("p{i}.pid"))))
                        .as_secs_f64()
                        * 1e3,
                );
                let _ = std::fs::remove_file(&overlay);
            }
            total
        })
    });
    g.finish();
    if let Some((ctx, vm)) = state {
        if !ours.is_empty() {
            let (o, p) = (p50(&ours), p50(&plain));
            eprintln!(
                "vm harness overhead ({} pairs, accel {}): isobench p50 {o:.0} ms, plain qemu p50 {p:.0} ms, ratio {:.3}",
                ours.len(),
                vm.accel(),
                o / p,
            );
        }
        vm.finish().expect("vm cleanup");
        end_run(&ctx);
    }
}

criterion_group!(benches, floor, startup, vm);
criterion_main!(benches);
