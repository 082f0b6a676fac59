//! The compiled engine against the eager pass and the reference, on every fixture case, both
//! default-init and re-randomised weights, every group layout, and the real-size check.
//! Rule: `max |compiled - x| <= 1e-5 * max(1, max |x|)` over each case's whole output.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput, RandomInit};
use chronos2_engine::{CompileMode, CompiledModel};
use safetensors::{Dtype, SafeTensors};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chronos2/tests/fixtures/reference")
}

/// Worst |a - b| as a fraction of 1e-5 * max(1, max|b|).
fn worst(a: &ModelOutput, b: &[f32]) -> f64 {
    assert_eq!(a.quantile_preds.len(), b.len());
    let allowed = 1e-5 * b.iter().fold(1.0f64, |m, v| m.max(v.abs() as f64));
    a.quantile_preds
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (*x as f64 - *y as f64).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f64::max)
        / allowed
}

/// (input, reference output) of a recorded case.
fn read_case(path: &Path) -> (String, ModelInput, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let v = st.tensor(name).unwrap();
        assert_eq!(v.dtype(), Dtype::F32);
        (
            v.shape().to_vec(),
            v.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        )
    };
    let ids = st.tensor("group_ids").unwrap();
    let group_ids: Vec<i64> = ids
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let (shape, context) = f32s("context");
    let mut input = ModelInput::new(context, shape[0])
        .unwrap()
        .with_group_ids(group_ids)
        .with_output_patches(meta["num_output_patches"].parse().unwrap());
    if st.names().contains(&&"future_covariates".to_string()) {
        let (shape, values) = f32s("future_covariates");
        input = input.with_future_covariates(values, shape[1]);
    }
    (meta["model"].clone(), input, f32s("quantile_preds").1)
}

fn run_cases(cases: &Path, model_dir: impl Fn(&str) -> PathBuf) -> Vec<(String, f64, f64)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut results = Vec::new();
    for path in paths {
        let (model, input, reference) = read_case(&path);
        let eager = Arc::new(Chronos2Model::load(model_dir(&model)).unwrap());
        let compiled = CompiledModel::new(eager.clone(), CompileMode::ReduceOverhead);
        let out = compiled.forward(&input).unwrap();
        assert!(
            !compiled.has_fallen_back(),
            "{}: fell back: {:?}",
            path.display(),
            compiled.stats().fallback_reason
        );
        let vs_eager = worst(&out, &eager.forward(&input).unwrap().quantile_preds);
        let vs_reference = worst(&out, &reference);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        eprintln!(
            "{name:<40} compiled vs eager {vs_eager:.3}, vs reference {vs_reference:.3} (of 1e-5 x max(1, max|x|))"
        );
        results.push((name, vs_eager, vs_reference));
    }
    results
}

#[test]
fn compiled_matches_eager_and_reference_on_every_fixture() {
    let dir = fixtures();
    let results = run_cases(&dir.join("cases"), |m| dir.join("models").join(m));
    assert!(results.len() >= 20);
    let failed: Vec<_> = results.iter().filter(|(_, e, r)| *e > 1.0 || *r > 1.0).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
#[ignore = "needs a real-size reference checkpoint; see tools/reference/README.md"]
fn compiled_matches_real_size_reference() {
    let dirs = std::env::var("CHRONOS2_REAL_REFERENCE").expect("set CHRONOS2_REAL_REFERENCE=DIR[:DIR...]");
    for dir in dirs.split(':').map(PathBuf::from) {
        let results = run_cases(&dir.join("cases"), |_| dir.clone());
        let failed: Vec<_> = results.iter().filter(|(_, e, _)| *e > 1.0).collect();
        assert!(failed.is_empty(), "{failed:?}");
    }
}

#[test]
fn every_group_layout_matches_eager() {
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 11, RandomInit::Rerandomized));
    let compiled = CompiledModel::new(eager.clone(), CompileMode::Default);
    let rows: Vec<Vec<f32>> = (0..7)
        .map(|r| {
            (0..40 + 9 * r)
                .map(|t| ((t * (r + 1)) as f32 * 0.1).sin() * (r + 1) as f32 + r as f32)
                .collect()
        })
        .collect();
    let layouts: [Vec<i64>; 5] = [
        vec![0, 1, 2, 3, 4, 5, 6],
        vec![0, 0, 0, 0, 0, 0, 0],
        vec![0, 1, 1, 2, 2, 2, 2],
        vec![9, 3, 9, 3, 7, 3, 9],
        vec![5, 5, 1, 2, 2, 3, 3],
    ];
    for (i, ids) in layouts.iter().enumerate() {
        for m in [1, 3] {
            let mut future = vec![f32::NAN; 7 * 20];
            future[20..30].iter_mut().enumerate().for_each(|(t, v)| *v = t as f32);
            let plain = ModelInput::from_rows(&rows)
                .unwrap()
                .with_group_ids(ids.clone())
                .with_output_patches(m);
            let with_cov = plain
                .clone()
                .with_future_covariates(future.clone(), 20)
                .with_output_patches(m.max(2));
            for input in [plain, with_cov] {
                let w = worst(
                    &compiled.forward(&input).unwrap(),
                    &eager.forward(&input).unwrap().quantile_preds,
                );
                assert!(w <= 1.0, "layout {i} ({ids:?}), M={m}: {w}");
            }
        }
    }
    assert!(!compiled.has_fallen_back());
    // 5 layouts x 2 M values x with/without covariates = 20 buckets; default mode keeps 4.
    let stats = compiled.stats();
    assert_eq!(stats.plans_built, 20);
    assert_eq!(stats.plans_cached, 4);
}

#[test]
fn same_bucket_never_replans_and_different_lengths_share_a_bucket() {
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 2, RandomInit::Default));
    let compiled = CompiledModel::new(eager, CompileMode::ReduceOverhead);
    let planning = compiled.warm_up(&[(1, 64, 16)]).unwrap();
    assert!(planning.as_secs_f64() < 5.0);
    assert_eq!(compiled.stats().plans_built, 1);
    // Lengths 49..=64 all make 4 patches: the same plan.
    for length in 49..=64 {
        let series: Vec<f32> = (0..length).map(|t| t as f32).collect();
        compiled.forward(&ModelInput::from_rows(&[series]).unwrap()).unwrap();
    }
    assert_eq!(compiled.stats().plans_built, 1);
    compiled
        .forward(&ModelInput::from_rows(&[vec![1.0; 65]]).unwrap())
        .unwrap();
    assert_eq!(compiled.stats().plans_built, 2);
}
