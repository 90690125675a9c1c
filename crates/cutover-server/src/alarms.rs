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

use crate::clock::{Clock, SharedClock};
use crate::dataplane::SharedDataPlane;
use crate::dataplane::config::{group_name, prod_listener, test_listener};
use crate::deploy::Deployer;
use cutover_deploy::alarm::{
    AlarmEvaluator, AlarmState, Comparison, CompositeAlarm, MetricAlarm, SecondSample, Statistic,
    Transition, TreatMissing, parse_rule,
};
use cutover_proxy::metrics::SecondBucket;
use cutover_spec::stack::{Alarm, ListenerKind, MetricName, MetricRef};
use cutover_store::{AlarmRow, Store, ops};
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

/// The state name as CloudWatch writes it.
pub(crate) fn state_name(s: AlarmState) -> &'static str {
    match s {
        AlarmState::Ok => "OK",
        AlarmState::Alarm => "ALARM",
        AlarmState::InsufficientData => "INSUFFICIENT_DATA",
    }
}

/// Parses a state name.
pub(crate) fn parse_state(s: &str) -> Option<AlarmState> {
    match s {
        "OK" => Some(AlarmState::Ok),
        "ALARM" => Some(AlarmState::Alarm),
        "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
        _ => None,
    }
}

fn build(name: &str, spec: &serde_json::Value) -> Option<Evaluator> {
    let alarm: Alarm = serde_json::from_value(spec.clone()).ok()?;
    Some(match alarm {
        Alarm::Metric(m) => Evaluator::Metric(
            m.metric.clone(),
            AlarmEvaluator::new(MetricAlarm {
                name: name.to_string(),
                statistic: match m.statistic {
                    cutover_spec::stack::Statistic::Sum => Statistic::Sum,
                    cutover_spec::stack::Statistic::Average => Statistic::Average,
                    cutover_spec::stack::Statistic::Minimum => Statistic::Minimum,
                    cutover_spec::stack::Statistic::Maximum => Statistic::Maximum,
                    cutover_spec::stack::Statistic::SampleCount => Statistic::SampleCount,
                    cutover_spec::stack::Statistic::Percentile(p) => Statistic::Percentile(p),
                },
                period_secs: m.period_seconds,
                evaluation_periods: m.evaluation_periods,
                datapoints_to_alarm: m.datapoints_to_alarm,
                threshold: m.threshold,
                comparison: match m.comparison_operator {
                    cutover_spec::stack::ComparisonOperator::GreaterThanOrEqualToThreshold => {
                        Comparison::GreaterThanOrEqualToThreshold
                    }
                    cutover_spec::stack::ComparisonOperator::GreaterThanThreshold => {
                        Comparison::GreaterThanThreshold
                    }
                    cutover_spec::stack::ComparisonOperator::LessThanThreshold => {
                        Comparison::LessThanThreshold
                    }
                    cutover_spec::stack::ComparisonOperator::LessThanOrEqualToThreshold => {
                        Comparison::LessThanOrEqualToThreshold
                    }
                },
                treat_missing: match m.treat_missing_data {
                    cutover_spec::stack::TreatMissingData::Missing => TreatMissing::Missing,
                    cutover_spec::stack::TreatMissingData::NotBreaching => {
                        TreatMissing::NotBreaching
                    }
                    cutover_spec::stack::TreatMissingData::Breaching => TreatMissing::Breaching,
                    cutover_spec::stack::TreatMissingData::Ignore => TreatMissing::Ignore,
                },
            }),
        ),
        Alarm::Composite(c) => {
            Evaluator::Composite(CompositeAlarm::new(name, parse_rule(&c.alarm_rule).ok()?))
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

fn record(store: &Store, clock: &dyn Clock, name: &str, spec: &serde_json::Value, t: &Transition) {
    let now = clock.now_ms();
    let row = AlarmRow {
        name: name.to_string(),
        spec: spec.clone(),
        state: state_name(t.to).into(),
        reason: t.reason.clone(),
        updated_at: now,
    };
    let msg = format!(
        "{} -> {}: {}",
        state_name(t.from),
        state_name(t.to),
        t.reason
    );
    if let Err(e) = store.atomically(|c| {
        ops::put_alarm(c, &row)?;
        ops::add_event(c, now, &format!("alarm/{name}"), &msg)
    }) {
        tracing::warn!(alarm = name, error = %e, "cannot record alarm state");
    }
    tracing::info!(alarm = name, "{msg}");
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
    let mut evaluators: BTreeMap<String, (serde_json::Value, Evaluator)> = BTreeMap::new();
    let mut last_second = clock.now_ms() / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reload_at = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Some(req) = requests.recv() => {
                if let Some((spec, ev)) = evaluators.get_mut(&req.name) {
                    let now_sec = clock.now_ms() / 1000;
                    let t = match ev {
                        Evaluator::Metric(_, e) => e.set_state(req.state, &req.reason, now_sec),
                        Evaluator::Composite(_) => None,
                    };
                    if let Some(t) = t {
                        record(&store, clock.as_ref(), &req.name, spec, &t);
                        if t.to == AlarmState::Alarm {
                            deployer.alarm_fired(&req.name);
                        }
                    }
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = clock.now_ms();
        if now >= reload_at {
            reload_at = now + 1_000;
            match store.with(ops::list_alarms) {
                Ok(rows) => {
                    evaluators.retain(|name, _| rows.iter().any(|r| &r.name == name));
                    for r in rows {
                        let fresh = evaluators
                            .get(&r.name)
                            .is_none_or(|(spec, _)| *spec != r.spec);
                        if fresh && let Some(ev) = build(&r.name, &r.spec) {
                            evaluators.insert(r.name.clone(), (r.spec.clone(), ev));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot load alarms"),
            }
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
                record(&store, clock.as_ref(), name, spec, &t);
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
                record(&store, clock.as_ref(), name, spec, &t);
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
        let spec = serde_json::json!({"metric": {"name": "HTTPCode_Target_5XX_Count", "service": "web"},
            "statistic": "Sum", "periodSeconds": 1, "evaluationPeriods": 1, "datapointsToAlarm": 1, "threshold": 1,
            "comparisonOperator": "GreaterThanOrEqualToThreshold", "treatMissingData": "notBreaching"});
        let Some(Evaluator::Metric(m, mut e)) = build("web-5xx", &spec) else {
            panic!("not a metric alarm");
        };
        let b = bucket();
        e.observe(100, sample(&b, &m));
        let t = e.evaluate(101).unwrap();
        assert_eq!(t.to, AlarmState::Alarm);
    }
}
