//! The run's one progress display on stderr: the phase the run is in (prepare, warmup, settle,
//! launch, measure, idle, teardown), which batch of how many, instances launched, and an ETA
//! from the plan. It redraws several times a second, so a long settle or a VM boot never
//! leaves the terminal silent; `-q` turns it off, and it draws nothing when stderr is not a
//! terminal. The per-batch lines go above it through [`Progress::println`].
//!
//! The ETA model, the phase accounting and the line are plain data ([`Eta`], [`Tracker`], with
//! the clock passed in) so they are unit-tested; [`Progress`] only adds the clock and
//! indicatif.

use crate::runner::plan::{Plan, Step};
use crate::scenario::{BackendKind, Scenario};
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the run is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Preparing a backend (image layers, a VM base disk, the KVM probe).
    Prepare,
    /// Launches before measuring, not recorded.
    Warmup,
    /// Waiting for the host's memory to hold still (with a page-cache drop) for a reading.
    Settle,
    Launch,
    /// Workloads, isolation read-back, the memory views.
    Measure,
    /// Waiting for KSM to merge the batch's identical pages (until its counters converge).
    Ksm,
    /// The idle-CPU window (`measure.idle_window_s`).
    Idle,
    Teardown,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Prepare,
        Phase::Warmup,
        Phase::Settle,
        Phase::Launch,
        Phase::Measure,
        Phase::Ksm,
        Phase::Idle,
        Phase::Teardown,
    ];

    /// Whether the phase waits for the host (settling memory readings, KSM's merging, the
    /// idle-CPU window) rather than doing the run's own work: meta.json's `wall.waits_s`.
    pub fn is_wait(&self) -> bool {
        matches!(self, Phase::Settle | Phase::Ksm | Phase::Idle)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Warmup => "warmup",
            Phase::Settle => "settle",
            Phase::Launch => "launch",
            Phase::Measure => "measure",
            Phase::Ksm => "ksm",
            Phase::Idle => "idle",
            Phase::Teardown => "teardown",
        }
    }

    /// Whether the phase's time grows with the instances of the batch (it does one thing per
    /// instance); the others cost about the same at any N. The ETA learns the two apart.
    fn per_instance(&self) -> bool {
        matches!(self, Phase::Warmup | Phase::Launch | Phase::Teardown)
    }
}

/// Seconds per instance (launch and teardown, one at a time) of each kind before any of its
/// batches finished: rough figures of a small host with VMs under TCG, used only until the
/// first batch of a peer (or of its kind) is timed.
fn prior_instance_s(kind: BackendKind) -> f64 {
    match kind {
        BackendKind::Process => 0.01,
        BackendKind::Unshare | BackendKind::Container => 0.02,
        BackendKind::Oci | BackendKind::Lxc => 0.1,
        BackendKind::Docker => 0.5,
        BackendKind::Gvisor => 0.3,
        BackendKind::Vm => 5.0,
    }
}

/// The prior of one settled memory reading (two per batch when memory is measured): waiting
/// for MemAvailable to hold still takes a few seconds after a page-cache drop (3-4 s on the
/// development host), about one without.
fn prior_settle_s(drop_caches: bool) -> f64 {
    if drop_caches { 3.0 } else { 1.0 }
}

/// Time observed for a peer or a kind: the per-instance phases and the rest, apart.
#[derive(Debug, Default, Clone, Copy)]
struct Fit {
    per_instance_s: f64,
    instances: u64,
    fixed_s: f64,
    batches: u32,
}

impl Fit {
    fn add(&mut self, instances: u32, per_instance: Duration, fixed: Option<Duration>) {
        self.per_instance_s += per_instance.as_secs_f64();
        self.instances += u64::from(instances);
        if let Some(f) = fixed {
            self.fixed_s += f.as_secs_f64();
            self.batches += 1;
        }
    }

    fn rate(&self) -> Option<f64> {
        (self.instances > 0).then(|| self.per_instance_s / self.instances as f64)
    }

    fn fixed(&self) -> Option<f64> {
        (self.batches > 0).then(|| self.fixed_s / f64::from(self.batches))
    }
}

/// One stretch of the plan the ETA sums over: a peer's warmup, or one of its batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub peer: usize,
    /// The step's index in its peer; None for the warmup.
    pub step: Option<usize>,
    pub kind: BackendKind,
    /// Instances launched (for an `[until]` sweep its `max`, so the ETA is an upper bound).
    pub instances: u32,
}

/// The estimate of what is left: each item costs `fixed + instances x rate`, both learnt from
/// the batches done (the peer's own first, then its kind's), priors before that.
#[derive(Debug, Clone)]
pub struct Eta {
    items: Vec<Item>,
    parallelism: f64,
    prior_fixed_s: f64,
    peers: Vec<Fit>,
    kinds: Vec<(BackendKind, Fit)>,
}

impl Eta {
    pub fn new(plan: &Plan, scenario: &Scenario) -> Eta {
        let mut items = Vec::new();
        for (peer, p) in plan.peers.iter().enumerate() {
            if p.warmup > 0 {
                items.push(Item {
                    peer,
                    step: None,
                    kind: p.kind,
                    instances: p.warmup,
                });
            }
            for (i, s) in p.steps.iter().enumerate() {
                items.push(Item {
                    peer,
                    step: Some(i),
                    kind: p.kind,
                    instances: s.launches(),
                });
            }
        }
        let m = &scenario.measure;
        let settles = if m.memory {
            2.0 * prior_settle_s(m.drop_caches)
        } else {
            0.0
        };
        Eta {
            items,
            parallelism: f64::from(scenario.parallelism.max(1)),
            prior_fixed_s: m.idle_window_s + settles,
            peers: vec![Fit::default(); plan.peers.len()],
            kinds: Vec::new(),
        }
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The item of `peer`'s warmup (`step` None) or of its step.
    pub fn index(&self, peer: usize, step: Option<usize>) -> Option<usize> {
        self.items
            .iter()
            .position(|i| i.peer == peer && i.step == step)
    }

    /// The first item of `peer` (where the run is once it turns to that peer).
    pub fn first_of(&self, peer: usize) -> usize {
        self.items
            .iter()
            .position(|i| i.peer >= peer)
            .unwrap_or(self.items.len())
    }

    fn kind_fit(&self, kind: BackendKind) -> Option<&Fit> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, f)| f)
    }

    /// What item `i` is expected to take.
    pub fn estimate(&self, i: usize) -> Duration {
        let Some(item) = self.items.get(i) else {
            return Duration::ZERO;
        };
        let own = &self.peers[item.peer];
        let kind = self.kind_fit(item.kind);
        let rate = own
            .rate()
            .or_else(|| kind.and_then(Fit::rate))
            .unwrap_or_else(|| prior_instance_s(item.kind) / self.parallelism);
        let fixed = match item.step {
            None => 0.0,
            Some(_) => own
                .fixed()
                .or_else(|| kind.and_then(Fit::fixed))
                .unwrap_or(self.prior_fixed_s),
        };
        Duration::from_secs_f64((fixed + rate * f64::from(item.instances)).max(0.0))
    }

    /// Records what item `i` took: `per_instance` in the phases that do one thing per
    /// instance, `fixed` in the others.
    pub fn observe(&mut self, i: usize, instances: u32, per_instance: Duration, fixed: Duration) {
        let Some(item) = self.items.get(i).cloned() else {
            return;
        };
        // A warmup has no fixed part to learn from.
        let fixed = item.step.map(|_| fixed);
        self.peers[item.peer].add(instances, per_instance, fixed);
        match self.kinds.iter_mut().find(|(k, _)| *k == item.kind) {
            Some((_, f)) => f.add(instances, per_instance, fixed),
            None => {
                let mut f = Fit::default();
                f.add(instances, per_instance, fixed);
                self.kinds.push((item.kind, f));
            }
        }
    }

    /// What is left from item `from` on, when item `current` (if any) has run for `elapsed`.
    pub fn remaining(&self, from: usize, current: Option<(usize, Duration)>) -> Duration {
        let mut left = Duration::ZERO;
        for i in from..self.items.len() {
            left += match current {
                Some((c, elapsed)) if c == i => self.estimate(i).saturating_sub(elapsed),
                _ => self.estimate(i),
            };
        }
        left
    }
}

/// The item in progress and the time spent in it so far.
#[derive(Debug, Clone)]
struct Current {
    item: usize,
    started: Instant,
    per_instance: Duration,
    fixed: Duration,
    /// "N=100 rep 0", "until N <= 2000", "" for a warmup.
    what: String,
}

/// Where the run is: the phase and its start, the item in progress, the launches of the
/// batch, and the ETA it feeds. Every change takes the time it happened.
#[derive(Debug, Clone)]
pub struct Tracker {
    eta: Eta,
    labels: Vec<String>,
    batches_total: usize,
    /// The first item not yet behind the run.
    pos: usize,
    peer: Option<usize>,
    current: Option<Current>,
    phase: Phase,
    phase_started: Instant,
    launched: u32,
    target: u32,
}

impl Tracker {
    pub fn new(plan: &Plan, scenario: &Scenario, now: Instant) -> Tracker {
        Tracker {
            eta: Eta::new(plan, scenario),
            labels: plan.peers.iter().map(|p| p.label.clone()).collect(),
            batches_total: plan.batches(),
            pos: 0,
            peer: None,
            current: None,
            phase: Phase::Prepare,
            phase_started: now,
            launched: 0,
            target: 0,
        }
    }

    pub fn eta(&self) -> &Eta {
        &self.eta
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The run turns to peer `peer`: whatever was before it (a peer that could not be
    /// prepared included) is behind.
    pub fn peer(&mut self, peer: usize, now: Instant) {
        self.done(now);
        self.peer = Some(peer);
        self.pos = self.pos.max(self.eta.first_of(peer));
        self.set_phase(Phase::Prepare, now);
    }

    /// The current peer's warmup starts.
    pub fn warmup(&mut self, now: Instant) {
        self.begin(None, String::new(), now);
        self.set_phase(Phase::Warmup, now);
    }

    /// Batch `step` of the current peer starts, described by `what`.
    pub fn batch(&mut self, step: usize, what: String, now: Instant) {
        self.begin(Some(step), what, now);
        self.set_phase(Phase::Settle, now);
    }

    fn begin(&mut self, step: Option<usize>, what: String, now: Instant) {
        self.done(now);
        let Some(item) = self.peer.and_then(|p| self.eta.index(p, step)) else {
            return;
        };
        self.pos = self.pos.max(item);
        self.launched = 0;
        self.target = self.eta.items()[item].instances;
        self.current = Some(Current {
            item,
            started: now,
            per_instance: Duration::ZERO,
            fixed: Duration::ZERO,
            what,
        });
    }

    /// The run enters `phase`; the time of the one it leaves counts for the current item.
    pub fn set_phase(&mut self, phase: Phase, now: Instant) {
        let spent = now.saturating_duration_since(self.phase_started);
        if let Some(c) = &mut self.current {
            if self.phase.per_instance() {
                c.per_instance += spent;
            } else {
                c.fixed += spent;
            }
        }
        self.phase = phase;
        self.phase_started = now;
    }

    /// One more instance of the item launched.
    pub fn launched(&mut self) {
        self.launched = self.launched.saturating_add(1);
    }

    /// The item in progress (if any) is over: what it took goes to the ETA.
    pub fn done(&mut self, now: Instant) {
        self.set_phase(self.phase, now);
        if let Some(c) = self.current.take() {
            // What was launched is what the time was spent on (an until sweep stops below its
            // max; an interrupted batch launched none, and teaches nothing).
            if self.launched > 0 {
                self.eta
                    .observe(c.item, self.launched, c.per_instance, c.fixed);
            }
            self.pos = self.pos.max(c.item + 1);
        }
    }

    /// What is left of the run, by the plan.
    pub fn remaining(&self, now: Instant) -> Duration {
        let current = self
            .current
            .as_ref()
            .map(|c| (c.item, now.saturating_duration_since(c.started)));
        self.eta.remaining(self.pos, current)
    }

    /// The display's line: `batch 3/12 · container N=100 rep 0 · launch 37/100 · ETA ~2
    /// minutes`.
    pub fn line(&self, now: Instant) -> String {
        let mut parts = Vec::new();
        let item = self.current.as_ref().map(|c| &self.eta.items()[c.item]);
        if let Some(step) = item.and_then(|i| i.step) {
            let peer = item.map_or(0, |i| i.peer);
            let before = self
                .eta
                .items()
                .iter()
                .filter(|i| i.step.is_some() && (i.peer, i.step) < (peer, Some(step)))
                .count();
            parts.push(format!("batch {}/{}", before + 1, self.batches_total));
        }
        let label = self.peer.and_then(|p| self.labels.get(p));
        let what = self.current.as_ref().map_or("", |c| c.what.as_str());
        parts.push(
            [label.map_or("", String::as_str), what]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        );
        parts.push(match self.phase {
            Phase::Launch | Phase::Warmup if self.current.is_some() => {
                format!("{} {}/{}", self.phase.as_str(), self.launched, self.target)
            }
            p => p.as_str().to_string(),
        });
        parts.push(format!("ETA ~{}", HumanDuration(self.remaining(now))));
        parts.retain(|p| !p.is_empty());
        parts.join(" · ")
    }
}

/// Where a run's wall time went, phase by phase: kept whether the display shows or not
/// (meta.json's `wall`). The phases are the ones the display names, so the two agree.
#[derive(Debug, Default)]
pub struct PhaseClock {
    current: Option<(Phase, Instant)>,
    spent: Vec<(Phase, Duration)>,
}

impl PhaseClock {
    fn switch(&mut self, next: Option<Phase>, now: Instant) {
        if let Some((p, since)) = self.current.take() {
            let d = now.saturating_duration_since(since);
            match self.spent.iter_mut().find(|(q, _)| *q == p) {
                Some((_, t)) => *t += d,
                None => self.spent.push((p, d)),
            }
        }
        self.current = next.map(|p| (p, now));
    }

    /// Seconds spent in `phase` so far (the running phase up to now included).
    pub fn seconds(&self, phase: Phase, now: Instant) -> f64 {
        let done: Duration = self
            .spent
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, d)| *d)
            .sum();
        let running = match self.current {
            Some((p, since)) if p == phase => now.saturating_duration_since(since),
            _ => Duration::ZERO,
        };
        (done + running).as_secs_f64()
    }
}

/// The display handle, shared by the runner, the batch steps and the launching threads.
/// Never call into the bar while holding the tracker: the bar's redraw takes the tracker.
#[derive(Clone)]
pub struct Progress {
    tracker: Option<Arc<Mutex<Tracker>>>,
    bar: Option<ProgressBar>,
    clock: Arc<Mutex<PhaseClock>>,
}

/// How often the display redraws (its spinner, elapsed time and ETA), well under a second.
const TICK: Duration = Duration::from_millis(200);

impl Progress {
    /// The display of a run of `plan`; `show` false (`-q`) makes a silent one.
    pub fn new(show: bool, plan: &Plan, scenario: &Scenario) -> Progress {
        if !show {
            return Progress::hidden();
        }
        let tracker = Arc::new(Mutex::new(Tracker::new(plan, scenario, Instant::now())));
        let t = tracker.clone();
        let line = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&lock(&t).line(Instant::now()));
        };
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {line}") {
            bar.set_style(style.with_key("line", line));
        }
        bar.enable_steady_tick(TICK);
        Progress {
            tracker: Some(tracker),
            bar: Some(bar),
            clock: Arc::default(),
        }
    }

    /// A display that shows nothing and prints nothing (`-q`, and the library's tests).
    pub fn hidden() -> Progress {
        Progress {
            tracker: None,
            bar: None,
            clock: Arc::default(),
        }
    }

    fn clock(&self, next: Option<Phase>) {
        let mut c = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        c.switch(next, Instant::now());
    }

    /// Seconds the run spent in each phase so far, in [`Phase`] order.
    pub fn wall(&self) -> Vec<(Phase, f64)> {
        let c = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Phase::ALL
            .iter()
            .map(|p| (*p, c.seconds(*p, now)))
            .collect()
    }

    fn with(&self, f: impl FnOnce(&mut Tracker, Instant)) {
        if let Some(t) = &self.tracker {
            f(&mut lock(t), Instant::now());
        }
    }

    pub fn peer(&self, peer: usize) {
        self.clock(Some(Phase::Prepare));
        self.with(|t, now| t.peer(peer, now));
    }

    pub fn warmup(&self) {
        self.clock(Some(Phase::Warmup));
        self.with(|t, now| t.warmup(now));
    }

    pub fn batch(&self, step_index: usize, step: &Step) {
        self.clock(Some(Phase::Settle));
        self.with(|t, now| t.batch(step_index, step.to_string(), now));
    }

    pub fn phase(&self, phase: Phase) {
        self.clock(Some(phase));
        self.with(|t, now| t.set_phase(phase, now));
    }

    pub fn launched(&self) {
        self.with(|t, _| t.launched());
    }

    pub fn done(&self) {
        self.with(|t, now| t.done(now));
    }

    /// Prints `line` on stderr above the display; nothing with `-q`. Unlike indicatif's
    /// `println`, it still prints when stderr is not a terminal (the display is then not
    /// drawn, the lines are the log).
    pub fn println(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.suspend(|| eprintln!("{line}"));
        }
    }

    /// Prints a warning on stderr above the display, `-q` or not.
    pub fn warn(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// [`Progress::warn`] as the death watch takes it.
    pub fn announcer(&self) -> crate::runner::watch::Announce {
        let p = self.clone();
        Box::new(move |line| p.warn(line))
    }

    /// Removes the display at the end of the run (and stops its phase clock).
    pub fn finish(&self) {
        self.clock(None);
        self.done();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn lock(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A panic on a launching thread must not take the display down with it.
    t.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_clock_adds_each_phases_time_and_the_running_one() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut c = PhaseClock::default();
        c.switch(Some(Phase::Settle), at(0));
        c.switch(Some(Phase::Launch), at(100));
        c.switch(Some(Phase::Settle), at(400));
        c.switch(Some(Phase::Idle), at(450));
        assert!((c.seconds(Phase::Settle, at(500)) - 0.15).abs() < 1e-9);
        assert!((c.seconds(Phase::Launch, at(500)) - 0.3).abs() < 1e-9);
        // The running phase counts up to now; a stopped clock no longer grows.
        assert!((c.seconds(Phase::Idle, at(500)) - 0.05).abs() < 1e-9);
        c.switch(None, at(600));
        assert!((c.seconds(Phase::Idle, at(900)) - 0.15).abs() < 1e-9);
        assert_eq!(c.seconds(Phase::Ksm, at(900)), 0.0);
        assert!(Phase::Settle.is_wait() && Phase::Ksm.is_wait() && Phase::Idle.is_wait());
        assert!(!Phase::Launch.is_wait() && !Phase::Warmup.is_wait());
    }
    use std::path::Path;

    fn scenario(text: &str) -> Scenario {
        Scenario::parse(text, "t.toml", Path::new("/")).unwrap()
    }

    /// process and vm, N = 1 and 10, warmup 1, parallelism 1, a 2 s idle window, no memory.
    fn two_backends() -> (Plan, Scenario) {
        let s = scenario(
            "name = \"t\"\nbackends = [\"process\", \"vm\"]\ncounts = [1, 10]\nparallelism = 1\n[measure]\nmemory = false\nidle_window_s = 2\n",
        );
        (Plan::of(&s), s)
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn close(a: Duration, b: f64) -> bool {
        (a.as_secs_f64() - b).abs() < 1e-6
    }

    #[test]
    fn items_are_each_peers_warmup_then_its_batches() {
        let (plan, s) = two_backends();
        let eta = Eta::new(&plan, &s);
        let got: Vec<(usize, Option<usize>, u32)> = eta
            .items()
            .iter()
            .map(|i| (i.peer, i.step, i.instances))
            .collect();
        assert_eq!(
            got,
            [
                (0, None, 1),
                (0, Some(0), 1),
                (0, Some(1), 10),
                (1, None, 1),
                (1, Some(0), 1),
                (1, Some(1), 10)
            ]
        );
        assert_eq!(eta.first_of(1), 3);
        assert_eq!(eta.index(1, Some(1)), Some(5));
    }

    #[test]
    fn before_any_batch_the_eta_is_the_priors() {
        let (plan, s) = two_backends();
        let eta = Eta::new(&plan, &s);
        // process: warmup 1 x 0.01; batches 2 + 1 x 0.01 and 2 + 10 x 0.01 (idle window 2 s).
        // vm: warmup 5; batches 2 + 5 and 2 + 50.
        let want = 0.01 + 2.01 + 2.1 + 5.0 + 7.0 + 52.0;
        assert!(
            close(eta.remaining(0, None), want),
            "{:?}",
            eta.remaining(0, None)
        );
    }

    #[test]
    fn a_finished_batch_replaces_the_priors_of_its_peer_and_kind() {
        let (plan, s) = two_backends();
        let mut eta = Eta::new(&plan, &s);
        // The vm's N = 1 batch: 3 s of launch and teardown, 2.5 s of the rest.
        eta.observe(4, 1, secs(3.0), secs(2.5));
        assert!(close(eta.estimate(5), 2.5 + 10.0 * 3.0));
        // Its warmup (not yet run) learns the rate too, with no fixed part.
        assert!(close(eta.estimate(3), 3.0));
        // The process peer keeps its priors.
        assert!(close(eta.estimate(2), 2.0 + 10.0 * 0.01));
        // What is left of the N = 10 batch after 20 s of it, and nothing below zero.
        assert!(close(eta.remaining(5, Some((5, secs(20.0)))), 12.5));
        assert_eq!(eta.remaining(5, Some((5, secs(99.0)))), Duration::ZERO);
    }

    #[test]
    fn parallelism_divides_the_prior_rate() {
        let s = scenario(
            "name = \"t\"\nbackends = [\"vm\"]\ncounts = [4]\nwarmup = 0\nparallelism = 2\n[measure]\nmemory = true\nidle_window_s = 0\n",
        );
        let eta = Eta::new(&Plan::of(&s), &s);
        // Two settles of 3 s (with a cache drop), 4 boots of 5 s two at a time.
        assert!(close(eta.estimate(0), 6.0 + 4.0 * 2.5));
    }

    #[test]
    fn phases_split_a_batch_into_per_instance_and_fixed_time() {
        let (plan, s) = two_backends();
        let t0 = Instant::now();
        let at = |s: f64| t0 + secs(s);
        let mut t = Tracker::new(&plan, &s, t0);
        t.peer(1, at(0.0));
        assert_eq!(t.phase(), Phase::Prepare);
        // Everything of the process peer is behind: only the vm's items are left.
        assert!(close(t.remaining(at(0.0)), 5.0 + 7.0 + 52.0));
        t.warmup(at(10.0));
        t.launched();
        t.batch(0, "N=1 rep 0".into(), at(14.0));
        assert_eq!(t.phase(), Phase::Settle);
        t.set_phase(Phase::Launch, at(15.0));
        t.launched();
        t.set_phase(Phase::Measure, at(18.0));
        t.set_phase(Phase::Idle, at(18.5));
        t.set_phase(Phase::Teardown, at(20.5));
        t.done(at(21.5));
        // The N = 1 batch: 3 s launching + 1 s tearing down; 1 + 0.5 + 2 s the rest. The
        // warmup's 4 s joined the per-instance time: 8 s over 2 instances.
        let eta = t.eta();
        assert!(
            close(eta.estimate(5), 3.5 + 10.0 * 4.0),
            "{:?}",
            eta.estimate(5)
        );
        assert!(close(t.remaining(at(21.5)), 43.5));
    }

    #[test]
    fn the_line_names_batch_peer_phase_launches_and_eta() {
        let (plan, s) = two_backends();
        let t0 = Instant::now();
        let mut t = Tracker::new(&plan, &s, t0);
        t.peer(0, t0);
        assert!(
            t.line(t0).starts_with("process · prepare · ETA ~"),
            "{}",
            t.line(t0)
        );
        t.warmup(t0);
        assert!(
            t.line(t0).starts_with("process · warmup 0/1 · "),
            "{}",
            t.line(t0)
        );
        t.batch(1, "N=10 rep 0".into(), t0);
        t.set_phase(Phase::Launch, t0);
        for _ in 0..3 {
            t.launched();
        }
        let line = t.line(t0);
        assert!(
            line.starts_with("batch 2/4 · process N=10 rep 0 · launch 3/10 · ETA ~"),
            "{line}"
        );
        t.set_phase(Phase::Idle, t0);
        assert!(t.line(t0).contains(" · idle · "), "{}", t.line(t0));
    }

    #[test]
    fn a_hidden_display_takes_every_call_and_prints_nothing() {
        let p = Progress::hidden();
        p.peer(0);
        p.warmup();
        p.phase(Phase::Launch);
        p.launched();
        p.println("not shown");
        p.finish();
        assert!(p.tracker.is_none() && p.bar.is_none());
    }
}
