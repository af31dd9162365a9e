//! MD5 of many independent streams at once, in SIMD lanes: whole files (`hash_files`)
//! and the parts of one file (`part_md5s`).
//!
//! One MD5 stream is a chain of 64-byte blocks, each needing the one before, so it runs
//! no faster than one core's scalar unit. Independent streams run side by side, 8 to an
//! AVX2 register and 16 to an AVX-512 one (the `md5-many` crate; docs/decisions.md says
//! why that crate). Each round, a worker thread takes up to [`SLOTS`] open streams,
//! reads the next piece of each, and hashes the pieces in one call; a stream that ends
//! makes room for the next job, so the lanes stay full until the jobs run out. A lone
//! stream is hashed on the single-stream path, as fast as one MD5 can go.

use std::borrow::Borrow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, OnceLock};

use fearless_simd::Level;
use md5_many::{Md5Many, Md5State};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::hash::Md5Digest;
use crate::progress::{self, Counter};

/// Bytes read from each stream per round: large enough that a round's reads cost little
/// next to hashing them, small enough that a round's pieces stay in the caches between
/// the read and the hash. Measured on 64 files of 16 MiB, 2 cores: 256 KiB pieces made
/// two workers slower than one (each byte crossed memory twice more); 128 KiB was the
/// fastest on every core, 32 and 64 KiB within a few percent of it.
pub const PIECE: usize = 128 << 10;

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
    type Open: Borrow<File> + Send;
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

/// Hash every job on the current rayon pool. Results keep the jobs' order; a job that
/// fails does not stop the others. Bytes are added to `progress` as they are hashed.
///
/// Streams are shared, not dealt: each round a worker takes the open streams no one is
/// hashing (opening jobs when there are too few), hashes one piece of each and puts
/// them back. A worker slowed by another process on its core only does fewer rounds.
pub fn hash_jobs<J: Job>(
    lanes: Lanes,
    jobs: &[J],
    progress: Option<&Counter>,
) -> Vec<Result<J::Out>> {
    let workers = rayon::current_num_threads().clamp(1, jobs.len().max(1));
    // Whole registers, and the jobs spread over the workers: 64 files on 2 workers
    // are 32 streams each, not 48 and 16.
    let width = jobs
        .len()
        .div_ceil(workers)
        .next_multiple_of(lanes.width())
        .clamp(1, SLOTS);
    let shared = Shared {
        jobs,
        queue: Mutex::new(Queue {
            idle: Vec::new(),
            next: 0,
        }),
        results: jobs.iter().map(|_| OnceLock::new()).collect(),
        progress,
    };
    (0..workers)
        .into_par_iter()
        .for_each(|_| shared.work(lanes, width));
    shared
        .results
        .into_iter()
        .map(|cell| cell.into_inner().expect("every job is settled by a worker"))
        .collect()
}

/// A stream being hashed: its job, what it reads, how far it is, and its MD5 so far.
struct Stream<O> {
    job: usize,
    open: O,
    /// Offset of the next byte to read, and of the stream's end.
    offset: u64,
    end: u64,
    md5: Md5State,
}

/// What the workers take their streams from.
struct Queue<O> {
    /// Open streams no worker is hashing.
    idle: Vec<Stream<O>>,
    /// The first job not opened yet.
    next: usize,
}

struct Shared<'a, J: Job> {
    jobs: &'a [J],
    queue: Mutex<Queue<J::Open>>,
    results: Vec<OnceLock<Result<J::Out>>>,
    progress: Option<&'a Counter>,
}

impl<J: Job> Shared<'_, J> {
    /// One worker: rounds of up to `width` streams until no stream is idle and no job
    /// is left (streams other workers hold, they finish).
    fn work(&self, lanes: Lanes, width: usize) {
        let mut batch: Vec<Stream<J::Open>> = Vec::with_capacity(width);
        let mut buffers: Vec<Vec<u8>> = (0..width).map(|_| Vec::new()).collect();
        loop {
            let opening = self.take(&mut batch, width);
            let opened = !opening.is_empty();
            for job in opening {
                match self.jobs[job].open() {
                    Ok((open, start, len)) => batch.push(Stream {
                        job,
                        open,
                        offset: start,
                        end: start + len,
                        md5: Md5State::new(),
                    }),
                    Err(e) => self.settle(job, Err(e)),
                }
            }
            if batch.is_empty() {
                if opened {
                    continue; // every job it opened failed: there may be more
                }
                return;
            }
            let filled = self.read_pieces(&mut batch, &mut buffers);
            let pieces: Vec<&[u8]> = buffers.iter().zip(&filled).map(|(b, &n)| &b[..n]).collect();
            hash_round(lanes, &mut batch, &pieces);
            progress::add_bytes(self.progress, filled.iter().map(|&n| n as u64).sum());
            self.finish_ended(lanes, &mut batch);
            if !batch.is_empty() {
                self.queue
                    .lock()
                    .expect("no worker panics holding the queue")
                    .idle
                    .append(&mut batch);
            }
        }
    }

    /// Move up to `width` idle streams into `batch`, and claim the jobs that make up
    /// the rest: the claimed jobs, for the caller to open outside the lock.
    fn take(&self, batch: &mut Vec<Stream<J::Open>>, width: usize) -> std::ops::Range<usize> {
        let mut queue = self
            .queue
            .lock()
            .expect("no worker panics holding the queue");
        let from = queue.idle.len().saturating_sub(width);
        batch.extend(queue.idle.drain(from..));
        let start = queue.next;
        queue.next = (start + width - batch.len()).min(self.jobs.len());
        start..queue.next
    }

    /// Read each stream's next piece into its buffer; a stream that fails is settled
    /// and dropped. The bytes read into each buffer, in the batch's order.
    fn read_pieces(&self, batch: &mut Vec<Stream<J::Open>>, buffers: &mut [Vec<u8>]) -> Vec<usize> {
        let mut filled = Vec::with_capacity(batch.len());
        let mut kept = 0;
        for i in 0..batch.len() {
            let stream = &mut batch[i];
            let want = PIECE.min((stream.end - stream.offset) as usize);
            let buf = &mut buffers[kept];
            if buf.len() < want {
                buf.resize(want, 0);
            }
            match stream
                .open
                .borrow()
                .read_exact_at(&mut buf[..want], stream.offset)
            {
                Ok(()) => {
                    stream.offset += want as u64;
                    filled.push(want);
                    batch.swap(kept, i);
                    kept += 1;
                }
                Err(e) => self.settle(stream.job, Err(self.jobs[stream.job].read_error(e))),
            }
        }
        batch.truncate(kept);
        filled
    }

    /// Finalize the streams that reached their end (their padding hashed in lanes too),
    /// settle them, and leave the others in `batch`.
    fn finish_ended(&self, lanes: Lanes, batch: &mut Vec<Stream<J::Open>>) {
        let (ended, going): (Vec<_>, Vec<_>) = batch.drain(..).partition(|s| s.offset == s.end);
        *batch = going;
        if ended.is_empty() {
            return;
        }
        let states: Vec<Md5State> = ended.iter().map(|s| s.md5).collect();
        let mut digests = vec![[0u8; 16]; ended.len()];
        lanes.0.finalize_many(&states, &mut digests);
        for (stream, md5) in ended.into_iter().zip(digests) {
            self.settle(stream.job, self.jobs[stream.job].finish(stream.open, md5));
        }
    }

    fn settle(&self, job: usize, outcome: Result<J::Out>) {
        // Each job is opened by one worker and settled once.
        let _ = self.results[job].set(outcome);
    }
}

/// Repeat the last of `items` up to a whole number of registers (see `hash_round`).
fn fill_registers<T: Copy>(items: &mut Vec<T>, lanes: Lanes) {
    if let Some(&last) = items.last() {
        items.resize(items.len().next_multiple_of(lanes.width()), last);
    }
}

/// The MD5 of each of `buffers`, whole messages in memory (a group of small files read
/// at once), hashed side by side in lanes; padded to whole registers as below.
pub fn md5_of_buffers(lanes: Lanes, buffers: &[&[u8]]) -> Vec<Md5Digest> {
    match buffers {
        [] => Vec::new(),
        [one] => vec![md5_many::md5(one)],
        _ => {
            let mut inputs = buffers.to_vec();
            fill_registers(&mut inputs, lanes);
            let mut digests = vec![[0u8; 16]; inputs.len()];
            lanes.0.hash_many(&inputs, &mut digests);
            digests.truncate(buffers.len());
            digests
        }
    }
}

/// Hash `pieces[i]` into `batch[i]`'s MD5: in lanes when there are several.
fn hash_round<O>(lanes: Lanes, batch: &mut [Stream<O>], pieces: &[&[u8]]) {
    match batch {
        [] => {}
        [one] => one.md5.update(pieces[0]),
        _ => {
            // Whole registers only: the crate's kernels for a count that fills none (5
            // streams in AVX2's 8 lanes) measured 4 to 25 times slower than a full
            // register here, so the rest is filled with copies of the last stream,
            // hashed and dropped.
            let mut states: Vec<Md5State> = batch.iter().map(|s| s.md5).collect();
            let mut inputs = pieces.to_vec();
            fill_registers(&mut states, lanes);
            fill_registers(&mut inputs, lanes);
            lanes.0.update_many(&mut states, &inputs);
            for (stream, md5) in batch.iter_mut().zip(states) {
                stream.md5 = md5;
            }
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
    fn whole_buffers_match_md5_on_every_level() {
        let sizes = [
            0, 1, 55, 56, 63, 64, 65, 119, 120, 4096, 4096, 4096, 65536, 3, 4096,
        ];
        let buffers: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| data(n, i)).collect();
        let views: Vec<&[u8]> = buffers.iter().map(Vec::as_slice).collect();
        let expected: Vec<Md5Digest> = views.iter().map(|b| Md5::digest(b).into()).collect();
        for (name, lanes) in all_lanes() {
            for count in 0..=views.len() {
                assert_eq!(
                    md5_of_buffers(lanes, &views[..count]),
                    expected[..count],
                    "{name}, {count} buffers"
                );
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
