//! The harness side of the agent protocol: reads the agent's lines from a pipe with a deadline
//! and a cancel flag, so a hung instance or a Ctrl-C never blocks the run.

use super::{DONE_LINE, ERROR_PREFIX, Facts, PROBE_PREFIX, READY_LINE, SYSCALLS_PREFIX};
use crate::deadline::Deadline;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a wait wakes up to look at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);
/// Last lines of unexpected output kept for error messages (an exec error, a panic).
const KEEP_LINES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The whole wait ran out: `deadline` says how long it was and which key set it.
    #[error("agent not `{expected}` {}{}", .deadline.after(), output_suffix(.output))]
    Timeout {
        expected: &'static str,
        deadline: Deadline,
        output: Vec<String>,
    },
    #[error("agent output ended before `{expected}`{}", output_suffix(.output))]
    Eof {
        expected: &'static str,
        output: Vec<String>,
    },
    #[error("interrupted")]
    Cancelled,
    /// The agent said its workload could not do its work (`error: ...`).
    #[error("{0}")]
    Workload(String),
    #[error("agent facts line is not valid: {0}")]
    BadFacts(String),
    #[error("reading agent output: {0}")]
    Io(#[from] std::io::Error),
}

impl AgentError {
    /// The last lines the instance printed besides the protocol (a runtime's or QEMU's own
    /// error lines), kept with a timeout or an early end of output.
    pub fn output(&self) -> &[String] {
        match self {
            AgentError::Timeout { output, .. } | AgentError::Eof { output, .. } => output,
            _ => &[],
        }
    }
}

/// The last lines of the instance's output, each named by who said it: QEMU writes its own
/// errors to the pipe that carries a guest's console, and those must not read as the agent's.
fn output_suffix(output: &[String]) -> String {
    if output.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = output
        .iter()
        .map(|l| {
            if l.starts_with("qemu-system-") || l.starts_with("qemu-img:") {
                format!("QEMU said: {l}")
            } else {
                format!("instance said: {l}")
            }
        })
        .collect();
    format!(" ({})", lines.join(" | "))
}

/// What a workload reported before `done`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadReport {
    /// The `probe` workload's outcomes, as the JSON object the agent printed.
    pub probe: Option<String>,
    /// The `syscalls` workload's costs by operation.
    pub syscalls: Option<std::collections::BTreeMap<String, super::syscalls::OpCost>>,
}

/// Reads the agent's stdout (and stderr, which backends point at the same pipe).
pub struct AgentReader {
    file: std::fs::File,
    buf: Vec<u8>,
    other: Vec<String>,
    first_byte: Option<Instant>,
    /// When the last read returned bytes: the arrival of the line that read completed.
    last_read: Option<Instant>,
}

/// The agent is ready: when its `ready` line reached the harness (the end of start-up), and
/// the facts it sent after it.
#[derive(Debug)]
pub struct Ready {
    pub at: Instant,
    pub facts: Facts,
}

impl AgentReader {
    pub fn new(fd: OwnedFd) -> AgentReader {
        AgentReader {
            // Held while the instance lives: out of the way of the next launch's copy of the
            // descriptor table (host::fd).
            file: std::fs::File::from(crate::host::fd::park(fd)),
            buf: Vec::with_capacity(512),
            other: Vec::new(),
            first_byte: None,
            last_read: None,
        }
    }

    /// When the first byte of output arrived (for a VM: the kernel is running).
    pub fn first_byte(&self) -> Option<Instant> {
        self.first_byte
    }

    /// Waits for `ready` and the facts line. The agent writes `ready` first and reads its
    /// facts after (they are the agent's own measurement, not the instance's start-up), so
    /// start-up ends at [`Ready::at`], when the `ready` line arrived, not when this returns.
    pub fn wait_ready(
        &mut self,
        deadline: Deadline,
        cancel: &AtomicBool,
    ) -> Result<Ready, AgentError> {
        let (mut facts, mut at) = (None, None);
        loop {
            let (line, arrived) = self.next_line(READY_LINE, deadline, cancel)?;
            if line == READY_LINE {
                at = Some(arrived);
            } else if line.starts_with('{') {
                facts = Some(
                    serde_json::from_str::<Facts>(&line)
                        .map_err(|e| AgentError::BadFacts(format!("{e}: {line}")))?,
                );
            } else {
                self.keep(line);
            }
            if let (Some(at), Some(_)) = (at, &facts) {
                let facts = facts.take().expect("checked just above");
                return Ok(Ready { at, facts });
            }
        }
    }

    /// Waits for `done`: the workload has finished its work (allocated, written) and idles.
    /// Returns what the workload reported on the way.
    pub fn wait_done(
        &mut self,
        deadline: Deadline,
        cancel: &AtomicBool,
    ) -> Result<WorkloadReport, AgentError> {
        let mut report = WorkloadReport::default();
        loop {
            let (line, _) = self.next_line(DONE_LINE, deadline, cancel)?;
            if line == DONE_LINE {
                return Ok(report);
            }
            if let Some(why) = line.strip_prefix(ERROR_PREFIX) {
                return Err(AgentError::Workload(why.to_string()));
            }
            if let Some(json) = line.strip_prefix(PROBE_PREFIX) {
                report.probe = Some(json.to_string());
            } else if let Some(json) = line.strip_prefix(SYSCALLS_PREFIX) {
                report.syscalls =
                    Some(serde_json::from_str(json).map_err(|e| {
                        AgentError::BadFacts(format!("syscalls line: {e}: {json}"))
                    })?);
            } else {
                self.keep(line);
            }
        }
    }

    /// Keeps the last lines of unexpected output: where a boot or an exec fails, the end
    /// of the output says why.
    fn keep(&mut self, line: String) {
        if line.trim().is_empty() {
            return;
        }
        if self.other.len() == KEEP_LINES {
            self.other.remove(0);
        }
        self.other.push(line);
    }

    /// The next line and when it arrived (the read that brought its newline).
    fn next_line(
        &mut self,
        expected: &'static str,
        deadline: Deadline,
        cancel: &AtomicBool,
    ) -> Result<(String, Instant), AgentError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line[..pos]).trim_end().to_string();
                return Ok((text, self.last_read.unwrap_or_else(Instant::now)));
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(AgentError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline.at {
                return Err(AgentError::Timeout {
                    expected,
                    deadline,
                    output: std::mem::take(&mut self.other),
                });
            }
            let wait = (deadline.at - now).min(CANCEL_POLL);
            let timeout =
                PollTimeout::try_from(wait.as_millis() as u32 + 1).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(AgentError::Io(e.into())),
            }
            let mut chunk = [0u8; 512];
            match self.file.read(&mut chunk) {
                Ok(0) => {
                    if !self.buf.is_empty() {
                        let rest = String::from_utf8_lossy(&self.buf).trim_end().to_string();
                        self.buf.clear();
                        self.keep(rest);
                    }
                    return Err(AgentError::Eof {
                        expected,
                        output: std::mem::take(&mut self.other),
                    });
                }
                Ok(k) => {
                    let now = Instant::now();
                    self.first_byte.get_or_insert(now);
                    self.last_read = Some(now);
                    self.buf.extend_from_slice(&chunk[..k]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(AgentError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_lines_are_labelled_as_qemu_s() {
        let s = output_suffix(&[
            "qemu-system-x86_64: error: failed to set MSR 0x38d".into(),
            "Kernel panic".into(),
        ]);
        assert_eq!(
            s,
            " (QEMU said: qemu-system-x86_64: error: failed to set MSR 0x38d | instance said: Kernel panic)"
        );
        assert_eq!(output_suffix(&[]), "");
    }
}
