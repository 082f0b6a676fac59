//! [`Storage`]: the elements of a packed weight matrix, either owned or borrowed from a shared
//! byte buffer (a memory-mapped compile-cache file), so a matrix packed once can be used by
//! later processes without copying it.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Bytes shared between matrices: one memory-mapped file, or any buffer that lives as long as
/// the matrices that borrow from it.
pub type SharedBuffer = Arc<dyn AsRef<[u8]> + Send + Sync>;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u32 {}
    impl Sealed for i8 {}
    impl Sealed for i32 {}
}

/// Element types a [`Storage`] may hold: plain numbers for which every bit pattern is a value
/// (so any bytes of the right length and alignment can be viewed as them).
pub trait Plain: sealed::Sealed + Copy + Send + Sync + 'static {}
impl Plain for f32 {}
impl Plain for u32 {}
impl Plain for i8 {}
impl Plain for i32 {}

/// Why bytes cannot be viewed as a [`Storage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError(String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StorageError {}

impl StorageError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

/// The elements of a matrix: owned, or `len` elements at byte `offset` of a shared buffer.
pub struct Storage<T: Plain> {
    inner: Inner<T>,
}

enum Inner<T> {
    Owned(Vec<T>),
    Shared {
        buffer: SharedBuffer,
        offset: usize,
        len: usize,
        element: PhantomData<T>,
    },
}

impl<T: Plain> Storage<T> {
    /// Views `len` elements at byte `offset` of `buffer`.
    ///
    /// # Errors
    /// If the range does not fit in the buffer or is not aligned for `T`.
    pub fn shared(buffer: SharedBuffer, offset: usize, len: usize) -> Result<Self, StorageError> {
        let bytes = (*buffer).as_ref();
        let size = len
            .checked_mul(size_of::<T>())
            .and_then(|n| n.checked_add(offset))
            .ok_or_else(|| StorageError::new(format!("{len} elements at byte {offset} overflow")))?;
        if size > bytes.len() {
            return Err(StorageError(format!(
                "{len} elements at byte {offset} run past the buffer's {} bytes",
                bytes.len()
            )));
        }
        if !(bytes.as_ptr() as usize + offset).is_multiple_of(align_of::<T>()) {
            return Err(StorageError(format!("byte {offset} is not aligned for its elements")));
        }
        Ok(Self {
            inner: Inner::Shared {
                buffer,
                offset,
                len,
                element: PhantomData,
            },
        })
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        match &self.inner {
            Inner::Owned(data) => data,
            Inner::Shared {
                buffer, offset, len, ..
            } => {
                let bytes = &(**buffer).as_ref()[*offset..*offset + *len * size_of::<T>()];
                // SAFETY: `shared` checked that the range is in bounds and aligned for T, the
                // buffer is immutable and kept alive by the Arc, and every bit pattern is a
                // value of T (`Plain`).
                #[allow(unsafe_code, reason = "viewing checked, aligned plain bytes as numbers")]
                unsafe {
                    std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), *len)
                }
            }
        }
    }

    /// The elements' bytes (native endianness), for writing them to a cache file.
    pub fn as_bytes(&self) -> &[u8] {
        let elements = self.as_slice();
        // SAFETY: a slice of plain numbers viewed as its bytes (u8 has no alignment needs).
        #[allow(unsafe_code, reason = "viewing plain numbers as bytes")]
        unsafe {
            std::slice::from_raw_parts(elements.as_ptr().cast::<u8>(), std::mem::size_of_val(elements))
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Owned(data) => data.len(),
            Inner::Shared { len, .. } => *len,
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the elements are borrowed from a shared buffer.
    pub fn is_shared(&self) -> bool {
        matches!(self.inner, Inner::Shared { .. })
    }
}

impl<T: Plain> From<Vec<T>> for Storage<T> {
    fn from(data: Vec<T>) -> Self {
        Self {
            inner: Inner::Owned(data),
        }
    }
}

impl<T: Plain> std::ops::Deref for Storage<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Plain> Clone for Storage<T> {
    fn clone(&self) -> Self {
        match &self.inner {
            Inner::Owned(data) => data.clone().into(),
            Inner::Shared {
                buffer, offset, len, ..
            } => Self {
                inner: Inner::Shared {
                    buffer: Arc::clone(buffer),
                    offset: *offset,
                    len: *len,
                    element: PhantomData,
                },
            },
        }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for Storage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("len", &self.len())
            .field("shared", &self.is_shared())
            .finish()
    }
}

impl<T: Plain + PartialEq> PartialEq for Storage<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_storage_views_the_buffer_and_checks_bounds_and_alignment() {
        let values = [1.0f32, -2.5, 3.25, 0.0];
        let mut bytes = vec![0u8; 32];
        // The first offset at which the buffer is f32-aligned (Vec<u8> promises no alignment).
        let start = (0..4)
            .find(|o| (bytes.as_ptr() as usize + o).is_multiple_of(4))
            .unwrap();
        for (i, v) in values.iter().enumerate() {
            bytes[start + 4 * i..start + 4 * i + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let buffer: SharedBuffer = Arc::new(bytes);
        let view = Storage::<f32>::shared(Arc::clone(&buffer), start, 4).unwrap();
        assert_eq!(view.as_slice(), values);
        assert!(view.is_shared() && view.clone().is_shared());
        assert_eq!(view.as_bytes().len(), 16);
        let past_end = Storage::<f32>::shared(Arc::clone(&buffer), start, 9).unwrap_err();
        assert!(past_end.to_string().contains("run past"), "{past_end}");
        assert!(Storage::<f32>::shared(Arc::clone(&buffer), usize::MAX, 2).is_err());
        let misaligned = Storage::<f32>::shared(buffer, start + 1, 1).unwrap_err();
        assert!(misaligned.to_string().contains("aligned"), "{misaligned}");
        let owned: Storage<f32> = values.to_vec().into();
        assert!(!owned.is_shared());
        assert_eq!(owned, view);
    }
}
