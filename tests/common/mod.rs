//! Shared set-up for the integration tests that drive backends through the library.
#![allow(dead_code)]

use isobench::backend::{self, Backend, RunContext};
use isobench::scenario::{BackendKind, Scenario};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The one skip rule (tests/common/skip.rs): a test that cannot run fails unless
/// ISOBENCH_ALLOW_SKIP=1.
pub mod skip;

/// A backend of one kind for a scenario given as TOML text, with its own run id and state
/// dir; everything it made is removed when dropped.
pub struct TestRun {
    pub ctx: RunContext,
    pub backend: Option<Box<dyn Backend>>,
}

impl TestRun {
    pub fn new(kind: BackendKind, toml: &str) -> TestRun {
        Self::with(toml, |ctx| {
            backend::create(kind, ctx).expect("backend prepares")
        })
    }

    /// The `oci` backend for `runtime` (`backend::create` makes one per runtime only this way).
    pub fn new_oci(runtime: &str, toml: &str) -> TestRun {
        Self::with(toml, |ctx| {
            backend::create_oci(runtime, ctx).expect("oci backend prepares")
        })
    }

    fn with(toml: &str, create: impl FnOnce(&RunContext) -> Box<dyn Backend>) -> TestRun {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let scenario =
            Scenario::parse(toml, "test.toml", Path::new("/")).expect("test scenario parses");
        let (run_id, state_dir) = scratch_state_dir(&format!("test{n}"));
        let ctx = RunContext {
            run_id,
            scenario: Arc::new(scenario),
            state_dir,
            agent_exe: PathBuf::from(env!("CARGO_BIN_EXE_isobench")),
            cancel: Arc::new(AtomicBool::new(false)),
            cache_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        };
        // The guard exists before the backend does, so a failed preparation (a test may expect
        // one) still removes the state dir.
        let mut run = TestRun { ctx, backend: None };
        run.backend = Some(create(&run.ctx));
        run
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_deref().unwrap()
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        if let Some(b) = self.backend.take() {
            let _ = b.finish();
        }
        let _ = isobench::host::remove_dir_tree(&self.ctx.state_dir);
        // What a run's end removes: the run's cgroup dirs, which an OCI runtime makes in
        // every hierarchy.
        let _ = isobench::host::cgroup::CgroupHost::remove_run_everywhere(&self.ctx.run_id);
    }
}

/// A run id `<label>-p<pid>t<start>` owned by this test process and its state dir, made as a
/// run makes one (owner file, pid records), beside the binary so the agent layer hard-links it
/// instead of copying.
pub fn scratch_state_dir(label: &str) -> (String, PathBuf) {
    let id = isobench::host::run_id::RunId::for_this_process(label).expect("a valid run id");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let created = isobench::host::state_dir::create(root, &id, root).expect("test state dir");
    (id.to_string(), created.path)
}

pub fn scenario(extra: &str) -> String {
    format!("name = \"t\"\nbackends = [\"process\", \"container\"]\ncounts = [1]\n{extra}\n")
}

/// Runs `args` inside every namespace and the root of `pid` (util-linux nsenter).
pub fn nsenter(pid: i32, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-a", "-r", "-w", "--"])
        .args(args)
        .output()
        .expect("nsenter runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .trim()
        .to_string()
}

pub fn status_field(pid: i32, field: &str) -> String {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
