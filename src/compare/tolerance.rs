//! Tolerances: how much worse NEW may be than BASE, per metric, before it is a regression.
//!
//! Sources, key by key, the first that sets it wins: the flags (`--tolerance-for METRIC=TOL`
//! for one metric, `--tolerance TOL` for the default), then the file (`[metrics] METRIC = TOL`,
//! `default = TOL`), then the built-in default 0.10. A metric without its own entry takes the
//! default that results. So `--tolerance` replaces the file's `default`, not its `[metrics]`
//! entries: each flag overrides the file's key of the same meaning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metric;

/// The tolerance of every metric without a flag or file entry of its own.
pub const BUILT_IN_DEFAULT: f64 = 0.10;

const ALLOWED_VALUE: &str = "a number >= 0 (0.1 = 10%)";

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

/// The resolved tolerances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// For every metric not in `metrics`.
    pub default: f64,
    /// Where `default` came from: "--tolerance", the file's path, or "built-in".
    pub default_from: String,
    /// Metric name -> tolerance, for metrics with an entry of their own.
    pub metrics: BTreeMap<String, f64>,
}

impl Tolerances {
    /// The relative tolerance of the metric `name`.
    pub fn of(&self, name: &str) -> f64 {
        self.metrics.get(name).copied().unwrap_or(self.default)
    }

    /// Resolves the tolerances from the flags and the optional file (see the module docs).
    pub fn resolve(
        flag_default: Option<f64>,
        flag_for: &[String],
        file: Option<&Path>,
    ) -> Result<Tolerances, ToleranceError> {
        let mut flags: BTreeMap<String, f64> = BTreeMap::new();
        for arg in flag_for {
            let (name, tol) = parse_tolerance_for(arg)?;
            // A repeated metric: the last one given wins, as with any repeated flag.
            flags.insert(name, tol);
        }
        if let Some(t) = flag_default {
            check(t).map_err(|why| ToleranceError::Flag {
                flag: "--tolerance",
                value: t.to_string(),
                why,
            })?;
        }
        let from_file = match file {
            Some(p) => Some(read_file(p)?),
            None => None,
        };
        let (default, default_from) = match (flag_default, &from_file) {
            (Some(t), _) => (t, "--tolerance".to_string()),
            (
                None,
                Some(FileTolerances {
                    default: Some(t), ..
                }),
            ) => (
                *t,
                file.map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            _ => (BUILT_IN_DEFAULT, "built-in".to_string()),
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

/// A tolerance must be a finite number >= 0; the reason when it is not.
fn check(t: f64) -> Result<f64, String> {
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err(format!("not allowed: a tolerance is {ALLOWED_VALUE}"))
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
    let t: f64 = tol
        .trim()
        .parse()
        .map_err(|_| err(format!("`{}` is not {ALLOWED_VALUE}", one_line(tol))))?;
    check(t).map_err(err)?;
    Ok((name.to_string(), t))
}

struct FileTolerances {
    default: Option<f64>,
    metrics: BTreeMap<String, f64>,
}

/// Reads a tolerance file: `default = TOL` and a `[metrics]` table of `METRIC = TOL`, both
/// optional, nothing else. Parsed as a plain TOML table and checked key by key (rather than
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
        let t = match v {
            toml::Value::Float(f) => *f,
            toml::Value::Integer(i) => *i as f64,
            other => {
                return Err(key_err(
                    key,
                    format!("{} is not {ALLOWED_VALUE}", other.type_str()),
                ));
            }
        };
        check(t).map_err(|why| key_err(key, format!("{t}: {why}")))
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

    struct TempFile(PathBuf);
    impl TempFile {
        fn new(text: &str) -> TempFile {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("isobench-tol-{}-{n}.toml", std::process::id()));
            std::fs::write(&p, text).unwrap();
            TempFile(p)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn flags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn built_in_default_without_flags_or_file() {
        let t = Tolerances::resolve(None, &[], None).unwrap();
        assert_eq!(t.of("startup_ms"), BUILT_IN_DEFAULT);
        assert_eq!(t.default_from, "built-in");
    }

    #[test]
    fn flags_over_file_over_default_key_by_key() {
        let f = TempFile::new("default = 0.2\n[metrics]\nstartup_ms = 0.25\npss_kib = 0.05\n");
        // File alone.
        let t = Tolerances::resolve(None, &[], Some(&f.0)).unwrap();
        assert_eq!(
            (t.of("startup_ms"), t.of("pss_kib"), t.of("rss_kib")),
            (0.25, 0.05, 0.2)
        );
        assert_eq!(t.default_from, f.0.display().to_string());
        // --tolerance replaces the file's default, not its per-metric entries.
        let t = Tolerances::resolve(Some(0.3), &[], Some(&f.0)).unwrap();
        assert_eq!(
            (t.of("startup_ms"), t.of("pss_kib"), t.of("rss_kib")),
            (0.25, 0.05, 0.3)
        );
        assert_eq!(t.default_from, "--tolerance");
        // --tolerance-for replaces the file's entry for its metric; the last repeat wins.
        let t = Tolerances::resolve(
            None,
            &flags(&["startup_ms=0.5", "rss_kib=0", "startup_ms=0.4"]),
            Some(&f.0),
        )
        .unwrap();
        assert_eq!(
            (t.of("startup_ms"), t.of("pss_kib"), t.of("rss_kib")),
            (0.4, 0.05, 0.0)
        );
        // Without a file, integers are fine too.
        let f2 = TempFile::new("[metrics]\nteardown_ms = 1\n");
        let t = Tolerances::resolve(None, &[], Some(&f2.0)).unwrap();
        assert_eq!((t.of("teardown_ms"), t.of("startup_ms")), (1.0, 0.1));
    }

    #[test]
    fn bad_flags_say_what_is_allowed() {
        let e = |v: &[&str]| {
            Tolerances::resolve(None, &flags(v), None)
                .unwrap_err()
                .to_string()
        };
        let m = e(&["startup=0.1"]);
        assert!(
            m.contains("--tolerance-for startup=0.1")
                && m.contains("unknown metric `startup`")
                && m.contains("startup_ms, teardown_ms"),
            "{m}"
        );
        assert!(e(&["startup_ms"]).contains("expected METRIC=TOL"));
        assert!(e(&["startup_ms=abc"]).contains("`abc` is not a number >= 0"));
        assert!(e(&["startup_ms=-0.1"]).contains("not allowed"));
        assert!(e(&["startup_ms=NaN"]).contains("not allowed"));
        assert!(e(&["startup_ms=inf"]).contains("not allowed"));
        let m = Tolerances::resolve(Some(-1.0), &[], None)
            .unwrap_err()
            .to_string();
        assert!(m.starts_with("--tolerance -1: not allowed"), "{m}");
    }

    #[test]
    fn bad_files_name_the_file_and_key() {
        let e = |text: &str| {
            let f = TempFile::new(text);
            let m = Tolerances::resolve(None, &[], Some(&f.0))
                .unwrap_err()
                .to_string();
            assert!(m.contains(&f.0.display().to_string()), "{m}");
            assert!(!m.contains('\n'), "one line: {m}");
            m
        };
        assert!(e("defualt = 0.1\n").contains("defualt: unknown key; allowed: default, [metrics]"));
        assert!(e("[metrics]\nstartup = 0.1\n").contains("metrics.startup: unknown metric"));
        assert!(e("default = -0.5\n").contains("default: -0.5: not allowed"));
        assert!(e("default = \"x\"\n").contains("default: string is not a number"));
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
        assert_eq!((t.of("startup_ms"), t.of("teardown_ms")), (0.2, 0.6));
        assert_eq!(t.of("pss_kib"), t.default);
    }
}
