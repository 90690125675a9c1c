//! AWS's request and response shapes, generated from botocore's service
//! models by `scripts/gen-aws-shapes.py` (one module per service), and the
//! few hand-written types they share.

pub mod codebuild;
pub mod codedeploy;
pub mod codepipeline;
pub mod ecr;
pub mod ecs;
pub mod secretsmanager;
pub mod ssm;

use serde::{Deserialize, Serialize};

/// A timestamp as the JSON protocols carry it: seconds since the Unix
/// epoch, with a fraction.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// The timestamp of `ms` milliseconds since the epoch.
    pub fn from_millis(ms: cutover_core::Millis) -> Timestamp {
        Timestamp(ms as f64 / 1000.0)
    }
}
