//! Counters that the core's loops add to while Python reads them from another thread:
//! how the hashing or copying of one multi-GiB file shows progress before the call
//! returns. The bindings wrap a `Counter` as `artisync._core.Progress`.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes and files done so far. Only ever grows; any thread may add or read.
#[derive(Debug, Default)]
pub struct Counter {
    bytes: AtomicU64,
    files: AtomicU64,
}

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_bytes(&self, n: u64) {
        // Relaxed: readers want a recent figure, not an ordering with other memory.
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_files(&self, n: u64) {
        self.files.fetch_add(n, Ordering::Relaxed);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }
}

/// Add `n` bytes to `counter`, if the caller asked for progress.
pub fn add_bytes(counter: Option<&Counter>, n: u64) {
    if let Some(c) = counter {
        c.add_bytes(n);
    }
}

/// Count one more file done, if the caller asked for progress.
pub fn add_file(counter: Option<&Counter>) {
    if let Some(c) = counter {
        c.add_files(1);
    }
}

/// A reader that adds every byte it reads to a counter: wrap the reader handed to a
/// hashing loop (`md5_stream(Counted::new(file, progress))`) to count what it hashes.
pub struct Counted<'a, R> {
    inner: R,
    counter: Option<&'a Counter>,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, counter: Option<&'a Counter>) -> Self {
        Counted { inner, counter }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        add_bytes(self.counter, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_reads_add_what_they_read_and_nothing_without_a_counter() {
        let data = vec![7u8; 10_000];
        let counter = Counter::new();
        let mut out = Vec::new();
        Counted::new(&data[..], Some(&counter))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(counter.bytes(), 10_000);
        Counted::new(&data[..], None)
            .read_to_end(&mut Vec::new())
            .unwrap();
        assert_eq!(counter.bytes(), 10_000);
    }

    #[test]
    fn counters_add_up_across_threads() {
        let counter = Counter::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        add_bytes(Some(&counter), 3);
                        add_file(Some(&counter));
                    }
                });
            }
        });
        assert_eq!((counter.bytes(), counter.files()), (12_000, 4_000));
    }
}
