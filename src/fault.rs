//! Fault injection for tests: `ISOBENCH_FAULT=<boundary>[:<k>]` makes `isobench run` stop dead
//! (SIGKILL to itself, as the OOM killer or `kill -9` would) the k-th time, counting from 0, it
//! passes the named phase boundary. Tests walk every boundary and check that `isobench clean`
//! leaves nothing of the killed run behind.
//!
//! Read and validated once, before the run creates anything ([`init`]); unset, a boundary costs
//! one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable that arms a fault.
pub const FAULT_ENV: &str = "ISOBENCH_FAULT";

/// A phase boundary the harness can be stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    StateDir,
    Prepared,
    Boot,
    Launched,
    Measure,
    Teardown,
    Finish,
}

/// Every boundary: its name in [`FAULT_ENV`] and where it is.
pub const BOUNDARIES: &[(Boundary, &str, &str)] = &[
    (
        Boundary::StateDir,
        "state-dir",
        "the run's state dir and owner file were written",
    ),
    (
        Boundary::Prepared,
        "prepared",
        "a backend was prepared (image layers, cgroups, an OCI or KVM probe), before its launches",
    ),
    (
        Boundary::Boot,
        "boot",
        "an instance's first process was spawned (QEMU, a runtime, the agent), before it is ready",
    ),
    (
        Boundary::Launched,
        "launch",
        "an instance of a batch was launched and ready",
    ),
    (
        Boundary::Measure,
        "measure",
        "a batch's memory views were read, with KSM still on if the scenario merges",
    ),
    (
        Boundary::Teardown,
        "teardown",
        "an instance of a batch was torn down, the others still alive",
    ),
    (
        Boundary::Finish,
        "finish",
        "every backend finished, before the run removes its state dir and cgroups",
    ),
];

#[derive(Debug, thiserror::Error)]
#[error(
    "{FAULT_ENV}={value:?}: {why}; allowed: <boundary>[:<k>], boundary one of {}, k = 0, 1, ... (the k-th time it is passed, default 0)",
    names()
)]
pub struct FaultError {
    value: String,
    why: String,
}

fn names() -> String {
    BOUNDARIES
        .iter()
        .map(|(_, n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

struct Armed {
    at: Boundary,
    k: u32,
    passed: AtomicU32,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

/// Parses a [`FAULT_ENV`] value: `<boundary>[:<k>]`.
pub fn parse(value: &str) -> Result<(Boundary, u32), FaultError> {
    let err = |why: String| FaultError {
        value: value.to_string(),
        why,
    };
    let (name, k) = match value.split_once(':') {
        Some((n, k)) => (
            n,
            k.parse::<u32>()
                .map_err(|_| err(format!("k = {k:?} is not a whole number")))?,
        ),
        None => (value, 0),
    };
    let at = BOUNDARIES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(b, _, _)| *b)
        .ok_or_else(|| err(format!("unknown boundary {name:?}")))?;
    Ok((at, k))
}

/// Reads [`FAULT_ENV`] once; later calls return the first outcome. Unset or empty: no fault.
pub fn init() -> Result<(), FaultError> {
    let value = std::env::var_os(FAULT_ENV).map(|v| v.to_string_lossy().into_owned());
    let armed = match value.as_deref() {
        None | Some("") => None,
        Some(v) => {
            let (at, k) = parse(v)?;
            Some(Armed {
                at,
                k,
                passed: AtomicU32::new(0),
            })
        }
    };
    let _ = ARMED.set(armed);
    Ok(())
}

/// Marks that the harness passes `at`; stops the process dead if this is the armed fault.
#[inline]
pub fn point(at: Boundary) {
    if let Some(Some(a)) = ARMED.get()
        && a.at == at
        && a.passed.fetch_add(1, Ordering::SeqCst) == a.k
    {
        stop_dead();
    }
}

fn stop_dead() -> ! {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    // SIGKILL cannot be caught: the process is gone before raise returns.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_bad_ones_name_the_variable_and_what_is_allowed() {
        assert_eq!(parse("boot").unwrap(), (Boundary::Boot, 0));
        assert_eq!(parse("launch:3").unwrap(), (Boundary::Launched, 3));
        for (b, n, _) in BOUNDARIES {
            assert_eq!(parse(n).unwrap().0, *b);
        }
        for bad in [
            "nope", "boot:", "boot:-1", "boot:x", ":1", "Boot", "boot:1:2",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{FAULT_ENV}={bad:?}: ")), "{e}");
            assert!(e.contains("state-dir, prepared, boot, launch"), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }
}
