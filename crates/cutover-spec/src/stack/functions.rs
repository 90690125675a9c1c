//! `functions:` of a stack.yaml, and the one place where a value that names
//! a Lambda function (an appspec hook, an invoke action's `FunctionName`)
//! becomes something Cutover runs.
//!
//! ```yaml
//! functions:
//!   CodeDeployHook_BeforeTraffic: {command: [./smoke.sh], timeoutSeconds: 60}
//!   CheckGreen: {url: "http://127.0.0.1:9000/hook", protocol: codedeploy}
//! ```
//!
//! Each entry has the shape of a deployment hook ([`HookSpec`]). A key is
//! a Lambda function name (1 to 64 letters, digits, hyphens and
//! underscores) or a function ARN. A value is looked up by itself, then, if
//! it is an ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`),
//! by its function name. What a value that no entry maps is, by
//! [`FunctionRef::classify`]:
//!
//! - an `http://` or `https://` URL: called as it is;
//! - a Lambda function name or ARN: for an appspec hook, an error at accept
//!   time saying how to map it (AWS would call a function Cutover cannot
//!   run); an invoke action keeps running it with `sh -c`, as before;
//! - anything else (a space, a `/`, a `;`: no Lambda name has those) is a
//!   shell command, run with `sh -c` for backward compatibility, with a
//!   warning suggesting `functions:`.

use std::collections::BTreeMap;

use super::HookSpec;
use crate::appspec::{AppSpec, LifecycleEvent};
use crate::check::{is_aws_name, suggest};
use crate::diag::{Parsed, SourceMap, SpecError};
use crate::doc::quote;

/// The longest Lambda function name.
pub const MAX_FUNCTION_NAME: usize = 64;

/// What an unmapped function value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionRef<'a> {
    /// An HTTP(S) URL.
    Url(&'a str),
    /// A Lambda function, by name (taken out of an ARN where one was given).
    Function(&'a str),
    /// Neither: a shell command.
    Shell(&'a str),
}

impl<'a> FunctionRef<'a> {
    /// Classifies `value`; `Err` for an `arn:` value that is no Lambda
    /// function ARN.
    pub fn classify(value: &'a str) -> Result<FunctionRef<'a>, String> {
        if value.starts_with("http://") || value.starts_with("https://") {
            Ok(FunctionRef::Url(value))
        } else if value.starts_with("arn:") {
            function_of_arn(value).map(FunctionRef::Function)
        } else if is_aws_name(value, MAX_FUNCTION_NAME) {
            Ok(FunctionRef::Function(value))
        } else {
            Ok(FunctionRef::Shell(value))
        }
    }
}

/// The function name of `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
pub fn function_of_arn(arn: &str) -> Result<&str, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, rest @ ..]
            if rest.len() <= 1 && is_aws_name(name, MAX_FUNCTION_NAME) =>
        {
            Ok(name)
        }
        _ => Err(format!(
            "expected a Lambda function ARN like arn:aws:lambda:REGION:ACCOUNT:function:NAME, found {}",
            quote(arn)
        )),
    }
}

/// Whether `key` may name an entry of `functions:`.
pub fn is_function_key(key: &str) -> bool {
    is_aws_name(key, MAX_FUNCTION_NAME) || (key.starts_with("arn:") && function_of_arn(key).is_ok())
}

/// The entry of `functions` that `value` names: by the value itself, then by
/// the function name of an ARN.
pub fn lookup<'f>(value: &str, functions: &'f BTreeMap<String, HookSpec>) -> Option<&'f HookSpec> {
    functions.get(value).or_else(|| {
        function_of_arn(value)
            .ok()
            .and_then(|name| functions.get(name))
    })
}

/// Resolves the `Hooks` of an appspec (read from `text`, named `file`)
/// against a stack's `functions`: each becomes the [`HookSpec`] it runs.
/// An unmapped function name or a bad ARN is a located error; a shell
/// command is a located warning.
pub fn resolve_appspec_hooks(
    file: &str,
    text: &str,
    appspec: &AppSpec,
    functions: &BTreeMap<String, HookSpec>,
) -> Result<Parsed<BTreeMap<LifecycleEvent, HookSpec>>, SpecError> {
    let map = SourceMap::new(file, text);
    let (mut hooks, mut errors, mut warnings) = (BTreeMap::new(), Vec::new(), Vec::new());
    for (i, h) in appspec.hooks.iter().enumerate() {
        let path = format!("Hooks[{i}].{}", h.event);
        let value = h.function.as_str();
        if let Some(mapped) = lookup(value, functions) {
            hooks.insert(h.event, mapped.clone());
            continue;
        }
        match FunctionRef::classify(value) {
            Ok(FunctionRef::Url(url)) => {
                hooks.insert(
                    h.event,
                    HookSpec {
                        url: Some(url.to_owned()),
                        ..HookSpec::default()
                    },
                );
            }
            Ok(FunctionRef::Shell(cmd)) => {
                warnings.push(map.warning(
                    &path,
                    format!(
                        "{} is run as a shell command (sh -c); AWS calls a Lambda function here: name a function and map it in the stack's functions: section",
                        quote(cmd)
                    ),
                ));
                hooks.insert(h.event, shell(cmd));
            }
            Ok(FunctionRef::Function(name)) => {
                errors.push(map.error(&path, unmapped(name, functions)))
            }
            Err(e) => errors.push(map.error(&path, e)),
        }
    }
    if errors.is_empty() {
        Ok(Parsed {
            value: hooks,
            warnings,
        })
    } else {
        Err(SpecError {
            diagnostics: errors,
            warnings,
        })
    }
}

/// A hook running `cmd` with `sh -c`.
pub fn shell(cmd: &str) -> HookSpec {
    HookSpec {
        command: vec!["sh".into(), "-c".into(), cmd.into()],
        ..HookSpec::default()
    }
}

fn unmapped(name: &str, functions: &BTreeMap<String, HookSpec>) -> String {
    let hint = suggest(name, functions.keys().map(String::as_str))
        .map(|s| format!(" (did you mean {}?)", quote(s)))
        .unwrap_or_default();
    format!(
        "Lambda function {} is not mapped{hint}: Cutover runs no Lambda functions; map it in the service's stack.yaml, e.g. functions: {{{name}: {{command: [./check.sh]}}}} or {{{name}: {{url: \"http://HOST/hook\", protocol: ecs}}}}",
        quote(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_classified() {
        use FunctionRef::*;
        let c = |v| FunctionRef::classify(v);
        assert_eq!(c("http://h/x"), Ok(Url("http://h/x")));
        assert_eq!(
            c("CodeDeployHook_BeforeTraffic"),
            Ok(Function("CodeDeployHook_BeforeTraffic"))
        );
        assert_eq!(
            c("arn:aws:lambda:us-east-1:111122223333:function:Check:live"),
            Ok(Function("Check"))
        );
        assert_eq!(c("./check.sh"), Ok(Shell("./check.sh")));
        assert_eq!(c("exit 0"), Ok(Shell("exit 0")));
        assert!(c("arn:aws:ecs:us-east-1:1:service/x").is_err());
        assert!(c("arn:....").is_err());
    }

    #[test]
    fn lookup_tries_the_value_then_the_arns_function_name() {
        let f = BTreeMap::from([("Check".to_string(), shell("true"))]);
        assert!(lookup("Check", &f).is_some());
        assert!(lookup("arn:aws:lambda:eu-west-1:111122223333:function:Check", &f).is_some());
        assert!(lookup("Other", &f).is_none());
    }
}
