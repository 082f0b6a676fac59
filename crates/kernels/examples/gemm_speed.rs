//! GEMM rates of the packed kernels (f32, bf16, int8) and of the `gemm` crate on Chronos-2's
//! layer shapes, for tuning the microkernels: `cargo run --release -p chronos2-kernels
//! --example gemm_speed [threads]`. Set `CHRONOS2_ISA` to time a smaller instruction set.
//! Prints the median of 15 calls per shape, in GFLOP/s (2 per multiply-add). With `cpu` as
//! second argument and one thread, calls are timed in the thread's CPU time instead of wall
//! time: the kernel's own speed, steady even while other processes share the cores.
//! `SHAPES="m,k,n;m,k,n"` replaces the default shapes (Chronos-2's layers at 1, 32 and 256
//! series) and `CALLS=N` the number of timed calls per shape.

use std::time::Instant;

use chronos2_kernels::bf16::{linear_bf16, pairs, to_bf16_pairs, PackedBf16};
use chronos2_kernels::int8::{linear_int8, quantize_rows, row_bytes, PackedInt8, QuantizedRows};
use chronos2_kernels::packed::{linear, PackedWeight};
use chronos2_kernels::pool::Pool;
use chronos2_kernels::{matmul, MatMut, MatRef};

/// This thread's CPU time in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn median_seconds(run: &mut dyn FnMut()) -> f64 {
    let cpu = std::env::args().any(|a| a == "cpu");
    run();
    let calls: usize = std::env::var("CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    let mut times: Vec<f64> = (0..calls)
        .map(|_| {
            let (wall, thread) = (Instant::now(), thread_cpu_seconds());
            run();
            if cpu {
                thread_cpu_seconds() - thread
            } else {
                wall.elapsed().as_secs_f64()
            }
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let threads = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(2);
    let named: Vec<String> = std::env::args().skip(2).filter(|a| a != "cpu").collect();
    let timed = |family: &str| named.is_empty() || named.iter().any(|a| a == family);
    let rate = |family: &str, flops: f64, run: &mut dyn FnMut()| {
        if timed(family) {
            format!("{:.1}", flops / median_seconds(run))
        } else {
            "-".to_string()
        }
    };
    let pool = Pool::new(threads);
    println!(
        "threads {threads}; f32 {}, bf16 {}, int8 {}",
        chronos2_kernels::packed::isa_name(),
        chronos2_kernels::bf16::isa_name(),
        chronos2_kernels::int8::isa_name()
    );
    println!(
        "{:>18} {:>9} {:>9} {:>9} {:>9}",
        "m x k x n", "f32", "bf16", "int8", "gemm f32"
    );
    let default = [
        (34, 768, 2304),
        (34, 3072, 768),
        (1088, 768, 3072),
        (1088, 3072, 768),
        (8704, 768, 768),
    ];
    let shapes: Vec<(usize, usize, usize)> = match std::env::var("SHAPES") {
        Ok(text) => text
            .split(';')
            .map(|s| {
                let v: Vec<usize> = s
                    .split(',')
                    .map(|d| d.trim().parse().expect("SHAPES: m,k,n;..."))
                    .collect();
                (v[0], v[1], v[2])
            })
            .collect(),
        Err(_) => default.to_vec(),
    };
    for (m, k, n) in shapes {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut y = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64 / 1e9;
        let packed = PackedWeight::new(&w, n, k);
        let f32_rate = rate("f32", flops, &mut || {
            linear(&mut y, n, &x, k, m, packed.view(), None, false, &pool)
        });
        let packed = PackedBf16::new(&w, n, k);
        let mut xp = vec![0u32; m * pairs(k)];
        let bf16_rate = rate("bf16", flops, &mut || {
            to_bf16_pairs(&x, k, m, k, &mut xp, &pool);
            linear_bf16(&mut y, n, &xp, pairs(k), m, &packed, None, false, &pool)
        });
        let packed = PackedInt8::new(&w, n, k);
        let (mut xq, mut scales) = (vec![0u8; m * row_bytes(k)], vec![0.0f32; m]);
        let int8_rate = rate("int8", flops, &mut || {
            quantize_rows(&x, k, m, k, &mut xq, &mut scales, &pool);
            let rows = QuantizedRows {
                data: &xq,
                ld: row_bytes(k),
                scales: &scales,
            };
            linear_int8(&mut y, n, rows, m, &packed, None, false, &pool)
        });
        let gemm_rate = rate("gemm", flops, &mut || {
            matmul(
                MatMut::row_major(&mut y, m, n),
                MatRef::row_major(&x, m, k),
                MatRef::row_major(&w, n, k).t(),
                false,
                &pool,
            )
        });
        println!(
            "{:>18} {f32_rate:>9} {bf16_rate:>9} {int8_rate:>9} {gemm_rate:>9}",
            format!("{m}x{k}x{n}")
        );
    }
}
