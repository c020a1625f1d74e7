//! Why a scenario could not be loaded: every message is one line that starts with the file,
//! names the key and says what is allowed.

/// Why a scenario could not be loaded. Every message is one line and starts with the origin, so
/// it can be printed as is after "error: ".
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("scenario file {origin}: {message}")]
    Io { origin: String, message: String },
    /// The toml crate rejected the file: bad syntax, an unknown key or a wrong type.
    #[error("{origin}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Toml {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    /// A value has the right type but breaks a rule (range, duplicates, missing path...).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    pub(super) fn invalid(origin: &str, key: &str, message: impl Into<String>) -> Self {
        ScenarioError::Invalid {
            origin: one_line(origin),
            key: one_line(key),
            message: one_line(&message.into()),
        }
    }

    pub(super) fn from_toml(error: &toml::de::Error, text: &str, origin: &str) -> Self {
        let message = one_line(error.message());
        // The toml crate reports a missing key at offset 0, which would point at an unrelated
        // line 1; the key name in the message is the useful part.
        if message.starts_with("missing field") {
            return ScenarioError::Toml {
                origin: one_line(origin),
                line: None,
                message: format!("{message} (required keys: name, backends, counts)"),
            };
        }
        let line = error.span().map(|span| line_of(text, span.start));
        // Type errors from the toml crate ("invalid type: string \"x\", expected i64") do not
        // say which key they are about; the key path is only in its context-free rendering.
        let key = toml_error_key(error).or_else(|| {
            // A duplicate key carries no key path, but its span covers the repeated key itself.
            let span = error.span()?;
            let key = text.get(span)?.trim();
            (message == "duplicate key" && !key.is_empty()).then(|| one_line(key))
        });
        let message = match key {
            Some(key) => one_line(&format!("{key}: {message}")),
            None => message,
        };
        ScenarioError::Toml {
            origin: one_line(origin),
            line,
            message,
        }
    }
}

/// Collapses any line breaks (from toml messages, odd file names or quoted keys) into single
/// spaces, because every error must fit on one line.
pub(super) fn one_line(s: &str) -> String {
    if !s.contains(['\n', '\r']) {
        return s.to_owned();
    }
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1-based line number of byte offset `pos` in `text`.
pub(super) fn line_of(text: &str, pos: usize) -> usize {
    let end = pos.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key path a toml error is about ("limits.memory_mib"), if the crate recorded one.
/// The path is private in `toml::de::Error`; without input attached its `Display` appends it as
/// a final "in `path`" line, which is the only public way to read it.
fn toml_error_key(error: &toml::de::Error) -> Option<String> {
    let mut bare = error.clone();
    bare.set_input(None);
    let rendered = bare.to_string();
    let last = rendered.trim_end().lines().last()?;
    let key = last.strip_prefix("in `")?.strip_suffix('`')?;
    (!key.is_empty()).then(|| key.to_owned())
}
