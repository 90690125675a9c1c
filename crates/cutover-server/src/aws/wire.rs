//! The JSON 1.1 protocol's framing on the server side: a request body read
//! as an operation's input shape, an answer written as its output shape,
//! refusals in AWS's error body, and the query protocol's XML replies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cutover_aws::arn::Arn;
use cutover_aws::protocol::AwsError;
use cutover_aws::sigv4::Caller;
use cutover_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{ApiError, AppState};

/// One verified call: the server's state, who signed, the request id.
pub(crate) struct Call<'a> {
    pub(crate) st: &'a AppState,
    pub(crate) caller: &'a Caller,
    pub(crate) request_id: &'a str,
}

impl Call<'_> {
    /// An ARN of this installation: the caller's region (the region the
    /// client believes it talks to), the installation's account.
    pub(crate) fn arn(&self, service: &str, resource: &str) -> String {
        Arn::new(
            service,
            &self.caller.region,
            self.st.aws.keys.account(),
            resource,
        )
        .to_string()
    }

    /// The installation's account id.
    pub(crate) fn account(&self) -> &str {
        self.st.aws.keys.account()
    }

    /// Runs `f` in one store transaction off the async threads: `f`'s own
    /// refusal (`Ok(Err(..))`) rolls nothing back by itself, so it decides
    /// before writing; a store failure is an internal error.
    pub(crate) async fn transact<T, F>(&self, f: F) -> Result<T, AwsError>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<Result<T, AwsError>, StoreError>
            + Send
            + 'static,
        T: Send + 'static,
    {
        self.st
            .store
            .transact(f)
            .await
            .map_err(|e| internal(&e, "use the state store"))?
    }
}

/// One page of a CodeDeploy or CodePipeline listing: `max` (default 100,
/// at most 1,000) items; a token not handed out is refused with their
/// `InvalidNextTokenException`.
pub(crate) fn next_token_page(
    items: Vec<String>,
    token: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let size = max.map_or(100, |m| m.clamp(1, 1000) as usize);
    page(items, size, token, || {
        AwsError::client(
            "InvalidNextTokenException",
            "The next token was specified in an invalid format.",
        )
    })
}

/// One page of `items`: at most `max` from where `token` (a `NextToken`
/// this function handed out) says, and the token of the next page if
/// there is one. A token not handed out is refused with `bad_token`.
pub(crate) fn page<T>(
    items: Vec<T>,
    max: usize,
    token: Option<&str>,
    bad_token: impl FnOnce() -> AwsError,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let start = match token {
        None => 0,
        Some(t) => engine
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("cutover-page:")?.parse::<usize>().ok())
            .filter(|&n| n <= items.len())
            .ok_or_else(bad_token)?,
    };
    let end = start.saturating_add(max.max(1)).min(items.len());
    let next = (end < items.len()).then(|| engine.encode(format!("cutover-page:{end}")));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// A JSON answer, already serialised.
pub(crate) struct Reply(Vec<u8>);

#[cfg(test)]
impl Reply {
    /// The answer as JSON (tests read it).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0).unwrap()
    }
}

/// The operation's input, read from `body` (an empty body is `{}`).
pub(crate) fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        AwsError::client(
            "SerializationException",
            format!("the request body does not match the operation's input: {e}"),
        )
    })
}

/// The operation's answer.
pub(crate) fn output<T: Serialize>(value: &T) -> Result<Reply, AwsError> {
    serde_json::to_vec(value)
        .map(Reply)
        .map_err(|e| internal(&e, "serialise an AWS answer"))
}

/// A failure that is not the caller's: logged with its cause, answered
/// as a 500 without it.
pub(crate) fn internal(e: &dyn std::fmt::Display, what: &str) -> AwsError {
    tracing::error!(error = %e, "{what}");
    AwsError {
        status: 500,
        code: "InternalFailure".into(),
        message: format!("internal error while trying to {what} (see the server log)"),
    }
}

const JSON_1_1: &str = "application/x-amz-json-1.1";

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

/// A JSON 1.1 success.
pub(crate) fn json_reply(reply: Reply, request_id: &str) -> Response {
    with_request_id(
        ([(header::CONTENT_TYPE, JSON_1_1)], reply.0).into_response(),
        request_id,
    )
}

/// A JSON 1.1 refusal: `{"__type": CODE, "message": TEXT}`.
pub(crate) fn json_error(e: &AwsError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    with_request_id(
        (status, [(header::CONTENT_TYPE, JSON_1_1)], e.body()).into_response(),
        request_id,
    )
}

/// A query-protocol success (XML).
pub(crate) fn query_reply(xml: String, request_id: &str) -> Response {
    with_request_id(
        ([(header::CONTENT_TYPE, "text/xml")], xml).into_response(),
        request_id,
    )
}

/// A query-protocol refusal (XML).
pub(crate) fn query_error(e: AwsError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    with_request_id(
        (
            status,
            [(header::CONTENT_TYPE, "text/xml")],
            cutover_aws::query::error_xml(&e, request_id),
        )
            .into_response(),
        request_id,
    )
}

/// A refusal of the domain operation `/v1` shares, in a service's
/// vocabulary: a 404 becomes `not_found`, another 4xx `invalid`, a 5xx an
/// internal failure (logged, its cause not answered).
pub(crate) fn refused(e: ApiError, not_found: &str, invalid: &str) -> AwsError {
    let status = e.status();
    if status.is_server_error() {
        return internal(&e, "run the operation");
    }
    let code = if status == StatusCode::NOT_FOUND {
        not_found
    } else {
        invalid
    };
    AwsError::client(code, e.to_string())
}

/// A store failure: always internal.
pub(crate) fn store(e: cutover_store::StoreError) -> AwsError {
    refused(
        ApiError::from(e),
        "ResourceNotFoundException",
        "InvalidParameterException",
    )
}
