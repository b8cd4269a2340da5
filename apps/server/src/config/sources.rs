//! The layers settings come from, merged by figment: `confab.toml` (or the file
//! `CONFAB_CONFIG` names), then `.env`, then the process environment, each later one winning.
//!
//! The environment and `.env` are providers of their own ([`Pairs`]) rather than figment's
//! `Env`: `Env` parses values (`0123` becomes the number 123, `[a]` an array), which would
//! change secrets and names; these keep every value as the text it was.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Error, Figment, Metadata, Profile, Provider};
use secrecy::SecretString;

use super::{ConfigError, DefaultValue, KEYS, Key, Shown, invalid};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The settings file, by the name it was given.
    File(String),
    DotEnv,
    Env,
}

const DOTENV: &str = ".env";
const ENVIRONMENT: &str = "environment";

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "default",
            Self::File(name) => name,
            Self::DotEnv => DOTENV,
            Self::Env => ENVIRONMENT,
        })
    }
}

/// Every key's value (trimmed, not empty) and its source, after merging the layers.
#[derive(Debug, Default)]
pub struct Sources {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Sources {
    /// Reads `confab.toml` (or `CONFAB_CONFIG`), `.env` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os("CONFAB_CONFIG").map(PathBuf::from);
        let explicit = file.is_some();
        let file = file.unwrap_or_else(|| PathBuf::from("confab.toml"));
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Self::from_layers(&file, explicit, Path::new(DOTENV), env)
    }

    /// Builds the layers from a settings file (`required`: its absence is an error), a dotenv
    /// file (read when present) and environment pairs.
    pub fn from_layers(
        toml_path: &Path,
        toml_required: bool,
        dotenv_path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if toml_required || toml_path.exists() {
            figment = figment.merge(TomlFile(toml_path.to_owned()));
        }
        let dotenv = read_dotenv(dotenv_path)?;
        let figment = figment
            .merge(Pairs::new(DOTENV, dotenv))
            .merge(Pairs::new(ENVIRONMENT, env));
        let file_error = |e: Error| ConfigError::File {
            path: toml_path.display().to_string(),
            message: without_quoted_lines(&e.to_string()),
        };
        let mut values = BTreeMap::new();
        for key in KEYS {
            let value = match figment.find_value(&key.name.to_ascii_lowercase()) {
                Ok(value) => value,
                Err(e) if e.missing() => continue,
                Err(e) => return Err(file_error(e)),
            };
            let source = match figment.get_metadata(value.tag()).map(|m| &*m.name) {
                Some(DOTENV) => Source::DotEnv,
                Some(ENVIRONMENT) => Source::Env,
                _ => Source::File(toml_path.display().to_string()),
            };
            let text = flatten(&value).ok_or_else(|| ConfigError::Invalid {
                var: key.name,
                message: "expected a single value or a list of them".to_owned(),
            })?;
            let text = text.trim();
            if !text.is_empty() {
                values.insert(key.name, (text.to_owned(), source));
            }
        }
        Ok(Self { values })
    }

    /// Sources from explicit pairs only, as if from the environment (tests).
    #[must_use]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let env = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned()));
        Self::from_layers(Path::new(""), false, Path::new(""), env).unwrap_or_default()
    }

    /// The value of a key and its source; `None` when unset or empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<(&str, &Source)> {
        self.values.get(name).map(|(v, s)| (v.as_str(), s))
    }
}

/// A TOML value as the text an environment variable would hold; lists joined by commas.
fn flatten(value: &Value) -> Option<String> {
    Some(match value {
        Value::String(_, s) => s.clone(),
        Value::Char(_, c) => c.to_string(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(..) => value
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| value.to_i128().map(|n| n.to_string()))
            .or_else(|| value.to_f64().map(|n| n.to_string()))?,
        Value::Array(_, items) => items
            .iter()
            .map(flatten)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        Value::Dict(..) | Value::Empty(..) => return None,
    })
}

fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let error = |message: String| ConfigError::File {
        path: path.display().to_string(),
        message,
    };
    match dotenvy::from_path_iter(path) {
        Ok(pairs) => pairs
            .collect::<Result<_, _>>()
            .map_err(|e| error(dotenv_error(&e))),
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(error(dotenv_error(&e))),
    }
}

/// What went wrong in a `.env` file, without the line itself (it may hold a secret).
fn dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, at) => {
            format!(
                "a line could not be read (at its character {at}; not shown, it may hold a secret)"
            )
        }
        other => other.to_string(),
    }
}

/// figment's TOML errors quote the offending line of the file (`1 | KEY = sk-…`), which may
/// hold a secret: only the lines that say what is wrong and where are kept.
fn without_quoted_lines(message: &str) -> String {
    let quoted = |line: &str| {
        line.starts_with('|')
            || line
                .split_once('|')
                .is_some_and(|(before, _)| before.trim().chars().all(|c| c.is_ascii_digit()))
    };
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !quoted(line))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Key/value pairs as text, under a name that says where they came from. Only the table's
/// keys are kept (another variable's name may hold a `.`, which figment reads as a path).
struct Pairs {
    name: &'static str,
    dict: Dict,
}

impl Pairs {
    fn new(name: &'static str, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let dict = pairs
            .into_iter()
            // An empty value is no value: it leaves the layers below to speak.
            .filter(|(k, v)| !v.trim().is_empty() && KEYS.iter().any(|key| key.name == k))
            .map(|(k, v)| (k.to_ascii_lowercase(), Value::from(v)))
            .collect();
        Self { name, dict }
    }
}

impl Provider for Pairs {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// figment's TOML file with its keys lowercased: the keys are variables' names in any case.
struct TomlFile(PathBuf);

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0.display().to_string())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let lowercase = |dict: Dict| {
            dict.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect::<Dict>()
        };
        let data = Toml::file_exact(&self.0).data()?;
        Ok(data.into_iter().map(|(p, d)| (p, lowercase(d))).collect())
    }
}

/// Every key's value, checked against its kind and range, and where it came from.
pub(super) struct Values {
    checked: BTreeMap<&'static str, (String, Source)>,
    /// What `confab config` shows for keys whose value is worked out from others.
    derived: BTreeMap<&'static str, String>,
}

impl Values {
    /// Checks every key's value (given, or its default) against the key's kind and range.
    pub(super) fn check(sources: &Sources) -> Result<Self, ConfigError> {
        let mut checked = BTreeMap::new();
        for key in KEYS {
            let (raw, source) = match (sources.get(key.name), key.default) {
                (Some((raw, source)), _) => (raw, source.clone()),
                (None, DefaultValue::Is(raw)) => (raw, Source::Default),
                (None, _) => continue,
            };
            let value = key.kind.check(raw).map_err(|why| match key.secret {
                true => invalid(key, format!("the value {why}")),
                false => invalid(key, format!("{} {why}", key.printable(raw))),
            })?;
            checked.insert(key.name, (value, source));
        }
        let derived = BTreeMap::new();
        Ok(Self { checked, derived })
    }

    pub(super) fn get(&self, key: &Key) -> Option<&str> {
        self.checked.get(key.name).map(|(v, _)| v.as_str())
    }

    pub(super) fn is_given(&self, key: &Key) -> bool {
        self.checked
            .get(key.name)
            .is_some_and(|(_, s)| *s != Source::Default)
    }

    pub(super) fn text(&self, key: &Key) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    pub(super) fn secret(&self, key: &Key) -> Option<SecretString> {
        self.get(key).map(|v| SecretString::from(v.to_owned()))
    }

    pub(super) fn flag(&self, key: &Key) -> bool {
        self.get(key) == Some("true")
    }

    pub(super) fn list(&self, key: &Key) -> Vec<String> {
        let items = self.get(key).unwrap_or_default().split(',').map(str::trim);
        items.filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    /// A number; `None` when unset. The table's range keeps it within `T`.
    pub(super) fn number<T: TryFrom<u64>>(&self, key: &Key) -> Result<Option<T>, ConfigError> {
        let Some(n) = self.get(key).and_then(|v| v.parse::<u64>().ok()) else {
            return Ok(None);
        };
        T::try_from(n)
            .map(Some)
            .map_err(|_| invalid(key, format!("{n} is out of range")))
    }

    pub(super) fn required<T: TryFrom<u64>>(&self, key: &Key) -> Result<T, ConfigError> {
        self.number(key)?
            .ok_or_else(|| invalid(key, "has no value and no default"))
    }

    pub(super) fn secs(&self, key: &Key) -> Result<Duration, ConfigError> {
        self.required(key).map(Duration::from_secs)
    }

    /// Records what `confab config` shows for a key worked out at start.
    pub(super) fn derive(&mut self, key: &Key, shown: impl Into<String>) {
        self.derived.insert(key.name, shown.into());
    }

    /// `confab config`'s lines, in the table's order.
    pub(super) fn shown(&self) -> Vec<Shown> {
        let line = |key: &Key| {
            let (value, source) = match self.checked.get(key.name) {
                Some((value, source)) => (key.printable(value), source.clone()),
                None => match key.default {
                    DefaultValue::Derived(how) => (format!("({how})"), Source::Default),
                    _ => ("(not set)".to_owned(), Source::Default),
                },
            };
            let value = self.derived.get(key.name).cloned().unwrap_or(value);
            Shown {
                name: key.name,
                value,
                source,
            }
        };
        KEYS.iter().map(line).collect()
    }
}
