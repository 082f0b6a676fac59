//! A bounded property test (fuzz target) of the CSV reader. Whatever the bytes,
//! reading returns a dataset or a clear error, never a panic; a dataset it returns is
//! consistent (one timestamp per value, strictly increasing timestamps).

use chronos2_data::{DataSource, Dataset, Duplicates, Gaps, IdColumn, LoadOptions};
use proptest::prelude::*;

fn options(gaps: Gaps, keep_last: bool) -> LoadOptions {
    LoadOptions {
        columns: vec!["close".into()],
        timestamp_column: None,
        id_column: IdColumn::Auto,
        duplicates: if keep_last {
            Duplicates::KeepLast
        } else {
            Duplicates::Error
        },
        gaps,
        ..LoadOptions::default()
    }
}

fn read(bytes: &[u8], options: &LoadOptions) -> Result<Dataset, String> {
    DataSource::Bundled {
        name: "fuzz.csv",
        bytes,
    }
    .load(options)
    .map_err(|e| e.to_string())
}

fn check(dataset: &Dataset) -> Result<(), TestCaseError> {
    for series in &dataset.series {
        prop_assert!(series.timestamps.windows(2).all(|w| w[0] < w[1]));
        for (_, values) in &series.columns {
            prop_assert_eq!(values.len(), series.timestamps.len());
        }
    }
    Ok(())
}

/// A cell: a number, a special value, text, quotes, separators or nothing.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1e6f64..1e6).prop_map(|v| v.to_string()),
        Just(String::new()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e308".to_string()),
        Just("1e999".to_string()),
        Just("\"1,5\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"unterminated".to_string()),
        "[a-z0-9 ,;\"\t.-]{0,8}",
    ]
}

/// A timestamp: mostly dates of 2020-2021 in several spellings, sometimes garbage.
fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        (2020i32..2022, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (2020i32..2022, 1u32..13, 1u32..29, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("{y}-{m:02}-{d:02}T{h:02}:00:00Z")),
        (1_577_836_800i64..1_640_995_200).prop_map(|t| t.to_string()),
        Just(String::new()),
        Just("2020-02-30".to_string()),
        "[0-9a-zA-Z :/+-]{0,12}",
    ]
}

/// A day in 2020-2021 (forward filling stays within ~730 bars).
fn day() -> impl Strategy<Value = String> {
    (2020i32..2022, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

/// A CSV table whose rows start with `timestamp` and hold hostile cells.
fn table(stamp: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just("date,close".to_string()),
        Just("Date,Open,High,Low,Close".to_string()),
        Just("timestamp,id,close".to_string()),
        Just(",close".to_string()),
        Just("close".to_string()),
        Just("date,close,close".to_string()),
        "[a-z,\"]{0,16}",
    ];
    let row = (stamp, proptest::collection::vec(cell(), 0..6))
        .prop_map(|(t, cells)| std::iter::once(t).chain(cells).collect::<Vec<_>>().join(","));
    (header, proptest::collection::vec(row, 0..40), any::<bool>()).prop_map(|(h, rows, crlf)| {
        let newline = if crlf { "\r\n" } else { "\n" };
        std::iter::once(h).chain(rows).collect::<Vec<_>>().join(newline)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes (not even UTF-8): an error or a consistent dataset, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(dataset) = read(&bytes, &options(Gaps::TradingDays, false)) {
            check(&dataset)?;
        }
    }

    /// CSV-shaped tables with hostile cells, headers and timestamps.
    #[test]
    fn hostile_tables_never_panic(text in table(timestamp()), keep_last in any::<bool>()) {
        if let Ok(dataset) = read(text.as_bytes(), &options(Gaps::TradingDays, keep_last)) {
            check(&dataset)?;
        }
    }

    /// The same, forward-filled to a full calendar (daily dates of two years, so the filled
    /// span stays small).
    #[test]
    fn hostile_tables_forward_filled_never_panic(text in table(day()), keep_last in any::<bool>()) {
        if let Ok(dataset) = read(text.as_bytes(), &options(Gaps::ForwardFill, keep_last)) {
            check(&dataset)?;
        }
    }
}
