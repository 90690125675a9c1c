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

pub mod composite;
mod evaluator;

use serde::{Deserialize, Serialize};

pub use composite::{CompositeAlarm, Rule, RuleError, parse_rule};
pub use evaluator::{AlarmEvaluator, HISTORY_LIMIT};

/// The state of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// `OK`.
    #[serde(rename = "OK")]
    Ok,
    /// `ALARM`.
    #[serde(rename = "ALARM")]
    Alarm,
    /// `INSUFFICIENT_DATA`, the initial state.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// The CloudWatch name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// The statistic of a period (`Statistic` or `ExtendedStatistic`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    /// Sum of the values.
    Sum,
    /// Sum over count.
    Average,
    /// Smallest value.
    Minimum,
    /// Largest value.
    Maximum,
    /// Number of values.
    SampleCount,
    /// A percentile such as 99.0 for `p99` (see the module documentation).
    Percentile(f64),
}

/// `ComparisonOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `GreaterThanOrEqualToThreshold`.
    GreaterThanOrEqualToThreshold,
    /// `GreaterThanThreshold`.
    GreaterThanThreshold,
    /// `LessThanThreshold`.
    LessThanThreshold,
    /// `LessThanOrEqualToThreshold`.
    LessThanOrEqualToThreshold,
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::GreaterThanThreshold => value > threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Self::GreaterThanThreshold => "greater than",
            Self::LessThanThreshold => "less than",
            Self::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissing {
    /// `missing` (the default).
    #[default]
    Missing,
    /// `notBreaching`.
    NotBreaching,
    /// `breaching`.
    Breaching,
    /// `ignore`.
    Ignore,
}

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
    pub comparison: Comparison,
    /// `TreatMissingData`.
    pub treat_missing: TreatMissing,
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
