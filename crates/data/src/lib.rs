//! Market data loading: CSV files of bars (OHLC and more) turned into regular time series.
//!
//! Real files differ: column order and case (`Close` vs `close`), the timestamp column
//! (`Date`, `timestamp`, or an unnamed first column), UTC offsets, newest-first order, weekend
//! gaps, extra columns, long format with an id column. [`load_csv`] reads all of them into
//! [`Series`] on a [`Calendar`] and says what it did in a [`LoadReport`]; every problem is a
//! [`DataError`] naming the file, line and column. [`DataSource::load`] reads CSV text built
//! into the program the same way.
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

#[cfg(feature = "parquet")]
mod parquet_table;
mod time;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use time::{format_timestamp, is_weekend, most_common_step, parse_timestamp, Calendar, TimestampStyle};

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

/// Options of [`load_csv`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The value columns to read (matched case-insensitively), in output order.
    pub columns: Vec<String>,
    /// The timestamp column; default: `timestamp`, `date`, `datetime`, `time` or an unnamed
    /// first column.
    pub timestamp_column: Option<String>,
    /// The id column.
    pub id_column: IdColumn,
    /// Duplicate timestamps.
    pub duplicates: Duplicates,
    /// Missing bars.
    pub gaps: Gaps,
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
        }
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
    /// What was done.
    pub report: LoadReport,
}

/// Header names that mark the timestamp column.
const TIMESTAMP_NAMES: [&str; 4] = ["timestamp", "date", "datetime", "time"];
/// Header names that mark an id column.
const ID_NAMES: [&str; 4] = ["item_id", "symbol", "id", "ticker"];

/// Minimum bars per series (needed to infer a step).
pub const MIN_ROWS: usize = 3;

struct Table {
    path: PathBuf,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(source: DataSource<'_>) -> Result<Self, DataError> {
        match source {
            DataSource::File(path) if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) => {
                Self::read_parquet(path)
            }
            DataSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| DataError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::parse_csv(path.to_path_buf(), &bytes)
            }
            DataSource::Bundled { bytes, .. } => Self::parse_csv(source.path(), bytes),
        }
    }

    /// Parses CSV text; `path` names it in messages.
    fn parse_csv(path: PathBuf, bytes: &[u8]) -> Result<Self, DataError> {
        let invalid = |message: String| DataError::Invalid {
            path: path.clone(),
            message,
        };
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| invalid(format!("cannot read the header: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(invalid("the file is empty or has no header row".into()));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| match e.kind() {
                csv::ErrorKind::UnequalLengths { pos, expected_len, len } => invalid(format!(
                    "line {}: {len} fields, but the header has {expected_len}",
                    pos.as_ref().map_or(0, |p| p.line())
                )),
                _ => invalid(format!("not valid CSV: {e}")),
            })?;
            rows.push(record.iter().map(|c| c.trim().to_string()).collect());
        }
        Ok(Self { path, headers, rows })
    }

    #[cfg(feature = "parquet")]
    fn read_parquet(path: &Path) -> Result<Self, DataError> {
        parquet_table::read(path).map(|(headers, rows)| Self {
            path: path.to_path_buf(),
            headers,
            rows,
        })
    }

    #[cfg(not(feature = "parquet"))]
    fn read_parquet(path: &Path) -> Result<Self, DataError> {
        Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: "Parquet support is not built in; rebuild with `--features parquet` or convert the file to CSV"
                .into(),
        })
    }

    fn invalid(&self, message: String) -> DataError {
        DataError::Invalid {
            path: self.path.clone(),
            message,
        }
    }

    /// File line of data row `row` (1-based, the header is line 1).
    fn line(row: usize) -> usize {
        row + 2
    }

    fn found(&self) -> String {
        self.headers
            .iter()
            .map(|h| if h.is_empty() { "(unnamed)" } else { h })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The one column matching `name` case-insensitively. Several matches are accepted only
    /// if they hold the same values; `hint` says how to fix a missing column.
    fn column(&self, name: &str, hint: &str, notes: &mut Vec<String>) -> Result<usize, DataError> {
        let matches: Vec<usize> = (0..self.headers.len())
            .filter(|&i| self.headers[i].eq_ignore_ascii_case(name))
            .collect();
        let Some(&first) = matches.first() else {
            return Err(self.invalid(format!("column `{name}` not found (found: {}); {hint}", self.found())));
        };
        for &other in &matches[1..] {
            let differs = self.rows.iter().position(|row| {
                let (a, b) = (&row[first], &row[other]);
                a != b && !matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
            });
            if let Some(row) = differs {
                return Err(self.invalid(format!(
                    "columns `{}` and `{}` both match `{name}` but differ at line {} ({} vs {}); remove one of them",
                    self.headers[first],
                    self.headers[other],
                    Self::line(row),
                    self.rows[row][first],
                    self.rows[row][other]
                )));
            }
            notes.push(format!(
                "columns `{}` and `{}` both match `{name}` and hold the same values; using `{}`",
                self.headers[first], self.headers[other], self.headers[first]
            ));
        }
        Ok(first)
    }

    fn timestamp_column(&self, requested: Option<&str>, notes: &mut Vec<String>) -> Result<usize, DataError> {
        if let Some(name) = requested {
            return self.column(name, "pass the right `--timestamp-column`", notes);
        }
        if let Some(name) = TIMESTAMP_NAMES
            .iter()
            .find(|n| self.headers.iter().any(|h| h.eq_ignore_ascii_case(n)))
        {
            return self.column(name, "", notes);
        }
        if self.headers[0].is_empty() {
            return Ok(0);
        }
        Err(self.invalid(format!(
            "no timestamp column (looked for {} or an unnamed first column; found: {}); pass `--timestamp-column <name>`",
            TIMESTAMP_NAMES.join(", "),
            self.found()
        )))
    }
}

/// Parses a numeric cell; empty, `nan`, `null`, `na`, `none` are missing.
fn parse_value(cell: &str) -> Option<f64> {
    match cell.to_ascii_lowercase().as_str() {
        "" | "nan" | "null" | "na" | "n/a" | "none" => Some(f64::NAN),
        other => other.parse::<f64>().ok(),
    }
}

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
        }
    }

    /// The file stem (`BTCUSD`): the label of a file that holds one series.
    pub fn stem(&self) -> String {
        let name = match self {
            Self::File(path) => path,
            Self::Bundled { name, .. } => Path::new(name),
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
        load_table(Table::read(self)?, options)
    }
}

impl std::fmt::Display for DataSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

/// Turns a read table into regular series.
fn load_table(table: Table, options: &LoadOptions) -> Result<Dataset, DataError> {
    let mut notes = Vec::new();
    if table.rows.is_empty() {
        return Err(table.invalid("the file has a header but no data rows".into()));
    }
    let ts_col = table.timestamp_column(options.timestamp_column.as_deref(), &mut notes)?;
    let value_cols: Vec<usize> = options
        .columns
        .iter()
        .map(|c| table.column(c, "pass `--target <column>` with one of the columns above", &mut notes))
        .collect::<Result<_, _>>()?;
    let id_col = match &options.id_column {
        IdColumn::None => None,
        IdColumn::Named(name) => Some(table.column(name, "pass the right `--id-column`", &mut notes)?),
        IdColumn::Auto => ID_NAMES
            .iter()
            .find_map(|n| table.headers.iter().position(|h| h.eq_ignore_ascii_case(n))),
    };

    // Parse timestamps and group rows by id in order of first appearance.
    let mut style = None;
    let mut groups: Vec<RawSeries> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (row, cells) in table.rows.iter().enumerate() {
        let cell = &cells[ts_col];
        let (t, row_style) = parse_timestamp(cell).ok_or_else(|| {
            table.invalid(format!(
                "line {}: cannot read timestamp `{cell}` in column `{}`; expected e.g. 2024-01-31 or 2024-01-31 09:30:00",
                Table::line(row),
                table.headers[ts_col]
            ))
        })?;
        style = Some(match (style, row_style) {
            (Some(TimestampStyle::Date), TimestampStyle::Date) | (None, _) => row_style,
            (Some(previous), TimestampStyle::Date) => previous,
            (Some(_), other) => other,
        });
        let id = id_col.map(|c| cells[c].clone());
        let key = id.clone().unwrap_or_default();
        let slot = *index.entry(key).or_insert_with(|| {
            groups.push(RawSeries { id, rows: Vec::new() });
            groups.len() - 1
        });
        groups[slot].rows.push((t, row));
    }
    let style = style.unwrap_or(TimestampStyle::Date);
    if let Some(c) = id_col {
        if groups.len() > 1 {
            notes.push(format!("{} series by column `{}`", groups.len(), table.headers[c]));
        }
    }

    let mut report = LoadReport {
        rows: table.rows.len(),
        ..LoadReport::default()
    };
    let mut series = Vec::with_capacity(groups.len());
    for group in groups {
        series.push(build_series(
            &table,
            group,
            &value_cols,
            options,
            &mut report,
            &mut notes,
        )?);
    }
    report.notes = notes;
    Ok(Dataset {
        path: table.path,
        series,
        style,
        report,
    })
}

/// Sorts, de-duplicates, parses values and regularises one series.
fn build_series(
    table: &Table,
    mut group: RawSeries,
    value_cols: &[usize],
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
    let duplicates: Vec<(usize, usize)> = group
        .rows
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| (Table::line(w[0].1), Table::line(w[1].1)))
        .collect();
    if !duplicates.is_empty() {
        if options.duplicates == Duplicates::Error {
            let shown: Vec<String> = duplicates
                .iter()
                .take(5)
                .map(|(a, b)| format!("lines {a} and {b}"))
                .collect();
            return Err(table.invalid(format!(
                "{label}{} duplicate timestamp(s): {}{}; remove them or pass `--keep-last`",
                duplicates.len(),
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
    let mut columns = Vec::with_capacity(value_cols.len());
    for (&col, name) in value_cols.iter().zip(&options.columns) {
        let values = group
            .rows
            .iter()
            .map(|&(_, row)| {
                let cell = &table.rows[row][col];
                parse_value(cell).ok_or_else(|| {
                    table.invalid(format!(
                        "line {}, column `{}`: `{cell}` is not a number",
                        Table::line(row),
                        table.headers[col]
                    ))
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        columns.push((name.clone(), values));
    }
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
            "{label}forward-filling {} bars from {} to {} would make {} bars ({:.1} GB) out of {bars}; a bar far from the others is probably wrong: remove it, or use the trading-day index (--fill none)",
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
    fn unreadable_file_is_an_io_error() {
        let msg = load_csv(Path::new("/nonexistent/prices.csv"), &close())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/prices.csv"), "{msg}");
    }
}
