//! Market data loading: files of bars (OHLC and more) turned into regular time series.
//!
//! Real files differ: the delimiter (comma, semicolon, tab, pipe), the header (none in Binance
//! klines, three rows in yfinance, `<DATE>` in MetaTrader), column order and case, the
//! timestamp (`Date`, `timestamp`, an unnamed first column, epoch s/ms/us/ns, `MM/DD/YYYY`,
//! separate date and time columns, UTC offsets), numbers (`"29,924.4"`, `10.45M`, `-1.23%`),
//! newest-first order, weekend gaps, long format with an id column. [`load_csv`] reads all of
//! them into [`Series`] on a [`Calendar`] (the layout detected, or set by [`ReadOptions`]) and
//! says what it did in a [`LoadReport`]; every problem is a [`DataError`] naming the file, line
//! and column and, where a flag fixes it, the flag. Only the columns asked for are kept, parsed
//! as the rows stream by. [`DataSource::load`] reads standard input and CSV text built into the
//! program the same way.
//!
//! ```
//! use chronos2_data::{load_csv, LoadOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("bars.csv");
//! std::fs::write(&path, "Date,Close\n2024-01-03,11\n2024-01-02,10\n2024-01-04,12\n").unwrap();
//! let data = load_csv(&path, &LoadOptions::columns(&["close"]))?;
//! assert_eq!(data.series[0].column("close").unwrap(), &[10.0, 11.0, 12.0]);
//! assert!(data.report.notes.iter().any(|n| n.contains("sorted")));
//! # Ok::<(), chronos2_data::DataError>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod numbers;
#[cfg(feature = "parquet")]
mod parquet_table;
mod table;
mod time;

use std::path::{Path, PathBuf};

pub use time::{
    format_timestamp, format_timestamp_at, is_weekend, most_common_step, parse_timestamp, Calendar, TimeUnit,
    TimestampStyle, Zone,
};

use table::Table;

/// Errors of data loading; each message names the file and, where it applies, line and column.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid CSV or its content cannot be used.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, where, and the fix.
        message: String,
    },
}

/// Which column holds series ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdColumn {
    /// A column named `item_id`, `symbol`, `id` or `ticker` if present; else one series.
    Auto,
    /// The whole file is one series.
    None,
    /// This column (matched case-insensitively).
    Named(String),
}

impl IdColumn {
    /// The id column as users name it: none given = automatic, `none` = the whole file is
    /// one series, anything else = that column.
    pub fn from_choice(name: Option<&str>) -> Self {
        match name {
            None => Self::Auto,
            Some("none") => Self::None,
            Some(name) => Self::Named(name.into()),
        }
    }
}

/// What to do with bars that share a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicates {
    /// Refuse, naming the rows.
    Error,
    /// Keep the row that comes last in the file.
    KeepLast,
}

impl Duplicates {
    /// `KeepLast` if the user asked to keep the last of duplicate bars, else `Error`.
    pub fn keeping_last(keep_last: bool) -> Self {
        if keep_last {
            Self::KeepLast
        } else {
            Self::Error
        }
    }
}

/// What to do with missing bars (weekends, holidays, outages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gaps {
    /// Use the bars as they are: consecutive rows are consecutive steps (the trading-day
    /// index); future timestamps skip weekends when the data has none.
    TradingDays,
    /// Reindex to a full calendar at the most common step and forward-fill the missing bars
    /// (what the original Python system did).
    ForwardFill,
}

impl Gaps {
    /// The gap policy by its user-facing name: `none` / `trading-days` or `forward` / `ffill`;
    /// `None` for anything else (the caller names its flag in the error).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" | "trading-days" => Some(Self::TradingDays),
            "forward" | "ffill" => Some(Self::ForwardFill),
            _ => None,
        }
    }
}

/// How to read the file's text: delimiter, header, timestamps, numbers and zone. Every field
/// defaults to detection from the file ([`ReadOptions::default`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Field delimiter; default: sniffed among comma, semicolon, tab and pipe.
    pub delimiter: Option<u8>,
    /// The file has no header row: every row is data (names from `column_names`, else
    /// Binance's kline names for a 12-column file that starts with epoch times).
    pub no_header: bool,
    /// Column names to use instead of the header (with `no_header`) or to rename it.
    pub column_names: Vec<String>,
    /// Unit of epoch timestamps; default: by magnitude.
    pub time_unit: Option<TimeUnit>,
    /// A strftime format for the timestamp column (`%d.%m.%Y %H:%M`); default: detected.
    pub date_format: Option<String>,
    /// Thousands separator in numbers (`,` in `"29,924.4"`); default: detected per column.
    pub thousands: Option<char>,
    /// Print timestamps in this zone; default: the file's own offset.
    pub tz: Option<Zone>,
}

/// What to do with missing values (empty, `NaN`, `null`) in the columns read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missing {
    /// Keep them as NaN (the model takes missing context values).
    #[default]
    Keep,
    /// Drop every row with a missing value in a column read.
    Drop,
}

/// Options of [`load_csv`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The value columns to read (matched case-insensitively), in output order.
    pub columns: Vec<String>,
    /// The timestamp column, or two joined by a comma (`DATE,TIME`); default: the first of
    /// the usual names (`timestamp`, `date`, ..., as the CLI's `--timestamp-column` lists them)
    /// or an unnamed first column, joined with a separate time-of-day column named `time`.
    pub timestamp_column: Option<String>,
    /// The id column.
    pub id_column: IdColumn,
    /// Duplicate timestamps.
    pub duplicates: Duplicates,
    /// Missing bars (and, with [`Gaps::ForwardFill`], missing values).
    pub gaps: Gaps,
    /// Missing values.
    pub missing: Missing,
    /// How to read the text.
    pub read: ReadOptions,
}

impl Default for LoadOptions {
    /// No columns yet; automatic timestamp and id columns, duplicates refused, the trading-day
    /// index, format detected.
    fn default() -> Self {
        Self::columns(&[])
    }
}

impl LoadOptions {
    /// Defaults for reading `columns`: automatic timestamp and id columns, duplicates refused,
    /// the trading-day index.
    pub fn columns(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            timestamp_column: None,
            id_column: IdColumn::Auto,
            duplicates: Duplicates::Error,
            gaps: Gaps::TradingDays,
            missing: Missing::Keep,
            read: ReadOptions::default(),
        }
    }

    /// The reading choices every front end offers (the CLI's `--id-column`, `--fill`,
    /// `--keep-last`; the Python package's keywords of the same names), by their user-facing
    /// spellings; other fields as [`LoadOptions::default`].
    ///
    /// # Errors
    /// An unknown `fill`, as a message naming `--fill` and what it accepts.
    pub fn from_choices(id_column: Option<&str>, fill: &str, keep_last: bool) -> Result<Self, String> {
        Ok(Self {
            id_column: IdColumn::from_choice(id_column),
            duplicates: Duplicates::keeping_last(keep_last),
            gaps: Gaps::from_name(fill)
                .ok_or_else(|| format!("unknown --fill `{fill}`; expected `none` or `forward`"))?,
            ..Self::default()
        })
    }
}

/// One series: sorted, de-duplicated bars on a calendar.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The id (`None` for a file that is one series).
    pub id: Option<String>,
    /// Bar times, seconds since the epoch (UTC), ascending.
    pub timestamps: Vec<i64>,
    /// The requested columns in request order: (name as requested, values; NaN = missing).
    pub columns: Vec<(String, Vec<f64>)>,
    /// The bar calendar (step and weekend handling) used for future timestamps.
    pub calendar: Calendar,
    /// Bars added by forward fill.
    pub filled: usize,
}

impl Series {
    /// The values of a requested column (case-insensitive).
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no bars.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// A readable name: the id, or the file stem.
    pub fn label(&self, fallback: &str) -> String {
        self.id.clone().unwrap_or_else(|| fallback.to_string())
    }
}

/// What [`load_csv`] did, for the user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Data rows in the file.
    pub rows: usize,
    /// Rows dropped as duplicates (with `Duplicates::KeepLast`).
    pub duplicates_dropped: usize,
    /// Bars added by forward fill, over all series.
    pub bars_filled: usize,
    /// One line per notable action (sorting, fills, column matches).
    pub notes: Vec<String>,
}

/// Where bars come from: a file, or CSV text built into the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSource<'a> {
    /// A CSV file (Parquet by its `.parquet` extension, with the `parquet` feature).
    File(&'a Path),
    /// Standard input, read by the caller once (so that it can be loaded more than once);
    /// messages call it `<stdin>`.
    Stdin(&'a [u8]),
    /// CSV text built into the program (e.g. with `include_bytes!`), read like a file.
    Bundled {
        /// The file name it was built from (`BTCUSD.csv`); messages say `bundled <name>`.
        name: &'a str,
        /// The CSV text.
        bytes: &'a [u8],
    },
}

/// A loaded file.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The file ([`DataSource::path`]).
    pub path: PathBuf,
    /// The series, in order of first appearance.
    pub series: Vec<Series>,
    /// How the file writes timestamps.
    pub style: TimestampStyle,
    /// The zone to print timestamps in: `--tz`, else the offset the file wrote with its latest
    /// bar (`None`: the file has no offsets; times print as written).
    pub zone: Option<Zone>,
    /// The id column as the file names it (`None` for a file that is one series).
    pub id_column: Option<String>,
    /// Most digits after the decimal mark in each requested column, in request order (the
    /// precision to print values of that column with).
    pub decimals: Vec<u32>,
    /// What was done.
    pub report: LoadReport,
}

impl Dataset {
    /// Prints `seconds` as the file writes its timestamps, in its zone (or `--tz`'s).
    pub fn format_time(&self, seconds: i64) -> String {
        let offset = self.zone.map_or(0, |zone| zone.offset_at(seconds));
        format_timestamp_at(seconds, self.style, offset)
    }

    /// Prints `seconds` as the hosted endpoint writes `start`: `2024-01-07T00:00:00`, with the
    /// offset (`+02:00`) when the data has a zone.
    pub fn format_iso(&self, seconds: i64) -> String {
        let local = format_timestamp_at(
            seconds,
            TimestampStyle::DateTimeUtcOffset,
            self.zone.map_or(0, |zone| zone.offset_at(seconds)),
        )
        .replacen(' ', "T", 1);
        match self.zone {
            Some(_) => local,
            None => local[..19].to_string(),
        }
    }
}

/// Header names that mark the timestamp column, in order of preference.
pub(crate) const TIMESTAMP_NAMES: [&str; 11] = [
    "timestamp",
    "date",
    "datetime",
    "time",
    "open_time",
    "__index_level_0__",
    // Dukascopy's exports.
    "gmt time",
    "local time",
    // Polygon's flat files (epoch nanoseconds).
    "window_start",
    // Bloomberg's spreadsheet exports; German ones.
    "dates",
    "datum",
];
/// Header names that mark an id column.
pub(crate) const ID_NAMES: [&str; 4] = ["item_id", "symbol", "id", "ticker"];

/// Minimum bars per series (needed to infer a step).
pub const MIN_ROWS: usize = 3;

/// Rows of one series before regularisation: (timestamp, file row index).
struct RawSeries {
    id: Option<String>,
    rows: Vec<(i64, usize)>,
}

/// Reads the file at `path` into regular series ([`DataSource::load`] of a file).
///
/// # Errors
/// As [`DataSource::load`].
pub fn load_csv(path: &Path, options: &LoadOptions) -> Result<Dataset, DataError> {
    DataSource::File(path).load(options)
}

impl DataSource<'_> {
    /// What messages and reports call the data: the file's path, or `bundled <name>`.
    pub fn path(&self) -> PathBuf {
        match self {
            Self::File(path) => path.to_path_buf(),
            Self::Bundled { name, .. } => PathBuf::from(format!("bundled {name}")),
            Self::Stdin(_) => PathBuf::from("<stdin>"),
        }
    }

    /// The file stem (`BTCUSD`): the label of a file that holds one series.
    pub fn stem(&self) -> String {
        let name = match self {
            Self::File(path) => path,
            Self::Bundled { name, .. } => Path::new(name),
            Self::Stdin(_) => return "stdin".into(),
        };
        name.file_stem()
            .map_or_else(|| "series".into(), |s| s.to_string_lossy().into_owned())
    }

    /// Reads the data into regular series.
    ///
    /// # Errors
    /// [`DataError`] naming file, line and column for unreadable files, missing or colliding
    /// columns, unparseable timestamps or numbers, duplicate timestamps, and series shorter
    /// than [`MIN_ROWS`].
    pub fn load(self, options: &LoadOptions) -> Result<Dataset, DataError> {
        let mut notes = Vec::new();
        let table = Table::read(self, options, &mut notes)?;
        load_table(table, options, notes)
    }
}

impl std::fmt::Display for DataSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

/// Turns a read table into regular series.
fn load_table(table: Table, options: &LoadOptions, mut notes: Vec<String>) -> Result<Dataset, DataError> {
    // Group rows by id in order of first appearance, dropping rows with missing values if asked.
    let mut groups: Vec<RawSeries> = if table.id_names.is_empty() {
        vec![RawSeries {
            id: table.ticker.clone(),
            rows: Vec::with_capacity(table.rows()),
        }]
    } else {
        table
            .id_names
            .iter()
            .map(|id| RawSeries {
                id: Some(id.clone()),
                rows: Vec::new(),
            })
            .collect()
    };
    let mut dropped = 0;
    for (row, &t) in table.times.iter().enumerate() {
        if options.missing == Missing::Drop && table.values.iter().any(|v| v[row].is_nan()) {
            dropped += 1;
            continue;
        }
        let group = table.ids.get(row).map_or(0, |&id| id as usize);
        groups[group].rows.push((t, row));
    }
    if dropped > 0 {
        notes.push(format!(
            "dropped {dropped} row(s) with a missing value (--drop-missing)"
        ));
    }
    if let Some(name) = &table.id_column {
        if groups.len() > 1 {
            notes.push(format!("{} series by column `{name}`", groups.len()));
        }
    }
    let mut report = LoadReport {
        rows: table.rows(),
        ..LoadReport::default()
    };
    let mut series = Vec::with_capacity(groups.len());
    for group in groups {
        series.push(build_series(&table, group, options, &mut report, &mut notes)?);
    }
    let (style, zone) = match (options.read.tz, table.offset) {
        (Some(tz), _) => (TimestampStyle::DateTimeUtcOffset, Some(tz)),
        (None, offset) => (table.style, offset.map(Zone::Offset)),
    };
    report.notes = notes;
    Ok(Dataset {
        path: table.path,
        series,
        style,
        zone,
        id_column: table.id_column,
        decimals: table.decimals,
        report,
    })
}

/// Sorts, de-duplicates, parses values and regularises one series.
fn build_series(
    table: &Table,
    mut group: RawSeries,
    options: &LoadOptions,
    report: &mut LoadReport,
    notes: &mut Vec<String>,
) -> Result<Series, DataError> {
    let label = group
        .id
        .as_deref()
        .map(|id| format!("series `{id}`: "))
        .unwrap_or_default();
    if group.rows.windows(2).any(|w| w[1].0 < w[0].0) {
        let newest_first = group.rows.windows(2).all(|w| w[1].0 <= w[0].0);
        group.rows.sort_by_key(|&(t, row)| (t, row));
        notes.push(format!(
            "{label}sorted {} rows by time ({})",
            group.rows.len(),
            if newest_first {
                "the file is newest-first"
            } else {
                "the file was out of order"
            }
        ));
    }
    // Duplicate timestamps: after the stable sort, equal times are adjacent in file order.
    let duplicates: Vec<(u32, u32)> = group
        .rows
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| (table.lines[w[0].1], table.lines[w[1].1]))
        .collect();
    if !duplicates.is_empty() {
        if options.duplicates == Duplicates::Error {
            let shown: Vec<String> = duplicates
                .iter()
                .take(5)
                .map(|(a, b)| format!("lines {a} and {b}"))
                .collect();
            let advice = match &table.unused_time_of_day {
                Some((date, time)) => format!(
                    "column `{time}` holds the time of day: pass `--timestamp-column {date},{time}` to join it to `{date}`"
                ),
                None => "remove them or pass `--keep-last`".into(),
            };
            return Err(table.invalid(format!(
                "{label}{} duplicate timestamp(s) in column `{}`: {}{}; {advice}",
                duplicates.len(),
                table.time_name,
                shown.join(", "),
                if duplicates.len() > 5 { ", ..." } else { "" }
            )));
        }
        let before = group.rows.len();
        group.rows.reverse();
        group.rows.dedup_by_key(|r| r.0);
        group.rows.reverse();
        report.duplicates_dropped += before - group.rows.len();
        notes.push(format!(
            "{label}dropped {} duplicate row(s), kept the last of each",
            before - group.rows.len()
        ));
    }
    if group.rows.len() < MIN_ROWS {
        return Err(table.invalid(format!(
            "{label}{} row(s); at least {MIN_ROWS} are needed to infer the time step",
            group.rows.len()
        )));
    }
    let columns = options
        .columns
        .iter()
        .zip(&table.values)
        .map(|(name, values)| (name.clone(), group.rows.iter().map(|&(_, row)| values[row]).collect()))
        .collect();
    let timestamps: Vec<i64> = group.rows.iter().map(|r| r.0).collect();
    let step = most_common_step(&timestamps).expect("at least MIN_ROWS distinct timestamps");
    // Weekdays only: no bar on a weekend although the data spans one (a gap over a weekend).
    let skips_a_weekend = timestamps
        .windows(2)
        .any(|w| (1..).map(|k| w[0] + k * step).take_while(|&t| t < w[1]).any(is_weekend));
    let weekdays_only = step <= 86_400 && skips_a_weekend && !timestamps.iter().any(|&t| is_weekend(t));
    let mut series = Series {
        id: group.id,
        timestamps,
        columns,
        calendar: Calendar { step, weekdays_only },
        filled: 0,
    };
    if options.gaps == Gaps::ForwardFill {
        forward_fill(table, &mut series, &label)?;
        report.bars_filled += series.filled;
        if series.filled > 0 {
            notes.push(format!(
                "{label}forward-filled {} missing bar(s) to a regular {} calendar",
                series.filled,
                series.calendar.step_name()
            ));
        }
        let values = fill_missing_values(&mut series);
        if values > 0 {
            notes.push(format!("{label}forward-filled {values} missing value(s)"));
        }
    } else {
        let gaps = series
            .timestamps
            .windows(2)
            .filter(|w| series.calendar.next(w[0]) != w[1])
            .count();
        if gaps > 0 {
            notes.push(format!(
                "{label}{gaps} gap(s) in the {} calendar (weekends, holidays, outages) are treated as consecutive bars; pass `--fill forward` to fill them",
                series.calendar.step_name()
            ));
        }
    }
    Ok(series)
}

/// Reindexes `series` to every step between its first and last bar, repeating the previous
/// bar's values into the missing ones.
/// Most filled bars per real bar `--fill forward` accepts (a weekday calendar filled to every
/// day is 1.4; hourly FX over weekends under 2).
const MAX_FILL_RATIO: i64 = 100;

/// Below this many filled bars the ratio is not checked (short files with real gaps).
const MIN_FILL_BARS: i64 = 100_000;

fn forward_fill(table: &Table, series: &mut Series, label: &str) -> Result<(), DataError> {
    let step = series.calendar.step;
    let first = series.timestamps[0];
    if let Some(w) = series.timestamps.windows(2).find(|w| (w[1] - w[0]) % step != 0) {
        return Err(table.invalid(format!(
            "{label}the bar at {} is not on the {}-second grid of the other bars; cannot forward-fill, use the trading-day index instead",
            format_timestamp(w[1], TimestampStyle::DateTime),
            step
        )));
    }
    let span = (series.timestamps[series.timestamps.len() - 1] - first) / step;
    let bars = series.timestamps.len() as i64;
    // A stray bar far from the rest (a year-0001 date) would make the filled calendar huge:
    // refuse more than MAX_FILL_RATIO bars per real bar, naming the memory it would need.
    if span >= MAX_FILL_RATIO * bars.max(MIN_FILL_BARS / MAX_FILL_RATIO) {
        let bytes = (span as f64 + 1.0) * 8.0 * (series.columns.len() + 1) as f64;
        return Err(table.invalid(format!(
            "{label}forward-filling {} bars from {} to {} would make {} bars ({:.1} GB) out of {bars}; a bar far from the others is probably wrong: remove it, or use the trading-day index (`--fill none`)",
            bars,
            format_timestamp(first, TimestampStyle::DateTime),
            format_timestamp(series.timestamps[series.timestamps.len() - 1], TimestampStyle::DateTime),
            span + 1,
            bytes / 1e9
        )));
    }
    let total = span as usize + 1;
    let mut timestamps = Vec::with_capacity(total);
    let mut columns: Vec<Vec<f64>> = vec![Vec::with_capacity(total); series.columns.len()];
    let mut source = 0;
    for k in 0..total {
        let t = first + k as i64 * step;
        if series.timestamps[source] == t {
            for (out, (_, values)) in columns.iter_mut().zip(&series.columns) {
                out.push(values[source]);
            }
            source = (source + 1).min(series.timestamps.len() - 1);
        } else {
            for out in columns.iter_mut() {
                let last = *out.last().expect("the first bar is always present");
                out.push(last);
            }
            series.filled += 1;
        }
        timestamps.push(t);
    }
    series.timestamps = timestamps;
    for ((_, values), filled) in series.columns.iter_mut().zip(columns) {
        *values = filled;
    }
    series.calendar.weekdays_only = false;
    Ok(())
}

/// Replaces each missing value (NaN) after the first present one by the last present value
/// of its column; returns how many were filled.
fn fill_missing_values(series: &mut Series) -> usize {
    let mut filled = 0;
    for (_, values) in &mut series.columns {
        let mut last = f64::NAN;
        for v in values.iter_mut() {
            if v.is_nan() && !last.is_nan() {
                *v = last;
                filled += 1;
            } else {
                last = *v;
            }
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_spellings_of_the_reading_choices() {
        assert_eq!(Gaps::from_name("ffill"), Some(Gaps::ForwardFill));
        assert_eq!(Gaps::from_name("trading-days"), Some(Gaps::TradingDays));
        assert_eq!(Gaps::from_name("backfill"), None);
        assert_eq!(IdColumn::from_choice(None), IdColumn::Auto);
        assert_eq!(IdColumn::from_choice(Some("none")), IdColumn::None);
        assert_eq!(IdColumn::from_choice(Some("Ticker")), IdColumn::Named("Ticker".into()));
        assert_eq!(Duplicates::keeping_last(true), Duplicates::KeepLast);
        let options = LoadOptions::from_choices(Some("none"), "ffill", true).unwrap();
        assert_eq!(
            (options.id_column, options.gaps, options.duplicates),
            (IdColumn::None, Gaps::ForwardFill, Duplicates::KeepLast)
        );
        assert!(LoadOptions::from_choices(None, "backfill", false)
            .unwrap_err()
            .contains("--fill `backfill`"));
    }

    #[test]
    fn forward_fill_refuses_a_stray_bar_far_from_the_rest() {
        let text = "timestamp,close\n0001-01-01,1\n2024-01-01,2\n2024-01-02,3\n2024-01-03,4\n";
        let mut options = close();
        options.gaps = Gaps::ForwardFill;
        let err = load(text, &options).unwrap_err().to_string();
        assert!(
            err.contains("forward-filling") && err.contains("GB") && err.contains("--fill none"),
            "{err}"
        );
    }

    fn load(text: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.csv");
        std::fs::write(&path, text).unwrap();
        load_csv(&path, options)
    }

    fn close() -> LoadOptions {
        LoadOptions::columns(&["close"])
    }

    #[test]
    fn unnamed_first_column_and_case_insensitive_match() {
        let data = load(
            ",Open,Close\n2024-01-01,1,2\n2024-01-02,3,4\n2024-01-03,5,6\n",
            &close(),
        )
        .unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[2.0, 4.0, 6.0]);
        assert_eq!(data.style, TimestampStyle::Date);
    }

    #[test]
    fn colliding_columns_must_agree() {
        let same = "Date,Close,close\n2024-01-01,1,1.0\n2024-01-02,2,2\n2024-01-03,3,3\n";
        let data = load(same, &close()).unwrap();
        assert!(data.report.notes.iter().any(|n| n.contains("hold the same values")));
        let differ = "Date,Close,close\n2024-01-01,1,1\n2024-01-02,2,9\n2024-01-03,3,3\n";
        let msg = load(differ, &close()).unwrap_err().to_string();
        assert!(
            msg.contains("`Close` and `close`") && msg.contains("line 3") && msg.contains("2 vs 9"),
            "{msg}"
        );
    }

    #[test]
    fn missing_column_lists_what_was_found() {
        let msg = load("Date,Open\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n", &close())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("prices.csv") && msg.contains("column `close` not found (found: Date, Open)"),
            "{msg}"
        );
    }

    #[test]
    fn duplicates_are_errors_unless_keep_last() {
        let text = "Date,Close\n2024-01-01,1\n2024-01-02,2\n2024-01-02,5\n2024-01-03,3\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        assert!(
            msg.contains("duplicate timestamp") && msg.contains("lines 3 and 4") && msg.contains("--keep-last"),
            "{msg}"
        );
        let mut options = close();
        options.duplicates = Duplicates::KeepLast;
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 5.0, 3.0]);
        assert_eq!(data.report.duplicates_dropped, 1);
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let msg = load("Date,Close\n2024-01-01,1\n2024-01-02,abc\n2024-01-03,3\n", &close())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3, column `Close`: `abc` is not a number"), "{msg}");
        let msg = load("Date,Close\n2024-01-01,1\nsoon,2\n2024-01-03,3\n", &close())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3: cannot read timestamp `soon`"), "{msg}");
        let msg = load("Date,Close\n2024-01-01,1\n2024-01-02\n", &close())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3: 1 fields, but the header has 2"), "{msg}");
    }

    #[test]
    fn empty_cells_are_missing_values_and_short_series_are_refused() {
        let data = load("Date,Close\n2024-01-01,1\n2024-01-02,\n2024-01-03,NaN\n", &close()).unwrap();
        let values = data.series[0].column("close").unwrap();
        assert!(values[1].is_nan() && values[2].is_nan());
        let msg = load("Date,Close\n2024-01-01,1\n2024-01-02,2\n", &close())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("2 row(s); at least 3"), "{msg}");
        assert!(load("Date,Close\n", &close())
            .unwrap_err()
            .to_string()
            .contains("no data rows"));
    }

    #[test]
    fn weekend_gaps_forward_fill_or_trading_days() {
        // Thu, Fri, Mon, Tue.
        let text = "Date,Close\n2024-01-04,1\n2024-01-05,2\n2024-01-08,3\n2024-01-09,4\n";
        let data = load(text, &close()).unwrap();
        let series = &data.series[0];
        assert_eq!(series.len(), 4);
        assert!(series.calendar.weekdays_only);
        let future = series.calendar.future(*series.timestamps.last().unwrap(), 1);
        assert_eq!(format_timestamp(future[0], data.style), "2024-01-10");
        let mut options = close();
        options.gaps = Gaps::ForwardFill;
        let filled = load(text, &options).unwrap();
        assert_eq!(
            filled.series[0].column("close").unwrap(),
            &[1.0, 2.0, 2.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(filled.report.bars_filled, 2);
    }

    #[test]
    fn a_short_span_without_a_weekend_is_not_a_weekday_calendar() {
        // Mon..Thu: nothing says the bars skip weekends, so Fri, Sat follow.
        let data = load(
            "Date,Close\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n2024-01-04,4\n",
            &close(),
        )
        .unwrap();
        let series = &data.series[0];
        assert!(!series.calendar.weekdays_only);
        let future = series.calendar.future(*series.timestamps.last().unwrap(), 2);
        assert_eq!(format_timestamp(future[1], data.style), "2024-01-06");
    }

    #[test]
    fn long_format_splits_by_id_and_sorts_each() {
        let text = "symbol,timestamp,close\nB,2024-01-02,20\nA,2024-01-01,1\nB,2024-01-01,10\nA,2024-01-02,2\nA,2024-01-03,3\nB,2024-01-03,30\n";
        let data = load(text, &close()).unwrap();
        assert_eq!(data.series.len(), 2);
        assert_eq!(data.series[0].id.as_deref(), Some("B"));
        assert_eq!(data.series[0].column("close").unwrap(), &[10.0, 20.0, 30.0]);
        assert_eq!(data.series[1].column("close").unwrap(), &[1.0, 2.0, 3.0]);
    }

    #[cfg(not(feature = "parquet"))]
    #[test]
    fn parquet_without_the_feature_says_how_to_get_it() {
        let msg = load_csv(Path::new("bars.parquet"), &close()).unwrap_err().to_string();
        assert!(msg.contains("--features parquet"), "{msg}");
    }

    #[test]
    fn bundled_text_reads_like_a_file() {
        let text = "Date,Close\n2024-01-03,11\n2024-01-02,10\n2024-01-04,12\n";
        let bundled = DataSource::Bundled {
            name: "BARS.csv",
            bytes: text.as_bytes(),
        };
        let data = bundled.load(&close()).unwrap();
        let mut from_file = load(text, &close()).unwrap();
        from_file.path = data.path.clone();
        assert_eq!(data, from_file);
        assert_eq!(
            (bundled.to_string(), bundled.stem()),
            ("bundled BARS.csv".into(), "BARS".into())
        );
        let broken = DataSource::Bundled {
            name: "BARS.csv",
            bytes: b"Date,Close\n2024-01-01,x\n2024-01-02,1\n2024-01-03,2\n",
        };
        let msg = broken.load(&close()).unwrap_err().to_string();
        assert!(msg.starts_with("bundled BARS.csv: line 2"), "{msg}");
    }

    #[test]
    fn delimiters_are_sniffed() {
        for delimiter in [";", "\t", "|"] {
            let text = "Date,Close\n2024-01-01,1.5\n2024-01-02,2.5\n2024-01-03,3.5\n".replace(',', delimiter);
            let data = load(&text, &close()).unwrap();
            assert_eq!(
                data.series[0].column("close").unwrap(),
                &[1.5, 2.5, 3.5],
                "{delimiter:?}"
            );
        }
        // A byte-order mark (Excel's UTF-8) is not part of the first name.
        let data = load(
            "\u{feff}Date,Close\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n",
            &close(),
        )
        .unwrap();
        assert_eq!(data.series[0].len(), 3);
    }

    #[test]
    fn a_european_excel_file_with_semicolons_day_first_dates_and_decimal_commas() {
        let text = "Datum;Schluss\n29.01.2024;1,0852\n30.01.2024;1,0843\n31.01.2024;1,0818\n01.02.2024;1,0872\n";
        let mut options = LoadOptions::columns(&["Schluss"]);
        options.timestamp_column = Some("Datum".into());
        let data = load(text, &options).unwrap();
        assert_eq!(
            data.series[0].column("schluss").unwrap(),
            &[1.0852, 1.0843, 1.0818, 1.0872]
        );
        assert_eq!(data.format_time(data.series[0].timestamps[3]), "2024-02-01");
        assert!(data.report.notes.iter().any(|n| n.contains("decimal comma")));
    }

    #[test]
    fn a_headerless_long_file_is_told_from_a_header_by_its_numbers() {
        let text = "AAPL,2024-01-01,1\nAAPL,2024-01-02,2\nAAPL,2024-01-03,3\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        assert!(
            msg.contains("pass `--no-header --columns symbol,timestamp,close`"),
            "{msg}"
        );
        let mut options = close();
        options.read.no_header = true;
        options.read.column_names = vec!["symbol".into(), "timestamp".into(), "close".into()];
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].id.as_deref(), Some("AAPL"));
        let data = load(&format!("symbol,timestamp,close\n{text}"), &close()).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn yfinance_with_several_tickers_names_columns_by_ticker() {
        let text = "Price,Close,Close\nTicker,AAPL,MSFT\nDate,,\n2024-01-02,185.64,370.87\n2024-01-03,184.25,370.6\n2024-01-04,181.91,367.94\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        assert!(msg.contains("found: Date, Close.AAPL, Close.MSFT"), "{msg}");
        let data = load(text, &LoadOptions::columns(&["Close.MSFT"])).unwrap();
        assert_eq!(data.series[0].column("close.msft").unwrap(), &[370.87, 370.6, 367.94]);
        assert!(data.report.notes.iter().any(|n| n.contains("several tickers")));
    }

    #[test]
    fn a_headerless_file_is_refused_with_names_that_work() {
        let text = "2024-01-01,1,2\n2024-01-02,3,4\n2024-01-03,5,6\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        assert!(
            msg.contains("is data, not a header") && msg.contains("pass `--no-header --columns timestamp,close,col3`"),
            "{msg}"
        );
        let mut options = close();
        options.read.no_header = true;
        options.read.column_names = vec!["timestamp".into(), "close".into(), "col3".into()];
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 3.0, 5.0]);
    }

    #[test]
    fn a_headerless_epoch_first_file_gets_advice_that_reads_the_right_columns() {
        // Kraken's OHLC export: time, open, high, low, close, vwap, volume, count.
        let text = "1704067200,42283.6,42554.5,42261.0,42475.2,42412.3,7.51,512\n\
                    1704070800,42475.2,42600.0,42400.1,42550.7,42501.9,5.12,431\n\
                    1704074400,42550.7,42580.0,42300.0,42333.3,42444.4,6.02,388\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        let advice = "--columns timestamp,open,high,low,close,volume,col7,col8";
        assert!(msg.contains(&format!("pass `--no-header {advice}`")), "{msg}");
        // Following the advice reads the closes and the hours, not the epoch as a price.
        let mut options = close();
        options.read.no_header = true;
        options.read.column_names = advice["--columns ".len()..].split(',').map(str::to_string).collect();
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[42475.2, 42550.7, 42333.3]);
        assert_eq!(data.format_time(data.series[0].timestamps[1]), "2024-01-01 01:00:00");
        // Milliseconds too; a large price in the first column is not taken for a time.
        let ms = text
            .replace("1704067200,", "1704067200000,")
            .replace("1704070800,", "1704070800000,");
        let ms = ms.replace("1704074400,", "1704074400000,");
        assert!(load(&ms, &close()).unwrap_err().to_string().contains(advice));
        assert_eq!(suggested_names_of("123456789.5,1,2,3"), "open,high,low,close");
    }

    /// The names suggested for a headerless file whose first row is `row`.
    fn suggested_names_of(row: &str) -> String {
        let text = format!("{row}\n{row}\n");
        let msg = load(&text, &close()).unwrap_err().to_string();
        msg.split("--columns ")
            .nth(1)
            .unwrap()
            .split('`')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn common_vendor_headers_are_read_without_flags() {
        let cases = [
            // Dukascopy.
            (
                "Gmt time,Open,High,Low,Close,Volume\n01.01.2024 00:00:00.000,1.1,1.2,1.0,1.15,10\n01.01.2024 01:00:00.000,1.15,1.2,1.1,1.12,11\n01.01.2024 02:00:00.000,1.12,1.3,1.1,1.25,12\n",
                "2024-01-01 02:00:00",
            ),
            // Polygon flat files: epoch nanoseconds.
            (
                "ticker,volume,open,close,high,low,window_start,transactions\nX,10,1,1.15,2,0.5,1704067200000000000,3\nX,11,1,1.12,2,0.5,1704070800000000000,3\nX,12,1,1.25,2,0.5,1704074400000000000,3\n",
                "2024-01-01 02:00:00",
            ),
            // Bloomberg: `Dates` and `PX_LAST`.
            ("Dates,PX_LAST\n1/29/2024,1.15\n1/30/2024,1.12\n1/31/2024,1.25\n", "2024-01-31"),
            // German: `Datum`.
            ("Datum,Close\n29.01.2024,1.15\n30.01.2024,1.12\n31.01.2024,1.25\n", "2024-01-31"),
        ];
        for (text, last) in cases {
            let data = load(text, &close()).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let series = &data.series[0];
            assert_eq!(series.columns[0].1, [1.15, 1.12, 1.25], "{text}");
            assert_eq!(data.format_time(*series.timestamps.last().unwrap()), last, "{text}");
        }
        let data = load("Dates,PX_LAST\n1/29/2024,1\n1/30/2024,2\n1/31/2024,3\n", &close()).unwrap();
        assert!(
            data.report
                .notes
                .iter()
                .any(|n| n.contains("`PX_LAST` as the close (Bloomberg")),
            "{:?}",
            data.report.notes
        );
    }

    #[test]
    fn stooq_intraday_joins_its_hhmmss_time_column_without_flags() {
        let text = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n\
                    AAPL.US,5,20240102,153000,185.1,185.5,184.9,185.2,1000,0\n\
                    AAPL.US,5,20240102,153500,185.2,185.6,185.0,185.4,1100,0\n\
                    AAPL.US,5,20240102,154000,185.4,185.7,185.1,185.3,1200,0\n\
                    AAPL.US,5,20240103,153000,185.3,185.9,185.2,185.8,1300,0\n";
        let data = load(text, &close()).unwrap();
        let series = &data.series[0];
        assert_eq!(
            series.column("close").unwrap(),
            &[185.2, 185.4, 185.3, 185.8][..series.len().min(4)]
        );
        assert_eq!(data.format_time(series.timestamps[0]), "2024-01-02 15:30:00");
        assert_eq!(data.format_time(series.timestamps[2]), "2024-01-02 15:40:00");
        assert!(
            data.report.notes.iter().any(|n| n.contains("joined")),
            "{:?}",
            data.report.notes
        );
        // The columns as typed from the header, brackets and all, and without them.
        for columns in ["<DATE>,<TIME>", "DATE,TIME"] {
            let mut options = close();
            options.timestamp_column = Some(columns.into());
            let data = load(text, &options).unwrap();
            assert_eq!(
                data.format_time(data.series[0].timestamps[1]),
                "2024-01-02 15:35:00",
                "{columns}"
            );
        }
        let data = load(text, &LoadOptions::columns(&["<CLOSE>"])).unwrap();
        assert_eq!(data.series[0].column("<CLOSE>").unwrap()[0], 185.2);
    }

    #[test]
    fn duplicates_from_an_unjoined_time_column_advise_the_join_not_keep_last() {
        // The time column is not named `time`, so it is not joined by itself.
        let text = "Date,Hour,Close\n2024-01-02,09:30,1\n2024-01-02,10:30,2\n2024-01-03,09:30,3\n2024-01-03,10:30,4\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        assert!(
            msg.contains("pass `--timestamp-column Date,Hour`") && !msg.contains("--keep-last"),
            "{msg}"
        );
        let mut options = close();
        options.timestamp_column = Some("Date,Hour".into());
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn ambiguous_commas_are_refused_with_the_flag_that_reads_them() {
        let text = "Date,Close\n2024-01-01,999\n2024-01-02,\"1,500\"\n2024-01-03,\"1,250\"\n";
        let msg = load(text, &close()).unwrap_err().to_string();
        assert!(
            msg.contains("`1,500` is not a number")
                && msg.contains("`--thousands ,`")
                && msg.contains("`--thousands .`"),
            "{msg}"
        );
        let mut options = close();
        options.read.thousands = Some(',');
        assert_eq!(
            load(text, &options).unwrap().series[0].column("close").unwrap(),
            &[999.0, 1500.0, 1250.0]
        );
        // `1,5` cannot be thousands: a decimal comma.
        let data = load("Date,Close\n2024-01-01,1\n2024-01-02,\"1,5\"\n2024-01-03,3\n", &close()).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 1.5, 3.0]);
    }

    /// A missing close is filled by `--fill forward` (the advice of the backtest's
    /// error) or dropped by `--drop-missing`.
    #[test]
    fn missing_values_are_filled_forward_or_dropped() {
        let text = "Date,Close\n2024-01-01,1\n2024-01-02,null\n2024-01-03,3\n2024-01-04,\n2024-01-05,5\n";
        let mut options = close();
        options.gaps = Gaps::ForwardFill;
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 1.0, 3.0, 3.0, 5.0]);
        assert!(data
            .report
            .notes
            .iter()
            .any(|n| n.contains("forward-filled 2 missing value(s)")));
        let mut options = close();
        options.missing = Missing::Drop;
        let data = load(text, &options).unwrap();
        assert_eq!(data.series[0].column("close").unwrap(), &[1.0, 3.0, 5.0]);
    }

    #[test]
    fn standard_input_is_named_in_messages() {
        let source = DataSource::Stdin(b"Date,Close\n2024-01-01,1\n2024-01-02,x\n2024-01-03,3\n");
        assert_eq!((source.to_string(), source.stem()), ("<stdin>".into(), "stdin".into()));
        let msg = source.load(&close()).unwrap_err().to_string();
        assert!(
            msg.starts_with("<stdin>: line 3, column `Close`: `x` is not a number"),
            "{msg}"
        );
    }

    #[test]
    fn unreadable_file_is_an_io_error() {
        let msg = load_csv(Path::new("/nonexistent/prices.csv"), &close())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/prices.csv"), "{msg}");
    }
}
