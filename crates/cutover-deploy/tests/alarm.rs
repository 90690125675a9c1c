//! Metric alarm evaluation (statistics, M of N, missing data, periods longer
//! than a second, SetAlarmState) and composite rules.

use cutover_deploy::alarm::{
    AlarmEvaluator, AlarmState, ComparisonOperator as Comparison, CompositeAlarm, MetricAlarm,
    SecondSample, Statistic, TreatMissingData as TreatMissing, parse_alarm_rule,
};

const S0: u64 = 1_700_000_000; // a multiple of 1, 5 and 10

fn alarm(statistic: Statistic, threshold: f64) -> MetricAlarm {
    MetricAlarm {
        name: "a".into(),
        statistic,
        period_secs: 1,
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
        threshold,
        comparison: Comparison::GreaterThanOrEqualToThreshold,
        treat_missing: TreatMissing::Missing,
    }
}

fn latency(sum: f64, count: u64, min: f64, max: f64, p50: f64, p90: f64, p99: f64) -> SecondSample {
    SecondSample {
        sum,
        count,
        min,
        max,
        p50,
        p90,
        p99,
    }
}

/// Feeds one sample per second from `start` and evaluates after each;
/// returns the state after each second.
fn feed(ev: &mut AlarmEvaluator, start: u64, samples: &[Option<SecondSample>]) -> Vec<AlarmState> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let second = start + i as u64;
            ev.observe(second, *s);
            ev.evaluate(second + 1);
            ev.state()
        })
        .collect()
}

fn count(n: u64) -> Option<SecondSample> {
    Some(SecondSample::count_metric(n))
}

use AlarmState::{Alarm, InsufficientData as Insufficient, Ok as Fine};

#[test]
fn starts_insufficient_and_reacts_in_the_second_after_the_errors() {
    let mut ev = AlarmEvaluator::new(alarm(Statistic::Sum, 1.0));
    assert_eq!(ev.state(), Insufficient);
    ev.observe(S0, count(0));
    let t = ev.evaluate(S0 + 1).unwrap();
    assert_eq!((t.from, t.to, t.at), (Insufficient, Fine, S0 + 1));
    ev.observe(S0 + 1, count(3));
    let t = ev.evaluate(S0 + 2).unwrap();
    assert_eq!(t.to, Alarm);
    assert_eq!(
        t.reason,
        "threshold crossed: 1 of the last 1 datapoints [3] were greater than or equal to the threshold (1), 1 needed"
    );
    // Evaluating again within the same period changes nothing.
    assert_eq!(ev.evaluate(S0 + 2), None);
    assert_eq!(ev.history().len(), 2);
}

#[test]
fn each_statistic() {
    // Two seconds of latency in one 2-second period.
    let a = latency(300.0, 3, 50.0, 200.0, 60.0, 150.0, 190.0);
    let b = latency(100.0, 1, 100.0, 100.0, 100.0, 100.0, 100.0);
    let cases = [
        (Statistic::Sum, 400.0),
        (Statistic::SampleCount, 4.0),
        (Statistic::Average, 100.0),
        (Statistic::Minimum, 50.0),
        (Statistic::Maximum, 200.0),
        (Statistic::Percentile(50.0), 100.0),
        (Statistic::Percentile(90.0), 150.0),
        (Statistic::Percentile(99.0), 190.0),
        (Statistic::Percentile(99.9), 200.0),
    ];
    for (statistic, value) in cases {
        for (threshold, expected) in [(value, Alarm), (value + 0.001, Fine)] {
            let mut spec = alarm(statistic, threshold);
            spec.period_secs = 2;
            let mut ev = AlarmEvaluator::new(spec);
            ev.observe(S0, Some(a));
            ev.observe(S0 + 1, Some(b));
            ev.evaluate(S0 + 2);
            assert_eq!(ev.state(), expected, "{statistic:?} at {threshold}");
        }
    }
}

#[test]
fn statistics_of_values_need_values() {
    let empty = latency(0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for statistic in [
        Statistic::Average,
        Statistic::Maximum,
        Statistic::Percentile(99.0),
    ] {
        let mut ev = AlarmEvaluator::new(alarm(statistic, 0.0));
        ev.observe(S0, Some(empty));
        ev.evaluate(S0 + 1);
        assert_eq!(ev.state(), Insufficient, "{statistic:?}");
    }
    let mut ev = AlarmEvaluator::new(alarm(Statistic::Sum, 0.0));
    ev.observe(S0, Some(empty));
    ev.evaluate(S0 + 1);
    assert_eq!(ev.state(), Alarm);
}

#[test]
fn comparisons() {
    for (comparison, breaches) in [
        (
            Comparison::GreaterThanOrEqualToThreshold,
            [false, true, true],
        ),
        (Comparison::GreaterThanThreshold, [false, false, true]),
        (Comparison::LessThanThreshold, [true, false, false]),
        (Comparison::LessThanOrEqualToThreshold, [true, true, false]),
    ] {
        let got = [1.0, 2.0, 3.0].map(|v| comparison.breaches(v, 2.0));
        assert_eq!(got, breaches, "{comparison:?}");
    }
}

#[test]
fn m_of_n() {
    let mut spec = alarm(Statistic::Sum, 1.0);
    spec.evaluation_periods = 5;
    spec.datapoints_to_alarm = 3;
    let mut ev = AlarmEvaluator::new(spec);
    let states = feed(
        &mut ev,
        S0,
        &[
            count(0),
            count(0),
            count(0),
            count(0),
            count(0),
            count(2),
            count(0),
            count(2),
            count(0),
            count(2),
            count(0),
            count(2),
            count(0),
        ],
    );
    // 3 breaching of the last 5 at seconds 9 and 11 only.
    assert_eq!(
        states,
        vec![
            Fine, Fine, Fine, Fine, Fine, Fine, Fine, Fine, Fine, Alarm, Fine, Alarm, Fine
        ]
    );
}

#[test]
fn a_period_longer_than_a_second_completes_on_its_boundary() {
    let mut spec = alarm(Statistic::Sum, 5.0);
    spec.period_secs = 5;
    let mut ev = AlarmEvaluator::new(spec);
    // 1 + 2 + 3 = 6 errors in [S0, S0+5): nothing until S0+5.
    for (i, n) in [1, 2, 3, 0, 0].into_iter().enumerate() {
        ev.observe(S0 + i as u64, count(n));
        if i < 4 {
            assert_eq!(ev.evaluate(S0 + i as u64 + 1), None);
        }
    }
    let t = ev.evaluate(S0 + 5).unwrap();
    assert_eq!((t.to, t.at), (Alarm, S0 + 5));
    // Mid-period evaluations wait for the next boundary.
    ev.observe(S0 + 5, count(0));
    assert_eq!(ev.evaluate(S0 + 7), None);
    assert_eq!(ev.evaluate(S0 + 10).map(|t| t.to), Some(Fine));
}

/// The CloudWatch missing-data table (M = 3 of N = 5), newest datapoint last.
#[test]
fn every_treat_missing_mode() {
    const B: Option<SecondSample> = Some(SecondSample {
        sum: 5.0,
        count: 5,
        min: 5.0,
        max: 5.0,
        p50: 5.0,
        p90: 5.0,
        p99: 5.0,
    });
    const G: Option<SecondSample> = Some(SecondSample {
        sum: 0.0,
        count: 0,
        min: 0.0,
        max: 0.0,
        p50: 0.0,
        p90: 0.0,
        p99: 0.0,
    });
    const X: Option<SecondSample> = None;
    let rows: [([Option<SecondSample>; 5], [AlarmState; 4]); 5] = [
        // missing, ignore (starting from OK), breaching, notBreaching
        ([G, X, B, X, B], [Fine, Fine, Alarm, Fine]),
        ([X, X, X, X, G], [Fine, Fine, Alarm, Fine]),
        ([X, X, X, X, X], [Insufficient, Fine, Alarm, Fine]),
        ([G, B, B, X, B], [Alarm, Alarm, Alarm, Alarm]),
        ([X, X, B, X, X], [Alarm, Fine, Alarm, Fine]),
    ];
    let modes = [
        TreatMissing::Missing,
        TreatMissing::Ignore,
        TreatMissing::Breaching,
        TreatMissing::NotBreaching,
    ];
    for (row, expected) in rows {
        for (mode, want) in modes.into_iter().zip(expected) {
            let mut spec = alarm(Statistic::Sum, 1.0);
            spec.evaluation_periods = 5;
            spec.datapoints_to_alarm = 3;
            spec.treat_missing = mode;
            let mut ev = AlarmEvaluator::new(spec);
            // Start from OK so that "keep the state" is visible.
            ev.set_state(Fine, "baseline", S0);
            for (i, s) in row.iter().enumerate() {
                ev.observe(S0 + 10 + i as u64, *s);
            }
            ev.evaluate(S0 + 15);
            assert_eq!(ev.state(), want, "{row:?} {mode:?}");
        }
    }
    // With ignore, an alarm stays in ALARM while data is missing.
    let mut spec = alarm(Statistic::Sum, 1.0);
    spec.treat_missing = TreatMissing::Ignore;
    let mut ev = AlarmEvaluator::new(spec);
    assert_eq!(
        feed(&mut ev, S0, &[count(3), None, None, count(0)]),
        vec![Alarm, Alarm, Alarm, Fine]
    );
}

#[test]
fn set_state_holds_until_the_next_period() {
    let mut ev = AlarmEvaluator::new(alarm(Statistic::Sum, 1.0));
    ev.observe(S0, count(0));
    ev.evaluate(S0 + 1);
    let t = ev.set_state(Alarm, "drill", S0 + 1).unwrap();
    assert_eq!(
        (t.from, t.to, t.reason.as_str()),
        (Fine, Alarm, "set by request: drill")
    );
    assert_eq!(ev.evaluate(S0 + 1), None);
    assert_eq!(ev.state(), Alarm);
    ev.observe(S0 + 1, count(0));
    assert_eq!(ev.evaluate(S0 + 2).map(|t| t.to), Some(Fine));
    assert_eq!(ev.set_state(Fine, "again", S0 + 2), None);
}

#[test]
fn evaluator_survives_serde_and_prunes_old_samples() {
    let mut spec = alarm(Statistic::Sum, 1.0);
    spec.evaluation_periods = 2;
    let mut ev = AlarmEvaluator::new(spec);
    feed(&mut ev, S0, &vec![count(0); 1_000]);
    let json = serde_json::to_string(&ev).unwrap();
    assert!(
        json.len() < 2_000,
        "samples not pruned: {} bytes",
        json.len()
    );
    let back: AlarmEvaluator = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ev);
}

#[test]
fn history_is_bounded() {
    let mut ev = AlarmEvaluator::new(alarm(Statistic::Sum, 1.0));
    let flapping: Vec<_> = (0..300).map(|i| count(i % 2 * 5)).collect();
    feed(&mut ev, S0, &flapping);
    assert_eq!(ev.history().len(), cutover_deploy::alarm::HISTORY_LIMIT);
}

// ----- composite rules -----------------------------------------------

fn states(name: &str) -> AlarmState {
    match name {
        "cpu" | "5xx errors" => Alarm,
        "mem" => Fine,
        _ => Insufficient,
    }
}

#[test]
fn the_evaluator_reads_the_stack_grammar_as_written() {
    // The grammar itself is tested in `cutover-spec`; here: a rule parsed
    // there is what the composite alarm evaluates.
    let cases = [
        ("ALARM(\"5xx errors\") AND OK(mem)", true),
        ("NOT ALARM(cpu) AND ALARM(mem) OR FALSE", false),
        ("INSUFFICIENT_DATA( my alarm ) AND NOT OK(cpu)", true),
    ];
    for (text, expected) in cases {
        let rule = parse_alarm_rule(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut composite = CompositeAlarm::new("c", rule);
        let t = composite.evaluate(&states, S0).unwrap();
        let to = if expected { Alarm } else { Fine };
        assert_eq!(t.to, to, "{text}");
    }
}

#[test]
fn composite_alarm_transitions() {
    let rule = parse_alarm_rule("ALARM(cpu) AND OK(mem)").unwrap();
    let mut composite = CompositeAlarm::new("both", rule);
    assert_eq!(composite.state(), Insufficient);
    let t = composite.evaluate(&states, S0).unwrap();
    assert_eq!((t.from, t.to), (Insufficient, Alarm));
    assert_eq!(t.reason, r#"rule (ALARM("cpu") AND OK("mem")) is true"#);
    assert_eq!(composite.evaluate(&states, S0 + 1), None);
    let t = composite.evaluate(&|_| Fine, S0 + 2).unwrap();
    assert_eq!(t.to, Fine);
}
