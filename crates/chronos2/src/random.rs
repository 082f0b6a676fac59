//! Random checkpoints of any Chronos-2 configuration, so benchmarks and large tests need no
//! Python: the reference's default initialisation, or O(1) re-randomised weights (which expose
//! kernel bugs that the near-identity default init hides), and a safetensors writer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use safetensors::tensor::View;
use safetensors::Dtype;

use crate::checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
use crate::config::{Config, StorageDtype};
use crate::error::Error;
use crate::weights::{Init, Tensor, TensorSource, Weights};

/// How random weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomInit {
    /// The reference's `_init_weights`: norm gains = `initializer_factor`, matrices
    /// `N(0, factor · fan^-1/2)` (Mesh-TensorFlow scaling), zero biases.
    Default,
    /// O(1) gains: norms `1 + 0.1·N(0,1)`, matrices `N(0, 1/fan_in)`, biases `0.1·N(0,1)`,
    /// embeddings `N(0, 1)`.
    Rerandomized,
}

impl RandomInit {
    /// Parses `default` or `rerandomized` (also `rerandomised`, `o1`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "default" => Some(Self::Default),
            "rerandomized" | "rerandomised" | "o1" => Some(Self::Rerandomized),
            _ => None,
        }
    }
}

/// A [`TensorSource`] that draws every tensor from a seeded ChaCha8 stream, in declaration
/// order, so a seed always gives the same checkpoint.
pub struct RandomSource {
    rng: ChaCha8Rng,
    init: RandomInit,
    factor: f32,
}

impl RandomSource {
    /// A source for `config` with `seed`.
    pub fn new(config: &Config, seed: u64, init: RandomInit) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            init,
            factor: config.initializer_factor,
        }
    }

    fn normal(&mut self, len: usize, mean: f32, std: f32) -> Vec<f32> {
        let dist = Normal::new(mean, std).expect("standard deviations here are finite and positive");
        (0..len).map(|_| dist.sample(&mut self.rng)).collect()
    }
}

impl TensorSource for RandomSource {
    fn tensor(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor, Error> {
        let len = shape.iter().product();
        let data = match (self.init, init) {
            (RandomInit::Default, Init::NormGain) => vec![self.factor; len],
            (RandomInit::Default, Init::Bias) => vec![0.0; len],
            (RandomInit::Default, Init::Normal { std_over_factor, .. }) => {
                self.normal(len, 0.0, self.factor * std_over_factor)
            }
            (RandomInit::Rerandomized, Init::NormGain) => self.normal(len, 1.0, 0.1),
            (RandomInit::Rerandomized, Init::Bias) => self.normal(len, 0.0, 0.1),
            (RandomInit::Rerandomized, Init::Normal { fan_in, .. }) => {
                self.normal(len, 0.0, (fan_in as f32).powf(-0.5))
            }
        };
        Ok(Tensor::owned(name, shape.to_vec(), data))
    }
}

/// Random weights for `config`.
pub fn random_weights(config: &Config, seed: u64, init: RandomInit) -> Weights {
    Weights::build(config, &mut RandomSource::new(config, seed, init))
        .expect("the random source produces every tensor with the requested shape")
}

/// A tensor's bytes in a storage dtype, as the safetensors writer wants them.
struct StoredTensor<'a> {
    dtype: Dtype,
    shape: &'a [usize],
    bytes: Cow<'a, [u8]>,
}

impl View for &StoredTensor<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn to_storage(tensor: &Tensor, dtype: StorageDtype) -> StoredTensor<'_> {
    let data = tensor.data();
    let (dtype, bytes) = match dtype {
        StorageDtype::F32 => (Dtype::F32, data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        StorageDtype::Bf16 => (
            Dtype::BF16,
            data.iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
        ),
        StorageDtype::F16 => (
            Dtype::F16,
            data.iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        ),
    };
    StoredTensor {
        dtype,
        shape: tensor.shape(),
        bytes: Cow::Owned(bytes),
    }
}

/// The temporary name a checkpoint file is written under before its rename.
fn temporary(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `config.json` and `model.safetensors` into `dir` (created if needed), storing the
/// tensors as `dtype`. The result loads in this crate and in the reference package.
///
/// Both files are written under temporary names and renamed into place, so a process that
/// has the old files mapped keeps reading them intact, and an interrupted save leaves the old
/// checkpoint as it was.
///
/// # Errors
/// [`Error::Io`] if the directory or files cannot be written.
pub fn save_checkpoint(dir: &Path, config: &Config, weights: &Weights, dtype: StorageDtype) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut file_config = config.clone();
    file_config.dtype = dtype;
    let json = serde_json::to_string_pretty(&file_config.to_file()).expect("the config serialises");
    let config_path = dir.join(CONFIG_FILE);
    let weights_path = dir.join(WEIGHTS_FILE);
    let (config_temp, weights_temp) = (temporary(&config_path), temporary(&weights_path));
    let written = (|| {
        std::fs::write(&config_temp, json + "\n").map_err(io(&config_path))?;
        let tensors = weights.tensors();
        let encoded: Vec<(String, StoredTensor<'_>)> = tensors
            .iter()
            .map(|t| (t.name().to_string(), to_storage(t, dtype)))
            .collect();
        let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
        safetensors::serialize_to_file(encoded.iter().map(|(n, e)| (n.as_str(), e)), &metadata, &weights_temp)
            .map_err(|e| Error::Io {
                path: weights_path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        std::fs::rename(&weights_temp, &weights_path).map_err(io(&weights_path))?;
        std::fs::rename(&config_temp, &config_path).map_err(io(&config_path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&config_temp);
        let _ = std::fs::remove_file(&weights_temp);
    }
    written
}
