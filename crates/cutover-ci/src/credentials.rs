//! The seam between builds and the control plane's AWS identity: every
//! build gets, as on CodeBuild, the variables the `aws` CLI and the SDKs
//! need to call Cutover's own AWS endpoint (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_DEFAULT_REGION`, a short-lived access key of its own,
//! `CODEBUILD_BUILD_ARN`). The server implements [`BuildCredentials`] over
//! its key ring; this crate never depends on the server.
//!
//! The builder issues the key when the build's row is written and revokes
//! it when the build ends, whatever the outcome (success, failure, stop,
//! timeout); the keys of builds interrupted by a restart are revoked when
//! the next server fails those builds. The key's secret is masked in the
//! build log.

use async_trait::async_trait;
use cutover_store::StoreError;

/// What a build is given to call AWS's APIs.
pub struct IssuedCredentials {
    /// Variables set in the build's environment (before the project's own).
    pub vars: Vec<(String, String)>,
    /// Values masked in the build log (the secret access key).
    pub masked: Vec<String>,
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variable names only: the values hold the secret.
        f.debug_struct("IssuedCredentials")
            .field(
                "vars",
                &self
                    .vars
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Issues and revokes the AWS credentials of builds.
#[async_trait]
pub trait BuildCredentials: Send + Sync {
    /// Credentials for build `build_id` (`project:uuid`), valid `ttl_ms`;
    /// `in_container` says the build runs in a container (the endpoint
    /// must be reachable from inside it).
    async fn issue(
        &self,
        build_id: &str,
        ttl_ms: u64,
        in_container: bool,
    ) -> Result<IssuedCredentials, StoreError>;

    /// Revokes what was issued to `build_id` (nothing if nothing was); a
    /// failure is the implementation's to log (the key expires anyway).
    async fn revoke(&self, build_id: &str);
}

/// Builds get no AWS credentials (tests, and servers without an AWS
/// endpoint).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCredentials;

#[async_trait]
impl BuildCredentials for NoCredentials {
    async fn issue(
        &self,
        _build_id: &str,
        _ttl_ms: u64,
        _in_container: bool,
    ) -> Result<IssuedCredentials, StoreError> {
        Ok(IssuedCredentials {
            vars: Vec::new(),
            masked: Vec::new(),
        })
    }

    async fn revoke(&self, _build_id: &str) {}
}
