//! Files made the way vendors export them, each read with the right target, order,
//! step and time zone, or refused with advice that the test then follows.

use std::path::PathBuf;

use chronos2_data::{load_csv, Dataset, LoadOptions, ReadOptions, TimeUnit, TimestampStyle, Zone};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vendors")
        .join(name)
}

fn read(name: &str, options: &LoadOptions) -> Result<Dataset, String> {
    load_csv(&fixture(name), options).map_err(|e| e.to_string())
}

fn close() -> LoadOptions {
    LoadOptions::columns(&["close"])
}

fn times(data: &Dataset) -> Vec<String> {
    data.series[0].timestamps.iter().map(|&t| data.format_time(t)).collect()
}

#[test]
fn binance_klines_with_a_header_in_epoch_milliseconds() {
    let data = read("binance-BTCUSDT-1h-header.csv", &close()).unwrap();
    let series = &data.series[0];
    assert_eq!(series.calendar.step, 3600);
    assert_eq!(times(&data)[..2], ["2024-01-01 00:00:00", "2024-01-01 01:00:00"]);
    assert_eq!(series.column("close").unwrap()[0], 42273.57);
    assert_eq!(data.decimals, [2]);
    assert!(
        data.report.notes.iter().any(|n| n.contains("epoch ms")),
        "{:?}",
        data.report.notes
    );
}

#[test]
fn binance_klines_without_a_header() {
    let data = read(
        "binance-BTCUSDT-1h-noheader.csv",
        &LoadOptions::columns(&["open", "close"]),
    )
    .unwrap();
    assert_eq!(data.series[0].len(), 6);
    assert_eq!(data.series[0].column("open").unwrap()[0], 42283.58);
    assert!(data.report.notes.iter().any(|n| n.contains("Binance klines")));
    // Named columns work too, and are checked against the width of the file.
    let mut options = LoadOptions::columns(&["c"]);
    options.read = ReadOptions {
        no_header: true,
        column_names: "t,o,h,l,c,v,ct,qv,n,tb,tq,i".split(',').map(String::from).collect(),
        ..ReadOptions::default()
    };
    let named = read("binance-BTCUSDT-1h-noheader.csv", &options).unwrap();
    assert_eq!(
        named.series[0].column("c").unwrap(),
        data.series[0].column("close").unwrap()
    );
    options.read.column_names.truncate(5);
    let msg = read("binance-BTCUSDT-1h-noheader.csv", &options).unwrap_err();
    assert!(
        msg.contains("--columns gives 5 names but the file has 12 columns"),
        "{msg}"
    );
}

#[test]
fn binance_klines_in_microseconds_and_a_forced_unit() {
    let data = read("binance-BTCUSDT-1d-2025-us.csv", &close()).unwrap();
    assert_eq!(data.series[0].calendar.step, 86_400);
    assert_eq!(data.style, TimestampStyle::Date);
    assert_eq!(times(&data)[0], "2025-01-01");
    // The wrong unit by hand is refused, naming the cell and the units to try.
    let mut options = close();
    options.read.time_unit = Some(TimeUnit::Seconds);
    let msg = read("binance-BTCUSDT-1d-2025-us.csv", &options).unwrap_err();
    assert!(
        msg.contains("cannot read timestamp `1735689600000000`") && msg.contains("--time-unit us"),
        "{msg}"
    );
}

#[test]
fn investing_com_newest_first_with_thousands_and_suffixes() {
    let data = read(
        "investing-BTCUSD.csv",
        &LoadOptions::columns(&["close", "vol.", "change %"]),
    )
    .unwrap();
    let series = &data.series[0];
    // Newest first in the file, oldest first here; weekdays only, daily.
    assert_eq!(times(&data)[0], "2024-01-08");
    assert_eq!(series.calendar.step, 86_400);
    assert!(series.calendar.weekdays_only);
    assert_eq!(series.column("close").unwrap()[0], 45_879.6);
    assert_eq!(series.column("vol.").unwrap()[0], 10_450_000.0);
    assert_eq!(series.column("change %").unwrap()[0], -0.26);
    let notes = data.report.notes.join("; ");
    assert!(
        notes.contains("column `Vol.` writes numbers like `11.15M`: K/M/B"),
        "{notes}"
    );
    assert!(notes.contains("`0.54%`: percent"), "{notes}");
    assert!(
        notes.contains("newest-first") && notes.contains("%m/%d/%Y") && notes.contains("`Price` as the close"),
        "{notes}"
    );
}

#[test]
fn ambiguous_dates_are_refused_and_the_advice_works() {
    let msg = read("investing-ambiguous-dates.csv", &close()).unwrap_err();
    assert!(
        msg.contains("read both as %m/%d/%Y and as %d/%m/%Y") && msg.contains("pass `--date-format %m/%d/%Y`"),
        "{msg}"
    );
    let mut options = close();
    options.read.date_format = Some("%m/%d/%Y".into());
    let data = read("investing-ambiguous-dates.csv", &options).unwrap();
    assert_eq!(times(&data), ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]);
}

#[test]
fn metatrader_tabs_angle_brackets_and_a_separate_time_column() {
    let data = read("metatrader-EURUSD-H1.csv", &close()).unwrap();
    let series = &data.series[0];
    assert_eq!(series.len(), 8);
    assert_eq!(series.calendar.step, 3600);
    assert!(series.calendar.weekdays_only);
    assert_eq!(times(&data)[..2], ["2018-02-09 19:00:00", "2018-02-09 20:00:00"]);
    assert_eq!(data.format_iso(series.timestamps[0]), "2018-02-09T19:00:00");
    assert_eq!(data.decimals, [5]);
    // After Friday 23:00 comes Monday 00:00, never a Saturday.
    let future = series.calendar.future(*series.timestamps.last().unwrap(), 1);
    assert_eq!(data.format_time(future[0]), "2018-02-12 03:00:00");
    let notes = data.report.notes.join("; ");
    assert!(
        notes.contains("tab") && notes.contains("angle brackets") && notes.contains("`DATE` and `TIME` joined"),
        "{notes}"
    );
}

#[test]
fn the_date_column_alone_names_the_time_column_in_its_advice() {
    let mut options = close();
    options.timestamp_column = Some("date".into());
    let msg = read("metatrader-EURUSD-H1.csv", &options).unwrap_err();
    assert!(
        msg.contains("duplicate timestamp")
            && msg.contains("pass `--timestamp-column DATE,TIME`")
            && !msg.contains("--keep-last"),
        "{msg}"
    );
    options.timestamp_column = Some("DATE,TIME".into());
    assert_eq!(read("metatrader-EURUSD-H1.csv", &options).unwrap().series[0].len(), 8);
}

#[test]
fn yfinance_three_header_rows() {
    let data = read("yfinance-AAPL.csv", &close()).unwrap();
    let series = &data.series[0];
    assert_eq!(series.id.as_deref(), Some("AAPL"));
    assert_eq!(series.column("close").unwrap()[0], 184.73);
    assert_eq!(data.decimals, [2]);
    assert!(series.calendar.weekdays_only);
    assert_eq!(times(&data)[4], "2024-01-08");
}

#[test]
fn one_minute_bars_across_daylight_saving_keep_their_offset() {
    let data = read("btc-1min-dst-berlin.csv", &close()).unwrap();
    let series = &data.series[0];
    // 01:59+01:00 and 03:00+02:00 are one minute apart: no gap, no duplicate.
    assert_eq!(series.calendar.step, 60);
    assert_eq!(series.len(), 10);
    assert_eq!(data.zone, Some(Zone::Offset(7200)));
    let t = times(&data);
    assert_eq!(t[9], "2024-03-31 03:04:00+02:00");
    let future = series.calendar.future(*series.timestamps.last().unwrap(), 1);
    assert_eq!(data.format_time(future[0]), "2024-03-31 03:05:00+02:00");
    assert_eq!(data.decimals, [1]);
    assert_eq!(data.format_iso(future[0]), "2024-03-31T03:05:00+02:00");
    // --tz converts, to an offset or to a named zone with its daylight-saving rules.
    let mut options = close();
    options.read.tz = Zone::parse("UTC");
    let utc = read("btc-1min-dst-berlin.csv", &options).unwrap();
    assert_eq!(times(&utc)[9], "2024-03-31 01:04:00+00:00");
    options.read.tz = Zone::parse("Europe/Berlin");
    let berlin = read("btc-1min-dst-berlin.csv", &options).unwrap();
    assert_eq!(
        times(&berlin)[4..6],
        ["2024-03-31 01:59:00+01:00", "2024-03-31 03:00:00+02:00"]
    );
}
