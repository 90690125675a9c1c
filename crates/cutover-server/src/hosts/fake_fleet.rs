//! A fake [`Fleet`] for the driver's tests: agents that answer each
//! command 50 ms after it is queued (or never, once "killed"), scripts that
//! fail where a test says, and a record of which hosts were out of their
//! target groups when each command was queued.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cutover_api::agents::{AgentCommand, AgentRegistration, CommandResult, CommandStatus};
use cutover_clock::Clock;
use cutover_spec::HostEvent;
use cutover_store::Store;
use cutover_store::host_deployments as hd;
use tokio::sync::Notify;

use super::fleet::{Fleet, FleetError, Instance};

/// One queued command as the fake agents saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) host: String,
    pub(super) event: HostEvent,
    pub(super) revision: Option<String>,
    /// Hosts out of their target groups when it was queued.
    pub(super) blocked: BTreeSet<String>,
}

#[derive(Default)]
struct FleetState {
    hosts: BTreeMap<String, AgentRegistration>,
    /// Killed hosts and when they last polled.
    dead: HashMap<String, u64>,
    /// (host, event, revision digest) that fail.
    failing: HashSet<(String, HostEvent, String)>,
    commands: BTreeMap<String, AgentCommand>,
    seen: Vec<Seen>,
    results: HashMap<String, CommandResult>,
}

pub(super) struct FakeFleet {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    state: Mutex<FleetState>,
    changed: Arc<Notify>,
}

impl FakeFleet {
    pub(super) fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Arc<FakeFleet> {
        let fleet = FakeFleet {
            store,
            clock,
            state: Mutex::default(),
            changed: Arc::new(Notify::new()),
        };
        for (name, zone) in [("h1", "a"), ("h2", "b"), ("h3", "c")] {
            fleet.lock().hosts.insert(
                name.to_string(),
                AgentRegistration {
                    name: name.to_string(),
                    tags: [("env".to_string(), "prod".to_string())].into(),
                    zone: Some(zone.to_string()),
                    target: Some(format!("127.0.0.1:910{}", &name[1..])),
                    version: "test".into(),
                },
            );
        }
        Arc::new(fleet)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FleetState> {
        self.state.lock().unwrap()
    }

    /// Registers another `env=prod` host.
    pub(super) fn join(&self, name: &str) {
        self.register(name, ("env", "prod"), "127.0.0.1:9199");
    }

    /// Registers host `name` with one tag and a target, in zone a.
    pub(super) fn register(&self, name: &str, tag: (&str, &str), target: &str) {
        self.lock().hosts.insert(
            name.to_string(),
            AgentRegistration {
                name: name.to_string(),
                tags: [(tag.0.to_string(), tag.1.to_string())].into(),
                zone: Some("a".to_string()),
                target: Some(target.to_string()),
                version: "test".into(),
            },
        );
        self.changed.notify_waiters();
    }

    pub(super) fn kill(&self, host: &str) {
        let now = self.clock.now_ms();
        self.lock().dead.insert(host.to_string(), now);
    }

    pub(super) fn fail(&self, host: &str, event: HostEvent, digest: &str) {
        self.lock()
            .failing
            .insert((host.to_string(), event, digest.to_string()));
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }
}

#[async_trait]
impl Fleet for Arc<FakeFleet> {
    async fn instances(&self) -> Result<Vec<Instance>, FleetError> {
        let now = self.clock.now_ms();
        let s = self.lock();
        Ok(s.hosts
            .values()
            .map(|r| Instance {
                registration: r.clone(),
                last_seen_ms: s.dead.get(&r.name).copied().unwrap_or(now),
            })
            .collect())
    }

    async fn dispatch(&self, host: &str, command: AgentCommand) -> Result<(), FleetError> {
        if !self.lock().hosts.contains_key(host) {
            return Err(FleetError::UnknownHost(host.to_string()));
        }
        if self.lock().commands.contains_key(&command.id) {
            return Ok(());
        }
        let dep = command.deployment_id.clone();
        let blocked = self
            .store
            .call(move |c| hd::host_deployment(c, &dep))
            .await?
            .map(|r| r.body.blocked)
            .unwrap_or_default();
        let digest = command.revision.as_ref().map(|r| r.digest.clone());
        {
            let mut s = self.lock();
            s.seen.push(Seen {
                host: host.to_string(),
                event: command.event,
                revision: digest.clone(),
                blocked,
            });
            s.commands.insert(command.id.clone(), command.clone());
        }
        let (me, host) = (self.clone(), host.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = me.clock.now_ms();
            let mut s = me.lock();
            if s.dead.contains_key(&host) {
                return;
            }
            let fails =
                digest.is_some_and(|d| s.failing.contains(&(host.clone(), command.event, d)));
            s.results.insert(
                command.id.clone(),
                CommandResult {
                    id: command.id.clone(),
                    status: if fails {
                        CommandStatus::Failed
                    } else {
                        CommandStatus::Succeeded
                    },
                    output: format!("{} on {host}", command.event),
                    error: fails.then(|| "script exited with 1".to_string()),
                    started_at_ms: now - 50,
                    ended_at_ms: now,
                },
            );
            drop(s);
            me.changed.notify_waiters();
        });
        Ok(())
    }

    async fn cancel(&self, _host: &str, _id: &str) -> Result<(), FleetError> {
        Ok(())
    }

    async fn result(&self, id: &str) -> Result<Option<CommandResult>, FleetError> {
        Ok(self.lock().results.get(id).cloned())
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}
