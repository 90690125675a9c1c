//! Running a lifecycle policy over a repository's images: the one function
//! behind both a preview (GetLifecyclePolicyPreview shows its result) and a
//! run (which deletes exactly its result), so the two cannot disagree.
//!
//! ECR's evaluation rules (LifecyclePolicies.html, "How lifecycle policies
//! work", and the worked examples of lifecycle_policy_examples.html):
//! - rules apply in `rulePriority` order, lowest first;
//! - a rule *selects* the images its `tagStatus` and tag lists match, among
//!   all the repository's images (including images a higher-priority rule
//!   selected or expired: "rules can still identify them as if they haven't
//!   been expired");
//! - `imageCountMoreThan N` picks the selected images beyond the newest N
//!   (by push time); `sinceImagePushed N days` picks those pushed more than
//!   N days before `now`;
//! - a picked image is expired unless a higher-priority rule selected it
//!   ("an image that matches the tagging requirements of a rule cannot be
//!   expired by a rule with a lower priority"), so each image is expired by
//!   at most one rule;
//! - a list of prefixes or patterns matches an image when *every* entry
//!   matches at least one of its tags.
//!
//! No clock: `now_ms` is an argument.

use std::collections::HashSet;

use super::lifecycle::{CountType, LifecyclePolicy, Selection, TagStatus};

/// Milliseconds in a `countUnit: days`.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// An image of the repository, as the evaluation sees it.
#[derive(Debug, Clone, Copy)]
pub struct ImageInfo<'a> {
    /// The manifest digest (`sha256:...`), the image's identity.
    pub digest: &'a str,
    /// Its tags (empty: untagged).
    pub tags: &'a [String],
    /// When it was pushed, in milliseconds since the Unix epoch.
    pub pushed_at_ms: u64,
}

/// An image a policy expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The image's digest.
    pub digest: String,
    /// The `rulePriority` of the rule that expires it (a preview's
    /// `appliedRulePriority`).
    pub rule_priority: u32,
}

/// The images `policy` expires at `now_ms`, by rule priority, oldest first
/// within a rule. A preview shows exactly this and a run deletes exactly
/// this. The policy is expected to be checked (`parse_lifecycle_policy`);
/// an unchecked one still evaluates deterministically.
pub fn evaluate(policy: &LifecyclePolicy, images: &[ImageInfo<'_>], now_ms: u64) -> Vec<Expiry> {
    let mut rules: Vec<_> = policy.rules.iter().collect();
    rules.sort_by_key(|r| r.rule_priority);
    // Newest first; ties by digest, so the result never depends on the
    // order the images were listed in.
    let mut order: Vec<&ImageInfo<'_>> = images.iter().collect();
    order.sort_by(|a, b| {
        b.pushed_at_ms
            .cmp(&a.pushed_at_ms)
            .then_with(|| a.digest.cmp(b.digest))
    });
    // One entry per digest (the newest, should a caller list one twice).
    let mut listed: HashSet<&str> = HashSet::new();
    order.retain(|i| listed.insert(i.digest));
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for rule in rules {
        let selected: Vec<&ImageInfo<'_>> = order
            .iter()
            .copied()
            .filter(|i| selects(&rule.selection, i.tags))
            .collect();
        let n = rule.selection.count_number;
        let picked: Vec<&ImageInfo<'_>> = match rule.selection.count_type {
            CountType::ImageCountMoreThan => selected.iter().copied().skip(n as usize).collect(),
            CountType::SinceImagePushed => {
                let age = u64::from(n).saturating_mul(DAY_MS);
                selected
                    .iter()
                    .copied()
                    .filter(|i| now_ms.saturating_sub(i.pushed_at_ms) > age)
                    .collect()
            }
        };
        // Oldest first within the rule, as ECR expires older images first.
        for image in picked.iter().rev() {
            if !seen.contains(image.digest) {
                out.push(Expiry {
                    digest: image.digest.to_string(),
                    rule_priority: rule.rule_priority,
                });
            }
        }
        seen.extend(selected.iter().map(|i| i.digest));
    }
    out
}

/// Whether a rule's selection matches an image with `tags`.
pub fn selects(selection: &Selection, tags: &[String]) -> bool {
    match selection.tag_status {
        TagStatus::Any => true,
        TagStatus::Untagged => tags.is_empty(),
        TagStatus::Tagged => {
            let every = |list: &[String], matches: fn(&str, &str) -> bool| {
                list.iter()
                    .all(|want| tags.iter().any(|tag| matches(want, tag)))
            };
            match (&selection.tag_prefix_list, &selection.tag_pattern_list) {
                (Some(prefixes), _) if !prefixes.is_empty() => {
                    every(prefixes, |p, t| t.starts_with(p))
                }
                (_, Some(patterns)) if !patterns.is_empty() => every(patterns, wildcard_match),
                // An unchecked tagged rule with no list selects nothing.
                _ => false,
            }
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (possibly empty) and every other character itself. ECR's
/// patterns have only this wildcard, so a glob crate (which also gives
/// `?`, `[` and `{` meanings) would be wrong; greedy with backtracking to
/// the last `*`, linear in practice.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
