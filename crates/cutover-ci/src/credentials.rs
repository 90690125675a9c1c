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

#[cfg(test)]
// Tests read the store inline: nothing else runs on their runtime.
#[allow(clippy::disallowed_methods)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use cutover_api::builds::BuildStatus;
    use cutover_store::{BuildRow, Store, pipeline_ops};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::artifacts::ArtifactStore;
    use crate::build::{BuildJob, Builder, fail_interrupted, log_path};

    /// Issues `SECRET-<build id>` and records what it was asked.
    #[derive(Default)]
    struct Recording {
        issued: Mutex<Vec<(String, u64, bool)>>,
        revoked: Mutex<Vec<String>>,
        /// `AWS_ENDPOINT_URL`, when given.
        endpoint: Option<String>,
    }

    #[async_trait]
    impl BuildCredentials for Recording {
        async fn issue(
            &self,
            build_id: &str,
            ttl_ms: u64,
            in_container: bool,
        ) -> Result<IssuedCredentials, StoreError> {
            self.issued
                .lock()
                .unwrap()
                .push((build_id.into(), ttl_ms, in_container));
            let secret = format!("SECRET-{build_id}");
            let mut vars = vec![
                ("AWS_SECRET_ACCESS_KEY".into(), secret.clone()),
                (
                    "CODEBUILD_BUILD_ARN".into(),
                    format!("arn:build/{build_id}"),
                ),
            ];
            vars.extend(
                self.endpoint
                    .clone()
                    .map(|e| ("AWS_ENDPOINT_URL".to_string(), e)),
            );
            Ok(IssuedCredentials {
                vars,
                masked: vec![secret],
            })
        }

        async fn revoke(&self, build_id: &str) {
            self.revoked.lock().unwrap().push(build_id.into());
        }
    }

    fn job(source: &Path, commands: &str, timeout: Duration) -> BuildJob {
        std::fs::write(
            source.join("buildspec.yml"),
            format!("version: 0.2\nphases:\n  build:\n    commands: {commands}\n"),
        )
        .unwrap();
        BuildJob {
            project: "p".into(),
            spec: serde_json::from_value(serde_json::json!({})).unwrap(),
            action_key: None,
            initiator: "test".into(),
            source: source.to_path_buf(),
            secondary: Vec::new(),
            source_version: None,
            env: Vec::new(),
            secret_env: Vec::new(),
            outputs: Vec::new(),
            timeout,
        }
    }

    #[tokio::test]
    async fn every_build_gets_credentials_masked_and_revoked_whatever_its_end() {
        let data = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let credentials = Arc::new(Recording::default());
        let builder = Builder::new(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            ArtifactStore::new(data.path()),
        )
        .with_credentials(credentials.clone());

        let ok = job(
            source.path(),
            r#"["echo arn=$CODEBUILD_BUILD_ARN key=$AWS_SECRET_ACCESS_KEY"]"#,
            Duration::from_secs(60),
        );
        let result = builder.run(ok, CancellationToken::new()).await.unwrap();
        let row = store
            .with(|c| pipeline_ops::build(c, &result.build_id))
            .unwrap()
            .unwrap();
        let log = std::fs::read_to_string(log_path(&row)).unwrap();
        let id = &result.build_id;
        assert!(
            log.contains(&format!("arn=arn:build/{id} key=***")),
            "{log}"
        );
        assert!(!log.contains("SECRET-"), "{log}");
        // Valid for the timeout and a margin, revoked at the end.
        assert_eq!(
            credentials.issued.lock().unwrap()[0],
            (id.clone(), 360_000, false)
        );
        assert_eq!(
            credentials.revoked.lock().unwrap().as_slice(),
            [id.as_str()]
        );

        // A build that times out is revoked too.
        let slow = job(source.path(), r#"["sleep 30"]"#, Duration::from_millis(200));
        builder
            .run(slow, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(credentials.revoked.lock().unwrap().len(), 2);

        // A build cut off by a crash is revoked when the next server starts.
        let row = BuildRow {
            id: "p:cut".into(),
            project: "p".into(),
            number: 9,
            status: BuildStatus::InProgress,
            initiator: "test".into(),
            action_key: None,
            source: None,
            work_dir: data.path().to_string_lossy().into_owned(),
            detail: serde_json::json!({}),
            message: None,
            started_at: 1,
            finished_at: None,
        };
        store.with(|c| pipeline_ops::put_build(c, &row)).unwrap();
        fail_interrupted(&store, &cutover_clock::SystemClock, credentials.as_ref())
            .await
            .unwrap();
        assert_eq!(credentials.revoked.lock().unwrap()[2], "p:cut");
    }

    /// A container build reaches an endpoint on the host's loopback (build
    /// containers use host networking), which is what the server gives.
    #[tokio::test]
    async fn a_container_build_reaches_the_loopback_endpoint_it_is_given() {
        use std::io::{Read as _, Write as _};
        let Some(engine) = crate::testing::container_engine("test-creds").await else {
            return;
        };
        // One HTTP answer on an ephemeral loopback port, held until used.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nreached")
                .unwrap();
        });
        let data = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        let credentials = Arc::new(Recording {
            endpoint: Some(endpoint),
            ..Recording::default()
        });
        let builder = Builder::new(
            store.clone(),
            Arc::new(cutover_clock::SystemClock),
            data.path(),
            ArtifactStore::new(data.path()),
        )
        .with_engine(Some(engine))
        .with_credentials(credentials.clone());
        let mut job = job(
            source.path(),
            r#"["wget -qO- \"$AWS_ENDPOINT_URL/\" | grep -qx reached"]"#,
            Duration::from_secs(60),
        );
        job.spec.environment = crate::config::BuildEnvironment::image("cutover-sample:test");
        let result = builder.run(job, CancellationToken::new()).await;
        let row = &store
            .with(|c| pipeline_ops::list_builds(c, None, 1))
            .unwrap()[0];
        let log = std::fs::read_to_string(log_path(row)).unwrap_or_default();
        assert!(result.is_ok(), "{result:?}\n{log}");
        server.join().unwrap();
        assert!(
            credentials.issued.lock().unwrap()[0].2,
            "issued for a container"
        );
        assert_eq!(credentials.revoked.lock().unwrap().len(), 1);
    }
}
