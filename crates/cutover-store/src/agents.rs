//! Host agents (issue 12): registered hosts and their keys, the durable
//! queue of commands sent to each, the results they reported, and each
//! host's last successful revision per deployment group.
//!
//! An agent's row exists once `cutover agents register NAME` issued its key
//! (then `registration` is `NULL` until the agent registers itself) or once
//! an agent registered without a key (loopback, token-less servers). Keys
//! are stored as the SHA-256 of the key: a database leak gives no key.
//!
//! An instance registered through CodeDeploy's API
//! (RegisterOnPremisesInstance) has an `iam_arn` instead of a key: its
//! agent authenticates with an access key of that IAM user. Its tags are
//! the API's (AddTagsToOnPremisesInstances); the tags its agent registers
//! with are added to them.

use cutover_api::agents::{AgentCommand, AgentRegistration, BundleRef, CommandResult};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A stored agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    /// The host's name.
    pub name: String,
    /// What the agent registered, once it did.
    pub registration: Option<AgentRegistration>,
    /// Hex SHA-256 of its key, if one was issued.
    pub key_hash: Option<String>,
    /// When the row was created (ms).
    pub registered_at: u64,
    /// When the agent last registered or polled (ms; 0: never).
    pub last_seen: u64,
    /// The IAM user or session ARN of an instance registered through
    /// CodeDeploy's API, whose access keys its agent uses.
    pub iam_arn: Option<String>,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Plain data types: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|source| StoreError::Json { what, source })
}

const COLUMNS: &str = "name, registration, key_hash, registered_at, last_seen, iam_arn";

type RawAgent = (
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<String>,
);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawAgent> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn cook(
    (name, registration, key_hash, registered_at, last_seen, iam_arn): RawAgent,
) -> Result<AgentRow, StoreError> {
    Ok(AgentRow {
        name,
        registration: registration
            .map(|s| parse("agent registration", &s))
            .transpose()?,
        key_hash,
        registered_at: registered_at as u64,
        last_seen: last_seen as u64,
        iam_arn,
    })
}

/// The agent `name`, if stored.
pub fn get(c: &Connection, name: &str) -> Result<Option<AgentRow>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM agents WHERE name = ?1"),
        [name],
        raw,
    )
    .optional()
    .map_err(StoreError::sql("read agent"))?
    .map(cook)
    .transpose()
}

/// Every agent, by name.
pub fn list(c: &Connection) -> Result<Vec<AgentRow>, StoreError> {
    let mut stmt = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM agents ORDER BY name"))
        .map_err(StoreError::sql("list agents"))?;
    let rows = stmt
        .query_map([], raw)
        .map_err(StoreError::sql("list agents"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list agents"))?;
    rows.into_iter().map(cook).collect()
}

/// Issues (or replaces) the key of `name`, creating its row if needed.
pub fn set_key(c: &Connection, name: &str, key_hash: &str, now: u64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO agents (name, key_hash, registered_at, last_seen) VALUES (?1, ?2, ?3, 0)
         ON CONFLICT (name) DO UPDATE SET key_hash = excluded.key_hash",
        params![name, key_hash, now as i64],
    )
    .map_err(StoreError::sql("issue agent key"))?;
    Ok(())
}

/// Records what the agent registered (creating its row if needed) at
/// `now`, and `seen` as when it was last seen (`None`: unchanged, 0 for a
/// new row); returns the row as it was before. An instance registered
/// through the API keeps its tags, the agent's added to them.
pub fn register(
    c: &Connection,
    registration: &AgentRegistration,
    now: u64,
    seen: Option<u64>,
) -> Result<Option<AgentRow>, StoreError> {
    let before = get(c, &registration.name)?;
    let mut registration = registration.clone();
    if let Some(AgentRow {
        iam_arn: Some(_),
        registration: Some(api),
        ..
    }) = &before
    {
        // The API's tags choose deployment groups: the agent's own may add
        // keys, never change one the API set.
        let own = std::mem::replace(&mut registration.tags, api.tags.clone());
        for (k, v) in own {
            registration.tags.entry(k).or_insert(v);
        }
    }
    c.execute(
        "INSERT INTO agents (name, registration, registered_at, last_seen) VALUES (?1, ?2, ?3, COALESCE(?4, 0))
         ON CONFLICT (name) DO UPDATE SET registration = excluded.registration,
             last_seen = COALESCE(?4, last_seen)",
        params![registration.name, json(&registration), now as i64, seen.map(|t| t as i64)],
    )
    .map_err(StoreError::sql("register agent"))?;
    Ok(before)
}

/// What [`create_instance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceCreated {
    /// The instance exists now.
    Created,
    /// A host of that name exists (nothing changed).
    NameTaken,
    /// Another instance authenticates as that IAM ARN (nothing changed).
    IamArnTaken,
}

/// Creates the on-premises instance `name` for the agent that
/// authenticates as `iam_arn` (CodeDeploy's RegisterOnPremisesInstance),
/// unseen and without tags. One IAM ARN is one instance's, as on AWS.
pub fn create_instance(
    c: &Connection,
    name: &str,
    iam_arn: &str,
    now: u64,
) -> Result<InstanceCreated, StoreError> {
    if get(c, name)?.is_some() {
        return Ok(InstanceCreated::NameTaken);
    }
    let taken: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM agents WHERE iam_arn = ?1)",
            [iam_arn],
            |r| r.get(0),
        )
        .map_err(StoreError::sql("register instance"))?;
    if taken {
        return Ok(InstanceCreated::IamArnTaken);
    }
    let registration = AgentRegistration {
        name: name.to_string(),
        tags: Default::default(),
        zone: None,
        target: None,
        version: String::new(),
    };
    c.execute(
        "INSERT INTO agents (name, registration, registered_at, last_seen, iam_arn)
         VALUES (?1, ?2, ?3, 0, ?4)",
        params![name, json(&registration), now as i64, iam_arn],
    )
    .map_err(StoreError::sql("register instance"))?;
    Ok(InstanceCreated::Created)
}

/// Replaces the tags of the registered host `name` (AddTagsToOnPremisesInstances,
/// RemoveTagsFromOnPremisesInstances). Returns false if it has no registration.
pub fn set_tags(
    c: &Connection,
    name: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<bool, StoreError> {
    let Some(mut registration) = get(c, name)?.and_then(|r| r.registration) else {
        return Ok(false);
    };
    registration.tags = tags.clone();
    c.execute(
        "UPDATE agents SET registration = ?2 WHERE name = ?1",
        params![name, json(&registration)],
    )
    .map_err(StoreError::sql("tag instance"))?;
    Ok(true)
}

/// Records a poll of `name` at `now`; returns when it was seen before
/// (`None`: no such agent).
pub fn touch(c: &Connection, name: &str, now: u64) -> Result<Option<u64>, StoreError> {
    let before = c
        .query_row(
            "SELECT last_seen FROM agents WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(StoreError::sql("touch agent"))?;
    if before.is_some() {
        c.execute(
            "UPDATE agents SET last_seen = ?2 WHERE name = ?1",
            params![name, now as i64],
        )
        .map_err(StoreError::sql("touch agent"))?;
    }
    Ok(before.map(|t| t as u64))
}

/// Deletes the agent `name` (its key, revisions and open commands go with
/// it; reported results stay). Returns whether it existed.
pub fn delete(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let n = c
        .execute("DELETE FROM agents WHERE name = ?1", [name])
        .map_err(StoreError::sql("deregister agent"))?;
    c.execute("DELETE FROM agent_revisions WHERE host = ?1", [name])
        .map_err(StoreError::sql("deregister agent"))?;
    c.execute(
        "DELETE FROM agent_commands WHERE host = ?1 AND result IS NULL",
        [name],
    )
    .map_err(StoreError::sql("deregister agent"))?;
    Ok(n == 1)
}

/// Queues `command` for `host`; a command id already stored changes
/// nothing. Returns whether it was new.
pub fn dispatch(
    c: &Connection,
    host: &str,
    command: &AgentCommand,
    now: u64,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "INSERT OR IGNORE INTO agent_commands (id, host, body, dispatched_at) VALUES (?1, ?2, ?3, ?4)",
            params![command.id, host, json(command), now as i64],
        )
        .map_err(StoreError::sql("dispatch agent command"))?;
    Ok(n == 1)
}

/// Marks command `id` of `host` cancelled; returns whether it was open.
pub fn cancel(c: &Connection, host: &str, id: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "UPDATE agent_commands SET cancelled = 1 WHERE id = ?1 AND host = ?2 AND result IS NULL",
            params![id, host],
        )
        .map_err(StoreError::sql("cancel agent command"))?;
    Ok(n == 1)
}

/// What `host` is to do now: its open commands in dispatch order, and the
/// ids of the open ones cancelled.
pub fn open_commands(
    c: &Connection,
    host: &str,
) -> Result<(Vec<AgentCommand>, Vec<String>), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT id, body, cancelled FROM agent_commands
             WHERE host = ?1 AND result IS NULL ORDER BY seq",
        )
        .map_err(StoreError::sql("read agent commands"))?;
    let rows = stmt
        .query_map([host], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })
        .map_err(StoreError::sql("read agent commands"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("read agent commands"))?;
    let (mut run, mut cancel) = (Vec::new(), Vec::new());
    for (id, body, cancelled) in rows {
        if cancelled {
            cancel.push(id);
        } else {
            run.push(parse("agent command", &body)?);
        }
    }
    Ok((run, cancel))
}

/// Why a result was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded now.
    Yes,
    /// A result was recorded before: this one is ignored.
    Already,
    /// No command with this id was sent to this host.
    Unknown,
}

/// Records `host`'s result of one of its commands, once.
pub fn record_result(
    c: &Connection,
    host: &str,
    result: &CommandResult,
    now: u64,
) -> Result<Recorded, StoreError> {
    let reported: Option<Option<i64>> = c
        .query_row(
            "SELECT reported_at FROM agent_commands WHERE id = ?1 AND host = ?2",
            params![result.id, host],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sql("record agent result"))?;
    match reported {
        None => Ok(Recorded::Unknown),
        Some(Some(_)) => Ok(Recorded::Already),
        Some(None) => {
            c.execute(
                "UPDATE agent_commands SET result = ?2, reported_at = ?3 WHERE id = ?1",
                params![result.id, json(result), now as i64],
            )
            .map_err(StoreError::sql("record agent result"))?;
            Ok(Recorded::Yes)
        }
    }
}

/// The recorded result of command `id`.
pub fn result(c: &Connection, id: &str) -> Result<Option<CommandResult>, StoreError> {
    let body: Option<Option<String>> = c
        .query_row(
            "SELECT result FROM agent_commands WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sql("read agent result"))?;
    body.flatten()
        .map(|s| parse("agent result", &s))
        .transpose()
}

/// Records `bundle` as `host`'s last successful revision in `group`.
pub fn set_last_successful(
    c: &Connection,
    host: &str,
    group: &str,
    bundle: &BundleRef,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO agent_revisions (host, deployment_group, bundle) VALUES (?1, ?2, ?3)
         ON CONFLICT (host, deployment_group) DO UPDATE SET bundle = excluded.bundle",
        params![host, group, json(bundle)],
    )
    .map_err(StoreError::sql("record last successful revision"))?;
    Ok(())
}

/// `host`'s last successful revision per deployment group.
pub fn last_successful(
    c: &Connection,
    host: &str,
) -> Result<std::collections::BTreeMap<String, BundleRef>, StoreError> {
    let mut stmt = c
        .prepare_cached("SELECT deployment_group, bundle FROM agent_revisions WHERE host = ?1")
        .map_err(StoreError::sql("read last successful revisions"))?;
    let rows = stmt
        .query_map([host], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(StoreError::sql("read last successful revisions"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("read last successful revisions"))?;
    rows.into_iter()
        .map(|(g, b)| Ok((g, parse("agent revision", &b)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use cutover_api::agents::{BundleFormat, CommandStatus};
    use cutover_spec::HostEvent;

    fn reg(name: &str, env: &str) -> AgentRegistration {
        AgentRegistration {
            name: name.into(),
            tags: [("env".to_string(), env.to_string())].into(),
            zone: Some("a".into()),
            target: None,
            version: "0.1.0".into(),
        }
    }

    fn command(id: &str) -> AgentCommand {
        AgentCommand {
            id: id.into(),
            deployment_id: "d-1".into(),
            application: "shop".into(),
            deployment_group: "prod".into(),
            deployment_group_id: "g-1".into(),
            event: HostEvent::Install,
            revision: None,
            file_exists_behavior: None,
        }
    }

    fn result(id: &str) -> CommandResult {
        CommandResult {
            id: id.into(),
            status: CommandStatus::Succeeded,
            output: String::new(),
            error: None,
            started_at_ms: 1,
            ended_at_ms: 2,
        }
    }

    #[test]
    fn registration_keys_and_polls() {
        let s = Store::open_in_memory().unwrap();
        s.with(|c| set_key(c, "h1", "abc", 10)).unwrap();
        let row = s.with(|c| get(c, "h1")).unwrap().unwrap();
        assert_eq!(
            (row.registration, row.key_hash.as_deref()),
            (None, Some("abc"))
        );
        s.with(|c| register(c, &reg("h1", "prod"), 20, Some(20)))
            .unwrap();
        s.with(|c| register(c, &reg("h1", "test"), 30, Some(30)))
            .unwrap();
        let row = s.with(|c| get(c, "h1")).unwrap().unwrap();
        assert_eq!(row.registration.unwrap().tags["env"], "test");
        assert_eq!((row.registered_at, row.last_seen), (10, 30));
        assert_eq!(
            row.key_hash.as_deref(),
            Some("abc"),
            "registering keeps the key"
        );
        assert_eq!(s.with(|c| touch(c, "h1", 40)).unwrap(), Some(30));
        assert_eq!(s.with(|c| touch(c, "nobody", 40)).unwrap(), None);
        assert!(s.with(|c| delete(c, "h1")).unwrap());
        assert!(s.with(list).unwrap().is_empty());
    }

    #[test]
    fn api_instances_keep_their_tags_and_one_iam_arn_is_one_instance() {
        let s = Store::open_in_memory().unwrap();
        let arn = "arn:aws:iam::123456789012:user/deployer";
        let created = s.with(|c| create_instance(c, "h1", arn, 10)).unwrap();
        assert_eq!(created, InstanceCreated::Created);
        assert_eq!(
            s.with(|c| create_instance(c, "h1", "other", 11)).unwrap(),
            InstanceCreated::NameTaken
        );
        assert_eq!(
            s.with(|c| create_instance(c, "h2", arn, 11)).unwrap(),
            InstanceCreated::IamArnTaken
        );
        let tags = [("env".to_string(), "prod".to_string())].into();
        assert!(s.with(|c| set_tags(c, "h1", &tags)).unwrap());
        assert!(!s.with(|c| set_tags(c, "h2", &tags)).unwrap());
        // The agent registers with tags of its own: new keys are added, a
        // key the API set keeps the API's value (env=test is ignored).
        let mut own = reg("h1", "test");
        own.tags.insert("zone".to_string(), "a".to_string());
        assert_eq!(own.tags["env"], "test");
        s.with(|c| register(c, &own, 20, Some(20))).unwrap();
        let row = s.with(|c| get(c, "h1")).unwrap().unwrap();
        assert_eq!(row.iam_arn.as_deref(), Some(arn));
        let tags = row.registration.unwrap().tags;
        assert_eq!((tags["env"].as_str(), tags["zone"].as_str()), ("prod", "a"));
        // An agent-registered host's tags are its agent's.
        s.with(|c| register(c, &reg("h3", "prod"), 20, Some(20)))
            .unwrap();
        let mut h3 = own;
        h3.name = "h3".into();
        s.with(|c| register(c, &h3, 22, Some(22))).unwrap();
        let tags = s
            .with(|c| get(c, "h3"))
            .unwrap()
            .unwrap()
            .registration
            .unwrap()
            .tags;
        assert_eq!(tags["env"], "test", "{tags:?}");
    }

    #[test]
    fn commands_are_idempotent_and_results_recorded_once() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.with(|c| dispatch(c, "h1", &command("a"), 1)).unwrap());
        assert!(!s.with(|c| dispatch(c, "h1", &command("a"), 2)).unwrap());
        s.with(|c| dispatch(c, "h1", &command("b"), 3)).unwrap();
        assert!(s.with(|c| cancel(c, "h1", "b")).unwrap());
        assert!(
            !s.with(|c| cancel(c, "h2", "a")).unwrap(),
            "another host's command"
        );
        let (run, cancelled) = s.with(|c| open_commands(c, "h1")).unwrap();
        assert_eq!(
            (run, cancelled),
            (vec![command("a")], vec!["b".to_string()])
        );
        assert_eq!(
            s.with(|c| record_result(c, "h2", &result("a"), 5)).unwrap(),
            Recorded::Unknown
        );
        assert_eq!(
            s.with(|c| record_result(c, "h1", &result("zz"), 5))
                .unwrap(),
            Recorded::Unknown
        );
        assert_eq!(
            s.with(|c| record_result(c, "h1", &result("a"), 5)).unwrap(),
            Recorded::Yes
        );
        let mut late = result("a");
        late.status = CommandStatus::Failed;
        assert_eq!(
            s.with(|c| record_result(c, "h1", &late, 6)).unwrap(),
            Recorded::Already
        );
        assert_eq!(
            s.with(|c| super::result(c, "a")).unwrap(),
            Some(result("a"))
        );
        assert_eq!(s.with(|c| super::result(c, "b")).unwrap(), None);
        let bundle = BundleRef {
            digest: "sha256:00".into(),
            format: BundleFormat::Tar,
        };
        s.with(|c| set_last_successful(c, "h1", "prod", &bundle))
            .unwrap();
        assert_eq!(
            s.with(|c| last_successful(c, "h1")).unwrap()["prod"],
            bundle
        );
    }
}
