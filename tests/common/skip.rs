//! The test suite's one skip rule: a test that cannot run here (no root, no QEMU, no runtime,
//! no cgroup controller) FAILS, saying why, unless `ISOBENCH_ALLOW_SKIP=1`; then it says why
//! and returns early. A skip is never a pass, and CI never sets the variable.
//!
//! Self-contained (std and nix only), so every test can include it: integration tests through
//! `tests/common` or `#[path = "common/skip.rs"] mod skip;`, the library's unit tests as
//! `crate::skip` (src/lib.rs includes this file under `#[cfg(test)]`).
//!
//! Each function returns true when the test must return now (skipping is allowed and it
//! cannot run), false when it can run; it panics when it cannot run and skipping is not
//! allowed:
//!
//! ```ignore
//! if skip::unless_root() || skip::unless_on_path(&["runc"]) {
//!     return;
//! }
//! ```
#![allow(dead_code)]

/// The variable that lets a test that cannot run skip instead of failing.
pub const ALLOW_SKIP_ENV: &str = "ISOBENCH_ALLOW_SKIP";

/// Whether `ISOBENCH_ALLOW_SKIP=1` is set.
pub fn allowed() -> bool {
    std::env::var_os(ALLOW_SKIP_ENV).is_some_and(|v| v == "1")
}

/// The test cannot run, for `why`: fails it, or (skipping allowed) says so and returns true.
pub fn because(why: &str) -> bool {
    assert!(
        allowed(),
        "cannot run: {why}; set {ALLOW_SKIP_ENV}=1 to skip instead (a skip is never a pass)"
    );
    eprintln!("skipped: {why} ({ALLOW_SKIP_ENV}=1)");
    true
}

/// [`because`] when `cannot` holds; false (the test runs) otherwise.
pub fn when(cannot: bool, why: &str) -> bool {
    cannot && because(why)
}

/// The test needs root (namespaces, mounts, cgroups, other users' processes).
pub fn unless_root() -> bool {
    when(
        !nix::unistd::geteuid().is_root(),
        "needs root (namespaces, mounts, cgroups)",
    )
}

/// The test needs every command of `cmds` on PATH (scripts/setup.sh installs them).
pub fn unless_on_path(cmds: &[&str]) -> bool {
    let missing: Vec<&str> = cmds.iter().copied().filter(|c| !on_path(c)).collect();
    when(
        !missing.is_empty(),
        &format!(
            "needs {} on PATH (scripts/setup.sh installs it)",
            missing.join(", ")
        ),
    )
}

/// Whether `cmd` is an executable file in a directory of PATH.
fn on_path(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(cmd))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}
