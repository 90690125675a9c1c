//! The JSON request body of the handlers whose body holds a status enum
//! (a hook's `status`, an alarm's requested `state`): axum's `Json`, except
//! that a body serde refuses (not JSON, a missing field, a value outside
//! the enum) is answered 400 with the API's error body and serde's message,
//! which names the field and the values it takes (see
//! `From<JsonRejection> for ApiError` in `error.rs`). The other handlers
//! keep axum's `Json` (422, plain text) for now: the AWS adapters call them
//! with a `Json` value.

use super::ApiError;

/// A request body of type `T`, read as JSON.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub(crate) T);
