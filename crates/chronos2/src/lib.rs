//! Native Chronos-2: load Hugging Face checkpoints and compute exactly what the reference
//! `chronos-forecasting` 2.3.2 computes.
//!
//! Main types:
//! * [`Chronos2Model`]: a checkpoint loaded from disk ([`Chronos2Model::load`]) or drawn at
//!   random ([`Chronos2Model::random`]), with the eager [`forward`](Chronos2Model::forward) and
//!   [`encode`](Chronos2Model::encode) passes; [`ForwardPass`] is what every executor offers.
//! * [`encoder`]: the model described once, as steps over named buffers; [`executor`]: the
//!   kernel interface it runs on; [`eager`]: the plain executor (the reference);
//!   [`patching`]: instance norm and patching, shared by all.
//! * [`Config`]: the resolved, validated configuration ([`ConfigFile`] mirrors `config.json`).
//! * [`ModelInput`] / [`ModelOutput`]: one batch in the reference's tensor terms, and its
//!   `(B, Q, H)` quantile forecasts.
//!
//! The model is described in `docs/chronos2-spec.md`; the reference source
//! (`chronos/chronos2/model.py`) is the judge. Paper: Ansari et al., "Chronos-2: From
//! Univariate to Universal Forecasting" (2025).
//!
//! ```
//! use chronos2::{Chronos2Model, Config, ModelInput, RandomInit};
//!
//! let model = Chronos2Model::random(Config::tiny(), 0, RandomInit::Default);
//! let series: Vec<f32> = (0..40).map(|t| 10.0 + (t as f32 * 0.3).sin()).collect();
//! let input = ModelInput::from_rows(&[series])?.with_output_patches(2);
//! let output = model.forward(&input)?;
//! assert_eq!((output.rows, output.num_quantiles, output.horizon), (1, 21, 32));
//! let median = output.series(0, model.config().median_index().unwrap());
//! assert!(median.iter().all(|v| v.is_finite()));
//! # Ok::<(), chronos2::Error>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod checkpoint;
pub mod config;
pub mod eager;
pub mod encoder;
mod error;
pub mod executor;
mod input;
mod model;
pub mod patching;
pub mod random;
pub mod weights;

pub use checkpoint::CheckpointFiles;
pub use config::{Config, ConfigFile, StorageDtype};
pub use error::Error;
pub use input::{Encoded, ModelInput, ModelOutput};
pub use model::{Chronos2Model, ForwardPass, ModelOrigin};
pub use random::RandomInit;
