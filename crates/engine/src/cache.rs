//! The compile cache: the planned executor's prepared weights (packed f32 panels, bf16 pairs,
//! fused QKV layouts) written once to a file and memory-mapped by later processes instead of
//! being repacked, as `torch.compile` keeps its artifacts in a cache directory.
//!
//! An entry is one file named after a hash of its [key](EntryKey): everything that changes
//! the bytes (each checkpoint file's path, size and modification time, or the content hash of
//! an embedded model; the precision, the QKV fusion, this crate's version and packing layout,
//! the instruction-set family, the configuration). The file holds the key in full (checked on
//! read, so a hash collision is a miss), a checksum of its header and one per matrix; a
//! stale, truncated or corrupted entry is detected, reported and rebuilt, never used. Writes go
//! to a unique temporary name renamed into place, so concurrent processes never see half an
//! entry and the last rename wins with a complete one. A read-only or full directory only
//! costs speed: the weights are packed in memory as without a cache.
//!
//! File layout: `MAGIC` (16 bytes), header length (u64 LE), header checksum (u64 LE, XXH3),
//! the header as JSON ([`Header`]), zero padding to [`DATA_ALIGN`], then each matrix's bytes at
//! the offset its header entry gives (each [`DATA_ALIGN`]-aligned).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use chronos2::executor::Precision;
use chronos2::{Chronos2Model, ModelOrigin};
use chronos2_kernels::pool::Pool;
use chronos2_kernels::storage::SharedBuffer;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::packed_model::{layout_for, MatrixLayout, MatrixRequest, PackedMatrix, PackedModel};
use crate::EngineError;

/// First bytes of every entry.
const MAGIC: &[u8; 16] = b"chronos2-packed\n";
/// Version of the file layout and of the packing layouts it stores; bump on any change.
const FORMAT_VERSION: u32 = 2;
/// Alignment of the data section and of each matrix in it (a page, so mapped panels start on
/// cache lines and pages).
const DATA_ALIGN: usize = 4096;
/// File name extension of entries.
const EXTENSION: &str = "c2pack";

/// Whether compiled mode uses the cache (`--compile-cache`, `CHRONOS_COMPILE_CACHE`; the
/// original system's policy names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CachePolicy {
    /// Use a valid entry, else pack and write one.
    #[default]
    Prefer,
    /// Pack in memory; never read or write the cache.
    Never,
    /// Use a valid entry; fail when there is none.
    Only,
}

impl CachePolicy {
    /// Parses a policy name (`prefer`, `never`, `only`; case-insensitive).
    ///
    /// # Errors
    /// [`EngineError::Settings`] naming `source` (the flag or variable) and the choices.
    pub fn parse(source: &str, value: &str) -> Result<Self, EngineError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "prefer" => Ok(Self::Prefer),
            "never" => Ok(Self::Never),
            "only" => Ok(Self::Only),
            _ => Err(EngineError::Settings(format!(
                "unknown {source} `{value}`; expected prefer, never or only"
            ))),
        }
    }

    /// The policy's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prefer => "prefer",
            Self::Never => "never",
            Self::Only => "only",
        }
    }
}

/// The cache directory: `CHRONOS2_CACHE_DIR` if set, else the platform cache directory's
/// `chronos2` folder (`~/.cache/chronos2` on Linux). `None` if neither is known.
pub fn default_dir() -> Option<PathBuf> {
    default_dir_with(|name| std::env::var_os(name))
}

/// [`default_dir`] over the variables `env` returns.
pub fn default_dir_with(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    match env("CHRONOS2_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => dirs::cache_dir().map(|dir| dir.join("chronos2")),
    }
}

/// What makes the bytes of an entry: compared in full when an entry is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryKey {
    /// One `name: value` line per component.
    text: String,
    /// What the model is called, for listings and file names.
    model: String,
}

impl EntryKey {
    /// The key of `model`'s weights prepared with QKV fusion `fused_qkv` in `precision`, or
    /// `None` for a model made in this process (random weights), which nothing outside the
    /// process can stand for.
    pub fn new(model: &Chronos2Model, fused_qkv: bool, precision: Precision) -> Option<Self> {
        let (label, origin) = match model.origin() {
            ModelOrigin::Files(files) => {
                let mut lines = String::new();
                for path in std::iter::once(&files.config)
                    .chain(files.index.iter())
                    .chain(&files.shards)
                {
                    lines.push_str(&format!("file: {}\n", file_identity(path)?));
                }
                let label = files
                    .dir
                    .file_name()
                    .map_or("model".into(), |n| n.to_string_lossy().into_owned());
                (label, lines)
            }
            ModelOrigin::Embedded {
                name,
                config_json,
                weights,
            } => (
                name.clone(),
                format!(
                    "embedded: {name} config xxh3 {:016x} weights {} bytes xxh3 {:016x}\n",
                    xxh3_64(config_json.as_bytes()),
                    weights.len(),
                    xxh3_64(weights)
                ),
            ),
            ModelOrigin::Generated => return None,
        };
        let text = format!(
            "format: {FORMAT_VERSION}\nengine: {}\n{origin}config xxh3: {:016x}\nprecision: {}\nfused qkv: {fused_qkv}\nlayout: {:?} panels of {} columns\nisa: {:?}\nendian: {}\n",
            env!("CARGO_PKG_VERSION"),
            xxh3_64(format!("{:?}", model.config()).as_bytes()),
            precision.name(),
            layout_for(precision),
            chronos2_kernels::packed::NR,
            chronos2_kernels::IsaLevel::active(),
            if cfg!(target_endian = "little") { "little" } else { "big" },
        );
        Some(Self { text, model: label })
    }

    /// The entry's file name: the model's name (made file-safe) and the key's hash.
    fn file_name(&self) -> String {
        let safe: String = self
            .model
            .trim_start_matches('.')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        format!("{safe}-{:016x}.{EXTENSION}", xxh3_64(self.text.as_bytes()))
    }
}

/// `path size mtime` of a file, or `None` if it cannot be read.
fn file_identity(path: &Path) -> Option<String> {
    let canonical = fs::canonicalize(path).ok()?;
    let meta = fs::metadata(&canonical).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "{} {} bytes mtime {}.{:09}",
        canonical.display(),
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    ))
}

/// An entry's header.
#[derive(Serialize, Deserialize)]
struct Header {
    /// The full [`EntryKey`] text.
    key: String,
    /// What the model is called.
    model: String,
    /// Precision name.
    precision: String,
    /// Seconds since the Unix epoch when the entry was written.
    created: u64,
    /// Every matrix, by name.
    matrices: Vec<MatrixEntry>,
}

/// Where one matrix is in an entry.
#[derive(Serialize, Deserialize)]
struct MatrixEntry {
    name: String,
    layout: MatrixLayout,
    n: usize,
    k: usize,
    /// Its arrays (one, or values, scales and offsets for int8).
    parts: Vec<PartEntry>,
}

/// One array of a matrix: its place in the data section and its checksum.
#[derive(Serialize, Deserialize)]
struct PartEntry {
    offset: usize,
    bytes: usize,
    xxh3: u64,
}

/// What happened to the cache when a compiled model was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The policy is `never`, or the model has no identity outside this process.
    NotUsed(String),
    /// A valid entry was mapped.
    Hit(PathBuf),
    /// No valid entry: the weights were packed and an entry written.
    Written(PathBuf),
    /// No valid entry, and writing one failed (the weights were packed in memory).
    WriteFailed(String),
}

impl Default for CacheOutcome {
    fn default() -> Self {
        Self::NotUsed(String::new())
    }
}

impl CacheOutcome {
    /// A one-line note for users when something went wrong (`None` when all is well).
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::WriteFailed(reason) => Some(format!(
                "compile cache not written ({reason}); compiled mode packed the weights in memory"
            )),
            _ => None,
        }
    }
}

/// The packed model, from the cache or packed now, with what the cache did and why an entry
/// found was not used (stale, corrupt).
pub(crate) struct Prepared {
    pub model: PackedModel,
    pub outcome: CacheOutcome,
    pub rejected: Option<String>,
}

/// Packs `model`'s weights, or maps them from the cache under `dir` as `policy` says.
///
/// # Errors
/// [`EngineError::Cache`] when the policy is `only` and there is no valid entry.
pub(crate) fn prepare(
    model: &Chronos2Model,
    fused_qkv: bool,
    precision: Precision,
    pool: &Pool,
    policy: CachePolicy,
    dir: Option<&Path>,
) -> Result<Prepared, EngineError> {
    let pack = || PackedModel::new(model.weights(), fused_qkv, precision, pool);
    let key = EntryKey::new(model, fused_qkv, precision);
    let (key, dir) = match (policy, key, dir) {
        (CachePolicy::Never, _, _) => return Ok(not_used(pack(), "--compile-cache never")),
        (CachePolicy::Only, None, _) => {
            return Err(EngineError::Cache(
                "--compile-cache only: this model was made in memory (random weights), so it has no cache entry; load it from a checkpoint directory or use --compile-cache prefer".into(),
            ))
        }
        (CachePolicy::Only, _, None) => {
            return Err(EngineError::Cache(
                "--compile-cache only: no cache directory (set CHRONOS2_CACHE_DIR)".into(),
            ))
        }
        (_, None, _) => return Ok(not_used(pack(), "the model was made in memory")),
        (_, _, None) => return Ok(not_used(pack(), "no cache directory (set CHRONOS2_CACHE_DIR)")),
        (_, Some(key), Some(dir)) => (key, dir),
    };
    let path = dir.join(key.file_name());
    let rejected = match read_entry(&path, &key, model, fused_qkv, precision, pool) {
        Ok(packed) => {
            return Ok(Prepared {
                model: packed,
                outcome: CacheOutcome::Hit(path),
                rejected: None,
            })
        }
        Err(Miss::Absent) => None,
        Err(Miss::Invalid(reason)) => Some(format!("cache entry {} not used: {reason}", path.display())),
    };
    if policy == CachePolicy::Only {
        return Err(EngineError::Cache(format!(
            "--compile-cache only: {}; run once with --compile-cache prefer to create it (or use never)",
            rejected.unwrap_or_else(|| format!("no cache entry {} for this model and settings", path.display()))
        )));
    }
    let packed = pack();
    let outcome = match write_entry(&path, &key, &packed, precision) {
        Ok(()) => CacheOutcome::Written(path),
        Err(reason) => CacheOutcome::WriteFailed(format!("{}: {reason}", path.display())),
    };
    Ok(Prepared {
        model: packed,
        outcome,
        rejected,
    })
}

fn not_used(model: PackedModel, why: &str) -> Prepared {
    Prepared {
        model,
        outcome: CacheOutcome::NotUsed(why.into()),
        rejected: None,
    }
}

/// Why an entry was not used.
enum Miss {
    /// There is none.
    Absent,
    /// There is one, and it is stale or damaged.
    Invalid(String),
}

/// Serialises `packed` into a temporary file next to `path` and renames it into place.
fn write_entry(path: &Path, key: &EntryKey, packed: &PackedModel, precision: Precision) -> Result<(), String> {
    let dir = path.parent().ok_or("no parent directory")?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create the directory: {e}"))?;
    let matrices = packed.matrices();
    let mut entries = Vec::with_capacity(matrices.len());
    let mut offset = 0usize;
    for (name, matrix) in &matrices {
        let mut parts = Vec::new();
        for bytes in matrix.parts() {
            parts.push(PartEntry {
                offset,
                bytes: bytes.len(),
                xxh3: xxh3_64(bytes),
            });
            offset = (offset + bytes.len()).next_multiple_of(DATA_ALIGN);
        }
        entries.push(MatrixEntry {
            name: name.clone(),
            layout: matrix.layout(),
            n: matrix.n(),
            k: matrix.k(),
            parts,
        });
    }
    let header = Header {
        key: key.text.clone(),
        model: key.model.clone(),
        precision: precision.name().into(),
        created: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        matrices: entries,
    };
    let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let data_start = data_start(json.len());
    let temporary = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name().map_or("entry".into(), |n| n.to_string_lossy()),
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, File::create(&temporary)?);
        file.write_all(MAGIC)?;
        file.write_all(&(json.len() as u64).to_le_bytes())?;
        file.write_all(&xxh3_64(&json).to_le_bytes())?;
        file.write_all(&json)?;
        let mut at = MAGIC.len() + 16 + json.len();
        for ((_, matrix), entry) in matrices.iter().zip(&header.matrices) {
            for (bytes, part) in matrix.parts().into_iter().zip(&entry.parts) {
                let start = data_start + part.offset;
                file.write_all(&vec![0u8; start - at])?;
                file.write_all(bytes)?;
                at = start + part.bytes;
            }
        }
        // No fsync: an entry lost or torn by a crash fails its checksums and is rebuilt.
        file.into_inner().map_err(|e| e.into_error())?;
        fs::rename(&temporary, path)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&temporary);
        e.to_string()
    })
}

/// Where the data section starts for a header of `header_len` bytes.
fn data_start(header_len: usize) -> usize {
    (MAGIC.len() + 16 + header_len).next_multiple_of(DATA_ALIGN)
}

/// An entry's header, read and checked against its checksum.
fn read_header(bytes: &[u8]) -> Result<(Header, usize), String> {
    if bytes.len() < MAGIC.len() + 16 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a chronos2 cache entry (bad magic)".into());
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let len = usize::try_from(word(16)).map_err(|_| "header length overflows")?;
    let json = bytes.get(32..32usize.saturating_add(len)).ok_or("truncated header")?;
    if xxh3_64(json) != word(24) {
        return Err("header checksum mismatch".into());
    }
    let header: Header = serde_json::from_slice(json).map_err(|e| format!("unreadable header: {e}"))?;
    Ok((header, data_start(len)))
}

/// Maps the entry at `path`, checks its key and every checksum (matrices in parallel on
/// `pool`), and builds the model from views into the mapping.
fn read_entry(
    path: &Path,
    key: &EntryKey,
    model: &Chronos2Model,
    fused_qkv: bool,
    precision: Precision,
    pool: &Pool,
) -> Result<PackedModel, Miss> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(Miss::Absent)
        }
        Err(e) => return Err(Miss::Invalid(format!("cannot open: {e}"))),
    };
    // SAFETY (of the contents): entries are only ever created by rename, never written in
    // place, so a mapped entry does not change under us; a file damaged on disk is caught by
    // the checksums below before any of it is used.
    #[allow(
        unsafe_code,
        reason = "memory-mapping is inherently unsafe; entries are immutable once renamed into place"
    )]
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .map_err(|e| Miss::Invalid(format!("cannot map: {e}")))?;
    let (header, start) = read_header(&map).map_err(Miss::Invalid)?;
    if header.key != key.text {
        return Err(Miss::Invalid("made for other files or settings (stale)".into()));
    }
    let parts: Vec<(&MatrixEntry, &PartEntry)> = header
        .matrices
        .iter()
        .flat_map(|m| m.parts.iter().map(move |p| (m, p)))
        .collect();
    let invalid = Mutex::new(None::<String>);
    pool.parallel_for(parts.len(), &|i| {
        let (matrix, part) = parts[i];
        let fits = start
            .checked_add(part.offset)
            .and_then(|at| at.checked_add(part.bytes))
            .is_some_and(|end| end <= map.len());
        let problem = if !fits {
            Some(format!(
                "matrix {} runs past the end of the file (truncated)",
                matrix.name
            ))
        } else if xxh3_64(&map[start + part.offset..][..part.bytes]) != part.xxh3 {
            Some(format!("matrix {} fails its checksum (corrupted)", matrix.name))
        } else {
            None
        };
        if let Some(problem) = problem {
            invalid.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(problem);
        }
    });
    if let Some(problem) = invalid.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(Miss::Invalid(problem));
    }
    let buffer: SharedBuffer = Arc::new(map);
    let by_name: HashMap<&str, &MatrixEntry> = header.matrices.iter().map(|e| (e.name.as_str(), e)).collect();
    let take = |request: MatrixRequest<'_>| -> Result<PackedMatrix, String> {
        let entry = by_name
            .get(request.name.as_str())
            .ok_or_else(|| format!("matrix {} is missing", request.name))?;
        let layout = layout_for(request.precision);
        if entry.layout != layout || entry.n != request.n || entry.k != request.k {
            return Err(format!(
                "matrix {} is {:?} {}x{}, expected {layout:?} {}x{}",
                request.name, entry.layout, entry.n, entry.k, request.n, request.k
            ));
        }
        let parts: Vec<(SharedBuffer, usize, usize)> = entry
            .parts
            .iter()
            .map(|p| (Arc::clone(&buffer), start + p.offset, p.bytes))
            .collect();
        PackedMatrix::from_parts(layout, entry.n, entry.k, &parts).map_err(|e| format!("matrix {}: {e}", request.name))
    };
    PackedModel::build(model.weights(), fused_qkv, precision, pool, &take).map_err(Miss::Invalid)
}

/// One entry of the cache directory, as `chronos2 cache list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedEntry {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The model it was made for, its precision and the first checkpoint file of its key
    /// (`None` if the header cannot be read: a damaged entry).
    pub description: Option<EntrySummary>,
}

/// What an entry belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntrySummary {
    /// The model's name.
    pub model: String,
    /// Precision name.
    pub precision: String,
    /// Seconds since the Unix epoch when it was written.
    pub created: u64,
    /// The key's lines (files with sizes and times, settings).
    pub key: String,
}

/// The entries under `dir` (none if it does not exist), sorted by name.
///
/// # Errors
/// If the directory exists but cannot be read.
pub fn list(dir: &Path) -> std::io::Result<Vec<ListedEntry>> {
    let mut entries = Vec::new();
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(e),
    };
    for item in read {
        let item = item?;
        let path = item.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let bytes = item.metadata()?.len();
        let description = read_summary(&path);
        entries.push(ListedEntry {
            path,
            bytes,
            description,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

fn read_summary(path: &Path) -> Option<EntrySummary> {
    use std::io::Read as _;
    let mut file = File::open(path).ok()?;
    let mut start = [0u8; 32];
    file.read_exact(&mut start).ok()?;
    let len = usize::try_from(u64::from_le_bytes(start[16..24].try_into().ok()?)).ok()?;
    let mut bytes = start.to_vec();
    bytes.resize(32 + len.min(64 << 20), 0);
    file.read_exact(&mut bytes[32..]).ok()?;
    let (header, _) = read_header(&bytes).ok()?;
    Some(EntrySummary {
        model: header.model,
        precision: header.precision,
        created: header.created,
        key: header.key,
    })
}

/// Deletes every entry (and leftover temporary file) under `dir`; returns how many files and
/// bytes were removed. Other files are left alone.
///
/// # Errors
/// If the directory exists but cannot be read, or an entry cannot be removed.
pub fn clear(dir: &Path) -> std::io::Result<(usize, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    for item in read {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(&format!(".{EXTENSION}"))
            || (name.starts_with('.') && name.contains(&format!(".{EXTENSION}.")) && name.ends_with(".tmp"));
        if ours {
            bytes += item.metadata()?.len();
            fs::remove_file(item.path())?;
            files += 1;
        }
    }
    Ok((files, bytes))
}
