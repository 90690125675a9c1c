//! A recording, in-memory [`Runtime`] for tests of the layers above.
//!
//! Nothing runs: `start` records the spec and hands out an endpoint on a
//! port nobody listens on, `stop` ends the task at once (or after the stop
//! delay you set), and health probes answer what the test decides. Every
//! call is recorded in order, so a test can assert what the control plane
//! asked for, and `crash` makes a task exit as if it died.
//!
//! Time comes from the caller's clock (milliseconds since the epoch), so a
//! control plane on a paused tokio clock sees consistent start and exit
//! times.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::{
    ExitInfo, HealthCommand, LogStream, ProbeOutcome, REASON_EXITED, REASON_STOPPED, Runtime,
    RuntimeError, TaskHandle, TaskSpec, TaskStatus,
};

/// What the control plane asked of the fake, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `start` of a new task (a repeated start of a known id is not recorded).
    Start {
        /// The task.
        task_id: String,
        /// Its `family:revision`.
        task_definition: String,
    },
    /// `stop` of a running task.
    Stop {
        /// The task.
        task_id: String,
    },
    /// `remove` of a task.
    Remove {
        /// The task.
        task_id: String,
    },
}

/// The fake's time source: milliseconds since the Unix epoch.
pub type Now = Arc<dyn Fn() -> u64 + Send + Sync>;

struct Task {
    spec: TaskSpec,
    handle: TaskHandle,
    exit: watch::Sender<Option<ExitInfo>>,
}

#[derive(Default)]
struct State {
    tasks: HashMap<String, Task>,
    calls: Vec<Call>,
    next_port: u16,
    /// Task definitions (`family:revision`) whose probes fail.
    unhealthy: BTreeMap<String, ()>,
    /// Task definitions whose `start` fails.
    failing: BTreeMap<String, String>,
}

/// An in-memory runtime; cheap to clone (clones share their state).
#[derive(Clone)]
pub struct FakeRuntime {
    name: &'static str,
    pins_image_tags: bool,
    now: Now,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FakeRuntime {
    /// A fake named `name` (use "process" to stand in for the default
    /// runtime) reading the time from `now`.
    pub fn new(name: &'static str, now: Now) -> FakeRuntime {
        FakeRuntime {
            name,
            pins_image_tags: false,
            now,
            state: Arc::new(Mutex::new(State {
                next_port: 20_000,
                ..State::default()
            })),
        }
    }

    /// This fake, answering [`Runtime::pins_image_tags`] with `true`, as a
    /// container runtime does.
    pub fn pinning_image_tags(mut self) -> FakeRuntime {
        self.pins_image_tags = true;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Ids of the tasks that run now, with their task definitions.
    pub fn running(&self) -> Vec<(String, String)> {
        let st = self.state();
        let mut out: Vec<_> = st
            .tasks
            .values()
            .filter(|t| t.exit.borrow().is_none())
            .map(|t| (t.spec.task_id.clone(), t.spec.task_definition.clone()))
            .collect();
        out.sort();
        out
    }

    /// The image `task_id` was started with, as the runtime was given it.
    pub fn image_of(&self, task_id: &str) -> Option<String> {
        self.state()
            .tasks
            .get(task_id)
            .and_then(|t| t.spec.container.image.clone())
    }

    /// Makes the health checks of `task_definition` fail (or pass again).
    pub fn set_unhealthy(&self, task_definition: &str, unhealthy: bool) {
        let mut st = self.state();
        if unhealthy {
            st.unhealthy.insert(task_definition.to_owned(), ());
        } else {
            st.unhealthy.remove(task_definition);
        }
    }

    /// Makes every start of `task_definition` fail with `reason`.
    pub fn fail_starts(&self, task_definition: &str, reason: &str) {
        self.state()
            .failing
            .insert(task_definition.to_owned(), reason.to_owned());
    }

    /// Ends a running task as if its process died with `exit_code`.
    pub fn crash(&self, task_id: &str, exit_code: i32) -> bool {
        let now = (self.now)();
        let st = self.state();
        match st.tasks.get(task_id) {
            Some(t) if t.exit.borrow().is_none() => {
                t.exit.send_replace(Some(ExitInfo {
                    exit_code: Some(exit_code),
                    signal: None,
                    oom_killed: false,
                    reason: REASON_EXITED.to_owned(),
                    finished_at_unix_ms: now,
                }));
                true
            }
            _ => false,
        }
    }
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        self.name
    }

    fn pins_image_tags(&self) -> bool {
        self.pins_image_tags
    }

    async fn start(&self, spec: &TaskSpec) -> Result<TaskHandle, RuntimeError> {
        let now = (self.now)();
        let mut st = self.state();
        if let Some(t) = st.tasks.get(&spec.task_id) {
            return Ok(t.handle.clone());
        }
        if let Some(reason) = st.failing.get(&spec.task_definition) {
            return Err(RuntimeError::InvalidSpec {
                task_id: spec.task_id.clone(),
                reason: reason.clone(),
            });
        }
        st.calls.push(Call::Start {
            task_id: spec.task_id.clone(),
            task_definition: spec.task_definition.clone(),
        });
        let port = st.next_port;
        st.next_port = st.next_port.wrapping_add(1).max(20_000);
        let handle = TaskHandle {
            task_id: spec.task_id.clone(),
            runtime: self.name.to_owned(),
            endpoint: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            pid: None,
            started_at_unix_ms: now,
            detail: serde_json::Value::Null,
        };
        let (exit, _) = watch::channel(None);
        st.tasks.insert(
            spec.task_id.clone(),
            Task {
                spec: spec.clone(),
                handle: handle.clone(),
                exit,
            },
        );
        Ok(handle)
    }

    async fn status(&self, task_id: &str) -> Result<TaskStatus, RuntimeError> {
        let st = self.state();
        Ok(match st.tasks.get(task_id) {
            None => TaskStatus::Gone,
            Some(t) => match t.exit.borrow().clone() {
                Some(info) => TaskStatus::Exited(info),
                None => TaskStatus::Running(t.handle.clone()),
            },
        })
    }

    async fn stop(&self, task_id: &str) -> Result<(), RuntimeError> {
        let now = (self.now)();
        let mut st = self.state();
        let running = st
            .tasks
            .get(task_id)
            .is_some_and(|t| t.exit.borrow().is_none());
        if running {
            st.calls.push(Call::Stop {
                task_id: task_id.to_owned(),
            });
            if let Some(t) = st.tasks.get(task_id) {
                t.exit.send_replace(Some(ExitInfo {
                    exit_code: Some(0),
                    signal: None,
                    oom_killed: false,
                    reason: REASON_STOPPED.to_owned(),
                    finished_at_unix_ms: now,
                }));
            }
        }
        Ok(())
    }

    async fn wait(&self, task_id: &str) -> Result<ExitInfo, RuntimeError> {
        let mut rx = match self.state().tasks.get(task_id) {
            Some(t) => t.exit.subscribe(),
            None => {
                return Err(RuntimeError::NotFound {
                    task_id: task_id.to_owned(),
                });
            }
        };
        let info = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            })?;
        Ok(info
            .clone()
            .unwrap_or_else(|| unreachable!("waited for Some")))
    }

    async fn list(&self) -> Result<Vec<TaskHandle>, RuntimeError> {
        Ok(self
            .state()
            .tasks
            .values()
            .map(|t| t.handle.clone())
            .collect())
    }

    async fn remove(&self, task_id: &str) -> Result<(), RuntimeError> {
        let mut st = self.state();
        if st.tasks.remove(task_id).is_some() {
            st.calls.push(Call::Remove {
                task_id: task_id.to_owned(),
            });
        }
        Ok(())
    }

    async fn health_probe(
        &self,
        task_id: &str,
        _check: &HealthCommand,
        _timeout: Duration,
    ) -> Result<ProbeOutcome, RuntimeError> {
        let st = self.state();
        let Some(t) = st.tasks.get(task_id) else {
            return Err(RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            });
        };
        Ok(if st.unhealthy.contains_key(&t.spec.task_definition) {
            ProbeOutcome::Unhealthy {
                exit_code: Some(1),
                output: "unhealthy (fake runtime)".to_owned(),
            }
        } else {
            ProbeOutcome::Healthy
        })
    }

    async fn logs(&self, task_id: &str, _follow: bool) -> Result<LogStream, RuntimeError> {
        if !self.state().tasks.contains_key(task_id) {
            return Err(RuntimeError::NotFound {
                task_id: task_id.to_owned(),
            });
        }
        Ok(Box::pin(futures_util::stream::empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContainerSpec;

    fn spec(id: &str) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            service: "web".into(),
            task_definition: "web:1".into(),
            container: ContainerSpec::default(),
            labels: BTreeMap::new(),
            placement: Default::default(),
        }
    }

    #[tokio::test]
    async fn records_calls_and_ends_tasks() {
        let rt = FakeRuntime::new("process", Arc::new(|| 42));
        let h = rt.start(&spec("a")).await.unwrap();
        assert_eq!(h.started_at_unix_ms, 42);
        assert_eq!(rt.start(&spec("a")).await.unwrap(), h, "idempotent");
        rt.start(&spec("b")).await.unwrap();
        assert!(rt.crash("b", 3));
        assert_eq!(rt.wait("b").await.unwrap().exit_code, Some(3));
        rt.stop("a").await.unwrap();
        assert_eq!(rt.wait("a").await.unwrap().reason, REASON_STOPPED);
        rt.remove("a").await.unwrap();
        assert!(matches!(rt.status("a").await.unwrap(), TaskStatus::Gone));
        assert_eq!(
            rt.calls(),
            vec![
                Call::Start {
                    task_id: "a".into(),
                    task_definition: "web:1".into()
                },
                Call::Start {
                    task_id: "b".into(),
                    task_definition: "web:1".into()
                },
                Call::Stop {
                    task_id: "a".into()
                },
                Call::Remove {
                    task_id: "a".into()
                },
            ]
        );
    }
}
