//! Integration tests of `isobench report` with the real binary on a real run: a small
//! scenario (process and container, N = 1 and 2) is measured, then reported on. Checks
//! the files written, the inlined SVGs and the PNGs, the JSON document, bad input (exit 2,
//! one line, nothing written), and, where Chromium is installed, that a browser renders the
//! page with every plot.
//!
//! The run launches instances, so it holds `host::host_lock()` (see tests/cli.rs); the report
//! is written into the run directory, under cargo's temp dir for tests, removed at the end.

#[path = "common/host.rs"]
mod host;
#[path = "common/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_isobench");
const EXIT_BAD_INPUT: i32 = 2;

const SCENARIO: &str = r#"name = "report-test"
image = "busybox"
workload = "idle"
backends = ["process", "container"]
counts = [1, 2]
parallelism = 2
warmup = 0
repetitions = 2
[measure]
memory = true
idle_window_s = 1
"#;

/// A fresh directory of this test process under cargo's temp dir for tests.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("report-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `isobench ARGS`, stdin empty, killed if it hangs (assert_cmd's timeout).
fn isobench(args: &[&std::ffi::OsStr]) -> Output {
    assert_cmd::Command::new(BIN)
        .args(args)
        .timeout(std::time::Duration::from_secs(900))
        .output()
        .unwrap_or_else(|e| panic!("running {BIN}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Measures SCENARIO into `<dir>/run` and checks the host is clean afterwards. `None` (after
/// saying why) when this host cannot run instances.
fn measure(dir: &Path) -> Option<PathBuf> {
    if skip::unless_root() {
        return None;
    }
    let _lock = host::host_lock();
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let state = dir.join("state");
    let before = host::snapshot();
    let out = isobench(&[
        "run".as_ref(),
        scenario.as_os_str(),
        "--out".as_ref(),
        dir.join("run").as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "-q".as_ref(),
        "--report".as_ref(),
    ]);
    assert!(out.status.success(), "isobench run: {}", text(&out));
    // `run --report` (the README's main job) ends with the report of the run just made.
    let html = dir.join("run/report.html");
    assert!(html.is_file(), "run --report wrote no report.html");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("report: {}", html.display())),
        "{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_no_inf_or_nan("isobench run's stdout", &stdout);
    // The end-of-run tables are followed by the flags of the headline figures.
    assert!(
        stdout.lines().any(|l| l.starts_with("flag: startup_ms")
            && l.contains("too few values for a 95% interval")),
        "{}",
        text(&out)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/meta.json")).unwrap()).unwrap();
    host::assert_clean_since(
        &before,
        &state,
        &[meta["run_id"].as_str().unwrap().to_string()],
    );
    Some(dir.join("run"))
}

const STEMS: [&str; 6] = [
    "startup",
    "memory",
    "memory_total",
    "disk",
    "idle_cpu",
    "kernel",
];

/// One real run (instances take a while to measure), reported on three ways.
#[test]
fn a_real_run_reported_as_text_as_json_and_in_a_browser() {
    let dir = scratch("run");
    let Some(run) = measure(&dir) else {
        return;
    };
    check_text_report(&run);
    check_json(&run);
    check_browser(&run);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn check_text_report(run: &Path) {
    let out = isobench(&["report".as_ref(), run.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&run.join("report.html").display().to_string()),
        "{stdout}"
    );
    // No VM in this run: the claims say so instead of showing a table.
    assert!(stdout.contains("no vm backend"), "{stdout}");

    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    // process and container have data for every plot (kernel.csv is written by every run).
    for stem in STEMS {
        let svg = std::fs::read_to_string(run.join(format!("plots/{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}.svg");
        assert!(
            svg.len() < 200_000,
            "{stem}.svg is {} bytes: not downsampled?",
            svg.len()
        );
        let png = std::fs::read(run.join(format!("plots/{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png is not a PNG");
        assert!(
            md.contains(&format!("(plots/{stem}.png)")),
            "{stem} not in report.md"
        );
    }
    assert_eq!(
        html.matches("<svg").count(),
        STEMS.len(),
        "every SVG inlined"
    );
    assert!(html.contains("<td>container</td>"), "summary table");
    for external in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!html.contains(external), "report.html fetches: {external}");
    }
    for (figure, section) in [("startup_ms", "| startup_ms "), ("pss_kib", "| pss_kib ")] {
        assert!(md.contains(section), "{figure} not defined in report.md");
    }
    // Measured and rendered by this one build: one revision, said once.
    assert!(
        md.contains("Measured and written by isobench"),
        "provenance: {}",
        md.lines().nth(2).unwrap_or_default()
    );
    // Two repetitions of N = 1 and 2: too few values for an interval, flagged under the plot.
    assert!(
        md.contains("- flag: startup_ms: too few values for a 95% interval"),
        "{md}"
    );
    for (what, t) in [
        ("report.md", &md),
        ("report.html", &html),
        ("stdout", &stdout.to_string()),
    ] {
        assert_no_inf_or_nan(what, t);
    }
}

/// Neither `inf` nor `NaN` as a word: a figure that has no finite value is said in words.
fn assert_no_inf_or_nan(what: &str, text: &str) {
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
        let w = word
            .trim_matches(|c| c == '-' || c == '.')
            .to_ascii_lowercase();
        assert!(
            w != "inf" && w != "nan" && w != "infinity",
            "{what} says {word:?}"
        );
    }
}

/// The example reports committed in reports/ (what a new user opens first) were measured and
/// rendered by one build, name its git revision (with `-dirty` when the tree had changes),
/// and hold no path of the machine they were made on.
#[test]
fn committed_reports_have_one_revision_and_no_local_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut files = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                files.push(p);
            }
        }
    }
    // One revision per example (reports/<example>/...): each example is made by one build;
    // examples made on different days may come from different builds.
    let mut revisions: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    let example = |f: &Path| -> String {
        f.strip_prefix(&root)
            .ok()
            .and_then(|r| r.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut metas = 0;
    for f in &files {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "json" | "md" | "html" | "csv" | "txt" | "svg") {
            continue;
        }
        let t = std::fs::read_to_string(f).unwrap();
        // What isobench wrote (SETUP.md, written by hand, may name the words it avoids).
        if matches!(ext, "md" | "html" | "txt") && !f.ends_with("SETUP.md") {
            assert_no_inf_or_nan(&f.display().to_string(), &t);
        }
        for local in ["/work/", "/tmp/", "/home/", "/root/", "/var/tmp/"] {
            assert!(
                !t.contains(local),
                "{} holds a local path ({local}...)",
                f.display()
            );
        }
        if f.file_name().is_some_and(|n| n == "meta.json") {
            let meta: serde_json::Value = serde_json::from_str(&t).unwrap();
            let rev = meta["git_revision"].as_str().unwrap_or_default();
            assert!(
                !rev.is_empty() && rev != "unknown",
                "{}: {rev:?}",
                f.display()
            );
            revisions
                .entry(example(f))
                .or_default()
                .insert(rev.to_string());
            metas += 1;
        }
        if ext == "md" && t.starts_with("# isobench report") {
            let line = t.lines().nth(2).unwrap_or_default();
            assert!(
                line.starts_with("Measured and written by isobench"),
                "{}: {line}",
                f.display()
            );
            let rev = line
                .split("git revision ")
                .nth(1)
                .and_then(|r| r.split([' ', ',']).next())
                .unwrap_or_default();
            revisions
                .entry(example(f))
                .or_default()
                .insert(rev.to_string());
        }
    }
    assert!(metas >= 3, "density, capacity/sweep and capacity/until");
    for (dir, revs) in &revisions {
        assert_eq!(revs.len(), 1, "one revision in reports/{dir}: {revs:?}");
    }
}

/// `--format json` prints one document with the runs, the claims and the files written.
fn check_json(run: &Path) {
    let out = isobench(&[
        "--format".as_ref(),
        "json".as_ref(),
        "report".as_ref(),
        run.as_os_str(),
        "--label".as_ref(),
        "small".as_ref(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{}", text(&out)));
    let samples = std::fs::read_to_string(run.join("samples.csv")).unwrap();
    assert_eq!(
        doc["runs"][0]["samples"].as_array().unwrap().len(),
        samples.lines().count() - 1,
        "every sample row"
    );
    assert_eq!(doc["runs"][0]["label"], "small");
    assert!(doc["runs"][0]["meta"]["mem_total_kib"].as_u64().unwrap() > 0);
    assert!(doc["claims"].as_array().unwrap().is_empty());
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2 + 2 * STEMS.len());
    for f in files {
        assert!(Path::new(f.as_str().unwrap()).is_file(), "{f}");
    }
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let dir = scratch("bad");
    let not_a_run = dir.join("empty");
    std::fs::create_dir(&not_a_run).unwrap();
    let out_dir = dir.join("out");
    let missing = dir.join("missing");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec!["report".as_ref(), missing.as_os_str()],
            "no such directory",
        ),
        (
            vec![
                "report".as_ref(),
                not_a_run.as_os_str(),
                "--out".as_ref(),
                out_dir.as_os_str(),
            ],
            "not a run directory",
        ),
        (
            vec![
                "report".as_ref(),
                not_a_run.as_os_str(),
                not_a_run.as_os_str(),
                "--label".as_ref(),
                "x".as_ref(),
                "--out".as_ref(),
                out_dir.as_os_str(),
            ],
            "--label",
        ),
    ];
    for (args, fragment) in cases {
        let out = isobench(&args);
        assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{}", text(&out));
        assert!(err.contains(fragment), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        assert!(!missing.exists() && !out_dir.exists(), "{}", text(&out));
        assert_eq!(std::fs::read_dir(&not_a_run).unwrap().count(), 0);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Chromium of Debian's `chromium` package, if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Headless Chromium parses the page with every inline SVG and draws it.
fn check_browser(run: &Path) {
    let Some(browser) = chromium() else {
        skip::because("no chromium for the browser check (Debian package `chromium`)");
        return;
    };
    let profile = run.join("chromium-profile");
    let url = format!("file://{}", run.join("report.html").display());
    let shot = run.join("screenshot.png");
    let chrome = |extra: &[String]| {
        Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", profile.display()),
                "--window-size=1400,3000",
            ])
            .args(extra)
            .arg(&url)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", browser.display()))
    };
    // The DOM after parsing: every inline SVG survived as an element with its text.
    let dom = chrome(&["--dump-dom".to_string()]);
    assert!(dom.status.success(), "{}", text(&dom));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        STEMS.len(),
        "svg elements in the DOM"
    );
    assert!(
        dom.contains("instances running at once, N"),
        "axis titles in the DOM"
    );
    let png = chrome(&[format!("--screenshot={}", shot.display())]);
    assert!(png.status.success(), "{}", text(&png));
    let bytes = std::fs::read(&shot).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // A blank 1400x3000 page compresses to a few KiB; drawn plots and tables do not.
    assert!(bytes.len() > 100_000, "screenshot is {} bytes", bytes.len());
}
