//! Tolerances: how much worse NEW may be than BASE, per metric, before it is a regression.
//!
//! Sources, key by key, the first that sets it wins: the flags (`--tolerance-for METRIC=TOL`
//! for one metric, `--tolerance TOL` for every other), then the file (`[metrics] METRIC = TOL`,
//! `default = TOL`), then the metric's own built-in tolerance (its [`Gate`] in the METRICS
//! table: what runs of an unchanged system drift by). So `--tolerance` replaces the file's
//! `default`, not its `[metrics]` entries: each flag overrides the file's key of the same
//! meaning. A tolerance is a ratio (`0.1`) or a percentage (`10%`), anywhere one is given.
//!
//! The metric's floor (an absolute change that is always noise) is not a tolerance and no
//! flag replaces it: see [`Gate::floor`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metric;
use crate::results::metrics::{Gate, Metric};

/// What every tolerance may be, as error messages say it.
const ALLOWED_VALUE: &str = "a number >= 0 or a percentage (0.1 or 10%)";

/// A bad tolerance flag or file, named with what is allowed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ToleranceError {
    #[error("{flag} {value}: {why}")]
    Flag {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("tolerance file {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("tolerance file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("tolerance file {path}: {key}: {why}")]
    Key {
        path: PathBuf,
        key: String,
        why: String,
    },
}

/// Why a tolerance value is not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not {ALLOWED_VALUE}")]
    NotANumber(String),
    #[error("not allowed: a tolerance is {ALLOWED_VALUE}")]
    OutOfRange,
}

/// The resolved tolerances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// For every metric not in `metrics`; `None`: each metric's built-in tolerance.
    pub default: Option<f64>,
    /// Where `default` came from: "--tolerance", the file's path, or "built-in per metric".
    pub default_from: String,
    /// Metric name -> tolerance, for metrics with an entry of their own.
    pub metrics: BTreeMap<String, f64>,
}

/// How `default_from` names the metrics' own tolerances.
pub const BUILT_IN: &str = "built-in per metric";

impl Tolerances {
    /// The relative tolerance of the compared metric `m`.
    pub fn of(&self, m: &Metric) -> f64 {
        self.metrics
            .get(m.name)
            .copied()
            .or(self.default)
            .unwrap_or(gate(m).tolerance)
    }

    /// Resolves the tolerances from the flags and the optional file (see the module docs).
    pub fn resolve(
        flag_default: Option<&str>,
        flag_for: &[String],
        file: Option<&Path>,
    ) -> Result<Tolerances, ToleranceError> {
        let mut flags: BTreeMap<String, f64> = BTreeMap::new();
        for arg in flag_for {
            let (name, tol) = parse_tolerance_for(arg)?;
            // A repeated metric: the last one given wins, as with any repeated flag.
            flags.insert(name, tol);
        }
        let flag_default = flag_default
            .map(|t| {
                parse_value(t).map_err(|why| ToleranceError::Flag {
                    flag: "--tolerance",
                    value: one_line(t),
                    why: why.to_string(),
                })
            })
            .transpose()?;
        let from_file = match file {
            Some(p) => Some(read_file(p)?),
            None => None,
        };
        let (default, default_from) = match (flag_default, &from_file) {
            (Some(t), _) => (Some(t), "--tolerance".to_string()),
            (
                None,
                Some(FileTolerances {
                    default: Some(t), ..
                }),
            ) => (
                Some(*t),
                file.map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            _ => (None, BUILT_IN.to_string()),
        };
        let mut metrics = from_file.map(|f| f.metrics).unwrap_or_default();
        metrics.extend(flags);
        Ok(Tolerances {
            default,
            default_from,
            metrics,
        })
    }
}

/// The built-in gate of a compared metric.
pub fn gate(m: &Metric) -> Gate {
    m.compare
        .unwrap_or_else(|| panic!("{} is not a compared metric", m.name))
}

/// A tolerance as given: a ratio (`0.1`) or a percentage (`10%`, `12.5 %`), finite and >= 0;
/// the reason when it is not one.
pub fn parse_value(text: &str) -> Result<f64, ValueError> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim_end(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| ValueError::NotANumber(one_line(text)))?;
    check(v / scale)
}

/// A tolerance must be a finite number >= 0; the reason when it is not.
fn check(t: f64) -> Result<f64, ValueError> {
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err(ValueError::OutOfRange)
    }
}

/// One `--tolerance-for METRIC=TOL`.
fn parse_tolerance_for(arg: &str) -> Result<(String, f64), ToleranceError> {
    let err = |why: String| ToleranceError::Flag {
        flag: "--tolerance-for",
        value: one_line(arg),
        why,
    };
    let Some((name, tol)) = arg.split_once('=') else {
        return Err(err(
            "expected METRIC=TOL, for example startup_ms=0.25".into()
        ));
    };
    let name = name.trim();
    if metric::find(name).is_none() {
        return Err(err(format!(
            "unknown metric `{}`; allowed: {}",
            one_line(name),
            metric::names()
        )));
    }
    let t = parse_value(tol).map_err(|why| err(why.to_string()))?;
    Ok((name.to_string(), t))
}

struct FileTolerances {
    default: Option<f64>,
    metrics: BTreeMap<String, f64>,
}

/// Reads a tolerance file: `default = TOL` and a `[metrics]` table of `METRIC = TOL`, both
/// optional, nothing else; TOL a number or a string (`"10%"`, since TOML has no percent). Parsed as a plain TOML table and checked key by key (rather than
/// by serde's `deny_unknown_fields`) so each error names its key and what is allowed there.
fn read_file(path: &Path) -> Result<FileTolerances, ToleranceError> {
    let text = std::fs::read_to_string(path).map_err(|e| ToleranceError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| format!("line {}: ", line_of(&text, s.start)))
            .unwrap_or_default();
        ToleranceError::Syntax {
            path: path.to_path_buf(),
            message: format!("{at}{}", one_line(e.message())),
        }
    })?;
    let key_err = |key: &str, why: String| ToleranceError::Key {
        path: path.to_path_buf(),
        key: one_line(key),
        why,
    };
    let number = |key: &str, v: &toml::Value| -> Result<f64, ToleranceError> {
        match v {
            toml::Value::Float(f) => check(*f).map_err(|why| key_err(key, format!("{f}: {why}"))),
            toml::Value::Integer(i) => {
                check(*i as f64).map_err(|why| key_err(key, format!("{i}: {why}")))
            }
            toml::Value::String(s) => parse_value(s).map_err(|why| key_err(key, why.to_string())),
            other => Err(key_err(
                key,
                format!("{} is not {ALLOWED_VALUE}", other.type_str()),
            )),
        }
    };
    let mut out = FileTolerances {
        default: None,
        metrics: BTreeMap::new(),
    };
    for (key, value) in &table {
        match key.as_str() {
            "default" => out.default = Some(number("default", value)?),
            "metrics" => {
                let toml::Value::Table(t) = value else {
                    return Err(key_err(
                        "metrics",
                        format!("expected a table of METRIC = TOL, not {}", value.type_str()),
                    ));
                };
                for (name, v) in t {
                    let full = format!("metrics.{name}");
                    if metric::find(name).is_none() {
                        return Err(key_err(
                            &full,
                            format!("unknown metric; allowed: {}", metric::names()),
                        ));
                    }
                    out.metrics.insert(name.clone(), number(&full, v)?);
                }
            }
            _ => {
                return Err(key_err(
                    key,
                    "unknown key; allowed: default, [metrics]".into(),
                ));
            }
        }
    }
    Ok(out)
}

/// Collapses line breaks (from toml's messages or odd input) so every error fits on one line.
/// The same rule as the scenario loader's private helper of that name.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1-based line number of byte offset `pos` in `text`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tolerance file removed on drop (tempfile).
    fn temp_file(text: &str) -> tempfile::TempPath {
        let mut f = tempfile::Builder::new()
            .prefix("isobench-tol-")
            .suffix(".toml")
            .tempfile()
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f.into_temp_path()
    }

    fn flags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn m(name: &str) -> &'static Metric {
        metric::find(name).unwrap()
    }

    #[test]
    fn without_flags_or_file_each_metric_has_its_built_in_tolerance() {
        let t = Tolerances::resolve(None, &[], None).unwrap();
        assert_eq!(t.default, None);
        assert_eq!(t.default_from, BUILT_IN);
        for name in ["startup_ms", "pss_kib", "host_avail_kib"] {
            assert_eq!(t.of(m(name)), gate(m(name)).tolerance, "{name}");
        }
        // Timings drift between runs on a busy host far more than memory views do.
        assert!(t.of(m("startup_ms")) > t.of(m("pss_kib")));
    }

    #[test]
    fn flags_over_file_over_built_in_key_by_key() {
        let f = temp_file("default = 0.2\n[metrics]\nstartup_ms = 0.25\npss_kib = 0.05\n");
        let of = |t: &Tolerances| {
            (
                t.of(m("startup_ms")),
                t.of(m("pss_kib")),
                t.of(m("rss_kib")),
            )
        };
        // File alone.
        let t = Tolerances::resolve(None, &[], Some(&f)).unwrap();
        assert_eq!(of(&t), (0.25, 0.05, 0.2));
        assert_eq!(t.default_from, f.display().to_string());
        // --tolerance replaces the file's default, not its per-metric entries.
        let t = Tolerances::resolve(Some("0.3"), &[], Some(&f)).unwrap();
        assert_eq!(of(&t), (0.25, 0.05, 0.3));
        assert_eq!(t.default_from, "--tolerance");
        // --tolerance-for replaces the file's entry for its metric; the last repeat wins.
        let t = Tolerances::resolve(
            None,
            &flags(&["startup_ms=0.5", "rss_kib=0", "startup_ms=0.4"]),
            Some(&f),
        )
        .unwrap();
        assert_eq!(of(&t), (0.4, 0.05, 0.0));
        // Integers are fine too; a metric the file does not name keeps its built-in.
        let f2 = temp_file("[metrics]\nteardown_ms = 1\n");
        let t = Tolerances::resolve(None, &[], Some(&f2)).unwrap();
        assert_eq!(t.of(m("teardown_ms")), 1.0);
        assert_eq!(t.of(m("pss_kib")), gate(m("pss_kib")).tolerance);
    }

    #[test]
    fn percentages_are_tolerances_too() {
        assert_eq!(parse_value("10%"), Ok(0.1));
        assert_eq!(parse_value(" 12.5 % "), Ok(0.125));
        assert_eq!(parse_value("0.1"), Ok(0.1));
        assert_eq!(parse_value("0%"), Ok(0.0));
        assert_eq!(parse_value("250%"), Ok(2.5));
        for bad in ["%", "ten%", "10%%", "-5%", "inf%", "NaN", ""] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
        let t = Tolerances::resolve(Some("10%"), &flags(&["startup_ms=25%"]), None).unwrap();
        assert_eq!((t.default, t.of(m("startup_ms"))), (Some(0.1), 0.25));
        let f = temp_file("default = \"5%\"\n[metrics]\nteardown_ms = \"60%\"\n");
        let t = Tolerances::resolve(None, &[], Some(&f)).unwrap();
        assert_eq!((t.default, t.of(m("teardown_ms"))), (Some(0.05), 0.6));
    }

    #[test]
    fn bad_flags_say_what_is_allowed() {
        let e = |v: &[&str]| {
            Tolerances::resolve(None, &flags(v), None)
                .unwrap_err()
                .to_string()
        };
        let msg = e(&["startup=0.1"]);
        assert!(
            msg.contains("--tolerance-for startup=0.1")
                && msg.contains("unknown metric `startup`")
                && msg.contains("startup_ms, teardown_ms"),
            "{msg}"
        );
        assert!(e(&["startup_ms"]).contains("expected METRIC=TOL"));
        assert!(e(&["startup_ms=abc"]).contains("`abc` is not a number >= 0 or a percentage"));
        assert!(e(&["startup_ms=-0.1"]).contains("not allowed"));
        assert!(e(&["startup_ms=NaN"]).contains("not allowed"));
        assert!(e(&["startup_ms=inf"]).contains("not allowed"));
        assert!(e(&["startup_ms=-10%"]).contains("not allowed"));
        let msg = Tolerances::resolve(Some("-1"), &[], None)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("--tolerance -1: not allowed"), "{msg}");
        let msg = Tolerances::resolve(Some("lots"), &[], None)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("--tolerance lots: `lots` is not"), "{msg}");
    }

    #[test]
    fn bad_files_name_the_file_and_key() {
        let e = |text: &str| {
            let f = temp_file(text);
            let m = Tolerances::resolve(None, &[], Some(&f))
                .unwrap_err()
                .to_string();
            assert!(m.contains(&f.display().to_string()), "{m}");
            assert!(!m.contains('\n'), "one line: {m}");
            m
        };
        assert!(e("defualt = 0.1\n").contains("defualt: unknown key; allowed: default, [metrics]"));
        assert!(e("[metrics]\nstartup = 0.1\n").contains("metrics.startup: unknown metric"));
        assert!(e("default = -0.5\n").contains("default: -0.5: not allowed"));
        assert!(e("default = \"x\"\n").contains("default: `x` is not a number"));
        assert!(e("default = \"-3%\"\n").contains("default: not allowed"));
        assert!(e("[metrics]\npss_kib = true\n").contains("metrics.pss_kib: boolean is not"));
        assert!(
            e("metrics = 3\n").contains("metrics: expected a table of METRIC = TOL, not integer")
        );
        assert!(e("default = 0.1\ndefault = = 2\n").contains("line 2:"));
        let missing = Path::new("/nonexistent/tol.toml");
        let m = Tolerances::resolve(None, &[], Some(missing))
            .unwrap_err()
            .to_string();
        assert!(
            m.starts_with("tolerance file /nonexistent/tol.toml: "),
            "{m}"
        );
    }

    #[test]
    fn the_shipped_tolerance_file_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/gate-oci-tolerances.toml");
        let t = Tolerances::resolve(None, &[], Some(&p)).unwrap();
        assert_eq!((t.of(m("startup_ms")), t.of(m("teardown_ms"))), (0.2, 0.6));
        assert_eq!(Some(t.of(m("pss_kib"))), t.default);
    }
}
