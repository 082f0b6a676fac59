//! `chronos2 forecast`: forecast every series of each data file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use chronos2_backtest::table::{count, Table};
use chronos2_forecast::{forecast_file, parse_quantile_levels, parse_targets, FileForecast, FileRequest};
use serde_json::{json, Map, Value};

use crate::common::{load_engine, EngineArgs, ModelArgs};
use crate::data_args::DataArgs;

/// Forecast every series of one or more data files and print the quantile forecasts.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    data: DataArgs,
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
    let targets = parse_targets(&args.data.target);
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
        load: args.data.load_options()?,
        targets,
    })
}

/// Runs the command: forecasts go to `out`, notes and warnings to stderr.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let request = request(args)?;
    let sources = args.data.sources(None)?;
    let settings = args.engine.settings()?;
    let loaded = load_engine(&args.model, &settings)?;
    let mut results = Vec::with_capacity(sources.len());
    for source in sources {
        let result = forecast_file(&loaded.engine, source, &request)?;
        let prefix = if args.data.data.len() > 1 {
            format!("{source}: ")
        } else {
            String::new()
        };
        for note in result.data.report.notes.iter().chain(&result.warnings) {
            crate::common::stderr_line(format_args!("note: {prefix}{note}"));
        }
        results.push(result);
    }
    match args.format {
        Format::Table => write_table(&results, out),
        Format::Csv => write_csv(&results, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &to_json(&results))?;
            writeln!(out)?;
            Ok(())
        }
    }
}

/// The hosted-endpoint convention: `{"predictions": [{item_id, start, target_name, timestamps,
/// mean, "<level>": [...]}]}` (`start` is the first forecast timestamp as the endpoint writes it,
/// `2024-01-07T00:00:00`; `timestamps` every one, as the file writes them).
pub fn to_json(results: &[FileForecast]) -> Value {
    let predictions: Vec<Value> = results
        .iter()
        .flat_map(|result| {
            result.forecasts.iter().map(|f| {
                let mut entry = Map::new();
                entry.insert("item_id".into(), json!(f.item_id));
                entry.insert("start".into(), json!(f.start));
                entry.insert("target_name".into(), json!(f.target_name));
                entry.insert("timestamps".into(), json!(f.timestamps));
                entry.insert(POINT_COLUMN.into(), json!(f.mean));
                for (level, values) in result.levels.iter().zip(&f.quantiles) {
                    entry.insert(level.label.clone(), json!(values));
                }
                Value::Object(entry)
            })
        })
        .collect();
    json!({ "predictions": predictions })
}

/// The point forecast's name in every output (the hosted endpoint's `mean`, which is the
/// median); the quantile levels are named as the user wrote them (`0.1`), everywhere.
const POINT_COLUMN: &str = "mean";

/// The id column's name: the input's (`symbol`), or `item_id` when the files differ or have none.
fn id_column_name(results: &[FileForecast]) -> String {
    let mut names = results.iter().map(|r| r.data.id_column.clone());
    let first = names.next().flatten();
    match first {
        Some(name) if names.all(|n| n.as_deref() == Some(name.as_str())) => name,
        _ => "item_id".into(),
    }
}

/// One row per forecast step, written by a CSV writer (ids and names quoted when needed).
fn write_csv(results: &[FileForecast], out: &mut dyn Write) -> Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec![
        id_column_name(results),
        "target_name".into(),
        "timestamp".into(),
        POINT_COLUMN.into(),
    ];
    if let Some(first) = results.first() {
        header.extend(first.levels.iter().map(|l| l.label.clone()));
    }
    writer.write_record(&header)?;
    for f in results.iter().flat_map(|r| &r.forecasts) {
        for (t, timestamp) in f.timestamps.iter().enumerate() {
            let mut row = vec![
                f.item_id.clone(),
                f.target_name.clone(),
                timestamp.clone(),
                f.mean[t].to_string(),
            ];
            row.extend(f.quantiles.iter().map(|q| q[t].to_string()));
            writer.write_record(&row)?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// A value with the precision of its column in the file (`1.08523` stays 5 decimals).
fn number(v: f32, decimals: u32) -> String {
    format!("{v:.*}", decimals as usize)
}

fn write_table(results: &[FileForecast], out: &mut dyn Write) -> Result<()> {
    for (i, (result, f)) in results
        .iter()
        .flat_map(|r| r.forecasts.iter().map(move |f| (r, f)))
        .enumerate()
    {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{} · {} · next {}",
            f.item_id,
            f.target_name,
            count(f.timestamps.len(), "bar", "bars")
        )?;
        let levels = result.levels.iter().map(|l| l.label.clone());
        let mut table = Table::new(["timestamp".to_string(), POINT_COLUMN.into()].into_iter().chain(levels));
        for (t, timestamp) in f.timestamps.iter().enumerate() {
            let mut row = vec![timestamp.clone(), number(f.mean[t], f.decimals)];
            row.extend(f.quantiles.iter().map(|q| number(q[t], f.decimals)));
            table.push(row);
        }
        write!(out, "{}", table.text(""))?;
    }
    Ok(())
}
