//! Tests of the cron module: every shape accepted before the move to
//! croner and jiff, named zones with daylight saving, and hostile input.

use super::*;

/// 2024-06-03 00:00 UTC, a Monday.
const MON: u64 = 1_717_372_800_000;
const MIN: u64 = 60_000;
const H: u64 = 3_600_000;
const D: u64 = 24 * H;

fn utc(text: &str) -> u64 {
    let ts: Timestamp = text.parse().unwrap();
    ts.as_millisecond() as u64
}

#[test]
fn business_hours_window() {
    let w = DeploymentWindow::new("* * 9-16 ? * MON-FRI *", Some("UTC")).unwrap();
    assert!(!w.is_open(MON + 8 * H));
    assert!(w.is_open(MON + 9 * H));
    assert!(w.is_open(MON + 16 * H + 59 * MIN));
    assert!(!w.is_open(MON + 17 * H));
    // Saturday is closed; the next opening is Monday 09:00.
    let sat = MON + 5 * D + 10 * H;
    assert!(!w.is_open(sat));
    assert_eq!(w.next_open(sat), Some(MON + 7 * D + 9 * H));
    assert_eq!(w.next_open(MON + 10 * H), Some(MON + 10 * H));
}

#[test]
fn shapes_and_offsets() {
    // AWS schedule shape inside cron(...).
    let w = DeploymentWindow::new("cron(0 9 ? * MON-FRI *)", None).unwrap();
    assert!(w.is_open(MON + 9 * H + 30_000));
    assert!(!w.is_open(MON + 9 * H + MIN));
    // Unix shape, Sunday = 0 and 7.
    let w = DeploymentWindow::new("* 10 * * 0", None).unwrap();
    assert!(w.is_open(MON - D + 10 * H));
    let w = DeploymentWindow::new("* 10 * * 7", None).unwrap();
    assert!(w.is_open(MON - D + 10 * H));
    assert!(!w.is_open(MON + 10 * H));
    // Offsets: 09:00 at +02:00 is 07:00 UTC.
    let w = DeploymentWindow::new("* * 9 ? * * *", Some("UTC+02:00")).unwrap();
    assert!(w.is_open(MON + 7 * H));
    assert!(!w.is_open(MON + 9 * H));
    let w = DeploymentWindow::new("* * 9 ? * * *", Some("-05:30")).unwrap();
    assert!(w.is_open(MON + 14 * H + 30 * MIN));
    for (tz, utc_hour) in [
        ("GMT+2", 7),
        ("+0200", 7),
        ("Z-3", 12),
        ("", 9),
        ("Z", 9),
        ("GMT", 9),
    ] {
        let w = DeploymentWindow::new("* * 9 ? * * *", Some(tz)).unwrap();
        assert!(w.is_open(MON + utc_hour * H), "{tz}");
        assert!(!w.is_open(MON + (utc_hour + 1) * H), "{tz}");
    }
}

#[test]
fn every_field_form_accepted_before() {
    // (expression, an open instant, a closed instant)
    let cases: &[(&str, u64, u64)] = &[
        ("0 0/15 * ? * * *", MON + 15 * MIN, MON + 16 * MIN),
        ("* 5/20 * ? * * *", MON + 45 * MIN, MON + 46 * MIN),
        ("* 10-20/5 * ? * * *", MON + 15 * MIN, MON + 16 * MIN),
        ("* */30 * ? * * *", MON + 30 * MIN, MON + 31 * MIN),
        ("* 1,2,40-41 * ? * * *", MON + 41 * MIN, MON + 42 * MIN),
        ("* * * ? JUN-JUL * 2024", MON, MON - 3 * D),
        ("* * * ? jun mon 2020-2030/2", MON, MON + D),
        ("* * * 3 * ? *", MON, MON + D),
        ("* * * 1-10/3 * ? *", MON + D, MON + 2 * D),
        ("* * * ? * 2 *", MON, MON + D),
        ("* * * ? * SUN,SAT *", MON - D, MON),
        ("* * * ? * L *", MON + 5 * D, MON + 4 * D),
        ("* * * ? * FRIL *", MON + 25 * D, MON + 18 * D),
        ("* * * ? * MON#1 *", MON, MON + 7 * D),
        ("* * * L-2 * ? *", MON + 25 * D, MON + 26 * D),
        ("* * * L-0 * ? *", MON + 27 * D, MON + 26 * D),
        ("* * * ? * * *", MON, 0),
        ("* * * ? * *", MON, 0),
        ("* * * * *", MON, 0),
        ("* * * * MON-FRI", MON, MON - D),
        ("* * * * L", MON + 5 * D, MON),
        // Unix: both day fields restricted means either.
        ("* * 4 * 0", MON + D, MON + 2 * D),
        ("* * 4 * 0", MON - D, MON + 2 * D),
        ("* * L-26 * 0", MON + D, MON + 2 * D),
        ("* * L-26 * 0", MON - D, MON + 2 * D),
        ("* * L-26 * *", MON + D, MON + 2 * D),
        ("cron(* * ? * * *)", MON, 0),
        (
            "  cron(15 10 ? * 6L 2024)  ",
            MON + 25 * D + 10 * H + 15 * MIN,
            MON,
        ),
    ];
    for &(expr, open, closed) in cases {
        let w = DeploymentWindow::new(expr, None).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert!(w.is_open(open), "{expr} should be open at {open}");
        if closed != 0 {
            assert!(!w.is_open(closed), "{expr} should be closed at {closed}");
        }
        assert_eq!(w.cron.to_string(), expr);
    }
}

#[test]
fn special_days() {
    // Last day of June 2024 is Sunday the 30th.
    let w = DeploymentWindow::new("* * * L * ? *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(MON + 27 * D));
    // Last weekday: Friday the 28th.
    let w = DeploymentWindow::new("* * * LW * ? *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(MON + 25 * D));
    // Last Friday (6L).
    let w = DeploymentWindow::new("* * * ? * 6L *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(MON + 25 * D));
    // Second Tuesday (3#2): June 11th.
    let w = DeploymentWindow::new("* * * ? * 3#2 *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(MON + 8 * D));
    // Nearest weekday to the 15th (a Saturday): Friday the 14th.
    let w = DeploymentWindow::new("* * * 15W * ? *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(MON + 11 * D));
    // Three days before the last: the 27th.
    let w = DeploymentWindow::new("* * * L-3 * ? *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(MON + 24 * D));
    // 29 February: the next one is in 2028.
    let w = DeploymentWindow::new("0 0 0 29 FEB ? *", None).unwrap();
    assert_eq!(w.next_open(MON), Some(utc("2028-02-29T00:00:00Z")));
    // Never (31 February): none within the search horizon.
    let w = DeploymentWindow::new("0 0 0 31 2 ? *", None).unwrap();
    assert_eq!(w.next_open(MON), None);
    // A year already past.
    let w = DeploymentWindow::new("* * * ? * * 2020", None).unwrap();
    assert_eq!(w.next_open(MON), None);
}

#[test]
fn errors() {
    let e = |c: &str| Cron::parse(c).unwrap_err().to_string();
    assert_eq!(
        e("* * *"),
        "invalid cron expression \"* * *\": expected 6 or 7 fields (5 for Unix cron, 6 inside cron(...)), found 3"
    );
    assert_eq!(
        e("* 0 25 ? * * *"),
        "invalid cron expression \"* 0 25 ? * * *\": hours: number out of bounds in \"25\" (allowed 0-23)"
    );
    assert_eq!(
        e("* 0 9 * * MON *"),
        "invalid cron expression \"* 0 9 * * MON *\": one of day of month and day of week must be ?"
    );
    assert_eq!(
        e("5 0 9 ? * MON *"),
        "invalid cron expression \"5 0 9 ? * MON *\": the seconds field must be * or 0 (windows have minute resolution), found \"5\""
    );
    assert_eq!(
        e("* MON 9 ? * * *"),
        "invalid cron expression \"* MON 9 ? * * *\": minutes: \"MON\" is not a value"
    );
    assert_eq!(
        e("* * * ? JAN 0 *"),
        "invalid cron expression \"* * * ? JAN 0 *\": day of week: position 0 is less than the input offset 1 in \"0\" (allowed 1-7, SUN-SAT)"
    );
    assert_eq!(
        e("* * * L-40 * ? *"),
        "invalid cron expression \"* * * L-40 * ? *\": day of month: bad offset in \"L-40\""
    );
    assert_eq!(
        e("* * 5-2 ? * * *"),
        "invalid cron expression \"* * 5-2 ? * * *\": hours: range out of bounds in \"5-2\" (allowed 0-23)"
    );
    assert_eq!(
        e("* * */0 ? * * *"),
        "invalid cron expression \"* * */0 ? * * *\": hours: step cannot be zero in \"*/0\" (allowed 0-23)"
    );
    // Found by fuzzing: an empty list item selected no hour, and the search
    // for the next opening ran for seconds.
    assert_eq!(
        e("* */10  , L-1 * ? *"),
        "invalid cron expression \"* */10  , L-1 * ? *\": hours: empty list item in \",\""
    );
    assert_eq!(
        e("* 1,,2 * ? * * *"),
        "invalid cron expression \"* 1,,2 * ? * * *\": minutes: empty list item in \"1,,2\""
    );
    assert_eq!(
        e("@daily"),
        "invalid cron expression \"@daily\": expected 6 or 7 fields (5 for Unix cron, 6 inside cron(...)), found 1"
    );
}

#[test]
fn time_zone_errors_never_panic() {
    let tz_err = |tz: &str| {
        DeploymentWindow::new("* * 9 ? * * *", Some(tz))
            .unwrap_err()
            .to_string()
    };
    // This input used to slice inside 'é' and panic.
    assert_eq!(
        tz_err("+aéb"),
        "invalid cron expression \"* * 9 ? * * *\": time zone \"+aéb\" is not a valid offset: use +HH:MM, +HHMM or +HH (at most 14 hours), e.g. +02:00 or UTC-5"
    );
    assert_eq!(
        tz_err("Europe/Pariss"),
        "invalid cron expression \"* * 9 ? * * *\": unknown time zone \"Europe/Pariss\": use an IANA name such as Europe/Berlin, UTC, or a fixed offset such as +02:00 or UTC-5"
    );
    for tz in [
        "+é",
        "UTC+é1",
        "-1é",
        "+12:é",
        "+١٢",
        "+99",
        "+1:60",
        "+123",
        "+",
        "UTC-",
        "é",
        "\u{0}",
        "+0é00",
        "Europe/Berlin\u{0}",
    ] {
        assert!(
            DeploymentWindow::new("* * 9 ? * * *", Some(tz)).is_err(),
            "{tz:?} should be refused"
        );
    }
    // Non-ASCII in the expression is refused, not mangled by upper-casing.
    assert!(Cron::parse("* * ß ? * * *").is_err());
    assert!(Cron::parse("* * * ? * ＭＯＮ *").is_err());
}

#[test]
fn named_zones_follow_daylight_saving() {
    let w = DeploymentWindow::new("* * 9-16 ? * MON-FRI *", Some("America/New_York")).unwrap();
    // Winter: EST, UTC-5.
    assert!(w.is_open(utc("2025-01-06T14:00:00Z")));
    assert!(!w.is_open(utc("2025-01-06T13:59:00Z")));
    // Summer: EDT, UTC-4.
    assert!(w.is_open(utc("2025-07-07T13:00:00Z")));
    assert!(!w.is_open(utc("2025-07-07T12:59:00Z")));
    assert_eq!(
        w.next_open(utc("2025-07-05T12:00:00Z")),
        Some(utc("2025-07-07T13:00:00Z"))
    );
    assert_eq!(
        w.time_zone().iana_name(),
        Some("America/New_York"),
        "named zones keep their name"
    );
    let w = DeploymentWindow::new("cron(0 9 ? * * *)", Some("Europe/Berlin")).unwrap();
    assert_eq!(
        w.next_open(utc("2025-01-01T00:00:00Z")),
        Some(utc("2025-01-01T08:00:00Z"))
    );
    assert_eq!(
        w.next_open(utc("2025-06-01T00:00:00Z")),
        Some(utc("2025-06-01T07:00:00Z"))
    );
}

#[test]
fn spring_forward_in_berlin_skips_the_missing_minutes() {
    // 2025-03-30: at 01:00 UTC Berlin goes from 02:00 CET to 03:00 CEST.
    let at_0230 = DeploymentWindow::new("* 30 2 ? * * *", Some("Europe/Berlin")).unwrap();
    let day = utc("2025-03-30T00:00:00Z");
    for m in 0..(24 * 60) {
        assert!(
            !at_0230.is_open(day + m * MIN),
            "02:30 does not exist that day"
        );
    }
    // The window does not open that day; the next day at 02:30 CEST.
    assert_eq!(at_0230.next_open(day), Some(utc("2025-03-31T00:30:00Z")));
    // The day before, 02:30 CET.
    assert_eq!(
        at_0230.next_open(day - D),
        Some(utc("2025-03-29T01:30:00Z"))
    );
    // A window over 02:00-03:59 opens at the first minute that exists.
    let two_to_four = DeploymentWindow::new("* * 2-3 ? * * *", Some("Europe/Berlin")).unwrap();
    assert_eq!(
        two_to_four.next_open(day),
        Some(utc("2025-03-30T01:00:00Z"))
    );
    assert!(!two_to_four.is_open(utc("2025-03-30T00:59:00Z")));
}

#[test]
fn fall_back_in_berlin_opens_the_repeated_minutes_twice() {
    // 2025-10-26: at 01:00 UTC Berlin goes from 03:00 CEST back to 02:00 CET.
    let w = DeploymentWindow::new("* 30 2 ? * * *", Some("Europe/Berlin")).unwrap();
    let first = utc("2025-10-26T00:30:00Z");
    let second = utc("2025-10-26T01:30:00Z");
    assert!(w.is_open(first));
    assert!(w.is_open(second));
    assert_eq!(w.next_open(utc("2025-10-26T00:00:00Z")), Some(first));
    // After the first 02:30, the second one comes an hour later, not a day.
    assert_eq!(w.next_open(first + MIN), Some(second));
    assert_eq!(w.next_open(second + MIN), Some(utc("2025-10-27T01:30:00Z")));
}

#[test]
fn next_open_agrees_with_is_open_minute_by_minute() {
    // Around both Berlin transitions of 2025 and the New York ones, for
    // windows of one minute, one hour and a few days: the answer is open,
    // and no earlier minute is.
    let cases = [
        ("* 30 2 ? * * *", "Europe/Berlin", "2025-03-29T20:00:00Z"),
        ("* 30 2 ? * * *", "Europe/Berlin", "2025-10-25T20:00:00Z"),
        ("* * 2 ? * * *", "Europe/Berlin", "2025-10-25T23:00:00Z"),
        (
            "* 0/7 1-3 ? * SUN *",
            "Europe/Berlin",
            "2025-10-25T20:00:00Z",
        ),
        ("* 15 1 ? * * *", "America/New_York", "2025-11-01T20:00:00Z"),
        ("* 15 2 ? * * *", "America/New_York", "2025-03-08T20:00:00Z"),
        // Lord Howe falls back by half an hour.
        (
            "* 45 1 ? * * *",
            "Australia/Lord_Howe",
            "2025-04-05T00:00:00Z",
        ),
        ("* * 1 L-5 * ? *", "Europe/Berlin", "2025-03-25T00:00:00Z"),
    ];
    for (expr, tz, from) in cases {
        let w = DeploymentWindow::new(expr, Some(tz)).unwrap();
        let from = utc(from);
        // Which minutes are open, over the range and a day beyond it.
        let open: Vec<bool> = (0..4 * 24 * 60)
            .map(|m| w.is_open(from + m * MIN))
            .collect();
        let mut t = from;
        while t < from + 2 * D {
            let next = w.next_open(t).unwrap();
            let m = (t - from) / MIN + 1;
            match (m..open.len() as u64).find(|&m| open[m as usize]) {
                _ if w.is_open(t) => assert_eq!(next, t, "{expr} {tz} from {t}"),
                Some(first) => assert_eq!(next, from + first * MIN, "{expr} {tz} from {t}"),
                None => assert!(next >= from + open.len() as u64 * MIN && w.is_open(next)),
            }
            t += 7 * MIN + 13_000;
        }
    }
}

#[test]
fn far_timestamps_do_not_panic() {
    let w = DeploymentWindow::new("* * * ? * * *", Some("Europe/Berlin")).unwrap();
    for t in [
        0,
        u64::MAX,
        i64::MAX as u64,
        253_402_300_799_000,
        253_402_300_800_000,
    ] {
        let _ = w.is_open(t);
        let _ = w.next_open(t);
    }
    let w = DeploymentWindow::new("0 0 0 31 2 ? *", Some("Europe/Berlin")).unwrap();
    assert_eq!(w.next_open(253_402_000_000_000), None);
}
