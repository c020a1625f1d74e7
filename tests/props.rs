//! Property tests of the scenario parser: arbitrary text, TOML-ish text built from the real
//! keys and hostile values, and mutations of the project's own scenario files never panic,
//! and every rejection is exactly one line that starts with the file's name. A few rejected
//! mutations also go through the binary: exit 2, that one line on stderr, nothing created.

use isobench::scenario::Scenario;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const ORIGIN: &str = "prop-scenario.toml";

/// The project's scenarios: the valid starting points of the mutations.
const SCENARIOS: &[&str] = &[
    include_str!("../scenarios/quick.toml"),
    include_str!("../scenarios/startup.toml"),
    include_str!("../scenarios/density.toml"),
    include_str!("../scenarios/touch.toml"),
    include_str!("../scenarios/until.toml"),
    include_str!("../scenarios/gate-oci.toml"),
];

/// Checks what every outcome of parsing must satisfy, and returns the error if any.
fn check(text: &str, base: &Path) -> Result<Option<String>, TestCaseError> {
    match Scenario::parse(text, ORIGIN, base) {
        Ok(_) => Ok(None),
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                !msg.contains(['\n', '\r']),
                "more than one line: {msg:?}\n--- text ---\n{text}"
            );
            prop_assert!(
                msg.starts_with(ORIGIN),
                "does not name the file first: {msg:?}"
            );
            prop_assert!(msg.len() > ORIGIN.len() + 2, "says nothing: {msg:?}");
            Ok(Some(msg))
        }
    }
}

/// An empty directory relative image paths resolve against (so they name nothing real).
fn base() -> PathBuf {
    let d = std::env::temp_dir().join(format!("isobench-props-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name"),
        Just("description"),
        Just("image"),
        Just("workload"),
        Just("backends"),
        Just("counts"),
        Just("parallelism"),
        Just("repetitions"),
        Just("warmup"),
        Just("ready_timeout_s"),
        Just("memory_mib"),
        Just("cpus"),
        Just("pids"),
        Just("accel"),
        Just("machine"),
        Just("vcpus"),
        Just("runtimes"),
        Just("step"),
        Just("max"),
        Just("mem_available_floor_mib"),
        Just("touch-memory"),
        Just("limits.memory_mib"),
        Just("\"quoted\nkey\""),
        Just("unknown_key"),
    ]
    .prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("0".to_string()),
        Just("18446744073709551616".to_string()),
        any::<bool>().prop_map(|v| v.to_string()),
        "\"[a-z0-9_./-]{0,12}\"",
        Just("\"../../etc\"".to_string()),
        Just("\"/\"".to_string()),
        Just("\"line\\nbreak\"".to_string()),
        Just("\"process\"".to_string()),
        Just("\"container\"".to_string()),
        Just("\"vm\"".to_string()),
        Just("\"idle\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ];
    scalar.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            (key(), inner).prop_map(|(k, v)| format!("{{ {k} = {v} }}")),
        ]
    })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop_oneof![
            Just("[limits]"),
            Just("[vm]"),
            Just("[measure]"),
            Just("[oci]"),
            Just("[until]"),
            Just("[namespaces]"),
            Just("[workload]"),
            Just("[[counts]]"),
            Just("[limits"),
        ]
        .prop_map(str::to_string),
        1 => "[ -~]{0,30}",
    ]
}

fn tomlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(line(), 0..14).prop_map(|l| l.join("\n"))
}

/// One edit of a text, on char boundaries.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    ReplaceLine { line: usize, with: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..20usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (
            any::<usize>(),
            prop_oneof!["[ -~]{1,8}", Just("\n".to_string()), "\\PC{1,3}"]
        )
            .prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), line()).prop_map(|(line, with)| Edit::ReplaceLine { line, with }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = chars.len().max(1);
    let nl = lines.len().max(1);
    match e {
        Edit::Delete { at, len } => {
            let a = at % n;
            let b = (a + len).min(chars.len());
            chars[..a].iter().chain(&chars[b..]).collect()
        }
        Edit::Insert { at, text: t } => {
            let a = at % n;
            let mut s: String = chars[..a.min(chars.len())].iter().collect();
            s.push_str(t);
            s.extend(&chars[a.min(chars.len())..]);
            s
        }
        Edit::ReplaceLine { line, with } => {
            if !lines.is_empty() {
                lines[line % nl] = with.clone();
            }
            lines.join("\n")
        }
        Edit::DuplicateLine { line } => {
            if !lines.is_empty() {
                let l = lines[line % nl].clone();
                lines.insert(line % nl, l);
            }
            lines.join("\n")
        }
        Edit::SwapLines { a, b } => {
            if !lines.is_empty() {
                lines.swap(a % nl, b % nl);
            }
            lines.join("\n")
        }
        Edit::Truncate { at } => chars[..at % n].iter().collect(),
    }
}

fn mutated() -> impl Strategy<Value = String> {
    (0..SCENARIOS.len(), proptest::collection::vec(edit(), 1..4)).prop_map(|(i, edits)| {
        edits
            .iter()
            .fold(SCENARIOS[i].to_string(), |t, e| apply(&t, e))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_and_errors_are_one_line(text in "\\PC*|[ -~\\n\\t\\[\\]=\"]{0,200}") {
        check(&text, &base())?;
    }

    #[test]
    fn tomlish_text_never_panics_and_errors_are_one_line(text in tomlish()) {
        check(&text, &base())?;
    }

    #[test]
    fn mutated_scenarios_never_panic_and_errors_are_one_line(text in mutated()) {
        check(&text, &base())?;
    }
}

/// A rejected scenario through the binary: exit 2, one line naming the file, and no --out,
/// --state-dir or runs/ made.
fn rejected_by_the_binary(text: &str) -> Result<(), TestCaseError> {
    let dir = std::env::temp_dir().join(format!(
        "isobench-props-cli-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mutated.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_isobench"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("-q")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let made: Vec<bool> = ["out", "state", "runs"]
        .iter()
        .map(|d| dir.join(d).exists())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    prop_assert_eq!(out.status.code(), Some(2), "{}", stderr);
    prop_assert_eq!(stderr.lines().count(), 1, "{}", stderr);
    prop_assert!(stderr.contains(&file.display().to_string()), "{}", stderr);
    prop_assert_eq!(made, vec![false, false, false], "{}", stderr);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn the_binary_rejects_bad_scenarios_with_exit_2_and_creates_nothing(text in mutated()) {
        // Only the rejected ones: a valid mutation would start a real run.
        prop_assume!(Scenario::parse(&text, ORIGIN, &base()).is_err());
        rejected_by_the_binary(&text)?;
    }
}
