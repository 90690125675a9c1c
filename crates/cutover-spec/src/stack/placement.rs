//! A service's `placementConstraints` and `placementStrategy`, in ECS's
//! shapes (`CreateService`), read into `cutover-core`'s engine-neutral
//! [`Placement`] for a cluster runtime (`runtime: swarm`).
//!
//! What maps: `memberOf` expressions that are a conjunction (`and`) of
//! `==`, `!=`, `in [one value]` and `not_in [...]` on `attribute:NAME`
//! (a node label; `ecs.os-type` and `ecs.cpu-architecture` are the node's
//! platform) or `ec2InstanceId`/`instanceId`; `spread` over the same
//! attributes. What Swarm cannot express is an error at the value: `or`,
//! `not` and parentheses (Swarm constraints are one conjunction), `in` with
//! several values, `=~`, `!~`, `exists`, `distinctInstance`, `binpack` and
//! `random` (Swarm always spreads over nodes).

use cutover_core::placement::{ConstraintOp, NodeAttribute, NodeConstraint, Placement};
use serde::{Deserialize, Serialize};

use crate::doc::Path;

/// One entry of `placementConstraints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementConstraint {
    /// `memberOf` or `distinctInstance`.
    #[serde(rename = "type")]
    pub kind: ConstraintType,
    /// The cluster query of a `memberOf` constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// The type of a placement constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConstraintType {
    /// Tasks go to nodes the expression selects.
    #[serde(rename = "memberOf")]
    MemberOf,
    /// Each task on a different node.
    #[serde(rename = "distinctInstance")]
    DistinctInstance,
}

/// One entry of `placementStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementStrategy {
    /// `spread`, `binpack` or `random`.
    #[serde(rename = "type")]
    pub kind: StrategyType,
    /// What to spread over or pack by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The type of a placement strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyType {
    /// Even over the values of `field`.
    Spread,
    /// As few nodes as possible, by `cpu` or `memory`.
    Binpack,
    /// Anywhere.
    Random,
}

/// An error at a path under the service (`...placementConstraints[0].expression`).
pub type PlacementError = (Path, String);

/// The placement the declarations of the service at `service` ask for, and
/// everything that cannot be mapped, each at its value.
pub fn node_placement(
    constraints: &[PlacementConstraint],
    strategy: &[PlacementStrategy],
    service: &Path,
) -> (Placement, Vec<PlacementError>) {
    let mut placement = Placement::default();
    let mut errors = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let at = service.key("placementConstraints").index(i);
        match (c.kind, c.expression.as_deref()) {
            (ConstraintType::DistinctInstance, _) => errors.push((
                at.key("type"),
                "distinctInstance cannot be mapped to Swarm: each task is its own Swarm service, so Swarm cannot keep them on different nodes (it spreads them by default)".into(),
            )),
            (ConstraintType::MemberOf, None) => errors.push((
                at.key("expression"),
                "a memberOf constraint needs an expression".into(),
            )),
            (ConstraintType::MemberOf, Some(expr)) => match member_of(expr) {
                Ok(mut terms) => placement.constraints.append(&mut terms),
                Err(why) => errors.push((at.key("expression"), why)),
            },
        }
    }
    for (i, s) in strategy.iter().enumerate() {
        let at = service.key("placementStrategy").index(i);
        match s.kind {
            StrategyType::Binpack | StrategyType::Random => errors.push((
                at.key("type"),
                format!(
                    "{} cannot be mapped to Swarm, which always spreads tasks over nodes; use spread",
                    if s.kind == StrategyType::Binpack { "binpack" } else { "random" }
                ),
            )),
            StrategyType::Spread => match s.field.as_deref().map(subject) {
                None => errors.push((at.key("field"), "spread needs a field".into())),
                Some(Ok(attribute)) => placement.spread.push(attribute),
                Some(Err(why)) => errors.push((at.key("field"), why)),
            },
        }
    }
    (placement, errors)
}

/// The terms of a `memberOf` expression, or why it cannot be mapped.
fn member_of(expr: &str) -> Result<Vec<NodeConstraint>, String> {
    let words: Vec<&str> = expr.split_whitespace().collect();
    if words.is_empty() {
        return Err("the expression is empty".into());
    }
    if expr.contains('(') || words.iter().any(|w| matches!(*w, "or" | "not")) {
        return Err(
            "Swarm constraints are one conjunction: `or`, `not` and parentheses cannot be mapped"
                .into(),
        );
    }
    let mut out = Vec::new();
    for term in words.split(|w| *w == "and") {
        out.extend(term_constraints(&term.join(" "))?);
    }
    Ok(out)
}

/// One `subject op value` term.
fn term_constraints(term: &str) -> Result<Vec<NodeConstraint>, String> {
    let (subj, rest) = term
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("{term:?} has no operator (==, !=, in, not_in)"))?;
    let attribute = subject(subj)?;
    let rest = rest.trim();
    let (op, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let value = value.trim();
    let one = |op: ConstraintOp, v: &str| -> Result<NodeConstraint, String> {
        let value = unquote(v);
        if value.is_empty() {
            return Err(format!("{term:?} compares with nothing"));
        }
        Ok(NodeConstraint {
            attribute: attribute.clone(),
            op,
            value,
        })
    };
    match op {
        "==" => Ok(vec![one(ConstraintOp::Equal, value)?]),
        "!=" => Ok(vec![one(ConstraintOp::NotEqual, value)?]),
        "in" | "not_in" => {
            let list = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| format!("{op} takes a list: [a, b]"))?;
            let values: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            match (op, values.as_slice()) {
                ("in", [v]) => Ok(vec![one(ConstraintOp::Equal, v)?]),
                ("in", _) => Err(
                    "`in` with several values is an `or`, which Swarm constraints cannot express"
                        .into(),
                ),
                _ => values
                    .iter()
                    .map(|v| one(ConstraintOp::NotEqual, v))
                    .collect(),
            }
        }
        "=~" | "!~" | "exists" | "!exists" => Err(format!(
            "{op} cannot be mapped: Swarm constraints compare with == and != only"
        )),
        other => Err(format!("unknown operator {other:?} (==, !=, in, not_in)")),
    }
}

/// `attribute:NAME`, `ec2InstanceId` or `instanceId`.
fn subject(s: &str) -> Result<NodeAttribute, String> {
    match s {
        "instanceId" | "ec2InstanceId" => Ok(NodeAttribute::InstanceId),
        "attribute:ecs.os-type" => Ok(NodeAttribute::OsType),
        "attribute:ecs.cpu-architecture" => Ok(NodeAttribute::CpuArchitecture),
        _ => match s.strip_prefix("attribute:") {
            Some(name)
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) =>
            {
                Ok(NodeAttribute::Custom(name.to_owned()))
            }
            _ => Err(format!(
                "{s:?} cannot be mapped: only attribute:NAME (a node label), attribute:ecs.os-type, attribute:ecs.cpu-architecture and instanceId are"
            )),
        },
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .unwrap_or(v)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(expr: &str) -> PlacementConstraint {
        PlacementConstraint {
            kind: ConstraintType::MemberOf,
            expression: Some(expr.into()),
        }
    }

    fn spread(field: &str) -> PlacementStrategy {
        PlacementStrategy {
            kind: StrategyType::Spread,
            field: Some(field.into()),
        }
    }

    fn eq(attribute: NodeAttribute, value: &str) -> NodeConstraint {
        NodeConstraint {
            attribute,
            op: ConstraintOp::Equal,
            value: value.into(),
        }
    }

    #[test]
    fn conjunctions_of_equalities_and_spreads_map() {
        let (p, errors) = node_placement(
            &[
                member("attribute:zone == a and attribute:ecs.os-type == linux"),
                member("attribute:disk not_in ['hdd', tape] and ec2InstanceId in [n1]"),
            ],
            &[spread("attribute:zone"), spread("instanceId")],
            &Path::root(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            p.constraints,
            vec![
                eq(NodeAttribute::Custom("zone".into()), "a"),
                eq(NodeAttribute::OsType, "linux"),
                NodeConstraint {
                    attribute: NodeAttribute::Custom("disk".into()),
                    op: ConstraintOp::NotEqual,
                    value: "hdd".into()
                },
                NodeConstraint {
                    attribute: NodeAttribute::Custom("disk".into()),
                    op: ConstraintOp::NotEqual,
                    value: "tape".into()
                },
                eq(NodeAttribute::InstanceId, "n1"),
            ]
        );
        assert_eq!(
            p.spread,
            vec![
                NodeAttribute::Custom("zone".into()),
                NodeAttribute::InstanceId
            ]
        );
    }

    #[test]
    fn what_swarm_cannot_express_is_an_error_at_its_value() {
        let (_, errors) = node_placement(
            &[
                member("attribute:zone == a or attribute:zone == b"),
                member("attribute:zone in [a, b]"),
                member("attribute:ecs.instance-type =~ t2.*"),
                member("task:group == web"),
                PlacementConstraint {
                    kind: ConstraintType::DistinctInstance,
                    expression: None,
                },
                member("attribute:zone"),
            ],
            &[
                PlacementStrategy {
                    kind: StrategyType::Binpack,
                    field: Some("memory".into()),
                },
                spread("memory"),
            ],
            &Path::root().key("services").key("web"),
        );
        let paths: Vec<String> = errors.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            paths,
            [
                "services.web.placementConstraints[0].expression",
                "services.web.placementConstraints[1].expression",
                "services.web.placementConstraints[2].expression",
                "services.web.placementConstraints[3].expression",
                "services.web.placementConstraints[4].type",
                "services.web.placementConstraints[5].expression",
                "services.web.placementStrategy[0].type",
                "services.web.placementStrategy[1].field",
            ]
        );
        assert!(errors[0].1.contains("`or`"), "{}", errors[0].1);
        assert!(errors[6].1.contains("binpack"), "{}", errors[6].1);
    }

    #[test]
    fn a_stack_locates_placement_errors() {
        let stack = |runtime: &str, expr: &str| {
            format!(
                "services:\n  web:\n    runtime: {runtime}\n    taskDefinition: web\n    placementConstraints:\n      - type: memberOf\n        expression: \"{expr}\"\n    placementStrategy:\n      - type: spread\n        field: attribute:zone\n"
            )
        };
        let ok = crate::stack::parse_stack("stack.yaml", &stack("swarm", "attribute:zone != b"))
            .unwrap();
        assert_eq!(
            ok.value.services["web"]
                .settings()
                .placement_constraints
                .len(),
            1
        );
        let err =
            crate::stack::parse_stack("stack.yaml", &stack("swarm", "attribute:zone in [a, b]"))
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("stack.yaml:7:21: services.web.placementConstraints[0].expression: `in` with several values"),
            "{err}"
        );
        let err = crate::stack::parse_stack("stack.yaml", &stack("process", "attribute:zone == a"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "stack.yaml:6:7: services.web.placementConstraints: placement needs runtime: swarm"
            ),
            "{err}"
        );
    }
}
