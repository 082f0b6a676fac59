//! Checkpoint loading: every layout we accept, and a clear error for every broken checkpoint.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use chronos2::{Chronos2Model, Config, Error, ModelInput, RandomInit, StorageDtype};
use safetensors::tensor::View;
use safetensors::{Dtype, SafeTensors};

/// A tiny model saved as f32 into a fresh temporary directory.
fn saved_tiny(dtype: StorageDtype) -> (tempfile::TempDir, Chronos2Model) {
    let dir = tempfile::tempdir().unwrap();
    let model = Chronos2Model::random(Config::tiny(), 7, RandomInit::Rerandomized);
    model.save(dir.path(), dtype).unwrap();
    (dir, model)
}

/// A raw tensor as read from a file.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn read_raw(path: &Path) -> BTreeMap<String, Raw> {
    let bytes = std::fs::read(path).unwrap();
    let parsed = SafeTensors::deserialize(&bytes).unwrap();
    parsed
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let raw = Raw {
                dtype: v.dtype(),
                shape: v.shape().to_vec(),
                bytes: v.data().to_vec(),
            };
            (name, raw)
        })
        .collect()
}

fn write_raw(path: &Path, tensors: &BTreeMap<String, Raw>) {
    safetensors::serialize_to_file(tensors.iter().map(|(n, r)| (n.as_str(), r)), &None, path).unwrap();
}

/// Rewrites `model.safetensors` in `dir` through `edit`.
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut BTreeMap<String, Raw>)) {
    let path = dir.join("model.safetensors");
    let mut tensors = read_raw(&path);
    edit(&mut tensors);
    write_raw(&path, &tensors);
}

fn load_error(dir: &Path) -> String {
    Chronos2Model::load(dir).unwrap_err().to_string()
}

fn sample_input() -> ModelInput {
    let series: Vec<f32> = (0..45).map(|t| 3.0 + (t as f32 * 0.4).sin() * 2.0).collect();
    ModelInput::from_rows(&[series]).unwrap().with_output_patches(2)
}

#[test]
fn save_and_load_round_trip_is_exact_and_zero_copy() {
    let (dir, model) = saved_tiny(StorageDtype::F32);
    let loaded = Chronos2Model::load(dir.path()).unwrap();
    assert_eq!(loaded.config(), model.config());
    assert_eq!(loaded.parameter_count(), model.parameter_count());
    assert!(
        loaded.weights().tensors().iter().all(|t| t.is_mapped()),
        "f32 tensors should be read in place"
    );
    let input = sample_input();
    assert_eq!(loaded.forward(&input).unwrap(), model.forward(&input).unwrap());
}

#[test]
fn released_shape_has_the_published_parameter_count() {
    // Counting does not need the weights drawn at full size: sum the declared shapes.
    let config = Config::chronos2();
    let model_tiny = Chronos2Model::random(Config::tiny(), 0, RandomInit::Default);
    assert_eq!(model_tiny.weights().tensors().len(), 40);
    let d = config.d_model;
    let (ff, p, q, l) = (
        config.d_ff,
        config.patch_size,
        config.num_quantiles(),
        config.num_layers,
    );
    let residual = |i: usize, o: usize| i * ff + ff + ff * o + o + i * o + o;
    let per_layer = 3 * d + 8 * d * d + 2 * d * ff;
    assert_eq!(
        2 * d + residual(3 * p, d) + l * per_layer + d + residual(d, q * p),
        119_477_664
    );
}

#[test]
fn bf16_and_f16_checkpoints_load_as_f32() {
    for dtype in [StorageDtype::Bf16, StorageDtype::F16] {
        let (dir, model) = saved_tiny(dtype);
        let loaded = Chronos2Model::load(dir.path()).unwrap();
        assert_eq!(loaded.config().dtype, dtype);
        let rounding = if dtype == StorageDtype::Bf16 { 1e-2 } else { 1e-3 };
        for (a, b) in loaded.weights().tensors().iter().zip(model.weights().tensors()) {
            assert_eq!(a.name(), b.name());
            for (x, y) in a.data().iter().zip(b.data()) {
                assert!(
                    (x - y).abs() <= rounding * y.abs().max(1e-3),
                    "{}: {x} vs {y}",
                    a.name()
                );
            }
        }
        assert!(loaded
            .forward(&sample_input())
            .unwrap()
            .quantile_preds
            .iter()
            .all(|v| v.is_finite()));
    }
}

#[test]
fn sharded_checkpoint_loads_like_the_single_file() {
    let (dir, model) = saved_tiny(StorageDtype::F32);
    let tensors = read_raw(&dir.path().join("model.safetensors"));
    let (mut first, mut second) = (BTreeMap::new(), BTreeMap::new());
    let mut weight_map = serde_json::Map::new();
    for (i, (name, raw)) in tensors.into_iter().enumerate() {
        let file = if i % 2 == 0 {
            "model-00001-of-00002.safetensors"
        } else {
            "model-00002-of-00002.safetensors"
        };
        weight_map.insert(name.clone(), file.into());
        if i % 2 == 0 {
            first.insert(name, raw)
        } else {
            second.insert(name, raw)
        };
    }
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    write_raw(&dir.path().join("model-00001-of-00002.safetensors"), &first);
    write_raw(&dir.path().join("model-00002-of-00002.safetensors"), &second);
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    let loaded = Chronos2Model::load(dir.path()).unwrap();
    assert_eq!(
        loaded.forward(&sample_input()).unwrap(),
        model.forward(&sample_input()).unwrap()
    );

    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let msg = load_error(dir.path());
    assert!(
        msg.contains("model-00002-of-00002.safetensors") && msg.contains("index"),
        "{msg}"
    );
}

#[cfg(unix)]
#[test]
fn hugging_face_cache_layout_resolves_through_refs_main() {
    let (source, model) = saved_tiny(StorageDtype::F32);
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--amazon--chronos-2");
    let revision = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(revision);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), revision).unwrap();
    // Files in a snapshot are symlinks into blobs/.
    for (file, blob) in [("config.json", "aaaa"), ("model.safetensors", "bbbb")] {
        std::fs::copy(source.path().join(file), repo.join("blobs").join(blob)).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(file)).unwrap();
    }
    for path in [&repo, &snapshot] {
        let loaded = Chronos2Model::load(path).unwrap();
        assert_eq!(
            loaded.forward(&sample_input()).unwrap(),
            model.forward(&sample_input()).unwrap()
        );
    }
}

#[test]
fn empty_and_missing_directories_say_what_they_expected() {
    let dir = tempfile::tempdir().unwrap();
    let msg = load_error(dir.path());
    assert!(
        msg.contains("no config.json") && msg.contains("found: nothing"),
        "{msg}"
    );
    let msg = load_error(&dir.path().join("nope"));
    assert!(msg.contains("no such directory"), "{msg}");
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let msg = load_error(dir.path());
    assert!(msg.contains("no model.safetensors"), "{msg}");
}

#[test]
fn truncated_weights_file_is_a_clear_error() {
    let (dir, _) = saved_tiny(StorageDtype::F32);
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let msg = load_error(dir.path());
    assert!(msg.contains("model.safetensors") && msg.contains("truncated"), "{msg}");
    std::fs::write(&path, &bytes[..5]).unwrap();
    assert!(load_error(dir.path()).contains("not a valid safetensors file"));
}

#[test]
fn config_that_does_not_match_the_weights_names_the_tensor_and_shapes() {
    let (dir, _) = saved_tiny(StorageDtype::F32);
    let path = dir.path().join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["d_model"] = 48.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let msg = load_error(dir.path());
    assert!(
        msg.contains("`shared.weight`") && msg.contains("[2, 48]") && msg.contains("[2, 64]"),
        "{msg}"
    );
}

#[test]
fn malformed_config_json_names_the_file_and_position() {
    let (dir, _) = saved_tiny(StorageDtype::F32);
    std::fs::write(dir.path().join("config.json"), "{\"d_model\": 64,").unwrap();
    let msg = load_error(dir.path());
    assert!(
        msg.contains("config.json") && msg.contains("invalid JSON") && msg.contains("line 1"),
        "{msg}"
    );
    std::fs::write(dir.path().join("config.json"), "{\"d_model\": \"wide\"}").unwrap();
    assert!(load_error(dir.path()).contains("invalid JSON"));
}

#[test]
fn missing_tensor_is_named() {
    let (dir, _) = saved_tiny(StorageDtype::F32);
    edit_weights(dir.path(), |t| {
        t.remove("encoder.block.1.layer.2.mlp.wo.weight");
    });
    let msg = load_error(dir.path());
    assert!(
        msg.contains("`encoder.block.1.layer.2.mlp.wo.weight` is missing"),
        "{msg}"
    );
}

#[test]
fn extra_tensors_are_reported() {
    let (dir, _) = saved_tiny(StorageDtype::F32);
    edit_weights(dir.path(), |t| {
        let raw = Raw {
            dtype: Dtype::F32,
            shape: vec![1],
            bytes: vec![0; 4],
        };
        t.insert("encoder.block.2.layer.0.layer_norm.weight".into(), raw);
    });
    let msg = load_error(dir.path());
    assert!(
        msg.contains("not used by this config") && msg.contains("encoder.block.2.layer.0.layer_norm.weight"),
        "{msg}"
    );
}

#[test]
fn integer_tensor_is_an_unsupported_dtype() {
    let (dir, _) = saved_tiny(StorageDtype::F32);
    edit_weights(dir.path(), |t| {
        let norm = t.get_mut("encoder.final_layer_norm.weight").unwrap();
        norm.dtype = Dtype::I32;
    });
    let msg = load_error(dir.path());
    assert!(
        msg.contains("encoder.final_layer_norm.weight") && msg.contains("unsupported dtype I32"),
        "{msg}"
    );
}

#[test]
fn forward_rejects_inconsistent_inputs() {
    let model = Chronos2Model::random(Config::tiny(), 0, RandomInit::Default);
    let err = |input: ModelInput| model.forward(&input).unwrap_err();
    let base = || ModelInput::new(vec![1.0; 20], 2).unwrap();
    assert!(matches!(ModelInput::new(vec![1.0; 5], 2), Err(Error::Input(_))));
    assert!(err(base().with_group_ids(vec![0]))
        .to_string()
        .contains("group_ids has 1 entries"));
    assert!(err(base().with_output_patches(5))
        .to_string()
        .contains("num_output_patches"));
    let too_long = base().with_future_covariates(vec![0.0; 2 * 17], 17);
    assert!(err(too_long).to_string().contains("17 > 1 * 16"));
    let nan_known = base()
        .with_future_covariates(vec![f32::NAN; 4], 2)
        .with_future_covariates_mask(vec![1.0; 4]);
    assert!(err(nan_known).to_string().contains("NaN but its mask says known"));
}
