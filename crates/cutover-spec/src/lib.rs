//! The files Cutover reads, parsed and validated with located errors.
//!
//! | file | function | format |
//! |---|---|---|
//! | `taskdef.json` | [`taskdef::parse_task_definition`] | ECS `RegisterTaskDefinition` input, or `describe-task-definition` output |
//! | `appspec.yaml` | [`appspec::parse_appspec`] | CodeDeploy AppSpec for ECS (YAML or JSON) |
//! | `appspec.yml` | [`appspec_host::parse_host_appspec`] | CodeDeploy AppSpec for EC2/on-premises hosts |
//! | `imagedefinitions.json` | [`handoff::parse_image_definitions`] | CodePipeline ECS deploy hand-off |
//! | `imageDetail.json` | [`handoff::parse_image_detail`] | CodePipeline blue/green deploy hand-off |
//! | `stack.yaml` | [`stack::parse_stack`] | Cutover's own stack of services, deployment configs and alarms |
//! | ECR lifecycle policy | [`ecr::parse_lifecycle_policy`] | PutLifecyclePolicy's `lifecyclePolicyText` |
//!
//! Every function takes a file name (used only in messages) and the text,
//! and returns [`Parsed`] (the value and its warnings) or [`SpecError`]
//! (every error found, each a [`Diagnostic`] naming the file, line, column
//! and field path). This crate does no IO.
//!
//! How it works: the text is parsed into a tree that remembers the position
//! of every value and key (`doc`); a serde deserializer over that tree
//! records type errors where they happen (`de`); the typed value is then
//! checked, and those semantic errors find their position through the tree
//! by field path (`check`). AWS formats are lenient (an unknown field is a
//! warning, since AWS adds fields all the time); Cutover's own `stack.yaml`
//! is strict (an unknown key is an error, with a "did you mean" suggestion).

pub mod appspec;
pub mod appspec_host;
pub mod diag;
pub mod doc;
pub mod ecr;
pub mod gateway;
pub mod handoff;
pub mod matcher;
pub mod stack;
pub mod taskdef;
pub mod upstream;

mod check;
mod de;

pub use appspec::{AppSpec, LifecycleEvent, TaskDefinitionFrom, parse_appspec, parse_appspec_for};
pub use appspec_host::{HostAppSpec, HostEvent, is_host_appspec, parse_host_appspec};
pub use check::suggest;
pub use diag::{Diagnostic, Parsed, Severity, SpecError};
pub use handoff::{ImageDefinition, ImageDetail, parse_image_definitions, parse_image_detail};
pub use stack::{Stack, parse_stack};
pub use taskdef::{TaskDefinition, parse_task_definition};

/// Reads `text` as a located document (JSON for `*.json`, YAML otherwise),
/// reports duplicate keys, and reads the tree back as a JSON value through
/// the located deserializer. This is the document layer alone, with no
/// schema: for readers that validate a plain value themselves (pipelines)
/// and for the fuzz targets (`fuzz/`).
pub fn read_document(file: &str, text: &str) -> Result<Parsed<serde_json::Value>, SpecError> {
    let doc = check::Document::parse(file, text, doc::Format::for_file(file))?;
    let sink = doc.sink(false);
    let value = sink.read::<serde_json::Value>(&doc::Path::root());
    sink.finish(value)
}
