//! SIGINT, SIGTERM and SIGHUP during a run: the first one stops launching and lets the run
//! tear down and keep every sample (exit 130); every later one is noted on stderr and
//! otherwise ignored, so that teardown always finishes and nothing of the run is left.
//! `timeout 3 isobench run` signals twice (the child, then its process group), and an
//! impatient Ctrl-C is pressed twice: neither may cut teardown short.
//!
//! A thread reads the signals (signal_hook's iterator, a self-pipe) so that it can print;
//! a handler could only set a flag.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Installs the handling described above; `cancel` is set by the first signal.
pub fn install(cancel: Arc<AtomicBool>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("isobench-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = nix::sys::signal::Signal::try_from(sig)
                    .map(|s| s.as_str())
                    .unwrap_or("a signal");
                if cancel.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "isobench: {name} again: still tearing down; the run ends once nothing of it is left"
                    );
                } else {
                    eprintln!(
                        "isobench: {name}: no more launches; tearing down and keeping the samples measured so far"
                    );
                }
            }
        })?;
    Ok(())
}
