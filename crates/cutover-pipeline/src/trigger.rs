//! Whether a git event starts a pipeline, per its V2 triggers.
//!
//! Semantics follow CodePipeline: the filters of a trigger's `push` (or
//! `pullRequest`) list are alternatives, any one matching is enough. Within a
//! filter every criterion present must match: `tags` for a tag push,
//! `branches` for a branch push (a push filter has one or the other), and
//! `filePaths` when given (at least one changed file included and not
//! excluded). In each criterion `excludes` win over `includes`, and empty
//! `includes` select everything. Patterns are [`crate::glob`] globs; a
//! pattern that does not compile matches nothing (validation rejects it
//! beforehand).

use crate::glob::Glob;
use crate::model::{GlobFilter, PullRequestEventType, Trigger};

/// A push to a repository: to a branch, or of a tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushEvent {
    /// The branch pushed to (`None` for a tag push).
    pub branch: Option<String>,
    /// The tag pushed (`None` for a branch push).
    pub tag: Option<String>,
    /// Paths of the files the push changed, relative to the repository root.
    pub changed_files: Vec<String>,
}

/// A pull request event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// Opened, updated or closed.
    pub event: PullRequestEventType,
    /// The branch the pull request merges into.
    pub destination_branch: String,
    /// Paths of the files the pull request changes.
    pub changed_files: Vec<String>,
}

/// Whether `event` starts the pipeline through `trigger`'s push filters.
pub fn trigger_matches(trigger: &Trigger, event: &PushEvent) -> bool {
    trigger.git_configuration.push.iter().any(|filter| {
        let name_ok = match (&event.tag, &event.branch) {
            (Some(tag), _) => filter.tags.as_ref().is_some_and(|f| selects(f, tag)),
            (None, Some(branch)) => filter.branches.as_ref().is_some_and(|f| selects(f, branch)),
            (None, None) => false,
        };
        name_ok && files_ok(filter.file_paths.as_ref(), &event.changed_files)
    })
}

/// Whether `event` starts the pipeline through `trigger`'s pull request filters.
pub fn pull_request_matches(trigger: &Trigger, event: &PullRequestEvent) -> bool {
    trigger.git_configuration.pull_request.iter().any(|filter| {
        (filter.events.is_empty() || filter.events.contains(&event.event))
            && filter
                .branches
                .as_ref()
                .is_none_or(|f| selects(f, &event.destination_branch))
            && files_ok(filter.file_paths.as_ref(), &event.changed_files)
    })
}

/// Whether `name` is included and not excluded.
pub fn selects(filter: &GlobFilter, name: &str) -> bool {
    let any = |patterns: &[String]| {
        patterns
            .iter()
            .any(|p| Glob::new(p).is_ok_and(|g| g.matches(name)))
    };
    (filter.includes.is_empty() || any(&filter.includes)) && !any(&filter.excludes)
}

fn files_ok(filter: Option<&GlobFilter>, files: &[String]) -> bool {
    filter.is_none_or(|f| files.iter().any(|file| selects(f, file)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GitConfiguration, GitPullRequestFilter, GitPushFilter};

    fn globs(includes: &[&str], excludes: &[&str]) -> Option<GlobFilter> {
        Some(GlobFilter {
            includes: includes.iter().map(|s| s.to_string()).collect(),
            excludes: excludes.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn trigger(push: Vec<GitPushFilter>, pull_request: Vec<GitPullRequestFilter>) -> Trigger {
        Trigger {
            provider_type: "CodeStarSourceConnection".into(),
            git_configuration: GitConfiguration {
                source_action_name: "Source".into(),
                push,
                pull_request,
            },
        }
    }

    fn branch(name: &str, files: &[&str]) -> PushEvent {
        PushEvent {
            branch: Some(name.into()),
            tag: None,
            changed_files: files.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn tag(name: &str) -> PushEvent {
        PushEvent {
            branch: None,
            tag: Some(name.into()),
            changed_files: vec![],
        }
    }

    #[test]
    fn branches_and_file_paths() {
        let t = trigger(
            vec![GitPushFilter {
                branches: globs(&["main", "release/**"], &["release/old*"]),
                file_paths: globs(&["src/**"], &["src/**/*.md"]),
                ..Default::default()
            }],
            vec![],
        );
        assert!(trigger_matches(&t, &branch("main", &["src/a.rs"])));
        assert!(trigger_matches(&t, &branch("release/1/x", &["src/a/b.rs"])));
        assert!(!trigger_matches(
            &t,
            &branch("release/old-1", &["src/a.rs"])
        ));
        assert!(!trigger_matches(&t, &branch("dev", &["src/a.rs"])));
        // Only excluded or unrelated files changed.
        assert!(!trigger_matches(&t, &branch("main", &["src/doc/x.md"])));
        assert!(!trigger_matches(&t, &branch("main", &["README.md"])));
        assert!(trigger_matches(
            &t,
            &branch("main", &["README.md", "src/lib.rs"])
        ));
        // A tag push does not match a branch filter.
        assert!(!trigger_matches(&t, &tag("main")));
    }

    #[test]
    fn tags_and_alternatives() {
        let t = trigger(
            vec![
                GitPushFilter {
                    branches: globs(&["main"], &[]),
                    ..Default::default()
                },
                GitPushFilter {
                    tags: globs(&["v*"], &["v*-rc*"]),
                    ..Default::default()
                },
            ],
            vec![],
        );
        assert!(trigger_matches(&t, &tag("v1.2.0")));
        assert!(!trigger_matches(&t, &tag("v1.2.0-rc1")));
        assert!(!trigger_matches(&t, &tag("release")));
        assert!(trigger_matches(&t, &branch("main", &[])));
        // Excludes only: everything else is included.
        let t = trigger(
            vec![GitPushFilter {
                branches: globs(&[], &["wip/*"]),
                ..Default::default()
            }],
            vec![],
        );
        assert!(trigger_matches(&t, &branch("feature", &[])));
        assert!(!trigger_matches(&t, &branch("wip/x", &[])));
    }

    #[test]
    fn pull_requests() {
        let t = trigger(
            vec![],
            vec![GitPullRequestFilter {
                events: vec![PullRequestEventType::Open, PullRequestEventType::Updated],
                branches: globs(&["main"], &[]),
                file_paths: None,
            }],
        );
        let pr = |event, dest: &str| PullRequestEvent {
            event,
            destination_branch: dest.into(),
            changed_files: vec!["a".into()],
        };
        assert!(pull_request_matches(
            &t,
            &pr(PullRequestEventType::Open, "main")
        ));
        assert!(!pull_request_matches(
            &t,
            &pr(PullRequestEventType::Closed, "main")
        ));
        assert!(!pull_request_matches(
            &t,
            &pr(PullRequestEventType::Updated, "dev")
        ));
        assert!(!trigger_matches(&t, &branch("main", &[])));
    }
}
