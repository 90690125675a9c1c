//! Where a cluster runtime may run a task: node constraints and spread
//! attributes, the engine-neutral form of ECS's `placementConstraints`
//! (`memberOf`) and `placementStrategy` (`spread`).
//!
//! `cutover-spec` reads the ECS shapes into a [`Placement`]; a cluster
//! runtime (Swarm) maps each [`NodeAttribute`] to its engine's words.
//! Single-machine runtimes ignore it.

use serde::{Deserialize, Serialize};

/// A node attribute, as ECS names it in a cluster query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeAttribute {
    /// A custom attribute (`attribute:zone`): a label the operator put on
    /// the node.
    Custom(String),
    /// `attribute:ecs.os-type` (`linux`, `windows`).
    OsType,
    /// `attribute:ecs.cpu-architecture` (`x86_64`, `arm64`).
    CpuArchitecture,
    /// `instanceId` / `ec2InstanceId`: the node itself.
    InstanceId,
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConstraintOp {
    /// The attribute has the value.
    Equal,
    /// The attribute does not have the value.
    NotEqual,
}

/// One condition on the node, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConstraint {
    /// The attribute compared.
    pub attribute: NodeAttribute,
    /// How.
    pub op: ConstraintOp,
    /// With what.
    pub value: String,
}

/// Where tasks may go and how they are spread.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    /// Conditions every node must meet (their conjunction).
    #[serde(default)]
    pub constraints: Vec<NodeConstraint>,
    /// Attributes to spread tasks evenly over, in order of priority.
    #[serde(default)]
    pub spread: Vec<NodeAttribute>,
}

impl Placement {
    /// No constraint and no preference.
    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty() && self.spread.is_empty()
    }
}
