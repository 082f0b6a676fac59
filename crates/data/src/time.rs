//! Timestamps: parsing the spellings market data files use, a regular step, calendars with
//! and without weekends, and printing future timestamps in the file's own style.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};

/// How the file wrote its timestamps; future timestamps are printed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampStyle {
    /// `2023-10-21`
    Date,
    /// `2017-04-19 09:00:00`
    DateTime,
    /// `2024-01-01 00:00:00+00:00` (always printed in UTC).
    DateTimeUtcOffset,
}

/// Parses one timestamp to seconds since the epoch (UTC) and the style it was written in.
/// Accepts `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]` (space or `T`), and either with a
/// UTC offset (`+00:00`, `Z`), which is converted to UTC.
pub fn parse_timestamp(text: &str) -> Option<(i64, TimestampStyle)> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some((date.and_hms_opt(0, 0, 0)?.and_utc().timestamp(), TimestampStyle::Date));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some((t.timestamp(), TimestampStyle::DateTimeUtcOffset));
        }
    }
    if let Some(stripped) = text.strip_suffix('Z') {
        if let Some((seconds, _)) = parse_naive(stripped) {
            return Some((seconds, TimestampStyle::DateTimeUtcOffset));
        }
    }
    parse_naive(text)
}

fn parse_naive(text: &str) -> Option<(i64, TimestampStyle)> {
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some((t.and_utc().timestamp(), TimestampStyle::DateTime));
        }
    }
    None
}

/// Prints `seconds` (UTC) in `style`.
pub fn format_timestamp(seconds: i64, style: TimestampStyle) -> String {
    let t = DateTime::from_timestamp(seconds, 0).unwrap_or_default().naive_utc();
    match style {
        TimestampStyle::Date => t.format("%Y-%m-%d").to_string(),
        TimestampStyle::DateTime => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        TimestampStyle::DateTimeUtcOffset => t.format("%Y-%m-%d %H:%M:%S+00:00").to_string(),
    }
}

/// Whether `seconds` falls on a Saturday or Sunday (UTC).
pub fn is_weekend(seconds: i64) -> bool {
    let day = DateTime::from_timestamp(seconds, 0).unwrap_or_default().weekday();
    matches!(day, Weekday::Sat | Weekday::Sun)
}

/// The calendar the bars live on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// Seconds between consecutive bars.
    pub step: i64,
    /// Bars never fall on Saturdays or Sundays (stocks, FX): steps skip weekends.
    pub weekdays_only: bool,
}

impl Calendar {
    /// The next bar time after `seconds`.
    pub fn next(&self, seconds: i64) -> i64 {
        let mut t = seconds + self.step;
        while self.weekdays_only && is_weekend(t) {
            t += self.step.min(Duration::days(1).num_seconds());
        }
        t
    }

    /// The `count` bar times after `last`.
    pub fn future(&self, last: i64, count: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(count);
        let mut t = last;
        for _ in 0..count {
            t = self.next(t);
            out.push(t);
        }
        out
    }

    /// A readable name of the step: `1d`, `1h`, `15min`, `3600s`...
    pub fn step_name(&self) -> String {
        let s = self.step;
        let unit = if s % 86_400 == 0 {
            format!("{}d", s / 86_400)
        } else if s % 3_600 == 0 {
            format!("{}h", s / 3_600)
        } else if s % 60 == 0 {
            format!("{}min", s / 60)
        } else {
            format!("{s}s")
        };
        if self.weekdays_only {
            format!("{unit} (weekdays)")
        } else {
            unit
        }
    }
}

/// The most common positive difference between consecutive sorted timestamps (ties: the
/// smaller step), or `None` with fewer than 2 timestamps.
pub fn most_common_step(sorted: &[i64]) -> Option<i64> {
    let mut diffs: Vec<i64> = sorted.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0).collect();
    diffs.sort_unstable();
    let mut best: Option<(i64, usize)> = None;
    let mut i = 0;
    while i < diffs.len() {
        let j = diffs[i..]
            .iter()
            .position(|&d| d != diffs[i])
            .map_or(diffs.len(), |p| i + p);
        if best.is_none_or(|(_, count)| j - i > count) {
            best = Some((diffs[i], j - i));
        }
        i = j;
    }
    best.map(|(step, _)| step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_of_our_files() {
        let (d, style) = parse_timestamp("2014-09-17").unwrap();
        assert_eq!((d, style), (1_410_912_000, TimestampStyle::Date));
        let (t, style) = parse_timestamp("2017-04-19 09:00:00").unwrap();
        assert_eq!(style, TimestampStyle::DateTime);
        assert_eq!(format_timestamp(t, style), "2017-04-19 09:00:00");
        let (u, style) = parse_timestamp("2024-01-01 00:00:00+00:00").unwrap();
        assert_eq!(style, TimestampStyle::DateTimeUtcOffset);
        assert_eq!(format_timestamp(u, style), "2024-01-01 00:00:00+00:00");
        // Offsets are converted to UTC.
        let (v, _) = parse_timestamp("2024-01-01T02:00:00+02:00").unwrap();
        assert_eq!(u, v);
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2024-13-01").is_none());
    }

    #[test]
    fn weekday_calendar_skips_weekends() {
        // Friday 2024-01-05 -> Monday 2024-01-08, Tuesday 01-09.
        let (friday, _) = parse_timestamp("2024-01-05").unwrap();
        let calendar = Calendar {
            step: 86_400,
            weekdays_only: true,
        };
        let future: Vec<String> = calendar
            .future(friday, 2)
            .into_iter()
            .map(|t| format_timestamp(t, TimestampStyle::Date))
            .collect();
        assert_eq!(future, ["2024-01-08", "2024-01-09"]);
        let hourly = Calendar {
            step: 3_600,
            weekdays_only: true,
        };
        let (late_friday, _) = parse_timestamp("2024-01-05 23:00:00").unwrap();
        assert_eq!(
            format_timestamp(hourly.next(late_friday), TimestampStyle::DateTime),
            "2024-01-08 00:00:00"
        );
        assert_eq!(hourly.step_name(), "1h (weekdays)");
    }

    #[test]
    fn most_common_step_ignores_gaps() {
        let day = 86_400;
        let ts = [0, day, 2 * day, 5 * day, 6 * day];
        assert_eq!(most_common_step(&ts), Some(day));
        assert_eq!(most_common_step(&[7]), None);
    }
}
