//! Test support shared by the workspace's tests (a dev-dependency only):
//!
//! * [`check`]: the fixture rule `max |actual - expected| <= 1e-5 · max(1, max |expected|)`,
//!   returning the worst error as a fraction of the allowance and printing the first
//!   mismatches;
//! * [`ReferenceCase`]: one model call recorded by `tools/reference/generate_fixtures.py`
//!   (input, quantile forecasts, loc/scale, optionally the encoder output);
//! * [`CountingAllocator`] and [`allocations_during`]: the heap allocations of a piece of code
//!   on every thread (the zero-allocation tests of the compiled and CUDA executors).
//!
//! ```
//! use chronos2_testkit::check;
//! // 1e-5 of max(1, 200) = 2e-3 allowed; 1e-3 off is half of it.
//! assert_eq!(check("demo", &[100.0, 200.001], &[100.0, 200.0_f64]) < 0.6, true);
//! ```

#![deny(missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chronos2::ModelInput;
use safetensors::{Dtype, SafeTensors};

/// Relative tolerance of the fixture rule.
pub const TOLERANCE: f64 = 1e-5;

/// Compares `actual` with `expected` under the fixture rule and returns the worst error as a
/// fraction of the allowance (<= 1 passes; NaN against a number counts as infinite, NaN
/// against NaN as equal). Prints the first five mismatches with their index.
///
/// # Panics
/// If the lengths differ.
pub fn check<E: Copy + Into<f64>>(label: &str, actual: &[f32], expected: &[E]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "{label}: length differs");
    let allowed = TOLERANCE * expected.iter().fold(1.0f64, |m, &v| m.max(v.into().abs()));
    let mut worst = 0.0f64;
    let mut shown = 0;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let e: f64 = e.into();
        let diff = if a.is_nan() && e.is_nan() {
            0.0
        } else {
            (f64::from(a) - e).abs()
        };
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        if diff > allowed && shown < 5 {
            eprintln!("  {label}[{i}]: {a} vs expected {e} (|diff| {diff:.3e} > {allowed:.3e})");
            shown += 1;
        }
        worst = worst.max(diff);
    }
    worst / allowed
}

/// Fails unless every `(name, worst)` is within `limit` times the allowance.
///
/// # Panics
/// Listing the cases outside the limit.
pub fn assert_within(results: &[(String, f64)], limit: f64) {
    let failed: Vec<_> = results.iter().filter(|(_, w)| w.is_nan() || *w > limit).collect();
    assert!(
        failed.is_empty(),
        "cases outside {limit} x 1e-5 x max(1, max|expected|): {failed:?}"
    );
}

/// The committed reference fixtures: `cases/*.safetensors` and `models/<name>/`.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chronos2/tests/fixtures/reference")
}

/// One recorded reference call.
pub struct ReferenceCase {
    /// The file stem, e.g. `tiny-default__len64`.
    pub name: String,
    /// The model directory name it was recorded with.
    pub model: String,
    tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
    num_output_patches: usize,
}

impl ReferenceCase {
    /// Reads one case file.
    ///
    /// # Panics
    /// If the file is not a case written by the fixture generator.
    pub fn read(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
                        .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
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
        Self {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            model: meta["model"].clone(),
            num_output_patches: meta["num_output_patches"].parse().unwrap(),
            tensors,
        }
    }

    /// Every case in `dir`, sorted by name.
    ///
    /// # Panics
    /// If the folder cannot be read.
    pub fn all_in(dir: &Path) -> Vec<Self> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::read(p)).collect()
    }

    /// A recorded tensor (`quantile_preds`, `loc`, `scale`, `encoder_output`, ...), if present.
    pub fn expected(&self, name: &str) -> Option<&[f64]> {
        self.tensors.get(name).map(|(_, data)| data.as_slice())
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        self.tensors[name].1.iter().map(|&v| v as f32).collect()
    }

    /// The model input of the call.
    pub fn input(&self) -> ModelInput {
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

/// A global allocator that counts heap allocations and reallocations made, on any thread,
/// while [`allocations_during`] runs; everything else goes to the system allocator unchanged.
/// A test binary installs it with `#[global_allocator] static A: CountingAllocator =
/// CountingAllocator;` and holds a single test (the count is process-wide).
pub struct CountingAllocator;

static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static ALLOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl CountingAllocator {
    fn count(&self) {
        if COUNTING.load(std::sync::atomic::Ordering::SeqCst) {
            ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        self.count();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns the heap allocations made meanwhile on every thread, as counted by a
/// [`CountingAllocator`] installed as the global allocator (0 if none is installed).
pub fn allocations_during(f: impl FnOnce()) -> usize {
    use std::sync::atomic::Ordering;
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.swap(0, Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    /// The only test of this binary (the count is process-wide).
    #[test]
    fn counts_allocations_only_while_asked() {
        let counted = allocations_during(|| {
            std::hint::black_box(vec![1u8; 10]);
        });
        assert!(counted >= 1, "{counted}");
        let outside = vec![2u8; 10];
        assert_eq!(allocations_during(|| {}), 0);
        std::hint::black_box(outside);
    }
}
