//! One execution plan per shape bucket: the description's [`Pass`] with its arena, the
//! planned executor's scratch, and the GEMM threading choices. Built once, then every call of
//! the bucket runs on it without allocating.

use chronos2::encoder::{ActivationArena, Pass};
use chronos2::executor::{Layer, Precision};
use chronos2::{Config, ModelInput, ModelOutput};
use chronos2_kernels::pool::Pool;

use crate::packed_model::PackedModel;
use crate::planned::{
    gemm_kind, group_scratch_len, AttentionScratch, InputScratch, PlannedExecutor, ThreadChoice, GEMM_KINDS,
};
use crate::EngineError;

/// A built plan.
pub(crate) struct Plan {
    /// The bucket: sizes, group layout, RoPE table, optimisations.
    pub pass: Pass,
    arena: ActivationArena,
    /// Attention scratch of the planned executor (time attention per (row, head), or group
    /// attention outputs and per-run work, whichever is larger).
    scratch: Vec<f32>,
    scratch_layout: AttentionScratch,
    /// The widest low-precision layer input, rounded or quantized (empty in f32).
    input: InputScratch,
    pub threads: ThreadChoice,
    /// Logical clock of the last use (for LRU eviction).
    pub last_used: u64,
}

impl Plan {
    /// Floats of attention scratch for `pass` on a pool of `threads` threads.
    fn scratch_len(config: &Config, pass: &Pass, threads: usize) -> usize {
        let time = pass.rows * config.num_heads * AttentionScratch::new(pass.tokens, config.d_kv).len();
        time.max(group_scratch_len(config, &pass.layout, pass.tokens, 2 * threads))
    }

    /// The widest encoder-block layer input: `(tokens, widest)`.
    fn widest_input(config: &Config, pass: &Pass) -> (usize, usize) {
        let widest = config.d_model.max(config.inner_dim()).max(config.d_ff);
        (pass.rows * pass.tokens, widest)
    }

    /// Bytes the plan for `pass` needs (arena and scratch) on a pool of `threads` threads.
    pub fn bytes(config: &Config, pass: &Pass, threads: usize, precision: Precision) -> usize {
        let (tokens, widest) = Self::widest_input(config, pass);
        ActivationArena::bytes(config, pass)
            + Self::scratch_len(config, pass, threads) * std::mem::size_of::<f32>()
            + InputScratch::bytes(tokens, widest, precision)
    }

    /// Sizes and allocates everything for `pass`, once.
    pub fn new(config: &Config, pass: Pass, threads: usize, precision: Precision) -> Self {
        let scratch_layout = AttentionScratch::new(pass.tokens, config.d_kv);
        let (tokens, widest) = Self::widest_input(config, &pass);
        Self {
            arena: ActivationArena::new(config, &pass),
            scratch: vec![0.0; Self::scratch_len(config, &pass, threads)],
            input: InputScratch::new(tokens, widest, precision),
            scratch_layout,
            threads: ThreadChoice::default(),
            last_used: 0,
            pass,
        }
    }

    /// Whether `input` (with `first_rows`, its canonical group layout) runs on this plan.
    pub fn fits(&self, config: &Config, input: &ModelInput, first_rows: &[usize]) -> bool {
        let pass = &self.pass;
        pass.rows == input.rows()
            && pass.patches == chronos2::patching::context_patches(config, input.length())
            && pass.output_patches == input.num_output_patches()
            && pass.covariates == input.future_covariates().is_some()
            && pass.layout.first_rows() == first_rows
    }

    /// Runs the model description on the planned executor for `input` (which must fit) into
    /// `out`.
    ///
    /// # Errors
    /// [`EngineError::Model`] for input errors found while patching (NaN under a known mask).
    pub fn run(
        &mut self,
        config: &Config,
        model: &PackedModel,
        pool: &Pool,
        input: &ModelInput,
        out: &mut ModelOutput,
    ) -> Result<(), EngineError> {
        let executor = PlannedExecutor {
            config,
            model,
            pool,
            threads: self.threads,
            scratch: &mut self.scratch,
            scratch_layout: self.scratch_layout,
            input: &mut self.input,
        };
        self.arena.forward(executor, config, &self.pass, input, out)?;
        Ok(())
    }

    /// Picks, for each GEMM kind, the caller alone or the whole pool, by timing one layer of
    /// that kind on this plan's row count (`max-autotune`).
    pub fn autotune(&mut self, config: &Config, model: &PackedModel, pool: &Pool) {
        let pass = &self.pass;
        let (b, n, m, s) = (pass.rows, pass.patches, pass.output_patches, pass.tokens);
        let embed_rows = b * n.max(m);
        let layers: [(Layer, usize, usize, usize); GEMM_KINDS] = [
            (
                Layer::InputEmbedding(chronos2::executor::ResidualPart::Output),
                embed_rows,
                config.d_ff,
                config.d_model,
            ),
            (Layer::TimeQkv(0), b * s, config.d_model, 3 * config.inner_dim()),
            (Layer::TimeOutput(0), b * s, config.inner_dim(), config.d_model),
            (Layer::FeedForwardIn(0), b * s, config.d_model, config.d_ff),
            (Layer::FeedForwardOut(0), b * s, config.d_ff, config.d_model),
            (
                Layer::OutputHead(chronos2::executor::ResidualPart::Output),
                b * m,
                config.d_ff,
                config.num_quantiles() * config.patch_size,
            ),
        ];
        // Tuning happens at plan time, where allocating is allowed.
        let mut scratch = vec![0.0f32; 0];
        for (layer, rows, k, n) in layers {
            let x = vec![0.5f32; rows * k];
            let mut y = vec![0.0f32; rows * n];
            let kind = gemm_kind(layer);
            let mut timed = |single: bool| {
                let mut executor = PlannedExecutor {
                    config,
                    model,
                    pool,
                    threads: ThreadChoice {
                        single: [single; GEMM_KINDS],
                    },
                    scratch: &mut scratch,
                    scratch_layout: self.scratch_layout,
                    input: &mut self.input,
                };
                let started = std::time::Instant::now();
                chronos2::executor::HostKernels::linear(&mut executor, layer, &x, rows, &mut y, false);
                started.elapsed()
            };
            let mut best = [std::time::Duration::MAX; 2];
            for _ in 0..3 {
                for (slot, single) in best.iter_mut().zip([true, false]) {
                    *slot = (*slot).min(timed(single));
                }
            }
            self.threads.single[kind] = best[0] < best[1];
        }
    }
}
