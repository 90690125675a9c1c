//! `cutover_ci::BuildCredentials` over the installation's [`Aws`]: every
//! build gets this server's endpoint, the region, a short-lived key of its
//! own (owner `build:<build id>`) and `CODEBUILD_BUILD_ARN`.
//!
//! A container build reaches the same endpoint as a host build: build
//! containers run with host networking (`cutover-docker`'s
//! `create_build_container`), so the listener's loopback address is the
//! container's too.

use std::sync::Arc;

use async_trait::async_trait;
use cutover_aws::arn::Arn;
use cutover_ci::{BuildCredentials, IssuedCredentials};
use cutover_clock::SharedClock;
use cutover_store::StoreError;
use secrecy::ExposeSecret as _;

use super::Aws;

/// The credentials of this server's builds.
pub(crate) struct ServerBuildCredentials {
    pub(crate) aws: Arc<Aws>,
    pub(crate) clock: SharedClock,
}

/// The key owner of build `id`.
fn owner(build_id: &str) -> String {
    format!("build:{build_id}")
}

#[async_trait]
impl BuildCredentials for ServerBuildCredentials {
    async fn issue(
        &self,
        build_id: &str,
        ttl_ms: u64,
        _in_container: bool,
    ) -> Result<IssuedCredentials, StoreError> {
        // Host networking: the endpoint is the same inside a container.
        let env = self
            .aws
            .env_for(&owner(build_id), self.clock.now_ms(), ttl_ms, None)
            .await?;
        let mut vars: Vec<(String, String)> = env
            .vars()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        vars.push((
            "CODEBUILD_BUILD_ARN".into(),
            Arn::new(
                "codebuild",
                &self.aws.region,
                self.aws.keys.account(),
                &format!("build/{build_id}"),
            )
            .to_string(),
        ));
        Ok(IssuedCredentials {
            vars,
            masked: vec![env.secret().expose_secret().to_string()],
        })
    }

    async fn revoke(&self, build_id: &str) {
        self.aws.revoke(&owner(build_id)).await;
    }
}
