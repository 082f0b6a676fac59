//! Timestamps: parsing the spellings market data files use, a regular step, calendars with
//! and without weekends, and printing future timestamps in the file's own style.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Weekday};

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

/// The unit of epoch timestamps (`1704067200000` is milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds (Binance klines until 2024).
    Millis,
    /// Microseconds (Binance spot klines from 2025).
    Micros,
    /// Nanoseconds (pandas `int64` datetimes).
    Nanos,
}

impl TimeUnit {
    /// The unit by its short name: `s`, `ms`, `us`, `ns`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "s" => Some(Self::Seconds),
            "ms" => Some(Self::Millis),
            "us" => Some(Self::Micros),
            "ns" => Some(Self::Nanos),
            _ => None,
        }
    }

    /// The unit of an epoch number by its magnitude: seconds up to year ~5138, then
    /// milliseconds, microseconds, nanoseconds.
    pub fn by_magnitude(value: i64) -> Self {
        match value.unsigned_abs() {
            0..100_000_000_000 => Self::Seconds,
            100_000_000_000..100_000_000_000_000 => Self::Millis,
            100_000_000_000_000..100_000_000_000_000_000 => Self::Micros,
            _ => Self::Nanos,
        }
    }

    /// Units per second.
    pub fn per_second(self) -> i64 {
        match self {
            Self::Seconds => 1,
            Self::Millis => 1_000,
            Self::Micros => 1_000_000,
            Self::Nanos => 1_000_000_000,
        }
    }

    /// The short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Millis => "ms",
            Self::Micros => "us",
            Self::Nanos => "ns",
        }
    }
}

/// Parses one timestamp to seconds since the epoch (UTC) and the style it was written in.
/// Accepts `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]` (space or `T`), and either with a
/// UTC offset (`+00:00`, `Z`), which is converted to UTC.
pub fn parse_timestamp(text: &str) -> Option<(i64, TimestampStyle)> {
    parse_iso(text).map(|p| (p.seconds, p.style))
}

/// A parsed timestamp: the instant, how it was written, and its UTC offset if it had one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Seconds since the epoch (UTC).
    pub seconds: i64,
    /// How it was written.
    pub style: TimestampStyle,
    /// Seconds east of UTC, when the text gave an offset.
    pub offset: Option<i32>,
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`) read digit by digit: the common case of large files,
/// about ten times faster than trying chrono's formats in turn.
fn parse_plain_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range]
            .iter()
            .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    Some(
        date.and_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?
            .and_utc()
            .timestamp(),
    )
}

/// [`parse_timestamp`] keeping the offset.
fn parse_iso(text: &str) -> Option<Parsed> {
    let text = text.trim();
    if let Some(seconds) = parse_plain_datetime(text) {
        return Some(Parsed {
            seconds,
            style: TimestampStyle::DateTime,
            offset: None,
        });
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(Parsed {
            seconds: date.and_hms_opt(0, 0, 0)?.and_utc().timestamp(),
            style: TimestampStyle::Date,
            offset: None,
        });
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(Parsed {
                seconds: t.timestamp(),
                style: TimestampStyle::DateTimeUtcOffset,
                offset: Some(t.offset().local_minus_utc()),
            });
        }
    }
    if let Some(stripped) = text.strip_suffix('Z').or_else(|| text.strip_suffix(" UTC")) {
        if let Some((seconds, _)) = parse_naive(stripped) {
            return Some(Parsed {
                seconds,
                style: TimestampStyle::DateTimeUtcOffset,
                offset: Some(0),
            });
        }
    }
    parse_naive(text).map(|(seconds, style)| Parsed {
        seconds,
        style,
        offset: None,
    })
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
    format_timestamp_at(seconds, style, 0)
}

/// Prints `seconds` in `style` at `offset` seconds east of UTC (`DateTimeUtcOffset` prints
/// the offset: `2024-03-10 03:00:00-04:00`; the other styles print the local time).
pub fn format_timestamp_at(seconds: i64, style: TimestampStyle, offset: i32) -> String {
    let zone = FixedOffset::east_opt(offset).unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    let t = DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .with_timezone(&zone);
    match style {
        TimestampStyle::Date => t.format("%Y-%m-%d").to_string(),
        TimestampStyle::DateTime => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        TimestampStyle::DateTimeUtcOffset => t.format("%Y-%m-%d %H:%M:%S%:z").to_string(),
    }
}

/// A time zone to print timestamps in: a fixed UTC offset (what a file's `+02:00` says) or a
/// named zone with its daylight-saving rules (`--tz Europe/Berlin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// Seconds east of UTC.
    Offset(i32),
    /// An IANA zone.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `Z`, `+02:00`, `-0500`, `+5`, `UTC+05:30` or an IANA name (`America/New_York`).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Some(Self::Offset(0));
        }
        if let Ok(tz) = t.parse::<chrono_tz::Tz>() {
            return Some(Self::Named(tz));
        }
        let t = t.strip_prefix("UTC").unwrap_or(t);
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'+') => (1, &t[1..]),
            Some(b'-') => (-1, &t[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        let (hours, minutes) = match digits.len() {
            1 | 2 => (digits.as_str(), "0"),
            4 => digits.split_at(2),
            _ => return None,
        };
        let (h, m) = (hours.parse::<i32>().ok()?, minutes.parse::<i32>().ok()?);
        (h <= 14 && m <= 59).then_some(Self::Offset(sign * (h * 3600 + m * 60)))
    }

    /// The zone as `--tz` takes it: an IANA name, or an offset such as `+02:00`.
    pub fn name(self) -> String {
        match self {
            Self::Named(tz) => tz.name().to_string(),
            Self::Offset(offset) => {
                let sign = if offset < 0 { '-' } else { '+' };
                let minutes = offset.unsigned_abs() / 60;
                format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
            }
        }
    }

    /// Seconds east of UTC at the instant `seconds`.
    pub fn offset_at(self, seconds: i64) -> i32 {
        use chrono::{Offset as _, TimeZone as _};
        match self {
            Self::Offset(offset) => offset,
            Self::Named(tz) => {
                let utc = DateTime::from_timestamp(seconds, 0).unwrap_or_default().naive_utc();
                tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()
            }
        }
    }
}

/// How a timestamp column is written: detected from its first cells, or given by the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    /// `2024-01-31`, `2024-01-31 09:30:00`, with `T`, fractions, offsets or `Z`.
    Iso,
    /// Integers since the epoch in this unit.
    Epoch(TimeUnit),
    /// A strftime pattern (`%m/%d/%Y`, `%Y.%m.%d %H:%M`), with `%z` for offsets.
    Pattern(String),
}

/// Date spellings tried when a column is not ISO; each also with a time of day.
const DATE_PATTERNS: [&str; 13] = [
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m.%d.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y.%m.%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%b %d, %Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%Y-%m-%d",
];

/// Time-of-day spellings after a date (none = a date alone); `%.f` also reads no fraction.
const TIME_PATTERNS: [&str; 5] = ["", " %H:%M", " %H:%M:%S%.f", "T%H:%M:%S%.f", " %I:%M %p"];

/// Whether `text` is an epoch number: 9 or more digits (8 digits are `YYYYMMDD`), optionally
/// signed or with a fraction.
fn is_epoch(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let int = digits.split_once('.').map_or(
        digits,
        |(i, f)| {
            if f.bytes().all(|b| b.is_ascii_digit()) {
                i
            } else {
                ""
            }
        },
    );
    int.len() >= 9 && int.bytes().all(|b| b.is_ascii_digit())
}

impl TimeFormat {
    /// The formats that read `first` (the column's first cell): the user's pattern or unit,
    /// else ISO, an epoch unit by magnitude, or every date pattern that reads it (several when
    /// `01/02/2024` could be day- or month-first: the other rows decide).
    pub fn candidates(first: &str, unit: Option<TimeUnit>, pattern: Option<&str>) -> Vec<Self> {
        let first = first.trim();
        if let Some(pattern) = pattern {
            return vec![Self::Pattern(pattern.to_string())];
        }
        if is_epoch(first) || (unit.is_some() && first.parse::<f64>().is_ok()) {
            let value = first.split('.').next().and_then(|i| i.parse::<i64>().ok()).unwrap_or(0);
            return vec![Self::Epoch(unit.unwrap_or_else(|| TimeUnit::by_magnitude(value)))];
        }
        if parse_iso(first).is_some() {
            return vec![Self::Iso];
        }
        DATE_PATTERNS
            .iter()
            .flat_map(|d| TIME_PATTERNS.iter().map(move |t| Self::Pattern(format!("{d}{t}"))))
            .filter(|f| f.parse(first).is_some())
            .collect()
    }

    /// Reads one cell.
    pub fn parse(&self, text: &str) -> Option<Parsed> {
        let text = text.trim();
        match self {
            Self::Iso => parse_iso(text),
            Self::Epoch(unit) => {
                let (seconds, style) = epoch(text, *unit)?;
                Some(Parsed {
                    seconds,
                    style,
                    offset: None,
                })
            }
            Self::Pattern(pattern) => parse_pattern(text, pattern),
        }
    }

    /// How users write it: `ISO 8601`, `epoch ms`, `%m/%d/%Y`.
    pub fn describe(&self) -> String {
        match self {
            Self::Iso => "ISO 8601 (2024-01-31 09:30:00)".into(),
            Self::Epoch(unit) => format!("epoch {}", unit.name()),
            Self::Pattern(pattern) => pattern.clone(),
        }
    }
}

/// An epoch number in `unit` as seconds (floored) and the style (a date at midnight).
fn epoch(text: &str, unit: TimeUnit) -> Option<(i64, TimestampStyle)> {
    let per_second = unit.per_second();
    let seconds = match text.parse::<i64>() {
        Ok(v) => v.div_euclid(per_second),
        Err(_) => {
            let v = text.parse::<f64>().ok().filter(|v| v.is_finite())?;
            (v / per_second as f64).floor() as i64
        }
    };
    // Beyond year 9999 is a wrong unit, not a date.
    if !(-62_135_596_800..=253_402_300_799).contains(&seconds) {
        return None;
    }
    let style = if seconds.rem_euclid(86_400) == 0 {
        TimestampStyle::Date
    } else {
        TimestampStyle::DateTime
    };
    Some((seconds, style))
}

/// A strftime pattern: with an offset (`%z`), a date and time, or a date alone.
fn parse_pattern(text: &str, pattern: &str) -> Option<Parsed> {
    if let Ok(t) = DateTime::parse_from_str(text, pattern) {
        return Some(Parsed {
            seconds: t.timestamp(),
            style: TimestampStyle::DateTimeUtcOffset,
            offset: Some(t.offset().local_minus_utc()),
        });
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, pattern) {
        return Some(Parsed {
            seconds: t.and_utc().timestamp(),
            style: TimestampStyle::DateTime,
            offset: None,
        });
    }
    let date = NaiveDate::parse_from_str(text, pattern).ok()?;
    Some(Parsed {
        seconds: date.and_hms_opt(0, 0, 0)?.and_utc().timestamp(),
        style: TimestampStyle::Date,
        offset: None,
    })
}

/// Whether `text` is a time of day alone (`09:30`, `14:00:00`, `00:00:00.000`, or stooq's
/// `153000`): a separate time column to join to a date column.
pub(crate) fn is_time_of_day(text: &str) -> bool {
    let text = with_colons(text.trim());
    ["%H:%M", "%H:%M:%S", "%H:%M:%S%.f"]
        .iter()
        .any(|f| chrono::NaiveTime::parse_from_str(&text, f).is_ok())
}

/// A time of day written as six digits (`HHMMSS`, as stooq writes it) with colons
/// (`HH:MM:SS`), so that it joins a date as any other time does; other text as it is.
pub(crate) fn with_colons(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}:{}:{}", &text[..2], &text[2..4], &text[4..]).into()
    } else {
        text.into()
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
        // The digit-by-digit path agrees with chrono and refuses what chrono refuses.
        assert_eq!(parse_plain_datetime("2017-04-19T09:00:00"), Some(t));
        assert!(parse_timestamp("2017-02-30 09:00:00").is_none());
        assert!(parse_timestamp("2017-04-19 25:00:00").is_none());
        assert!(parse_plain_datetime("2017-04-19 09:0a:00").is_none());
        assert!(parse_timestamp("2024-13-01").is_none());
    }

    #[test]
    fn epochs_by_magnitude_and_unit() {
        let cases = [
            ("1704067200", TimeUnit::Seconds),
            ("1704067200000", TimeUnit::Millis),
            ("1704067200000000", TimeUnit::Micros),
            ("1704067200000000000", TimeUnit::Nanos),
        ];
        for (text, unit) in cases {
            let formats = TimeFormat::candidates(text, None, None);
            assert_eq!(formats, [TimeFormat::Epoch(unit)], "{text}");
            let parsed = formats[0].parse(text).unwrap();
            assert_eq!((parsed.seconds, parsed.style), (1_704_067_200, TimestampStyle::Date));
        }
        // An explicit unit wins; a number that is no date in that unit is refused.
        let ms = TimeFormat::candidates("1704067200", Some(TimeUnit::Millis), None);
        assert_eq!(ms, [TimeFormat::Epoch(TimeUnit::Millis)]);
        assert!(TimeFormat::Epoch(TimeUnit::Seconds).parse("1704067200000000").is_none());
        // Eight digits are a date.
        assert_eq!(
            TimeFormat::candidates("20240131", None, None),
            [TimeFormat::Pattern("%Y%m%d".into())]
        );
    }

    #[test]
    fn day_and_month_first_dates() {
        // 01/02/2024 reads both ways; 01/31/2024 only month-first.
        assert_eq!(TimeFormat::candidates("01/02/2024", None, None).len(), 2);
        let us = TimeFormat::candidates("01/31/2024", None, None);
        assert_eq!(us, [TimeFormat::Pattern("%m/%d/%Y".into())]);
        let mt = TimeFormat::candidates("2018.02.09 13:00", None, None);
        assert_eq!(mt, [TimeFormat::Pattern("%Y.%m.%d %H:%M".into())]);
        let seconds = TimeFormat::candidates("2018.02.09 13:00:00", None, None);
        assert_eq!(seconds, [TimeFormat::Pattern("%Y.%m.%d %H:%M:%S%.f".into())]);
        let parsed = mt[0].parse("2018.02.09 13:00").unwrap();
        assert_eq!(format_timestamp(parsed.seconds, parsed.style), "2018-02-09 13:00:00");
        assert!(is_time_of_day("00:00:00") && !is_time_of_day("2018.02.09"));
    }

    #[test]
    fn offsets_are_kept_and_printed() {
        let parsed = TimeFormat::Iso.parse("2024-03-10 03:00:00-04:00").unwrap();
        assert_eq!(parsed.offset, Some(-4 * 3600));
        assert_eq!(
            format_timestamp_at(parsed.seconds, parsed.style, -4 * 3600),
            "2024-03-10 03:00:00-04:00"
        );
        assert_eq!(
            format_timestamp(parsed.seconds, parsed.style),
            "2024-03-10 07:00:00+00:00"
        );
    }

    #[test]
    fn zones_by_offset_or_name() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::Offset(0)));
        assert_eq!(Zone::parse("+02:00"), Some(Zone::Offset(7200)));
        assert_eq!(Zone::parse("-0500"), Some(Zone::Offset(-18_000)));
        assert_eq!(Zone::parse("UTC+05:30"), Some(Zone::Offset(19_800)));
        assert_eq!(Zone::parse("+5:30"), None);
        assert_eq!(Zone::parse("Mars/Olympus"), None);
        // Berlin moves from +01:00 to +02:00 at 01:00 UTC on 2024-03-31.
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let change = TimeFormat::Iso.parse("2024-03-31 01:00:00Z").unwrap().seconds;
        assert_eq!((berlin.offset_at(change - 60), berlin.offset_at(change)), (3600, 7200));
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
