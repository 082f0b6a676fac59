//! Numbers as vendors write them: plain decimals, thousands separators (`"29,924.4"`, or
//! `1.234,5` with `--thousands .`), `K`/`M`/`B` suffixes (`10.45M`) and percent (`-1.23%`,
//! read as -1.23). Empty, `NaN`, `null`, `na`, `n/a`, `none` and `-` are missing values.

/// How one column writes its numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NumberFormat {
    /// The thousands separator, removed before parsing (`.` makes `,` the decimal mark).
    pub thousands: Option<char>,
}

/// Whether `cell` is `1,234` or `12,345,678.9`: one to three digits, then groups of three
/// after each `sep`, then an optional fraction after `decimal`.
fn grouped(cell: &str, sep: char, decimal: char) -> bool {
    let body = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let body = body.trim_end_matches(['%', 'K', 'M', 'B', 'k']);
    let (int, frac) = body.split_once(decimal).unwrap_or((body, "0"));
    let mut groups = int.split(sep);
    let first = groups.next().unwrap_or("");
    let mut rest = groups.peekable();
    rest.peek().is_some()
        && (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && rest.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
        && frac.bytes().all(|b| b.is_ascii_digit())
}

impl NumberFormat {
    /// The format of a column from its first cells: the user's separator, else `,` when a cell
    /// is written with comma-grouped thousands (`29,924.4`, `1,234,567`), else `.` when a cell
    /// has a decimal comma that cannot be a thousands separator (`1,2345` or `12,5`: not three
    /// digits after); `1,085` alone decides nothing.
    pub fn detect<'a>(cells: impl IntoIterator<Item = &'a str>, thousands: Option<char>) -> Self {
        if thousands.is_some() {
            return Self { thousands };
        }
        let mut found = None;
        for cell in cells {
            let c = cell.trim();
            if c.parse::<f64>().is_ok() {
                continue;
            }
            // `1,234.5` and `1,234,567` are thousands; `1,085` alone could be either.
            if grouped(c, ',', '.') && (c.contains('.') || c.matches(',').count() > 1) {
                return Self { thousands: Some(',') };
            }
            let decimal_comma = !c.contains('.')
                && c.split_once(',').is_some_and(|(int, frac)| {
                    frac.len() != 3
                        && !frac.is_empty()
                        && int.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit())
                        && frac.bytes().all(|b| b.is_ascii_digit())
                });
            if decimal_comma {
                found = Some('.');
            }
        }
        Self { thousands: found }
    }

    /// The value of `cell` (NaN when missing), or `None` when it is not a number in this format.
    pub fn parse(&self, cell: &str) -> Option<f64> {
        let cell = cell.trim();
        if let Ok(v) = cell.parse::<f64>() {
            return Some(v);
        }
        if is_missing(cell) {
            return Some(f64::NAN);
        }
        let mut text = std::borrow::Cow::Borrowed(cell);
        if let Some(sep) = self.thousands {
            if !grouped(cell, sep, if sep == '.' { ',' } else { '.' }) && cell.contains(sep) {
                return None;
            }
            let mut plain: String = cell.chars().filter(|&c| c != sep).collect();
            if sep == '.' {
                plain = plain.replace(',', ".");
            }
            text = plain.into();
        }
        let text = text.trim_end_matches('%');
        let (digits, scale) = match text.as_bytes().last() {
            Some(b'K' | b'k') => (&text[..text.len() - 1], 1e3),
            Some(b'M') => (&text[..text.len() - 1], 1e6),
            Some(b'B') => (&text[..text.len() - 1], 1e9),
            _ => (text, 1.0),
        };
        // Only digits, sign and point are left: `inf` and `1e3K` stay refused.
        if !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        {
            return None;
        }
        digits.parse::<f64>().ok().map(|v| v * scale)
    }
}

/// Whether a cell is a missing value.
pub(crate) fn is_missing(cell: &str) -> bool {
    matches!(
        cell.to_ascii_lowercase().as_str(),
        "" | "nan" | "null" | "na" | "n/a" | "none" | "-" | "#n/a"
    )
}

/// Digits after the decimal point of `value` written as its shortest round-trip decimal
/// (`1.0852` has 4; yfinance's `184.72999999999999` is 184.73, 2), at most 10.
pub(crate) fn decimals(value: f64) -> u32 {
    if !value.is_finite() {
        return 0;
    }
    let text = value.to_string();
    text.split_once('.').map_or(0, |(_, frac)| frac.len().min(10) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_spellings() {
        let plain = NumberFormat::default();
        assert_eq!(plain.parse("1.5"), Some(1.5));
        assert!(plain.parse("null").unwrap().is_nan());
        assert_eq!(plain.parse("10.45M"), Some(10_450_000.0));
        assert_eq!(plain.parse("2.5K"), Some(2_500.0));
        assert_eq!(plain.parse("1.2B"), Some(1.2e9));
        assert_eq!(plain.parse("-1.23%"), Some(-1.23));
        assert_eq!(plain.parse("29,924.4"), None);
        assert_eq!(plain.parse("abc"), None);
        assert_eq!(plain.parse("1e3K"), None);
        let commas = NumberFormat::detect(["47,096.9", "946.1"], None);
        assert_eq!(commas.thousands, Some(','));
        assert_eq!(commas.parse("1,234,567.25"), Some(1_234_567.25));
        assert_eq!(commas.parse("946.1"), Some(946.1));
        assert_eq!(commas.parse("1,2"), None);
        let european = NumberFormat { thousands: Some('.') };
        assert_eq!(european.parse("1.234,5"), Some(1234.5));
        assert_eq!(european.parse("12,25"), Some(12.25));
        assert_eq!(NumberFormat::detect(["1.5", "2"], None).thousands, None);
        // A decimal comma (German Excel): `1,2345` cannot be thousands.
        let decimal_comma = NumberFormat::detect(["1,085", "1,2345"], None);
        assert_eq!(decimal_comma.thousands, Some('.'));
        assert_eq!(decimal_comma.parse("1,085"), Some(1.085));
        // `1,085` alone is ambiguous: no separator is guessed.
        assert_eq!(NumberFormat::detect(["1,085"], None).thousands, None);
    }

    #[test]
    fn decimals_of_the_values() {
        assert_eq!(decimals(1.08523), 5);
        assert_eq!(decimals(42.0), 0);
        assert_eq!(decimals("184.72999999999999".parse().unwrap()), 2);
        assert_eq!(decimals(1e-5), 5);
        assert_eq!(decimals(f64::NAN), 0);
    }
}
