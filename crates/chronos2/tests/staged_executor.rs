//! The model description talks to its executor's memory only through spans, and to
//! the host only through `write_host` / `read_host`, as a GPU executor needs. A test executor
//! keeps its "device" memory apart (poisoned with NaN), hands `write_host` a NaN-filled
//! staging area and copies it in afterwards, and gives `read_host` a copy: the pass must still
//! equal the eager model bit for bit, so every buffer is written before it is read and every
//! host step fills what it is given.

use chronos2::eager::EagerExecutor;
use chronos2::encoder::{self, Activations, Optimizations, Pass};
use chronos2::executor::{Executor, GroupLayout, HostExecutor, Layer, Norm, Span};
use chronos2::patching::LocScale;
use chronos2::{Chronos2Model, Config, ModelInput, ModelOutput, RandomInit};
use chronos2_kernels::ops::RopeTable;
use chronos2_kernels::pool::Pool;

/// The eager kernels on a separate memory reached like a GPU's: staged writes, copied reads.
struct Staged<'a> {
    device: HostExecutor<'a, EagerExecutor<'a>>,
    staging: Vec<f32>,
}

impl Executor for Staged<'_> {
    fn linear(&mut self, layer: Layer, x: Span, rows: usize, y: Span, accumulate: bool) {
        self.device.linear(layer, x, rows, y, accumulate);
    }
    fn rms_norm(&mut self, norm: Norm, x: Span, out: Span) {
        self.device.rms_norm(norm, x, out);
    }
    fn relu(&mut self, x: Span) {
        self.device.relu(x);
    }
    fn rope(&mut self, qkv: Span, rows: usize, tokens: usize, rope: &RopeTable) {
        self.device.rope(qkv, rows, tokens, rope);
    }
    fn time_attention(&mut self, qkv: Span, mask: Span, rows: usize, tokens: usize, first: usize, ctx: Span) {
        self.device.time_attention(qkv, mask, rows, tokens, first, ctx);
    }
    fn group_attention(
        &mut self,
        qkv: Span,
        layout: &GroupLayout,
        mask: Option<Span>,
        rows: usize,
        tokens: usize,
        ctx: Span,
    ) {
        self.device.group_attention(qkv, layout, mask, rows, tokens, ctx);
    }
    fn copy_rows(&mut self, src: Span, src_stride: usize, dst: Span, dst_stride: usize, rows: usize, width: usize) {
        self.device.copy_rows(src, src_stride, dst, dst_stride, rows, width);
    }
    fn reg_token(&mut self, dst: Span, rows: usize, stride: usize) {
        self.device.reg_token(dst, rows, stride);
    }
    fn write_host<const N: usize, R>(&mut self, spans: [Span; N], write: impl FnOnce([&mut [f32]; N]) -> R) -> R {
        self.staging.clear();
        self.staging.resize(spans.iter().map(|s| s.len).sum(), f32::NAN);
        let mut rest = self.staging.as_mut_slice();
        let slices = spans.map(|span| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(span.len);
            rest = tail;
            head
        });
        let result = write(slices);
        let mut offset = 0;
        for span in spans {
            let values = &self.staging[offset..offset + span.len];
            self.device.write_host([span], |[dst]| dst.copy_from_slice(values));
            offset += span.len;
        }
        result
    }
    fn read_host<R>(&mut self, span: Span, read: impl FnOnce(&[f32]) -> R) -> R {
        let copy = self.device.read_host(span, <[f32]>::to_vec);
        read(&copy)
    }
}

fn inputs() -> Vec<ModelInput> {
    let rows: Vec<Vec<f32>> = (0..5)
        .map(|r| {
            (0..30 + 7 * r)
                .map(|t| ((t * (r + 2)) as f32 * 0.13).sin() * 4.0 + r as f32)
                .collect()
        })
        .collect();
    let mut future = vec![f32::NAN; 5 * 20];
    future[20..31].iter_mut().enumerate().for_each(|(t, v)| *v = t as f32);
    vec![
        ModelInput::from_rows(&rows).unwrap().with_output_patches(2),
        ModelInput::from_rows(&rows)
            .unwrap()
            .with_group_ids(vec![3, 1, 3, 1, 1]),
        ModelInput::from_rows(&rows)
            .unwrap()
            .with_group_ids(vec![0, 0, 1, 2, 2])
            .with_future_covariates(future, 20)
            .with_output_patches(2),
    ]
}

#[test]
fn a_staged_executor_on_poisoned_memory_matches_eager_exactly() {
    let model = Chronos2Model::random(Config::tiny(), 9, RandomInit::Rerandomized);
    let config = model.config();
    let pool = Pool::new(1);
    for input in inputs() {
        let expected = model.forward_with(&input, &pool).unwrap();
        for optimizations in [Optimizations::NONE, Optimizations::ALL] {
            let pass = Pass::for_input(config, &input, optimizations);
            let acts = Activations::new(config, &pass);
            let mut memory = vec![f32::NAN; acts.floats()];
            let mut stats = vec![
                LocScale {
                    loc: f32::NAN,
                    scale: f32::NAN
                };
                pass.rows
            ];
            let mut exec = Staged {
                device: HostExecutor::new(EagerExecutor::new(config, model.weights(), &pool), &mut memory),
                staging: Vec::new(),
            };
            let mut out = ModelOutput::empty();
            encoder::forward(&mut exec, config, &pass, &input, &acts, &mut stats, &mut out).unwrap();
            if optimizations == Optimizations::NONE {
                assert_eq!(out.quantile_preds, expected.quantile_preds, "{optimizations:?}");
            } else {
                let worst = chronos2_testkit::check("staged", &out.quantile_preds, &expected.quantile_preds);
                assert!(worst <= 1.0, "{optimizations:?}: {worst}");
            }
            assert_eq!((out.loc, out.scale), (expected.loc.clone(), expected.scale.clone()));
        }
    }
}
