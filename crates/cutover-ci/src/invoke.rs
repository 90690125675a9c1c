//! Invoke actions (`Lambda` provider) in Cutover: `FunctionName` is a URL
//! (`http://` or `https://`, called with POST and `UserParameters` as the
//! body; a 2xx answer succeeds) or a shell command (run with `sh -c`,
//! `USER_PARAMETERS` in its environment; exit status 0 succeeds). Stopping
//! the execution with abandon cancels the call or kills the command.
//!
//! A command does not inherit the server's environment (it holds
//! `CUTOVER_TOKEN` and perhaps cloud credentials): it gets
//! [`cutover_build::process::base_env`] (`PATH`, `HOME`, `USER`, `LOGNAME`,
//! `LANG`, `LC_*`, `TZ`, `TMPDIR`) and `USER_PARAMETERS`, nothing else.

use std::process::Stdio;

use cutover_pipeline::engine::ActionRequest;
use tokio_util::sync::CancellationToken;

/// Longest output kept in a failure message.
const MAX_OUTPUT: usize = 2000;

/// Runs an invoke action; `Ok` is its summary.
pub(crate) async fn invoke(
    req: &ActionRequest,
    cancel: CancellationToken,
) -> Result<String, String> {
    let target = req
        .configuration
        .get("FunctionName")
        .ok_or("configuration.FunctionName is missing")?;
    let params = req
        .configuration
        .get("UserParameters")
        .cloned()
        .unwrap_or_default();
    if target.starts_with("http://") || target.starts_with("https://") {
        let call = reqwest::Client::new().post(target).body(params).send();
        let resp = tokio::select! {
            r = call => r.map_err(|e| format!("POST {target}: {e}"))?,
            _ = cancel.cancelled() => return Err(format!("POST {target}: stopped")),
        };
        let status = resp.status();
        if status.is_success() {
            Ok(format!("POST {target}: {status}"))
        } else {
            let body = resp.text().await.unwrap_or_default();
            Err(format!("POST {target}: {status}: {}", clip(&body)))
        }
    } else {
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(target)
            .env_clear()
            .envs(cutover_build::process::base_env())
            .env("USER_PARAMETERS", &params)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = tokio::select! {
            o = child => o.map_err(|e| format!("cannot run {target:?}: {e}"))?,
            _ = cancel.cancelled() => return Err(format!("{target:?}: stopped")),
        };
        if out.status.success() {
            Ok(format!("{target:?} exited 0"))
        } else {
            let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
            if text.trim().is_empty() {
                text = String::from_utf8_lossy(&out.stdout).into_owned();
            }
            Err(format!("{target:?} {}: {}", out.status, clip(text.trim())))
        }
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(MAX_OUTPUT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn req(function: &str, params: &str) -> ActionRequest {
        ActionRequest {
            execution: "e".into(),
            stage: "S".into(),
            action: "A".into(),
            attempt: 1,
            category: "Invoke".into(),
            provider: "Lambda".into(),
            configuration: BTreeMap::from([
                ("FunctionName".into(), function.into()),
                ("UserParameters".into(), params.into()),
            ]),
            input_artifacts: Vec::new(),
            output_artifact_names: Vec::new(),
            namespace: None,
            source_revision: None,
            deadline: None,
        }
    }

    #[tokio::test]
    async fn commands_succeed_on_exit_zero_and_see_the_parameters() {
        let ok = invoke(
            &req("test \"$USER_PARAMETERS\" = go", "go"),
            CancellationToken::new(),
        )
        .await;
        assert!(ok.is_ok(), "{ok:?}");
        let err = invoke(
            &req("echo broken >&2; exit 3", ""),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.contains("exit status: 3") && err.ends_with("broken"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn commands_do_not_inherit_the_server_environment() {
        // The test process's environment (CARGO_*, RUST_*, ...) stands for
        // the server's: nothing of it but the allow-list reaches the command.
        let listed = "env | cut -d= -f1 | grep -Ev '^(PATH|HOME|USER|LOGNAME|LANG|LC_.*|TZ|TMPDIR|USER_PARAMETERS|PWD|SHLVL|_)$' >&2; exit 1";
        let err = invoke(&req(listed, "p"), CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.ends_with("exit status: 1: "), "leaked: {err}");
    }

    #[tokio::test]
    async fn a_stopped_command_fails() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = invoke(&req("sleep 30", ""), cancel).await.unwrap_err();
        assert!(err.ends_with("stopped"), "{err}");
    }
}
