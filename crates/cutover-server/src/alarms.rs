//! Alarm evaluation at one-second resolution over the data plane's own
//! metrics.
//!
//! Every 100 ms the loop reads the proxy's metrics feed from the last
//! second it saw; each completed second is observed by every metric alarm,
//! then the alarms are evaluated (a period is judged the moment it
//! completes), then the composite alarms. A change of state is stored and
//! recorded; a change to ALARM is sent at once to the running deployments,
//! whose engines decide whether it concerns them. So the path from the
//! first bad second to the rollback is: the end of that second, at most
//! 100 ms of polling, one store write, one proxy configuration push.

use crate::dataplane::SharedDataPlane;
use crate::dataplane::config::{group_name, prod_listener, test_listener};
use crate::deploy::Deployer;
use cutover_clock::{Clock, SharedClock};
use cutover_deploy::alarm::{
    AlarmEvaluator, AlarmState, CompositeAlarm, MetricAlarm, SecondSample, Transition,
};
use cutover_proxy::metrics::SecondBucket;
use cutover_spec::stack::{Alarm, ListenerKind, MetricName, MetricRef, parse_alarm_rule};
use cutover_store::{AlarmRow, AlarmSpec, Store, ops};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A request to set an alarm's state by hand (drills).
#[derive(Debug)]
pub(crate) struct SetState {
    pub(crate) name: String,
    pub(crate) state: AlarmState,
    pub(crate) reason: String,
}

enum Evaluator {
    Metric(MetricRef, AlarmEvaluator),
    Composite(CompositeAlarm),
}

impl Evaluator {
    fn state(&self) -> AlarmState {
        match self {
            Evaluator::Metric(_, e) => e.state(),
            Evaluator::Composite(c) => c.state(),
        }
    }
}

/// The evaluator of a stored alarm, or why it cannot be evaluated.
fn build(name: &str, spec: &AlarmSpec) -> Result<Evaluator, String> {
    Ok(match spec.declared()? {
        Alarm::Metric(m) => Evaluator::Metric(
            m.metric.clone(),
            AlarmEvaluator::new(MetricAlarm::from_spec(name, m)),
        ),
        Alarm::Composite(c) => {
            // The stack's grammar, so that what `apply` accepted is what is
            // evaluated.
            let rule = parse_alarm_rule(&c.alarm_rule)
                .map_err(|e| format!("alarm rule \"{}\": {e}", c.alarm_rule))?;
            Evaluator::Composite(CompositeAlarm::new(name, rule))
        }
    })
}

/// One second of one metric, as an alarm sees it. Counts are 0 in a second
/// without requests; response time is missing then.
pub(crate) fn sample(bucket: &SecondBucket, metric: &MetricRef) -> Option<SecondSample> {
    let listener = match metric.listener {
        Some(ListenerKind::Test) => test_listener(&metric.service),
        _ => prod_listener(&metric.service),
    };
    let gauge = |v: f64| SecondSample {
        sum: v,
        count: 1,
        min: v,
        max: v,
        p50: v,
        p90: v,
        p99: v,
    };
    let groups = || {
        ["a", "b"]
            .iter()
            .filter_map(|g| bucket.target_groups.get(&group_name(&metric.service, g)))
            .collect::<Vec<_>>()
    };
    if matches!(
        metric.name,
        MetricName::HealthyHostCount | MetricName::UnHealthyHostCount
    ) {
        let gs = groups();
        if gs.is_empty() {
            return None;
        }
        let v: u64 = gs
            .iter()
            .map(|g| {
                if metric.name == MetricName::HealthyHostCount {
                    g.healthy_host_count
                } else {
                    g.unhealthy_host_count
                }
            })
            .sum();
        return Some(gauge(v as f64));
    }
    let l = bucket.listeners.get(&listener)?;
    Some(match metric.name {
        MetricName::RequestCount => SecondSample::count_metric(l.request_count),
        MetricName::Target2xx => SecondSample::count_metric(l.target2xx),
        MetricName::Target3xx => SecondSample::count_metric(l.target3xx),
        MetricName::Target4xx => SecondSample::count_metric(l.target4xx),
        MetricName::Target5xx => SecondSample::count_metric(l.target5xx),
        MetricName::Elb5xx => SecondSample::count_metric(l.elb5xx),
        MetricName::ActiveConnectionCount => gauge(l.active_connections.max(0) as f64),
        MetricName::TargetResponseTime => {
            let n = l.request_count;
            let p50 = l.p50_ms?;
            if n == 0 {
                return None;
            }
            let p90 = l.p90_ms.unwrap_or(p50);
            let p99 = l.p99_ms.unwrap_or(p90);
            // The feed carries percentiles, not a sum: the average is
            // approximated by the median.
            SecondSample {
                sum: p50 * n as f64,
                count: n,
                min: p50.min(p90),
                max: p99,
                p50,
                p90,
                p99,
            }
        }
        MetricName::HealthyHostCount | MetricName::UnHealthyHostCount => return None,
    })
}

/// The history event of a change of state: `OK -> ALARM: why`.
fn transition_message(from: AlarmState, to: AlarmState, reason: &str) -> String {
    format!("{from} -> {to}: {reason}")
}

/// The state a history event of [`transition_message`] changed to; `None`
/// for any other text. The console's alarm chart reads the state over
/// time with it.
pub(crate) fn transition_target(message: &str) -> Option<AlarmState> {
    let (_, rest) = message.split_once(" -> ")?;
    let (to, _) = rest.split_once(": ")?;
    to.parse().ok()
}

async fn record(
    store: &Arc<Store>,
    clock: &dyn Clock,
    name: &str,
    spec: &AlarmSpec,
    t: &Transition,
) {
    let row = AlarmRow {
        name: name.to_string(),
        spec: spec.clone(),
        state: t.to,
        reason: t.reason.clone(),
        updated_at: clock.now_ms(),
    };
    let msg = transition_message(t.from, t.to, &t.reason);
    write_state(store, row, msg.clone()).await;
    tracing::info!(alarm = name, "{msg}");
}

/// Stores `row`'s state with `event` in the alarm's history, only if the
/// stored declaration is still `row.spec`: an apply that changed the alarm
/// meanwhile keeps its new spec (the next reload judges that one).
async fn write_state(store: &Arc<Store>, row: AlarmRow, event: String) {
    let name = row.name.clone();
    let written = store
        .transact(move |c| {
            let current = ops::list_alarms(c)?
                .into_iter()
                .find(|a| a.name == row.name);
            if current.is_none_or(|a| a.spec != row.spec) {
                return Ok(());
            }
            ops::put_alarm(c, &row)?;
            ops::add_event(c, row.updated_at, &format!("alarm/{}", row.name), &event)?;
            Ok(())
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(alarm = %name, error = %e, "cannot record alarm state");
    }
}

/// The alarms being evaluated, with the spec each was built from.
type Evaluators = BTreeMap<String, (AlarmSpec, Evaluator)>;

/// The alarms that cannot be evaluated, with when each was last logged.
type Unevaluable = BTreeMap<String, u64>;

/// How often an alarm that still cannot be evaluated is logged again.
const UNEVALUABLE_LOG_EVERY_MS: u64 = 10 * 60 * 1000;

/// Brings the evaluators in line with the stored alarms. An alarm whose
/// declaration cannot be read is not evaluated: it is set to
/// INSUFFICIENT_DATA with a reason naming the error and an event is
/// recorded, once (the stored state says whether it already was, so a
/// restart does not repeat it); a warning is logged at most every
/// [`UNEVALUABLE_LOG_EVERY_MS`].
async fn reload(
    store: &Arc<Store>,
    evaluators: &mut Evaluators,
    unevaluable: &mut Unevaluable,
    now: u64,
) {
    let rows = match store.call(ops::list_alarms).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load alarms");
            return;
        }
    };
    evaluators.retain(|name, _| rows.iter().any(|r| &r.name == name));
    unevaluable.retain(|name, _| rows.iter().any(|r| &r.name == name));
    for r in rows {
        let fresh = evaluators
            .get(&r.name)
            .is_none_or(|(spec, _)| *spec != r.spec);
        if !fresh {
            continue;
        }
        match build(&r.name, &r.spec) {
            Ok(ev) => {
                unevaluable.remove(&r.name);
                evaluators.insert(r.name.clone(), (r.spec.clone(), ev));
            }
            Err(error) => {
                // Never go on evaluating a declaration that was replaced.
                evaluators.remove(&r.name);
                let reason = format!("the alarm cannot be evaluated: {error}");
                if r.state != AlarmState::InsufficientData || r.reason != reason {
                    record_unevaluable(store, &r, &reason, now).await;
                }
                let due = unevaluable
                    .get(&r.name)
                    .is_none_or(|last| now.saturating_sub(*last) >= UNEVALUABLE_LOG_EVERY_MS);
                if due {
                    tracing::warn!(alarm = %r.name, %error, "alarm cannot be evaluated");
                    unevaluable.insert(r.name.clone(), now);
                }
            }
        }
    }
}

/// Stores INSUFFICIENT_DATA with `reason` and one event, unless the
/// declaration changed meanwhile (then the next reload judges the new one).
async fn record_unevaluable(store: &Arc<Store>, row: &AlarmRow, reason: &str, now: u64) {
    let to = AlarmState::InsufficientData;
    let msg = transition_message(row.state, to, reason);
    let row = AlarmRow {
        state: to,
        reason: reason.to_string(),
        updated_at: now,
        ..row.clone()
    };
    write_state(store, row, msg).await;
}

/// Runs until `cancel`.
pub(crate) async fn run(
    store: Arc<Store>,
    clock: SharedClock,
    dataplane: SharedDataPlane,
    deployer: Arc<Deployer>,
    mut requests: mpsc::UnboundedReceiver<SetState>,
    cancel: CancellationToken,
) {
    let mut evaluators: Evaluators = BTreeMap::new();
    let mut unevaluable = Unevaluable::new();
    let mut last_second = clock.now_ms() / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reload_at = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Some(req) = requests.recv() => {
                if !evaluators.contains_key(&req.name) {
                    // Declared since the last reload (they run every second).
                    let now = clock.now_ms();
                    reload_at = now + 1_000;
                    reload(&store, &mut evaluators, &mut unevaluable, now).await;
                }
                if let Some((spec, ev)) = evaluators.get_mut(&req.name) {
                    let now_sec = clock.now_ms() / 1000;
                    let t = match ev {
                        Evaluator::Metric(_, e) => e.set_state(req.state, &req.reason, now_sec),
                        Evaluator::Composite(_) => None,
                    };
                    if let Some(t) = t {
                        record(&store, clock.as_ref(), &req.name, spec, &t).await;
                        if t.to == AlarmState::Alarm {
                            deployer.alarm_fired(&req.name);
                        }
                    }
                } else {
                    tracing::warn!(alarm = %req.name, "state request ignored: the alarm is gone or cannot be evaluated");
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = clock.now_ms();
        if now >= reload_at {
            reload_at = now + 1_000;
            reload(&store, &mut evaluators, &mut unevaluable, now).await;
        }
        if evaluators.is_empty() {
            last_second = now / 1000;
            continue;
        }
        // The feed returns the completed seconds strictly after `since`.
        let Ok(feed) = dataplane.metrics_feed(last_second).await else {
            continue;
        };
        let mut advanced = false;
        let seen = last_second;
        for bucket in feed.seconds.iter().filter(|b| b.time > seen) {
            for (_, ev) in evaluators.values_mut() {
                if let Evaluator::Metric(metric, e) = ev {
                    e.observe(bucket.time, sample(bucket, metric));
                }
            }
            last_second = bucket.time;
            advanced = true;
        }
        if !advanced {
            continue;
        }
        let mut fired = Vec::new();
        for (name, (spec, ev)) in evaluators.iter_mut() {
            if let Evaluator::Metric(_, e) = ev
                && let Some(t) = e.evaluate(last_second + 1)
            {
                record(&store, clock.as_ref(), name, spec, &t).await;
                if t.to == AlarmState::Alarm {
                    fired.push(name.clone());
                }
            }
        }
        let states: BTreeMap<String, AlarmState> = evaluators
            .iter()
            .map(|(n, (_, e))| (n.clone(), e.state()))
            .collect();
        let lookup = |n: &str| {
            states
                .get(n)
                .copied()
                .unwrap_or(AlarmState::InsufficientData)
        };
        for (name, (spec, ev)) in evaluators.iter_mut() {
            if let Evaluator::Composite(c) = ev
                && let Some(t) = c.evaluate(&lookup, last_second + 1)
            {
                record(&store, clock.as_ref(), name, spec, &t).await;
                if t.to == AlarmState::Alarm {
                    fired.push(name.clone());
                }
            }
        }
        for name in fired {
            deployer.alarm_fired(&name);
        }
    }
}

#[cfg(test)]
// Tests set up and inspect the store directly, off the control plane's path.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use cutover_proxy::metrics::MetricSample;

    fn bucket() -> SecondBucket {
        let mut b = SecondBucket {
            time: 100,
            ..Default::default()
        };
        b.listeners.insert(
            "web-prod".into(),
            MetricSample {
                request_count: 10,
                target5xx: 3,
                p50_ms: Some(2.0),
                p90_ms: Some(5.0),
                p99_ms: Some(9.0),
                ..Default::default()
            },
        );
        b.target_groups.insert(
            "web-a".into(),
            MetricSample {
                healthy_host_count: 2,
                ..Default::default()
            },
        );
        b.target_groups.insert(
            "web-b".into(),
            MetricSample {
                healthy_host_count: 1,
                unhealthy_host_count: 1,
                ..Default::default()
            },
        );
        b
    }

    fn metric(name: MetricName) -> MetricRef {
        MetricRef {
            name,
            service: "web".into(),
            listener: None,
        }
    }

    #[test]
    fn samples_come_from_the_service_listener_and_groups() {
        let b = bucket();
        assert_eq!(sample(&b, &metric(MetricName::Target5xx)).unwrap().sum, 3.0);
        assert_eq!(
            sample(&b, &metric(MetricName::RequestCount)).unwrap().sum,
            10.0
        );
        assert_eq!(
            sample(&b, &metric(MetricName::HealthyHostCount))
                .unwrap()
                .sum,
            3.0
        );
        assert_eq!(
            sample(&b, &metric(MetricName::UnHealthyHostCount))
                .unwrap()
                .sum,
            1.0
        );
        let rt = sample(&b, &metric(MetricName::TargetResponseTime)).unwrap();
        assert_eq!((rt.count, rt.p99), (10, 9.0));
        let mut test = metric(MetricName::Target5xx);
        test.listener = Some(ListenerKind::Test);
        assert!(sample(&b, &test).is_none());
    }

    #[test]
    fn a_stack_alarm_becomes_an_evaluator_that_fires_on_the_first_bad_second() {
        let Ok(Evaluator::Metric(m, mut e)) = build("web-5xx", &spec(FIVE_XX)) else {
            panic!("not a metric alarm");
        };
        let b = bucket();
        e.observe(100, sample(&b, &m));
        let t = e.evaluate(101).unwrap();
        assert_eq!(t.to, AlarmState::Alarm);
    }

    const FIVE_XX: &str = r#"{"metric": {"name": "HTTPCode_Target_5XX_Count", "service": "web"},
        "statistic": "Sum", "periodSeconds": 1, "evaluationPeriods": 1, "datapointsToAlarm": 1, "threshold": 1,
        "comparisonOperator": "GreaterThanOrEqualToThreshold", "treatMissingData": "notBreaching"}"#;

    /// A declaration as the stack reads it.
    fn spec(json: &str) -> AlarmSpec {
        AlarmSpec::Declared(serde_json::from_str(json).unwrap())
    }

    /// Stores `spec`'s text as the alarm's declaration, as an older or
    /// damaged database may hold it.
    fn store_text(store: &Store, name: &str, spec: &str) {
        store
            .with(|c| {
                c.execute(
                    "UPDATE alarms SET spec = ?2 WHERE name = ?1",
                    rusqlite::params![name, spec],
                )
                .map_err(cutover_store::StoreError::sql("corrupt"))
            })
            .unwrap();
    }

    fn stored(store: &Store, name: &str) -> AlarmRow {
        store
            .with(ops::list_alarms)
            .unwrap()
            .into_iter()
            .find(|a| a.name == name)
            .unwrap()
    }

    fn history(store: &Store, name: &str) -> Vec<String> {
        store
            .with(|c| ops::events(c, &format!("alarm/{name}"), 100))
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[tokio::test]
    async fn an_alarm_that_cannot_be_parsed_is_reported_once_then_evaluated_when_fixed() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let broken = spec(r#"{"alarmRule": "ALARM(web-5xx) AND"}"#);
        let row = AlarmRow {
            name: "guard".into(),
            spec: broken.clone(),
            state: AlarmState::Ok,
            reason: String::new(),
            updated_at: 1,
        };
        store.with(|c| ops::put_alarm(c, &row)).unwrap();
        let (mut evaluators, mut unevaluable) = (Evaluators::new(), Unevaluable::new());
        reload(&store, &mut evaluators, &mut unevaluable, 1_000).await;
        let a = stored(&store, "guard");
        assert_eq!(a.state, AlarmState::InsufficientData);
        assert!(
            a.reason
                .starts_with("the alarm cannot be evaluated: alarm rule \"ALARM(web-5xx) AND\": "),
            "{}",
            a.reason
        );
        assert_eq!(a.spec, broken);
        assert_eq!(
            history(&store, "guard"),
            [format!("OK -> INSUFFICIENT_DATA: {}", a.reason)]
        );
        assert!(evaluators.is_empty());
        // Every later reload, and a restart (fresh maps), records nothing more.
        for t in 2..5 {
            reload(&store, &mut evaluators, &mut unevaluable, t * 1_000).await;
        }
        reload(
            &store,
            &mut Evaluators::new(),
            &mut Unevaluable::new(),
            9_000,
        )
        .await;
        assert_eq!(history(&store, "guard").len(), 1);
        assert_eq!(stored(&store, "guard").updated_at, 1_000);
        // A fixed declaration is evaluated again.
        let fixed = spec(r#"{"alarmRule": "ALARM(web-5xx)"}"#);
        store
            .with(|c| ops::put_alarm(c, &AlarmRow { spec: fixed, ..a }))
            .unwrap();
        reload(&store, &mut evaluators, &mut unevaluable, 10_000).await;
        assert!(matches!(
            evaluators.get("guard"),
            Some((_, Evaluator::Composite(_)))
        ));
        assert!(unevaluable.is_empty());
    }

    #[test]
    fn a_rule_the_stack_accepts_is_evaluated_as_written() {
        // The evaluator once had its own parser, which refused bare names
        // with spaces that the stack accepts: such an alarm was applied but
        // never evaluated. There is one grammar now.
        let text = "(ALARM(a) OR FALSE) AND NOT INSUFFICIENT_DATA( my alarm )";
        let declared = spec(&serde_json::json!({ "alarmRule": text }).to_string());
        let Ok(Evaluator::Composite(c)) = build("guard", &declared) else {
            panic!("not evaluated");
        };
        assert_eq!(
            c.rule().to_string(),
            "((ALARM(\"a\") OR FALSE) AND NOT INSUFFICIENT_DATA(\"my alarm\"))"
        );
        let state =
            |a: AlarmState, mine: AlarmState| move |n: &str| if n == "a" { a } else { mine };
        assert!(c.rule().evaluate(&state(AlarmState::Alarm, AlarmState::Ok)));
        assert!(
            !c.rule()
                .evaluate(&state(AlarmState::Alarm, AlarmState::InsufficientData))
        );
        assert!(!c.rule().evaluate(&state(AlarmState::Ok, AlarmState::Ok)));
    }

    #[tokio::test]
    async fn a_replaced_declaration_that_cannot_be_read_stops_the_old_evaluator() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let row = AlarmRow {
            name: "web-5xx".into(),
            spec: spec(FIVE_XX),
            state: AlarmState::Ok,
            reason: String::new(),
            updated_at: 1,
        };
        store.with(|c| ops::put_alarm(c, &row)).unwrap();
        let (mut evaluators, mut unevaluable) = (Evaluators::new(), Unevaluable::new());
        reload(&store, &mut evaluators, &mut unevaluable, 1_000).await;
        assert!(evaluators.contains_key("web-5xx"));
        // A declaration this binary cannot read (a newer or damaged one).
        store_text(
            &store,
            "web-5xx",
            &FIVE_XX.replace("GreaterThanOrEqualToThreshold", "Sideways"),
        );
        reload(&store, &mut evaluators, &mut unevaluable, 2_000).await;
        assert!(evaluators.is_empty());
        let a = stored(&store, "web-5xx");
        assert_eq!(a.state, AlarmState::InsufficientData);
        assert!(a.reason.contains("Sideways"), "{}", a.reason);
        assert_eq!(history(&store, "web-5xx").len(), 1);
        assert_eq!(unevaluable.get("web-5xx"), Some(&2_000));
    }

    #[test]
    fn a_transition_message_reads_back_as_its_new_state() {
        let m = super::transition_message(AlarmState::Ok, AlarmState::Alarm, "x -> y: z");
        assert_eq!(super::transition_target(&m), Some(AlarmState::Alarm));
        assert_eq!(super::transition_target("alarm created"), None);
        assert_eq!(super::transition_target("OK -> MAYBE: no"), None);
    }
}
