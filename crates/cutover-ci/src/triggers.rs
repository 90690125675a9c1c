//! From git pushes to executions: polling and webhooks.
//!
//! A pipeline watches each repository its source actions name, on the
//! action's `BranchName`. When it declares V2 `triggers` for a source action
//! those decide instead (branches, tags and file paths, through
//! `cutover_pipeline::trigger_matches`).
//!
//! - Polling: every second the poller looks at the repositories whose
//!   `pollIntervalSeconds` (default 60, 0 = never) has passed, fetches them
//!   and compares each watched branch head with the last one recorded. A
//!   new head starts the pipelines that watch the branch (trigger `poll`),
//!   with the changed files from `git diff` for file-path filters. The first
//!   head seen is only recorded: a pipeline runs once when it is created
//!   (whose source action records the head it built when none is), then
//!   on the commits after. A source action with `PollForSourceChanges:
//!   false` is not polled.
//! - Tags are polled too, for a source action with a V2 trigger that has a
//!   `tags` filter: every tag of the repository is compared with the commit
//!   last recorded for it (key `tag:NAME`); a new tag, or one moved to
//!   another commit, starts the pipelines whose filters match it. The tags
//!   seen at the first tag poll of a repository are only recorded (the
//!   baseline, marked by the key [`TAGS_BASELINE`]).
//! - Webhooks: a verified push fetches the repository at once and starts
//!   the matching pipelines (trigger `webhook`) on the commit the pushed ref
//!   points at after the fetch, not on the payload's `after`; a ref still at
//!   its recorded head starts nothing (see `Pipelines::webhook_push`). The
//!   head is recorded so the poller does not start them again (for a tag,
//!   under the same `tag:NAME` key).
//!
//! A new head (or tag) is recorded as acted on only in the transaction
//! that saves an execution it started, or at once when it starts no
//! pipeline; when every start fails it stays unrecorded, and the next poll
//! or delivery tries again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_pipeline::catalog;
use cutover_pipeline::model::Pipeline;
use cutover_pipeline::{PushEvent, trigger_matches};
use cutover_store::pipeline_ops;

use crate::Pipelines;
use crate::config::RepositorySpec;
use crate::driver::Head;

/// A source action that watches a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    /// Pipeline name.
    pub(crate) pipeline: String,
    /// Source action name.
    pub(crate) action: String,
    /// `BranchName` (`Branch` for a GitHub version 1 source).
    pub(crate) branch: String,
    /// Whether polling applies (`PollForSourceChanges` is not `false`).
    pub(crate) poll: bool,
}

/// The source actions of `pipeline` that read `repository`.
pub(crate) fn watches(pipeline: &Pipeline, repository: &str) -> Vec<Watch> {
    let Some(first) = pipeline.stages.first() else {
        return Vec::new();
    };
    first
        .actions
        .iter()
        .filter_map(|a| {
            let spec = catalog::lookup(&a.action_type_id.category, &a.action_type_id.provider)?;
            let (_, name) = catalog::source_repository(spec.kind, &a.configuration)?;
            (name == repository).then(|| Watch {
                pipeline: pipeline.name.clone(),
                action: a.name.clone(),
                branch: catalog::source_branch(spec.kind, &a.configuration)
                    .unwrap_or_default()
                    .to_owned(),
                poll: a
                    .configuration
                    .get("PollForSourceChanges")
                    .is_none_or(|v| !v.eq_ignore_ascii_case("false")),
            })
        })
        .collect()
}

/// The `repository_heads` key marking that a repository's tags were
/// recorded once (their baseline); not a valid branch name.
pub(crate) const TAGS_BASELINE: &str = "tags:baseline";

/// Whether a trigger of `pipeline` on the source action of `watch` filters
/// tags (so the poller must look at tags).
pub(crate) fn watches_tags(pipeline: &Pipeline, watch: &Watch) -> bool {
    pipeline
        .triggers
        .iter()
        .filter(|t| t.git_configuration.source_action_name == watch.action)
        .flat_map(|t| &t.git_configuration.push)
        .any(|f| f.tags.is_some())
}

/// Whether `event` starts `pipeline` through the source action of `watch`.
pub(crate) fn starts(pipeline: &Pipeline, watch: &Watch, event: &PushEvent) -> bool {
    let triggers: Vec<_> = pipeline
        .triggers
        .iter()
        .filter(|t| t.git_configuration.source_action_name == watch.action)
        .collect();
    if triggers.is_empty() {
        event.tag.is_none() && event.branch.as_deref() == Some(watch.branch.as_str())
    } else {
        triggers.iter().any(|t| trigger_matches(t, event))
    }
}

async fn pipelines(me: &Pipelines) -> Vec<Pipeline> {
    match me.store.call(pipeline_ops::list_pipelines).await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.definition).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list pipelines");
            Vec::new()
        }
    }
}

/// Records `head` as acted on (a baseline, or a push that starts nothing).
async fn record(me: &Pipelines, head: &Head) -> Result<(), cutover_store::StoreError> {
    let (h, now) = (head.clone(), me.clock.now_ms());
    me.store
        .call(move |c| pipeline_ops::set_repository_head(c, &h.repository, &h.key, &h.commit, now))
        .await
}

/// Starts the pipelines `event` (a push to `head`'s repository, now at
/// `head`'s commit) triggers; returns `(pipeline, execution id)` of each
/// started. `head` is recorded by the transaction of each start, or here
/// when no pipeline matches; `Err` when some matched and none started
/// (the head is then left unrecorded). Called with `heads` held.
pub(crate) async fn push(
    me: &Pipelines,
    event: &PushEvent,
    head: &Head,
    trigger: &str,
) -> Result<Vec<(String, String)>, ()> {
    let (repository, commit) = (head.repository.as_str(), head.commit.as_str());
    let mut started = Vec::new();
    let mut matched = 0;
    for p in pipelines(me).await {
        for w in watches(&p, repository) {
            if !starts(&p, &w, event) {
                continue;
            }
            matched += 1;
            let what = match (&event.branch, &event.tag) {
                (_, Some(tag)) => format!("tag {tag}"),
                (Some(b), None) => format!("branch {b}"),
                (None, None) => "a push".to_string(),
            };
            let text = format!(
                "{trigger}: {} on {what} of {repository}",
                &commit[..commit.len().min(12)]
            );
            let revisions = BTreeMap::from([(w.action.clone(), commit.to_string())]);
            match me
                .start_recording(
                    &p.name,
                    text,
                    BTreeMap::new(),
                    revisions,
                    Some(head.clone()),
                )
                .await
            {
                Ok(id) => {
                    tracing::info!(pipeline = %p.name, execution = %id, repository, commit, trigger, "pipeline execution started");
                    started.push((p.name.clone(), id));
                }
                Err(e) => {
                    tracing::warn!(pipeline = %p.name, error = %e, repository, commit, "cannot start an execution")
                }
            }
        }
    }
    if matched == 0 {
        if let Err(e) = record(me, head).await {
            tracing::warn!(repository, commit, error = %e, "cannot record a head");
            return Err(());
        }
    } else if started.is_empty() {
        return Err(());
    }
    Ok(started)
}

/// The poller: runs until shutdown.
pub(crate) async fn poll(me: Arc<Pipelines>) {
    let mut last: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = me.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let repos = match me.store.call(pipeline_ops::list_repositories).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list repositories");
                continue;
            }
        };
        let all = pipelines(&me).await;
        for row in repos {
            let spec = row.spec;
            if spec.poll_interval_seconds == 0 {
                continue;
            }
            let due = last
                .get(&row.name)
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(spec.poll_interval_seconds));
            let watched: Vec<(Pipeline, Watch)> = all
                .iter()
                .flat_map(|p| {
                    watches(p, &row.name)
                        .into_iter()
                        .map(move |w| (p.clone(), w))
                })
                .filter(|(_, w)| w.poll)
                .collect();
            if !due || watched.is_empty() {
                continue;
            }
            last.insert(row.name.clone(), Instant::now());
            if let Err(e) = poll_repository(&me, &row.name, &spec, &watched).await {
                tracing::warn!(repository = %row.name, error = %e, "polling failed");
            }
        }
    }
}

/// The head recorded for `key` of `repository`.
async fn recorded(
    me: &Pipelines,
    repository: &str,
    key: &str,
) -> Result<Option<String>, cutover_store::StoreError> {
    let (repository, key) = (repository.to_string(), key.to_string());
    me.store
        .call(move |c| pipeline_ops::repository_head(c, &repository, &key))
        .await
}

async fn poll_repository(
    me: &Pipelines,
    repository: &str,
    spec: &RepositorySpec,
    watched: &[(Pipeline, Watch)],
) -> anyhow::Result<()> {
    me.git.fetch(repository, &spec.url).await?;
    let mut branches: Vec<&str> = watched.iter().map(|(_, w)| w.branch.as_str()).collect();
    branches.sort();
    branches.dedup();
    for branch in branches {
        let Ok(commit) = me
            .git
            .resolve(repository, &format!("refs/heads/{branch}"))
            .await
        else {
            continue;
        };
        let head = Head {
            repository: repository.to_string(),
            key: branch.to_string(),
            commit,
        };
        let _held = me.heads.lock().await;
        let before = recorded(me, repository, branch).await?;
        if before.as_deref() == Some(head.commit.as_str()) {
            continue;
        }
        let Some(before) = before else {
            record(me, &head).await?;
            tracing::info!(repository, branch, commit = %head.commit, "first head recorded");
            continue;
        };
        let changed = me
            .git
            .changed_files(repository, &before, &head.commit)
            .await?;
        let event = PushEvent {
            branch: Some(branch.to_string()),
            tag: None,
            changed_files: changed,
        };
        if push(me, &event, &head, "poll").await.is_err() {
            tracing::warn!(repository, branch, commit = %head.commit, "no execution started; the next poll tries again");
        }
    }
    if watched.iter().any(|(p, w)| watches_tags(p, w)) {
        poll_tags(me, repository).await?;
    }
    Ok(())
}

/// Starts the pipelines a new or moved tag of `repository` triggers; at the
/// first tag poll of the repository, only records the tags.
async fn poll_tags(me: &Pipelines, repository: &str) -> anyhow::Result<()> {
    let tags = me.git.tags(repository).await?;
    let baseline = recorded(me, repository, TAGS_BASELINE).await?.is_none();
    for (tag, commit) in tags {
        let head = Head {
            repository: repository.to_string(),
            key: format!("tag:{tag}"),
            commit,
        };
        let _held = me.heads.lock().await;
        let before = recorded(me, repository, &head.key).await?;
        if before.as_deref() == Some(head.commit.as_str()) {
            continue;
        }
        if baseline {
            record(me, &head).await?;
            tracing::info!(repository, tag, commit = %head.commit, "tag recorded (baseline)");
            continue;
        }
        tracing::info!(repository, tag, commit = %head.commit, moved_from = ?before, "new tag seen");
        let event = PushEvent {
            branch: None,
            tag: Some(tag.clone()),
            changed_files: Vec::new(),
        };
        if push(me, &event, &head, "poll").await.is_err() {
            tracing::warn!(repository, tag, commit = %head.commit, "no execution started; the next poll tries again");
        }
    }
    if baseline {
        let head = Head {
            repository: repository.to_string(),
            key: TAGS_BASELINE.to_string(),
            commit: String::new(),
        };
        record(me, &head).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(extra: &str) -> Pipeline {
        let text = format!(
            r#"{{"name": "app", "pipelineType": "V2", {extra} "stages": [
             {{"name": "Source", "actions": [{{"name": "Src",
               "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
               "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "S"}}]}}]}},
             {{"name": "Run", "actions": [{{"name": "Run",
               "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
               "configuration": {{"FunctionName": "true"}}}}]}}]}}"#
        );
        cutover_pipeline::parse_pipeline("p.json", &text)
            .unwrap()
            .value
    }

    fn push(branch: Option<&str>, tag: Option<&str>, files: &[&str]) -> PushEvent {
        PushEvent {
            branch: branch.map(str::to_string),
            tag: tag.map(str::to_string),
            changed_files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn without_triggers_the_source_branch_decides() {
        let p = pipeline("");
        let w = watches(&p, "app");
        assert_eq!(w.len(), 1);
        assert!(w[0].poll);
        assert!(watches(&p, "other").is_empty());
        assert!(starts(&p, &w[0], &push(Some("main"), None, &[])));
        assert!(!starts(&p, &w[0], &push(Some("dev"), None, &[])));
        assert!(!starts(&p, &w[0], &push(None, Some("v1"), &[])));
    }

    #[test]
    fn triggers_filter_branches_tags_and_paths() {
        let p = pipeline(
            r#""triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
                "sourceActionName": "Src", "push": [
                  {"branches": {"includes": ["release/*"]}, "filePaths": {"includes": ["src/**"]}},
                  {"tags": {"includes": ["v*"]}}]}}],"#,
        );
        let w = &watches(&p, "app")[0];
        assert!(starts(&p, w, &push(Some("release/1"), None, &["src/a.rs"])));
        assert!(!starts(
            &p,
            w,
            &push(Some("release/1"), None, &["docs/a.md"])
        ));
        assert!(!starts(&p, w, &push(Some("main"), None, &["src/a.rs"])));
        assert!(starts(&p, w, &push(None, Some("v2"), &[])));
        assert!(!starts(&p, w, &push(None, Some("x2"), &[])));
        assert!(watches_tags(&p, w));
        let plain = pipeline("");
        assert!(!watches_tags(&plain, &watches(&plain, "app")[0]));
    }
}
