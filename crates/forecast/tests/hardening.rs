//! Hardening for the pipeline: the input rule applies before the engine, an
//! engine answer that is not finite is an error naming the likely cause (never a silent NaN
//! forecast), and a horizon that cannot fit is refused naming the memory.

use chronos2::{Chronos2Model, Config, Error, ForwardPass, ModelInput, ModelOutput, RandomInit};
use chronos2_forecast::{max_prediction_length, predict, PredictOptions, Task};

/// The tiny model, with every forecast replaced by NaN (as NaN weights would give).
struct NanModel(Chronos2Model);

impl ForwardPass for NanModel {
    fn config(&self) -> &Config {
        self.0.config()
    }
    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, Error> {
        let mut out = self.0.forward(input)?;
        out.quantile_preds.fill(f32::NAN);
        Ok(out)
    }
}

/// Counts forward passes, to show refused input never reaches the engine.
struct Counting(Chronos2Model, std::sync::atomic::AtomicUsize);

impl ForwardPass for Counting {
    fn config(&self) -> &Config {
        self.0.config()
    }
    fn forward(&self, input: &ModelInput) -> Result<ModelOutput, Error> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.forward(input)
    }
}

fn tiny() -> Chronos2Model {
    Chronos2Model::random(Config::tiny(), 0, RandomInit::Default)
}

fn series() -> Vec<f32> {
    (0..40).map(|t| 10.0 + (t as f32 * 0.3).sin()).collect()
}

#[test]
fn non_finite_forecasts_are_an_error_naming_the_likely_cause() {
    let err = predict(
        &NanModel(tiny()),
        &[Task::univariate(series())],
        &PredictOptions::new(4),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("non-finite forecasts for task 0") && err.contains("chronos2 inspect"),
        "{err}"
    );
}

#[test]
fn infinite_input_is_refused_before_the_engine() {
    let model = Counting(tiny(), 0.into());
    let mut values = series();
    values[7] = f32::INFINITY;
    let tasks = [Task::univariate(series()), Task::univariate(values)];
    let err = predict(&model, &tasks, &PredictOptions::new(4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("task 1: target row 0 has inf at position 7"), "{err}");
    assert_eq!(model.1.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_horizon_that_cannot_fit_is_refused_naming_the_memory() {
    let model = tiny();
    let limit = max_prediction_length(model.config());
    let err = predict(
        &model,
        &[Task::univariate(series())],
        &PredictOptions::new(1_000_000_000),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("prediction length 1000000000 is over the limit of") && err.contains(&limit.to_string()),
        "{err}"
    );
    assert!(err.contains("84.0 GB"), "{err}");
}
