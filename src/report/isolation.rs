//! What each backend's instances were verified to run with (the isolation read-back columns of
//! samples.csv), and what their system calls cost (syscalls.csv): the tables the end of a run
//! and the report show for the security profiles.

use crate::results::record::{Sample, SyscallRow};
use crate::scenario::BackendKind;
use serde::Serialize;

/// One backend's verified isolation: the values its rows with a read-back showed (one value
/// when they all agree, else every distinct value joined with ` | `, so a difference is never
/// hidden). Rows whose workload failed count too: the read-back does not depend on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IsolationRow {
    pub backend: String,
    pub security: String,
    /// Capability names in CapEff, or their count when many.
    pub capabilities: String,
    pub cap_bnd: String,
    pub inheritable_ambient: String,
    pub no_new_privs: String,
    pub seccomp: String,
    pub ns_private: String,
    pub devices: String,
    pub instances: usize,
}

/// The distinct values of `f` over `rows`, in first-seen order, joined with ` | `.
fn distinct(rows: &[&Sample], f: impl Fn(&Sample) -> String) -> String {
    let mut seen: Vec<String> = Vec::new();
    for r in rows {
        let v = f(r);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(" | ")
}

/// Capability names of a /proc status mask, or `N capabilities` when more than four.
fn cap_names(hex: &str) -> String {
    let Ok(mask) = u64::from_str_radix(hex, 16) else {
        return hex.to_string();
    };
    let caps = crate::security::caps_in(mask);
    match caps.len() {
        0 => "none".into(),
        1..=4 => caps
            .iter()
            .map(|c| c.name().trim_start_matches("CAP_").to_lowercase())
            .collect::<Vec<_>>()
            .join(","),
        n => format!("{n} capabilities"),
    }
}

/// One row per backend that has read-back values, in the order backends first appear.
pub fn isolation_rows(samples: &[Sample]) -> Vec<IsolationRow> {
    let mut backends: Vec<&str> = Vec::new();
    for s in samples {
        if !s.cap_eff.is_empty() && !backends.contains(&s.backend.as_str()) {
            backends.push(&s.backend);
        }
    }
    backends
        .into_iter()
        .map(|b| {
            let rows: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.backend == b && !s.cap_eff.is_empty())
                .collect();
            IsolationRow {
                backend: b.to_string(),
                security: distinct(&rows, |s| {
                    if s.security.is_empty() {
                        "-".into()
                    } else {
                        s.security.clone()
                    }
                }),
                capabilities: distinct(&rows, |s| cap_names(&s.cap_eff)),
                cap_bnd: distinct(&rows, |s| cap_names(&s.cap_bnd)),
                inheritable_ambient: distinct(&rows, |s| {
                    format!("{}/{}", cap_names(&s.cap_inh), cap_names(&s.cap_amb))
                }),
                no_new_privs: distinct(&rows, |s| match s.no_new_privs {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                }),
                seccomp: distinct(&rows, |s| match (s.seccomp.as_str(), s.seccomp_filters) {
                    ("filter", Some(n)) => format!("filter ({n})"),
                    (m, _) => m.to_string(),
                }),
                ns_private: distinct(&rows, |s| {
                    if s.ns_private.is_empty() {
                        "none (host's)".into()
                    } else {
                        s.ns_private.clone()
                    }
                }),
                devices: distinct(&rows, |s| device_summary(&s.devices)),
                instances: rows.len(),
            }
        })
        .collect()
}

/// `all`, `8 rules` (v1 devices.list), or the v2 description as read back.
fn device_summary(devices: &str) -> String {
    if devices.is_empty() || devices == "all" || devices.starts_with("ebpf") || devices == "none" {
        return if devices.is_empty() {
            "-".into()
        } else {
            devices.to_string()
        };
    }
    let n = devices.split("; ").count();
    format!("{n} rules")
}

/// The median cost of one operation for one backend and N, with its ratio to `process` at the
/// same N when the run measured it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyscallSummary {
    pub backend: String,
    pub accel: String,
    pub n: u32,
    pub op: String,
    pub instances: usize,
    pub ns_per_op_p50: f64,
    pub ratio_to_process: Option<f64>,
}

/// Medians per (backend, accel, N, op), in the order rows first appear; operations in
/// agent::syscalls::OPS order.
pub fn syscall_summary(rows: &[SyscallRow]) -> Vec<SyscallSummary> {
    let mut keys: Vec<(String, String, u32)> = Vec::new();
    for r in rows {
        let k = (r.backend.clone(), r.accel.clone(), r.n);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let median = |b: &str, a: Option<&str>, n: u32, op: &str| -> (usize, Option<f64>) {
        let xs: Vec<f64> = rows
            .iter()
            .filter(|r| r.backend == b && a.is_none_or(|a| r.accel == a) && r.n == n && r.op == op)
            .map(|r| r.ns_per_op)
            .collect();
        (xs.len(), crate::stats::median(&xs))
    };
    let mut out = Vec::new();
    for (b, a, n) in &keys {
        for op in crate::agent::syscalls::OPS {
            let (count, Some(p50)) = median(b, Some(a), *n, op) else {
                continue;
            };
            let base = median("process", None, *n, op).1;
            out.push(SyscallSummary {
                backend: b.clone(),
                accel: a.clone(),
                n: *n,
                op: op.to_string(),
                instances: count,
                ns_per_op_p50: p50,
                ratio_to_process: base.filter(|b| *b > 0.0).map(|b| p50 / b),
            });
        }
    }
    out
}

/// The isolation table as aligned text.
pub fn render_isolation(rows: &[IsolationRow]) -> String {
    let header = [
        "backend",
        "profile",
        "CapEff",
        "CapBnd",
        "CapInh/CapAmb",
        "no_new_privs",
        "seccomp (filters)",
        "own namespaces",
        "devices",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.backend.clone(),
                r.security.clone(),
                r.capabilities.clone(),
                r.cap_bnd.clone(),
                r.inheritable_ambient.clone(),
                r.no_new_privs.clone(),
                r.seccomp.clone(),
                r.ns_private.clone(),
                r.devices.clone(),
            ]
        })
        .collect();
    crate::text::table::render(&header, &[false; 9], &cells)
}

/// The system-call costs as aligned text: one line per backend, accel and N, one column per
/// operation (`ns (ratio to process)`); TCG rows are marked emulated.
pub fn render_syscalls(rows: &[SyscallSummary]) -> String {
    let ops: Vec<&str> = crate::agent::syscalls::OPS
        .iter()
        .copied()
        .filter(|op| rows.iter().any(|r| r.op == *op))
        .collect();
    let mut header: Vec<String> = vec!["backend".into(), "accel".into(), "N".into()];
    header.extend(ops.iter().map(|op| format!("{op} (ns)")));
    let mut keys: Vec<(&str, &str, u32)> = Vec::new();
    for r in rows {
        let k = (r.backend.as_str(), r.accel.as_str(), r.n);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let cells: Vec<Vec<String>> = keys
        .iter()
        .map(|(b, a, n)| {
            let accel = if *a == "tcg" {
                "tcg (emulated)".to_string()
            } else {
                a.to_string()
            };
            let mut line = vec![b.to_string(), accel, n.to_string()];
            for op in &ops {
                let cell = rows
                    .iter()
                    .find(|r| r.backend == *b && r.accel == *a && r.n == *n && r.op == *op)
                    .map(|r| match r.ratio_to_process {
                        Some(x)
                            if BackendKind::of_label(&r.backend) != Some(BackendKind::Process) =>
                        {
                            format!(
                                "{} ({}x)",
                                crate::text::format::sig(r.ns_per_op_p50),
                                crate::text::format::sig(x)
                            )
                        }
                        _ => crate::text::format::sig(r.ns_per_op_p50),
                    })
                    .unwrap_or_else(|| "-".into());
                line.push(cell);
            }
            line
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut right = vec![false, false, true];
    right.extend(ops.iter().map(|_| true));
    crate::text::table::render(&header, &right, &cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(backend: &str, op: &str, ns: f64) -> SyscallRow {
        SyscallRow {
            backend: backend.into(),
            accel: "none".into(),
            n: 1,
            op: op.into(),
            ns_per_op: ns,
            ops: 100,
            ..SyscallRow::default()
        }
    }

    #[test]
    fn syscall_ratios_are_to_process_at_the_same_n() {
        let rows = vec![
            row("process", "getppid", 100.0),
            row("process", "getppid", 120.0),
            row("container", "getppid", 330.0),
        ];
        let s = syscall_summary(&rows);
        let c = s.iter().find(|r| r.backend == "container").unwrap();
        assert_eq!(c.ns_per_op_p50, 330.0);
        assert_eq!(c.ratio_to_process, Some(3.0));
        let text = render_syscalls(&s);
        assert!(
            text.contains("330 (3x)") || text.contains("330 (3.00x)"),
            "{text}"
        );
    }

    #[test]
    fn differing_read_backs_are_all_shown() {
        let mk = |eff: &str| Sample {
            backend: "container".into(),
            security: "docker".into(),
            cap_eff: eff.into(),
            cap_bnd: eff.into(),
            cap_inh: "0000000000000000".into(),
            cap_amb: "0000000000000000".into(),
            ..Sample::default()
        };
        let rows = isolation_rows(&[mk("00000000a80425fb"), mk("0000000020000420")]);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].capabilities,
            "14 capabilities | kill,net_bind_service,audit_write"
        );
        assert_eq!(rows[0].inheritable_ambient, "none/none");
    }
}
