use chronos2_kernels::{matmul, MatMut, MatRef, Threads};
use std::time::Instant;
fn rate(m: usize, k: usize, n: usize, transposed: bool, threads: Threads, reps: usize) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let rhs = if transposed {
        MatRef::row_major(&b, n, k).t()
    } else {
        MatRef::row_major(&b, k, n)
    };
    matmul(
        MatMut::row_major(&mut c, m, n),
        MatRef::row_major(&a, m, k),
        rhs,
        false,
        threads,
    );
    let mut times = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        matmul(
            MatMut::row_major(&mut c, m, n),
            MatRef::row_major(&a, m, k),
            rhs,
            false,
            threads,
        );
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    2.0 * (m * k * n) as f64 / times[reps / 2] / 1e9
}
fn main() {
    for threads in [Threads::Single, Threads::Pool] {
        for (m, k, n) in [
            (34, 768, 2304),
            (34, 768, 3072),
            (34, 3072, 768),
            (136, 768, 2304),
            (1088, 768, 3072),
            (2048, 2048, 2048),
        ] {
            println!(
                "packed {threads:?} {m}x{k}x{n}: {:.1} GFLOP/s",
                packed_rate(m, k, n, threads, 20)
            );
        }
    }
    for threads in [Threads::Single, Threads::Pool] {
        println!(
            "{threads:?}: 2048^3 {:.1} GFLOP/s",
            rate(2048, 2048, 2048, false, threads, 5)
        );
        println!(
            "{threads:?}: 34x768x2304 (W^T) {:.1}",
            rate(34, 768, 2304, true, threads, 50)
        );
        println!(
            "{threads:?}: 34x768x3072 (W^T) {:.1}",
            rate(34, 768, 3072, true, threads, 50)
        );
        println!(
            "{threads:?}: 34x3072x768 (W^T) {:.1}",
            rate(34, 3072, 768, true, threads, 50)
        );
        println!(
            "{threads:?}: 34x768x2304 (plain) {:.1}",
            rate(34, 768, 2304, false, threads, 50)
        );
        println!(
            "{threads:?}: 1088x768x3072 (W^T) {:.1}",
            rate(1088, 768, 3072, true, threads, 10)
        );
    }
}
#[allow(dead_code)]
fn packed_rate(m: usize, k: usize, n: usize, threads: Threads, reps: usize) -> f64 {
    use chronos2_kernels::packed::{linear, PackedWeight};
    let x = vec![0.5f32; m * k];
    let w = PackedWeight::new(&vec![0.25f32; n * k], n, k);
    let mut y = vec![0.0f32; m * n];
    linear(&mut y, n, &x, k, m, w.view(), None, false, threads);
    let mut times = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        linear(&mut y, n, &x, k, m, w.view(), None, false, threads);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    2.0 * (m * k * n) as f64 / times[reps / 2] / 1e9
}
