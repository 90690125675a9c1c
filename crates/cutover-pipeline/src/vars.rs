//! Variable references in action configuration: `#{Namespace.Key}`,
//! `#{variables.Name}` and `#{codepipeline.PipelineExecutionId}`. Finding the
//! references (for validation) and substituting them (at action start).

use std::collections::BTreeMap;

/// The namespace of pipeline-level variables.
pub const PIPELINE_VARIABLES: &str = "variables";
/// The namespace of execution facts.
pub const CODEPIPELINE: &str = "codepipeline";
/// The one key of [`CODEPIPELINE`].
pub const EXECUTION_ID_KEY: &str = "PipelineExecutionId";

/// One `#{Namespace.Key}` in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef<'a> {
    /// The namespace (before the first dot).
    pub namespace: &'a str,
    /// The key (after it).
    pub key: &'a str,
}

/// A `#{...}` that is not `#{Namespace.Key}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed variable reference \"{text}\", expected #{{Namespace.Key}}")]
pub struct MalformedRef {
    /// The text between `#{` and `}` (or to the end).
    pub text: String,
}

/// The variable references in `s`, in order.
pub fn references(s: &str) -> Result<Vec<VarRef<'_>>, MalformedRef> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("#{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(MalformedRef {
                text: after.to_owned(),
            });
        };
        let inner = &after[..end];
        match inner.split_once('.') {
            Some((ns, key)) if is_namespace(ns) && !key.is_empty() => {
                out.push(VarRef { namespace: ns, key })
            }
            _ => {
                return Err(MalformedRef {
                    text: inner.to_owned(),
                });
            }
        }
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// Whether `s` is a valid action namespace (`[A-Za-z0-9@_-]{1,100}`).
pub fn is_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '-'))
}

/// Why a string could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Bad syntax.
    #[error(transparent)]
    Malformed(#[from] MalformedRef),
    /// No such namespace in this execution.
    #[error("unknown variable namespace \"{namespace}\" in #{{{namespace}.{key}}}")]
    UnknownNamespace {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
    /// The namespace exists but lacks the key.
    #[error("variable #{{{namespace}.{key}}} is not set (namespace \"{namespace}\" has {known})")]
    UnknownKey {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The keys it has, for the message.
        known: String,
    },
}

/// Replaces every reference in `s` using `namespaces` (which includes
/// `variables` and `codepipeline`).
pub fn resolve(
    s: &str,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<String, ResolveError> {
    if !s.contains("#{") {
        return Ok(s.to_owned());
    }
    references(s)?;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // `references` succeeded: the closing brace and the dot exist.
        let end = after.find('}').unwrap_or(after.len());
        let (ns, key) = after[..end].split_once('.').unwrap_or((&after[..end], ""));
        let Some(values) = namespaces.get(ns) else {
            return Err(ResolveError::UnknownNamespace {
                namespace: ns.to_owned(),
                key: key.to_owned(),
            });
        };
        let Some(value) = values.get(key) else {
            let known = if values.is_empty() {
                "no variables".to_owned()
            } else {
                values.keys().cloned().collect::<Vec<_>>().join(", ")
            };
            return Err(ResolveError::UnknownKey {
                namespace: ns.to_owned(),
                key: key.to_owned(),
                known,
            });
        };
        out.push_str(value);
        rest = &after[(end + 1).min(after.len())..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references() {
        let refs = references("a #{Src.CommitId} b #{variables.Env}").unwrap();
        assert_eq!(
            refs,
            vec![
                VarRef {
                    namespace: "Src",
                    key: "CommitId"
                },
                VarRef {
                    namespace: "variables",
                    key: "Env"
                }
            ]
        );
        assert_eq!(
            references("#{nodot}").unwrap_err().to_string(),
            "malformed variable reference \"nodot\", expected #{Namespace.Key}"
        );
        assert!(references("#{open").is_err());
        assert!(references("plain # { text").unwrap().is_empty());
    }

    #[test]
    fn resolves_and_reports() {
        let mut ns = BTreeMap::new();
        ns.insert(
            "Src".to_owned(),
            BTreeMap::from([("CommitId".to_owned(), "abc".to_owned())]),
        );
        assert_eq!(resolve("c=#{Src.CommitId}!", &ns).unwrap(), "c=abc!");
        assert_eq!(
            resolve("#{Src.Nope}", &ns).unwrap_err().to_string(),
            "variable #{Src.Nope} is not set (namespace \"Src\" has CommitId)"
        );
        assert_eq!(
            resolve("#{Build.X}", &ns).unwrap_err().to_string(),
            "unknown variable namespace \"Build\" in #{Build.X}"
        );
    }
}
