//! CloudWatch-style metric alarms evaluated on per-second samples from the
//! data plane, and composite alarm rules ([`composite`]).
//!
//! Periods are aligned to multiples of `period_secs` in unix seconds, like
//! CloudWatch's. The period `[e - period_secs, e)` is complete at second `e`:
//! the driver calls [`AlarmEvaluator::observe`] for second `s` as soon as it
//! is over and then [`AlarmEvaluator::evaluate`] with `s + 1`, so with
//! one-second periods an alarm reacts in the second after the errors.
//!
//! Datapoints and missing data follow CloudWatch: each of the last
//! `evaluation_periods` periods is breaching, not breaching or missing;
//! `datapoints_to_alarm` breaching ones make ALARM. `treatMissingData`:
//! `breaching` / `notBreaching` count missing periods as such; `missing`
//! gives INSUFFICIENT_DATA when every period is missing, and ALARM when fewer
//! than M datapoints exist and all of them breach; `ignore` keeps the current
//! state in both of those cases. CloudWatch may look further back than N
//! periods when data is missing; this evaluator does not.
//!
//! Statistics over a period combine the per-second samples: Sum and
//! SampleCount add up, Average is total sum over total count, Minimum and
//! Maximum are the extremes. A percentile over several seconds is
//! approximated by the **largest** per-second value of the nearest reported
//! percentile at or above it (p50, p90, p99, or the maximum above p99). The
//! true percentile of the union never exceeds that value, so an alarm on
//! "latency above a threshold" fires no later than an exact one would, and
//! may fire earlier.
//!
//! The alarm vocabulary is `cutover-spec`'s, where stack files are parsed:
//! [`AlarmState`], [`Statistic`], [`ComparisonOperator`],
//! [`TreatMissingData`] and the composite rule's [`AlarmRule`] (re-exported
//! here), so a declaration is evaluated exactly as it was validated.

pub mod composite;
mod evaluator;

use serde::{Deserialize, Serialize};

pub use composite::CompositeAlarm;
pub use cutover_spec::stack::{
    AlarmRule, AlarmRuleError, AlarmState, ComparisonOperator, Statistic, TreatMissingData,
    parse_alarm_rule,
};
pub use evaluator::{AlarmEvaluator, HISTORY_LIMIT, statistic_of};

/// What the data plane measured in one second for one metric.
///
/// For a count metric (`HTTPCode_Target_5XX_Count`) `sum` is the count of
/// that second; for `TargetResponseTime` `sum` is the total milliseconds and
/// `count` the number of requests, with per-second percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SecondSample {
    /// Sum of the values.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl SecondSample {
    /// A sample of a count metric: `value` occurrences that second.
    pub fn count_metric(value: u64) -> Self {
        let v = value as f64;
        Self {
            sum: v,
            count: value,
            min: v,
            max: v,
            p50: v,
            p90: v,
            p99: v,
        }
    }
}

/// A metric alarm (`PutMetricAlarm`), evaluated by [`AlarmEvaluator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarm {
    /// `AlarmName`.
    pub name: String,
    /// The statistic of each period.
    pub statistic: Statistic,
    /// `Period` in seconds (0 is treated as 1).
    pub period_secs: u64,
    /// `EvaluationPeriods` (N; 0 is treated as 1).
    pub evaluation_periods: u32,
    /// `DatapointsToAlarm` (M, clamped to 1..=N).
    pub datapoints_to_alarm: u32,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: ComparisonOperator,
    /// `TreatMissingData`.
    pub treat_missing: TreatMissingData,
}

impl MetricAlarm {
    /// The evaluator's configuration of a stack's metric alarm named `name`.
    pub fn from_spec(name: &str, spec: &cutover_spec::stack::MetricAlarm) -> Self {
        Self {
            name: name.to_string(),
            statistic: spec.statistic,
            period_secs: spec.period_seconds,
            evaluation_periods: spec.evaluation_periods,
            datapoints_to_alarm: spec.datapoints_to_alarm,
            threshold: spec.threshold,
            comparison: spec.comparison_operator,
            treat_missing: spec.treat_missing_data,
        }
    }
}

/// A change of an alarm's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// State before.
    pub from: AlarmState,
    /// State after.
    pub to: AlarmState,
    /// Why, in CloudWatch's manner.
    pub reason: String,
    /// Unix second of the evaluation.
    pub at: u64,
}
