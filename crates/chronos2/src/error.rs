//! The error type of the model crate. Every message is one line that names the file, field,
//! tensor or input at fault, and the fix where there is one.

use std::path::PathBuf;

/// Everything that can go wrong while loading, building or running a Chronos-2 model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON or has a field of the wrong type.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser error (with line and column).
        source: serde_json::Error,
    },
    /// `config.json` is readable but describes no valid Chronos-2 model.
    #[error("{}: field `{field}` {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The dotted field name, e.g. `chronos_config.context_length`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The directory does not hold a checkpoint in any layout we know.
    #[error("{}: {message}", path.display())]
    NotACheckpoint {
        /// The directory.
        path: PathBuf,
        /// What was looked for.
        message: String,
    },
    /// A safetensors file is truncated or malformed.
    #[error("{}: not a valid safetensors file ({message}); the file may be truncated or corrupt, download it again", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A tensor the configuration requires is absent.
    #[error("tensor `{name}` is missing from {}", path.display())]
    MissingTensor {
        /// Tensor name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A tensor has a shape other than the configuration implies.
    #[error("tensor `{name}` in {}: expected shape {expected:?}, found {found:?}; config.json and the weights do not belong together", path.display())]
    TensorShape {
        /// Tensor name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has an element type we cannot compute with.
    #[error("tensor `{name}` in {}: unsupported dtype {dtype}; expected F32, BF16 or F16", path.display())]
    TensorDtype {
        /// Tensor name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The dtype found.
        dtype: String,
    },
    /// The checkpoint holds tensors that the configuration does not account for.
    #[error("{}: {} tensor(s) not used by this config: {}; config.json and the weights do not belong together", path.display(), names.len(), names.join(", "))]
    UnexpectedTensors {
        /// The checkpoint location.
        path: PathBuf,
        /// The extra tensor names (sorted).
        names: Vec<String>,
    },
    /// The inputs of a forward pass are inconsistent.
    #[error("invalid model input: {0}")]
    Input(String),
    /// An executor failed for a reason other than its input (e.g. a poisoned lock).
    #[error("execution failed: {0}")]
    Execution(String),
}
