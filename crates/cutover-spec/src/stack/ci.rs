//! The typed entries of the stack's CI sections, `repositories:` and
//! `buildProjects:` (the `pipelines:` section holds CodePipeline documents,
//! read by `cutover-pipeline`). The server reads them from the stack through
//! the located-document layer ([`crate::doc`]) and stores them as they are
//! here, so a stored repository or build project reads back as these types.
//!
//! ```yaml
//! repositories:
//!   app: {url: /path/to/repo, pollIntervalSeconds: 1, webhookSecretEnv: APP_HOOK_SECRET}
//! buildProjects:
//!   app-build: {environment: host, buildspec: ci/buildspec.yml, cache: true, timeoutInMinutes: 30,
//!               source: {repository: app}}
//! ```
//!
//! A project's `source` is what a build started on its own (CodeBuild's
//! StartBuild) checks out; a project without one builds an empty directory
//! (CodeBuild's `NO_SOURCE`). A pipeline's build action builds its input
//! artifact either way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Default polling interval of a repository.
pub const DEFAULT_POLL_SECONDS: u64 = 60;

/// One entry of `repositories:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySpec {
    /// A git URL or a local path.
    pub url: String,
    /// Seconds between polls; 0 turns polling off (webhooks only).
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: u64,
    /// The webhook secret (GitHub and Gitea HMAC key, GitLab token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// The environment variable of the server holding the webhook secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_env: Option<String>,
}

fn default_poll() -> u64 {
    DEFAULT_POLL_SECONDS
}

impl RepositorySpec {
    /// The webhook secret, from the stack or, through `env`, the server's
    /// environment variable `webhookSecretEnv` names; never empty.
    pub fn webhook_secret(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.webhook_secret
            .clone()
            .or_else(|| self.webhook_secret_env.as_deref().and_then(env))
            .filter(|s| !s.is_empty())
    }
}

/// Where a build runs: `host`, or `{image: NAME}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildEnvironment {
    /// On the server's host, in one shell session.
    #[default]
    Host,
    /// In a container of this image, on the server's container engine.
    Image(String),
}

impl Serialize for BuildEnvironment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BuildEnvironment::Host => s.serialize_str("host"),
            BuildEnvironment::Image(image) => json!({ "image": image }).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BuildEnvironment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let expected = "expected `host` or `{image: NAME}`";
        match Value::deserialize(d)? {
            Value::String(s) if s == "host" => Ok(BuildEnvironment::Host),
            Value::Object(map) => match (map.len(), map.get("image")) {
                (1, Some(Value::String(image))) => {
                    if image.is_empty() || image.chars().any(char::is_whitespace) {
                        Err(D::Error::custom(format!(
                            "image {image:?} is not an image name"
                        )))
                    } else {
                        Ok(BuildEnvironment::Image(image.clone()))
                    }
                }
                _ => Err(D::Error::custom(format!(
                    "{expected}; found a mapping with keys {}",
                    map.keys().cloned().collect::<Vec<_>>().join(", ")
                ))),
            },
            other => Err(D::Error::custom(format!("{expected}; found {other}"))),
        }
    }
}

/// One entry of `buildProjects:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildProjectSpec {
    /// Where builds run.
    #[serde(default)]
    pub environment: BuildEnvironment,
    /// The buildspec: a file sent with the stack, else a path in the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
    /// Keep the buildspec's `cache.paths` between builds.
    #[serde(default)]
    pub cache: bool,
    /// Variables every build of the project gets (pipeline ones override them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, String>,
    /// Minutes a build may run before it is stopped (CodeBuild's default, 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<u64>,
    /// What a build started on its own checks out (none: an empty source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BuildSourceSpec>,
    /// The buildspec text, when it was sent with the stack (set by apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec_text: Option<String>,
}

/// The `source` of a build project: one of the stack's `repositories`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildSourceSpec {
    /// The repository's name under `repositories:`.
    pub repository: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_environment_is_host_or_an_image() {
        let parse =
            |v: Value| serde_json::from_value::<BuildEnvironment>(v).map_err(|e| e.to_string());
        assert_eq!(parse(json!("host")), Ok(BuildEnvironment::Host));
        assert_eq!(
            parse(json!({"image": "cutover-sample:test"})),
            Ok(BuildEnvironment::Image("cutover-sample:test".into()))
        );
        for bad in [
            json!("docker"),
            json!({"image": ""}),
            json!({"image": "a b"}),
            json!({"image": "x", "tag": "y"}),
            json!(3),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        // Stored rows read back the same.
        for env in [
            BuildEnvironment::Host,
            BuildEnvironment::Image("node:20".into()),
        ] {
            assert_eq!(parse(serde_json::to_value(&env).unwrap()), Ok(env));
        }
    }

    #[test]
    fn a_webhook_secret_comes_from_the_stack_or_the_environment() {
        let mut spec: RepositorySpec = serde_json::from_value(json!({"url": "/r"})).unwrap();
        assert_eq!(spec.poll_interval_seconds, DEFAULT_POLL_SECONDS);
        let env = |v: &str| (v == "HOOK").then(|| "from-env".to_string());
        assert_eq!(spec.webhook_secret(env), None);
        spec.webhook_secret_env = Some("HOOK".into());
        assert_eq!(spec.webhook_secret(env).as_deref(), Some("from-env"));
        spec.webhook_secret = Some("inline".into());
        assert_eq!(spec.webhook_secret(env).as_deref(), Some("inline"));
        spec.webhook_secret = Some(String::new());
        assert_eq!(spec.webhook_secret(env), None);
    }
}
