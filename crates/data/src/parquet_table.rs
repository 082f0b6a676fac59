//! Reading a flat Parquet table into the same cells a CSV gives (feature `parquet`).
//!
//! Numbers are written back as their shortest round-trip decimals, strings as they are, nulls
//! as empty cells, dates as `YYYY-MM-DD` and timestamps as `YYYY-MM-DD HH:MM:SS` (the instant
//! as stored, UTC; date only when the time is midnight), so the CSV checks and messages apply.

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
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

/// The column names of the Parquet file at `path` and its rows of cells, streamed.
pub(crate) fn read(path: &Path) -> Result<(Vec<String>, crate::table::ParquetRows), DataError> {
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
    let width = headers.len();
    let owned = path.to_path_buf();
    let rows = RowIter::from_file_into(Box::new(reader)).map(move |row| {
        let invalid = |message: String| DataError::Invalid {
            path: owned.clone(),
            message,
        };
        let row = row.map_err(|e| invalid(format!("cannot read a row: {e}")))?;
        let cells: Vec<String> = row.get_column_iter().map(|(_, field)| cell(field)).collect();
        if cells.len() != width {
            return Err(invalid("nested columns are not supported; use a flat table".into()));
        }
        Ok(cells)
    });
    Ok((headers, Box::new(rows)))
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
        // Written by pandas/pyarrow from the first 40 rows of data/SUIUSDT.csv.
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

    /// Pandas writes an unnamed DatetimeIndex as `__index_level_0__`, in epoch
    /// nanoseconds (TIMESTAMP(NANOS)); written here the same way.
    #[test]
    fn a_dataframe_with_a_datetime_index() {
        use std::sync::Arc;

        use parquet::data_type::{DoubleType, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.parquet");
        let schema = parse_message_type(
            "message schema { REQUIRED DOUBLE Close; REQUIRED INT64 __index_level_0__ (TIMESTAMP(NANOS,false)); }",
        )
        .unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer =
            SerializedFileWriter::new(file, Arc::new(schema), Arc::new(WriterProperties::builder().build())).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let hour = 3_600_000_000_000_i64;
        let start = 1_704_067_200_000_000_000_i64;
        let mut column = group.next_column().unwrap().unwrap();
        column
            .typed::<DoubleType>()
            .write_batch(&[1.25, 1.5, 1.75, 2.0], None, None)
            .unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        let times: Vec<i64> = (0..4).map(|i| start + i * hour).collect();
        column.typed::<Int64Type>().write_batch(&times, None, None).unwrap();
        column.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();

        let data = load_csv(&path, &LoadOptions::columns(&["close"])).unwrap();
        let series = &data.series[0];
        assert_eq!(series.column("close").unwrap(), &[1.25, 1.5, 1.75, 2.0]);
        assert_eq!(series.calendar.step, 3600);
        assert_eq!(data.format_time(series.timestamps[1]), "2024-01-01 01:00:00");
        assert!(data.report.notes.iter().any(|n| n.contains("__index_level_0__")));
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
