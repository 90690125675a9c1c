//! The API's JSON request body: axum's `Json`, except that a body serde
//! refuses (not JSON, a missing field, a value outside a status enum) is
//! answered with the API's error body, naming the field (see
//! `From<JsonRejection> for ApiError` in `error.rs`).

use super::ApiError;

/// A request body of type `T`, read as JSON.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub(crate) T);
