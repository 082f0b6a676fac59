//! `chronos2 forecast`: forecast every series of a data file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chronos2_backtest::report::csv_field;
use chronos2_backtest::table::Table;
use chronos2_data::{Duplicates, Gaps, IdColumn, LoadOptions};
use chronos2_forecast::{forecast_file, parse_quantile_levels, parse_targets, FileForecast, FileRequest};
use serde_json::{json, Map, Value};

use crate::common::{load_engine, EngineArgs, ModelArgs};

/// Forecast every series of a CSV file and print the quantile forecasts.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// CSV file of bars (one series, or long format with an id column).
    #[arg(long)]
    data: PathBuf,
    /// Target column(s): `close`, `open,high,low,close` or `ohlc`.
    #[arg(long, default_value = "close")]
    target: String,
    /// Numeric covariate columns of the data file (past values), comma-separated.
    #[arg(long)]
    covariates: Option<String>,
    /// CSV with the future values of known-future covariates (same id/timestamp columns,
    /// exactly --horizon rows per series at the forecast timestamps).
    #[arg(long)]
    future_data: Option<PathBuf>,
    /// Which covariates --future-data holds (each must be in --covariates).
    #[arg(long)]
    future_covariates: Option<String>,
    /// Forecast several targets as independent univariate series instead of one joint group.
    #[arg(long)]
    independent: bool,
    /// Id column of a long-format file; default: `item_id`, `symbol`, `id` or `ticker` if
    /// present; `none` = the file is one series.
    #[arg(long)]
    id_column: Option<String>,
    /// Timestamp column; default: `timestamp`, `date`, `datetime`, `time` or an unnamed first column.
    #[arg(long)]
    timestamp_column: Option<String>,
    /// Bars to forecast.
    #[arg(long, default_value_t = 16)]
    horizon: usize,
    /// Context bars per series (default: all, up to the model's context length).
    #[arg(long)]
    context: Option<usize>,
    /// Quantile levels, comma-separated; output keys keep your spelling.
    #[arg(long, default_value = "0.1,0.5,0.9")]
    quantiles: String,
    /// Rows per model call (a multivariate series is never split).
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Let all series of a batch inform each other (one group per batch).
    #[arg(long)]
    cross_learning: bool,
    /// Missing bars: `none` (forecast on the trading-day index) or `forward` (fill a full
    /// calendar by carrying the last bar forward, as the original system did).
    #[arg(long, default_value = "none")]
    fill: String,
    /// Keep the last of rows sharing a timestamp instead of refusing the file.
    #[arg(long)]
    keep_last: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Output formats.
#[derive(clap::ValueEnum, Clone, Copy)]
enum Format {
    /// One aligned table per forecast series.
    Table,
    /// One row per forecast step.
    Csv,
    /// `{"predictions": [...]}`, as the hosted endpoints answer.
    Json,
}

fn request(args: &Args) -> Result<FileRequest> {
    let gaps = Gaps::from_name(&args.fill)
        .with_context(|| format!("unknown --fill `{}`; expected `none` or `forward`", args.fill))?;
    let targets = parse_targets(&args.target);
    let list = |text: &Option<String>| -> Vec<String> {
        text.as_deref().map_or_else(Vec::new, |t| {
            t.split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
    };
    Ok(FileRequest {
        covariates: list(&args.covariates),
        future_data: args.future_data.clone(),
        future_covariates: list(&args.future_covariates),
        joint: !args.independent,
        horizon: args.horizon,
        context_length: args.context,
        quantiles: parse_quantile_levels(&args.quantiles)?,
        batch_size: args.batch_size,
        cross_learning: args.cross_learning,
        load: LoadOptions {
            columns: targets.clone(),
            timestamp_column: args.timestamp_column.clone(),
            id_column: IdColumn::from_choice(args.id_column.as_deref()),
            duplicates: Duplicates::keeping_last(args.keep_last),
            gaps,
        },
        targets,
    })
}

/// Runs the command: forecasts go to `out`, notes and warnings to stderr.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let request = request(args)?;
    let settings = args.engine.settings()?;
    let loaded = load_engine(&args.model, &settings)?;
    let result = forecast_file(&loaded.engine, &args.data, &request)?;
    for note in result.data.report.notes.iter().chain(&result.warnings) {
        crate::common::stderr_line(format_args!("note: {note}"));
    }
    match args.format {
        Format::Table => write_table(&result, out),
        Format::Csv => write_csv(&result, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &to_json(&result))?;
            writeln!(out)?;
            Ok(())
        }
    }
}

/// The hosted-endpoint convention: `{"predictions": [{item_id, target_name, timestamps, mean,
/// "<level>": [...]}]}`.
pub fn to_json(result: &FileForecast) -> Value {
    let predictions: Vec<Value> = result
        .forecasts
        .iter()
        .map(|f| {
            let mut entry = Map::new();
            entry.insert("item_id".into(), json!(f.item_id));
            entry.insert("target_name".into(), json!(f.target_name));
            entry.insert("timestamps".into(), json!(f.timestamps));
            entry.insert("mean".into(), json!(f.mean));
            for (level, values) in result.levels.iter().zip(&f.quantiles) {
                entry.insert(level.label.clone(), json!(values));
            }
            Value::Object(entry)
        })
        .collect();
    json!({ "predictions": predictions })
}

fn write_csv(result: &FileForecast, out: &mut dyn Write) -> Result<()> {
    let labels: Vec<&str> = result.levels.iter().map(|l| l.label.as_str()).collect();
    writeln!(out, "item_id,target_name,timestamp,mean,{}", labels.join(","))?;
    for f in &result.forecasts {
        for (t, timestamp) in f.timestamps.iter().enumerate() {
            let levels: Vec<String> = f.quantiles.iter().map(|q| q[t].to_string()).collect();
            writeln!(
                out,
                "{},{},{timestamp},{},{}",
                csv_field(&f.item_id),
                csv_field(&f.target_name),
                f.mean[t],
                levels.join(",")
            )?;
        }
    }
    Ok(())
}

/// A value with precision suited to its magnitude.
fn number(v: f32) -> String {
    match v.abs() {
        a if a >= 1000.0 => format!("{v:.2}"),
        a if a >= 1.0 => format!("{v:.4}"),
        _ => format!("{v:.6}"),
    }
}

fn write_table(result: &FileForecast, out: &mut dyn Write) -> Result<()> {
    for (i, f) in result.forecasts.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{} · {} · next {} bars",
            f.item_id,
            f.target_name,
            f.timestamps.len()
        )?;
        let levels = result.levels.iter().map(|l| format!("q{}", l.label));
        let mut table = Table::new(["timestamp".to_string(), "median".into()].into_iter().chain(levels));
        for (t, timestamp) in f.timestamps.iter().enumerate() {
            let mut row = vec![timestamp.clone(), number(f.mean[t])];
            row.extend(f.quantiles.iter().map(|q| number(q[t])));
            table.push(row);
        }
        write!(out, "{}", table.text(""))?;
    }
    Ok(())
}
