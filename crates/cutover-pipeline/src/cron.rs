//! Cron expressions for `DeploymentWindow` rules: a stage may be entered
//! during the minutes the expression matches, on the wall clock of the
//! rule's time zone.
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
//! those; months and days also take names (`JAN`, `MON-FRI`), in their own
//! field only. Day of month also takes `?`, `L` (last day), `L-n` (n days
//! before it), `nW` (nearest weekday) and `LW`; day of week `?`, `L`
//! (Saturday), `nL` (last such day of the month) and `n#k` (k-th such day).
//! The seconds field must be `*` or `0`: windows have minute resolution.
//! In the AWS shapes one of the two day fields must be `?`; in the Unix
//! shape, when both are restricted, a day matches either, as in Unix cron.
//!
//! The grammar and the search for the next matching minute are `croner`'s;
//! this module only maps the three shapes onto it (seconds pinned to 0, a
//! year field always present, Quartz weekday numbers for the AWS shapes)
//! and keeps `L-n`, which croner has no syntax for (see [`Alternative`]).
//!
//! Time zones: `UTC` (or `GMT`, `Z`, empty), fixed offsets (`+HH:MM`, `-HH`,
//! `+HHMM`, `UTC+2`, `UTC-05:30`), and IANA names (`Europe/Berlin`,
//! `America/New_York`) from the time zone database bundled into the binary
//! (`jiff`), so no system tzdata is read.
//!
//! Daylight saving: a window is a set of wall-clock minutes. On a
//! spring-forward day the skipped minutes never happen, so a window of only
//! 02:30 in `Europe/Berlin` does not open on 30 March 2025 (its next opening
//! is 02:30 on the 31st), while a window of 02:00-03:59 opens at 03:00, the
//! first minute that exists. On a fall-back day the repeated minutes happen
//! twice, and a window covering them is open both times.
//! [`DeploymentWindow::next_open`] always returns an instant at which
//! [`DeploymentWindow::is_open`] is true.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ToSpan};
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
    /// A minute matches when any alternative matches it.
    alternatives: Vec<Alternative>,
}

/// One croner pattern, with the `L-n` filter croner cannot express.
///
/// `L-n` (n days before the last day of the month) has no croner syntax: it
/// is kept here as a day filter over a croner pattern whose day of month is
/// `*`. In the Unix shape with a restricted day of week the two day fields
/// are OR-ed, so that case becomes two alternatives (`L-n` days, and the
/// day-of-week days).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    cron: croner::Cron,
    /// Only days that are this many days before the month's last one.
    last_minus: Option<i8>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The fields after the seconds, in croner's order, with their range.
const FIELDS: [(&str, &str); 6] = [
    ("minutes", "0-59"),
    ("hours", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12"),
    ("day of week", ""),
    ("year", "1-5000"),
];

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
        let (sec, rest, year, unix) = match (wrapped, fields.len()) {
            (true, 6) => (None, &fields[..5], fields[5], false),
            (false, 7) => (Some(fields[0]), &fields[1..6], fields[6], false),
            (false, 6) => (Some(fields[0]), &fields[1..6], "*", false),
            (false, 5) => (None, &fields[..5], "*", true),
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
        // minute, hour, dom, month, dow, year
        let mut f: [String; 6] = [
            rest[0].to_owned(),
            rest[1].to_owned(),
            rest[2].to_owned(),
            rest[3].to_owned(),
            rest[4].to_owned(),
            year.to_owned(),
        ];
        for (i, field) in f.iter().enumerate() {
            check_words(i, field).map_err(|r| err(format!("{}: {r}", FIELDS[i].0)))?;
        }
        // `L` alone in day of week is Saturday.
        if f[4].eq_ignore_ascii_case("L") {
            f[4] = if unix { "6" } else { "7" }.to_owned();
        }
        let last_minus = match f[2].strip_prefix("L-").or_else(|| f[2].strip_prefix("l-")) {
            Some(n) => Some(
                n.parse::<i8>()
                    .ok()
                    .filter(|n| (0..31).contains(n))
                    .ok_or_else(|| err(format!("day of month: bad offset in \"{}\"", f[2])))?,
            ),
            None => None,
        };
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .year(croner::parser::Year::Required)
            .alternative_weekdays(!unix)
            .sloppy_ranges(true)
            .build();
        let compile = |f: &[String; 6]| -> Result<croner::Cron, CronError> {
            parser
                .parse(&format!("0 {}", f.join(" ")))
                .map_err(|e| err(locate(&parser, f, unix, e)))
        };
        let unspecified = |s: &str| s == "?";
        let restricted = |s: &str| s != "*" && s != "?";
        let alternatives = match last_minus {
            None => vec![Alternative {
                cron: compile(&f)?,
                last_minus: None,
            }],
            Some(n) => {
                let mut any_day = f.clone();
                any_day[2] = "*".to_owned();
                let mut alts = Vec::new();
                if unix && restricted(&f[4]) {
                    // Either day field: the L-n days, or the weekdays.
                    alts.push(Alternative {
                        cron: compile(&any_day)?,
                        last_minus: None,
                    });
                    any_day[4] = "*".to_owned();
                }
                alts.insert(
                    0,
                    Alternative {
                        cron: compile(&any_day)?,
                        last_minus: Some(n),
                    },
                );
                alts
            }
        };
        if !unix && !unspecified(&f[2]) && !unspecified(&f[4]) {
            return Err(err(
                "one of day of month and day of week must be ?".to_owned()
            ));
        }
        Ok(Cron {
            source: expr.to_owned(),
            alternatives,
        })
    }

    /// Whether the wall-clock minute `local` matches.
    fn matches(&self, local: DateTime) -> bool {
        self.alternatives.iter().any(|a| a.matches(local))
    }

    /// The first wall-clock minute at or after `from` that matches, if one
    /// comes before `horizon`. `memo` holds each alternative's last search
    /// (croner searches up to the year 5000 when nothing matches, so a
    /// search is not repeated for every stretch of [`DeploymentWindow::next_open`]).
    fn next_match(
        &self,
        from: DateTime,
        horizon: DateTime,
        memo: &mut [Option<Searched>],
    ) -> Option<DateTime> {
        self.alternatives
            .iter()
            .zip(memo.iter_mut())
            .filter_map(|(alt, memo)| {
                if let Some(s) = memo
                    && s.from <= from
                    && s.found.is_none_or(|f| f >= from)
                {
                    // Nothing matched in [s.from, s.found), which holds `from`.
                    return s.found;
                }
                let found = alt.next_match(from, horizon);
                *memo = Some(Searched { from, found });
                found
            })
            .min()
    }
}

/// One search of an alternative: from `from`, the first match is `found`.
#[derive(Debug, Clone, Copy)]
struct Searched {
    from: DateTime,
    found: Option<DateTime>,
}

impl Alternative {
    fn matches(&self, local: DateTime) -> bool {
        self.cron.is_time_matching(&local).unwrap_or(false) && self.day_ok(local)
    }

    fn day_ok(&self, local: DateTime) -> bool {
        self.last_minus
            .is_none_or(|n| local.day() == local.days_in_month() - n)
    }

    fn next_match(&self, mut from: DateTime, horizon: DateTime) -> Option<DateTime> {
        while from < horizon {
            let found = self.cron.find_next_occurrence(&from, true).ok()?;
            if found >= horizon {
                return None;
            }
            if self.day_ok(found) {
                return Some(found);
            }
            // The filter is per day: go on from the next midnight.
            from = found
                .date()
                .tomorrow()
                .ok()?
                .to_datetime(jiff::civil::Time::midnight());
        }
        None
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Rejects words outside the fields that take them (croner would replace a
/// month or day name anywhere) and anything that is not ASCII.
fn check_words(field: usize, text: &str) -> Result<(), String> {
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("unexpected character '{c}' in \"{text}\""));
    }
    // croner skips empty list items, so "," would select nothing and a
    // search for the next match would run to croner's year 5000.
    if text.split(',').any(str::is_empty) {
        return Err(format!("empty list item in \"{text}\""));
    }
    for word in text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
    {
        let upper = word.to_ascii_uppercase();
        let ok = match field {
            2 => matches!(upper.as_str(), "L" | "W" | "LW"),
            3 => MONTHS.contains(&upper.as_str()),
            4 => {
                upper == "L"
                    || DAYS.contains(&upper.as_str())
                    || upper.strip_suffix('L').is_some_and(|d| DAYS.contains(&d))
            }
            _ => false,
        };
        if !ok {
            return Err(format!("\"{word}\" is not a value"));
        }
    }
    Ok(())
}

/// Names the field croner rejected, by parsing each field alone.
fn locate(
    parser: &croner::parser::CronParser,
    f: &[String; 6],
    unix: bool,
    e: croner::errors::CronError,
) -> String {
    let message = |e: croner::errors::CronError| {
        let text = match e {
            croner::errors::CronError::ComponentError(m)
            | croner::errors::CronError::InvalidPattern(m)
            | croner::errors::CronError::IllegalCharacters(m) => m,
            other => other.to_string(),
        };
        let text = text.trim_end_matches('.');
        let mut chars = text.chars();
        match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => String::new(),
        }
    };
    for (i, (name, range)) in FIELDS.iter().enumerate() {
        let mut probe: Vec<&str> = vec!["0", "*", "*", "*", "*", "*", "*"];
        probe[i + 1] = &f[i];
        if let Err(e) = parser.parse(&probe.join(" ")) {
            let allowed = match (i, unix) {
                (4, true) => "0-7, SUN-SAT",
                (4, false) => "1-7, SUN-SAT",
                _ => range,
            };
            return format!("{name}: {} in \"{}\" (allowed {allowed})", message(e), f[i]);
        }
    }
    message(e)
}

/// A deployment window: a cron expression read on the wall clock of a time
/// zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentWindow {
    /// The expression.
    pub cron: Cron,
    zone: TimeZone,
}

/// How far ahead [`DeploymentWindow::next_open`] looks: 5 years.
const SEARCH_LIMIT_MS: u64 = 5 * 366 * 24 * 3_600_000;

impl DeploymentWindow {
    /// Parses the `Cron` and `TimeZone` configuration of a rule.
    pub fn new(cron: &str, time_zone: Option<&str>) -> Result<DeploymentWindow, CronError> {
        let cron = Cron::parse(cron)?;
        let zone = match time_zone {
            None => TimeZone::UTC,
            Some(tz) => parse_zone(tz).map_err(|reason| CronError {
                expr: cron.source.clone(),
                reason,
            })?,
        };
        Ok(DeploymentWindow { cron, zone })
    }

    /// The time zone the expression is read in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Whether the window is open at `now` (unix milliseconds).
    pub fn is_open(&self, now_ms: u64) -> bool {
        match timestamp(now_ms) {
            Some(ts) => self.cron.matches(minute(self.zone.to_datetime(ts))),
            None => false,
        }
    }

    /// The first instant at or after `now` (unix milliseconds) when the
    /// window is open, within five years.
    ///
    /// The search walks the zone's stretches of constant UTC offset: inside
    /// one, wall clock and instant map one to one, so the first matching
    /// wall-clock minute of the stretch is its first open instant. Minutes
    /// a spring-forward skips belong to no stretch; minutes a fall-back
    /// repeats belong to two.
    pub fn next_open(&self, now_ms: u64) -> Option<u64> {
        if self.is_open(now_ms) {
            return Some(now_ms);
        }
        let start = timestamp(now_ms)?;
        let limit = timestamp(now_ms.saturating_add(SEARCH_LIMIT_MS)).unwrap_or(Timestamp::MAX);
        // Past the limit in every zone (offsets stay within a day).
        let horizon = Offset::UTC
            .to_datetime(limit)
            .checked_add(2.days())
            .unwrap_or(DateTime::MAX);
        let mut memo = vec![None; self.cron.alternatives.len()];
        let mut seg_start = start;
        // The first stretch starts after the current (closed) minute.
        let mut from = minute(self.zone.to_datetime(start))
            .checked_add(1.minute())
            .ok()?;
        while seg_start < limit {
            let offset = self.zone.to_offset(seg_start);
            let seg_end = self
                .zone
                .following(seg_start)
                .map(|t| t.timestamp())
                .find(|t| *t > seg_start)
                .map_or(limit, |t| t.min(limit));
            let until = offset.to_datetime(seg_end);
            if let Some(local) = self.cron.next_match(from, horizon, &mut memo)
                && local < until
            {
                let at = offset.to_timestamp(local).ok()?.max(seg_start);
                if at < seg_end {
                    return u64::try_from(at.as_millisecond()).ok();
                }
            }
            seg_start = seg_end;
            // A stretch may start inside a minute (odd historical offsets):
            // that minute counts.
            from = minute(self.zone.to_datetime(seg_start));
        }
        None
    }
}

/// `ms` as a timestamp, if jiff can represent it.
fn timestamp(ms: u64) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()
}

/// The start of the wall-clock minute holding `dt`.
fn minute(dt: DateTime) -> DateTime {
    dt.with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap_or(dt)
}

/// Parses a time zone: UTC, a fixed offset, or an IANA name.
fn parse_zone(tz: &str) -> Result<TimeZone, String> {
    let s = tz.trim();
    let rest = ["UTC", "GMT", "Z"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    if rest.is_empty() {
        return Ok(TimeZone::UTC);
    }
    if rest.starts_with(['+', '-']) {
        return parse_offset(rest).map(TimeZone::fixed).ok_or_else(|| {
            format!(
                "time zone \"{tz}\" is not a valid offset: use +HH:MM, +HHMM or +HH (at most 14 hours), e.g. +02:00 or UTC-5"
            )
        });
    }
    TimeZone::get(s).map_err(|_| {
        format!(
            "unknown time zone \"{tz}\": use an IANA name such as Europe/Berlin, UTC, or a fixed offset such as +02:00 or UTC-5"
        )
    })
}

/// Parses `+HH:MM`, `+HHMM`, `+H` or `-...` (ASCII digits only).
fn parse_offset(s: &str) -> Option<Offset> {
    let (sign, digits) = match s.strip_prefix('+') {
        Some(d) => (1, d),
        None => (-1, s.strip_prefix('-')?),
    };
    let number = |d: &str| -> Option<i32> {
        if d.is_empty() || d.len() > 2 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        d.parse().ok()
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (number(h)?, number(m)?),
        None if digits.len() == 4 => (number(digits.get(..2)?)?, number(digits.get(2..)?)?),
        None => (number(digits)?, 0),
    };
    if h > 14 || m > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

#[cfg(test)]
mod tests;
