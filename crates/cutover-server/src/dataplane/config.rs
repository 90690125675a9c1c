//! The data plane's desired configuration, derived from the store.
//!
//! Every service with a `loadBalancer` gets:
//! - two target groups `<service>-a` and `<service>-b`; the service row says
//!   which one is live (`lb_group`), the other receives a blue/green
//!   deployment's replacement tasks;
//! - a production listener `<service>-prod` forwarding to both groups with
//!   the weights of the running deployment (100/0 when there is none);
//! - a test listener `<service>-test` (when declared) forwarding to the
//!   replacement group once the deployment allowed test traffic, else to the
//!   live group;
//! - on both listeners, a rule carrying the stack's `authorizer` and
//!   `throttle` (for `guardedPaths`, or every path), and with `sourceIp` a
//!   fixed 403 for other clients; both groups carry the stack's connection
//!   keys (`protocol`, `caFile`, ..., `cutover_spec::upstream`).
//!
//! Only RUNNING tasks with an endpoint are targets; the proxy's own health
//! checks decide when they receive traffic. This is a pure function of the
//! rows, so the same store always yields the same configuration.
//!
//! Each service's part is checked on its own ([`admit`]): a part the proxy
//! would refuse, or whose listener address an older service already holds,
//! is left out (and reported), so one bad service never stops the others
//! from deploying. `apply` runs the same check before it writes a stack.

use cutover_core::task::{DesiredStatus, TaskState};
use cutover_proxy::config::ProxyConfig;
use cutover_spec::stack::LoadBalancer;
use cutover_store::{DeploymentRow, ServiceRow, TaskRow};
use serde_json::{Value, json};

/// The task set id of a deployment's replacement tasks.
pub(crate) fn green_set(deployment_id: &str) -> String {
    format!("green-{deployment_id}")
}

/// Name of a service's target group `a` or `b`.
pub(crate) fn group_name(service: &str, group: &str) -> String {
    format!("{service}-{group}")
}

/// The group that is not `group`.
pub(crate) fn other_group(group: &str) -> &'static str {
    if group == "a" { "b" } else { "a" }
}

/// Production listener name.
pub(crate) fn prod_listener(service: &str) -> String {
    format!("{service}-prod")
}

/// Test listener name.
pub(crate) fn test_listener(service: &str) -> String {
    format!("{service}-test")
}

/// One service as the configuration needs it.
pub(crate) struct ServiceView<'a> {
    pub(crate) service: &'a ServiceRow,
    pub(crate) tasks: &'a [TaskRow],
    /// The running (unfinished) deployment, if any.
    pub(crate) deployment: Option<&'a DeploymentRow>,
}

/// The configuration to push, and the services left out of it.
#[derive(Debug)]
pub(crate) struct Desired {
    /// The proxy configuration (as the JSON the admin API takes).
    pub(crate) config: Value,
    /// Services whose part was left out, and why (see [`admit`]).
    pub(crate) left_out: Vec<(String, Refusal)>,
}

/// One service's part of the configuration: its listeners and target groups.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) service: String,
    /// When the service was created: on a clash the older one keeps the
    /// address.
    pub(crate) created_at: u64,
    pub(crate) listeners: Vec<Value>,
    pub(crate) groups: Vec<Value>,
}

/// Which of a service's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerRole {
    Production,
    Test,
}

impl ListenerRole {
    /// The stack field that declares it.
    pub(crate) fn field(self) -> &'static str {
        match self {
            ListenerRole::Production => "listener",
            ListenerRole::Test => "testListener",
        }
    }
}

/// Why a service's part cannot go into the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The part alone is not a configuration the proxy accepts.
    #[error("its load balancer is not a valid proxy configuration: {0}")]
    Invalid(String),
    /// One of its listener addresses is another service's (or its own
    /// other listener's).
    #[error("listener address {address} is already used by service {other:?}")]
    Clash {
        address: std::net::SocketAddr,
        role: ListenerRole,
        other: String,
    },
    /// One of its listener addresses is the data plane's admin address.
    #[error("listener address {address} is the data plane's admin address")]
    Admin {
        address: std::net::SocketAddr,
        role: ListenerRole,
    },
}

/// Decides which parts go into the configuration: each part is checked
/// alone with the proxy's own validation, then its listener addresses
/// against those of the parts already admitted (older services first, so
/// a newcomer never takes an address from a running service) and the admin
/// address. One bad service never keeps the others out. Returns one answer
/// per part, in the order given.
pub(crate) fn admit(admin: Option<&str>, parts: &[Part]) -> Vec<Result<(), Refusal>> {
    let admin_addr: Option<std::net::SocketAddr> = admin.and_then(|a| a.parse().ok());
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| {
        (parts[a].created_at, &parts[a].service).cmp(&(parts[b].created_at, &parts[b].service))
    });
    let mut used: std::collections::HashMap<std::net::SocketAddr, &str> =
        std::collections::HashMap::new();
    let mut out = vec![Ok(()); parts.len()];
    for i in order {
        let p = &parts[i];
        let alone = json!({"listeners": p.listeners, "targetGroups": p.groups});
        let checked = serde_json::from_value::<ProxyConfig>(alone)
            .map_err(|e| Refusal::Invalid(e.to_string()))
            .and_then(|cfg| {
                cfg.validate()
                    .map_err(|e| Refusal::Invalid(e.to_string()))?;
                Ok(cfg)
            });
        let cfg = match checked {
            Ok(cfg) => cfg,
            Err(e) => {
                out[i] = Err(e);
                continue;
            }
        };
        let mut addresses = Vec::new();
        for l in &cfg.listeners {
            // `validate` parsed every address.
            let Ok(address) = l.address.parse::<std::net::SocketAddr>() else {
                continue;
            };
            let role = if l.name == test_listener(&p.service) {
                ListenerRole::Test
            } else {
                ListenerRole::Production
            };
            if admin_addr == Some(address) {
                out[i] = Err(Refusal::Admin { address, role });
                break;
            }
            if let Some(other) = used.get(&address) {
                out[i] = Err(Refusal::Clash {
                    address,
                    role,
                    other: (*other).to_string(),
                });
                break;
            }
            addresses.push(address);
        }
        if out[i].is_ok() {
            for a in addresses {
                used.insert(a, &p.service);
            }
        }
    }
    out
}

/// A service's part with no targets, as a stack declares it (what `apply`
/// checks before anything is written).
pub(crate) fn declared_part(service: &str, created_at: u64, lb: &LoadBalancer) -> Part {
    part(service, created_at, lb, "a", &[], &[], 0, false)
}

/// A target group's health check as the proxy takes it.
pub(crate) fn health_json(hc: &cutover_spec::stack::TargetHealthCheck) -> Value {
    let mut check = json!({
        "path": hc.path,
        "intervalSeconds": hc.interval_seconds,
        "timeoutSeconds": hc.timeout().as_secs(),
        "healthyThresholdCount": hc.healthy_threshold_count,
        "unhealthyThresholdCount": hc.unhealthy_threshold_count,
        "matcher": hc.matcher.as_str(),
    });
    if let Some(g) = &hc.grpc_code {
        check["grpcCode"] = g.as_str().into();
    }
    check
}

/// Builds one service's listeners and target groups.
#[allow(clippy::too_many_arguments)]
fn part(
    service: &str,
    created_at: u64,
    lb: &LoadBalancer,
    live: &str,
    live_targets: &[String],
    other_targets: &[String],
    pct: u32,
    test_on_green: bool,
) -> Part {
    let other = other_group(live);
    let health = health_json(&lb.health_check);
    let delay = lb.deregistration_delay_seconds;
    // The connection keys (protocol, TLS, pool) as `lb.yaml` names them: the stack and the
    // proxy share their model.
    let connection = match serde_json::to_value(lb.connection()) {
        Ok(Value::Object(c)) => c,
        _ => serde_json::Map::new(),
    };
    let mut groups = Vec::new();
    for (g, t) in [(live, live_targets), (other, other_targets)] {
        let mut group = json!({
            "name": group_name(service, g),
            "targets": t,
            "healthCheck": health,
            "deregistrationDelaySeconds": delay,
        });
        if let Some(group) = group.as_object_mut() {
            group.extend(connection.clone());
        }
        groups.push(group);
    }
    // The stack's authorizer and throttle guard the requests of the service's listeners (all,
    // or those of `guardedPaths`): a rule carrying them, with the listener's forward. With
    // `sourceIp`, only those networks are forwarded; the others get 403.
    let source_ip = (!lb.source_ip.is_empty()).then(|| json!({"sourceIp": lb.source_ip}));
    let listener = |name: String, address: String, forward: Value| {
        let mut rules = Vec::new();
        if lb.authorizer.is_some() || lb.throttle.is_some() {
            let paths = if lb.guarded_paths.is_empty() {
                vec!["*".to_owned()]
            } else {
                lb.guarded_paths.clone()
            };
            let mut conditions = vec![json!({"pathPattern": paths})];
            conditions.extend(source_ip.clone());
            rules.push(json!({
                "conditions": conditions,
                "authorizer": lb.authorizer,
                "throttle": lb.throttle,
                "action": {"forward": forward},
            }));
        }
        let default_action = match &source_ip {
            None => json!({"forward": forward}),
            Some(allowed) => {
                if rules.is_empty() || !lb.guarded_paths.is_empty() {
                    rules.push(json!({"conditions": [allowed], "action": {"forward": forward}}));
                }
                json!({"fixedResponse": {"statusCode": 403, "messageBody": "Forbidden\n"}})
            }
        };
        let mut l = json!({"name": name, "address": address, "defaultAction": default_action});
        if !rules.is_empty() {
            l["rules"] = Value::Array(rules);
        }
        l
    };
    let mut listeners = vec![listener(
        prod_listener(service),
        lb.listener.to_string(),
        json!([
            {"targetGroup": group_name(service, live), "weight": 100 - pct},
            {"targetGroup": group_name(service, other), "weight": pct},
        ]),
    )];
    if let Some(test) = lb.test_listener {
        let (tw_live, tw_other) = if test_on_green { (0, 100) } else { (100, 0) };
        listeners.push(listener(
            test_listener(service),
            test.to_string(),
            json!([
                {"targetGroup": group_name(service, live), "weight": tw_live},
                {"targetGroup": group_name(service, other), "weight": tw_other},
            ]),
        ));
    }
    Part {
        service: service.to_string(),
        created_at,
        listeners,
        groups,
    }
}

/// Builds the proxy configuration (as the JSON the admin API takes) from
/// the parts [`admit`] lets in; the others are listed in `left_out`.
#[cfg(test)]
pub(crate) fn desired(admin: &str, services: &[ServiceView<'_>]) -> Desired {
    desired_with_hosts(admin, services, Vec::new())
}

/// [`desired`] with the host deployment groups' parts (see
/// [`super::hosts`]) after the services'.
pub(crate) fn desired_with_hosts(
    admin: &str,
    services: &[ServiceView<'_>],
    hosts: Vec<Part>,
) -> Desired {
    let mut parts = Vec::new();
    for v in services {
        let svc = v.service;
        let Some(lb) = svc.spec.load_balancer.as_ref() else {
            continue;
        };
        if svc.status != cutover_core::service::ServiceStatus::Active && v.tasks.is_empty() {
            continue;
        }
        let live = svc.lb_group.as_str();
        let green = v.deployment.filter(|d| d.green_provisioned);
        let green_set_id = green.map(|d| green_set(&d.id));
        let targets = |in_set: &dyn Fn(&str) -> bool| -> Vec<String> {
            let mut t: Vec<String> = v
                .tasks
                .iter()
                .filter(|t| {
                    in_set(&t.task_set)
                        && t.last_status == TaskState::Running
                        && t.desired_status == DesiredStatus::Running
                })
                .filter_map(|t| t.endpoint.clone())
                .collect();
            t.sort();
            t
        };
        // The live group holds every running task of the service that is
        // neither a blue/green replacement nor retired by a promotion: the
        // current revision and, during a rolling update, the older ones
        // until the controller drains them.
        let live_targets =
            targets(&|set: &str| !set.starts_with("green-") && !set.starts_with("retired-"));
        let other_targets = match &green_set_id {
            Some(g) => targets(&|set: &str| set == g),
            None => Vec::new(),
        };
        let pct = green.map_or(0, |d| u32::from(d.prod_green_percent.min(100)));
        let on_green = green.is_some_and(|d| d.test_on_green);
        parts.push(part(
            &svc.name,
            svc.created_at,
            lb,
            live,
            &live_targets,
            &other_targets,
            pct,
            on_green,
        ));
    }
    parts.extend(hosts);
    let verdicts = admit(Some(admin), &parts);
    let mut listeners = Vec::new();
    let mut groups = Vec::new();
    let mut left_out = Vec::new();
    for (p, verdict) in parts.into_iter().zip(verdicts) {
        match verdict {
            Ok(()) => {
                listeners.extend(p.listeners);
                groups.extend(p.groups);
            }
            Err(why) => left_out.push((p.service, why)),
        }
    }
    Desired {
        config: json!({"admin": admin, "listeners": listeners, "targetGroups": groups}),
        left_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(lb_group: &str) -> ServiceRow {
        ServiceRow {
            name: "web".into(),
            task_definition: "web:1".into(),
            desired_count: 1,
            runtime: "process".into(),
            spec: serde_json::from_value(
                json!({"loadBalancer": {"containerName": "web", "containerPort": 8080,
                "listener": "127.0.0.1:18080", "testListener": "127.0.0.1:19080",
                "healthCheck": {"path": "/health", "intervalSeconds": 1, "timeoutSeconds": 1,
                    "healthyThresholdCount": 2, "unhealthyThresholdCount": 2, "matcher": "200-299"},
                "deregistrationDelaySeconds": 2}}),
            )
            .unwrap(),
            status: cutover_core::service::ServiceStatus::Active,
            lb_group: lb_group.into(),
            generation: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn task(id: &str, set: &str, status: &str, endpoint: &str) -> TaskRow {
        TaskRow {
            id: id.into(),
            service: "web".into(),
            task_set: set.into(),
            task_definition: "web:1".into(),
            runtime: "process".into(),
            last_status: status.parse().unwrap(),
            desired_status: DesiredStatus::Running,
            health_status: cutover_core::task::HealthStatus::Healthy,
            endpoint: Some(endpoint.into()),
            handle: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
            created_at: 0,
            started_at: None,
            stopping_at: None,
            stopped_at: None,
        }
    }

    fn deployment(pct: u8, test: bool) -> DeploymentRow {
        DeploymentRow {
            id: "d1".into(),
            service: "web".into(),
            status: cutover_deploy::DeploymentStatus::InProgress,
            from_task_definition: "web:1".into(),
            to_task_definition: "web:2".into(),
            config: "x".into(),
            engine: cutover_deploy::BlueGreen::new(
                cutover_deploy::BlueGreenSpec::new(
                    "d1",
                    cutover_deploy::TrafficRouting::ecs_all_at_once(),
                ),
                0,
            )
            .into(),
            green_provisioned: true,
            prod_green_percent: pct,
            test_on_green: test,
            started_by: "t".into(),
            rollback_of: None,
            rolled_back_by: None,
            outcome: None,
            created_at: 0,
            updated_at: 0,
            finished_at: None,
        }
    }

    #[test]
    fn without_a_deployment_everything_goes_to_the_live_group() {
        let svc = service("a");
        let tasks = [
            task("t1", "web:1", "RUNNING", "127.0.0.1:2"),
            task("t2", "web:1", "PENDING", "127.0.0.1:3"),
            task("t0", "web:1", "RUNNING", "127.0.0.1:1"),
        ];
        let cfg = desired(
            "127.0.0.1:9",
            &[ServiceView {
                service: &svc,
                tasks: &tasks,
                deployment: None,
            }],
        )
        .config;
        assert_eq!(cfg["targetGroups"][0]["name"], "web-a");
        assert_eq!(
            cfg["targetGroups"][0]["targets"],
            json!(["127.0.0.1:1", "127.0.0.1:2"])
        );
        assert_eq!(cfg["targetGroups"][1]["targets"], json!([]));
        assert_eq!(
            cfg["listeners"][0]["defaultAction"]["forward"],
            json!([{"targetGroup": "web-a", "weight": 100}, {"targetGroup": "web-b", "weight": 0}])
        );
        assert_eq!(cfg["listeners"][1]["name"], "web-test");
        assert_eq!(
            cfg["listeners"][1]["defaultAction"]["forward"][0]["weight"],
            100
        );
    }

    #[test]
    fn a_stack_authorizer_and_throttle_guard_both_listeners() {
        let mut svc = service("a");
        let lb = svc.spec.load_balancer.as_mut().unwrap();
        lb.authorizer = Some(
            serde_json::from_value(json!({"type": "JWT", "issuer": "https://issuer.example",
                "audience": ["api"], "jwksUri": "https://issuer.example/jwks.json"}))
            .unwrap(),
        );
        lb.throttle = Some(serde_json::from_value(json!({"rate": 5, "burst": 10})).unwrap());
        let lb = lb.clone();
        let view = ServiceView {
            service: &svc,
            tasks: &[],
            deployment: None,
        };
        let desired = desired("127.0.0.1:9", &[view]);
        assert!(desired.left_out.is_empty(), "{:?}", desired.left_out);
        let cfg: ProxyConfig = serde_json::from_value(desired.config).unwrap();
        cfg.validate().unwrap();
        for l in &cfg.listeners {
            let rule = &l.rules[0];
            assert_eq!(rule.action, l.default_action, "{}", l.name);
            assert_eq!(rule.authorizer, lb.authorizer);
            assert_eq!(rule.throttle, lb.throttle);
        }
        assert_eq!(cfg.listeners.len(), 2);
    }

    #[test]
    fn a_rolling_update_keeps_the_older_revision_in_the_live_group_until_drained() {
        let mut svc = service("a");
        svc.task_definition = "web:2".into();
        let mut draining = task("t0", "web:1", "STOPPING", "127.0.0.1:3");
        draining.desired_status = DesiredStatus::Stopped;
        let tasks = [
            task("t1", "web:1", "RUNNING", "127.0.0.1:2"),
            task("n1", "web:2", "RUNNING", "127.0.0.1:5"),
            task("r1", "retired-d0", "RUNNING", "127.0.0.1:7"),
            draining,
        ];
        let cfg = desired(
            "127.0.0.1:9",
            &[ServiceView {
                service: &svc,
                tasks: &tasks,
                deployment: None,
            }],
        )
        .config;
        assert_eq!(
            cfg["targetGroups"][0]["targets"],
            json!(["127.0.0.1:2", "127.0.0.1:5"])
        );
    }

    #[test]
    fn a_deployment_splits_production_and_moves_the_test_listener() {
        let svc = service("b");
        let tasks = [
            task("t1", "web:1", "RUNNING", "127.0.0.1:2"),
            task("g1", &green_set("d1"), "RUNNING", "127.0.0.1:5"),
        ];
        let d = deployment(20, true);
        let cfg = desired(
            "127.0.0.1:9",
            &[ServiceView {
                service: &svc,
                tasks: &tasks,
                deployment: Some(&d),
            }],
        )
        .config;
        assert_eq!(cfg["targetGroups"][0]["name"], "web-b");
        assert_eq!(cfg["targetGroups"][1]["name"], "web-a");
        assert_eq!(cfg["targetGroups"][1]["targets"], json!(["127.0.0.1:5"]));
        assert_eq!(
            cfg["listeners"][0]["defaultAction"]["forward"],
            json!([{"targetGroup": "web-b", "weight": 80}, {"targetGroup": "web-a", "weight": 20}])
        );
        assert_eq!(
            cfg["listeners"][1]["defaultAction"]["forward"],
            json!([{"targetGroup": "web-b", "weight": 0}, {"targetGroup": "web-a", "weight": 100}])
        );
        // The result is a configuration the proxy accepts.
        let text = serde_json::to_string(&cfg).unwrap();
        cutover_proxy::config::parse_json("desired.json", &text).unwrap();
    }

    #[test]
    fn a_clashing_or_invalid_service_is_left_out_and_the_others_stay() {
        let older = service("a");
        let mut newer = service("a");
        newer.name = "x2".into();
        newer.created_at = 5;
        // Same production listener as `web`, created later.
        let mut broken = service("a");
        broken.name = "bad".into();
        broken.created_at = 1;
        broken.spec.load_balancer.as_mut().unwrap().listener = "127.0.0.1:9".parse().unwrap();
        broken.spec.load_balancer.as_mut().unwrap().test_listener = None;
        let mut fine = service("a");
        fine.name = "fine".into();
        fine.created_at = 9;
        fine.spec.load_balancer.as_mut().unwrap().listener = "127.0.0.1:18081".parse().unwrap();
        fine.spec.load_balancer.as_mut().unwrap().test_listener = None;
        let tasks = [task("t1", "web:1", "RUNNING", "127.0.0.1:2")];
        let view = |s| ServiceView {
            service: s,
            tasks: &tasks,
            deployment: None,
        };
        let d = desired(
            "127.0.0.1:9",
            &[view(&newer), view(&older), view(&broken), view(&fine)],
        );
        let names: Vec<&str> = d.config["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web-prod", "web-test", "fine-prod"]);
        assert_eq!(
            d.left_out,
            [
                (
                    "x2".to_string(),
                    Refusal::Clash {
                        address: "127.0.0.1:18080".parse().unwrap(),
                        role: ListenerRole::Production,
                        other: "web".into()
                    }
                ),
                (
                    "bad".to_string(),
                    Refusal::Admin {
                        address: "127.0.0.1:9".parse().unwrap(),
                        role: ListenerRole::Production,
                    }
                ),
            ]
        );
        let text = serde_json::to_string(&d.config).unwrap();
        cutover_proxy::config::parse_json("desired.json", &text).unwrap();
    }
}
