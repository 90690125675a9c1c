//! Cron expressions for `DeploymentWindow` rules: a stage may be entered
//! during the minutes the expression matches, in the rule's time zone.
//!
//! Accepted shapes (fields separated by spaces):
//!
//! | shape | fields | day-of-week numbers |
//! |---|---|---|
//! | AWS DeploymentWindow | `sec min hour dom month dow [year]` | 1-7 = SUN-SAT |
//! | AWS schedule, `cron(...)` | `min hour dom month dow year` | 1-7 = SUN-SAT |
//! | Unix | `min hour dom month dow` | 0-7, 0 and 7 = SUN |
//!
//! Each field takes `*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n` and lists of
//! those; months and days also take names (`JAN`, `MON-FRI`). Day of month
//! also takes `?`, `L` (last day), `L-n` (n days before it), `nW` (nearest
//! weekday) and `LW`; day of week `?`, `L` (Saturday), `nL` (last such day
//! of the month) and `n#k` (k-th such day). The seconds field must be `*` or
//! `0`: windows have minute resolution. When both day fields are restricted
//! (Unix style), a day matches either, as in Unix cron.
//!
//! Time zones are kept simple: `UTC` (or `GMT`, `Z`, empty) and fixed
//! offsets `+HH:MM`, `-HH`, `UTC+2`, `UTC-05:30`. Named zones with daylight
//! saving (`Europe/Paris`) are refused with a message saying so.

use std::fmt;

/// A parse error, naming the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression \"{expr}\": {reason}")]
pub struct CronError {
    /// The expression as written.
    pub expr: String,
    /// What is wrong.
    pub reason: String,
}

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u64,
    months: u64,
    /// Empty set means any year.
    years: Option<Vec<(u32, u32, u32)>>,
    dom: Day,
    dow: Day,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Day {
    /// `*`.
    Any,
    /// `?`.
    Unspecified,
    /// Day numbers (dom 1..=31, dow 0..=6 with 0 = Sunday).
    Set(u64),
    /// `L` or `L-n` in day of month.
    LastMinus(u32),
    /// `LW`.
    LastWeekday,
    /// `nW`.
    NearestWeekday(u32),
    /// `nL` in day of week.
    LastOf(u32),
    /// `n#k` in day of week.
    Nth(u32, u32),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses `expr` in one of the shapes of the module documentation.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let err = |reason: String| CronError {
            expr: expr.to_owned(),
            reason,
        };
        let trimmed = expr.trim();
        let (body, wrapped) = match trimmed
            .strip_prefix("cron(")
            .and_then(|s| s.strip_suffix(')'))
        {
            Some(inner) => (inner, true),
            None => (trimmed, false),
        };
        let fields: Vec<&str> = body.split_whitespace().collect();
        // (seconds, minute, hour, dom, month, dow, year, unix numbering)
        let (sec, rest, year, unix) = match (wrapped, fields.len()) {
            (true, 6) => (None, &fields[..5], Some(fields[5]), false),
            (false, 7) => (Some(fields[0]), &fields[1..6], Some(fields[6]), false),
            (false, 6) => (Some(fields[0]), &fields[1..6], None, false),
            (false, 5) => (None, &fields[..5], None, true),
            (_, n) => {
                return Err(err(format!(
                    "expected 6 or 7 fields (5 for Unix cron, 6 inside cron(...)), found {n}"
                )));
            }
        };
        if let Some(sec) = sec
            && sec != "*"
            && sec != "0"
        {
            return Err(err(format!(
                "the seconds field must be * or 0 (windows have minute resolution), found \"{sec}\""
            )));
        }
        let minutes = set(rest[0], 0, 59, &[], 0).map_err(|r| err(format!("minutes: {r}")))?;
        let hours = set(rest[1], 0, 23, &[], 0).map_err(|r| err(format!("hours: {r}")))?;
        let months = set(rest[3], 1, 12, &MONTHS, 1).map_err(|r| err(format!("month: {r}")))?;
        let dom = day_of_month(rest[2]).map_err(|r| err(format!("day of month: {r}")))?;
        let dow = day_of_week(rest[4], unix).map_err(|r| err(format!("day of week: {r}")))?;
        let years = match year {
            None | Some("*") => None,
            Some(y) => Some(ranges(y, 1970, 2199, &[], 0).map_err(|r| err(format!("year: {r}")))?),
        };
        if !unix && dom != Day::Unspecified && dow != Day::Unspecified {
            return Err(err(
                "one of day of month and day of week must be ?".to_owned()
            ));
        }
        Ok(Cron {
            source: expr.to_owned(),
            minutes,
            hours,
            months,
            years,
            dom,
            dow,
        })
    }

    /// Whether the minute holding the local time `t` matches.
    fn matches(&self, t: &Civil) -> bool {
        bit(self.minutes, t.minute)
            && bit(self.hours, t.hour)
            && bit(self.months, t.month)
            && self.years.as_ref().is_none_or(|ys| {
                ys.iter().any(|&(lo, hi, step)| {
                    t.year >= lo && t.year <= hi && (t.year - lo).is_multiple_of(step)
                })
            })
            && self.day_matches(t)
    }

    fn day_matches(&self, t: &Civil) -> bool {
        let restricted = |d: &Day| !matches!(d, Day::Any | Day::Unspecified);
        let dom = dom_matches(&self.dom, t);
        let dow = dow_matches(&self.dow, t);
        if restricted(&self.dom) && restricted(&self.dow) {
            dom || dow
        } else {
            dom && dow
        }
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A deployment window: a cron expression read in a fixed-offset time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentWindow {
    /// The expression.
    pub cron: Cron,
    /// Minutes east of UTC.
    pub offset_minutes: i32,
}

/// How far ahead [`DeploymentWindow::next_open`] looks: 5 years.
const SEARCH_LIMIT_MS: u64 = 5 * 366 * 24 * 3_600_000;

impl DeploymentWindow {
    /// Parses the `Cron` and `TimeZone` configuration of a rule.
    pub fn new(cron: &str, time_zone: Option<&str>) -> Result<DeploymentWindow, CronError> {
        let cron = Cron::parse(cron)?;
        let offset_minutes = match time_zone {
            None => 0,
            Some(tz) => parse_offset(tz).map_err(|reason| CronError {
                expr: cron.source.clone(),
                reason,
            })?,
        };
        Ok(DeploymentWindow {
            cron,
            offset_minutes,
        })
    }

    /// Whether the window is open at `now` (unix milliseconds).
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.cron.matches(&self.local(now_ms))
    }

    /// The first instant at or after `now` (unix milliseconds) when the
    /// window is open, within five years.
    pub fn next_open(&self, now_ms: u64) -> Option<u64> {
        if self.is_open(now_ms) {
            return Some(now_ms);
        }
        let mut t = (now_ms / 60_000 + 1) * 60_000;
        let limit = now_ms.saturating_add(SEARCH_LIMIT_MS);
        while t <= limit {
            let c = self.local(t);
            if !bit(self.cron.months, c.month) || !self.cron.day_matches(&c) {
                // Skip to the next local midnight.
                t += ((24 - c.hour as u64) * 60 - c.minute as u64) * 60_000;
            } else if !bit(self.cron.hours, c.hour) {
                t += (60 - c.minute as u64) * 60_000;
            } else if self.cron.matches(&c) {
                return Some(t);
            } else {
                t += 60_000;
            }
        }
        None
    }

    fn local(&self, now_ms: u64) -> Civil {
        let minutes = (now_ms / 60_000) as i64 + self.offset_minutes as i64;
        Civil::from_minutes(minutes)
    }
}

/// Parses a fixed UTC offset in minutes east.
fn parse_offset(tz: &str) -> Result<i32, String> {
    let s = tz.trim();
    let rest = ["UTC", "GMT", "Z"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    if rest.is_empty() {
        return Ok(0);
    }
    let bad = || {
        format!(
            "time zone \"{tz}\" is not supported: use UTC or a fixed offset such as +02:00 or UTC-5 (named zones with daylight saving are not supported)"
        )
    };
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => (&digits[..2], &digits[2..]),
        None => (digits, "0"),
    };
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

fn bit(set: u64, n: u32) -> bool {
    n < 64 && set & (1 << n) != 0
}

/// Parses one field to `(lo, hi, step)` ranges.
fn ranges(
    field: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
) -> Result<Vec<(u32, u32, u32)>, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + name_base);
        }
        let v: u32 = s.parse().map_err(|_| format!("\"{s}\" is not a value"))?;
        if v < min || v > max {
            return Err(format!("{v} is out of range {min}-{max}"));
        }
        Ok(v)
    };
    field
        .split(',')
        .map(|item| {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("bad step \"{s}\""))?;
                    (r, step)
                }
                None => (item, 1),
            };
            let (lo, hi) = match range {
                "*" => (min, max),
                r => match r.split_once('-') {
                    Some((a, b)) => (value(a)?, value(b)?),
                    None if step > 1 => (value(r)?, max),
                    None => {
                        let v = value(r)?;
                        (v, v)
                    }
                },
            };
            if lo > hi {
                return Err(format!("range \"{range}\" is backwards"));
            }
            Ok((lo, hi, step))
        })
        .collect()
}

fn set(field: &str, min: u32, max: u32, names: &[&str], base: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for (lo, hi, step) in ranges(field, min, max, names, base)? {
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn day_of_month(field: &str) -> Result<Day, String> {
    Ok(match field {
        "*" => Day::Any,
        "?" => Day::Unspecified,
        "L" => Day::LastMinus(0),
        "LW" => Day::LastWeekday,
        f if f.starts_with("L-") => Day::LastMinus(
            f[2..]
                .parse()
                .ok()
                .filter(|n| *n < 31)
                .ok_or_else(|| format!("bad offset in \"{f}\""))?,
        ),
        f if f.ends_with('W') => {
            let n: u32 = f[..f.len() - 1]
                .parse()
                .ok()
                .filter(|n| (1..=31).contains(n))
                .ok_or_else(|| format!("bad day in \"{f}\""))?;
            Day::NearestWeekday(n)
        }
        f => Day::Set(set(f, 1, 31, &[], 0)?),
    })
}

fn day_of_week(field: &str, unix: bool) -> Result<Day, String> {
    // Internal numbering: 0 = Sunday.
    let (min, max, base) = if unix { (0, 7, 0) } else { (1, 7, 1) };
    let one = |s: &str| -> Result<u32, String> {
        let bits = set(s, min, max, &DAYS, base)?;
        if bits.count_ones() != 1 {
            return Err(format!("\"{s}\" is not one day"));
        }
        Ok(to_internal(bits.trailing_zeros(), unix))
    };
    Ok(match field {
        "*" => Day::Any,
        "?" => Day::Unspecified,
        "L" => Day::Set(1 << 6),
        f if f.ends_with('L') => Day::LastOf(one(&f[..f.len() - 1])?),
        f if f.contains('#') => {
            let (d, k) = f.split_once('#').unwrap_or((f, ""));
            let k: u32 = k
                .parse()
                .ok()
                .filter(|k| (1..=5).contains(k))
                .ok_or_else(|| format!("bad week number in \"{f}\""))?;
            Day::Nth(one(d)?, k)
        }
        f => {
            let bits = set(f, min, max, &DAYS, base)?;
            let mut out = 0u64;
            for v in 0..=7 {
                if bit(bits, v) {
                    out |= 1 << to_internal(v, unix);
                }
            }
            Day::Set(out)
        }
    })
}

fn to_internal(v: u32, unix: bool) -> u32 {
    if unix { v % 7 } else { v - 1 }
}

fn dom_matches(d: &Day, t: &Civil) -> bool {
    let last = days_in_month(t.year, t.month);
    match *d {
        Day::Any | Day::Unspecified => true,
        Day::Set(bits) => bit(bits, t.day),
        Day::LastMinus(n) => last.checked_sub(n) == Some(t.day),
        Day::LastWeekday => {
            let wd_last = weekday_of(t, last);
            let target = match wd_last {
                0 => last - 2,
                6 => last - 1,
                _ => last,
            };
            t.day == target
        }
        Day::NearestWeekday(n) => {
            let n = n.min(last);
            let target = match weekday_of(t, n) {
                6 if n == 1 => 3,
                6 => n - 1,
                0 if n == last => n - 2,
                0 => n + 1,
                _ => n,
            };
            t.day == target
        }
        Day::LastOf(_) | Day::Nth(..) => false,
    }
}

fn dow_matches(d: &Day, t: &Civil) -> bool {
    match *d {
        Day::Any | Day::Unspecified => true,
        Day::Set(bits) => bit(bits, t.weekday),
        Day::LastOf(wd) => t.weekday == wd && t.day + 7 > days_in_month(t.year, t.month),
        Day::Nth(wd, k) => t.weekday == wd && (t.day - 1) / 7 + 1 == k,
        _ => false,
    }
}

/// The weekday of day `day` of `t`'s month.
fn weekday_of(t: &Civil, day: u32) -> u32 {
    (t.weekday + 7 * 5 + day - t.day) % 7
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A local calendar minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    /// 0 = Sunday.
    weekday: u32,
}

impl Civil {
    fn from_minutes(minutes: i64) -> Civil {
        let days = minutes.div_euclid(1440);
        let in_day = minutes.rem_euclid(1440) as u32;
        // Days to civil date (proleptic Gregorian), after H. Hinnant's algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
        Civil {
            year,
            month,
            day,
            hour: in_day / 60,
            minute: in_day % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-06-03 00:00 UTC, a Monday.
    const MON: u64 = 1_717_372_800_000;
    const H: u64 = 3_600_000;
    const D: u64 = 24 * H;

    #[test]
    fn civil_dates() {
        let c = Civil::from_minutes((MON / 60_000) as i64);
        assert_eq!((c.year, c.month, c.day, c.weekday), (2024, 6, 3, 1));
        let c = Civil::from_minutes(0);
        assert_eq!((c.year, c.month, c.day, c.weekday), (1970, 1, 1, 4));
    }

    #[test]
    fn business_hours_window() {
        let w = DeploymentWindow::new("* * 9-16 ? * MON-FRI *", Some("UTC")).unwrap();
        assert!(!w.is_open(MON + 8 * H));
        assert!(w.is_open(MON + 9 * H));
        assert!(w.is_open(MON + 16 * H + 59 * 60_000));
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
        assert!(!w.is_open(MON + 9 * H + 60_000));
        // Unix shape, Sunday = 0.
        let w = DeploymentWindow::new("* 10 * * 0", None).unwrap();
        assert!(w.is_open(MON - D + 10 * H));
        // Offset: 09:00 at +02:00 is 07:00 UTC.
        let w = DeploymentWindow::new("* * 9 ? * * *", Some("UTC+02:00")).unwrap();
        assert!(w.is_open(MON + 7 * H));
        assert!(!w.is_open(MON + 9 * H));
        let w = DeploymentWindow::new("* * 9 ? * * *", Some("-05:30")).unwrap();
        assert!(w.is_open(MON + 14 * H + 30 * 60_000));
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
            "invalid cron expression \"* 0 25 ? * * *\": hours: 25 is out of range 0-23"
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
            DeploymentWindow::new("* * 9 ? * * *", Some("Europe/Paris"))
                .unwrap_err()
                .to_string(),
            "invalid cron expression \"* * 9 ? * * *\": time zone \"Europe/Paris\" is not supported: use UTC or a fixed offset such as +02:00 or UTC-5 (named zones with daylight saving are not supported)"
        );
    }
}
