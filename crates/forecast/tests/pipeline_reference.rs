//! Parity of the forecast pipeline with the reference `Chronos2Pipeline.predict` and
//! `predict_quantiles`, on cases recorded by `tools/reference/generate_pipeline_fixtures.py`.
//! Rule: `max |rust - ref| <= 1e-5 * max(1, max |ref|)` over each case's whole output.

use std::path::{Path, PathBuf};

use chronos2::Chronos2Model;
use chronos2_forecast::{at_levels, predict, Covariate, CovariateValues, PredictOptions, Task};
use chronos2_testkit::{check, fixture_dir};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline")
}

fn model_dir(name: &str) -> PathBuf {
    fixture_dir().join("models").join(name)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().map_or(f32::NAN, |f| f as f32))
        .collect()
}

/// Flattens nested JSON arrays of numbers (null = NaN) into f64.
fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| flatten(x, out)),
        Value::Null => out.push(f64::NAN),
        x => out.push(x.as_f64().unwrap()),
    }
}

fn task(v: &Value) -> Task {
    let targets = v["targets"].as_array().unwrap().iter().map(floats).collect();
    let covariates = v["covariates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let categorical = c["kind"] == "categorical";
            let read = |x: &Value| {
                if categorical {
                    CovariateValues::Categorical(
                        x.as_array()
                            .unwrap()
                            .iter()
                            .map(|s| s.as_str().map(String::from))
                            .collect(),
                    )
                } else {
                    CovariateValues::Numeric(floats(x))
                }
            };
            Covariate {
                name: c["name"].as_str().unwrap().to_string(),
                past: read(&c["past"]),
                future: (!c["future"].is_null()).then(|| read(&c["future"])),
            }
        })
        .collect();
    Task { targets, covariates }
}

fn options(v: &Value) -> PredictOptions {
    let mut options = PredictOptions::new(v["prediction_length"].as_u64().unwrap() as usize);
    options.batch_size = v["batch_size"].as_u64().unwrap() as usize;
    options.context_length = v["context_length"].as_u64().map(|x| x as usize);
    options.cross_learning = v["cross_learning"].as_bool().unwrap();
    options.max_output_patches = v["max_output_patches"].as_u64().map(|x| x as usize);
    options
}

#[test]
fn pipeline_matches_reference_predict() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.file_stem().unwrap().to_string_lossy().starts_with("predict_df")
        })
        .collect();
    paths.sort();
    assert!(paths.len() >= 13, "only {} pipeline cases", paths.len());
    let mut failures = Vec::new();
    for path in paths {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let model = Chronos2Model::load(model_dir(case["model"].as_str().unwrap())).unwrap();
        let tasks: Vec<Task> = case["tasks"].as_array().unwrap().iter().map(task).collect();
        let prediction = predict(&model, &tasks, &options(&case["options"])).unwrap();
        let actual: Vec<f32> = prediction.forecasts.iter().flat_map(|f| f.values.clone()).collect();
        let mut expected = Vec::new();
        flatten(&case["expected"]["predict"], &mut expected);
        let mut worst = check(&format!("{name} predict"), &actual, &expected);
        if let Some(levels) = case.get("levels") {
            let levels = floats(levels);
            let config = model.config();
            let median = config.median_index().unwrap();
            let read: Vec<_> = prediction
                .forecasts
                .iter()
                .map(|f| at_levels(f, &config.quantiles, &levels, median))
                .collect();
            let mut expected = Vec::new();
            flatten(&case["expected"]["quantiles"], &mut expected);
            let actual: Vec<f32> = read.iter().flat_map(|r| r.quantiles.clone()).collect();
            worst = worst.max(check(&format!("{name} quantiles"), &actual, &expected));
            let mut expected = Vec::new();
            flatten(&case["expected"]["mean"], &mut expected);
            let actual: Vec<f32> = read.iter().flat_map(|r| r.mean.clone()).collect();
            worst = worst.max(check(&format!("{name} mean"), &actual, &expected));
        }
        eprintln!(
            "{name:<40} worst error = {worst:.3} of the allowed 1e-5 x max(1, max|ref|), {} model calls",
            prediction.model_calls
        );
        if worst > 1.0 {
            failures.push((name, worst));
        }
    }
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}

#[test]
fn batch_overshoot_makes_two_calls_and_long_horizon_warns() {
    let model = Chronos2Model::load(model_dir("tiny-random")).unwrap();
    let tasks: Vec<Task> = (0..3)
        .map(|_| Task::multivariate(vec![vec![1.0, 2.0, 3.0, 2.5]; 4]))
        .collect();
    let mut options = PredictOptions::new(16);
    options.batch_size = 6;
    let prediction = predict(&model, &tasks, &options).unwrap();
    assert_eq!(prediction.model_calls, 2);
    assert!(prediction.warnings.is_empty());
    let long = predict(&model, &tasks[..1], &PredictOptions::new(60)).unwrap();
    assert!(
        long.warnings[0].contains("exceeds the model's 48 steps"),
        "{:?}",
        long.warnings
    );
    let mut strict = PredictOptions::new(60);
    strict.limit_prediction_length = true;
    assert!(predict(&model, &tasks[..1], &strict).is_err());
    assert!(predict(&model, &tasks[..1], &PredictOptions::new(0))
        .unwrap_err()
        .to_string()
        .contains("at least 1"));
}

#[test]
fn results_do_not_depend_on_task_order_within_separate_batches() {
    // With batch_size 1 every task is its own batch: order changes nothing, bit for bit.
    let model = Chronos2Model::load(model_dir("tiny-default")).unwrap();
    let a = Task::univariate((0..50).map(|t| (t as f32).sin() + 5.0).collect());
    let b = Task::univariate((0..70).map(|t| (t as f32 * 0.3).cos() * 2.0).collect());
    let mut options = PredictOptions::new(20);
    options.batch_size = 1;
    let ab = predict(&model, &[a.clone(), b.clone()], &options).unwrap();
    let ba = predict(&model, &[b, a], &options).unwrap();
    assert_eq!(ab.forecasts[0], ba.forecasts[1]);
    assert_eq!(ab.forecasts[1], ba.forecasts[0]);
}

/// Reads a small CSV fixture into (header, rows of cells).
fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (
        header,
        lines.map(|l| l.split(',').map(String::from).collect()).collect(),
    )
}

#[test]
fn covariates_match_reference_predict_df() {
    // predict_df: every non-id, non-timestamp, non-target column is a past covariate; those
    // also in future_df are known-future. Items in first-appearance order, rows sorted.
    let (header, rows) = read_csv("predict_df_context.csv");
    let (future_header, future_rows) = read_csv("predict_df_future.csv");
    let col = |h: &[String], name: &str| h.iter().position(|c| c == name).unwrap();
    let items = ["AAA", "BBB"];
    let numbers = |rows: &[Vec<String>], item: &str, c: usize| -> Vec<f32> {
        rows.iter()
            .filter(|r| r[0] == item)
            .map(|r| r[c].parse().unwrap())
            .collect()
    };
    let tasks: Vec<Task> = items
        .iter()
        .map(|item| {
            Task::univariate(numbers(&rows, item, col(&header, "target")))
                .with_covariate(Covariate {
                    name: "promo".into(),
                    past: CovariateValues::Numeric(numbers(&rows, item, col(&header, "promo"))),
                    future: Some(CovariateValues::Numeric(numbers(
                        &future_rows,
                        item,
                        col(&future_header, "promo"),
                    ))),
                })
                .with_covariate(Covariate {
                    name: "volume".into(),
                    past: CovariateValues::Numeric(numbers(&rows, item, col(&header, "volume"))),
                    future: None,
                })
        })
        .collect();
    let model = Chronos2Model::load(model_dir("tiny-random")).unwrap();
    let prediction = predict(&model, &tasks, &PredictOptions::new(8)).unwrap();
    let config = model.config();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("predict_df.json")).unwrap()).unwrap();
    let mut actual = Vec::new();
    let mut reference = Vec::new();
    for (i, row) in expected["rows"].as_array().unwrap().iter().enumerate() {
        let read = at_levels(&prediction.forecasts[i / 8], &config.quantiles, &[0.1, 0.5, 0.9], 10);
        actual.push(read.median(0)[i % 8]);
        reference.push(row["predictions"].as_f64().unwrap());
        for (l, key) in ["0.1", "0.5", "0.9"].iter().enumerate() {
            actual.push(read.series(0, l)[i % 8]);
            reference.push(row[*key].as_f64().unwrap());
        }
    }
    let worst = check("predict_df covariates", &actual, &reference);
    eprintln!("predict_df with covariates: worst error = {worst:.3} of the allowance");
    assert!(worst <= 1.0);
}
