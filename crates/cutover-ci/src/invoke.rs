//! Invoke actions (`Lambda` provider) in Cutover. `FunctionName` is looked
//! up in the `functions:` of the stack that declares the pipeline
//! ([`cutover_spec::stack::functions::lookup`], by name or by an ARN's
//! function name). A mapped function runs its entry: a `command` (argv,
//! no shell) or a `url` (its `protocol` does not apply here). An unmapped
//! value keeps its meaning of before `functions:` existed: a URL
//! (`http://` or `https://`) or a shell command (run with `sh -c`). A URL
//! is called with POST and `UserParameters` as the body (a 2xx answer
//! succeeds); a command gets `USER_PARAMETERS` in its environment (exit
//! status 0 succeeds). Stopping the execution with abandon cancels the call
//! or kills the command.
//!
//! A command does not inherit the server's environment (it holds
//! `CUTOVER_TOKEN` and perhaps cloud credentials): it gets
//! [`cutover_build::process::base_env`] (`PATH`, `HOME`, `USER`, `LOGNAME`,
//! `LANG`, `LC_*`, `TZ`, `TMPDIR`) and `USER_PARAMETERS`, nothing else.

use std::collections::BTreeMap;
use std::process::Stdio;

use cutover_pipeline::engine::ActionRequest;
use cutover_spec::stack::{HookSpec, HookTarget, functions};
use tokio_util::sync::CancellationToken;

/// Longest output kept in a failure message.
const MAX_OUTPUT: usize = 2000;

/// Runs an invoke action, `functions` being those of the pipeline's stack;
/// `Ok` is its summary.
pub(crate) async fn invoke(
    req: &ActionRequest,
    functions: &BTreeMap<String, HookSpec>,
    cancel: CancellationToken,
) -> Result<String, String> {
    let function = req
        .configuration
        .get("FunctionName")
        .ok_or("configuration.FunctionName is missing")?;
    let params = req
        .configuration
        .get("UserParameters")
        .cloned()
        .unwrap_or_default();
    let (url, argv) = match functions::lookup(function, functions).map(HookSpec::target) {
        Some(HookTarget::Url { url, .. }) => (Some(url), Vec::new()),
        Some(HookTarget::Command(argv)) => (None, argv.to_vec()),
        None if function.starts_with("http://") || function.starts_with("https://") => {
            (Some(function.as_str()), Vec::new())
        }
        None => (None, vec!["sh".into(), "-c".into(), function.clone()]),
    };
    if let Some(target) = url {
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
        let target = function;
        let (program, args) = argv
            .split_first()
            .ok_or("the function's command is empty")?;
        let child = tokio::process::Command::new(program)
            .args(args)
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
            &BTreeMap::new(),
            CancellationToken::new(),
        )
        .await;
        assert!(ok.is_ok(), "{ok:?}");
        let err = invoke(
            &req("echo broken >&2; exit 3", ""),
            &BTreeMap::new(),
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
        let err = invoke(
            &req(listed, "p"),
            &BTreeMap::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.ends_with("exit status: 1: "), "leaked: {err}");
    }

    #[tokio::test]
    async fn a_mapped_function_runs_its_command_without_a_shell() {
        let functions = BTreeMap::from([(
            "Notify".to_string(),
            HookSpec {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "test \"$USER_PARAMETERS\" = hi".into(),
                ],
                ..HookSpec::default()
            },
        )]);
        let arn = "arn:aws:lambda:us-east-1:111122223333:function:Notify";
        for name in ["Notify", arn] {
            let ok = invoke(&req(name, "hi"), &functions, CancellationToken::new()).await;
            assert_eq!(ok, Ok(format!("{name:?} exited 0")));
        }
        // Unmapped, a name is still a shell command: `Other` is not found.
        let err = invoke(&req("Other", ""), &functions, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.contains("exit status: 127"), "{err}");
    }

    #[tokio::test]
    async fn a_stopped_command_fails() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = invoke(&req("sleep 30", ""), &BTreeMap::new(), cancel)
            .await
            .unwrap_err();
        assert!(err.ends_with("stopped"), "{err}");
    }
}
