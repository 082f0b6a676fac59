//! The CUDA executor against the CPU eager executor. Every test that needs a GPU
//! is skipped with a one-line reason where none is usable (no driver, no cuBLAS/NVRTC, no
//! device); the fallback test runs everywhere.
//!
//! Rules: f32 within `1e-5 · max(1, max |x|)` of CPU eager over each call's whole output
//! (`chronos2_testkit::check`); bf16 by the 2 % MAE rule of `chronos2 compare`.

use std::path::Path;
use std::sync::Arc;

use chronos2::encoder::Optimizations;
use chronos2::executor::Precision;
use chronos2::{Chronos2Model, Config, ModelInput, RandomInit};
use chronos2_cuda::{missing_library, CudaModel, CudaOptions, Gpu};
use chronos2_kernels::pool::Pool;
use chronos2_testkit::{assert_within, check, fixture_dir, ReferenceCase};

fn pool() -> Arc<Pool> {
    Arc::new(Pool::new(std::thread::available_parallelism().map_or(2, usize::from)))
}

/// Whether GPU 0 can be opened; prints why not.
fn gpu_present() -> bool {
    if let Some(library) = missing_library() {
        eprintln!("skipped: {library} cannot be loaded (no GPU setup here)");
        return false;
    }
    match Gpu::open(0, Config::tiny().d_kv) {
        Ok(gpu) => {
            eprintln!("GPU: {}", gpu.name());
            true
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn options(graphs: bool, precision: Precision) -> CudaOptions {
    CudaOptions {
        graphs,
        precision,
        ..CudaOptions::default()
    }
}

/// `model` on the GPU (graphs or not) and on the CPU for `input`: the worst error as a
/// fraction of the allowance.
fn against_eager(label: &str, gpu: &CudaModel, eager: &Chronos2Model, input: &ModelInput) -> f64 {
    let out = run(gpu, input);
    assert!(
        !gpu.has_fallen_back(),
        "{label}: fell back: {:?}",
        gpu.stats().fallback_reason
    );
    check(label, &out, &eager.forward(input).unwrap().quantile_preds)
}

/// The quantile forecasts of `model` for `input`.
fn run(model: &CudaModel, input: &ModelInput) -> Vec<f32> {
    let mut out = chronos2::ModelOutput::empty();
    model.forward_into(input, &mut out).unwrap();
    out.quantile_preds
}

#[test]
fn fixtures_match_cpu_eager_in_f32_with_and_without_graphs() {
    if !gpu_present() {
        return;
    }
    let dir = fixture_dir();
    for graphs in [true, false] {
        let mut results = Vec::new();
        for case in ReferenceCase::all_in(&dir.join("cases")) {
            let eager = Arc::new(Chronos2Model::load(dir.join("models").join(&case.model)).unwrap());
            let gpu = CudaModel::new(eager.clone(), options(graphs, Precision::Float32), pool());
            let input = case.input();
            let label = format!("{} (graphs {graphs})", case.name);
            let worst = against_eager(&label, &gpu, &eager, &input);
            // Twice: the second call of a bucket replays its graph.
            let again = against_eager(&label, &gpu, &eager, &input);
            let reference = check(&label, &run(&gpu, &input), case.expected("quantile_preds").unwrap());
            eprintln!("{label:<50} vs eager {worst:.3} / {again:.3}, vs reference {reference:.3}");
            results.push((label, worst.max(again).max(reference)));
        }
        assert!(results.len() >= 20);
        assert_within(&results, 1.0);
    }
}

#[test]
fn every_group_layout_and_covariates_match_cpu_eager() {
    if !gpu_present() {
        return;
    }
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 11, RandomInit::Rerandomized));
    for optimizations in [Optimizations::ALL, Optimizations::NONE] {
        let gpu = CudaModel::new(
            eager.clone(),
            CudaOptions {
                optimizations,
                ..CudaOptions::default()
            },
            pool(),
        );
        let rows: Vec<Vec<f32>> = (0..7)
            .map(|r| {
                (0..40 + 9 * r)
                    .map(|t| ((t * (r + 1)) as f32 * 0.1).sin() * (r + 1) as f32 + r as f32)
                    .collect()
            })
            .collect();
        let layouts: [Vec<i64>; 4] = [
            vec![0, 1, 2, 3, 4, 5, 6],
            vec![0, 0, 0, 0, 0, 0, 0],
            vec![9, 3, 9, 3, 7, 3, 9],
            vec![5, 5, 1, 2, 2, 3, 3],
        ];
        for ids in &layouts {
            let mut future = vec![f32::NAN; 7 * 20];
            future[20..30].iter_mut().enumerate().for_each(|(t, v)| *v = t as f32);
            let plain = ModelInput::from_rows(&rows).unwrap().with_group_ids(ids.clone());
            let with_cov = plain.clone().with_future_covariates(future, 20).with_output_patches(2);
            for input in [plain, with_cov] {
                let label = format!("layout {ids:?} {optimizations:?}");
                let worst = against_eager(&label, &gpu, &eager, &input);
                assert!(worst <= 1.0, "{label}: {worst}");
            }
        }
    }
}

#[test]
fn real_size_random_checkpoints_match_cpu_eager() {
    if !gpu_present() {
        return;
    }
    let rows: Vec<Vec<f32>> = (0..8)
        .map(|r| {
            (0..512)
                .map(|t| 100.0 + 10.0 * ((t + 7 * r) as f32 * 0.05).sin() + r as f32)
                .collect()
        })
        .collect();
    let singles = ModelInput::from_rows(&rows).unwrap().with_output_patches(1);
    let grouped = ModelInput::from_rows(&rows)
        .unwrap()
        .with_group_ids(vec![0, 0, 1, 1, 2, 3, 3, 3])
        .with_output_patches(4);
    // Default initialisation and O(1) re-randomised weights (every rounding amplified), as
    // the CPU executors are checked.
    for init in [RandomInit::Default, RandomInit::Rerandomized] {
        let eager = Arc::new(Chronos2Model::random(Config::chronos2(), 0, init));
        let gpu = CudaModel::new(eager.clone(), CudaOptions::default(), pool());
        for (label, input) in [("8 singletons h16", &singles), ("groups h64", &grouped)] {
            let label = format!("{init:?} {label}");
            let worst = against_eager(&label, &gpu, &eager, input);
            eprintln!("real-size {label}: {worst:.3} of the 1e-5 rule");
            assert!(worst <= 1.0, "{label}: {worst}");
        }
    }
}

/// Closing prices of `data/BTCUSD.csv` (the repository's daily bars).
fn btc_closes() -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/BTCUSD.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(4)?.parse().ok())
        .collect()
}

/// MAE of the median forecast over 24 walk-forward windows (context 256, horizon 16), as one
/// batch.
fn median_mae(model: &dyn chronos2::ForwardPass, closes: &[f32]) -> f64 {
    let (context, horizon, windows) = (256, 16, 24);
    let last = closes.len() - horizon;
    let origins: Vec<usize> = (0..windows).map(|w| last - w * 37).collect();
    let rows: Vec<Vec<f32>> = origins.iter().map(|&o| closes[o - context..o].to_vec()).collect();
    let input = ModelInput::from_rows(&rows).unwrap().with_output_patches(1);
    let out = model.forward(&input).unwrap();
    let median = model.config().median_index().unwrap();
    let mut sum = 0.0;
    for (row, &origin) in origins.iter().enumerate() {
        for (step, &forecast) in out.series(row, median).iter().enumerate().take(horizon) {
            sum += (f64::from(forecast) - f64::from(closes[origin + step])).abs();
        }
    }
    sum / (windows * horizon) as f64
}

#[test]
fn bf16_passes_the_two_percent_mae_rule() {
    if !gpu_present() {
        return;
    }
    let closes = btc_closes();
    let model = Arc::new(chronos2_hub::builtin().unwrap());
    let f32_gpu = CudaModel::new(model.clone(), CudaOptions::default(), pool());
    let bf16_gpu = CudaModel::new(model.clone(), options(true, Precision::BFloat16), pool());
    let (mae_f32, mae_bf16) = (median_mae(&f32_gpu, &closes), median_mae(&bf16_gpu, &closes));
    let mae_cpu = median_mae(model.as_ref(), &closes);
    assert!(!f32_gpu.has_fallen_back() && !bf16_gpu.has_fallen_back());
    let difference = (mae_bf16 - mae_f32).abs() / mae_f32;
    eprintln!(
        "MAE f32 GPU {mae_f32:.4}, bf16 GPU {mae_bf16:.4} ({:+.3} %), f32 CPU {mae_cpu:.4}",
        100.0 * difference
    );
    assert!(difference <= 0.02, "bf16 MAE differs by {:.2} %", 100.0 * difference);
    assert!(
        (mae_f32 - mae_cpu).abs() <= 1e-4 * mae_cpu,
        "f32 GPU MAE {mae_f32} vs CPU {mae_cpu}"
    );
}

#[test]
fn a_gpu_error_falls_back_to_cpu_eager_once_and_is_counted() {
    if !gpu_present() {
        return;
    }
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 3, RandomInit::Rerandomized));
    let gpu = CudaModel::new(eager.clone(), CudaOptions::default(), pool());
    let input = ModelInput::from_rows(&[vec![1.0, 2.0, 3.0, 2.0, 1.0, 2.0]]).unwrap();
    run(&gpu, &input);
    assert_eq!(gpu.stats().graphs_captured, 1);
    gpu.simulate_gpu_failure("a launch failed");
    gpu.simulate_gpu_failure("a second failure is not counted again");
    let out = run(&gpu, &input);
    assert_eq!(out, eager.forward(&input).unwrap().quantile_preds);
    let stats = gpu.stats();
    assert_eq!((stats.fallbacks, stats.calls), (1, 2));
    assert!(stats.fallback_reason.unwrap().contains("a launch failed"));
}

/// Runs everywhere: without a GPU (or with a GPU number this machine lacks) the model starts
/// on the CPU eager executor, says why once, counts it, and answers exactly as eager.
#[test]
fn a_missing_gpu_falls_back_to_cpu_eager() {
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 5, RandomInit::Rerandomized));
    let gpu = CudaModel::new(
        eager.clone(),
        CudaOptions {
            ordinal: 99,
            ..CudaOptions::default()
        },
        pool(),
    );
    let input = ModelInput::from_rows(&[vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]]).unwrap();
    assert_eq!(run(&gpu, &input), eager.forward(&input).unwrap().quantile_preds);
    let stats = gpu.stats();
    assert_eq!(stats.fallbacks, 1);
    let reason = stats.fallback_reason.unwrap();
    assert!(
        reason.contains("could not be loaded") || reason.contains("GPU(s)"),
        "{reason}"
    );
    assert_eq!(reason.lines().count(), 1);
}
