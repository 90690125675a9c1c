//! End to end: hostile webhooks against the real binary (issue 14, findings
//! 6 and 14).
//!
//! - A verified push whose `before` is a git option is refused (400) and git
//!   never runs it: the file it names is not created.
//! - An unknown repository gets the same 401, with the same body, as a bad
//!   token for a known one.
//! - The pipeline ran once at its creation, on the head.
//! - The same delivery twice starts one execution.
//! - An old push replayed under a new delivery id starts nothing: the
//!   commit built is what the branch points at after a fetch, never the
//!   payload's `after`.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

fn commit(dir: &Path, file: &str, text: &str) -> String {
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", text]);
    git(dir, &["rev-parse", "HEAD"])
}

fn executions(server: &Server) -> Vec<serde_json::Value> {
    server.json(&["pipelines", "executions", "hooked"])["executions"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn hostile_webhooks_inject_nothing_replay_nothing_and_reveal_nothing() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "dev@example.com"]);
    git(&repo, &["config", "user.name", "Dev"]);
    let old = commit(&repo, "VERSION", "1");
    let head = commit(&repo, "VERSION", "2");
    let built = root.join("built");
    std::fs::write(
        root.join("pipeline.json"),
        format!(
            r##"{{"pipeline": {{"name": "hooked", "pipelineType": "V2", "stages": [
 {{"name": "Source", "actions": [{{"name": "Src", "namespace": "S",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"}},
   "configuration": {{"FullRepositoryId": "me/app", "BranchName": "main", "ConnectionArn": "arn:aws:codeconnections:x"}},
   "outputArtifacts": [{{"name": "Out"}}]}}]}},
 {{"name": "Notify", "actions": [{{"name": "Record",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "echo $USER_PARAMETERS >> {built}", "UserParameters": "#{{S.CommitId}}"}}}}]}}]}}}}"##,
            built = built.display()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  me/app: {{url: {}, pollIntervalSeconds: 0, webhookSecret: s3cret}}\npipelines:\n  hooked: {{file: pipeline.json}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(root));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    // Created, the pipeline runs once on the head.
    wait_until(Duration::from_secs(30), || {
        executions(&server)
            .first()
            .is_some_and(|e| e["status"] == "Succeeded")
    })
    .unwrap_or_else(|| panic!("the first execution never succeeded\n{}", server.log()));
    assert_eq!(std::fs::read_to_string(&built).unwrap().trim(), head);
    let addr = server.addr.to_string();
    let hook = |delivery: &str, body: &str| {
        post(
            &addr,
            "/v1/webhooks/me%2Fapp",
            &[
                ("X-Gitlab-Token", "s3cret"),
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Event-UUID", delivery),
            ],
            body,
        )
    };

    // Git option injection through a signed payload.
    let injected = root.join("x");
    let body = format!(
        r#"{{"ref": "refs/heads/main", "before": "--output={}", "after": "{head}", "commits": []}}"#,
        injected.display()
    );
    let (status, answer) = hook("delivery-0", &body);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("is not a commit id"), "{answer}");
    assert!(!injected.exists(), "git ran the payload's option");
    assert_eq!(executions(&server).len(), 1);

    // An unknown repository looks exactly like a bad token.
    let (bad_status, bad_body) = post(
        &addr,
        "/v1/webhooks/me%2Fapp",
        &[("X-Gitlab-Token", "wrong")],
        "{}",
    );
    let (unknown_status, unknown_body) = post(
        &addr,
        "/v1/webhooks/someone%2Felse",
        &[("X-Gitlab-Token", "s3cret")],
        "{}",
    );
    assert_eq!((bad_status, unknown_status), (401, 401));
    assert_eq!(bad_body, unknown_body);

    // One delivery, sent twice, starts one execution.
    let mid = commit(&repo, "VERSION", "2b");
    let push = format!(
        r#"{{"ref": "refs/heads/main", "before": "{head}", "after": "{mid}", "commits": []}}"#
    );
    let (status, answer) = hook("delivery-1", &push);
    assert_eq!(status, 202, "{answer}\n{}", server.log());
    let (status, answer) = hook("delivery-1", &push);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"duplicate\":true"), "{answer}");
    wait_until(Duration::from_secs(30), || {
        let e = executions(&server);
        e.len() == 2 && e[0]["status"] == "Succeeded"
    })
    .unwrap_or_else(|| panic!("no successful execution\n{}", server.log()));
    assert_eq!(executions(&server).len(), 2);

    // An old push replayed with a new delivery id: the branch is still at
    // `mid`, which was acted on; `old` is not built.
    let replay = format!(
        r#"{{"ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": "{old}", "commits": []}}"#
    );
    let (status, answer) = hook("delivery-2", &replay);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains(&format!("\"commit\":\"{mid}\"")),
        "{answer}"
    );
    assert_eq!(executions(&server).len(), 2);
    let lines = std::fs::read_to_string(&built).unwrap();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        [head.as_str(), mid.as_str()]
    );

    // A real new commit still goes through, on what the branch points at.
    let newer = commit(&repo, "VERSION", "3");
    let (status, answer) = hook("delivery-3", &replay);
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer.contains(&format!("\"commit\":\"{newer}\"")),
        "{answer}"
    );
    wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&built)
            .unwrap_or_default()
            .lines()
            .count()
            == 3
    })
    .unwrap_or_else(|| panic!("the new head was not built\n{}", server.log()));
    let lines = std::fs::read_to_string(&built).unwrap();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        [head.as_str(), mid.as_str(), newer.as_str()]
    );
}
