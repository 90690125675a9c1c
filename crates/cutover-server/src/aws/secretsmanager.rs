//! The secretsmanager operations of AWS's JSON 1.1 protocol.

use cutover_aws::protocol::{self, AwsError, Service};
use cutover_aws::shapes::secretsmanager::Operation;

use super::wire::{Call, Reply};

/// Runs `op`.
pub(super) async fn call(_call: &Call<'_>, op: Operation, _body: &[u8]) -> Result<Reply, AwsError> {
    Err(protocol::unsupported(Service::SecretsManager, op.name()))
}
