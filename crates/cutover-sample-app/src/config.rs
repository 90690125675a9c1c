//! Configuration of the sample app, read strictly from its environment.
//!
//! Every variable is optional; a variable that is present but malformed is an
//! error naming it, so a typo in a task definition fails loudly instead of
//! silently running with a default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Version reported when neither `APP_VERSION` nor a `VERSION` file is present.
pub const UNKNOWN_VERSION: &str = "unknown";

/// How the sample app behaves; see the crate documentation for each variable.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleAppConfig {
    /// Address to listen on (`HOST`, default 127.0.0.1).
    pub host: IpAddr,
    /// Port to listen on (`PORT`, default 8080; 0 picks a free port).
    pub port: u16,
    /// Version answered on `GET /` (`APP_VERSION`, else the `VERSION` file, else "unknown").
    pub version: String,
    /// Whether `GET /health` answers 200 (`HEALTHY`, default true) or 503.
    pub healthy: bool,
    /// Fraction 0..=1 of non-health requests answered 500 (`FAIL_RATE`, default 0).
    pub fail_rate: f64,
    /// Delay added to every non-health request (`LATENCY_MS`, default 0).
    pub latency: Duration,
    /// Wait before listening (`START_DELAY_MS`, default 0).
    pub start_delay: Duration,
    /// Upper bound on the time in-flight requests get after SIGTERM (`GRACE_PERIOD_MS`, default 30 s).
    pub grace_period: Duration,
}

impl Default for SampleAppConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            version: UNKNOWN_VERSION.to_owned(),
            healthy: true,
            fail_rate: 0.0,
            latency: Duration::ZERO,
            start_delay: Duration::ZERO,
            grace_period: Duration::from_secs(30),
        }
    }
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable holds a value of the wrong shape.
    #[error("invalid value {value:?} for {var}: {reason}")]
    Invalid {
        /// Name of the variable.
        var: &'static str,
        /// The offending value.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// The `VERSION` file exists but cannot be read.
    #[error("cannot read version file {path}")]
    VersionFile {
        /// Path of the file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SampleAppConfig {
    /// Reads the configuration from the process environment and the `VERSION`
    /// file in the current directory.
    pub fn from_env() -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::from_lookup(|name| std::env::var(name).ok(), &cwd)
    }

    /// Reads the configuration through `lookup` (variable name to value) and the
    /// `VERSION` file in `working_dir`; `from_env` without touching the process
    /// environment, for tests and embedding.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        working_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let host =
            parse(&lookup, "HOST", "an IP address", |v| v.parse().ok())?.unwrap_or(defaults.host);
        let port = parse(&lookup, "PORT", "a port number 0..=65535", |v| {
            v.parse().ok()
        })?
        .unwrap_or(defaults.port);
        let healthy =
            parse(&lookup, "HEALTHY", "true or false", parse_bool)?.unwrap_or(defaults.healthy);
        let fail_rate = parse(&lookup, "FAIL_RATE", "a number between 0 and 1", |v| {
            v.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r))
        })?
        .unwrap_or(defaults.fail_rate);
        let latency = parse_millis(&lookup, "LATENCY_MS")?.unwrap_or(defaults.latency);
        let start_delay = parse_millis(&lookup, "START_DELAY_MS")?.unwrap_or(defaults.start_delay);
        let grace_period =
            parse_millis(&lookup, "GRACE_PERIOD_MS")?.unwrap_or(defaults.grace_period);
        let version = match lookup("APP_VERSION").filter(|v| !v.trim().is_empty()) {
            Some(v) => v.trim().to_owned(),
            None => version_from_file(&working_dir.join("VERSION"))?,
        };
        Ok(Self {
            host,
            port,
            version,
            healthy,
            fail_rate,
            latency,
            start_delay,
            grace_period,
        })
    }
}

fn parse<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    reason: &'static str,
    convert: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    let Some(raw) = lookup(var) else {
        return Ok(None);
    };
    convert(raw.trim()).map(Some).ok_or(ConfigError::Invalid {
        var,
        value: raw,
        reason,
    })
}

fn parse_millis(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    parse(lookup, var, "a whole number of milliseconds", |v| {
        v.parse::<u64>().ok().map(Duration::from_millis)
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn version_from_file(path: &Path) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Ok(UNKNOWN_VERSION.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UNKNOWN_VERSION.to_owned()),
        Err(source) => Err(ConfigError::VersionFile {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], dir: &Path) -> Result<SampleAppConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SampleAppConfig::from_lookup(|k| map.get(k).cloned(), dir)
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(&[], dir.path()).unwrap(), SampleAppConfig::default());
    }

    #[test]
    fn version_comes_from_env_before_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("VERSION"), "  v-file\n").unwrap();
        assert_eq!(load(&[], dir.path()).unwrap().version, "v-file");
        let cfg = load(&[("APP_VERSION", "v-env")], dir.path()).unwrap();
        assert_eq!(cfg.version, "v-env");
    }

    #[test]
    fn every_variable_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = load(
            &[
                ("HOST", "0.0.0.0"),
                ("PORT", "9000"),
                ("HEALTHY", "false"),
                ("FAIL_RATE", "0.25"),
                ("LATENCY_MS", "15"),
                ("START_DELAY_MS", "200"),
                ("GRACE_PERIOD_MS", "1000"),
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(cfg.host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(cfg.port, 9000);
        assert!(!cfg.healthy);
        assert_eq!(cfg.fail_rate, 0.25);
        assert_eq!(cfg.latency, Duration::from_millis(15));
        assert_eq!(cfg.start_delay, Duration::from_millis(200));
        assert_eq!(cfg.grace_period, Duration::from_secs(1));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        for (var, value) in [
            ("FAIL_RATE", "lots"),
            ("FAIL_RATE", "1.5"),
            ("PORT", "70000"),
            ("LATENCY_MS", "-3"),
            ("HEALTHY", "maybe"),
            ("HOST", "localhost:1"),
        ] {
            let err = load(&[(var, value)], dir.path()).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(var), "{message} should name {var}");
            assert!(message.contains(value), "{message} should quote {value}");
        }
    }
}
