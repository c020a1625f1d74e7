//! A mock backend for tests of pure logic: the runner's walk, the statistics in summary.csv,
//! the CSV exports, failed launches, workloads that die, teardowns that fail, interruption.
//! Its instances are scripted, not launched: nothing is spawned, mounted or made, so these
//! tests need no root. It proves nothing about launching; the real backends' tests do that.
//!
//! It is not a [`BackendKind`]: no scenario file can name it. A test passes a [`MockFactory`]
//! to `runner::run_with`, which then builds a mock in place of every peer of the plan (same
//! kind, so runner::kind treats it as that kind; labelled `mock-<label>`).

use super::{
    Backend, Factory, Instance, LaunchError, PrepareError, RunContext, Startup, TeardownError,
};
use crate::agent::reader::{AgentError, WorkloadReport};
use crate::deadline::Deadline;
use crate::scenario::BackendKind;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What becomes of one scripted instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Ready, its workload done, torn down cleanly.
    Ready,
    /// The launch fails: the agent's output ends before `ready`.
    LaunchFails,
    /// Ready, but its workload never says `done`: the agent's output ends (a death).
    Dies,
    /// Ready and done, but its teardown leaves something behind.
    TeardownFails,
}

type ByName<T> = Arc<dyn Fn(&str) -> T + Send + Sync>;

/// The script every mock instance follows, chosen by the instance's name
/// (`<label>-n<N>-r<rep>-i<index>`, `<label>-warmup-<k>`, as the runner names them).
#[derive(Clone)]
pub struct Script {
    startup: ByName<Duration>,
    teardown: ByName<Duration>,
    fate: ByName<Fate>,
    /// Sets the run's cancel flag (a Ctrl-C) once this many launches were made, warmups
    /// included.
    cancel_after: Option<usize>,
    /// Peers (by their real label: `process`, `oci-crun`) that cannot be prepared here.
    unavailable: BTreeSet<String>,
}

impl Default for Script {
    /// Every instance ready in 1 ms and torn down in 0.5 ms.
    fn default() -> Script {
        Script {
            startup: Arc::new(|_| Duration::from_millis(1)),
            teardown: Arc::new(|_| Duration::from_micros(500)),
            fate: Arc::new(|_| Fate::Ready),
            cancel_after: None,
            unavailable: BTreeSet::new(),
        }
    }
}

impl Script {
    pub fn startup(mut self, f: impl Fn(&str) -> Duration + Send + Sync + 'static) -> Script {
        self.startup = Arc::new(f);
        self
    }
    pub fn teardown(mut self, f: impl Fn(&str) -> Duration + Send + Sync + 'static) -> Script {
        self.teardown = Arc::new(f);
        self
    }
    pub fn fate(mut self, f: impl Fn(&str) -> Fate + Send + Sync + 'static) -> Script {
        self.fate = Arc::new(f);
        self
    }
    pub fn cancel_after(mut self, launches: usize) -> Script {
        self.cancel_after = Some(launches);
        self
    }
    pub fn unavailable(mut self, label: &str) -> Script {
        self.unavailable.insert(label.to_string());
        self
    }
}

/// What the mocks of one run did, for a test to check the runner's bookkeeping: every
/// instance that came up is torn down (or dropped), every prepared backend finished.
#[derive(Debug, Default)]
pub struct Ledger {
    pub launches: AtomicUsize,
    /// Instances up and not yet torn down or dropped.
    pub live: AtomicUsize,
    pub torn_down: AtomicUsize,
    pub prepared: Mutex<Vec<String>>,
    pub finished: Mutex<Vec<String>>,
}

/// Makes a [`MockBackend`] for every peer of a run.
pub struct MockFactory {
    pub script: Script,
    pub ledger: Arc<Ledger>,
}

impl MockFactory {
    pub fn new(script: Script) -> MockFactory {
        MockFactory {
            script,
            ledger: Arc::new(Ledger::default()),
        }
    }
}

impl Factory for MockFactory {
    fn create(
        &self,
        kind: BackendKind,
        runtime: Option<&str>,
        ctx: &RunContext,
    ) -> Result<Box<dyn Backend>, PrepareError> {
        let base = match runtime {
            Some(rt) => format!("oci-{rt}"),
            None => kind.as_str().to_string(),
        };
        if self.script.unavailable.contains(&base) {
            return Err(PrepareError {
                backend: "mock",
                what: format!("{base}: scripted as unavailable"),
                skip: false,
            });
        }
        let label = super::profile_label(format!("mock-{base}"), &ctx.scenario);
        lock(&self.ledger.prepared).push(label.clone());
        Ok(Box::new(MockBackend {
            kind,
            label,
            cancel: ctx.cancel.clone(),
            script: self.script.clone(),
            ledger: self.ledger.clone(),
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct MockBackend {
    kind: BackendKind,
    label: String,
    cancel: Arc<AtomicBool>,
    script: Script,
    ledger: Arc<Ledger>,
}

impl Backend for MockBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }
    fn label(&self) -> String {
        self.label.clone()
    }
    fn launch(&self, name: &str) -> Result<Box<dyn Instance>, LaunchError> {
        let made = self.ledger.launches.fetch_add(1, Ordering::SeqCst) + 1;
        if self.script.cancel_after.is_some_and(|k| made >= k) {
            self.cancel.store(true, Ordering::SeqCst);
        }
        let fate = (self.script.fate)(name);
        if fate == Fate::LaunchFails {
            return Err(LaunchError::new(
                name,
                AgentError::Eof {
                    expected: "ready",
                    output: vec!["mock: scripted launch failure".into()],
                },
            ));
        }
        self.ledger.live.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MockInstance {
            name: name.to_string(),
            startup: Startup {
                startup: (self.script.startup)(name),
                ..Startup::default()
            },
            teardown: (self.script.teardown)(name),
            fate,
            ledger: self.ledger.clone(),
            live: true,
        }))
    }
    fn finish(&self) -> Result<(), TeardownError> {
        lock(&self.ledger.finished).push(self.label.clone());
        Ok(())
    }
}

pub struct MockInstance {
    name: String,
    startup: Startup,
    teardown: Duration,
    fate: Fate,
    ledger: Arc<Ledger>,
    live: bool,
}

impl MockInstance {
    fn gone(&mut self) {
        if std::mem::take(&mut self.live) {
            self.ledger.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Instance for MockInstance {
    fn name(&self) -> &str {
        &self.name
    }
    fn startup(&self) -> &Startup {
        &self.startup
    }
    /// The harness's own pid: a process that exists and outlives the batch, so the death
    /// watch and the readings that look it up find it alive and nothing is killed (teardown
    /// is the mock's own). Scenarios for the mock switch the host readings off.
    fn pid(&self) -> i32 {
        std::process::id() as i32
    }
    fn pids(&self) -> Vec<i32> {
        Vec::new()
    }
    fn wait_done(
        &mut self,
        _deadline: Deadline,
        _cancel: &AtomicBool,
    ) -> Result<WorkloadReport, AgentError> {
        match self.fate {
            Fate::Dies => Err(AgentError::Eof {
                expected: "done",
                output: vec!["mock: scripted death".into()],
            }),
            _ => Ok(WorkloadReport::default()),
        }
    }
    fn teardown(mut self: Box<Self>) -> Result<Duration, TeardownError> {
        self.gone();
        self.ledger.torn_down.fetch_add(1, Ordering::SeqCst);
        if self.fate == Fate::TeardownFails {
            return Err(TeardownError::Stragglers {
                parent: 0,
                pids: vec![0],
                waited: Duration::ZERO,
            }
            .of(&self.name));
        }
        Ok(self.teardown)
    }
}

impl Drop for MockInstance {
    fn drop(&mut self) {
        self.gone();
    }
}
