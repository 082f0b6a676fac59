//! What this process is writing, so that an interrupted run can undo what is half-done: the
//! output folders it created, the temporary files being written, and the outputs finished.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The files and folders of this process's writes so far.
struct Writes {
    /// Folders this process created (they did not exist before).
    created_dirs: Vec<PathBuf>,
    /// Temporary files being written, before their rename.
    temporaries: Vec<PathBuf>,
    /// Outputs written whole (renamed into place).
    finished: Vec<PathBuf>,
}

static WRITES: Mutex<Writes> = Mutex::new(Writes::new());

fn writes() -> std::sync::MutexGuard<'static, Writes> {
    WRITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records that this process created `dir`.
pub(crate) fn created_dir(dir: &Path) {
    writes().created_dir(dir);
}

/// Records that `temporary` is being written.
pub(crate) fn writing(temporary: &Path) {
    writes().writing(temporary);
}

/// Records that `temporary` is gone: renamed to `output` (`Some`) or removed after a failure.
pub(crate) fn done(temporary: &Path, output: Option<&Path>) {
    writes().done(temporary, output);
}

impl Writes {
    fn created_dir(&mut self, dir: &Path) {
        self.created_dirs.push(dir.to_path_buf());
    }

    fn writing(&mut self, temporary: &Path) {
        self.temporaries.push(temporary.to_path_buf());
    }

    fn done(&mut self, temporary: &Path, output: Option<&Path>) {
        self.temporaries.retain(|t| t != temporary);
        if let Some(output) = output {
            self.finished.push(output.to_path_buf());
        }
    }
}

/// What [`undo_unfinished`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Undone {
    /// Temporary files removed.
    pub removed_temporaries: usize,
    /// Folders this process had created, removed because they were empty.
    pub removed_dirs: Vec<PathBuf>,
    /// Outputs that had been written whole before the interruption (kept).
    pub finished: Vec<PathBuf>,
}

impl Undone {
    /// One sentence for the interruption message: what was removed and what stays.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.finished.is_empty() {
            parts.push("nothing was written".to_string());
        } else {
            let names: Vec<String> = self.finished.iter().map(|p| p.display().to_string()).collect();
            parts.push(format!("written whole before it: {}", names.join(", ")));
        }
        if self.removed_temporaries > 0 {
            parts.push(format!(
                "{} half-written file{} removed",
                self.removed_temporaries,
                if self.removed_temporaries == 1 { "" } else { "s" }
            ));
        }
        for dir in &self.removed_dirs {
            parts.push(format!("the empty folder {} it had created removed", dir.display()));
        }
        parts.join("; ")
    }
}

/// Removes the temporary files being written and the folders this process created that are
/// (then) empty, and lists the outputs written whole; for a handler of SIGINT and SIGTERM.
pub fn undo_unfinished() -> Undone {
    writes().undo()
}

impl Writes {
    const fn new() -> Self {
        Self {
            created_dirs: Vec::new(),
            temporaries: Vec::new(),
            finished: Vec::new(),
        }
    }

    fn undo(&mut self) -> Undone {
        let mut undone = Undone {
            finished: self.finished.clone(),
            ..Undone::default()
        };
        for temporary in self.temporaries.drain(..) {
            if std::fs::remove_file(&temporary).is_ok() {
                undone.removed_temporaries += 1;
            }
        }
        // Newest first, so that a folder created inside another goes before it.
        for dir in self.created_dirs.iter().rev() {
            let empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
            if empty && std::fs::remove_dir(dir).is_ok() {
                undone.removed_dirs.push(dir.clone());
            }
        }
        undone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_removes_temporaries_and_empty_created_folders_only() {
        let root = tempfile::tempdir().unwrap();
        let (empty, kept) = (root.path().join("empty"), root.path().join("kept"));
        std::fs::create_dir(&empty).unwrap();
        std::fs::create_dir(&kept).unwrap();
        // A registry of its own: the process-wide one serves the other tests' writes.
        let mut writes = Writes::new();
        writes.created_dir(&empty);
        writes.created_dir(&kept);
        let finished = kept.join("report.json");
        std::fs::write(&finished, b"{}").unwrap();
        writes.done(&kept.join(".report.json.tmp"), Some(&finished));
        let temporary = kept.join(".trades.csv.tmp");
        std::fs::write(&temporary, b"half").unwrap();
        writes.writing(&temporary);
        let undone = writes.undo();
        assert!(!empty.exists() && kept.exists() && finished.exists() && !temporary.exists());
        assert_eq!(undone.removed_temporaries, 1);
        assert!(undone.removed_dirs.contains(&empty) && !undone.removed_dirs.contains(&kept));
        assert!(undone.finished.contains(&finished));
        let text = undone.describe();
        assert!(
            text.contains("written whole before it: ") && text.contains("1 half-written file removed"),
            "{text}"
        );
    }
}
