//! CodePipeline V2 pipelines for Cutover: the declaration read with located
//! errors, trigger filters, deployment windows, and the pure execution
//! engine. No IO, no clock: time comes in as unix milliseconds.
//!
//! # Reading
//!
//! [`parse::parse_pipeline`] reads a pipeline file (the output of
//! `aws codepipeline get-pipeline`, or a bare pipeline object) and
//! [`parse::read_pipeline`] one at a path of a document being read (an
//! inline entry of `stack.yaml`), both through `cutover-spec`'s located
//! document layer. Errors are `cutover_spec::diag::SpecError`s, with diagnostics like
//! `pipeline.json:14:9: pipeline.stages[1].actions[0].inputArtifacts[0].name:
//! artifact "SourceArtifact2" is not produced by an earlier action`.
//!
//! # The engine's states
//!
//! [`engine::PipelineState`] holds every execution of one pipeline. An
//! execution is always at one [`engine::Position`]:
//!
//! | status | position | waits for |
//! |---|---|---|
//! | InProgress | `Waiting { stage }` | the stage's inbound transition to be enabled; the stage to be free (SUPERSEDED, QUEUED: one execution per stage; QUEUED also lets earlier executions go first); its deployment window to open (`wakeup`). In SUPERSEDED a newer execution arriving at the same place makes it Superseded |
//! | InProgress | `InStage { stage }` | the results of the current run-order group (all actions of the lowest run order not yet run start together); a manual approval's answer or its deadline |
//! | Stopping | `InStage { stage }` | the actions still running (stop and wait); then Stopped |
//! | Failed / Stopped | `InStage { stage }` | nothing, or a `RetryStage` (FAILED_ACTIONS or ALL_ACTIONS), which makes it InProgress again |
//! | Succeeded | `Done` | nothing |
//! | Superseded | `Waiting` | nothing |
//!
//! A stage fails when an action fails and no action of the stage is still
//! running; later run orders do not start. With `onFailure: ROLLBACK` the
//! engine then creates a rollback execution (`{id}-rollback`) that runs
//! only that stage with the variables, source revisions and artifacts of the
//! stage's last successful standard execution.
//!
//! Entry conditions: each `DeploymentWindow` rule of `beforeEntry` must be
//! open; when one is not, a condition without `result` waits for the window
//! (the next opening is the wakeup time), `FAIL` fails the stage, `SKIP`
//! skips it.
//!
//! Variables in action configuration are resolved when the action starts;
//! an unknown namespace or key there fails the action with a message naming
//! the variable (validation already rejects what it can know statically).
//!
//! # Modules
//!
//! - [`model`]: the serde types, in AWS's JSON shape.
//! - [`parse`]: reading with located errors (validation is internal).
//! - [`catalog`]: the supported providers and their configuration keys.
//! - [`vars`]: `#{Namespace.Key}` references.
//! - [`trigger`] and [`glob`]: git trigger filters.
//! - [`cron`]: deployment-window cron expressions (croner) in fixed offsets
//!   or IANA time zones (jiff, bundled database).
//! - [`engine`]: the execution engine.

pub mod catalog;
pub mod cron;
pub mod engine;
pub mod glob;
pub mod model;
pub mod parse;
pub mod trigger;
pub mod vars;

mod validate;

pub use parse::{parse_pipeline, pipeline_path, read_pipeline};
pub use trigger::{PushEvent, trigger_matches};
