//! The traffic schedule of `AllowTraffic`: the absolute green percentage of
//! production traffic at each step and the step's planned offset from the
//! moment `AllowTraffic` started. Offsets are absolute, never relative to the
//! previous step's acknowledgement, so late acknowledgements do not make the
//! schedule drift (a step is still never applied before the previous one was
//! acknowledged; the engine enforces that).

use serde::{Deserialize, Serialize};

use crate::config::TrafficRouting;
use crate::time::Millis;

/// One change of the production traffic split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Planned time of the step, relative to the start of `AllowTraffic`.
    pub at_offset_ms: Millis,
    /// Share of production traffic on green after the step (absolute).
    pub green_percent: u8,
}

/// The steps of `routing`: the first at offset 0, strictly increasing
/// percentages, the last at 100%.
///
/// A canary is two steps (`percent` at 0, 100 at `interval_ms`); a linear
/// configuration adds `percent` every `interval_ms` and clamps the last step
/// to 100 (30% gives 30, 60, 90, 100). A percentage of 0 is treated as 1 and
/// one of 100 or more as all at once; [`TrafficRouting::validate`] rejects
/// both.
pub fn steps(routing: &TrafficRouting) -> Vec<Step> {
    match *routing {
        TrafficRouting::AllAtOnce => vec![Step {
            at_offset_ms: 0,
            green_percent: 100,
        }],
        TrafficRouting::Canary {
            percent,
            interval_ms,
        } => {
            if percent >= 100 {
                return steps(&TrafficRouting::AllAtOnce);
            }
            vec![
                Step {
                    at_offset_ms: 0,
                    green_percent: percent.max(1),
                },
                Step {
                    at_offset_ms: interval_ms,
                    green_percent: 100,
                },
            ]
        }
        TrafficRouting::Linear {
            percent,
            interval_ms,
        } => {
            if percent >= 100 {
                return steps(&TrafficRouting::AllAtOnce);
            }
            let percent = percent.max(1);
            let mut out = Vec::with_capacity(usize::from(100 / percent) + 1);
            let mut green: u8 = 0;
            let mut offset: Millis = 0;
            while green < 100 {
                green = green.saturating_add(percent).min(100);
                out.push(Step {
                    at_offset_ms: offset,
                    green_percent: green,
                });
                offset = offset.saturating_add(interval_ms);
            }
            out
        }
    }
}

/// Total planned duration of `AllowTraffic` (the offset of the last step).
pub fn total_duration_ms(routing: &TrafficRouting) -> Millis {
    steps(routing).last().map_or(0, |s| s.at_offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn percents(routing: TrafficRouting) -> Vec<(Millis, u8)> {
        steps(&routing)
            .iter()
            .map(|s| (s.at_offset_ms, s.green_percent))
            .collect()
    }

    #[test]
    fn predefined_schedules() {
        assert_eq!(percents(TrafficRouting::ecs_all_at_once()), vec![(0, 100)]);
        assert_eq!(
            percents(TrafficRouting::ecs_canary_10_percent_5_minutes()),
            vec![(0, 10), (300_000, 100)]
        );
        assert_eq!(
            percents(TrafficRouting::ecs_canary_10_percent_15_minutes()),
            vec![(0, 10), (900_000, 100)]
        );
        let linear1 = percents(TrafficRouting::ecs_linear_10_percent_every_1_minutes());
        let expected: Vec<_> = (1..=10)
            .map(|i| ((i - 1) * 60_000, (i * 10) as u8))
            .collect();
        assert_eq!(linear1, expected);
        assert_eq!(
            total_duration_ms(&TrafficRouting::ecs_linear_10_percent_every_3_minutes()),
            9 * 180_000
        );
    }

    #[test]
    fn linear_with_remainder_clamps_the_last_step() {
        assert_eq!(
            percents(TrafficRouting::Linear {
                percent: 30,
                interval_ms: 5
            }),
            vec![(0, 30), (5, 60), (10, 90), (15, 100)]
        );
        assert_eq!(
            percents(TrafficRouting::Linear {
                percent: 0,
                interval_ms: 1
            })
            .len(),
            100
        );
        assert_eq!(
            percents(TrafficRouting::Canary {
                percent: 100,
                interval_ms: 9
            }),
            vec![(0, 100)]
        );
    }

    fn routing() -> impl Strategy<Value = TrafficRouting> {
        prop_oneof![
            Just(TrafficRouting::AllAtOnce),
            (0u8..=120, 0u64..10_000_000).prop_map(|(percent, interval_ms)| {
                TrafficRouting::Canary {
                    percent,
                    interval_ms,
                }
            }),
            (0u8..=120, 0u64..10_000_000).prop_map(|(percent, interval_ms)| {
                TrafficRouting::Linear {
                    percent,
                    interval_ms,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn schedules_are_monotonic_and_end_at_100(routing in routing()) {
            let steps = steps(&routing);
            prop_assert!(!steps.is_empty());
            prop_assert_eq!(steps[0].at_offset_ms, 0);
            prop_assert_eq!(steps.last().unwrap().green_percent, 100);
            for pair in steps.windows(2) {
                prop_assert!(pair[0].green_percent < pair[1].green_percent);
                prop_assert!(pair[0].at_offset_ms <= pair[1].at_offset_ms);
            }
            prop_assert!(steps.iter().all(|s| s.green_percent >= 1));
        }

        #[test]
        fn offsets_follow_the_interval(percent in 1u8..=99, interval_ms in 1u64..10_000_000) {
            let linear = steps(&TrafficRouting::Linear { percent, interval_ms });
            prop_assert_eq!(linear.len(), usize::from(100u8.div_ceil(percent)));
            for (i, step) in linear.iter().enumerate() {
                prop_assert_eq!(step.at_offset_ms, i as u64 * interval_ms);
                let expected = (u32::from(percent) * (i as u32 + 1)).min(100);
                prop_assert_eq!(u32::from(step.green_percent), expected);
            }
            let canary = steps(&TrafficRouting::Canary { percent, interval_ms });
            prop_assert_eq!(canary, vec![
                Step { at_offset_ms: 0, green_percent: percent },
                Step { at_offset_ms: interval_ms, green_percent: 100 },
            ]);
        }
    }
}
