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
//!   image-build: {environment: {image: cutover-builder:test, privilegedMode: true}}
//! ```
//!
//! A project's `source` is what a build started on its own (CodeBuild's
//! StartBuild) checks out; a project without one builds an empty directory
//! (CodeBuild's `NO_SOURCE`). A pipeline's build action builds its input
//! artifact either way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// Where a build runs: `host`, or `{image: NAME}`, optionally
/// `{image: NAME, privilegedMode: true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildEnvironment {
    /// On the server's host, in one shell session.
    #[default]
    Host,
    /// In a container of this image, on the server's container engine.
    Image {
        /// The image.
        image: String,
        /// CodeBuild's `privilegedMode`: the build container gets the
        /// server's engine (its API socket, `CONTAINER_HOST` and
        /// `DOCKER_HOST`), so the build can build and push images. The
        /// socket is root-equivalent on the server's host: only a stack the
        /// operator applies sets this (docs/security.md).
        privileged_mode: bool,
    },
}

impl BuildEnvironment {
    /// A container environment of `image`, not privileged.
    pub fn image(image: impl Into<String>) -> Self {
        BuildEnvironment::Image {
            image: image.into(),
            privileged_mode: false,
        }
    }

    /// The image builds run in, if they run in a container.
    pub fn image_name(&self) -> Option<&str> {
        match self {
            BuildEnvironment::Host => None,
            BuildEnvironment::Image { image, .. } => Some(image),
        }
    }

    /// Whether builds get the server's container engine.
    pub fn privileged_mode(&self) -> bool {
        matches!(
            self,
            BuildEnvironment::Image {
                privileged_mode: true,
                ..
            }
        )
    }
}

/// The mapping form of [`BuildEnvironment`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImageEnvironment {
    image: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    privileged_mode: bool,
}

impl Serialize for BuildEnvironment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BuildEnvironment::Host => s.serialize_str("host"),
            BuildEnvironment::Image {
                image,
                privileged_mode,
            } => ImageEnvironment {
                image: image.clone(),
                privileged_mode: *privileged_mode,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BuildEnvironment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let expected = "expected `host` or `{image: NAME}` (and optionally `privilegedMode: true`)";
        match Value::deserialize(d)? {
            Value::String(s) if s == "host" => Ok(BuildEnvironment::Host),
            Value::Object(map) => {
                let keys = map.keys().cloned().collect::<Vec<_>>().join(", ");
                let env: ImageEnvironment = serde_json::from_value(Value::Object(map))
                    .map_err(|e| D::Error::custom(format!("{expected}; found keys {keys}: {e}")))?;
                if env.image.is_empty() || env.image.chars().any(char::is_whitespace) {
                    return Err(D::Error::custom(format!(
                        "image {:?} is not an image name",
                        env.image
                    )));
                }
                Ok(BuildEnvironment::Image {
                    image: env.image,
                    privileged_mode: env.privileged_mode,
                })
            }
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
    use serde_json::json;

    #[test]
    fn a_build_environment_is_host_or_an_image() {
        let parse =
            |v: Value| serde_json::from_value::<BuildEnvironment>(v).map_err(|e| e.to_string());
        assert_eq!(parse(json!("host")), Ok(BuildEnvironment::Host));
        assert_eq!(
            parse(json!({"image": "cutover-sample:test"})),
            Ok(BuildEnvironment::image("cutover-sample:test"))
        );
        assert_eq!(
            parse(json!({"image": "b:1", "privilegedMode": true})),
            Ok(BuildEnvironment::Image {
                image: "b:1".into(),
                privileged_mode: true
            })
        );
        assert_eq!(
            parse(json!({"image": "b:1", "privilegedMode": false})),
            Ok(BuildEnvironment::image("b:1"))
        );
        for bad in [
            json!("docker"),
            json!({"image": ""}),
            json!({"image": "a b"}),
            json!({"image": "x", "tag": "y"}),
            json!({"image": "x", "privilegedMode": "yes"}),
            json!({"privilegedMode": true}),
            json!(3),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        // Stored rows read back the same.
        for env in [
            BuildEnvironment::Host,
            BuildEnvironment::image("node:20"),
            BuildEnvironment::Image {
                image: "b:1".into(),
                privileged_mode: true,
            },
        ] {
            assert_eq!(parse(serde_json::to_value(&env).unwrap()), Ok(env));
        }
        // Rows stored before privilegedMode existed read the same.
        assert_eq!(
            serde_json::to_value(BuildEnvironment::image("node:20")).unwrap(),
            json!({"image": "node:20"})
        );
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
