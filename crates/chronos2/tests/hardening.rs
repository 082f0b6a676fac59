//! Hardening for checkpoints: shard paths outside the folder refused, non-finite
//! weights found, saves that never disturb a process reading the old files, and a bounded
//! property test of the safetensors header parser (hostile bytes never panic).

use std::path::Path;
use std::sync::Arc;

use chronos2::checkpoint::load_from_memory;
use chronos2::weights::SharedBytes;
use chronos2::{Chronos2Model, Config, RandomInit, StorageDtype};
use proptest::prelude::*;

fn saved_tiny() -> (tempfile::TempDir, Chronos2Model) {
    let dir = tempfile::tempdir().unwrap();
    let model = Chronos2Model::random(Config::tiny(), 3, RandomInit::Default);
    model.save(dir.path(), StorageDtype::F32).unwrap();
    (dir, model)
}

fn load_error(dir: &Path) -> String {
    Chronos2Model::load(dir).unwrap_err().to_string()
}

#[test]
fn an_index_naming_shards_outside_the_folder_is_refused() {
    for shard in ["../../x.safetensors", "/etc/passwd", "sub/../../model.safetensors"] {
        let (dir, _) = saved_tiny();
        let index = serde_json::json!({"metadata": {}, "weight_map": {"shared.weight": shard}});
        std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
        std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
        let msg = load_error(dir.path());
        assert!(
            msg.contains("outside the checkpoint folder") && msg.contains(shard),
            "{msg}"
        );
    }
}

/// Overwrites element `index` of tensor `name` in a saved f32 `model.safetensors`.
fn poke(dir: &Path, name: &str, index: usize, value: f32) {
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let begin = header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + n + begin + 4 * index;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn non_finite_weights_are_found_by_name_and_index() {
    let (dir, model) = saved_tiny();
    assert_eq!(model.weights().non_finite(), None);
    let name = "encoder.final_layer_norm.weight";
    poke(dir.path(), name, 5, f32::NAN);
    poke(dir.path(), name, 7, f32::NEG_INFINITY);
    let broken = Chronos2Model::load(dir.path()).unwrap();
    let (first, count) = broken.weights().non_finite().unwrap();
    assert_eq!((first.tensor.as_str(), first.index, count), (name, 5, 2));
    assert!(first.value.is_nan());
}

#[cfg(unix)]
#[test]
fn saving_over_a_checkpoint_leaves_a_reader_of_the_old_files_intact() {
    let (dir, old) = saved_tiny();
    let mapped = Chronos2Model::load(dir.path()).unwrap();
    let before: f64 = mapped
        .weights()
        .tensors()
        .iter()
        .flat_map(|t| t.data())
        .map(|&v| f64::from(v))
        .sum();
    let new = Chronos2Model::random(Config::tiny(), 4, RandomInit::Default);
    new.save(dir.path(), StorageDtype::F32).unwrap();
    // The mapped old file is still whole (it was replaced by a rename, not rewritten).
    let after: f64 = mapped
        .weights()
        .tensors()
        .iter()
        .flat_map(|t| t.data())
        .map(|&v| f64::from(v))
        .sum();
    assert_eq!(before, after);
    assert_eq!(mapped.weights().tensors()[0].data(), old.weights().tensors()[0].data());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    let reloaded = Chronos2Model::load(dir.path()).unwrap();
    assert_eq!(
        reloaded.weights().tensors()[0].data(),
        new.weights().tensors()[0].data()
    );
}

/// A safetensors buffer: 8-byte little-endian header length, the header, the data.
fn buffer(header: &[u8], declared: u64, data: &[u8]) -> SharedBytes {
    let mut bytes = declared.to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    Arc::new(bytes)
}

fn tiny_config() -> String {
    serde_json::to_string(&Config::tiny().to_file()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes: an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        prop_assert!(load_from_memory("fuzz", &tiny_config(), Arc::new(bytes)).is_err());
    }

    /// A header length that lies (too big, too small, huge) over arbitrary headers.
    #[test]
    fn lying_header_lengths_never_panic(
        header in proptest::collection::vec(any::<u8>(), 0..128),
        declared in prop_oneof![Just(u64::MAX), Just(0u64), 0u64..512, (u64::MAX - 16)..u64::MAX],
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assert!(load_from_memory("fuzz", &tiny_config(), buffer(&header, declared, &data)).is_err());
    }

    /// Well-formed JSON headers with hostile entries: dtypes, shapes whose product overflows,
    /// offsets out of range, reversed or overlapping.
    #[test]
    fn hostile_tensor_entries_never_panic(
        name in "[a-z._0-9]{1,24}",
        dtype in prop_oneof![Just("F32"), Just("BF16"), Just("F16"), Just("I64"), Just("BOOL"), Just("X")],
        shape in proptest::collection::vec(prop_oneof![0usize..70, Just(usize::MAX / 2), Just(usize::MAX)], 0..4),
        begin in prop_oneof![0usize..300, Just(usize::MAX)],
        end in prop_oneof![0usize..300, Just(usize::MAX)],
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let header = serde_json::json!({
            "__metadata__": {"format": "pt"},
            name: {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]},
        })
        .to_string();
        let bytes = buffer(header.as_bytes(), header.len() as u64, &data);
        prop_assert!(load_from_memory("fuzz", &tiny_config(), bytes).is_err());
    }
}
