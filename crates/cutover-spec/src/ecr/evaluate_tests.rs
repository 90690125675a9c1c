//! Tests of [`evaluate`]: the worked examples of AWS's "Examples of
//! lifecycle policies in Amazon ECR" page, and properties over random
//! repositories and policies.

use super::*;
use crate::ecr::lifecycle::{
    Action, ActionType, CountUnit, LifecyclePolicy, Rule, Selection, parse_lifecycle_policy,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const NOW: u64 = 1_000 * DAY_MS;

/// (name, tags, pushed days ago)
type Repo<'a> = &'a [(&'a str, &'a [&'a str], u64)];

fn run(policy: &str, repo: Repo<'_>) -> Vec<(String, u32)> {
    let policy = parse_lifecycle_policy("p.json", policy).unwrap().value;
    let tags: Vec<Vec<String>> = repo
        .iter()
        .map(|(_, t, _)| t.iter().map(|s| s.to_string()).collect())
        .collect();
    let images: Vec<ImageInfo<'_>> = repo
        .iter()
        .zip(&tags)
        .map(|((name, _, days), tags)| ImageInfo {
            digest: name,
            tags,
            pushed_at_ms: NOW - days * DAY_MS,
        })
        .collect();
    evaluate(&policy, &images, NOW)
        .into_iter()
        .map(|e| (e.digest, e.rule_priority))
        .collect()
}

fn expired(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(d, p)| (d.to_string(), *p)).collect()
}

const PROD_THEN_BETA: &str = r#"{"rules": [
  {"rulePriority": 1, "description": "Rule 1", "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "Rule 2", "selection": {"tagStatus": "tagged", "tagPrefixList": ["beta"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;

#[test]
fn multiple_rules_example_a() {
    // Rule 2 would mark A and B, but A is already expired and B was seen by
    // rule 1: expiring it would violate rule 1.
    let repo: Repo<'_> = &[
        ("A", &["beta-1", "prod-1"], 10),
        ("B", &["beta-2", "prod-2"], 9),
        ("C", &["beta-3"], 8),
    ];
    assert_eq!(run(PROD_THEN_BETA, repo), expired(&[("A", 1)]));
}

#[test]
fn multiple_rules_example_b() {
    let repo: Repo<'_> = &[
        ("A", &["beta-1", "prod-1"], 10),
        ("B", &["beta-2", "prod-2"], 9),
        ("C", &["beta-3", "prod-3"], 8),
    ];
    assert_eq!(run(PROD_THEN_BETA, repo), expired(&[("A", 1), ("B", 1)]));
}

const ALPHA_BETA_REPO: Repo<'static> = &[
    ("A", &["alpha-1"], 12),
    ("B", &["beta-1"], 11),
    ("C", &["alpha-2", "beta-2"], 10),
    ("D", &["alpha-3"], 4),
    ("E", &["beta-3"], 3),
    ("F", &["alpha-4", "beta-4"], 2),
];

#[test]
fn multiple_tags_in_one_rule_select_images_having_all_of_them() {
    // Example A: only C and F carry both prefixes; the older one goes.
    let count = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;
    assert_eq!(run(count, ALPHA_BETA_REPO), expired(&[("C", 1)]));
    // Example B: by age, C (10 days) is older than 5 days, F (2) is not.
    let age = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5}, "action": {"type": "expire"}}]}"#;
    assert_eq!(run(age, ALPHA_BETA_REPO), expired(&[("C", 1)]));
    // The same with patterns.
    let pattern = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["alpha-*", "*eta-?"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;
    assert_eq!(run(pattern, ALPHA_BETA_REPO), expired(&[]));
    let pattern = pattern.replace("*eta-?", "*eta-*");
    assert_eq!(run(&pattern, ALPHA_BETA_REPO), expired(&[("C", 1)]));
}

#[test]
fn all_images_example_keeps_the_newest() {
    let repo: Repo<'_> = &[
        ("A", &["alpha-1"], 4),
        ("B", &["beta-1"], 3),
        ("C", &[], 2),
        ("D", &["alpha-2"], 1),
    ];
    let any = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;
    assert_eq!(run(any, repo), expired(&[("A", 1), ("B", 1), ("C", 1)]));
    // With a tagged rule and an untagged rule first, the `any` rule may not
    // expire what they selected: only B (selected by neither) goes.
    let three = r#"{"rules": [
      {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["alpha"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
      {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
      {"rulePriority": 3, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;
    assert_eq!(run(three, repo), expired(&[("A", 1), ("B", 3)]));
}

#[test]
fn an_image_listed_twice_is_expired_once() {
    let repo: Repo<'_> = &[("A", &[], 9), ("A", &[], 8), ("B", &[], 1)];
    let untagged = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 2}, "action": {"type": "expire"}}]}"#;
    assert_eq!(run(untagged, repo), expired(&[("A", 1)]));
}

#[test]
fn wildcards_match_runs_of_characters() {
    for (p, t, want) in [
        ("prod*", "prod", true),
        ("prod*", "prod-12", true),
        ("*prod", "preprod", true),
        ("*test*1*2*3", "xtest-1-2-3", true),
        ("a*b*c", "abc", true),
        ("a*b*c", "acb", false),
        ("prod", "prod1", false),
        ("v?", "v1", false),
        ("", "", true),
        ("*", "", true),
        ("ä*ö", "äxyö", true),
    ] {
        assert_eq!(wildcard_match(p, t), want, "{p:?} ~ {t:?}");
    }
}

fn selection() -> impl Strategy<Value = Selection> {
    let prefixes = ["a", "b", "v1", "v"];
    let patterns = ["a*", "*1", "v*", "b", "*"];
    let status = prop_oneof![
        proptest::sample::subsequence(prefixes.to_vec(), 1..3).prop_map(|l| (
            TagStatus::Tagged,
            Some(l),
            None
        )),
        proptest::sample::subsequence(patterns.to_vec(), 1..3).prop_map(|l| (
            TagStatus::Tagged,
            None,
            Some(l)
        )),
        Just((TagStatus::Untagged, None, None)),
    ];
    let count = prop_oneof![
        (1u32..4).prop_map(|n| (CountType::ImageCountMoreThan, None, n)),
        (1u32..20).prop_map(|n| (CountType::SinceImagePushed, Some(CountUnit::Days), n)),
    ];
    (status, count).prop_map(
        |((tag_status, pre, pat), (count_type, count_unit, count_number))| {
            let own = |l: Option<Vec<&str>>| l.map(|l| l.into_iter().map(String::from).collect());
            Selection {
                tag_status,
                tag_prefix_list: own(pre),
                tag_pattern_list: own(pat),
                count_type,
                count_unit,
                count_number,
            }
        },
    )
}

/// Valid policies: unique priorities, at most one untagged rule, maybe a
/// last `any` rule.
fn policy() -> impl Strategy<Value = LifecyclePolicy> {
    (
        proptest::collection::vec((1u32..100, selection()), 1..5),
        proptest::option::of(selection()),
    )
        .prop_map(|(rules, last)| {
            let mut seen = BTreeSet::new();
            let mut untagged = false;
            let mut out = Vec::new();
            for (priority, selection) in rules {
                if !seen.insert(priority)
                    || (selection.tag_status == TagStatus::Untagged
                        && std::mem::replace(&mut untagged, true))
                {
                    continue;
                }
                out.push(rule(priority, selection));
            }
            if let Some(mut any) = last {
                any.tag_status = TagStatus::Any;
                any.tag_prefix_list = None;
                any.tag_pattern_list = None;
                out.push(rule(100, any));
            }
            LifecyclePolicy { rules: out }
        })
}

fn rule(rule_priority: u32, selection: Selection) -> Rule {
    Rule {
        rule_priority,
        description: None,
        selection,
        action: Action {
            kind: ActionType::Expire,
        },
    }
}

fn repo() -> impl Strategy<Value = Vec<(Vec<String>, u64)>> {
    let tag = proptest::sample::select(vec!["a1", "a2", "b1", "v1.0", "v2", "latest", "x"]);
    proptest::collection::vec(
        (
            proptest::collection::btree_set(tag, 0..3)
                .prop_map(|s| s.into_iter().map(String::from).collect()),
            0u64..30 * DAY_MS,
        ),
        0..25,
    )
}

fn infos(repo: &[(Vec<String>, u64)], digests: &[String]) -> Vec<ImageInfo<'static>> {
    // Leaked for the test's lifetime: small, and keeps the borrows simple.
    repo.iter()
        .zip(digests)
        .map(|((tags, at), d)| ImageInfo {
            digest: Box::leak(d.clone().into_boxed_str()),
            tags: Box::leak(tags.clone().into_boxed_slice()),
            pushed_at_ms: NOW - at,
        })
        .collect()
}

proptest! {
    #[test]
    fn generated_policies_pass_the_checks(p in policy()) {
        let text = p.to_json_text();
        let parsed = parse_lifecycle_policy("p.json", &text);
        prop_assert!(parsed.is_ok(), "{text}: {:?}", parsed.err().map(|e| e.to_string()));
    }

    #[test]
    fn evaluation_is_exclusive_keeps_counts_and_a_run_leaves_nothing_to_preview(
        p in policy(),
        repo in repo(),
        shuffle in any::<u64>(),
    ) {
        let digests: Vec<String> = (0..repo.len()).map(|i| format!("sha256:{i:04}")).collect();
        let images = infos(&repo, &digests);
        let preview = evaluate(&p, &images, NOW);
        // Each image is expired at most once.
        let by_digest: BTreeMap<&str, u32> =
            preview.iter().map(|e| (e.digest.as_str(), e.rule_priority)).collect();
        prop_assert_eq!(by_digest.len(), preview.len());
        // The listing order does not matter.
        let mut shuffled = images.clone();
        let n = shuffled.len().max(1);
        shuffled.rotate_left((shuffle as usize) % n);
        shuffled.reverse();
        prop_assert_eq!(&evaluate(&p, &shuffled, NOW), &preview);
        let mut rules = p.rules.clone();
        rules.sort_by_key(|r| r.rule_priority);
        for (k, rule) in rules.iter().enumerate() {
            let mut selected: Vec<&ImageInfo<'_>> =
                images.iter().filter(|i| selects(&rule.selection, i.tags)).collect();
            selected.sort_by(|a, b| b.pushed_at_ms.cmp(&a.pushed_at_ms).then(a.digest.cmp(b.digest)));
            for (rank, image) in selected.iter().enumerate() {
                let Some(&by) = by_digest.get(image.digest) else { continue };
                // Priority exclusivity: a selected image is only expired by
                // this rule or a higher-priority one.
                prop_assert!(by <= rule.rule_priority);
                if by == rule.rule_priority {
                    // ...and never one a higher-priority rule selected.
                    prop_assert!(!rules[..k].iter().any(|r| selects(&r.selection, image.tags)));
                    match rule.selection.count_type {
                        CountType::ImageCountMoreThan => {
                            prop_assert!(rank >= rule.selection.count_number as usize)
                        }
                        CountType::SinceImagePushed => prop_assert!(
                            NOW - image.pushed_at_ms > u64::from(rule.selection.count_number) * DAY_MS
                        ),
                    }
                }
            }
        }
        // A run deletes exactly the preview; afterwards nothing is left to
        // expire at the same instant (a run never deletes what a preview
        // would not have shown).
        let kept: Vec<ImageInfo<'_>> =
            images.iter().copied().filter(|i| !by_digest.contains_key(i.digest)).collect();
        prop_assert_eq!(evaluate(&p, &kept, NOW), Vec::new());
    }

    #[test]
    fn hostile_policy_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_lifecycle_policy("p.json", &text);
    }
}
