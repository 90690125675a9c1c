//! ECR lifecycle policies: the policy document (`{"rules": [...]}`) as
//! types, read through the located-document layer, and checked with the
//! rules ECR's PutLifecyclePolicy enforces. [`evaluate`](super::evaluate)
//! runs a checked policy over a repository's images.
//!
//! ```json
//! {"rules": [{"rulePriority": 1, "description": "keep 10 releases",
//!             "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"],
//!                           "countType": "imageCountMoreThan", "countNumber": 10},
//!             "action": {"type": "expire"}}]}
//! ```
//!
//! The checks follow "Lifecycle policy properties in Amazon ECR"
//! (docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html)
//! and the evaluation rules of "Automate the cleanup of images by using
//! lifecycle policies" (LifecyclePolicies.html):
//! - `rulePriority` is unique across rules (at least 1, need not be sequential);
//! - a rule with `tagStatus: any` has the highest `rulePriority`;
//! - `tagged` needs exactly one of `tagPrefixList` and `tagPatternList`, not
//!   empty; `untagged` and `any` take neither;
//! - a pattern has at most four `*` wildcards;
//! - only one rule may select untagged images (`tagStatus: untagged`);
//! - `countUnit` (`days`) goes with `sinceImagePushed`, and only with it;
//! - `countNumber` is at least 1; the action is `expire`.
//!
//! Unknown keys are errors, as ECR's schema refuses additional properties.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::{Document, Sink};
use crate::diag::{Parsed, SpecError};
use crate::doc::{Format, Path, quote};

/// The most `*` wildcards a `tagPatternList` entry may hold.
pub const MAX_WILDCARDS: usize = 4;
/// The length limits of PutLifecyclePolicy's `lifecyclePolicyText`
/// (`LifecyclePolicyText` in ECR's model), for the API to check.
pub const POLICY_TEXT_LEN: std::ops::RangeInclusive<usize> = 100..=30720;

/// A lifecycle policy: its rules, in the order written (evaluation orders
/// them by [`Rule::rule_priority`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecyclePolicy {
    /// The rules.
    pub rules: Vec<Rule>,
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// The order of evaluation, lowest first; unique in the policy.
    pub rule_priority: u32,
    /// What the rule is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which images the rule considers and how many or how old they may be.
    pub selection: Selection,
    /// What happens to the images the rule picks.
    pub action: Action,
}

/// A rule's `selection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// Tagged, untagged or any images.
    pub tag_status: TagStatus,
    /// `tagged`: the image has, for each prefix, a tag starting with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefix_list: Option<Vec<String>>,
    /// `tagged`: the image has, for each pattern, a tag matching it (`*`
    /// matches any run of characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_pattern_list: Option<Vec<String>>,
    /// Count images or age them.
    pub count_type: CountType,
    /// The unit of `countNumber` for `sinceImagePushed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<CountUnit>,
    /// Images kept (`imageCountMoreThan`) or days (`sinceImagePushed`).
    pub count_number: u32,
}

/// `tagStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    /// Images with tags matching the rule's prefix or pattern list.
    Tagged,
    /// Images without tags.
    Untagged,
    /// Every image.
    Any,
}

/// `countType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CountType {
    /// Keep the newest `countNumber` selected images, expire the rest.
    ImageCountMoreThan,
    /// Expire selected images pushed more than `countNumber` days ago.
    SinceImagePushed,
}

/// `countUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountUnit {
    /// Days of 24 hours.
    Days,
}

/// A rule's `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The action's type.
    #[serde(rename = "type")]
    pub kind: ActionType,
}

/// `action.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    /// Delete the image.
    Expire,
}

impl LifecyclePolicy {
    /// The policy as ECR's JSON text (what GetLifecyclePolicy returns when
    /// the policy came from `stack.yaml` rather than from the API's text).
    pub fn to_json_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Reads and checks a lifecycle policy's JSON text (PutLifecyclePolicy's
/// `lifecyclePolicyText`, StartLifecyclePolicyPreview's). Every error is
/// `file:line:col: field.path: message`.
pub fn parse_lifecycle_policy(
    file: &str,
    text: &str,
) -> Result<Parsed<LifecyclePolicy>, SpecError> {
    let doc = Document::parse(file, text, Format::Json)?;
    let sink = doc.sink(true);
    let policy: Option<LifecyclePolicy> = sink.read(&Path::root());
    if let Some(policy) = &policy {
        check(policy, &sink, &Path::root());
    }
    sink.finish(policy)
}

/// Checks a policy read at `at` of the sink's document (the root of a
/// policy's text, or `imageRepositories.NAME.lifecyclePolicy` of a stack).
pub(crate) fn check(policy: &LifecyclePolicy, s: &Sink<'_>, at: &Path) {
    let rules = at.key("rules");
    if policy.rules.is_empty() {
        s.error(&rules, "a lifecycle policy needs at least one rule");
    }
    let mut priorities: BTreeMap<u32, usize> = BTreeMap::new();
    let highest = policy.rules.iter().map(|r| r.rule_priority).max();
    let mut untagged = None;
    for (i, rule) in policy.rules.iter().enumerate() {
        let at = rules.index(i);
        let priority = at.key("rulePriority");
        if rule.rule_priority == 0 {
            s.error(&priority, "must be at least 1");
        }
        if let Some(first) = priorities.insert(rule.rule_priority, i) {
            s.error(
                &priority,
                format!(
                    "rulePriority {} is also the priority of rules[{first}]: each rule needs its own",
                    rule.rule_priority
                ),
            );
        }
        let sel = &rule.selection;
        let sel_at = at.key("selection");
        match sel.tag_status {
            TagStatus::Any if Some(rule.rule_priority) != highest => s.error(
                &sel_at.key("tagStatus"),
                "a rule with tagStatus \"any\" must have the highest rulePriority of the policy",
            ),
            TagStatus::Untagged => {
                if let Some(first) = untagged.replace(i) {
                    s.error(
                        &sel_at.key("tagStatus"),
                        format!("only one rule may select untagged images; rules[{first}] does"),
                    );
                }
            }
            _ => {}
        }
        check_tags(sel, s, &sel_at);
        match (sel.count_type, sel.count_unit) {
            (CountType::SinceImagePushed, None) => s.error(
                &sel_at.key("countUnit"),
                "countType \"sinceImagePushed\" needs countUnit: \"days\"",
            ),
            (CountType::ImageCountMoreThan, Some(_)) => s.error(
                &sel_at.key("countUnit"),
                "countUnit goes only with countType \"sinceImagePushed\"",
            ),
            _ => {}
        }
        if sel.count_number == 0 {
            s.error(&sel_at.key("countNumber"), "must be at least 1");
        }
    }
}

fn check_tags(sel: &Selection, s: &Sink<'_>, at: &Path) {
    let lists = [
        ("tagPrefixList", &sel.tag_prefix_list),
        ("tagPatternList", &sel.tag_pattern_list),
    ];
    if sel.tag_status == TagStatus::Tagged {
        match (&sel.tag_prefix_list, &sel.tag_pattern_list) {
            (None, None) => s.error(
                &at.key("tagStatus"),
                "tagStatus \"tagged\" needs tagPrefixList or tagPatternList",
            ),
            (Some(_), Some(_)) => s.error(
                &at.key("tagPatternList"),
                "give tagPrefixList or tagPatternList, not both",
            ),
            _ => {}
        }
        for (key, list) in lists {
            let Some(list) = list else { continue };
            if list.is_empty() {
                s.error(&at.key(key), "must not be empty");
            }
            for (j, item) in list.iter().enumerate() {
                let wildcards = item.matches('*').count();
                if item.is_empty() {
                    s.error(&at.key(key).index(j), "must not be empty");
                } else if key == "tagPatternList" && wildcards > MAX_WILDCARDS {
                    s.error(
                        &at.key(key).index(j),
                        format!(
                            "pattern {} has {wildcards} wildcards; at most {MAX_WILDCARDS} are allowed",
                            quote(item)
                        ),
                    );
                }
            }
        }
    } else {
        let status = match sel.tag_status {
            TagStatus::Untagged => "untagged",
            _ => "any",
        };
        for (key, list) in lists {
            if list.is_some() {
                s.error(
                    &at.key(key),
                    format!("{key} goes only with tagStatus \"tagged\", not {status:?}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_lifecycle_policy("policy.json", text) {
            Ok(p) => panic!("accepted: {:?}", p.value),
            Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn rule(priority: u32, selection: &str) -> String {
        format!(
            r#"{{"rulePriority": {priority}, "selection": {selection}, "action": {{"type": "expire"}}}}"#
        )
    }

    #[test]
    fn a_policy_reads_and_writes_back_as_ecr_json() {
        let text = format!(
            r#"{{"rules": [{}, {}]}}"#,
            rule(
                1,
                r#"{"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}"#
            ),
            rule(
                2,
                r#"{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}"#
            )
        );
        let p = parse_lifecycle_policy("p.json", &text).unwrap().value;
        assert_eq!(p.rules[0].selection.count_unit, Some(CountUnit::Days));
        assert_eq!(p.rules[1].selection.tag_status, TagStatus::Any);
        let again = parse_lifecycle_policy("p.json", &p.to_json_text())
            .unwrap()
            .value;
        assert_eq!(again, p);
    }

    #[test]
    fn ecr_refusals_are_located() {
        let tagged =
            r#"{"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}"#;
        let text = format!(r#"{{"rules": [{}]}}"#, rule(1, tagged));
        assert_eq!(
            errors(&text),
            [
                "policy.json:1:59: rules[0].selection.tagStatus: tagStatus \"tagged\" needs tagPrefixList or tagPatternList"
            ]
        );
        let both = r#"{"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["a*"], "countType": "imageCountMoreThan", "countNumber": 1}"#;
        let wild = r#"{"tagStatus": "tagged", "tagPatternList": ["test*1*2*3*4*5*6"], "countType": "imageCountMoreThan", "countNumber": 1}"#;
        let any = r#"{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}"#;
        let untagged = r#"{"tagStatus": "untagged", "tagPrefixList": ["x"], "countType": "sinceImagePushed", "countNumber": 0}"#;
        let unit = r#"{"tagStatus": "untagged", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 1}"#;
        let text = format!(
            "{{\"rules\": [\n{},\n{},\n{},\n{},\n{}\n]}}",
            rule(1, both),
            rule(2, wild),
            rule(2, any),
            rule(4, untagged),
            rule(5, unit)
        );
        let all = errors(&text).join("\n");
        for want in [
            "2:100: rules[0].selection.tagPatternList: give tagPrefixList or tagPatternList, not both",
            "3:77: rules[1].selection.tagPatternList[0]: pattern \"test*1*2*3*4*5*6\" has 6 wildcards; at most 4 are allowed",
            "4:18: rules[2].rulePriority: rulePriority 2 is also the priority of rules[1]: each rule needs its own",
            "rules[2].selection.tagStatus: a rule with tagStatus \"any\" must have the highest rulePriority",
            "rules[3].selection.tagPrefixList: tagPrefixList goes only with tagStatus \"tagged\", not \"untagged\"",
            "rules[3].selection.countUnit: countType \"sinceImagePushed\" needs countUnit: \"days\"",
            "rules[3].selection.countNumber: must be at least 1",
            "rules[4].selection.tagStatus: only one rule may select untagged images; rules[3] does",
            "rules[4].selection.countUnit: countUnit goes only with countType \"sinceImagePushed\"",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }

    #[test]
    fn wrong_types_unknown_keys_and_enums_are_refused() {
        let sel = |body: &str| {
            format!(
                r#"{{"rules": [{{"rulePriority": 1, "selection": {{{body}}}, "action": {{"type": "expire"}}}}]}}"#
            )
        };
        let count = r#""countType": "imageCountMoreThan", "countNumber": 1"#;
        for (text, want) in [
            (
                r#"{"rules": [{"rulePriority": "1"}]}"#.to_string(),
                "1:29: rules[0].rulePriority: expected an integer, found \"1\"",
            ),
            (
                sel(&format!(r#""tagStatus": "some", {count}"#)),
                "rules[0].selection.tagStatus: unknown variant",
            ),
            (
                sel(r#""tagStatus": "any", "countType": "imageCountMoreThan", "countNumbr": 1"#),
                "countNumbr: unknown key \"countNumbr\", did you mean \"countNumber\"?",
            ),
            (
                sel(&format!(r#""tagStatus": "any", {count}"#)).replace("expire", "delete"),
                "rules[0].action.type: unknown variant",
            ),
            (
                sel(&format!(r#""tagStatus": "any", {count}"#)).replace("]}", r#"], "x": 1}"#),
                "x: unknown key \"x\"",
            ),
        ] {
            let all = errors(&text).join("\n");
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
        assert_eq!(
            errors(r#"{"rules": []}"#),
            ["policy.json:1:11: rules: a lifecycle policy needs at least one rule"]
        );
        assert!(parse_lifecycle_policy("p.json", "{not json").is_err());
    }
}
