//! Model configuration: the `config.json` as written by Hugging Face ([`ConfigFile`]) and the
//! checked, resolved form the model code uses ([`Config`]).
//!
//! `ConfigFile` mirrors the file with `Option`s and the reference's class defaults;
//! [`ConfigFile::resolve`] checks every invariant once and names the offending field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The 21 quantile levels of `amazon/chronos-2`.
pub const CHRONOS2_QUANTILES: [f32; 21] = [
    0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99,
];

/// Storage type of the tensors in a checkpoint. Computation is always f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageDtype {
    /// IEEE single precision.
    #[serde(rename = "float32")]
    F32,
    /// bfloat16.
    #[serde(rename = "bfloat16")]
    Bf16,
    /// IEEE half precision.
    #[serde(rename = "float16")]
    F16,
}

impl StorageDtype {
    /// Parses the names used by transformers (`float32`, `bfloat16`, `float16`) and the short
    /// names (`f32`, `fp32`, `bf16`, `f16`, `fp16`, `half`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "float32" | "f32" | "fp32" => Some(Self::F32),
            "bfloat16" | "bf16" => Some(Self::Bf16),
            "float16" | "f16" | "fp16" | "half" => Some(Self::F16),
            _ => None,
        }
    }

    /// The transformers name (`float32`, `bfloat16`, `float16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
            Self::F16 => "float16",
        }
    }
}

/// `chronos_config` as stored in `config.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChronosConfigFile {
    /// Maximum context length in time steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<usize>,
    /// Values per input patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_patch_size: Option<usize>,
    /// Step between input patches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_patch_stride: Option<usize>,
    /// Values per output patch (must equal `input_patch_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_patch_size: Option<usize>,
    /// Trained quantile levels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<Vec<f32>>,
    /// Whether a REG token follows the context patches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_reg_token: Option<bool>,
    /// Whether instance normalisation applies arcsinh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_arcsinh: Option<bool>,
    /// Most output patches one forward pass may produce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_patches: Option<usize>,
    /// Divisor of the time encoding (defaults to `context_length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_encoding_scale: Option<usize>,
}

/// `config.json` of a Chronos-2 checkpoint, as written by `save_pretrained`. Unknown keys are
/// ignored; missing keys take the reference's class defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Must name `Chronos2Model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// `t5` for Chronos-2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Hidden size (default 512).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d_model: Option<usize>,
    /// Per-head size (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d_kv: Option<usize>,
    /// Feed-forward and residual-block hidden size (default 2048).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d_ff: Option<usize>,
    /// Encoder blocks (default 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_layers: Option<usize>,
    /// Attention heads (default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_heads: Option<usize>,
    /// RMS-norm epsilon (default 1e-6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_norm_epsilon: Option<f32>,
    /// Activation spec, e.g. `relu` (default); gated variants are rejected as in the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed_forward_proj: Option<String>,
    /// RoPE base (default 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f32>,
    /// Random-init scale (only used by `init-random`; default 0.05).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initializer_factor: Option<f32>,
    /// Storage dtype, transformers 5 spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Storage dtype, transformers 4 spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// The forecasting configuration (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chronos_config: Option<ChronosConfigFile>,
    /// Pipeline class the reference dispatches on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chronos_pipeline_class: Option<String>,
}

/// A resolved, validated Chronos-2 configuration. Every field is set.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Hidden size D.
    pub d_model: usize,
    /// Per-head size dk.
    pub d_kv: usize,
    /// Feed-forward hidden size (also the residual blocks' hidden size).
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Attention heads H.
    pub num_heads: usize,
    /// RMS-norm epsilon.
    pub layer_norm_epsilon: f32,
    /// RoPE base.
    pub rope_theta: f32,
    /// Random-init scale.
    pub initializer_factor: f32,
    /// Storage dtype declared by the config.
    pub dtype: StorageDtype,
    /// Maximum context length.
    pub context_length: usize,
    /// Patch size P (input = output).
    pub patch_size: usize,
    /// Trained quantile levels, strictly increasing in (0, 1).
    pub quantiles: Vec<f32>,
    /// REG token present.
    pub use_reg_token: bool,
    /// arcsinh in the instance norm.
    pub use_arcsinh: bool,
    /// Most output patches per forward pass.
    pub max_output_patches: usize,
    /// Divisor of the time encoding.
    pub time_encoding_scale: usize,
}

impl Config {
    /// The released `amazon/chronos-2` shape (119,477,664 parameters).
    pub fn chronos2() -> Self {
        Self {
            d_model: 768,
            d_kv: 64,
            d_ff: 3072,
            num_layers: 12,
            num_heads: 12,
            layer_norm_epsilon: 1e-6,
            rope_theta: 10000.0,
            initializer_factor: 0.05,
            dtype: StorageDtype::F32,
            context_length: 8192,
            patch_size: 16,
            quantiles: CHRONOS2_QUANTILES.to_vec(),
            use_reg_token: true,
            use_arcsinh: true,
            max_output_patches: 64,
            time_encoding_scale: 8192,
        }
    }

    /// A tiny shape of the same architecture (D 64, d_ff 128, 2 layers, 4 heads of 16) for
    /// tests and examples.
    pub fn tiny() -> Self {
        Self {
            d_model: 64,
            d_kv: 16,
            d_ff: 128,
            num_layers: 2,
            num_heads: 4,
            context_length: 512,
            max_output_patches: 4,
            time_encoding_scale: 512,
            ..Self::chronos2()
        }
    }

    /// Width of the attention projections, `num_heads * d_kv`.
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// Number of quantile levels Q.
    pub fn num_quantiles(&self) -> usize {
        self.quantiles.len()
    }

    /// Longest horizon of one forward pass, `max_output_patches * patch_size`.
    pub fn max_horizon(&self) -> usize {
        self.max_output_patches * self.patch_size
    }

    /// Index of the 0.5 level, if trained.
    pub fn median_index(&self) -> Option<usize> {
        self.quantiles.iter().position(|&q| (q - 0.5).abs() < 1e-6)
    }

    /// Reads and resolves `config.json` at `path`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`] or [`Error::Config`], naming the file and the field.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file: ConfigFile = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        file.resolve(path)
    }

    /// The `config.json` that describes this configuration, in the layout `save_pretrained`
    /// writes (so the reference package can load it too).
    pub fn to_file(&self) -> ConfigFile {
        ConfigFile {
            architectures: Some(vec!["Chronos2Model".into()]),
            model_type: Some("t5".into()),
            d_model: Some(self.d_model),
            d_kv: Some(self.d_kv),
            d_ff: Some(self.d_ff),
            num_layers: Some(self.num_layers),
            num_heads: Some(self.num_heads),
            layer_norm_epsilon: Some(self.layer_norm_epsilon),
            feed_forward_proj: Some("relu".into()),
            rope_theta: Some(self.rope_theta),
            initializer_factor: Some(self.initializer_factor),
            dtype: Some(self.dtype.name().into()),
            torch_dtype: None,
            chronos_config: Some(ChronosConfigFile {
                context_length: Some(self.context_length),
                input_patch_size: Some(self.patch_size),
                input_patch_stride: Some(self.patch_size),
                output_patch_size: Some(self.patch_size),
                quantiles: Some(self.quantiles.clone()),
                use_reg_token: Some(self.use_reg_token),
                use_arcsinh: Some(self.use_arcsinh),
                max_output_patches: Some(self.max_output_patches),
                time_encoding_scale: Some(self.time_encoding_scale),
            }),
            chronos_pipeline_class: Some("Chronos2Pipeline".into()),
        }
    }
}

/// Builds a config error for `field` of the file at `path`.
fn invalid(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::Config {
        path: PathBuf::from(path),
        field: field.to_string(),
        message: message.into(),
    }
}

/// A required positive integer field.
fn positive(path: &Path, field: &str, value: Option<usize>, default: Option<usize>) -> Result<usize, Error> {
    match value.or(default) {
        None => Err(invalid(path, field, "is missing")),
        Some(0) => Err(invalid(path, field, "must be positive, found 0")),
        Some(v) => Ok(v),
    }
}

impl ConfigFile {
    /// Checks the file and resolves defaults. `path` is only used in error messages.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field: wrong architecture, missing `chronos_config` or one of
    /// its required fields, patch sizes that differ, unsupported activation or dtype, quantiles
    /// not strictly increasing inside (0, 1), zero sizes, an odd head size.
    pub fn resolve(&self, path: &Path) -> Result<Config, Error> {
        match &self.architectures {
            Some(names) if names.first().map(String::as_str) == Some("Chronos2Model") => {}
            Some(names) => {
                return Err(invalid(
                    path,
                    "architectures",
                    format!("expected [\"Chronos2Model\"], found {names:?}; this is not a Chronos-2 checkpoint"),
                ))
            }
            None => {
                return Err(invalid(
                    path,
                    "architectures",
                    "is missing; expected [\"Chronos2Model\"]",
                ));
            }
        }
        if let Some(model_type) = &self.model_type {
            if model_type != "t5" {
                return Err(invalid(
                    path,
                    "model_type",
                    format!("expected \"t5\", found {model_type:?}"),
                ));
            }
        }
        let dtype = match (&self.dtype, &self.torch_dtype) {
            (Some(name), _) | (None, Some(name)) => StorageDtype::parse(name).ok_or_else(|| {
                invalid(
                    path,
                    "dtype",
                    format!("unsupported dtype {name:?}; expected float32, bfloat16 or float16"),
                )
            })?,
            (None, None) => StorageDtype::F32,
        };
        let activation = self.feed_forward_proj.as_deref().unwrap_or("relu");
        if activation.split('-').next() == Some("gated") {
            return Err(invalid(
                path,
                "feed_forward_proj",
                format!("gated activation {activation:?} is not supported (the reference rejects it too)"),
            ));
        }
        if activation.rsplit('-').next() != Some("relu") {
            return Err(invalid(
                path,
                "feed_forward_proj",
                format!("unsupported activation {activation:?}; Chronos-2 uses \"relu\""),
            ));
        }
        let d_kv = positive(path, "d_kv", self.d_kv, Some(64))?;
        if d_kv % 2 != 0 {
            return Err(invalid(
                path,
                "d_kv",
                format!("must be even for the rotary embedding, found {d_kv}"),
            ));
        }
        let chronos = self
            .chronos_config
            .as_ref()
            .ok_or_else(|| invalid(path, "chronos_config", "is missing; this is not a Chronos-2 checkpoint"))?;
        let field = |name: &str| format!("chronos_config.{name}");
        let context_length = positive(path, &field("context_length"), chronos.context_length, None)?;
        let input_patch = positive(path, &field("input_patch_size"), chronos.input_patch_size, None)?;
        let stride = positive(path, &field("input_patch_stride"), chronos.input_patch_stride, None)?;
        let output_patch = positive(path, &field("output_patch_size"), chronos.output_patch_size, None)?;
        if input_patch != output_patch {
            return Err(invalid(
                path,
                &field("output_patch_size"),
                format!("must equal input_patch_size ({input_patch}), found {output_patch}"),
            ));
        }
        if stride != input_patch {
            return Err(invalid(
                path,
                &field("input_patch_stride"),
                format!("overlapping patches are not supported: stride {stride} != input_patch_size {input_patch}"),
            ));
        }
        let quantiles = chronos
            .quantiles
            .clone()
            .ok_or_else(|| invalid(path, &field("quantiles"), "is missing"))?;
        if quantiles.is_empty()
            || quantiles.iter().any(|&q| !(q > 0.0 && q < 1.0))
            || quantiles.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(invalid(
                path,
                &field("quantiles"),
                format!("must be non-empty and strictly increasing inside (0, 1), found {quantiles:?}"),
            ));
        }
        let max_output_patches = positive(path, &field("max_output_patches"), chronos.max_output_patches, Some(1))?;
        let time_encoding_scale = positive(
            path,
            &field("time_encoding_scale"),
            chronos.time_encoding_scale,
            Some(context_length),
        )?;
        let layer_norm_epsilon = self.layer_norm_epsilon.unwrap_or(1e-6);
        if !(layer_norm_epsilon.is_finite() && layer_norm_epsilon > 0.0) {
            return Err(invalid(
                path,
                "layer_norm_epsilon",
                format!("must be a small positive number (e.g. 1e-6), found {layer_norm_epsilon}"),
            ));
        }
        let rope_theta = self.rope_theta.unwrap_or(10000.0);
        if !(rope_theta.is_finite() && rope_theta > 0.0) {
            return Err(invalid(
                path,
                "rope_theta",
                format!("must be a positive number (e.g. 10000), found {rope_theta}"),
            ));
        }
        let initializer_factor = self.initializer_factor.unwrap_or(0.05);
        if !initializer_factor.is_finite() {
            return Err(invalid(
                path,
                "initializer_factor",
                format!("must be a finite number, found {initializer_factor}"),
            ));
        }
        let config = Config {
            d_model: positive(path, "d_model", self.d_model, Some(512))?,
            d_kv,
            d_ff: positive(path, "d_ff", self.d_ff, Some(2048))?,
            num_layers: positive(path, "num_layers", self.num_layers, Some(6))?,
            num_heads: positive(path, "num_heads", self.num_heads, Some(8))?,
            layer_norm_epsilon,
            rope_theta,
            initializer_factor,
            dtype,
            context_length,
            patch_size: input_patch,
            quantiles,
            use_reg_token: chronos.use_reg_token.unwrap_or(false),
            use_arcsinh: chronos.use_arcsinh.unwrap_or(false),
            max_output_patches,
            time_encoding_scale,
        };
        config.check_size(path)?;
        Ok(config)
    }
}

/// Most tokens (context patches, REG, output patches) one row may have: time attention
/// keeps a tokens × tokens score matrix per head (1 GiB at this limit).
pub const MAX_TOKENS: usize = 16_384;

/// Most bytes the f32 weights of a configuration may take (16 GiB; the released model
/// takes 0.48 GB).
pub const MAX_WEIGHT_BYTES: f64 = 16.0 * (1u64 << 30) as f64;

/// Most encoder blocks (the released model has 12).
pub const MAX_LAYERS: usize = 1024;

/// `bytes` in words: `1.5 GB`, `295.3 TB`.
fn human_bytes(bytes: f64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

impl Config {
    /// The size of the f32 weights, counted from the shapes in f64 so that no size overflows:
    /// per block two attentions (4 · D · H·dk each) and the feed-forward (2 · D · d_ff), plus
    /// the input and output residual blocks.
    pub fn weight_bytes(&self) -> f64 {
        let [d, heads, dk, ff, layers] =
            [self.d_model, self.num_heads, self.d_kv, self.d_ff, self.num_layers].map(|v| v as f64);
        let inner = heads * dk;
        let p = self.patch_size as f64;
        let q = self.quantiles.len() as f64;
        let blocks = layers * (8.0 * d * inner + 2.0 * d * ff);
        let embed = 2.0 * p * ff + ff * d + 2.0 * p * d;
        let head = d * ff + ff * q * p + d * q * p;
        4.0 * (blocks + embed + head)
    }

    /// Refuses shapes that cannot fit: more than [`MAX_TOKENS`] tokens per row, or weights
    /// over [`MAX_WEIGHT_BYTES`]; the message names the field and the memory needed.
    fn check_size(&self, path: &Path) -> Result<(), Error> {
        let patches = self.context_length.div_ceil(self.patch_size);
        let tokens = patches.saturating_add(1).saturating_add(self.max_output_patches);
        if tokens > MAX_TOKENS {
            let field = if patches > MAX_TOKENS / 2 {
                ("chronos_config.context_length", self.context_length)
            } else {
                ("chronos_config.max_output_patches", self.max_output_patches)
            };
            let scores = (tokens as f64).powi(2) * 4.0;
            return Err(invalid(
                path,
                field.0,
                format!(
                    "{} makes {tokens} tokens per row, over the limit of {MAX_TOKENS}: time attention alone would need {} per head and row",
                    field.1,
                    human_bytes(scores)
                ),
            ));
        }
        if self.num_layers > MAX_LAYERS {
            return Err(invalid(
                path,
                "num_layers",
                format!(
                    "{} is over the limit of {MAX_LAYERS} (their weights alone would need {})",
                    self.num_layers,
                    human_bytes(self.weight_bytes())
                ),
            ));
        }
        let bytes = self.weight_bytes();
        if bytes > MAX_WEIGHT_BYTES {
            return Err(invalid(
                path,
                "d_model",
                format!(
                    "d_model {}, d_ff {}, {} layers of {} heads x {} need {} of weights, over the limit of {}",
                    self.d_model,
                    self.d_ff,
                    self.num_layers,
                    self.num_heads,
                    self.d_kv,
                    human_bytes(bytes),
                    human_bytes(MAX_WEIGHT_BYTES)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(json: serde_json::Value) -> Result<Config, Error> {
        let file: ConfigFile = serde_json::from_value(json).unwrap();
        file.resolve(Path::new("config.json"))
    }

    fn real_json() -> serde_json::Value {
        serde_json::to_value(Config::chronos2().to_file()).unwrap()
    }

    #[test]
    fn round_trips_the_released_shape() {
        assert_eq!(resolve(real_json()).unwrap(), Config::chronos2());
    }

    #[test]
    fn accepts_torch_dtype_and_ignores_unknown_keys() {
        let mut json = real_json();
        json.as_object_mut().unwrap().remove("dtype");
        json["torch_dtype"] = "bfloat16".into();
        json["use_cache"] = true.into();
        json["transformers_version"] = "4.49.0".into();
        assert_eq!(resolve(json).unwrap().dtype, StorageDtype::Bf16);
    }

    #[test]
    fn time_encoding_scale_defaults_to_context_length() {
        let mut json = real_json();
        json["chronos_config"]
            .as_object_mut()
            .unwrap()
            .remove("time_encoding_scale");
        json["chronos_config"]["context_length"] = 100.into();
        assert_eq!(resolve(json).unwrap().time_encoding_scale, 100);
    }

    fn error_of(json: serde_json::Value) -> String {
        resolve(json).unwrap_err().to_string()
    }

    #[test]
    fn rejects_other_architectures() {
        let mut json = real_json();
        json["architectures"] = serde_json::json!(["T5ForConditionalGeneration"]);
        let msg = error_of(json);
        assert!(
            msg.contains("architectures") && msg.contains("T5ForConditionalGeneration"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_missing_chronos_config() {
        let mut json = real_json();
        json.as_object_mut().unwrap().remove("chronos_config");
        assert!(error_of(json).contains("chronos_config"));
    }

    #[test]
    fn rejects_unequal_patch_sizes() {
        let mut json = real_json();
        json["chronos_config"]["output_patch_size"] = 32.into();
        let msg = error_of(json);
        assert!(msg.contains("output_patch_size") && msg.contains("32"), "{msg}");
    }

    #[test]
    fn rejects_gated_activation_and_bad_dtype_and_bad_quantiles() {
        let mut json = real_json();
        json["feed_forward_proj"] = "gated-gelu".into();
        assert!(error_of(json).contains("gated"));
        let mut json = real_json();
        json["dtype"] = "int8".into();
        assert!(error_of(json).contains("int8"));
        let mut json = real_json();
        json["chronos_config"]["quantiles"] = serde_json::json!([0.5, 0.1]);
        assert!(error_of(json).contains("quantiles"));
    }

    /// `rope_theta` <= 0 and a negative or NaN epsilon are refused.
    #[test]
    fn rejects_non_positive_rope_theta_and_epsilon() {
        for theta in [0.0, -1.0] {
            let mut json = real_json();
            json["rope_theta"] = theta.into();
            let msg = error_of(json);
            assert!(msg.contains("rope_theta") && msg.contains("positive"), "{msg}");
        }
        let mut json = real_json();
        json["layer_norm_epsilon"] = (-1e-6).into();
        assert!(error_of(json).contains("layer_norm_epsilon"));
    }

    /// Shapes that cannot fit are refused up front, naming the memory.
    #[test]
    fn rejects_shapes_that_cannot_fit() {
        let mut json = real_json();
        json["chronos_config"]["context_length"] = 1_000_000_000_000u64.into();
        let msg = error_of(json);
        assert!(
            msg.contains("context_length") && msg.contains("EB per head and row"),
            "{msg}"
        );
        let mut json = real_json();
        json["chronos_config"]["max_output_patches"] = 1_000_000_000.into();
        let msg = error_of(json);
        assert!(msg.contains("max_output_patches") && msg.contains("16384"), "{msg}");
        let mut json = real_json();
        json["d_model"] = 1_000_000_000.into();
        let msg = error_of(json);
        assert!(msg.contains("d_model") && msg.contains("TB of weights"), "{msg}");
        let mut json = real_json();
        json["num_layers"] = 1_000_000.into();
        let msg = error_of(json);
        assert!(
            msg.contains("num_layers") && msg.contains("1000000 is over the limit of 1024"),
            "{msg}"
        );
        let mut json = real_json();
        json["d_ff"] = 1_000_000.into();
        let msg = error_of(json);
        assert!(msg.contains("d_ff 1000000") && msg.contains("GB of weights"), "{msg}");
        let mut json = real_json();
        json["d_kv"] = (usize::MAX - 1).into();
        assert!(error_of(json).contains("of weights"));
        // The released shape is well inside: ~0.48 GB.
        assert!((Config::chronos2().weight_bytes() / 1e9 - 0.478).abs() < 0.01);
    }

    #[test]
    fn rejects_missing_context_length_and_zero_sizes() {
        let mut json = real_json();
        json["chronos_config"].as_object_mut().unwrap().remove("context_length");
        assert!(error_of(json).contains("`chronos_config.context_length` is missing"));
        let mut json = real_json();
        json["num_heads"] = 0.into();
        assert!(error_of(json).contains("num_heads"));
    }
}
