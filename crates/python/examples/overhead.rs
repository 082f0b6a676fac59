//! The Rust side of the Python overhead figure in the README: the forecast `predict_df` makes
//! for every series of a long-format CSV (`item_id,timestamp,target`), through the library
//! alone (`predict` + `at_levels`), timed as `bench/python_overhead.py` times the Python call.
//!
//! ```sh
//! cargo run --release -p chronos2-python --example overhead -- MODEL_DIR series.csv 16 compiled 2 20
//! ```
//! Prints the median seconds of the runs after one warm-up.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chronos2::Chronos2Model;
use chronos2_data::{load_csv, LoadOptions};
use chronos2_engine::{Engine, Settings, SettingsFlags};
use chronos2_forecast::{at_levels, predict, PredictOptions, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, data, horizon, mode, threads, runs] = args.as_slice() else {
        return Err("usage: overhead MODEL_DIR DATA.csv HORIZON MODE THREADS RUNS".into());
    };
    let settings = Settings::resolve(&SettingsFlags {
        mode: Some(mode.clone()),
        threads: Some(threads.parse()?),
        ..SettingsFlags::default()
    })?;
    let engine = Engine::new(Arc::new(Chronos2Model::load(model)?), &settings)?;
    let series = load_csv(Path::new(data), &LoadOptions::columns(&["target"]))?.series;
    let tasks: Vec<Task> = series
        .iter()
        .map(|s| Task::univariate(s.columns[0].1.iter().map(|&v| v as f32).collect()))
        .collect();
    let options = PredictOptions::new(horizon.parse()?);
    let config = engine.model_config();
    let median = config.median_index().ok_or("the model has no 0.5 level")?;
    let mut times = Vec::new();
    for _ in 0..=runs.parse::<usize>()? {
        let started = Instant::now();
        let prediction = predict(&engine, &tasks, &options)?;
        let levels: Vec<_> = prediction
            .forecasts
            .iter()
            .map(|f| at_levels(f, &config.quantiles, &[0.1, 0.5, 0.9], median))
            .collect();
        assert_eq!(levels.len(), tasks.len());
        times.push(started.elapsed().as_secs_f64());
    }
    times.remove(0);
    times.sort_by(f64::total_cmp);
    println!("{:.6}", times[times.len() / 2]);
    Ok(())
}
