//! The compile cache: hits are bit-identical to packing, stale and damaged entries
//! are rebuilt and never used, concurrent writers leave one valid entry, `only` fails clearly,
//! an unwritable directory only costs speed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ModelInput, RandomInit, StorageDtype};
use chronos2_engine::cache::{self, CachePolicy};
use chronos2_engine::{CacheOutcome, CompileOptions, CompiledModel, EngineError, Pool, Precision};

/// A tiny random checkpoint saved to `dir` and loaded back (a model with files behind it).
fn checkpoint(dir: &Path, seed: u64) -> Arc<Chronos2Model> {
    Chronos2Model::random(Config::tiny(), seed, RandomInit::Rerandomized)
        .save(dir, StorageDtype::F32)
        .unwrap();
    Arc::new(Chronos2Model::load(dir).unwrap())
}

fn compiled(
    model: &Arc<Chronos2Model>,
    precision: Precision,
    policy: CachePolicy,
    dir: &Path,
) -> Result<CompiledModel, EngineError> {
    let options = CompileOptions {
        precision,
        ..CompileOptions::default()
    };
    CompiledModel::with_cache(Arc::clone(model), options, Arc::new(Pool::new(2)), policy, Some(dir))
}

fn forecast(model: &CompiledModel) -> Vec<f32> {
    let series: Vec<f32> = (0..3 * 40).map(|i| ((i as f32) * 0.37).sin() * 5.0 + 20.0).collect();
    let input = ModelInput::new(series, 3).unwrap().with_output_patches(2);
    model.forward(&input).unwrap().quantile_preds
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    cache::list(dir).unwrap().into_iter().map(|e| e.path).collect()
}

fn written(model: &CompiledModel) -> PathBuf {
    match model.stats().cache {
        CacheOutcome::Written(path) => path,
        other => panic!("expected a written entry, got {other:?}"),
    }
}

#[test]
fn a_cache_hit_computes_bit_identical_results_in_both_precisions() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = checkpoint(weights.path(), 1);
    for precision in [Precision::Float32, Precision::BFloat16] {
        let packed = compiled(&model, precision, CachePolicy::Never, cache_dir.path()).unwrap();
        assert!(matches!(packed.stats().cache, CacheOutcome::NotUsed(_)));
        let first = compiled(&model, precision, CachePolicy::Prefer, cache_dir.path()).unwrap();
        let path = written(&first);
        let hit = compiled(&model, precision, CachePolicy::Only, cache_dir.path()).unwrap();
        assert_eq!(hit.stats().cache, CacheOutcome::Hit(path));
        assert_eq!(hit.stats().packed_bytes, packed.stats().packed_bytes);
        let expected = forecast(&packed);
        assert_eq!(forecast(&first), expected);
        assert_eq!(forecast(&hit), expected, "{precision:?}");
    }
    let listed = cache::list(cache_dir.path()).unwrap();
    assert_eq!(listed.len(), 2, "one entry per precision");
    let summary = listed[0].description.as_ref().expect("readable header");
    assert!(summary.key.contains("model.safetensors") && summary.key.contains("bytes mtime"));
}

#[test]
fn a_changed_checkpoint_is_not_served_from_the_old_entry() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old = checkpoint(weights.path(), 1);
    let old_entry = written(&compiled(&old, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap());
    // Another model saved over the same files: its size or modification time differs.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let new = checkpoint(weights.path(), 2);
    let err = compiled(&new, Precision::Float32, CachePolicy::Only, cache_dir.path())
        .err()
        .expect("the old entry must not serve the new checkpoint")
        .to_string();
    assert!(err.contains("--compile-cache only") && err.contains("prefer"), "{err}");
    let rebuilt = compiled(&new, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap();
    assert_ne!(written(&rebuilt), old_entry);
    let reference = compiled(&new, Precision::Float32, CachePolicy::Never, cache_dir.path()).unwrap();
    assert_eq!(forecast(&rebuilt), forecast(&reference));
}

/// A way to damage an entry's bytes, named.
type Damage = (&'static str, Box<dyn Fn(&mut Vec<u8>)>);

#[test]
fn truncated_or_corrupted_entries_are_rebuilt_never_used() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = checkpoint(weights.path(), 3);
    let reference = forecast(&compiled(&model, Precision::Float32, CachePolicy::Never, cache_dir.path()).unwrap());
    let path = written(&compiled(&model, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap());
    let intact = std::fs::read(&path).unwrap();
    let damages: [Damage; 3] = [
        ("truncated", Box::new(|bytes| bytes.truncate(bytes.len() - 100))),
        (
            "a flipped data byte",
            Box::new(|bytes| *bytes.last_mut().unwrap() ^= 0x40),
        ),
        ("a flipped header byte", Box::new(|bytes| bytes[40] ^= 0x01)),
    ];
    for (what, damage) in damages {
        let mut bytes = intact.clone();
        damage(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let err = compiled(&model, Precision::Float32, CachePolicy::Only, cache_dir.path())
            .err()
            .unwrap_or_else(|| panic!("{what}: a damaged entry was used"))
            .to_string();
        assert!(err.contains("not used"), "{what}: {err}");
        let rebuilt = compiled(&model, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap();
        assert_eq!(written(&rebuilt), path, "{what}");
        assert_eq!(forecast(&rebuilt), reference, "{what}");
        let hit = compiled(&model, Precision::Float32, CachePolicy::Only, cache_dir.path()).unwrap();
        assert_eq!(forecast(&hit), reference, "{what}");
    }
}

#[test]
fn concurrent_writers_leave_one_valid_entry() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = checkpoint(weights.path(), 4);
    let results: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    forecast(&compiled(&model, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|pair| pair[0] == pair[1]));
    let files: Vec<_> = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "no temporary files left behind: {files:?}");
    let hit = compiled(&model, Precision::Float32, CachePolicy::Only, cache_dir.path()).unwrap();
    assert_eq!(forecast(&hit), results[0]);
}

#[test]
fn only_without_an_entry_or_without_files_fails_clearly() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = checkpoint(weights.path(), 5);
    let err = compiled(&model, Precision::Float32, CachePolicy::Only, cache_dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no cache entry") && err.contains("--compile-cache prefer"),
        "{err}"
    );
    let random = Arc::new(Chronos2Model::random(Config::tiny(), 0, RandomInit::Default));
    let err = compiled(&random, Precision::Float32, CachePolicy::Only, cache_dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("made in memory"), "{err}");
    let not_cached = compiled(&random, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap();
    assert!(matches!(not_cached.stats().cache, CacheOutcome::NotUsed(_)));
    assert!(entries(cache_dir.path()).is_empty());
}

#[test]
fn an_unwritable_directory_only_costs_speed() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = checkpoint(weights.path(), 6);
    // A directory below a regular file can never be created (even by root).
    let blocker = cache_dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let engine = compiled(&model, Precision::Float32, CachePolicy::Prefer, &blocker.join("cache")).unwrap();
    let CacheOutcome::WriteFailed(reason) = engine.stats().cache else {
        panic!("expected a failed write, got {:?}", engine.stats().cache);
    };
    assert!(reason.contains("cannot create the directory"), "{reason}");
    let reference = compiled(&model, Precision::Float32, CachePolicy::Never, cache_dir.path()).unwrap();
    assert_eq!(forecast(&engine), forecast(&reference));
}

#[test]
fn clear_removes_entries_and_nothing_else() {
    let (weights, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = checkpoint(weights.path(), 7);
    compiled(&model, Precision::Float32, CachePolicy::Prefer, cache_dir.path()).unwrap();
    let other = cache_dir.path().join("notes.txt");
    std::fs::write(&other, b"keep me").unwrap();
    let (files, bytes) = cache::clear(cache_dir.path()).unwrap();
    assert_eq!(files, 1);
    assert!(bytes > 0);
    assert!(entries(cache_dir.path()).is_empty() && other.exists());
    assert_eq!(cache::clear(&cache_dir.path().join("absent")).unwrap(), (0, 0));
}
