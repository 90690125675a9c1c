//! Image pinning: a service's task definition revision runs its image by
//! digest (`repo@sha256:...`), resolved once and recorded in the store's
//! `image_pins` (see `cutover_store::image_pins`).
//!
//! A deployment resolves the image of the revision it deploys before it is
//! written, and writes the pin in the same transaction as its row
//! ([`resolve`], then `image_pins::record`); a resolution failure refuses
//! the deployment with a `CannotPullContainerError` message. A revision that
//! reaches a service without a deployment (a service's first apply) is
//! pinned by its first task ([`pinned_for_task`]). Once recorded, a pin is
//! only read: scale-ups, restarts, rollbacks (a rollback deploys the earlier
//! revision, whose pin exists) and resumes after a crash never ask the
//! registry again. Runtimes that do not run registry images
//! (`Runtime::pins_image_tags` is false: the process runtime) and images
//! that are not registry references are not pinned here.

#[cfg(test)]
mod tests;

use crate::controller::Controller;
use crate::taskdef::run_plan;
use cutover_docker::{ImageResolver, ResolveError};
use cutover_store::image_pins::{self, ImagePinRow};
use cutover_store::ops;
use std::sync::Arc;

/// The resolver the control plane uses.
pub(crate) type SharedResolver = Arc<dyn ImageResolver>;

/// Why an image could not be pinned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PinError {
    /// The registry could not resolve the tag.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] cutover_store::StoreError),
    /// The revision cannot be read.
    #[error("{task_definition}: {reason}")]
    TaskDefinition {
        /// `family:revision`.
        task_definition: String,
        /// What is wrong.
        reason: String,
    },
}

/// A revision's pin, and whether the store has it already.
#[derive(Debug, Clone)]
pub(crate) struct Pin {
    /// The pin.
    pub(crate) row: ImagePinRow,
    /// `false` for a fresh resolution the caller must record.
    pub(crate) recorded: bool,
}

impl Pin {
    /// The history line of a fresh pin.
    pub(crate) fn event(&self) -> String {
        format!(
            "image {} of {} pinned to {}",
            self.row.image, self.row.task_definition, self.row.digest
        )
    }
}

/// The pin `svc`'s `task_definition` runs: the recorded one, else a fresh
/// resolution (not yet recorded: the caller writes it with what it
/// commits), else `None` when nothing is to be pinned.
pub(crate) async fn resolve(
    ctl: &Controller,
    service: &str,
    runtime: &str,
    task_definition: &str,
    deployment: Option<&str>,
) -> Result<Option<Pin>, PinError> {
    if !ctl
        .runtimes()
        .get(runtime)
        .is_some_and(|r| r.pins_image_tags())
    {
        return Ok(None);
    }
    let (name, td) = (service.to_string(), task_definition.to_string());
    if let Some(pin) = ctl
        .store()
        .call(move |c| image_pins::get(c, &name, &td))
        .await?
    {
        return Ok(Some(Pin {
            row: pin,
            recorded: true,
        }));
    }
    let bad = |reason: String| PinError::TaskDefinition {
        task_definition: task_definition.to_string(),
        reason,
    };
    let (family, revision) = task_definition
        .rsplit_once(':')
        .and_then(|(f, r)| Some((f.to_string(), r.parse::<u32>().ok()?)))
        .ok_or_else(|| bad("not a family:revision name".into()))?;
    let row = ctl
        .store()
        .call(move |c| ops::task_definition(c, &family, Some(revision)))
        .await?
        .ok_or_else(|| bad("not registered".into()))?;
    let plan = run_plan(&row.body).map_err(bad)?;
    let Some(image) = plan.container.image else {
        return Ok(None);
    };
    let Some(pinned) = ctl.resolver.resolve(&image).await? else {
        return Ok(None);
    };
    Ok(Some(Pin {
        row: ImagePinRow {
            service: service.to_string(),
            task_definition: task_definition.to_string(),
            container: plan.container.name,
            image,
            reference: pinned.reference,
            digest: pinned.digest,
            deployment: deployment.map(str::to_string),
            resolved_at: ctl.clock.now_ms(),
        },
        recorded: false,
    }))
}

/// The pin a new task of `svc`'s `task_definition` runs, recording it if
/// this task is the first to need it.
pub(crate) async fn pinned_for_task(
    ctl: &Controller,
    service: &str,
    runtime: &str,
    task_definition: &str,
) -> Result<Option<ImagePinRow>, PinError> {
    let Some(pin) = resolve(ctl, service, runtime, task_definition, None).await? else {
        return Ok(None);
    };
    if pin.recorded {
        return Ok(Some(pin.row));
    }
    let written = pin.row.clone();
    let stored = ctl
        .store()
        .call(move |c| image_pins::record(c, &written))
        .await?;
    if stored == pin.row {
        ctl.event(&format!("service/{service}"), &pin.event()).await;
    }
    Ok(Some(stored))
}
