//! After warm-up, a compiled call allocates nothing on the heap (on any thread) and builds no
//! plan. This file holds a single test: the counting allocator is process-wide, so no other
//! test may run beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput, RandomInit};
use chronos2_engine::{CompileOptions, CompiledModel, Pool, Precision};

/// Counts allocations made while `COUNTING` is set, on every thread.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
        ALLOCATIONS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            for input in &inputs {
                compiled.forward_into(input, &mut out).unwrap();
            }
        }
        COUNTING.store(false, Ordering::SeqCst);
        assert_eq!(
            ALLOCATIONS.load(Ordering::SeqCst),
            0,
            "heap allocations during warm compiled calls in {precision:?}"
        );
        assert_eq!(compiled.stats().plans_built, planned, "a warm call built a plan");
        assert!(!compiled.has_fallen_back());
    }
}
