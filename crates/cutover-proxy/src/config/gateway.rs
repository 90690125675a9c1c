//! The API-gateway keys of a rule (`authorizer`, `throttle`): the model and its checks are
//! `cutover-spec`'s (a stack's `loadBalancer` accepts the same keys); this places their errors
//! at a rule's field path. The request-path side is in `crate::jwt` and `crate::throttle`.

pub use cutover_spec::gateway::{
    AuthorizerConfig, AuthorizerKind, DEFAULT_LEEWAY_SECONDS, ThrottleConfig, ThrottleKey,
};

use super::{ValidationError, invalid};

fn at(p: &str, (field, message): cutover_spec::gateway::Invalid) -> ValidationError {
    invalid(format!("{p}.{field}"), message)
}

/// Checks an authorizer at field path `p`.
pub(super) fn validate_authorizer(a: &AuthorizerConfig, p: &str) -> Result<(), ValidationError> {
    cutover_spec::gateway::check_authorizer(a).map_err(|e| at(p, e))
}

/// Checks a throttle at field path `p`; `authorized` says whether the rule has an authorizer.
pub(super) fn validate_throttle(
    t: &ThrottleConfig,
    p: &str,
    authorized: bool,
) -> Result<(), ValidationError> {
    cutover_spec::gateway::check_throttle(t, authorized).map_err(|e| at(p, e))
}
