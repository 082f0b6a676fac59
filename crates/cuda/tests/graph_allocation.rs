//! After its bucket's graph is captured, a compiled GPU call allocates nothing, on
//! the host (counted by this file's allocator, every thread) or on the device (free memory
//! unchanged), and sets up no bucket. This file holds a single test: the counting allocator
//! is process-wide. Skipped with a one-line reason without a GPU.

use std::sync::Arc;

use chronos2::executor::Precision;
use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput, RandomInit};
use chronos2_cuda::{missing_library, CudaModel, CudaOptions, Gpu};
use chronos2_kernels::pool::Pool;
use chronos2_testkit::{allocations_during, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn replayed_calls_allocate_nothing() {
    if let Some(library) = missing_library() {
        eprintln!("skipped: {library} cannot be loaded (no GPU setup here)");
        return;
    }
    let gpu = match Gpu::open(0, Config::tiny().d_kv) {
        Ok(gpu) => gpu,
        Err(e) => return eprintln!("skipped: {e}"),
    };
    let rows: Vec<Vec<f32>> = (0..4)
        .map(|r| (0..100).map(|t| (t as f32 * 0.2 + r as f32).sin() + 3.0).collect())
        .collect();
    let inputs = [
        ModelInput::from_rows(&rows[..1]).unwrap(),
        ModelInput::from_rows(&rows).unwrap().with_group_ids(vec![0, 0, 1, 1]),
        ModelInput::from_rows(&rows)
            .unwrap()
            .with_group_ids(vec![4, 4, 1, 2])
            .with_future_covariates(vec![1.0; 4 * 16], 16),
    ];
    let eager = Arc::new(Chronos2Model::random(Config::tiny(), 2, RandomInit::Rerandomized));
    for precision in [Precision::Float32, Precision::BFloat16] {
        let options = CudaOptions {
            precision,
            ..CudaOptions::default()
        };
        let model = CudaModel::new(eager.clone(), options, Arc::new(Pool::new(2)));
        let mut outs: Vec<ModelOutput> = inputs.iter().map(|_| ModelOutput::empty()).collect();
        for (input, out) in inputs.iter().zip(&mut outs) {
            model.forward_into(input, out).unwrap();
        }
        let before = model.stats();
        let (free, _) = gpu.memory().unwrap();
        let allocations = allocations_during(|| {
            for _ in 0..5 {
                for (input, out) in inputs.iter().zip(&mut outs) {
                    model.forward_into(input, out).unwrap();
                }
            }
        });
        let after = model.stats();
        assert_eq!(allocations, 0, "{precision:?}: host allocations");
        assert_eq!(gpu.memory().unwrap().0, free, "{precision:?}: device memory changed");
        assert_eq!((after.buckets, after.graphs_captured), (3, 3), "{precision:?}");
        assert_eq!(before.buckets, after.buckets);
        assert_eq!(after.fallbacks, 0, "{:?}", after.fallback_reason);
    }
}
