//! MD5 of many independent streams at once, in SIMD lanes: whole files (`hash_files`)
//! and the parts of one file (`part_md5s`).
//!
//! One MD5 stream is a chain of 64-byte blocks, each needing the one before, so it runs
//! no faster than one core's scalar unit. Independent streams run side by side, 8 to an
//! AVX2 register and 16 to an AVX-512 one (the `md5-many` crate; docs/decisions.md says
//! why that crate). Each worker thread keeps up to [`SLOTS`] streams open, reads the
//! next piece of each, and hashes the pieces in one call; a stream that ends makes room
//! for the next job, so the lanes stay full until the jobs run out. A worker left with
//! one stream hashes it on the single-stream path, as fast as one MD5 can go.

use std::borrow::Borrow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use fearless_simd::Level;
use md5_many::{Md5Many, Md5State};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::hash::Md5Digest;
use crate::progress::{self, Counter};

/// Bytes read from each stream per round: large enough that a round's reads cost little
/// next to hashing them, small enough that [`SLOTS`] of them stay in the caches' reach.
pub const PIECE: usize = 256 << 10;

/// Streams one worker hashes at once: AVX-512's widest kernel interleaves three chains
/// of 16 lanes, and fewer streams than that leave lanes idle.
pub const SLOTS: usize = 48;

/// The SIMD level the lanes run at: the CPU's best unless a test or a benchmark names one.
#[derive(Clone, Copy, Debug)]
pub struct Lanes(Md5Many);

impl Lanes {
    /// The best level this CPU has.
    pub fn best() -> Self {
        Lanes(Md5Many::new())
    }

    /// The level called `name` (one of [`Lanes::names`], or "auto" for the best).
    pub fn named(name: &str) -> Result<Self> {
        if name == "auto" {
            return Ok(Self::best());
        }
        match levels().into_iter().find(|(n, _)| *n == name) {
            Some((_, level)) => Ok(Lanes(Md5Many::from_level(level))),
            None if KNOWN.contains(&name) => Err(CoreError::InvalidArgument(format!(
                "this CPU cannot run {name}: it runs {}",
                Self::names().join(", ")
            ))),
            None => Err(CoreError::InvalidArgument(format!(
                "{name:?} is not a SIMD level: expected auto or one of {}",
                KNOWN.join(", ")
            ))),
        }
    }

    /// The levels this CPU can run, best first ("scalar" is always last).
    pub fn names() -> Vec<&'static str> {
        levels().into_iter().map(|(name, _)| name).collect()
    }

    /// 32-bit lanes per register at this level (16 for AVX-512, 8 for AVX2).
    pub fn width(self) -> usize {
        self.0.lanes()
    }
}

/// Every level's name, on any CPU.
const KNOWN: [&str; 6] = ["avx512", "avx2", "sse4.2", "sse2", "neon", "scalar"];

/// The levels this CPU supports, best first.
fn levels() -> Vec<(&'static str, Level)> {
    let detected = Level::new();
    let mut out: Vec<(&'static str, Level)> = Vec::new();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if let Some(token) = detected.as_avx512() {
            out.push(("avx512", Level::Avx512(token)));
        }
        if let Some(token) = detected.as_avx2() {
            out.push(("avx2", Level::Avx2(token)));
        }
        if let Some(token) = detected.as_sse4_2() {
            out.push(("sse4.2", Level::Sse4_2(token)));
        }
        if let Some(token) = detected.as_sse2() {
            out.push(("sse2", Level::Sse2(token)));
        }
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(token) = detected.as_neon() {
        out.push(("neon", Level::Neon(token)));
    }
    out.push(("scalar", Level::fallback()));
    out
}

/// One stream to hash, as the engine sees it.
pub trait Job: Sync {
    /// What an open stream holds: the file to read, and whatever `finish` checks.
    type Open: Borrow<File>;
    /// What a hashed stream gives.
    type Out: Send + Sync;

    /// Open the stream: what to read, the offset of its first byte, and its length.
    fn open(&self) -> Result<(Self::Open, u64, u64)>;

    /// The error a failed read of this stream is reported as (`UnexpectedEof` when the
    /// file ended before the stream's length).
    fn read_error(&self, err: io::Error) -> CoreError;

    /// The outcome, once every byte of the stream is hashed into `md5`.
    fn finish(&self, open: Self::Open, md5: Md5Digest) -> Result<Self::Out>;
}

/// Hash every job on the current rayon pool, [`SLOTS`] streams a worker at most.
/// Results keep the jobs' order; a job that fails does not stop the others. Bytes are
/// added to `progress` as they are hashed.
pub fn hash_jobs<J: Job>(
    lanes: Lanes,
    jobs: &[J],
    progress: Option<&Counter>,
) -> Vec<Result<J::Out>> {
    let results: Vec<OnceLock<Result<J::Out>>> = jobs.iter().map(|_| OnceLock::new()).collect();
    let workers = rayon::current_num_threads().clamp(1, jobs.len().max(1));
    // Jobs spread evenly: 64 files on 2 workers are 32 streams each, not 48 and 16.
    let width = jobs.len().div_ceil(workers).clamp(1, SLOTS);
    let next = AtomicUsize::new(0);
    (0..workers).into_par_iter().for_each(|_| {
        Worker::new(lanes, width).run(jobs, &next, &results, progress);
    });
    results
        .into_iter()
        .map(|cell| cell.into_inner().expect("every job is taken by a worker"))
        .collect()
}

/// An open stream in a worker's slot.
struct Slot<O> {
    job: usize,
    open: O,
    /// Offset of the next byte to read, and of the stream's end.
    offset: u64,
    end: u64,
    /// This round's piece: `buf[..filled]`.
    buf: Vec<u8>,
    filled: usize,
}

struct Worker<O> {
    lanes: Lanes,
    width: usize,
    slots: Vec<Slot<O>>,
    /// The MD5 state of `slots[i]` is `states[i]`: the crate hashes a slice of states.
    states: Vec<Md5State>,
    /// Buffers of streams that ended, for the next ones.
    spare: Vec<Vec<u8>>,
}

impl<O: Borrow<File>> Worker<O> {
    fn new(lanes: Lanes, width: usize) -> Self {
        Worker {
            lanes,
            width,
            slots: Vec::with_capacity(width),
            states: Vec::with_capacity(width),
            spare: Vec::new(),
        }
    }

    fn run<J: Job<Open = O>>(
        mut self,
        jobs: &[J],
        next: &AtomicUsize,
        results: &[OnceLock<Result<J::Out>>],
        progress: Option<&Counter>,
    ) {
        let settle = |job: usize, outcome: Result<J::Out>| {
            // Each job is taken by one worker and settled once.
            let _ = results[job].set(outcome);
        };
        loop {
            while self.slots.len() < self.width {
                let job = next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = jobs.get(job) else { break };
                match spec.open() {
                    Ok((open, start, len)) => self.push(job, open, start, len),
                    Err(e) => settle(job, Err(e)),
                }
            }
            if self.slots.is_empty() {
                return;
            }
            for i in (0..self.slots.len()).rev() {
                if let Err(e) = self.read_piece(i) {
                    let slot = self.remove(i);
                    settle(slot.job, Err(jobs[slot.job].read_error(e)));
                }
            }
            let hashed = self.hash_pieces();
            progress::add_bytes(progress, hashed);
            self.finish_ended(|slot, md5| settle(slot.job, jobs[slot.job].finish(slot.open, md5)));
        }
    }

    fn push(&mut self, job: usize, open: O, start: u64, len: u64) {
        self.slots.push(Slot {
            job,
            open,
            offset: start,
            end: start + len,
            buf: self.spare.pop().unwrap_or_default(),
            filled: 0,
        });
        self.states.push(Md5State::new());
    }

    fn remove(&mut self, i: usize) -> Slot<O> {
        self.states.swap_remove(i);
        let mut slot = self.slots.swap_remove(i);
        self.spare.push(std::mem::take(&mut slot.buf));
        slot
    }

    /// Read slot `i`'s next piece into its buffer.
    fn read_piece(&mut self, i: usize) -> io::Result<()> {
        let slot = &mut self.slots[i];
        let want = PIECE.min((slot.end - slot.offset) as usize);
        if slot.buf.len() < want {
            slot.buf.resize(want, 0);
        }
        slot.open
            .borrow()
            .read_exact_at(&mut slot.buf[..want], slot.offset)?;
        slot.filled = want;
        slot.offset += want as u64;
        Ok(())
    }

    /// Hash every slot's piece, in lanes when there are several; the bytes hashed.
    fn hash_pieces(&mut self) -> u64 {
        let mut pieces: Vec<&[u8]> = self.slots.iter().map(|s| &s.buf[..s.filled]).collect();
        let hashed = pieces.iter().map(|p| p.len() as u64).sum();
        let count = pieces.len();
        match count {
            0 => {}
            1 => self.states[0].update(pieces[0]),
            _ => {
                // Whole registers only: the crate's kernels for a count that fills none
                // (5 streams in AVX2's 8 lanes) measured 4 to 25 times slower than a
                // full register here, so the rest is filled with copies of the last
                // stream, hashed and dropped.
                let full = count.next_multiple_of(self.lanes.width());
                let (last_state, last_piece) = (self.states[count - 1], pieces[count - 1]);
                self.states.resize(full, last_state);
                pieces.resize(full, last_piece);
                self.lanes.0.update_many(&mut self.states, &pieces);
                self.states.truncate(count);
            }
        }
        hashed
    }

    /// Finalize the streams that reached their end (their padding hashed in lanes too),
    /// hand each to `done`, and free their slots.
    fn finish_ended(&mut self, mut done: impl FnMut(Slot<O>, Md5Digest)) {
        let ended: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].offset == self.slots[i].end)
            .collect();
        if ended.is_empty() {
            return;
        }
        let states: Vec<Md5State> = ended.iter().map(|&i| self.states[i]).collect();
        let mut digests = vec![[0u8; 16]; ended.len()];
        self.lanes.0.finalize_many(&states, &mut digests);
        // Highest index first, so each swap_remove leaves the lower ones in place.
        for (&i, md5) in ended.iter().zip(digests).rev() {
            let slot = self.remove(i);
            done(slot, md5);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use std::path::PathBuf;

    /// A stream over a whole file, as simple as a job gets.
    struct Whole(PathBuf);

    impl Job for Whole {
        type Open = File;
        type Out = Md5Digest;
        fn open(&self) -> Result<(File, u64, u64)> {
            let file = File::open(&self.0).map_err(|e| CoreError::io(&self.0, e))?;
            let len = file
                .metadata()
                .map_err(|e| CoreError::io(&self.0, e))?
                .len();
            Ok((file, 0, len))
        }
        fn read_error(&self, err: io::Error) -> CoreError {
            CoreError::io(&self.0, err)
        }
        fn finish(&self, _: File, md5: Md5Digest) -> Result<Md5Digest> {
            Ok(md5)
        }
    }

    fn data(len: usize, seed: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 31 + seed * 7) % 251) as u8)
            .collect()
    }

    /// A small deterministic generator, so a failure names a reproducible batch.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Every level this CPU runs, with "auto".
    fn all_lanes() -> Vec<(&'static str, Lanes)> {
        let mut out = vec![("auto", Lanes::best())];
        out.extend(
            Lanes::names()
                .into_iter()
                .map(|n| (n, Lanes::named(n).unwrap())),
        );
        out
    }

    fn check_batch(sizes: &[usize], seed: usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        let mut want = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let bytes = data(len, seed + i);
            let path = dir.path().join(i.to_string());
            std::fs::write(&path, &bytes).unwrap();
            want.push(<Md5Digest>::from(Md5::digest(&bytes)));
            jobs.push(Whole(path));
        }
        for (name, lanes) in all_lanes() {
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got: Vec<Md5Digest> = pool
                    .install(|| hash_jobs(lanes, &jobs, None))
                    .into_iter()
                    .map(|r| r.unwrap())
                    .collect();
                assert_eq!(
                    got, want,
                    "level {name}, {threads} threads, sizes {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn the_issue_sizes_mixed_in_one_batch_match_md5_on_every_level() {
        let sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 4096, (1 << 20) + 1];
        check_batch(&sizes, 0);
        // Each alone (the single-stream path) and many of each (full lanes).
        for &len in &sizes {
            check_batch(&[len], 1);
            check_batch(&vec![len; SLOTS + 5], 2);
        }
    }

    #[test]
    fn sizes_around_the_piece_match_md5() {
        check_batch(
            &[PIECE - 1, PIECE, PIECE + 1, 2 * PIECE + 63, 3, PIECE - 64],
            3,
        );
    }

    #[test]
    fn random_batches_match_md5_on_every_level() {
        let mut seed = 19;
        for round in 0..12 {
            let count = 1 + lcg(&mut seed) as usize % 120;
            let sizes: Vec<usize> = (0..count)
                .map(|_| match lcg(&mut seed) % 4 {
                    0 => lcg(&mut seed) as usize % 200,
                    1 => lcg(&mut seed) as usize % 9000,
                    2 => lcg(&mut seed) as usize % (3 * PIECE),
                    _ => 64 * (lcg(&mut seed) as usize % 40),
                })
                .collect();
            check_batch(&sizes, round);
        }
    }

    #[test]
    fn a_failing_job_leaves_the_others_hashed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        for i in 0..100 {
            let path = dir.path().join(i.to_string());
            if i % 10 != 3 {
                std::fs::write(&path, data(i * 100, i)).unwrap();
            }
            jobs.push(Whole(path));
        }
        let out = hash_jobs(Lanes::best(), &jobs, None);
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(md5) => assert_eq!(*md5, <Md5Digest>::from(Md5::digest(data(i * 100, i)))),
                Err(CoreError::Io { path, .. }) => {
                    assert_eq!(i % 10, 3);
                    assert_eq!(path, &jobs[i].0);
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn names_are_checked_and_scalar_is_always_there() {
        let names = Lanes::names();
        assert_eq!(names.last(), Some(&"scalar"));
        assert!(Lanes::named("auto").is_ok());
        let unknown = Lanes::named("avx9000").unwrap_err().to_string();
        assert!(unknown.contains("not a SIMD level"), "{unknown}");
        if let Some(missing) = KNOWN.iter().find(|k| !names.contains(k)) {
            let err = Lanes::named(missing).unwrap_err().to_string();
            assert!(err.contains("this CPU cannot run"), "{err}");
        }
    }
}
