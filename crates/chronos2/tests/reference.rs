//! Parity with the Python reference (chronos-forecasting 2.3.2): every case recorded by
//! `tools/reference/generate_fixtures.py` must match within
//! `max |rust - ref| <= 1e-5 * max(1, max |ref|)` over the case's whole output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chronos2::{Chronos2Model, ModelInput};
use safetensors::{Dtype, SafeTensors};

/// Relative tolerance of the fixture rule.
const TOLERANCE: f64 = 1e-5;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference")
}

/// One recorded reference call.
struct Case {
    name: String,
    model: String,
    tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
    num_output_patches: usize,
}

impl Case {
    fn read(path: &Path) -> Case {
        let bytes = std::fs::read(path).unwrap();
        let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = metadata.metadata().clone().unwrap_or_default();
        let parsed = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = parsed
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let data: Vec<f64> = match view.dtype() {
                    Dtype::F32 => view
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                        .collect(),
                    Dtype::I64 => view
                        .data()
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                        .collect(),
                    other => panic!("{}: tensor {name} has unexpected dtype {other:?}", path.display()),
                };
                (name, (view.shape().to_vec(), data))
            })
            .collect();
        Case {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            model: meta["model"].clone(),
            num_output_patches: meta["num_output_patches"].parse().unwrap(),
            tensors,
        }
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        self.tensors[name].1.iter().map(|&v| v as f32).collect()
    }

    fn input(&self) -> ModelInput {
        let (shape, _) = &self.tensors["context"];
        let mut input = ModelInput::new(self.f32s("context"), shape[0])
            .unwrap()
            .with_group_ids(self.tensors["group_ids"].1.iter().map(|&v| v as i64).collect())
            .with_output_patches(self.num_output_patches);
        if let Some((shape, _)) = self.tensors.get("future_covariates") {
            input = input.with_future_covariates(self.f32s("future_covariates"), shape[1]);
        }
        input
    }
}

/// Compares `actual` with `expected` under the fixture rule; returns the error as a fraction
/// of the allowed error (<= 1 passes) and prints the first mismatches, llm.c style.
fn check(label: &str, actual: &[f32], expected: &[f64]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "{label}: length differs");
    let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let allowed = TOLERANCE * scale;
    let mut worst = 0.0f64;
    let mut shown = 0;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a as f64 - e).abs();
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        if diff > allowed && shown < 5 {
            eprintln!("  {label}[{i}]: rust {a} vs reference {e} (|diff| {diff:.3e} > {allowed:.3e})");
            shown += 1;
        }
        worst = worst.max(diff);
    }
    worst / allowed
}

/// Runs every case file in `cases_dir` against the model directories named by `model_dir`.
/// Returns (case name, worst fraction of tolerance) per case.
fn run_cases(cases_dir: &Path, model_dir: impl Fn(&str) -> PathBuf) -> Vec<(String, f64)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", cases_dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    let mut models: HashMap<String, Chronos2Model> = HashMap::new();
    let mut results = Vec::new();
    for path in paths {
        let case = Case::read(&path);
        let model = models
            .entry(case.model.clone())
            .or_insert_with(|| Chronos2Model::load(model_dir(&case.model)).unwrap());
        let input = case.input();
        let output = model.forward(&input).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut worst = check(
            &format!("{} quantile_preds", case.name),
            &output.quantile_preds,
            &case.tensors["quantile_preds"].1,
        );
        worst = worst.max(check(
            &format!("{} loc", case.name),
            &output.loc,
            &case.tensors["loc"].1,
        ));
        worst = worst.max(check(
            &format!("{} scale", case.name),
            &output.scale,
            &case.tensors["scale"].1,
        ));
        if let Some((_, expected)) = case.tensors.get("encoder_output") {
            let encoded = model.encode(&input).unwrap();
            worst = worst.max(check(
                &format!("{} encoder_output", case.name),
                &encoded.hidden,
                expected,
            ));
        }
        eprintln!(
            "{:<45} worst error = {worst:.3} of the allowed 1e-5 x max(1, max|ref|)",
            case.name
        );
        results.push((case.name, worst));
    }
    results
}

/// Fails unless every case's worst error is within `limit` times the 1e-5 allowance
/// (`check` maps NaN to infinity, so a NaN output fails too).
fn assert_within(results: &[(String, f64)], limit: f64) {
    let failed: Vec<_> = results.iter().filter(|(_, w)| *w > limit).collect();
    assert!(
        failed.is_empty(),
        "cases outside {limit} x 1e-5 x max(1, max|ref|): {failed:?}"
    );
}

#[test]
fn eager_forward_matches_reference_fixtures() {
    let dir = fixture_dir();
    let results = run_cases(&dir.join("cases"), |model| dir.join("models").join(model));
    // Both models (default init and O(1) re-randomised) and every input kind are recorded.
    assert!(results.len() >= 20, "only {} fixture cases found", results.len());
    assert!(results.iter().any(|(n, _)| n.starts_with("tiny-default__")));
    assert!(results.iter().any(|(n, _)| n.starts_with("tiny-random__")));
    assert_within(&results, 1.0);
}

/// The real-size check: `CHRONOS2_REAL_REFERENCE=DIR[:DIR...]`, each DIR written by
/// `tools/reference/real_size_check.py` (a checkpoint plus `cases/`). Too large to commit.
#[test]
#[ignore = "needs a real-size reference checkpoint; see tools/reference/README.md"]
fn eager_forward_matches_real_size_reference() {
    let dirs = std::env::var("CHRONOS2_REAL_REFERENCE").expect("set CHRONOS2_REAL_REFERENCE=DIR[:DIR...]");
    for dir in dirs.split(':').map(PathBuf::from) {
        let results = run_cases(&dir.join("cases"), |_| dir.clone());
        assert!(results.len() >= 3);
        assert_within(&results, 10.0);
    }
}
