//! The scenario file as serde reads it: structs that mirror the TOML and reject unknown keys
//! and wrong types (with line numbers from the toml crate). Ranges and cross-field rules are
//! validate.rs's.

use serde::Deserialize;
use std::fmt;

/// Integers are read as i64 and range-checked afterwards, so a negative number gets the same
/// "out of range; allowed ..." message as a too-large one instead of a serde type error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a scenario table")]
pub(super) struct RawScenario {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) image: Option<String>,
    pub(super) workload: Option<RawWorkload>,
    pub(super) backends: Vec<String>,
    pub(super) counts: Vec<Int>,
    pub(super) parallelism: Option<Int>,
    pub(super) repetitions: Option<Int>,
    pub(super) warmup: Option<Int>,
    pub(super) ready_timeout_s: Option<Num>,
    pub(super) limits: Option<RawLimits>,
    pub(super) namespaces: Option<RawNamespaces>,
    pub(super) security: Option<toml::Value>,
    pub(super) vm: Option<RawVm>,
    pub(super) oci: Option<RawOci>,
    pub(super) measure: Option<RawMeasure>,
    pub(super) until: Option<RawUntil>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys runtimes, runsc_platform"
)]
pub(super) struct RawOci {
    pub(super) runtimes: Option<Vec<String>>,
    pub(super) runsc_platform: Option<String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys memory, drop_caches, idle_window_s, idle_adaptive, ksm, ksm_timeout_s, settle_timeout_s"
)]
pub(super) struct RawMeasure {
    pub(super) memory: Option<bool>,
    pub(super) drop_caches: Option<bool>,
    pub(super) idle_window_s: Option<Num>,
    pub(super) idle_adaptive: Option<bool>,
    pub(super) ksm: Option<bool>,
    pub(super) ksm_timeout_s: Option<Num>,
    pub(super) settle_timeout_s: Option<Num>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with keys step, max, mem_available_floor_mib"
)]
pub(super) struct RawUntil {
    pub(super) step: Int,
    pub(super) max: Int,
    pub(super) mem_available_floor_mib: Int,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys kernel, initrd, accel, machine, memory_mib, vcpus, probe_timeout_s, counts"
)]
pub(super) struct RawVm {
    pub(super) kernel: Option<String>,
    pub(super) initrd: Option<String>,
    pub(super) accel: Option<String>,
    pub(super) machine: Option<String>,
    pub(super) memory_mib: Option<Int>,
    pub(super) vcpus: Option<Int>,
    pub(super) probe_timeout_s: Option<Num>,
    pub(super) counts: Option<Vec<Int>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional keys memory_mib, cpus, pids"
)]
pub(super) struct RawLimits {
    pub(super) memory_mib: Option<Int>,
    pub(super) cpus: Option<Num>,
    pub(super) pids: Option<Int>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with optional boolean keys pid, mount, uts, ipc, net, cgroup"
)]
pub(super) struct RawNamespaces {
    pub(super) pid: Option<bool>,
    pub(super) mount: Option<bool>,
    pub(super) uts: Option<bool>,
    pub(super) ipc: Option<bool>,
    pub(super) net: Option<bool>,
    pub(super) cgroup: Option<bool>,
}

/// An integer whose type errors say "expected an integer" rather than serde's "expected i64".
#[derive(Clone, Copy)]
pub(super) struct Int(pub(super) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                // Beyond i64 is out of every range anyway; saturate so the range check reports it.
                Ok(Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_i64(V)
    }
}

/// A number where integers are accepted too (`ready_timeout_s = 30`, `cpus = 2`).
#[derive(Clone, Copy)]
pub(super) struct Num(pub(super) f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
        }
        d.deserialize_f64(V)
    }
}

/// `"idle"`, `{ touch-memory = MiB }` or `{ write-file = MiB }`. Hand-written rather than an
/// untagged enum so that a mistake gets a precise message (and a line number) instead of
/// "data did not match any variant".
pub(super) enum RawWorkload {
    Idle,
    Probe,
    Syscalls(Option<i64>),
    TouchMemory(i64),
    WriteFile(i64),
    Fork(i64),
}

pub(super) const WORKLOAD_EXPECTED: &str = "\"idle\", \"probe\", \"syscalls\", { syscalls = BUDGET_MS }, { touch-memory = MiB }, { write-file = MiB } or { fork = COUNT }";
pub(super) const WORKLOAD_KEYS: &[&str] = &["touch-memory", "write-file", "fork", "syscalls"];

impl<'de> Deserialize<'de> for RawWorkload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};

        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawWorkload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(WORKLOAD_EXPECTED)
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<RawWorkload, E> {
                match v {
                    "idle" => Ok(RawWorkload::Idle),
                    "probe" => Ok(RawWorkload::Probe),
                    "syscalls" => Ok(RawWorkload::Syscalls(None)),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawWorkload, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(format!(
                        "empty workload table; expected {WORKLOAD_EXPECTED}"
                    )));
                };
                let workload = match key.as_str() {
                    "touch-memory" => RawWorkload::TouchMemory(map.next_value::<Int>()?.0),
                    "write-file" => RawWorkload::WriteFile(map.next_value::<Int>()?.0),
                    "fork" => RawWorkload::Fork(map.next_value::<Int>()?.0),
                    "syscalls" => RawWorkload::Syscalls(Some(map.next_value::<Int>()?.0)),
                    _ => return Err(A::Error::unknown_field(&key, WORKLOAD_KEYS)),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(format!(
                        "a workload table holds exactly one key; expected {WORKLOAD_EXPECTED}"
                    )));
                }
                Ok(workload)
            }
        }
        d.deserialize_any(V)
    }
}
