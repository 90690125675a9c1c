//! STS over the query protocol: `GetCallerIdentity`, which scripts run to
//! check their credentials (`aws sts get-caller-identity`).

use axum::response::Response;
use cutover_aws::protocol::AwsError;
use cutover_aws::query::{self, CallerIdentity};
use cutover_aws::sigv4::Caller;

use super::wire;
use crate::api::AppState;

/// Answers one STS request.
pub(super) async fn handle(
    st: &AppState,
    caller: &Caller,
    body: &[u8],
    request_id: &str,
) -> Response {
    let answer = match query::parse(body) {
        Ok(req) if req.action == "GetCallerIdentity" => Ok(query::caller_identity_xml(
            &CallerIdentity {
                user_id: caller.access_key_id.clone(),
                account: st.aws.keys.account().to_string(),
                arn: super::caller_arn(st, caller),
            },
            request_id,
        )),
        Ok(req) => Err(AwsError::client(
            "InvalidAction",
            format!("Cutover's STS does not support {}", req.action),
        )),
        Err(e) => Err(e),
    };
    match answer {
        Ok(xml) => wire::query_reply(xml, request_id),
        Err(e) => wire::query_error(query::sts_error(e), request_id),
    }
}
