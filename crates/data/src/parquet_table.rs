//! Reading a flat Parquet table into the same cells a CSV gives (feature `parquet`).
//!
//! Numbers are written back as their shortest round-trip decimals, strings as they are, nulls
//! as empty cells, dates as `YYYY-MM-DD` and timestamps as `YYYY-MM-DD HH:MM:SS` (the instant
//! as stored, UTC; date only when the time is midnight), so the CSV checks and messages apply.

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::time::{format_timestamp, TimestampStyle};
use crate::DataError;

/// Seconds since the epoch printed as a date (at midnight) or date and time.
fn instant(seconds: i64) -> String {
    let style = if seconds.rem_euclid(86_400) == 0 {
        TimestampStyle::Date
    } else {
        TimestampStyle::DateTime
    };
    format_timestamp(seconds, style)
}

fn cell(field: &Field) -> String {
    match field {
        Field::Null => String::new(),
        Field::Str(text) => text.clone(),
        Field::Bytes(bytes) => String::from_utf8_lossy(bytes.data()).into_owned(),
        Field::Date(days) => instant(i64::from(*days) * 86_400),
        Field::TimestampMillis(ms) => instant(ms.div_euclid(1_000)),
        Field::TimestampMicros(us) => instant(us.div_euclid(1_000_000)),
        Field::Float(v) => v.to_string(),
        Field::Double(v) => v.to_string(),
        other => other.to_string(),
    }
}

/// The column names and the rows of cells of the Parquet file at `path`.
pub(crate) fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), DataError> {
    let invalid = |message: String| DataError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| invalid(format!("not a readable Parquet file: {e}")))?;
    let headers: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| invalid(format!("cannot read rows: {e}")))?
        .map(|row| {
            let row = row.map_err(|e| invalid(format!("cannot read a row: {e}")))?;
            Ok(row.get_column_iter().map(|(_, field)| cell(field)).collect())
        })
        .collect::<Result<Vec<Vec<String>>, DataError>>()?;
    if rows.iter().any(|r: &Vec<String>| r.len() != headers.len()) {
        return Err(invalid("nested columns are not supported; use a flat table".into()));
    }
    Ok((headers, rows))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{load_csv, LoadOptions, TimestampStyle};

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    #[test]
    fn pandas_parquet_with_utc_timestamps_and_a_symbol_column() {
        // Written by pandas/pyarrow from the first 40 rows of shared/data/SUIUSDT.csv.
        let data = load_csv(
            &fixture("SUIUSDT-head.parquet"),
            &LoadOptions::columns(&["open", "close"]),
        )
        .unwrap();
        assert_eq!(data.series.len(), 1);
        let series = &data.series[0];
        assert_eq!(series.id.as_deref(), Some("SUIUSDT"));
        assert_eq!(series.len(), 40);
        assert_eq!(&series.column("close").unwrap()[..2], &[0.8438, 0.9062]);
        assert_eq!(data.style, TimestampStyle::Date);
    }

    #[test]
    fn pandas_parquet_with_naive_dates_and_capitalised_columns() {
        let data = load_csv(&fixture("GOOG-head.parquet"), &LoadOptions::columns(&["close"])).unwrap();
        let series = &data.series[0];
        assert_eq!(series.len(), 30);
        assert_eq!(series.column("close").unwrap()[0], 100.34);
        assert!(series.calendar.weekdays_only);
    }

    #[test]
    fn a_csv_renamed_to_parquet_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.parquet");
        std::fs::write(&path, "Date,Close\n2024-01-01,1\n").unwrap();
        let msg = load_csv(&path, &LoadOptions::columns(&["close"]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bars.parquet") && msg.contains("not a readable Parquet file"),
            "{msg}"
        );
    }
}
