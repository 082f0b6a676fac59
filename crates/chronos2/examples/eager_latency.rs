//! Eager forward latency on one series: `cargo run --release --example eager_latency -- DIR
//! [CONTEXT] [HORIZON] [RUNS]`. Prints the load time, then the median, min and max of RUNS
//! steady-state calls after one warm-up call. Threads: `RAYON_NUM_THREADS` (default: all cores).

use std::time::Instant;

use chronos2::{Chronos2Model, ModelInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .ok_or("usage: eager_latency DIR [CONTEXT] [HORIZON] [RUNS]")?;
    let context: usize = args.get(1).map_or(Ok(512), |v| v.parse())?;
    let horizon: usize = args.get(2).map_or(Ok(16), |v| v.parse())?;
    let runs: usize = args.get(3).map_or(Ok(10), |v| v.parse())?;

    let started = Instant::now();
    let model = Chronos2Model::load(dir)?;
    println!("load: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);

    let series: Vec<f32> = (0..context)
        .map(|t| 100.0 + (t as f32 * 0.1).sin() * 5.0 + t as f32 * 0.01)
        .collect();
    let patches = horizon.div_ceil(model.config().patch_size);
    let input = ModelInput::from_rows(&[series])?.with_output_patches(patches);
    let warm = Instant::now();
    model.forward(&input)?;
    println!("first call: {:.1} ms", warm.elapsed().as_secs_f64() * 1e3);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            model.forward(&input).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    println!(
        "eager forward, context {context}, horizon {horizon}, threads {}: median {:.1} ms, min {:.1}, max {:.1} ({runs} runs)",
        rayon::current_num_threads(),
        times[runs / 2],
        times[0],
        times[runs - 1]
    );
    Ok(())
}
