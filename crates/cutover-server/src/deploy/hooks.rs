//! Running lifecycle hooks.
//!
//! - A command runs with the deployment's context in its environment
//!   (`CUTOVER_DEPLOYMENT_ID`, `CUTOVER_LIFECYCLE_EVENT`,
//!   `CUTOVER_HOOK_EXECUTION_ID`, `CUTOVER_SERVICE`, `CUTOVER_PROD_URL`,
//!   `CUTOVER_TEST_URL`) and AWS's (`AWS_ENDPOINT_URL`, the region, and a
//!   short-lived access key of its own, deleted when it ends), so `aws ...`
//!   inside it reaches this server; exit code 0 succeeds, anything else
//!   fails with the tail of its output.
//! - An ECS-native HTTP hook is POSTed `{deploymentId,
//!   lifecycleEventHookExecutionId, lifecycleStage, hookDetails}` and answers
//!   `{hookStatus: SUCCEEDED|FAILED|IN_PROGRESS, callBackDelay?, hookDetails?}`.
//! - A CodeDeploy-protocol hook is POSTed `{DeploymentId,
//!   LifecycleEventHookExecutionId}` and reports later through
//!   `PUT /v1/deployments/{id}/lifecycle-hooks/{executionId}`; its invocation
//!   only fails if the endpoint refuses it.
//!
//! Every hook may run twice after a control-plane restart; hooks must be
//! idempotent, as CodeDeploy's Lambda hooks must be.

use super::spec::HookTarget;
use cutover_deploy::bluegreen::HookOutcome;
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::time::Duration;

/// What the hook sees of its deployment.
pub(crate) struct HookContext {
    pub(crate) deployment_id: String,
    pub(crate) service: String,
    pub(crate) event: String,
    pub(crate) execution_id: String,
    pub(crate) details: Option<String>,
    pub(crate) prod_url: Option<String>,
    pub(crate) test_url: Option<String>,
    pub(crate) timeout: Duration,
    /// AWS's endpoint and a key of the hook's own, for a command.
    pub(crate) aws: Option<crate::aws::AwsEnv>,
}

/// Runs one invocation. `None` means the result comes later by callback.
pub(crate) async fn invoke(target: &HookTarget, ctx: &HookContext) -> Option<HookOutcome> {
    match target {
        HookTarget::Command(argv) => Some(command(argv, ctx).await),
        HookTarget::Ecs(url) => Some(ecs(url, ctx).await),
        HookTarget::CodeDeploy(url) => codedeploy(url, ctx).await,
    }
}

fn failed(reason: impl Into<String>) -> HookOutcome {
    HookOutcome::Failed {
        reason: reason.into(),
    }
}

async fn command(argv: &[String], ctx: &HookContext) -> HookOutcome {
    let Some((prog, args)) = argv.split_first() else {
        return failed("hook command is empty");
    };
    let mut cmd = tokio::process::Command::new(prog);
    // An explicit environment: the server's own may hold its API token.
    cmd.args(args)
        .env_clear()
        .envs(cutover_build::process::base_env())
        .env("CUTOVER_DEPLOYMENT_ID", &ctx.deployment_id)
        .env("CUTOVER_LIFECYCLE_EVENT", &ctx.event)
        .env("CUTOVER_HOOK_EXECUTION_ID", &ctx.execution_id)
        .env("CUTOVER_SERVICE", &ctx.service)
        .env("CUTOVER_PROD_URL", ctx.prod_url.as_deref().unwrap_or(""))
        .env("CUTOVER_TEST_URL", ctx.test_url.as_deref().unwrap_or(""))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(d) = &ctx.details {
        cmd.env("CUTOVER_HOOK_DETAILS", d);
    }
    if let Some(aws) = &ctx.aws {
        cmd.envs(aws.vars());
    }
    match tokio::time::timeout(ctx.timeout, cmd.output()).await {
        Err(_) => failed(format!(
            "hook command timed out after {} s",
            ctx.timeout.as_secs()
        )),
        Ok(Err(e)) => failed(format!("cannot run hook command {prog:?}: {e}")),
        Ok(Ok(out)) if out.status.success() => HookOutcome::Succeeded,
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            let tail: String = text
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<String>()
                .chars()
                .rev()
                .collect();
            failed(format!(
                "hook command exited with {}{}",
                out.status
                    .code()
                    .map_or("a signal".to_string(), |c| format!("code {c}")),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ))
        }
    }
}

fn client(timeout: Duration) -> Result<reqwest::Client, HookOutcome> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout.min(Duration::from_secs(60)))
        .build()
        .map_err(|e| failed(format!("cannot build an HTTP client: {e}")))
}

async fn ecs(url: &str, ctx: &HookContext) -> HookOutcome {
    let c = match client(ctx.timeout) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let body = json!({
        "deploymentId": ctx.deployment_id,
        "lifecycleEventHookExecutionId": ctx.execution_id,
        "lifecycleStage": ctx.event,
        "serviceName": ctx.service,
        "hookDetails": ctx.details,
    });
    let resp = match c.post(url).json(&body).send().await {
        Ok(r) => r,
        Err(e) => return failed(format!("hook {url} did not answer: {e}")),
    };
    let status = resp.status();
    if !status.is_success() {
        return failed(format!("hook {url} answered {status}"));
    }
    let v: Value = match resp.json().await {
        Ok(v) => v,
        Err(e) => {
            return failed(format!(
                "hook {url} answered something that is not JSON: {e}"
            ));
        }
    };
    parse_ecs_answer(&v)
}

/// An ECS-native hook's answer (ECS's lifecycle hook protocol).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcsHookAnswer {
    hook_status: EcsHookStatus,
    #[serde(default)]
    call_back_delay: Option<u64>,
    /// Opaque to Cutover: handed back to the hook's next invocation.
    #[serde(default)]
    hook_details: Option<Value>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum EcsHookStatus {
    Succeeded,
    Failed,
    InProgress,
}

/// Reads an ECS-native hook answer.
pub(crate) fn parse_ecs_answer(v: &Value) -> HookOutcome {
    let answer = match EcsHookAnswer::deserialize(v) {
        Ok(a) => a,
        Err(e) => {
            return failed(format!(
                "hook answered {e}; expected hookStatus SUCCEEDED, FAILED or IN_PROGRESS"
            ));
        }
    };
    let details = answer
        .hook_details
        .filter(|d| !d.is_null())
        .map(|d| match d {
            Value::String(s) => s,
            other => other.to_string(),
        });
    match answer.hook_status {
        EcsHookStatus::Succeeded => HookOutcome::Succeeded,
        EcsHookStatus::Failed => failed(details.unwrap_or_else(|| "hook reported FAILED".into())),
        EcsHookStatus::InProgress => HookOutcome::InProgress {
            callback_delay_ms: answer.call_back_delay.map(|s| s * 1000),
            details,
        },
    }
}

async fn codedeploy(url: &str, ctx: &HookContext) -> Option<HookOutcome> {
    let c = match client(ctx.timeout) {
        Ok(c) => c,
        Err(o) => return Some(o),
    };
    let body = json!({
        "DeploymentId": ctx.deployment_id,
        "LifecycleEventHookExecutionId": ctx.execution_id,
    });
    match c.post(url).json(&body).send().await {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(failed(format!(
            "hook {url} refused the invocation: {}",
            r.status()
        ))),
        Err(e) => Some(failed(format!("hook {url} did not answer: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> HookContext {
        HookContext {
            deployment_id: "d1".into(),
            service: "web".into(),
            event: "AfterAllowTestTraffic".into(),
            execution_id: "d1:AfterAllowTestTraffic:1".into(),
            details: None,
            prod_url: Some("http://127.0.0.1:1".into()),
            test_url: Some("http://127.0.0.1:2".into()),
            timeout: Duration::from_secs(5),
            aws: None,
        }
    }

    #[tokio::test]
    async fn commands_see_the_context_and_their_exit_code_decides() {
        let ok = HookTarget::Command(vec![
            "sh".into(),
            "-c".into(),
            r#"test "$CUTOVER_TEST_URL" = http://127.0.0.1:2 && test "$CUTOVER_LIFECYCLE_EVENT" = AfterAllowTestTraffic"#.into(),
        ]);
        assert_eq!(invoke(&ok, &ctx()).await, Some(HookOutcome::Succeeded));
        let bad = HookTarget::Command(vec![
            "sh".into(),
            "-c".into(),
            "echo broken >&2; exit 3".into(),
        ]);
        assert_eq!(
            invoke(&bad, &ctx()).await,
            Some(failed("hook command exited with code 3: broken"))
        );
    }

    #[tokio::test]
    async fn commands_do_not_inherit_the_servers_environment() {
        // cargo sets this in the test process, as CUTOVER_TOKEN would be set
        // in a server's: a hook must not see it.
        assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
        let hook = HookTarget::Command(vec![
            "sh".into(),
            "-c".into(),
            r#"test -z "$CARGO_MANIFEST_DIR" && test -n "$PATH" && test -n "$CUTOVER_SERVICE""#
                .into(),
        ]);
        assert_eq!(invoke(&hook, &ctx()).await, Some(HookOutcome::Succeeded));
    }

    #[tokio::test]
    async fn a_slow_command_times_out() {
        let mut c = ctx();
        c.timeout = Duration::from_millis(200);
        let slow = HookTarget::Command(vec!["sleep".into(), "5".into()]);
        let out = invoke(&slow, &c).await;
        assert!(
            matches!(out, Some(HookOutcome::Failed { ref reason }) if reason.contains("timed out")),
            "{out:?}"
        );
    }

    #[test]
    fn ecs_answers_map_to_outcomes() {
        assert_eq!(
            parse_ecs_answer(&json!({"hookStatus": "SUCCEEDED"})),
            HookOutcome::Succeeded
        );
        assert_eq!(
            parse_ecs_answer(
                &json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 5, "hookDetails": {"step": 2}})
            ),
            HookOutcome::InProgress {
                callback_delay_ms: Some(5_000),
                details: Some("{\"step\":2}".into())
            }
        );
        assert!(matches!(
            parse_ecs_answer(&json!({"hookStatus": "maybe"})),
            HookOutcome::Failed { .. }
        ));
    }
}
