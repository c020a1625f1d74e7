// Records the git revision for meta.json and the report, so every run and every report names
// the code that made it: `git describe --always --dirty --abbrev=12`, e.g. `b594373a1c2e` or
// `b594373a1c2e-dirty` when the tree had uncommitted changes at build time.
use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let rev = git(&["describe", "--always", "--dirty", "--abbrev=12"])
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ISOBENCH_GIT_REVISION={rev}");
    // Rerun when the revision or the dirty flag can have changed: a commit or checkout (HEAD,
    // the branch's ref, the index; in a worktree `.git` is a file, so ask git where they
    // are) or an edit of a tracked source file.
    for what in ["HEAD", "index"] {
        if let Some(p) = git(&["rev-parse", "--git-path", what]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &r])
    {
        println!("cargo:rerun-if-changed={p}");
    }
    for p in [
        "src",
        "tests",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "scripts",
        "scenarios",
    ] {
        if PathBuf::from(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
