//! Reading a data file into typed columns: only the timestamp, id and requested value columns
//! are kept, parsed as the rows stream by (a 5-million-row file never exists as text cells).
//!
//! The layout is detected from the first [`SAMPLE`] records: the delimiter (comma, semicolon,
//! tab or pipe), whether the first row is a header, yfinance's three header rows
//! (`Price`/`Ticker`/`Date`), MetaTrader's `<DATE>` angle brackets, a separate time-of-day
//! column to join to the date, the timestamp spelling and each column's number format.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::numbers::{decimals, NumberFormat};
use crate::time::{is_time_of_day, with_colons, Parsed, TimeFormat};
use crate::{DataError, DataSource, IdColumn, LoadOptions, TimestampStyle, ID_NAMES, TIMESTAMP_NAMES};

/// Records read before the layout is decided.
const SAMPLE: usize = 200;

/// Delimiters the sniffer tries, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Column names of Binance klines files, which have no header.
pub(crate) const BINANCE_KLINES: [&str; 12] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
];

/// Names suggested for a headerless file from its first row: `timestamp` for the first time
/// (a date, or an epoch number of a plausible year, as the first column of Kraken's or
/// Binance's exports), `symbol` for text, and for the other numbers `close` (one),
/// `open,high,low,close` (four or more, then `volume`), else `close` then `colN`.
fn suggested_names(row: &[String]) -> String {
    let time_at = row.iter().position(|cell| reads_as_time(cell));
    let is_number = |cell: &String| NumberFormat::default().parse(cell).is_some();
    let numbers = row
        .iter()
        .enumerate()
        .filter(|&(i, c)| Some(i) != time_at && is_number(c))
        .count();
    let mut number = 0;
    row.iter()
        .enumerate()
        .map(|(i, cell)| {
            if Some(i) == time_at {
                return "timestamp".to_string();
            }
            if !is_number(cell) {
                return "symbol".to_string();
            }
            number += 1;
            let ohlcv = ["open", "high", "low", "close", "volume"];
            match (numbers, number) {
                (n, k) if n >= 4 && k <= 5 => ohlcv[k - 1].to_string(),
                (_, 1) => "close".to_string(),
                _ => format!("col{}", i + 1),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Seconds since the epoch of 1990-01-01 and 2100-01-01: an epoch number outside them is
/// more likely a price or a volume than a bar's time.
const PLAUSIBLE_EPOCH_SECONDS: std::ops::Range<i64> = 631_152_000..4_102_444_800;

/// Whether a cell reads as a time: a date or date-time that is not a plain number, or an
/// epoch number (9 or more digits, in whatever unit its magnitude says) of a plausible year.
fn reads_as_time(cell: &str) -> bool {
    let number = NumberFormat::default().parse(cell).is_some();
    TimeFormat::candidates(cell, None, None)
        .iter()
        .any(|format| match format {
            TimeFormat::Epoch(_) => format
                .parse(cell)
                .is_some_and(|parsed| PLAUSIBLE_EPOCH_SECONDS.contains(&parsed.seconds)),
            _ => !number,
        })
}

/// A flag value quoted for a shell when it has spaces.
pub(crate) fn shell_quote(value: &str) -> String {
    if value.contains([' ', '<', '>', '|', ';', '&', '\'', '"']) {
        format!("'{value}'")
    } else {
        value.to_string()
    }
}

/// Records of a file, one at a time, with their file line.
enum Records<'a> {
    Csv(csv::Reader<Box<dyn Read + 'a>>),
    /// Parquet: the column names, then the rows (record numbers count the names as 1).
    Rows(std::iter::Enumerate<ParquetRows>),
}

impl Records<'_> {
    /// The next record into `record`, and its line; `None` at the end.
    fn next(&mut self, record: &mut csv::StringRecord, path: &Path) -> Result<Option<u64>, DataError> {
        match self {
            Self::Csv(reader) => match reader.read_record(record) {
                Ok(true) => Ok(Some(record.position().map_or(0, |p| p.line()))),
                Ok(false) => Ok(None),
                Err(e) => Err(DataError::Invalid {
                    path: path.to_path_buf(),
                    message: match e.kind() {
                        csv::ErrorKind::Utf8 { pos, .. } => format!(
                            "line {}: not UTF-8 text; save the file as UTF-8",
                            pos.as_ref().map_or(0, |p| p.line())
                        ),
                        csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
                        _ => format!("not valid CSV: {e}"),
                    },
                }),
            },
            Self::Rows(rows) => match rows.next() {
                None => Ok(None),
                Some((i, row)) => {
                    *record = csv::StringRecord::from(row?);
                    Ok(Some(i as u64 + 1))
                }
            },
        }
    }
}

/// The delimiter that splits the first lines of `prefix` into the same number (more than one)
/// of fields, the most fields winning; comma when none does.
fn sniff_delimiter(prefix: &[u8]) -> u8 {
    // The last line of a prefix may be cut short.
    let end = prefix.iter().rposition(|&b| b == b'\n').unwrap_or(prefix.len());
    let text = &prefix[..end];
    let mut best = (b',', 1);
    for delimiter in DELIMITERS {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text);
        let counts: Vec<usize> = reader
            .records()
            .take(30)
            .map_while(Result::ok)
            .map(|r| r.len())
            .collect();
        let Some(&first) = counts.first() else { continue };
        // yfinance's header rows have as many fields as the data; a title line would not.
        let consistent = counts.iter().all(|&c| c == first);
        if consistent && first > best.1 {
            best = (delimiter, first);
        }
    }
    best.0
}

/// Whether a cell could be data: empty, a number (any vendor spelling), a date or time.
fn data_like(cell: &str) -> bool {
    let cell = cell.trim();
    NumberFormat { thousands: Some(',') }.parse(cell).is_some()
        || NumberFormat::default().parse(cell).is_some()
        || is_time_of_day(cell)
        || !TimeFormat::candidates(cell, None, None).is_empty()
}

/// What the first records say about the file.
struct Layout {
    /// Column names.
    names: Vec<String>,
    /// Records before the data.
    header_rows: usize,
    /// The series id when the header names one ticker (yfinance).
    ticker: Option<String>,
}

/// Decides the header from the sample; `names_given` are `--columns`.
fn layout(
    sample: &[(u64, csv::StringRecord)],
    options: &LoadOptions,
    force_header: bool,
    notes: &mut Vec<String>,
) -> Result<Layout, String> {
    let read = &options.read;
    let first: Vec<String> = sample[0].1.iter().map(|c| c.trim().to_string()).collect();
    let n = first.len();
    // The first row is a header when one of its cells is text where the data (the last row
    // read) has a number or a date; text in both (a symbol column) says nothing.
    let reference: Vec<&str> = sample[sample.len() - 1].1.iter().map(str::trim).collect();
    let has_header = force_header
        || (!read.no_header
            && first
                .iter()
                .enumerate()
                .any(|(i, c)| !data_like(c) && (sample.len() == 1 || reference.get(i).is_none_or(|r| data_like(r)))));
    if !has_header {
        let names = if !read.column_names.is_empty() {
            read.column_names.clone()
        } else if n == BINANCE_KLINES.len() && TimeFormat::candidates(&first[0], None, None).len() == 1 {
            notes.push(
                "no header: columns named as Binance klines (open_time, open, high, low, close, volume, ...)".into(),
            );
            BINANCE_KLINES.iter().map(|s| s.to_string()).collect()
        } else {
            return Err(format!(
                "line {}: the first row `{}` is data, not a header; name the columns: pass `--no-header --columns {}`",
                sample[0].0,
                first.join(","),
                suggested_names(&first)
            ));
        };
        if names.len() != n {
            return Err(format!(
                "--columns gives {} names but the file has {n} columns; give {n} names",
                names.len()
            ));
        }
        if !read.no_header {
            notes.push("the first row is data: the file has no header".into());
        }
        return Ok(Layout {
            names,
            header_rows: 0,
            ticker: None,
        });
    }
    let mut names = first;
    if let Some(bom) = names.first_mut() {
        *bom = bom.trim_start_matches('\u{feff}').to_string();
    }
    let mut header_rows = 1;
    let mut ticker = None;
    // yfinance: `Price,Close,...` / `Ticker,AAPL,...` / `Date,,,...`.
    let cells = |i: usize| -> Vec<&str> {
        sample
            .get(i)
            .map_or_else(Vec::new, |r| r.1.iter().map(str::trim).collect())
    };
    let (second, third) = (cells(1), cells(2));
    if second.first().is_some_and(|c| c.eq_ignore_ascii_case("ticker"))
        && third.first().is_some_and(|c| !c.is_empty())
        && third[1..].iter().all(|c| c.is_empty())
    {
        header_rows = 3;
        names[0] = third[0].to_string();
        let mut tickers: Vec<&str> = second[1..].iter().copied().filter(|t| !t.is_empty()).collect();
        tickers.dedup();
        if tickers.len() == 1 {
            ticker = Some(tickers[0].to_string());
        } else {
            for (name, t) in names.iter_mut().zip(&second).skip(1) {
                *name = format!("{name}.{t}");
            }
        }
        notes.push(format!(
            "yfinance header (3 rows): {}",
            match &ticker {
                Some(t) => format!("ticker {t}"),
                None => format!(
                    "several tickers, columns named like `{}`",
                    names.get(1).map_or("", String::as_str)
                ),
            }
        ));
    }
    if names.iter().any(|h| h.starts_with('<') && h.ends_with('>')) {
        for name in &mut names {
            *name = name.trim_start_matches('<').trim_end_matches('>').to_string();
        }
        notes.push("header names in angle brackets (MetaTrader <DATE>) read without them".into());
    }
    if !read.column_names.is_empty() {
        if read.column_names.len() != names.len() {
            return Err(format!(
                "--columns gives {} names but the file has {} columns; give {} names",
                read.column_names.len(),
                names.len(),
                names.len()
            ));
        }
        names = read.column_names.clone();
    }
    Ok(Layout {
        names,
        header_rows,
        ticker,
    })
}

/// A file read into the columns that were asked for.
pub(crate) struct Table {
    /// The file ([`DataSource::path`]).
    pub path: PathBuf,
    /// Each row's instant, seconds since the epoch (UTC).
    pub times: Vec<i64>,
    /// Each row's file line.
    pub lines: Vec<u32>,
    /// Each row's series (index into `id_names`); empty when the file is one series.
    pub ids: Vec<u32>,
    /// Series ids in order of first appearance.
    pub id_names: Vec<String>,
    /// The id column's name, if any.
    pub id_column: Option<String>,
    /// The id of a file that is one series, when the header names it (a yfinance ticker).
    pub ticker: Option<String>,
    /// The requested columns' values, in request order (NaN = missing).
    pub values: Vec<Vec<f64>>,
    /// Most digits after the decimal mark per requested column.
    pub decimals: Vec<u32>,
    /// How the timestamps were written.
    pub style: TimestampStyle,
    /// The UTC offset written with the latest bar, if the file gives offsets.
    pub offset: Option<i32>,
    /// The timestamp column(s) as named in messages (`DATE+TIME`).
    pub time_name: String,
    /// A time-of-day column that is not part of the timestamp (for duplicate advice).
    pub unused_time_of_day: Option<(String, String)>,
}

/// One way of reading the timestamps still consistent with every row so far.
struct Candidate {
    format: TimeFormat,
    times: Vec<i64>,
    style: Option<TimestampStyle>,
    /// (latest instant, its offset).
    latest: Option<(i64, Option<i32>)>,
}

impl Candidate {
    fn push(&mut self, parsed: Parsed) {
        self.times.push(parsed.seconds);
        self.style = Some(match (self.style, parsed.style) {
            (Some(TimestampStyle::Date), TimestampStyle::Date) | (None, _) => parsed.style,
            (Some(previous), TimestampStyle::Date) => previous,
            (Some(TimestampStyle::DateTimeUtcOffset), _) => TimestampStyle::DateTimeUtcOffset,
            (Some(_), other) => other,
        });
        if self.latest.is_none_or(|(t, _)| parsed.seconds >= t) {
            self.latest = Some((parsed.seconds, parsed.offset));
        }
    }
}

/// The columns matching `name` case-insensitively.
/// The columns named `name` (case-insensitively; `<CLOSE>` as typed from a MetaTrader or
/// stooq header matches the `CLOSE` the reader made of it).
fn matching(names: &[String], name: &str) -> Vec<usize> {
    let bare = name.strip_prefix('<').and_then(|n| n.strip_suffix('>')).unwrap_or(name);
    (0..names.len())
        .filter(|&i| names[i].eq_ignore_ascii_case(name) || names[i].eq_ignore_ascii_case(bare))
        .collect()
}

fn found(names: &[String]) -> String {
    names
        .iter()
        .map(|h| if h.is_empty() { "(unnamed)" } else { h })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens the records of `source` with the user's delimiter or the sniffed one; also says
/// whether the format always names its columns (Parquet).
fn open<'a>(
    source: DataSource<'a>,
    delimiter: Option<u8>,
    notes: &mut Vec<String>,
) -> Result<(Records<'a>, bool), DataError> {
    let path = source.path();
    let io = |source| DataError::Io {
        path: path.clone(),
        source,
    };
    let (reader, prefix): (Box<dyn Read + 'a>, Vec<u8>) = match source {
        DataSource::File(file) if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) => {
            let (headers, rows) = read_parquet(file)?;
            let all: Box<dyn Iterator<Item = Result<Vec<String>, DataError>>> =
                Box::new(std::iter::once(Ok(headers)).chain(rows));
            return Ok((Records::Rows(all.enumerate()), true));
        }
        DataSource::File(file) => {
            let mut reader = BufReader::with_capacity(1 << 16, std::fs::File::open(file).map_err(io)?);
            let prefix = reader.fill_buf().map_err(io)?.to_vec();
            (Box::new(reader), prefix)
        }
        DataSource::Stdin(bytes) | DataSource::Bundled { bytes, .. } => {
            (Box::new(bytes), bytes[..bytes.len().min(1 << 16)].to_vec())
        }
    };
    let delimiter = delimiter.unwrap_or_else(|| {
        let sniffed = sniff_delimiter(&prefix);
        if sniffed != b',' {
            let name = match sniffed {
                b'\t' => "tab".to_string(),
                other => format!("`{}`", other as char),
            };
            notes.push(format!("fields separated by {name}"));
        }
        sniffed
    });
    Ok((Records::Csv(csv_reader(reader, delimiter)), false))
}

fn csv_reader(reader: Box<dyn Read + '_>, delimiter: u8) -> csv::Reader<Box<dyn Read + '_>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(reader)
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path) -> Result<(Vec<String>, ParquetRows), DataError> {
    crate::parquet_table::read(path)
}

/// A Parquet file's rows of cells.
pub(crate) type ParquetRows = Box<dyn Iterator<Item = Result<Vec<String>, DataError>>>;

#[cfg(not(feature = "parquet"))]
fn read_parquet(path: &Path) -> Result<(Vec<String>, ParquetRows), DataError> {
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        message: "Parquet support is not built in; rebuild with `--features parquet` or convert the file to CSV".into(),
    })
}

/// A requested value column: its index, the columns with the same name in another case
/// (which must hold the same values), and its number format.
struct ValueColumn {
    index: usize,
    twins: Vec<usize>,
    format: NumberFormat,
}

/// The first records, up to [`SAMPLE`], without blank lines.
fn read_sample(records: &mut Records<'_>, path: &Path) -> Result<Vec<(u64, csv::StringRecord)>, DataError> {
    let mut sample = Vec::new();
    let mut record = csv::StringRecord::new();
    while sample.len() < SAMPLE {
        match records.next(&mut record, path)? {
            Some(_) if record.iter().all(|c| c.trim().is_empty()) => {}
            Some(line) => sample.push((line, record.clone())),
            None => break,
        }
    }
    Ok(sample)
}

/// The id column: the user's, none, or the first of [`ID_NAMES`].
fn id_column(names: &[String], choice: &IdColumn) -> Result<Option<usize>, String> {
    match choice {
        IdColumn::None => Ok(None),
        IdColumn::Named(name) => matching(names, name).first().copied().map(Some).ok_or_else(|| {
            format!(
                "column `{name}` not found (found: {}); pass `--id-column <column>` with one of the columns above, or `--id-column none`",
                found(names)
            )
        }),
        IdColumn::Auto => Ok(ID_NAMES
            .iter()
            .find_map(|n| names.iter().position(|h| h.eq_ignore_ascii_case(n)))),
    }
}

/// Other names of the close and who uses them, tried in order where there is no `close`.
const CLOSE_ALIASES: [(&str, &str); 2] = [("price", "investing.com"), ("px_last", "Bloomberg")];

/// The requested value columns with their number formats, judged on the sample's data rows.
fn value_columns(
    names: &[String],
    data: &[&(u64, csv::StringRecord)],
    options: &LoadOptions,
    notes: &mut Vec<String>,
) -> Result<Vec<ValueColumn>, String> {
    let cells = |c: usize| data.iter().map(move |(_, r)| r.get(c).unwrap_or("").trim());
    let mut columns = Vec::new();
    for name in &options.columns {
        let mut all = matching(names, name);
        if all.is_empty() && name.eq_ignore_ascii_case("close") {
            if let Some((alias, vendor)) = CLOSE_ALIASES
                .iter()
                .find(|(alias, _)| !matching(names, alias).is_empty())
            {
                all = matching(names, alias);
                notes.push(format!(
                    "no `close` column: reading `{}` as the close ({vendor} names it so)",
                    names[all[0]]
                ));
            }
        }
        let Some((&index, twins)) = all.split_first() else {
            return Err(format!(
                "column `{name}` not found (found: {}); pass `--target <column>` with one of the columns above",
                found(names)
            ));
        };
        // Reading stops at the first row where they differ, so the note stands when it shows.
        for &twin in twins {
            notes.push(format!(
                "columns `{}` and `{}` both match `{name}` and hold the same values; using `{}`",
                names[index], names[twin], names[index]
            ));
        }
        let format = NumberFormat::detect(cells(index), options.read.thousands);
        match (format.thousands, options.read.thousands) {
            (Some(','), None) => notes.push(format!(
                "column `{}` uses `,` between thousands (29,924.4)",
                names[index]
            )),
            (Some(_), None) => notes.push(format!("column `{}` uses a decimal comma (1,2345)", names[index])),
            _ => {}
        }
        let suffixed = cells(index).find(|cell| {
            cell.parse::<f64>().is_err()
                && cell.ends_with(['K', 'k', 'M', 'B', '%'])
                && format.parse(cell).is_some_and(|v| !v.is_nan())
        });
        if let Some(cell) = suffixed {
            let meaning = if cell.ends_with('%') {
                "percent, read without the `%`"
            } else {
                "K/M/B scale them by a thousand/million/billion"
            };
            notes.push(format!(
                "column `{}` writes numbers like `{cell}`: {meaning}",
                names[index]
            ));
        }
        columns.push(ValueColumn {
            index,
            twins: twins.to_vec(),
            format,
        });
    }
    Ok(columns)
}

/// Rows parsed into a [`Table`] as they stream by.
struct Ingest<'o> {
    options: &'o LoadOptions,
    names: Vec<String>,
    time_cols: Vec<usize>,
    id_col: Option<usize>,
    values: Vec<ValueColumn>,
    /// The timestamp spellings every row so far reads with.
    candidates: Vec<Candidate>,
    id_index: HashMap<String, u32>,
    table: Table,
}

impl Ingest<'_> {
    /// The timestamp text of a record: its timestamp cell, or the cells joined by a space (a
    /// six-digit time of day after the date written with colons).
    fn time_text<'r>(&self, r: &'r csv::StringRecord) -> std::borrow::Cow<'r, str> {
        match self.time_cols.as_slice() {
            [c] => r.get(*c).unwrap_or("").trim().into(),
            cols => cols
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let cell = r.get(c).unwrap_or("").trim();
                    if i == 0 {
                        cell.into()
                    } else {
                        with_colons(cell)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
        }
    }

    /// Parses one record at file line `line`; the message of an error names line and column.
    fn row(&mut self, line: u64, r: &csv::StringRecord) -> Result<(), String> {
        if r.len() != self.names.len() {
            if r.iter().all(|c| c.trim().is_empty()) {
                return Ok(());
            }
            return Err(format!(
                "line {line}: {} fields, but the header has {}",
                r.len(),
                self.names.len()
            ));
        }
        let text = self.time_text(r);
        let before = self.candidates.len();
        self.candidates.retain_mut(|c| match c.format.parse(&text) {
            Some(parsed) => {
                c.push(parsed);
                true
            }
            None => false,
        });
        if self.candidates.is_empty() {
            let spelling = if before == 1 {
                ""
            } else {
                " as any date spelling the rows above use"
            };
            return Err(format!(
                "line {line}: cannot read timestamp `{text}` in column `{}`{spelling}{}",
                self.table.time_name,
                time_advice(&text)
            ));
        }
        if let Some(c) = self.id_col {
            let id = r.get(c).unwrap_or("").trim();
            let next = self.id_index.len() as u32;
            let ids = &mut self.table.id_names;
            let slot = *self.id_index.entry(id.to_string()).or_insert_with(|| {
                ids.push(id.to_string());
                next
            });
            self.table.ids.push(slot);
        }
        for (k, column) in self.values.iter().enumerate() {
            let raw = r.get(column.index).unwrap_or("");
            let value = column
                .format
                .parse(raw)
                .ok_or_else(|| not_a_number(line, &self.names[column.index], raw))?;
            for &twin in &column.twins {
                let other = r.get(twin).unwrap_or("");
                let same = column
                    .format
                    .parse(other)
                    .is_some_and(|v| v == value || (v.is_nan() && value.is_nan()));
                if !same && other.trim() != raw.trim() {
                    return Err(format!(
                        "columns `{}` and `{}` both match `{}` but differ at line {line} ({} vs {}); remove one of them",
                        self.names[column.index],
                        self.names[twin],
                        self.options.columns[k],
                        raw.trim(),
                        other.trim()
                    ));
                }
            }
            self.table.decimals[k] = self.table.decimals[k].max(decimals(value));
            self.table.values[k].push(value);
        }
        self.table.lines.push(u32::try_from(line).unwrap_or(u32::MAX));
        Ok(())
    }

    /// The table, once every row is read: the one timestamp spelling left, or an error when
    /// two read every row differently (`01/02/2024`: day- or month-first).
    fn finish(mut self, example: &str, notes: &mut Vec<String>) -> Result<Table, String> {
        // Spellings that agree on every row are one.
        self.candidates.dedup_by(|later, earlier| later.times == earlier.times);
        if let [a, b, ..] = self.candidates.as_slice() {
            let (a, b) = (a.format.describe(), b.format.describe());
            return Err(format!(
                "the dates in column `{}` read both as {a} and as {b} (e.g. `{example}`); pass `--date-format {}` or `--date-format {}`",
                self.table.time_name,
                shell_quote(&a),
                shell_quote(&b)
            ));
        }
        let chosen = self.candidates.pop().expect("a row was read with one spelling left");
        if !matches!(chosen.format, TimeFormat::Iso) {
            notes.push(format!("timestamps read as {}", chosen.format.describe()));
        }
        self.table.times = chosen.times;
        self.table.style = chosen.style.unwrap_or(TimestampStyle::Date);
        self.table.offset = chosen.latest.and_then(|(_, offset)| offset);
        Ok(self.table)
    }
}

impl Table {
    /// Reads `source`, keeping the columns `options` ask for.
    pub fn read(source: DataSource<'_>, options: &LoadOptions, notes: &mut Vec<String>) -> Result<Self, DataError> {
        let path = source.path();
        let invalid = |message: String| DataError::Invalid {
            path: path.clone(),
            message,
        };
        let (mut records, force_header) = open(source, options.read.delimiter, notes)?;
        let sample = read_sample(&mut records, &path)?;
        if sample.is_empty() {
            return Err(invalid("the file is empty or has no header row".into()));
        }
        let layout = layout(&sample, options, force_header, notes).map_err(invalid)?;
        let names = layout.names;
        let data: Vec<&(u64, csv::StringRecord)> = sample.iter().skip(layout.header_rows).collect();
        if data.is_empty() {
            return Err(invalid("the file has a header but no data rows".into()));
        }
        let (time_cols, time_name) = time_columns(&names, &data, options, notes).map_err(invalid)?;
        let id_col = id_column(&names, &options.id_column).map_err(invalid)?;
        let values = value_columns(&names, &data, options, notes).map_err(invalid)?;
        let unused_time_of_day = (0..names.len())
            .filter(|c| !time_cols.contains(c) && !names[*c].is_empty())
            .find(|&c| {
                // Six digits read as a time only in a column named `time`: elsewhere they may
                // be volumes.
                let cell = |r: &csv::StringRecord| r.get(c).unwrap_or("").trim().to_string();
                data.iter().all(|(_, r)| {
                    is_time_of_day(&cell(r)) && (cell(r).contains(':') || names[c].eq_ignore_ascii_case("time"))
                })
            })
            .map(|c| (names[time_cols[0]].clone(), names[c].clone()));
        let table = Self {
            path: path.clone(),
            times: Vec::new(),
            lines: Vec::new(),
            ids: Vec::new(),
            id_names: Vec::new(),
            id_column: id_col.map(|c| names[c].clone()),
            ticker: layout.ticker,
            values: vec![Vec::new(); values.len()],
            decimals: vec![0; values.len()],
            style: TimestampStyle::Date,
            offset: None,
            time_name,
            unused_time_of_day,
        };
        let mut ingest = Ingest {
            options,
            names,
            time_cols,
            id_col,
            values,
            candidates: Vec::new(),
            id_index: HashMap::new(),
            table,
        };
        // The timestamp spellings that read the first row.
        let example = ingest.time_text(&data[0].1).into_owned();
        ingest.candidates =
            TimeFormat::candidates(&example, options.read.time_unit, options.read.date_format.as_deref())
                .into_iter()
                .map(|format| Candidate {
                    format,
                    times: Vec::new(),
                    style: None,
                    latest: None,
                })
                .collect();
        if ingest.candidates.is_empty() {
            return Err(invalid(format!(
                "line {}: cannot read timestamp `{example}` in column `{}`{}",
                data[0].0,
                ingest.table.time_name,
                time_advice(&example)
            )));
        }
        for (line, r) in &data {
            ingest.row(*line, r).map_err(invalid)?;
        }
        drop(data);
        drop(sample);
        let mut record = csv::StringRecord::new();
        while let Some(line) = records.next(&mut record, &path)? {
            ingest.row(line, &record).map_err(invalid)?;
        }
        ingest.finish(&example, notes).map_err(invalid)
    }

    /// Rows read.
    pub fn rows(&self) -> usize {
        self.times.len()
    }

    /// An error about this file.
    pub fn invalid(&self, message: String) -> DataError {
        DataError::Invalid {
            path: self.path.clone(),
            message,
        }
    }
}

/// What to pass when a timestamp cannot be read: a unit for numbers, a format for text.
fn time_advice(text: &str) -> String {
    if text.trim().parse::<f64>().is_ok() {
        "; for epoch numbers pass `--time-unit s`, `--time-unit ms`, `--time-unit us` or `--time-unit ns`".into()
    } else {
        "; expected e.g. 2024-01-31 or 2024-01-31 09:30:00, else pass `--date-format <strftime>` that reads it, e.g. `--date-format '%d/%m/%Y %H:%M'`".into()
    }
}

/// The message for a cell that is not a number, with the flag that reads it when there is one.
fn not_a_number(line: u64, column: &str, raw: &str) -> String {
    let raw = raw.trim();
    let advice = if raw.contains(',') && raw.contains('.') {
        if raw.find(',') < raw.find('.') {
            "; pass `--thousands ,` if `,` separates thousands"
        } else {
            "; pass `--thousands .` if `.` separates thousands"
        }
    } else if raw.contains(',') {
        "; pass `--thousands ,` if `,` separates thousands, or `--thousands .` if `,` is the decimal mark"
    } else {
        ""
    };
    format!("line {line}, column `{column}`: `{raw}` is not a number{advice}")
}

/// The timestamp column(s) and how messages name them: the user's (`DATE,TIME` joins two),
/// else a known name (joined with a separate time-of-day column), else an unnamed first one.
fn time_columns(
    names: &[String],
    data: &[&(u64, csv::StringRecord)],
    options: &LoadOptions,
    notes: &mut Vec<String>,
) -> Result<(Vec<usize>, String), String> {
    let only = |name: &str, hint: &str| -> Result<usize, String> {
        matching(names, name)
            .first()
            .copied()
            .ok_or_else(|| format!("column `{name}` not found (found: {}); {hint}", found(names)))
    };
    if let Some(requested) = &options.timestamp_column {
        let cols = requested
            .split(',')
            .map(|name| {
                only(
                    name.trim(),
                    "pass `--timestamp-column <column>` with one of the columns above",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((cols, requested.replace(',', "+")));
    }
    let Some(first) = TIMESTAMP_NAMES
        .iter()
        .find_map(|n| names.iter().position(|h| h.eq_ignore_ascii_case(n)))
        .or_else(|| names[0].is_empty().then_some(0))
        .or_else(|| {
            // A file without a header has its timestamps first.
            options.read.no_header.then(|| {
                notes.push(format!("timestamps from the first column `{}`", names[0]));
                0
            })
        })
    else {
        return Err(format!(
            "no timestamp column (looked for {} or an unnamed first column; found: {}); pass `--timestamp-column <column>`",
            TIMESTAMP_NAMES.join(", "),
            found(names)
        ));
    };
    if names[first] == "__index_level_0__" {
        notes.push("timestamps from the Parquet index column `__index_level_0__`".into());
    }
    // A date column and a separate time-of-day column (MetaTrader <DATE> <TIME>, Date/Time).
    let cell = |r: &csv::StringRecord, c: usize| r.get(c).unwrap_or("").trim().to_string();
    let time_of_day = (0..names.len()).find(|&c| {
        c != first && names[c].eq_ignore_ascii_case("time") && data.iter().all(|(_, r)| is_time_of_day(&cell(r, c)))
    });
    if let Some(t) = time_of_day.filter(|_| data.iter().all(|(_, r)| !cell(r, first).contains(':'))) {
        notes.push(format!(
            "timestamps from columns `{}` and `{}` joined",
            names[first], names[t]
        ));
        return Ok((vec![first, t], format!("{}+{}", names[first], names[t])));
    }
    Ok((vec![first], names[first].clone()))
}
