//! A wait's deadline together with what set it, so that every timeout error says what was
//! awaited and for how long in total ("agent not `ready` after 30.0 s (ready_timeout_s)"),
//! not how long the last poll took.

use std::time::{Duration, Instant};

/// How long a wait may last, and the scenario key or constant that says so.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub limit: Duration,
    pub key: &'static str,
}

impl Limit {
    pub fn new(limit: Duration, key: &'static str) -> Limit {
        Limit { limit, key }
    }

    /// The deadline of a wait that started at `start`.
    pub fn from(self, start: Instant) -> Deadline {
        Deadline::starting(start, self.limit, self.key)
    }

    /// The deadline of a wait that starts now.
    pub fn from_now(self) -> Deadline {
        self.from(Instant::now())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When the wait gives up.
    pub at: Instant,
    /// The whole allowance, from the start of what is awaited (not from the last poll).
    pub limit: Duration,
    /// The scenario key or the constant that sets `limit` (`ready_timeout_s`,
    /// `vm.probe_timeout_s`), named in the error.
    pub key: &'static str,
}

impl Deadline {
    /// A deadline `limit` after `start`.
    pub fn starting(start: Instant, limit: Duration, key: &'static str) -> Deadline {
        Deadline {
            at: start + limit,
            limit,
            key,
        }
    }

    /// A deadline `limit` from now.
    pub fn from_now(limit: Duration, key: &'static str) -> Deadline {
        Deadline::starting(Instant::now(), limit, key)
    }

    /// "after 30.0 s (ready_timeout_s)": the tail of every timeout message.
    pub fn after(&self) -> String {
        format!("after {} ({})", seconds(self.limit), self.key)
    }
}

/// A duration as people read timeouts: seconds with one decimal ("5.0 s", "30.0 s"), or
/// milliseconds below a second ("250.0 ms", "0.1 ms"), so a short limit never reads as 0.
pub fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_whole_limit_and_its_key() {
        let d = Deadline::from_now(Duration::from_millis(30_000), "ready_timeout_s");
        assert_eq!(d.after(), "after 30.0 s (ready_timeout_s)");
        assert!(d.at > Instant::now());
        assert_eq!(seconds(Duration::from_millis(240)), "240.0 ms");
        assert_eq!(seconds(Duration::from_micros(100)), "0.1 ms");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
