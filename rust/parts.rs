//! Per-part MD5s of a file, for `Content-MD5` on multipart uploads, and the S3
//! multipart ETag they add up to.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use md5_many::Md5State;

use crate::error::{AtPath, CoreError, Result};
use crate::hash::{advise_sequential, open_regular, with_buffer, Md5Digest};
use crate::hash_lanes::{hash_jobs, Job, Lanes};

/// The digests of a file cut into parts of `part_size` bytes (the last may be shorter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartDigests {
    pub part_size: u64,
    pub size: u64,
    pub parts: Vec<Md5Digest>,
}

impl PartDigests {
    /// S3's ETag of the completed multipart upload: the hex MD5 of the concatenated raw
    /// part digests, a dash, and the part count (without the surrounding quotes).
    pub fn etag(&self) -> String {
        let mut hasher = Md5State::new();
        for part in &self.parts {
            hasher.update(part);
        }
        format!("{}-{}", hex(&hasher.finalize()), self.parts.len())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Hash `path` part by part, the parts side by side in SIMD lanes and over the current
/// rayon pool (each part is an independent MD5, unlike the whole file's). An empty file
/// has one empty part, as an upload of it would.
pub fn part_md5s(path: &Path, part_size: u64, lanes: Lanes) -> Result<PartDigests> {
    if part_size == 0 {
        return Err(CoreError::InvalidArgument(
            "part_size must be at least 1 byte".into(),
        ));
    }
    let (file, meta) = open_regular(path)?;
    advise_sequential(&file, meta.len());
    let size = meta.len();
    let count = size.div_ceil(part_size).max(1);
    let jobs: Vec<Part> = (0..count)
        .map(|i| Part {
            file: &file,
            path,
            start: i * part_size,
            len: part_size.min(size - i * part_size),
        })
        .collect();
    let parts = hash_jobs(lanes, &jobs, None)
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(PartDigests {
        part_size,
        size,
        parts,
    })
}

/// One part of a file, hashed on its own.
struct Part<'a> {
    file: &'a File,
    path: &'a Path,
    start: u64,
    len: u64,
}

impl<'a> Job for Part<'a> {
    type Open = &'a File;
    type Out = Md5Digest;

    fn open(&self) -> Result<(&'a File, u64, u64)> {
        Ok((self.file, self.start, self.len))
    }

    fn read_error(&self, err: io::Error) -> CoreError {
        CoreError::io(self.path, shrank(err))
    }

    fn finish(&self, _: &'a File, md5: Md5Digest) -> Result<Md5Digest> {
        Ok(md5)
    }
}

/// A read that ended before the part's end: the file is shorter than when it was sized.
fn shrank(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while its parts were hashed",
        )
    } else {
        err
    }
}

/// The MD5 of one part, `len` bytes of `path` from `start`: what a multipart upload
/// that hashes each part just before sending it needs. A file shorter than the part's
/// end is an error (it changed since its size was taken).
pub fn part_md5(path: &Path, start: u64, len: u64) -> Result<Md5Digest> {
    let (file, _) = open_regular(path)?;
    md5_range(&file, start, len).at(path)
}

fn md5_range(file: &File, start: u64, len: u64) -> io::Result<Md5Digest> {
    with_buffer(|buf| {
        let mut hasher = Md5State::new();
        let mut offset = start;
        let end = start + len;
        while offset < end {
            let want = buf.len().min((end - offset) as usize);
            file.read_exact_at(&mut buf[..want], offset)
                .map_err(shrank)?;
            hasher.update(&buf[..want]);
            offset += want as u64;
        }
        Ok(hasher.finalize())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    #[test]
    fn parts_and_etag_match_an_independent_computation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000_003u32).map(|i| (i % 249) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let got = part_md5s(&path, 3_000_000, Lanes::best()).unwrap();
        let want: Vec<Md5Digest> = data
            .chunks(3_000_000)
            .map(|c| Md5::digest(c).into())
            .collect();
        assert_eq!(got.parts, want);
        let concat: Vec<u8> = want.concat();
        assert_eq!(got.etag(), format!("{}-4", hex(&Md5::digest(&concat))));
    }

    #[test]
    fn an_empty_file_has_one_empty_part_and_zero_part_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let got = part_md5s(&path, 5 << 20, Lanes::best()).unwrap();
        assert_eq!(got.parts, vec![<Md5Digest>::from(Md5::digest(b""))]);
        assert!(matches!(
            part_md5s(&path, 0, Lanes::best()),
            Err(CoreError::InvalidArgument(_))
        ));
    }

    #[test]
    fn one_part_hashes_its_range_and_a_short_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let got = part_md5(&path, 300_000, 400_000).unwrap();
        assert_eq!(got, <Md5Digest>::from(Md5::digest(&data[300_000..700_000])));
        assert!(part_md5(&path, 900_000, 200_000).is_err());
    }
}
