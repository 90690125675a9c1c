//! [`AlarmEvaluator`]: the state of one metric alarm over the per-second
//! samples it has seen. Semantics are described in the parent module.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{AlarmState, MetricAlarm, SecondSample, Statistic, Transition, TreatMissingData};

/// Transitions kept in [`AlarmEvaluator::history`].
pub const HISTORY_LIMIT: usize = 100;

/// One period's datapoint.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Datapoint {
    Breaching(f64),
    NotBreaching(f64),
    Missing,
}

/// Evaluates one [`MetricAlarm`]. Serializable, so the driver can persist it
/// with the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvaluator {
    alarm: MetricAlarm,
    /// Samples by unix second; a second without an entry is missing.
    samples: BTreeMap<u64, SecondSample>,
    state: AlarmState,
    reason: String,
    history: VecDeque<Transition>,
    /// End of the newest period evaluated so far.
    last_period_end: Option<u64>,
}

impl AlarmEvaluator {
    /// An evaluator in INSUFFICIENT_DATA.
    pub fn new(alarm: MetricAlarm) -> Self {
        Self {
            alarm,
            samples: BTreeMap::new(),
            state: AlarmState::InsufficientData,
            reason: "unchecked: initial alarm creation".into(),
            history: VecDeque::new(),
            last_period_end: None,
        }
    }

    /// The alarm.
    pub fn alarm(&self) -> &MetricAlarm {
        &self.alarm
    }

    /// The current state.
    pub fn state(&self) -> AlarmState {
        self.state
    }

    /// Why the alarm is in its state.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The last [`HISTORY_LIMIT`] transitions, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &Transition> {
        self.history.iter()
    }

    fn period(&self) -> u64 {
        self.alarm.period_secs.max(1)
    }

    fn periods(&self) -> u64 {
        u64::from(self.alarm.evaluation_periods.max(1))
    }

    /// Records what happened in unix second `second` (`None`: no data).
    /// Samples older than the evaluation window are dropped.
    pub fn observe(&mut self, second: u64, sample: Option<SecondSample>) {
        match sample {
            Some(sample) => {
                self.samples.insert(second, sample);
            }
            None => {
                self.samples.remove(&second);
            }
        }
        let newest = self
            .samples
            .keys()
            .next_back()
            .copied()
            .unwrap_or(second)
            .max(second);
        let keep = self.period().saturating_mul(self.periods() + 1);
        let oldest = newest.saturating_sub(keep);
        self.samples = self.samples.split_off(&oldest);
    }

    /// Sets the state by hand, like CloudWatch's `SetAlarmState` (for
    /// drills); it holds until the next period is evaluated.
    pub fn set_state(
        &mut self,
        state: AlarmState,
        reason: &str,
        now_sec: u64,
    ) -> Option<Transition> {
        self.transition(state, format!("set by request: {reason}"), now_sec)
    }

    /// Evaluates the periods completed by `now_sec`. Does nothing (returns
    /// `None`) until a period completes that was not evaluated yet; returns
    /// the transition when the state changed.
    pub fn evaluate(&mut self, now_sec: u64) -> Option<Transition> {
        let period = self.period();
        let end = now_sec / period * period;
        if self.last_period_end.is_some_and(|last| end <= last) {
            return None;
        }
        self.last_period_end = Some(end);
        let datapoints: Vec<Datapoint> = (0..self.periods())
            .map(|k| {
                let Some(start) = end.checked_sub((k + 1) * period) else {
                    return Datapoint::Missing;
                };
                match self.aggregate(start, start + period) {
                    None => Datapoint::Missing,
                    Some(v) if self.alarm.comparison.breaches(v, self.alarm.threshold) => {
                        Datapoint::Breaching(v)
                    }
                    Some(v) => Datapoint::NotBreaching(v),
                }
            })
            .collect();
        let (state, reason) = self.decide(&datapoints);
        match self.transition(state, reason.clone(), now_sec) {
            Some(t) => Some(t),
            None => {
                self.reason = reason;
                None
            }
        }
    }

    fn transition(&mut self, to: AlarmState, reason: String, at: u64) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to,
            reason: reason.clone(),
            at,
        };
        tracing::info!(alarm = %self.alarm.name, from = t.from.as_str(), to = t.to.as_str(), at, "alarm state changed");
        self.state = to;
        self.reason = reason;
        if self.history.len() == HISTORY_LIMIT {
            self.history.pop_front();
        }
        self.history.push_back(t.clone());
        Some(t)
    }

    /// The state the datapoints call for, with CloudWatch's missing-data rules.
    fn decide(&self, datapoints: &[Datapoint]) -> (AlarmState, String) {
        let n = datapoints.len();
        let m = usize::try_from(self.alarm.datapoints_to_alarm)
            .unwrap_or(usize::MAX)
            .clamp(1, n);
        let treat = self.alarm.treat_missing;
        let resolved: Vec<Datapoint> = datapoints
            .iter()
            .map(|d| match (d, treat) {
                (Datapoint::Missing, TreatMissingData::Breaching) => Datapoint::Breaching(f64::NAN),
                (Datapoint::Missing, TreatMissingData::NotBreaching) => {
                    Datapoint::NotBreaching(f64::NAN)
                }
                (d, _) => *d,
            })
            .collect();
        let breaching = resolved
            .iter()
            .filter(|d| matches!(d, Datapoint::Breaching(_)))
            .count();
        let present = resolved
            .iter()
            .filter(|d| !matches!(d, Datapoint::Missing))
            .count();
        let listed = list(&resolved);
        let phrase = self.alarm.comparison.phrase();
        let threshold = self.alarm.threshold;
        let crossed = |state| {
            (
                state,
                format!(
                    "threshold crossed: {breaching} of the last {n} datapoints [{listed}] were \
                     {phrase} the threshold ({threshold}), {m} needed"
                ),
            )
        };
        if breaching >= m {
            return crossed(AlarmState::Alarm);
        }
        let keep = || (self.state, self.reason.clone());
        if present == 0 {
            return match treat {
                TreatMissingData::Ignore => keep(),
                _ => (
                    AlarmState::InsufficientData,
                    format!("insufficient data: no datapoints in the last {n} periods"),
                ),
            };
        }
        if present < m && breaching == present {
            return match treat {
                TreatMissingData::Ignore => keep(),
                _ => crossed(AlarmState::Alarm),
            };
        }
        crossed(AlarmState::Ok)
    }

    /// The statistic over the samples of `[start, end)`, `None` when there is
    /// no data (or, for statistics of values, no values).
    fn aggregate(&self, start: u64, end: u64) -> Option<f64> {
        let samples: Vec<&SecondSample> = self.samples.range(start..end).map(|(_, s)| s).collect();
        statistic_of(self.alarm.statistic, &samples)
    }
}

/// `statistic` over `samples` as an alarm judges a period, `None` when
/// there is no data (or, for statistics of values, no values). The console
/// draws an alarm's value per second with it, so the chart shows what the
/// evaluator compares.
pub fn statistic_of(statistic: Statistic, samples: &[&SecondSample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let with_values = || samples.iter().filter(|s| s.count > 0);
    let value = match statistic {
        Statistic::Sum => samples.iter().map(|s| s.sum).sum(),
        Statistic::SampleCount => samples.iter().map(|s| s.count as f64).sum(),
        Statistic::Average => {
            let count: u64 = samples.iter().map(|s| s.count).sum();
            if count == 0 {
                return None;
            }
            samples.iter().map(|s| s.sum).sum::<f64>() / count as f64
        }
        Statistic::Minimum => with_values().map(|s| s.min).reduce(f64::min)?,
        Statistic::Maximum => with_values().map(|s| s.max).reduce(f64::max)?,
        Statistic::Percentile(p) => with_values()
            .map(|s| match p {
                p if p <= 50.0 => s.p50,
                p if p <= 90.0 => s.p90,
                p if p <= 99.0 => s.p99,
                _ => s.max,
            })
            .reduce(f64::max)?,
    };
    (!value.is_nan()).then_some(value)
}

/// Datapoints newest first, for reasons: `5`, `0`, `missing`.
fn list(datapoints: &[Datapoint]) -> String {
    datapoints
        .iter()
        .map(|d| match d {
            Datapoint::Breaching(v) | Datapoint::NotBreaching(v) if v.is_nan() => "missing".into(),
            Datapoint::Breaching(v) | Datapoint::NotBreaching(v) => format!("{v}"),
            Datapoint::Missing => "missing".into(),
        })
        .collect::<Vec<String>>()
        .join(", ")
}
