use chronos2::{Chronos2Model, ModelInput};
use chronos2_engine::{CompileMode, CompiledModel};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let model = Arc::new(Chronos2Model::load(&dir).unwrap());
    let t = Instant::now();
    let compiled = CompiledModel::new(model.clone(), CompileMode::ReduceOverhead);
    println!("pack {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let series =
        |n: usize, r: usize| -> Vec<f32> { (0..n).map(|t| 100.0 + ((t + 7 * r) as f32 * 0.1).sin() * 5.0).collect() };
    let cases = [
        ("A", 1, 512, 1, false),
        ("B", 1, 2048, 4, false),
        ("C", 32, 512, 1, false),
        ("D", 4, 512, 1, true),
    ];
    for (name, rows, len, m, group) in cases {
        let rows_data: Vec<Vec<f32>> = (0..rows).map(|r| series(len, r)).collect();
        let mut input = ModelInput::from_rows(&rows_data).unwrap().with_output_patches(m);
        if group {
            input = input.with_group_ids(vec![0; rows]);
        }
        for (label, f) in [("eager", 0), ("compiled", 1)] {
            let run = || {
                if f == 0 {
                    model.forward(&input).unwrap()
                } else {
                    compiled.forward(&input).unwrap()
                }
            };
            run();
            let reps = if rows > 8 { 5 } else { 15 };
            let mut times: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    run();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("{name} {label:<9} median {:.1} ms", times[reps / 2]);
        }
    }
}
