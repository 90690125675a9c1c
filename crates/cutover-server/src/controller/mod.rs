//! The controller: one reconcile loop per service, plus adoption of the
//! tasks that kept running while the control plane was away.
//!
//! Invariants:
//! - at most one loop per service, so a service's tasks are never started or
//!   stopped by two writers;
//! - a task row is written (PROVISIONING) before the runtime is asked to
//!   start it, and the runtime's `start` is idempotent per task id, so a
//!   crash between the two never duplicates or orphans a task;
//! - adoption runs before any loop starts.

mod adopt;
mod service_loop;
#[cfg(test)]
mod tests;

use cutover_clock::SharedClock;
use cutover_runtime::Runtime;
use cutover_store::{Store, ops};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The runtimes this control plane can use, by name.
pub(crate) type Runtimes = BTreeMap<String, Arc<dyn Runtime>>;

struct LoopHandle {
    wake: Arc<Notify>,
    cancel: CancellationToken,
}

/// Owns the per-service reconcile loops.
pub(crate) struct Controller {
    store: Arc<Store>,
    /// The control plane's clock.
    pub(crate) clock: SharedClock,
    runtimes: Runtimes,
    /// Resolves image tags to digests (see [`crate::pins`]).
    pub(crate) resolver: crate::pins::SharedResolver,
    loops: Mutex<HashMap<String, LoopHandle>>,
    shutdown: CancellationToken,
    /// Notified whenever a task starts, stops or changes health, so the data
    /// plane's targets follow at once.
    pub(crate) changed: Arc<Notify>,
}

impl Controller {
    /// Adopts surviving tasks, then starts a loop for every stored service.
    pub(crate) async fn start(
        store: Arc<Store>,
        clock: SharedClock,
        runtimes: Runtimes,
        resolver: crate::pins::SharedResolver,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Controller>> {
        adopt::adopt(&store, clock.as_ref(), &runtimes).await?;
        let controller = Arc::new(Controller {
            store: store.clone(),
            clock,
            runtimes,
            resolver,
            loops: Mutex::new(HashMap::new()),
            shutdown,
            changed: Arc::new(Notify::new()),
        });
        for svc in store.call(ops::list_services).await? {
            controller.wake(&svc.name);
        }
        Ok(controller)
    }

    /// The state store.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The runtimes, by name.
    pub(crate) fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    /// Makes the service's loop run a pass now, starting the loop if needed.
    pub(crate) fn wake(self: &Arc<Self>, service: &str) {
        let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = loops.get(service)
            && !h.cancel.is_cancelled()
        {
            h.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        let cancel = self.shutdown.child_token();
        loops.insert(
            service.to_string(),
            LoopHandle {
                wake: wake.clone(),
                cancel: cancel.clone(),
            },
        );
        let me = self.clone();
        let name = service.to_string();
        tokio::spawn(async move {
            service_loop::run(me.clone(), name.clone(), wake, cancel.clone()).await;
            cancel.cancel();
            let mut loops = me.loops.lock().unwrap_or_else(|p| p.into_inner());
            if loops.get(&name).is_some_and(|h| h.cancel.is_cancelled()) {
                loops.remove(&name);
            }
        });
    }

    /// Records a line of history; failures to record are logged, not fatal.
    pub(crate) async fn event(&self, subject: &str, message: &str) {
        let (at, subj, msg) = (
            self.clock.now_ms(),
            subject.to_string(),
            message.to_string(),
        );
        if let Err(e) = self
            .store
            .call(move |c| ops::add_event(c, at, &subj, &msg))
            .await
        {
            tracing::warn!(error = %e, subject, "cannot record event");
        }
        tracing::info!(subject, "{message}");
    }
}
