//! Frequencies (pandas offset aliases) and the forecast start: where the first forecast step of
//! a series that starts at `start` and has `T` observations falls, as
//! `pd.date_range(start, periods=T + 1, freq=freq)[-1]` computes it (anchored frequencies first
//! roll `start` forward to their anchor, keeping the time of day).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};

/// A parsed frequency: a multiple of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freq {
    /// The multiple (`15` in `15min`).
    pub multiple: i64,
    /// The unit.
    pub unit: Unit,
}

/// The units of [`Freq`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A fixed number of seconds (`s`, `min`/`T`, `h`/`H`, `D`).
    Seconds(i64),
    /// Business days (`B`): Monday to Friday.
    BusinessDay,
    /// Weeks anchored on a weekday (`W` = `W-SUN`).
    Week(Weekday),
    /// Months, quarters or years (`months` long), anchored on the first or the last day of
    /// the period; quarters and years end in December.
    Months {
        /// 1, 3 or 12.
        months: i64,
        /// Anchored on the period's last day (`ME`, `QE`, `YE`) rather than its first (`MS`...).
        end: bool,
    },
}

/// The aliases [`Freq::parse`] understands, for error messages.
pub const SUPPORTED: &str =
    "s, min (T), h (H), D, B, W (W-SUN..W-SAT), ME (M), MS, QE (Q), QS, YE (Y, A), YS (AS), each with an optional multiple such as 15min";

impl Freq {
    /// Parses a pandas offset alias such as `D`, `h`, `15min`, `W-FRI`, `ME` or `QS`.
    /// Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let multiple = if digits == 0 { 1 } else { text[..digits].parse().ok()? };
        if multiple < 1 {
            return None;
        }
        let months = |months, end| Unit::Months { months, end };
        let unit = match &text[digits..] {
            "s" | "S" => Unit::Seconds(1),
            "min" | "T" => Unit::Seconds(60),
            "h" | "H" => Unit::Seconds(3600),
            "D" | "d" => Unit::Seconds(86_400),
            "B" => Unit::BusinessDay,
            "ME" | "M" => months(1, true),
            "MS" => months(1, false),
            "QE" | "Q" | "QE-DEC" | "Q-DEC" => months(3, true),
            "QS" | "QS-JAN" => months(3, false),
            "YE" | "Y" | "A" | "YE-DEC" | "A-DEC" => months(12, true),
            "YS" | "AS" | "YS-JAN" | "AS-JAN" => months(12, false),
            week => Unit::Week(match week {
                "W" | "W-SUN" => Weekday::Sun,
                "W-MON" => Weekday::Mon,
                "W-TUE" => Weekday::Tue,
                "W-WED" => Weekday::Wed,
                "W-THU" => Weekday::Thu,
                "W-FRI" => Weekday::Fri,
                "W-SAT" => Weekday::Sat,
                _ => return None,
            }),
        };
        Some(Self { multiple, unit })
    }

    /// The timestamp `steps` periods after `start` (after rolling `start` forward to the
    /// anchor), or `None` past the calendar's end.
    pub fn advance(&self, start: NaiveDateTime, steps: usize) -> Option<NaiveDateTime> {
        let n = self.multiple.checked_mul(i64::try_from(steps).ok()?)?;
        match self.unit {
            Unit::Seconds(seconds) => start.checked_add_signed(Duration::try_seconds(n.checked_mul(seconds)?)?),
            Unit::BusinessDay => {
                let mut t = start;
                while is_weekend(t) {
                    t = t.checked_add_signed(Duration::days(1))?;
                }
                // Whole weeks, then the remaining business days one by one.
                t = t.checked_add_signed(Duration::try_days(n / 5 * 7)?)?;
                for _ in 0..n % 5 {
                    t = t.checked_add_signed(Duration::days(1))?;
                    while is_weekend(t) {
                        t = t.checked_add_signed(Duration::days(1))?;
                    }
                }
                Some(t)
            }
            Unit::Week(anchor) => {
                let ahead =
                    (7 + anchor.num_days_from_monday() as i64 - start.weekday().num_days_from_monday() as i64) % 7;
                start.checked_add_signed(Duration::try_days(ahead.checked_add(n.checked_mul(7)?)?)?)
            }
            Unit::Months { months, end } => {
                let index = i64::from(start.year()) * 12 + i64::from(start.month0());
                let anchor_month = |i: i64| {
                    if end {
                        i.rem_euclid(months) == months - 1
                    } else {
                        i.rem_euclid(months) == 0
                    }
                };
                let on_anchor = anchor_month(index)
                    && if end {
                        start.day() == days_in_month(index)?
                    } else {
                        start.day() == 1
                    };
                let mut first = index;
                if !on_anchor {
                    // The next anchor on or after `start`: this month's end if it is an anchor
                    // month and its last day is still ahead, else the next anchor month.
                    if !(end && anchor_month(index)) {
                        first += 1;
                        while !anchor_month(first) {
                            first += 1;
                        }
                    }
                }
                let target = first.checked_add(n.checked_mul(months)?)?;
                let day = if end { days_in_month(target)? } else { 1 };
                let date = NaiveDate::from_ymd_opt(
                    i32::try_from(target.div_euclid(12)).ok()?,
                    u32::try_from(target.rem_euclid(12) + 1).ok()?,
                    day,
                )?;
                Some(date.and_time(start.time()))
            }
        }
    }

    /// Whether a step is shorter than a day (the forecast start then prints a time of day).
    pub fn is_intraday(&self) -> bool {
        matches!(self.unit, Unit::Seconds(s) if s * self.multiple % 86_400 != 0)
    }
}

fn is_weekend(t: NaiveDateTime) -> bool {
    matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Days in the month `index` = `year * 12 + month0`.
fn days_in_month(index: i64) -> Option<u32> {
    let (year, month0) = (i32::try_from(index.div_euclid(12)).ok()?, index.rem_euclid(12) as u32);
    let next = if month0 == 11 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month0 + 2, 1)?
    };
    Some(next.pred_opt()?.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn advance(freq: &str, start: &str, steps: usize) -> String {
        Freq::parse(freq)
            .unwrap()
            .advance(at(start), steps)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    #[test]
    fn fixed_steps_multiply() {
        assert_eq!(advance("h", "2024-01-01 01:00:00", 10), "2024-01-01 11:00:00");
        assert_eq!(advance("15min", "2024-01-01 00:00:00", 5), "2024-01-01 01:15:00");
        assert_eq!(advance("D", "2024-02-27 00:00:00", 3), "2024-03-01 00:00:00");
    }

    #[test]
    fn business_days_skip_weekends() {
        // 2024-01-05 is a Friday: +1 B is Monday the 8th; +6 B is Monday the 15th.
        assert_eq!(advance("B", "2024-01-05 00:00:00", 1), "2024-01-08 00:00:00");
        assert_eq!(advance("B", "2024-01-05 00:00:00", 6), "2024-01-15 00:00:00");
        // A Saturday start rolls forward to Monday first, as pd.date_range does.
        assert_eq!(advance("B", "2024-01-06 00:00:00", 0), "2024-01-08 00:00:00");
    }

    #[test]
    fn weeks_roll_to_their_anchor() {
        // 2024-01-03 is a Wednesday; W (= W-SUN) rolls to Sunday the 7th.
        assert_eq!(advance("W", "2024-01-03 00:00:00", 0), "2024-01-07 00:00:00");
        assert_eq!(advance("W-WED", "2024-01-03 00:00:00", 2), "2024-01-17 00:00:00");
    }

    #[test]
    fn month_quarter_and_year_anchors() {
        assert_eq!(advance("ME", "2024-01-31 00:00:00", 1), "2024-02-29 00:00:00");
        assert_eq!(advance("ME", "2024-01-15 00:00:00", 0), "2024-01-31 00:00:00");
        assert_eq!(advance("MS", "2024-01-15 00:00:00", 0), "2024-02-01 00:00:00");
        assert_eq!(advance("MS", "2024-11-01 00:00:00", 3), "2025-02-01 00:00:00");
        assert_eq!(advance("QE", "2024-02-10 00:00:00", 1), "2024-06-30 00:00:00");
        assert_eq!(advance("QS", "2024-02-10 00:00:00", 0), "2024-04-01 00:00:00");
        assert_eq!(advance("YE", "2023-12-31 00:00:00", 2), "2025-12-31 00:00:00");
        assert_eq!(advance("YS", "2023-06-01 00:00:00", 1), "2025-01-01 00:00:00");
    }

    #[test]
    fn unknown_aliases_are_refused() {
        for bad in ["", "fortnight", "0D", "W-XYZ", "-1h"] {
            assert_eq!(Freq::parse(bad), None, "{bad}");
        }
        assert!(Freq::parse("h").unwrap().is_intraday());
        assert!(!Freq::parse("24h").unwrap().is_intraday());
    }
}
