//! Start-up latency per backend under criterion: time from just before the spawn until the
//! agent's `ready` line (the same definition as `isobench run`), teardown excluded.
//! Few samples and Flat sampling: each iteration launches a real instance.

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use isobench::backend::{self, RunContext};
use isobench::scenario::{BackendKind, Scenario};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn context(kind: BackendKind) -> RunContext {
    let toml = format!(
        "name = \"bench\"\nbackends = [\"{}\"]\ncounts = [1]\nwarmup = 0\n[limits]\nmemory_mib = 64\npids = 64\n",
        kind.as_str()
    );
    let run_id = format!("bench{}-{}", kind.as_str(), isobench::clean::owner_tag());
    let state_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&run_id);
    std::fs::create_dir_all(&state_dir).expect("bench state dir");
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
        let _ = std::fs::remove_dir_all(&ctx.state_dir);
    }
    g.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
