//! The core's one error type: every failure names the path it happened on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A failure of the core, carrying the path it concerns.
#[derive(Debug)]
pub enum CoreError {
    /// An I/O call failed on `path`.
    Io { path: PathBuf, source: io::Error },
    /// Following the symlink `link` leads back to its ancestor directory `target`.
    SymlinkLoop { link: PathBuf, target: PathBuf },
    /// An argument no call could succeed with (a zero part size, zero threads).
    InvalidArgument(String),
}

pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// An error from a raw errno, for conditions the kernel would not report by itself
    /// (opening a directory succeeds; hashing it must not).
    pub fn errno(path: impl Into<PathBuf>, errno: i32) -> Self {
        Self::io(path, io::Error::from_raw_os_error(errno))
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            CoreError::SymlinkLoop { link, target } => write!(
                f,
                "symlink loop: {} leads back to its ancestor {}",
                link.display(),
                target.display()
            ),
            CoreError::InvalidArgument(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CoreError {}

/// Attach a path to an `io::Result`, so no I/O error leaves the core unnamed.
pub trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> AtPath<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| CoreError::io(path, source))
    }
}
