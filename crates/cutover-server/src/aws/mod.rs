//! AWS's wire protocols on the server's own listener, beside `/v1`: the
//! aws CLI and the SDKs, pointed at it with `AWS_ENDPOINT_URL`, reach
//! Cutover's services, deployments, pipelines, builds and secrets.
//!
//! Every request to `POST /` is verified with Signature Version 4 against
//! the [`keys::KeyRing`] before anything else runs: an unsigned, unknown,
//! expired or tampered request is refused with AWS's error code and no
//! handler sees it. Then:
//! - JSON 1.1 (`X-Amz-Target: Prefix.Operation`) goes to the service's
//!   module (`ecs`, `codedeploy`, `ecr`, ...), which turns the request into the
//!   same domain operation `/v1` runs and the answer into AWS's shape;
//! - the query protocol (a form body, no target) is STS (`sts`).
//!
//! An operation Cutover does not answer is refused with
//! `UnknownOperationException` naming it, never a silent success.

pub(crate) mod build_credentials;
mod codebuild;
mod codedeploy;
mod codepipeline;
mod ecr;
mod ecs;
pub(crate) mod keys;
mod secretsmanager;
mod ssm;
mod sts;
mod wire;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use axum::routing::post;
use cutover_aws::protocol::{self, AwsError, Service};
use cutover_aws::sigv4::{self, Caller};

use crate::api::AppState;

pub(crate) use wire::Call;

/// The largest request body accepted (AWS's largest inputs Cutover
/// answers, a task definition or an appspec, are far smaller).
const MAX_BODY: usize = 1 << 20;

/// The installation's AWS identity: its key ring (and account id) and
/// the endpoint builds and hooks are given.
#[derive(Debug)]
pub(crate) struct Aws {
    pub(crate) keys: keys::KeyRing,
    /// `http://ADDR` of this server's listener (`AWS_ENDPOINT_URL`).
    pub(crate) endpoint: String,
    /// The region builds and hooks are given (`AWS_REGION`).
    pub(crate) region: String,
}

/// What a build or a hook command is given to call AWS's APIs as it would
/// on AWS: this server's endpoint, the region, and a short-lived key of its
/// own (the secret kept as a `SecretString` until the process is spawned).
#[derive(Debug, Clone)]
pub(crate) struct AwsEnv {
    endpoint: String,
    region: String,
    key_id: String,
    secret: secrecy::SecretString,
}

impl AwsEnv {
    /// The secret access key (masked in a build's log).
    pub(crate) fn secret(&self) -> &secrecy::SecretString {
        &self.secret
    }

    /// The variables to set: `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.
    pub(crate) fn vars(&self) -> Vec<(&'static str, String)> {
        use secrecy::ExposeSecret;
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.secret.expose_secret().to_string(),
            ),
        ]
    }
}

impl Aws {
    /// Issues a key for `owner` (`build:ID`, `hook:ID`) valid `ttl_ms`, and
    /// the environment carrying it; `endpoint` overrides the server's own
    /// (a container reaches the host by another name). Revoke it with
    /// [`Aws::revoke`] when the owner ends.
    pub(crate) async fn env_for(
        &self,
        owner: &str,
        now: u64,
        ttl_ms: u64,
        endpoint: Option<&str>,
    ) -> Result<AwsEnv, cutover_store::StoreError> {
        let key = self.keys.issue(owner, now, ttl_ms).await?;
        Ok(AwsEnv {
            endpoint: endpoint.unwrap_or(&self.endpoint).to_string(),
            region: self.region.clone(),
            key_id: key.id,
            secret: key.secret,
        })
    }

    /// Deletes the keys issued to `owner`; a failure is logged (the key
    /// expires anyway).
    pub(crate) async fn revoke(&self, owner: &str) {
        if let Err(e) = self.keys.revoke(owner).await {
            tracing::warn!(owner, error = %e, "cannot revoke a short-lived access key (it expires on its own)");
        }
    }
}

/// The routes of AWS's protocols.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(handle))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Verifies, then dispatches one request.
async fn handle(
    State(st): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = target.is_none()
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let now = st.clock.now_ms();
    let verified = sigv4::verify(
        sigv4::Incoming {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: &body,
        },
        now,
        |id| st.aws.keys.secret_if_usable(id, now),
    );
    let caller = match verified {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(
                code = e.code(),
                target = target.as_deref().unwrap_or(""),
                "AWS request refused"
            );
            let e = AwsError::from(e);
            return if query {
                wire::query_error(cutover_aws::query::sts_error(e), &request_id)
            } else {
                wire::json_error(&e, &request_id)
            };
        }
    };
    if query {
        return sts::handle(&st, &caller, &body, &request_id).await;
    }
    let call = Call {
        st: &st,
        caller: &caller,
        request_id: &request_id,
    };
    let answer = dispatch(&call, target.as_deref(), &body).await;
    match answer {
        Ok(reply) => wire::json_reply(reply, &request_id),
        Err(e) => wire::json_error(&e, &request_id),
    }
}

/// The JSON 1.1 operation `target` names, run.
async fn dispatch(
    call: &Call<'_>,
    target: Option<&str>,
    body: &[u8],
) -> Result<wire::Reply, AwsError> {
    let (service, name) = protocol::parse_target(target)?;
    tracing::debug!(service = ?service, operation = name, key = %call.caller.access_key_id, request_id = call.request_id, "AWS request");
    macro_rules! route {
        ($module:ident, $shapes:ident) => {
            match cutover_aws::shapes::$shapes::Operation::from_name(name) {
                Some(op) => $module::call(call, op, body).await,
                None => Err(protocol::unsupported(service, name)),
            }
        };
    }
    match service {
        Service::Ecs => route!(ecs, ecs),
        Service::CodeDeploy => route!(codedeploy, codedeploy),
        Service::CodePipeline => route!(codepipeline, codepipeline),
        Service::CodeBuild => route!(codebuild, codebuild),
        Service::SecretsManager => route!(secretsmanager, secretsmanager),
        Service::Ssm => route!(ssm, ssm),
        Service::Ecr => route!(ecr, ecr),
    }
}

/// Who a verified caller is: the key's name (IAM user), the account.
pub(crate) fn caller_arn(st: &AppState, caller: &Caller) -> String {
    let user = st
        .aws
        .keys
        .name_of(&caller.access_key_id)
        .unwrap_or_else(|| caller.access_key_id.clone());
    st.aws.keys.user_arn(&user)
}
