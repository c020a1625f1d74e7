//! Finding the host's commands.

use std::path::PathBuf;

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or(None)
}

/// How a command with a time limit ended.
pub enum Limited {
    /// It ended; its output (stdout and stderr as the caller piped them).
    Done(std::process::Output),
    /// It could not be waited for.
    WaitFailed(std::io::Error),
    /// It had not ended within the limit: its process group was sent SIGKILL, and a thread
    /// left behind reaps it.
    TimedOut,
}

/// Runs `cmd`, which the caller put in a process group of its own (`process_group(0)`), and
/// waits for it at most `limit`. Err when it cannot be spawned.
pub fn output_within(
    mut cmd: std::process::Command,
    limit: std::time::Duration,
) -> std::io::Result<Limited> {
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Ok(match rx.recv_timeout(limit) {
        Ok(Ok(out)) => Limited::Done(out),
        Ok(Err(e)) => Limited::WaitFailed(e),
        Err(_) => {
            // Its own process group: the command and nothing else.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            Limited::TimedOut
        }
    })
}
