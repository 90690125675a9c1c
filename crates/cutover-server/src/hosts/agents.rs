//! The agents' side of the server: [`AgentFleet`] implements [`Fleet`] over
//! the store (hosts, the durable command queue, results), and answers the
//! agents' own calls: registration, long polls, results, and the checking
//! of their keys.
//!
//! A key is 32 random bytes shown once (`cutover agents register NAME`);
//! the store keeps its SHA-256, compared in constant time. A key is bound
//! to one agent name: the name of every agent call (its path, its
//! registration, its `x-cutover-agent` header) must be the key's.
//!
//! An instance registered through CodeDeploy's RegisterOnPremisesInstance
//! has no agent key: its agent presents an access key of the IAM user the
//! registration named (`Bearer ACCESS_KEY_ID:SECRET`), and that user must
//! be the instance's (see [`Presented::AwsKey`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cutover_api::agents::{
    AgentCommand, AgentPoll, AgentRegistration, AgentView, BundleRef, CommandResult,
};
use cutover_clock::SharedClock;
use cutover_store::Store;
use cutover_store::agents::{self as rows, AgentRow, Recorded};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::fleet::{Fleet, FleetError, Instance};

/// A host that polled within this window is online (agents poll at most
/// 20 s apart).
pub(crate) const ONLINE_WINDOW_MS: u64 = 60_000;

/// The longest long poll.
pub(crate) const MAX_POLL: Duration = Duration::from_secs(20);

/// Names that are routes under `/v1/agents/`, so never agents'.
const RESERVED: [&str; 2] = ["register", "bundles"];

/// Whether `name` may name a host: 1-100 of `[A-Za-z0-9._-]`, not a
/// reserved route name (CodeDeploy allows more; these are safe in paths,
/// file names and headers).
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !RESERVED.contains(&name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What an agent's call presented as its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    /// Nothing.
    Nothing,
    /// An agent key (`cak_...`).
    AgentKey(&'a str),
    /// An AWS access key pair: the IAM user ARN it belongs to when the
    /// key exists, is usable and its secret matched, else `None`.
    AwsKey(Option<String>),
}

/// Why an agent's call is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AgentAuthError {
    /// A key was given that is not this agent's.
    #[error("wrong agent key for {0:?}")]
    WrongKey(String),
    /// No key was given where one is required.
    #[error(
        "agent {0:?} needs its key (cutover agents register NAME; then --key-file or CUTOVER_AGENT_KEY)"
    )]
    KeyRequired(String),
}

/// The agents, over the store.
pub(crate) struct AgentFleet {
    store: Arc<Store>,
    clock: SharedClock,
    /// `arn:aws:codedeploy:REGION:ACCOUNT:instance/`.
    arn_prefix: String,
    changed: Arc<Notify>,
    /// Wakes long polls when a command is dispatched or cancelled.
    queued: Notify,
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl AgentFleet {
    pub(crate) fn new(store: Arc<Store>, clock: SharedClock, region: &str, account: &str) -> Self {
        AgentFleet {
            store,
            clock,
            arn_prefix: format!("arn:aws:codedeploy:{region}:{account}:instance/"),
            changed: Arc::new(Notify::new()),
            queued: Notify::new(),
        }
    }

    /// Issues a new key for `name` (replacing any earlier one); the key is
    /// answered this once.
    pub(crate) async fn issue_key(&self, name: &str) -> Result<String, FleetError> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let key = format!("cak_{}", hex::encode(bytes));
        let (name, hash, now) = (name.to_string(), hash_key(&key), self.clock.now_ms());
        self.store
            .call(move |c| rows::set_key(c, &name, &hash, now))
            .await?;
        Ok(key)
    }

    /// Checks that `presented` may act as agent `name`. `open` says whether
    /// a call without a key is allowed (a token-less server reached on
    /// loopback); even then an agent that has a key (or an instance
    /// registered through the API) must present it.
    pub(crate) async fn authenticate(
        &self,
        name: &str,
        presented: Presented<'_>,
        open: bool,
    ) -> Result<Result<(), AgentAuthError>, FleetError> {
        let owned = name.to_string();
        let row = self.store.call(move |c| rows::get(c, &owned)).await?;
        let (stored, iam) = row.map_or((None, None), |r| (r.key_hash, r.iam_arn));
        Ok(match (presented, stored, iam) {
            (Presented::AgentKey(k), Some(h), _)
                if bool::from(hash_key(k).as_bytes().ct_eq(h.as_bytes())) =>
            {
                Ok(())
            }
            (Presented::AwsKey(Some(user)), _, Some(iam)) if user == iam => Ok(()),
            (Presented::AgentKey(_) | Presented::AwsKey(_), _, _) => {
                Err(AgentAuthError::WrongKey(name.into()))
            }
            (Presented::Nothing, None, None) if open => Ok(()),
            (Presented::Nothing, _, _) => Err(AgentAuthError::KeyRequired(name.into())),
        })
    }

    /// Records an agent's registration (tags, zone, target may change) and
    /// that it is online.
    pub(crate) async fn register(&self, reg: AgentRegistration) -> Result<AgentView, FleetError> {
        let now = self.clock.now_ms();
        let stored = reg.clone();
        self.store
            .call(move |c| rows::register(c, &stored, now, Some(now)))
            .await?;
        tracing::info!(agent = %reg.name, tags = ?reg.tags, zone = ?reg.zone, "agent registered");
        self.changed.notify_waiters();
        self.view(&reg.name).await
    }

    /// Creates host `name` without it being seen (CodeDeploy's
    /// `RegisterOnPremisesInstance`), for the agent that authenticates with
    /// an access key of `iam_arn`: it is online once that agent polls.
    pub(crate) async fn create_instance(
        &self,
        name: &str,
        iam_arn: &str,
    ) -> Result<rows::InstanceCreated, FleetError> {
        let (n, arn, now) = (name.to_string(), iam_arn.to_string(), self.clock.now_ms());
        let created = self
            .store
            .transact(move |c| rows::create_instance(c, &n, &arn, now))
            .await?;
        if created == rows::InstanceCreated::Created {
            tracing::info!(agent = %name, iam = %iam_arn, "on-premises instance registered");
            self.changed.notify_waiters();
        }
        Ok(created)
    }

    /// Changes the tags of registered host `name` with `edit` (CodeDeploy's
    /// Add/RemoveTagsToOnPremisesInstances). Returns false if no host of
    /// that name has a registration.
    pub(crate) async fn edit_tags(
        &self,
        name: &str,
        edit: impl FnOnce(&mut std::collections::BTreeMap<String, String>) + Send + 'static,
    ) -> Result<bool, FleetError> {
        let n = name.to_string();
        let changed = self
            .store
            .transact(move |c| {
                let Some(mut tags) = rows::get(c, &n)?
                    .and_then(|r| r.registration)
                    .map(|r| r.tags)
                else {
                    return Ok(false);
                };
                edit(&mut tags);
                rows::set_tags(c, &n, &tags)
            })
            .await?;
        if changed {
            self.changed.notify_waiters();
        }
        Ok(changed)
    }

    /// The stored row of host `name` (with its IAM ARN), if any.
    pub(crate) async fn row(&self, name: &str) -> Result<Option<AgentRow>, FleetError> {
        let n = name.to_string();
        Ok(self.store.call(move |c| rows::get(c, &n)).await?)
    }

    /// The `arn:aws:codedeploy:...:instance/NAME` of host `name`.
    pub(crate) fn instance_arn(&self, name: &str) -> String {
        format!("{}{}", self.arn_prefix, name)
    }

    /// The long poll of agent `name`: answers at once when it has open
    /// commands (or, while it runs `running`, when that one is cancelled),
    /// else waits up to `wait` for one.
    pub(crate) async fn poll(
        &self,
        name: &str,
        running: Option<&str>,
        wait: Duration,
    ) -> Result<AgentPoll, FleetError> {
        let now = self.clock.now_ms();
        let owned = name.to_string();
        let before = self
            .store
            .call(move |c| rows::touch(c, &owned, now))
            .await?
            .ok_or_else(|| FleetError::UnknownHost(name.to_string()))?;
        if before + ONLINE_WINDOW_MS < now {
            tracing::info!(agent = %name, "agent online");
            self.changed.notify_waiters();
        }
        let deadline = tokio::time::Instant::now() + wait.min(MAX_POLL);
        loop {
            let woken = self.queued.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let owned = name.to_string();
            let (commands, cancel) = self
                .store
                .call(move |c| rows::open_commands(c, &owned))
                .await?;
            let answer = match running {
                Some(id) => cancel.iter().any(|c| c == id),
                None => !commands.is_empty() || !cancel.is_empty(),
            };
            if answer {
                return Ok(AgentPoll { commands, cancel });
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Ok(AgentPoll { commands, cancel });
            }
        }
    }

    /// Records agent `host`'s result, once. A result for a command this
    /// host was not sent is refused.
    pub(crate) async fn report(
        &self,
        host: &str,
        result: CommandResult,
    ) -> Result<Recorded, FleetError> {
        let (owned, now) = (host.to_string(), self.clock.now_ms());
        let id = result.id.clone();
        let status = result.status;
        let recorded = self
            .store
            .call(move |c| rows::record_result(c, &owned, &result, now))
            .await?;
        if recorded == Recorded::Yes {
            tracing::info!(agent = %host, command = %id, ?status, "command result");
            self.changed.notify_waiters();
        }
        Ok(recorded)
    }

    /// The view of host `name`.
    pub(crate) async fn view(&self, name: &str) -> Result<AgentView, FleetError> {
        let owned = name.to_string();
        let (row, last) = self
            .store
            .call(move |c| Ok((rows::get(c, &owned)?, rows::last_successful(c, &owned)?)))
            .await?;
        let row = row.ok_or_else(|| FleetError::UnknownHost(name.to_string()))?;
        Ok(self.to_view(row, last))
    }

    /// Every host, by name.
    pub(crate) async fn views(&self) -> Result<Vec<AgentView>, FleetError> {
        let rows = self
            .store
            .call(|c| {
                rows::list(c)?
                    .into_iter()
                    .map(|r| {
                        let last = rows::last_successful(c, &r.name)?;
                        Ok((r, last))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(r, last)| self.to_view(r, last))
            .collect())
    }

    fn to_view(
        &self,
        row: AgentRow,
        last_successful: std::collections::BTreeMap<String, BundleRef>,
    ) -> AgentView {
        let registration = row.registration.unwrap_or_else(|| AgentRegistration {
            name: row.name.clone(),
            tags: Default::default(),
            zone: None,
            target: None,
            version: String::new(),
        });
        AgentView {
            instance_arn: self.instance_arn(&row.name),
            registration,
            registered_at_ms: row.registered_at,
            last_seen_ms: row.last_seen,
            online: row.last_seen > 0 && row.last_seen + ONLINE_WINDOW_MS >= self.clock.now_ms(),
            last_successful,
        }
    }

    /// Deregisters `name`: its key, open commands and revisions go.
    pub(crate) async fn deregister(&self, name: &str) -> Result<bool, FleetError> {
        let owned = name.to_string();
        let existed = self.store.call(move |c| rows::delete(c, &owned)).await?;
        if existed {
            tracing::info!(agent = %name, "agent deregistered");
            self.changed.notify_waiters();
        }
        Ok(existed)
    }
}

#[async_trait]
impl Fleet for AgentFleet {
    async fn instances(&self) -> Result<Vec<Instance>, FleetError> {
        let rows = self.store.call(rows::list).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(Instance {
                    registration: r.registration?,
                    last_seen_ms: r.last_seen,
                })
            })
            .collect())
    }

    async fn dispatch(&self, host: &str, command: AgentCommand) -> Result<(), FleetError> {
        let (owned, now) = (host.to_string(), self.clock.now_ms());
        self.store
            .transact(move |c| {
                if rows::get(c, &owned)?.is_none() {
                    return Ok(false);
                }
                rows::dispatch(c, &owned, &command, now)?;
                Ok(true)
            })
            .await?
            .then_some(())
            .ok_or_else(|| FleetError::UnknownHost(host.to_string()))?;
        self.queued.notify_waiters();
        Ok(())
    }

    async fn cancel(&self, host: &str, id: &str) -> Result<(), FleetError> {
        let (h, i) = (host.to_string(), id.to_string());
        if self.store.call(move |c| rows::cancel(c, &h, &i)).await? {
            self.queued.notify_waiters();
        }
        Ok(())
    }

    async fn result(&self, id: &str) -> Result<Option<CommandResult>, FleetError> {
        let id = id.to_string();
        Ok(self.store.call(move |c| rows::result(c, &id)).await?)
    }

    fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}
