//! Finding and reading Hugging Face checkpoints: `config.json` plus `model.safetensors`, or
//! sharded `model-0000X-of-0000Y.safetensors` with `model.safetensors.index.json`, in a plain
//! directory, a cache snapshot directory, or a cache repository directory
//! (`models--org--name`, resolved through `refs/main`).
//!
//! Safetensors files are memory-mapped. f32 tensors are read in place (no copy) when aligned;
//! bf16 and f16 tensors are converted to f32 once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::config::Config;
use crate::error::Error;
use crate::weights::{Init, SharedBytes, Tensor, TensorSource, Weights};

/// Name of the single-file weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the shard index of sharded weights.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// Name of the configuration file.
pub const CONFIG_FILE: &str = "config.json";

/// The files of one checkpoint, located on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFiles {
    /// The directory that holds `config.json`.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// Weight files (one, or the shards named by the index).
    pub shards: Vec<PathBuf>,
    /// The shard index, for sharded checkpoints.
    pub index: Option<PathBuf>,
}

impl CheckpointFiles {
    /// Finds the checkpoint files under `path`.
    ///
    /// Accepts a directory with `config.json` and weights, or a Hugging Face cache repository
    /// directory (`models--org--name` with `refs/main` and `snapshots/<revision>/`).
    ///
    /// # Errors
    /// [`Error::NotACheckpoint`] saying what was looked for and what was found.
    pub fn locate(path: &Path) -> Result<Self, Error> {
        let not_a_checkpoint = |message: String| Error::NotACheckpoint {
            path: path.to_path_buf(),
            message,
        };
        if !path.exists() {
            return Err(not_a_checkpoint("no such directory".into()));
        }
        if !path.is_dir() {
            return Err(not_a_checkpoint(
                "is a file; pass the checkpoint directory that holds config.json and model.safetensors".into(),
            ));
        }
        let dir = if path.join(CONFIG_FILE).is_file() {
            path.to_path_buf()
        } else if path.join("snapshots").is_dir() {
            cache_snapshot(path)?
        } else {
            return Err(not_a_checkpoint(format!(
                "no config.json here (found: {}); expected a Hugging Face checkpoint directory with config.json and model.safetensors",
                describe_dir(path)
            )));
        };
        let config = dir.join(CONFIG_FILE);
        if dir.join(WEIGHTS_FILE).is_file() {
            return Ok(Self {
                shards: vec![dir.join(WEIGHTS_FILE)],
                index: None,
                dir,
                config,
            });
        }
        let index = dir.join(INDEX_FILE);
        if index.is_file() {
            let shards = shard_files(&index)?;
            return Ok(Self {
                dir,
                config,
                shards,
                index: Some(index),
            });
        }
        Err(Error::NotACheckpoint {
            message: format!(
                "config.json is here but no {WEIGHTS_FILE} or {INDEX_FILE} (found: {})",
                describe_dir(&dir)
            ),
            path: dir,
        })
    }
}

/// A short listing of a directory's entries for error messages.
fn describe_dir(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.len() {
        0 => "nothing".into(),
        n if n > 8 => format!("{} and {} more", names[..8].join(", "), n - 8),
        _ => names.join(", "),
    }
}

/// Resolves a cache repository directory to its snapshot: `refs/main` if present, else the only
/// snapshot.
fn cache_snapshot(repo: &Path) -> Result<PathBuf, Error> {
    let refs_main = repo.join("refs").join("main");
    if let Ok(revision) = std::fs::read_to_string(&refs_main) {
        let snapshot = repo.join("snapshots").join(revision.trim());
        if snapshot.join(CONFIG_FILE).is_file() {
            return Ok(snapshot);
        }
        return Err(Error::NotACheckpoint {
            path: snapshot,
            message: format!("refs/main names this snapshot but it has no {CONFIG_FILE}"),
        });
    }
    let snapshots: Vec<PathBuf> = std::fs::read_dir(repo.join("snapshots"))
        .map_err(|source| Error::Io {
            path: repo.join("snapshots"),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(CONFIG_FILE).is_file())
        .collect();
    match snapshots.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Error::NotACheckpoint {
            path: repo.to_path_buf(),
            message: format!("no snapshot with {CONFIG_FILE} under snapshots/"),
        }),
        _ => Err(Error::NotACheckpoint {
            path: repo.to_path_buf(),
            message: format!(
                "{} snapshots and no refs/main; pass the snapshot directory you want",
                snapshots.len()
            ),
        }),
    }
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The distinct shard files named by an index, in name order.
fn shard_files(index: &Path) -> Result<Vec<PathBuf>, Error> {
    let text = std::fs::read_to_string(index).map_err(|source| Error::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let parsed: ShardIndex = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: index.to_path_buf(),
        source,
    })?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<String> = parsed.weight_map.into_values().collect();
    files.sort();
    files.dedup();
    files
        .into_iter()
        .map(|name| {
            // A shard is a file of the checkpoint folder: a bare file name, never a path that
            // could lead elsewhere (`../../x`, `/etc/passwd`).
            let mut components = Path::new(&name).components();
            let plain = matches!(
                (components.next(), components.next()),
                (Some(std::path::Component::Normal(_)), None)
            );
            if !plain || name.contains('\\') {
                return Err(Error::NotACheckpoint {
                    path: index.to_path_buf(),
                    message: format!(
                        "the index names shard {name:?}, which is not a file name inside {}; refusing to read outside the checkpoint folder",
                        dir.display()
                    ),
                });
            }
            let path = dir.join(&name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::NotACheckpoint {
                    path: index.to_path_buf(),
                    message: format!("the index names shard {name} but it is not in {}", dir.display()),
                })
            }
        })
        .collect()
}

/// Where one tensor lies in a mapped file.
struct TensorEntry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    offset: usize,
    len_bytes: usize,
}

/// A [`TensorSource`] over memory-mapped safetensors files that checks every request and
/// remembers which tensors were used.
pub struct SafetensorsSource {
    files: Vec<(PathBuf, SharedBytes)>,
    entries: HashMap<String, TensorEntry>,
    used: HashSet<String>,
    /// Used in "missing tensor" errors: the single file, or the index.
    origin: PathBuf,
}

impl SafetensorsSource {
    /// Maps and parses the weight files of `files`.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be opened or mapped, [`Error::Safetensors`] if one is
    /// truncated or malformed, [`Error::NotACheckpoint`] if two shards hold the same tensor.
    pub fn open(files: &CheckpointFiles) -> Result<Self, Error> {
        let mut buffers = Vec::with_capacity(files.shards.len());
        for path in &files.shards {
            let file = File::open(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            // SAFETY (of the map's contents): checkpoints are treated as read-only; a file
            // changed under a running process is outside what we can guard against, as for
            // every mmap-based loader.
            #[allow(
                unsafe_code,
                reason = "memory-mapping is inherently unsafe; the file is opened read-only"
            )]
            let map = unsafe { Mmap::map(&file) }.map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let bytes: SharedBytes = Arc::new(map);
            buffers.push((path.clone(), bytes));
        }
        let origin = files.index.clone().unwrap_or_else(|| files.shards[0].clone());
        Self::from_buffers(buffers, origin)
    }

    /// A source over in-memory safetensors buffers, each named by a path for messages.
    ///
    /// # Errors
    /// [`Error::Safetensors`] if a buffer is truncated or malformed, [`Error::NotACheckpoint`]
    /// if two buffers hold the same tensor.
    pub fn from_buffers(buffers: Vec<(PathBuf, SharedBytes)>, origin: PathBuf) -> Result<Self, Error> {
        let mut entries = HashMap::new();
        for (file_index, (path, bytes)) in buffers.iter().enumerate() {
            let data: &[u8] = (**bytes).as_ref();
            let parsed = SafeTensors::deserialize(data).map_err(|e| Error::Safetensors {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let base = data.as_ptr() as usize;
            for (name, view) in parsed.tensors() {
                let entry = TensorEntry {
                    file: file_index,
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    offset: view.data().as_ptr() as usize - base,
                    len_bytes: view.data().len(),
                };
                if entries.insert(name.clone(), entry).is_some() {
                    return Err(Error::NotACheckpoint {
                        path: path.clone(),
                        message: format!("tensor `{name}` appears in more than one shard"),
                    });
                }
            }
        }
        Ok(Self {
            files: buffers,
            entries,
            used: HashSet::new(),
            origin,
        })
    }

    /// Tensors present in the files that were never requested, sorted.
    pub fn unused(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .keys()
            .filter(|n| !self.used.contains(*n))
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// The location used in error messages (the single file or the shard index).
    pub fn origin(&self) -> &Path {
        &self.origin
    }
}

impl TensorSource for SafetensorsSource {
    fn tensor(&mut self, name: &str, shape: &[usize], _init: Init) -> Result<Tensor, Error> {
        let entry = self.entries.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            path: self.origin.clone(),
        })?;
        let (path, map) = &self.files[entry.file];
        if entry.shape != shape {
            return Err(Error::TensorShape {
                name: name.to_string(),
                path: path.clone(),
                expected: shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let count: usize = shape.iter().product();
        let bytes = &(**map).as_ref()[entry.offset..entry.offset + entry.len_bytes];
        let tensor = match entry.dtype {
            Dtype::F32 => Tensor::mapped(name, shape.to_vec(), map.clone(), entry.offset, count).unwrap_or_else(|| {
                let data = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Tensor::owned(name, shape.to_vec(), data)
            }),
            Dtype::BF16 => {
                let data = bytes
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect();
                Tensor::owned(name, shape.to_vec(), data)
            }
            Dtype::F16 => {
                let data = bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect();
                Tensor::owned(name, shape.to_vec(), data)
            }
            other => {
                return Err(Error::TensorDtype {
                    name: name.to_string(),
                    path: path.clone(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        self.used.insert(name.to_string());
        Ok(tensor)
    }
}

/// Builds every weight from `source` and refuses tensors the configuration does not use.
fn load_weights(config: &Config, mut source: SafetensorsSource) -> Result<Weights, Error> {
    let weights = Weights::build(config, &mut source)?;
    let unused = source.unused();
    if !unused.is_empty() {
        return Err(Error::UnexpectedTensors {
            path: source.origin().to_path_buf(),
            names: unused,
        });
    }
    Ok(weights)
}

/// Loads a checkpoint held in memory: `config.json` text and one safetensors buffer (used for
/// the model compiled into the binary). `name` stands for the files in messages.
///
/// # Errors
/// As [`load`].
pub fn load_from_memory(name: &str, config_json: &str, weights: SharedBytes) -> Result<(Config, Weights), Error> {
    let config_path = PathBuf::from(format!("{name}/{CONFIG_FILE}"));
    let file: crate::config::ConfigFile = serde_json::from_str(config_json).map_err(|source| Error::Json {
        path: config_path.clone(),
        source,
    })?;
    let config = file.resolve(&config_path)?;
    let origin = PathBuf::from(format!("{name}/{WEIGHTS_FILE}"));
    let source = SafetensorsSource::from_buffers(vec![(origin.clone(), weights)], origin)?;
    let weights = load_weights(&config, source)?;
    Ok((config, weights))
}

/// Loads and checks the configuration and every weight of the checkpoint in `files`.
///
/// # Errors
/// Any configuration or weight error, and [`Error::UnexpectedTensors`] when the files hold
/// tensors the configuration does not account for.
pub fn load(files: &CheckpointFiles) -> Result<(Config, Weights), Error> {
    let config = Config::from_file(&files.config)?;
    let weights = load_weights(&config, SafetensorsSource::open(files)?)?;
    Ok((config, weights))
}
