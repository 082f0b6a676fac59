//! After warm-up, a compiled call allocates nothing on the heap (on any thread) and builds no
//! plan. This file holds a single test: the counting allocator is process-wide, so no other
//! test may run beside it.

use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput, RandomInit};
use chronos2_engine::{CompileOptions, CompiledModel, Pool, Precision};
use chronos2_testkit::{allocations_during, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn inputs() -> Vec<ModelInput> {
    let rows: Vec<Vec<f32>> = (0..4)
        .map(|r| (0..100).map(|t| (t as f32 * 0.2 + r as f32).sin() + 3.0).collect())
        .collect();
    vec![
        ModelInput::from_rows(&rows[..1]).unwrap(),
        ModelInput::from_rows(&rows).unwrap().with_output_patches(2),
        ModelInput::from_rows(&rows).unwrap().with_group_ids(vec![0, 0, 0, 0]),
        ModelInput::from_rows(&rows)
            .unwrap()
            .with_group_ids(vec![4, 4, 1, 2])
            .with_future_covariates(vec![1.0; 4 * 16], 16),
    ]
}

#[test]
fn warm_calls_allocate_nothing_and_plan_nothing() {
    for precision in [Precision::Float32, Precision::BFloat16] {
        let eager = Arc::new(Chronos2Model::random(Config::tiny(), 5, RandomInit::Rerandomized));
        let options = CompileOptions {
            precision,
            ..CompileOptions::default()
        };
        let compiled = CompiledModel::with_options(eager, options, Arc::new(Pool::new(2)));
        let inputs = inputs();
        let mut out = ModelOutput::empty();
        // Warm-up: one call per bucket (builds plans, sizes `out`).
        for input in &inputs {
            compiled.forward_into(input, &mut out).unwrap();
        }
        let planned = compiled.stats().plans_built;
        assert_eq!(planned, inputs.len());
        let allocations = allocations_during(|| {
            for _ in 0..3 {
                for input in &inputs {
                    compiled.forward_into(input, &mut out).unwrap();
                }
            }
        });
        assert_eq!(
            allocations, 0,
            "heap allocations during warm compiled calls in {precision:?}"
        );
        assert_eq!(compiled.stats().plans_built, planned, "a warm call built a plan");
        assert!(!compiled.has_fallen_back());
    }
}
