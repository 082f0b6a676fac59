//! The one-way fallback to eager: a failing plan or a non-finite output the eager model does
//! not share switches the engine to eager for the rest of the process, logs the reason once
//! and counts it.

use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ModelInput, RandomInit};
use chronos2_engine::{CompileMode, CompiledModel};

fn inputs() -> Vec<ModelInput> {
    let rows: Vec<Vec<f32>> = (0..4)
        .map(|r| (0..100).map(|t| (t as f32 * 0.2 + r as f32).sin() + 3.0).collect())
        .collect();
    vec![
        ModelInput::from_rows(&rows[..1]).unwrap(),
        ModelInput::from_rows(&rows).unwrap().with_output_patches(2),
    ]
}

#[test]
fn a_failing_plan_falls_back_to_eager_once_and_for_good() {
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 5, RandomInit::Default));
    // A plan memory limit no bucket fits: the first compiled call fails.
    let compiled = CompiledModel::new(
        eager.clone(),
        CompileMode::Default,
        std::sync::Arc::new(chronos2_engine::Pool::new(2)),
    )
    .with_max_plan_bytes(1024);
    let input = &inputs()[1];
    let out = compiled.forward(input).unwrap();
    assert_eq!(
        out,
        eager.forward(input).unwrap(),
        "the failed call is answered by eager"
    );
    let stats = compiled.stats();
    assert_eq!(stats.fallbacks, 1);
    assert!(stats.fallback_reason.unwrap().contains("over the limit"));
    // Later calls go straight to eager: no more plans, still one fallback.
    compiled.forward(&inputs()[0]).unwrap();
    assert_eq!(compiled.stats().plans_built, 0);
    assert_eq!(compiled.stats().fallbacks, 1);
    assert!(compiled.has_fallen_back());
}

/// A non-finite output that the eager model computes too (here caused by the
/// weights) is not an engine fault: the engine answers like eager and does not fall back.
#[test]
fn a_non_finite_output_eager_shares_does_not_fall_back() {
    // Output biases of 1e3 put sinh far past f32::MAX: the compiled output is infinite.
    let config = Config::tiny();
    let dir = std::env::temp_dir().join(format!("chronos2-nonfinite-{}", std::process::id()));
    let model = Chronos2Model::random(config, 1, RandomInit::Default);
    model.save(&dir, chronos2::StorageDtype::F32).unwrap();
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = if name == "output_patch_embedding.output_layer.bias" {
                view.data()
                    .chunks_exact(4)
                    .flat_map(|_| 1000.0f32.to_le_bytes())
                    .collect()
            } else {
                view.data().to_vec()
            };
            (name, view.shape().to_vec(), data)
        })
        .collect();
    tensors.sort();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, &None, &path).unwrap();
    let eager = Arc::new(Chronos2Model::load(&dir).unwrap());
    let compiled = CompiledModel::new(
        eager,
        CompileMode::Default,
        std::sync::Arc::new(chronos2_engine::Pool::new(2)),
    );
    let out = compiled.forward(&inputs()[0]).unwrap();
    assert!(out.quantile_preds.iter().any(|v| !v.is_finite()));
    let stats = compiled.stats();
    assert_eq!(stats.fallbacks, 0);
    assert!(stats.fallback_reason.is_none());
    assert!(!compiled.has_fallen_back());
    std::fs::remove_dir_all(dir).unwrap();
}
