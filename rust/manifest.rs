//! The entries of a version's manifest, written from columns in one call.
//!
//! The daemon keeps a version's plain entries (stored content, no `ref` or `extra`) as
//! flat columns (`daemon/version_entries.py`): the paths end to end, where each ends,
//! the raw MD5s, the sizes. Written one entry at a time in Python, the
//! `artifact_manifest_v1` JSON of a 10,000-file version was a sizeable share of the
//! daemon's time; here it is one pass over the columns, sorted by path, giving the
//! same bytes as `json.dumps(..., separators=(",", ":"))` and the lines the artifact
//! digest hashes. ASCII paths only: the caller keeps its own writer for the rest
//! (JSON escapes non-ASCII text as `\uXXXX`, surrogate pairs included).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// Two entries no version may hold together, by index into the columns.
#[derive(Debug, PartialEq, Eq)]
pub enum Clash {
    /// The path of entry `.0` is also the path of an earlier entry.
    Duplicate(usize),
    /// Entry `.0` is a file where entry `.1` needs a directory (`a` and `a/b`).
    FileIsDirectory(usize, usize),
}

/// A plain manifest's `contents` members and the artifact digest's lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// `"path":{"digest":"...","size":N}`, comma-separated, sorted by path.
    pub contents: Vec<u8>,
    /// `path:digest\n` for each entry, in the same order.
    pub lines: Vec<u8>,
}

/// Write the entries whose paths are `paths[ends[i-1]..ends[i]]` (ASCII), MD5s
/// `md5[16*i..16*i+16]` and sizes `sizes[i]`, sorted by path (entries of one path in
/// index order). The first clash met in that order is returned instead, as Python's
/// writer finds it: a repeated path before a file that is also a directory.
///
/// Panics if the columns disagree in length (the caller builds them together).
pub fn write_plain(
    paths: &[u8],
    ends: &[usize],
    md5: &[u8],
    sizes: &[i64],
) -> Result<Written, Clash> {
    let n = ends.len();
    assert!(
        md5.len() == 16 * n && sizes.len() == n,
        "columns of different lengths"
    );
    let path = |i: usize| &paths[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| path(a).cmp(path(b))); // stable: equal paths keep index order
    let mut out = Written::default();
    out.contents.reserve(n * 64);
    out.lines.reserve(n * 48);
    // Candidate files for "a file that is also a directory": the chain of earlier
    // paths that are prefixes of the current one (see _ConflictCheck in Python).
    let mut chain: Vec<usize> = Vec::new();
    let mut previous: Option<usize> = None;
    for (k, &i) in order.iter().enumerate() {
        let p = path(i);
        if previous.is_some_and(|j| path(j) == p) {
            return Err(Clash::Duplicate(i));
        }
        previous = Some(i);
        while chain.last().is_some_and(|&c| !p.starts_with(path(c))) {
            chain.pop();
        }
        if let Some(&file) = chain.iter().find(|&&c| p[path(c).len()] == b'/') {
            return Err(Clash::FileIsDirectory(file, i));
        }
        chain.push(i);
        let digest = BASE64.encode(&md5[16 * i..16 * i + 16]);
        if k > 0 {
            out.contents.push(b',');
        }
        json_string(p, &mut out.contents);
        out.contents.extend_from_slice(b":{\"digest\":\"");
        out.contents.extend_from_slice(digest.as_bytes());
        out.contents.extend_from_slice(b"\",\"size\":");
        out.contents
            .extend_from_slice(sizes[i].to_string().as_bytes());
        out.contents.push(b'}');
        out.lines.extend_from_slice(p);
        out.lines.push(b':');
        out.lines.extend_from_slice(digest.as_bytes());
        out.lines.push(b'\n');
    }
    Ok(out)
}

/// `text` (ASCII) as a JSON string, escaped as Python's `encode_basestring_ascii`:
/// `\"`, `\\`, the short escapes, and `\u00xx` for every other byte outside ` `..`~`.
fn json_string(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b' '..=b'~' => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(entries: &[(&str, u8, i64)]) -> (Vec<u8>, Vec<usize>, Vec<u8>, Vec<i64>) {
        let (mut paths, mut ends, mut md5, mut sizes) = (vec![], vec![], vec![], vec![]);
        for &(p, fill, size) in entries {
            paths.extend_from_slice(p.as_bytes());
            ends.push(paths.len());
            md5.extend_from_slice(&[fill; 16]);
            sizes.push(size);
        }
        (paths, ends, md5, sizes)
    }

    fn write(entries: &[(&str, u8, i64)]) -> Result<Written, Clash> {
        let (p, e, m, s) = columns(entries);
        write_plain(&p, &e, &m, &s)
    }

    #[test]
    fn entries_come_out_sorted_by_path_with_their_digest_and_size() {
        let w = write(&[("b", 1, 5), ("a/c", 0, 0), ("a-b", 255, 12345)]).unwrap();
        let zero = "AAAAAAAAAAAAAAAAAAAAAA==";
        let one = "AQEBAQEBAQEBAQEBAQEBAQ==";
        let ff = "/////////////////////w==";
        let contents = format!(
            "\"a-b\":{{\"digest\":\"{ff}\",\"size\":12345}},\
             \"a/c\":{{\"digest\":\"{zero}\",\"size\":0}},\
             \"b\":{{\"digest\":\"{one}\",\"size\":5}}"
        );
        assert_eq!(String::from_utf8(w.contents).unwrap(), contents);
        let lines = format!("a-b:{ff}\na/c:{zero}\nb:{one}\n");
        assert_eq!(String::from_utf8(w.lines).unwrap(), lines);
    }

    #[test]
    fn no_entries_write_nothing() {
        assert_eq!(write(&[]).unwrap(), Written::default());
    }

    #[test]
    fn paths_are_escaped_as_python_json_escapes_ascii() {
        let w = write(&[("q\"b\\n\nr\rt\tb\x08f\x0c\x01\x1f\x7f~ ", 0, 1)]).unwrap();
        let text = String::from_utf8(w.contents).unwrap();
        assert!(
            text.starts_with(r#""q\"b\\n\nr\rt\tb\bf\f\u0001\u001f\u007f~ ":"#),
            "{text}"
        );
    }

    #[test]
    fn a_repeated_path_is_the_later_entry() {
        assert_eq!(
            write(&[("x", 0, 1), ("a", 0, 1), ("x", 1, 2)]),
            Err(Clash::Duplicate(2))
        );
    }

    #[test]
    fn a_file_that_is_also_a_directory_names_both() {
        let got = write(&[("a/b/c", 0, 1), ("a.txt", 0, 1), ("a/b", 0, 1)]);
        assert_eq!(got, Err(Clash::FileIsDirectory(2, 0)));
        // A prefix that is not a directory of the other is no clash.
        assert!(write(&[("ab", 0, 1), ("a", 0, 1), ("a-b", 0, 1)]).is_ok());
    }

    #[test]
    fn a_duplicate_met_first_wins_over_a_later_conflict() {
        let got = write(&[("a", 0, 1), ("a", 0, 1), ("a/b", 0, 1)]);
        assert_eq!(got, Err(Clash::Duplicate(1)));
    }
}
