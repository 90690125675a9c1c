//! A data plane on every node (issue 15): the managed local proxy plus one
//! `cutover proxy` per cluster node, each administered over the network.
//!
//! [`FanOut::sync`] pushes the configuration the local proxy got to every
//! node proxy and succeeds only when all of them acknowledged it, so a
//! traffic step of a deployment counts as applied only when every proxy
//! serves it; a node proxy that does not answer fails the sync, which holds
//! the deployment: the traffic step is tried again after a pause (1, 2, then
//! 4 s) and fails it into a rollback after its last attempt.
//! A node that acknowledged the configuration is asked at each sync whether
//! it still serves the version it acknowledged it with, so a node proxy
//! replaced by a new one (a rescheduled Swarm task, without that state) is
//! pushed the configuration again though nothing changed.
//! Health, status and the metrics feed stay the local proxy's: it checks the
//! same targets, and alarms read its traffic.
//!
//! A node proxy runs with an admin token of its own, given by its
//! environment or a file (`CUTOVER_PROXY_TOKEN`), which the API cannot
//! change; its admin address is given by `--admin-address`, which wins over
//! the configuration's `admin`.

use super::{DataPlane, DataPlaneError, ManagedProxy};
use cutover_proxy::api::{HealthReport, StatusReport};
use cutover_proxy::client::AdminClient;
use cutover_proxy::metrics::MetricsFeed;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Mutex;

/// One node's proxy: where it is administered and what it acknowledged.
struct NodeProxy {
    admin: SocketAddr,
    client: AdminClient,
    /// The configuration it acknowledged last, and the version it gave it.
    acked: Mutex<Option<Acked>>,
}

/// What a node proxy acknowledged.
#[derive(Debug, Clone, PartialEq)]
struct Acked {
    config: Value,
    version: u64,
}

/// The local proxy and the node proxies, as one data plane.
pub(crate) struct FanOut {
    local: Arc<ManagedProxy>,
    nodes: Vec<NodeProxy>,
    /// Serialises syncs, as the local proxy does.
    turn: Mutex<()>,
}

impl FanOut {
    /// The local proxy plus a proxy at each of `nodes`, called with `token`.
    pub(crate) fn new(local: Arc<ManagedProxy>, nodes: &[SocketAddr], token: &str) -> Self {
        Self {
            local,
            nodes: nodes
                .iter()
                .map(|&admin| NodeProxy {
                    admin,
                    client: AdminClient::new(format!("http://{admin}")).with_token(token),
                    acked: Mutex::new(None),
                })
                .collect(),
            turn: Mutex::new(()),
        }
    }

    /// Pushes `config` to one node proxy unless it acknowledged it already
    /// and still serves the version it acknowledged it with (a node proxy
    /// replaced by a new one, without that state, is pushed it again).
    async fn push(node: &NodeProxy, config: &Value) -> Result<(), DataPlaneError> {
        let mut acked = node.acked.lock().await;
        if let Some(known) = acked.as_ref().filter(|a| &a.config == config) {
            match node.client.status().await {
                Ok(status) if status.version == known.version => return Ok(()),
                Ok(status) => tracing::info!(
                    node = %node.admin,
                    acknowledged = known.version,
                    serving = status.version,
                    "a node's data plane serves another version than it acknowledged; pushing the configuration again"
                ),
                Err(e) => {
                    *acked = None;
                    tracing::warn!(node = %node.admin, error = %e, "a node's data plane does not answer");
                    return Err(DataPlaneError::Node {
                        admin: node.admin,
                        source: e,
                    });
                }
            }
        }
        let text =
            serde_json::to_string(config).map_err(|e| DataPlaneError::Derive(e.to_string()))?;
        let parsed = cutover_proxy::config::parse_json("desired.json", &text)
            .map_err(|e| DataPlaneError::Derive(format!("node configuration is invalid: {e}")))?;
        match node.client.put_config(&parsed).await {
            Ok(version) => {
                tracing::debug!(node = %node.admin, version, "node data plane configuration in force");
                *acked = Some(Acked {
                    config: config.clone(),
                    version,
                });
                Ok(())
            }
            Err(e) => {
                // Unknown state: push again next time.
                *acked = None;
                tracing::warn!(node = %node.admin, error = %e, "a node's data plane did not acknowledge the configuration");
                Err(DataPlaneError::Node {
                    admin: node.admin,
                    source: e,
                })
            }
        }
    }
}

/// The configuration for a node: the local one without the local proxy's
/// admin token (a node proxy keeps its own, which the API cannot change).
fn for_node(mut config: Value) -> Value {
    if let Some(map) = config.as_object_mut() {
        map.remove("adminToken");
    }
    config
}

#[async_trait::async_trait]
impl DataPlane for FanOut {
    async fn sync(&self) -> Result<u64, DataPlaneError> {
        let _turn = self.turn.lock().await;
        let version = self.local.sync().await?;
        let Some(config) = self.local.current().await else {
            return Ok(version);
        };
        let config = for_node(config);
        let results =
            futures_util::future::join_all(self.nodes.iter().map(|n| Self::push(n, &config))).await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(version)
    }

    async fn health(&self) -> Result<HealthReport, DataPlaneError> {
        self.local.health().await
    }

    async fn status(&self) -> Result<StatusReport, DataPlaneError> {
        self.local.status().await
    }

    async fn metrics_feed(&self, since_unix_sec: u64) -> Result<MetricsFeed, DataPlaneError> {
        self.local.metrics_feed(since_unix_sec).await
    }

    fn admin(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| n.admin.to_string()).collect();
        format!("{} (nodes: {})", self.local.admin(), nodes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_never_get_the_local_admin_token() {
        let c = for_node(json!({"admin": "127.0.0.1:1", "adminToken": "secret", "listeners": []}));
        assert_eq!(c, json!({"admin": "127.0.0.1:1", "listeners": []}));
    }

    /// A node proxy that does not acknowledge fails the push (so the sync,
    /// and the deployment's traffic step, is not applied) and forgets what
    /// it acknowledged before, so the next sync pushes to it again.
    #[tokio::test]
    async fn a_node_that_does_not_acknowledge_fails_the_push_and_is_pushed_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let admin = listener.local_addr().unwrap();
        drop(listener);
        let config = json!({"admin": "127.0.0.1:1", "listeners": [], "targetGroups": []});
        let node = NodeProxy {
            admin,
            client: AdminClient::new(format!("http://{admin}")).with_token("t"),
            acked: Mutex::new(Some(Acked {
                config: json!({"admin": "127.0.0.1:1", "listeners": []}),
                version: 2,
            })),
        };
        let err = FanOut::push(&node, &config).await.unwrap_err();
        assert!(
            matches!(&err, DataPlaneError::Node { admin: a, .. } if *a == admin),
            "{err}"
        );
        assert_eq!(*node.acked.lock().await, None);
        // Nothing is skipped as "already acknowledged" on the next try.
        assert!(FanOut::push(&node, &config).await.is_err());
    }

    /// A real node proxy, in this process, administered at `admin` with
    /// `token`, keeping its state in `state`; stopped by sending on the
    /// returned channel.
    async fn node_proxy(
        admin: SocketAddr,
        state: &std::path::Path,
        token_file: &std::path::Path,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let address_file = state.with_extension("address");
        let _ = std::fs::remove_file(&address_file);
        let opts = cutover_proxy::ProxyOptions {
            state_dir: Some(state.to_path_buf()),
            workers: 1,
            admin_address: Some(admin.to_string()),
            admin_token_file: Some(token_file.to_path_buf()),
            admin_address_file: Some(address_file.clone()),
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            cutover_proxy::run(opts, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        for _ in 0..2_000 {
            if let Ok(text) = std::fs::read_to_string(&address_file) {
                return (text.trim().parse().unwrap(), stop, task);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the node proxy did not bind its admin API");
    }

    /// A node proxy replaced by a new one (Swarm rescheduling it: same
    /// address, no state) is pushed the configuration again at the next
    /// sync, though the configuration did not change; an unchanged node is
    /// not pushed again.
    #[tokio::test]
    async fn a_replaced_node_proxy_is_pushed_the_unchanged_configuration_again() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "node-token").unwrap();
        std::fs::set_permissions(
            &token_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let (admin, stop, task) = node_proxy(any_port, &dir.path().join("a"), &token_file).await;
        let node = NodeProxy {
            admin,
            client: AdminClient::new(format!("http://{admin}")).with_token("node-token"),
            acked: Mutex::new(None),
        };
        let config = json!({"admin": "127.0.0.1:1", "listeners": [], "targetGroups": []});
        FanOut::push(&node, &config).await.unwrap();
        let first = node.acked.lock().await.clone().unwrap().version;
        FanOut::push(&node, &config).await.unwrap();
        assert_eq!(node.client.status().await.unwrap().version, first);

        let _ = stop.send(());
        task.await.unwrap();
        let (again, stop, task) = node_proxy(admin, &dir.path().join("b"), &token_file).await;
        assert_eq!(again, admin);
        // A new client: the old one's pooled connection would still reach
        // the stopped proxy's connection task here, where a process exit
        // would have closed it.
        let node = NodeProxy {
            admin,
            client: AdminClient::new(format!("http://{admin}")).with_token("node-token"),
            acked: Mutex::new(node.acked.into_inner()),
        };
        let fresh = node.client.status().await.unwrap().version;
        assert_ne!(fresh, first, "a new proxy starts from its own version");
        FanOut::push(&node, &config).await.unwrap();
        let pushed = node.acked.lock().await.clone().unwrap().version;
        assert_eq!(node.client.status().await.unwrap().version, pushed);
        assert!(pushed > fresh);
        let _ = stop.send(());
        task.await.unwrap();
    }
}
