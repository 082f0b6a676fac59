//! A quick look at what the vectorised element-wise kernels gain: nanoseconds per element of
//! the plain and the dispatched versions of softmax (133- and 512-wide rows) and RMS norm
//! (768-wide rows), on one thread, over a few rows that stay in the L1/L2 cache. Softmax runs
//! again and again on its own output (neither `exp` costs more or less with the argument).
//!
//! `cargo run --release -p chronos2-kernels --example ops_speed` (`CHRONOS2_ISA=scalar` for the
//! baseline build of the fast kernels).

use std::hint::black_box;
use std::time::Instant;

use chronos2_kernels::ops::{self, fast};

/// Deterministic values in `[-scale, scale]`.
fn values(len: usize, scale: f32) -> Vec<f32> {
    let mut s = 0x9e37_79b9u32;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            ((s % 2001) as f32 / 1000.0 - 1.0) * scale
        })
        .collect()
}

/// Passes over the rows per timing.
const PASSES: usize = 200;

/// Best of twenty timings of `PASSES` calls of `f`, which covers `rows` rows of `width`:
/// nanoseconds per element.
fn ns_per_element(rows: usize, width: usize, mut f: impl FnMut()) -> f64 {
    (0..20)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PASSES {
                f();
            }
            start.elapsed().as_secs_f64() * 1e9 / (PASSES * rows * width) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    println!("element-wise kernels: {}", ops::isa_name());
    let rows = 16;
    for width in [133, 512] {
        let run = |softmax: fn(&mut [f32])| {
            let mut work = values(rows * width, 20.0);
            ns_per_element(rows, width, || {
                for row in work.chunks_exact_mut(width) {
                    softmax(black_box(row));
                }
            })
        };
        let (plain, fast) = (run(ops::softmax), run(fast::softmax));
        println!(
            "softmax {width:>4} wide: plain {plain:.3} ns/elem, fast {fast:.3} ns/elem ({:.1}x)",
            plain / fast
        );
    }
    let width = 768;
    let (x, weight) = (values(rows * width, 3.0), values(width, 1.0));
    let mut out = vec![0.0; rows * width];
    let mut run = |rms_norm: fn(&mut [f32], &[f32], &[f32], f32)| {
        ns_per_element(rows, width, || {
            rms_norm(black_box(&mut out), black_box(&x), &weight, 1e-6)
        })
    };
    let (plain, fast) = (run(ops::rms_norm), run(fast::rms_norm));
    println!(
        "rms_norm {width} wide: plain {plain:.3} ns/elem, fast {fast:.3} ns/elem ({:.1}x)",
        plain / fast
    );
}
