//! The receivers' write-ahead log (Spark's `spark.streaming.receiver.writeAheadLog.enable`):
//! every block is appended and synced to a log under the checkpoint directory before it can
//! be processed, so blocks received but not covered by a checkpoint are replayed after a crash.
//!
//! A log is a folder of segments `<first sequence number>.wal`, each a run of records
//! `[sequence u64][length u32][crc32 u32][payload]`. A durable checkpoint starts a new segment
//! and deletes the segments it fully covers. A new segment's directory entry is synced before
//! its first record counts as written, and a failed append is rolled back, so a record is
//! either wholly in the log and acknowledged, or not in it and reported as an error.
//!
//! Reading tells a torn tail (the one record being written when the process died, never
//! acknowledged, dropped with a warning) from corruption in the middle of a segment (records
//! after it would be lost: an error naming the file, the byte and the fix). A process that
//! dies after writing a record but before its sync returned leaves a whole record that was
//! never acknowledged: it is replayed, so a source that sends that block again has it twice
//! (at-least-once for that one block; every acknowledged block is exactly once).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Encodes and decodes a block of records.
pub(crate) struct Codec<T> {
    pub(crate) encode: fn(&[T]) -> Option<Vec<u8>>,
    pub(crate) decode: fn(&[u8]) -> Option<Vec<T>>,
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> {
    pub(crate) fn postcard() -> Self {
        Codec {
            encode: |block| postcard::to_stdvec(block).ok(),
            decode: |bytes| postcard::from_bytes(bytes).ok(),
        }
    }
}

/// The segment being appended to, with the length of what is known to be in it.
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
}

pub(crate) struct Wal {
    dir: PathBuf,
    segment: Option<Segment>,
    /// Set when a failed append could not be rolled back: the segment's tail is unknown, so
    /// nothing more may be appended to this log in this process.
    broken: Option<String>,
}

const HEADER: usize = 16;

#[cfg(feature = "failpoints")]
fn failed(what: &str) -> std::io::Error {
    std::io::Error::other(format!("failpoint {what}"))
}

impl Wal {
    /// Opens (creating) the log in `dir`; the folders' entries are synced.
    pub(crate) fn open(dir: PathBuf) -> Result<Wal> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("failed to create write-ahead log", &dir, e))?;
        // `receivedData/<id>` and `receivedData` themselves must survive a power loss.
        for d in dir.ancestors().skip(1).take(2) {
            crate::checkpoint::sync_dir(d)?;
        }
        Ok(Wal {
            dir,
            segment: None,
            broken: None,
        })
    }

    fn segments(&self) -> Vec<(u64, PathBuf)> {
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let first = e.file_name().to_str()?.strip_suffix(".wal")?.parse().ok()?;
                Some((first, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// Starts segment `<seq>.wal`: a new file (never an existing one), its entry synced.
    fn new_segment(&self, seq: u64) -> Result<Segment> {
        let path = self.dir.join(format!("{seq:020}.wal"));
        // Append mode: after a failed record is cut off, the next one goes at the new end.
        let file = File::options()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("failed to create write-ahead log segment", &path, e))?;
        crate::checkpoint::sync_dir(&self.dir)?;
        Ok(Segment { path, file, len: 0 })
    }

    /// Appends block `seq` and syncs it to disk. On an error the log is as before the call
    /// (the partial record is cut off), so the block may be appended again.
    pub(crate) fn append(&mut self, seq: u64, payload: &[u8]) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(Error::io(
                "cannot append to write-ahead log",
                &self.dir,
                std::io::Error::other(format!(
                    "{why}; restart the job (it replays what the log holds)"
                )),
            ));
        }
        crate::failpoint::failpoint!("wal::append", |_| Err(Error::io(
            "failed to append to write-ahead log",
            &self.dir,
            failed("wal::append")
        )));
        if self.segment.is_none() {
            self.segment = Some(self.new_segment(seq)?);
        }
        let seg = self.segment.as_mut().expect("opened above");
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        record.extend_from_slice(payload);
        let written = seg
            .file
            .write_all(&record)
            .and_then(|()| before_sync())
            .and_then(|()| seg.file.sync_data());
        match written {
            Ok(()) => {
                seg.len += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut off what was written of the record, so that it is not replayed: the
                // caller keeps the block and may append it again.
                let rolled_back = seg
                    .file
                    .set_len(seg.len)
                    .and_then(|()| seg.file.sync_data());
                if let Err(r) = rolled_back {
                    self.broken = Some(format!(
                        "a failed write could not be cut off the end of `{}` ({r})",
                        seg.path.display()
                    ));
                    self.segment = None;
                }
                Err(Error::io(
                    "failed to append to write-ahead log",
                    &self.dir,
                    e,
                ))
            }
        }
    }

    /// Starts a new segment at the next append and deletes the segments holding only blocks
    /// up to `covered`. Deleting only covered segments, oldest first, so a failure part-way
    /// leaves extra (covered) records, never a gap.
    pub(crate) fn truncate(&mut self, covered: u64) -> Result<()> {
        self.segment = None;
        crate::failpoint::failpoint!("wal::truncate", |_| Err(Error::io(
            "failed to delete covered write-ahead log segments in",
            &self.dir,
            failed("wal::truncate")
        )));
        let segments = self.segments();
        for (i, (_, path)) in segments.iter().enumerate() {
            // A segment is covered when the next one starts at or before `covered + 1`.
            if segments
                .get(i + 1)
                .is_some_and(|(next, _)| *next <= covered + 1)
            {
                std::fs::remove_file(path).map_err(|e| {
                    Error::io("failed to delete covered write-ahead log segment", path, e)
                })?;
            }
        }
        Ok(())
    }

    /// Every record with a sequence number above `after`, in order. A torn last record of a
    /// segment is dropped with a warning; a bad record followed by more data is an error.
    pub(crate) fn replay(&self, after: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut last_seq = 0;
        for (_, path) in self.segments() {
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| Error::io("failed to read write-ahead log segment", &path, e))?;
            let mut at = 0;
            while at < bytes.len() {
                match record_at(&bytes, at, last_seq) {
                    Record::Good { seq, payload } => {
                        if seq > after {
                            out.push((seq, payload.to_vec()));
                        }
                        last_seq = seq;
                        at += HEADER + payload.len();
                    }
                    Record::Torn(why) => {
                        tracing::warn!(
                            file = %path.display(),
                            offset = at,
                            "ignored the last {} byte(s) of the write-ahead log segment: {why} (the record being written when the process stopped, never acknowledged)",
                            bytes.len() - at
                        );
                        break;
                    }
                    Record::Corrupt(why) => {
                        return Err(Error::Checkpoint {
                            dir: self.dir.clone(),
                            message: format!(
                                "write-ahead log segment `{}` is corrupt at byte {at} of {} ({why}) with records after it, which cannot be read; restore the file from a backup, or move it away to restart without the blocks it holds from byte {at} on",
                                path.display(),
                                bytes.len()
                            ),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Between a record's write and its sync: a failure here must be rolled back.
fn before_sync() -> std::io::Result<()> {
    crate::failpoint::failpoint!("wal::before_sync", |_| Err(failed("wal::before_sync")));
    Ok(())
}

enum Record<'a> {
    Good {
        seq: u64,
        payload: &'a [u8],
    },
    /// The end of the segment holds an incomplete or zeroed record.
    Torn(&'static str),
    /// A bad record with data after it.
    Corrupt(&'static str),
}

/// Reads the record at `at`: only the last record of a segment may be torn (each append is
/// synced before the next starts); a bad one with non-zero bytes after it is corruption.
fn record_at(bytes: &[u8], at: usize, last_seq: u64) -> Record<'_> {
    let rest = &bytes[at..];
    if rest.len() < HEADER {
        return Record::Torn("incomplete header");
    }
    let u32_at = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().unwrap_or_default());
    let seq = u64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
    let len = u32_at(8) as usize;
    let crc = u32_at(12);
    let Some(payload) = rest.get(HEADER..HEADER + len) else {
        return Record::Torn("incomplete record");
    };
    let bad = if seq <= last_seq {
        Some("sequence number out of order")
    } else if crc32fast::hash(payload) != crc {
        Some("checksum mismatch")
    } else {
        None
    };
    match bad {
        None => Record::Good { seq, payload },
        Some(why) => {
            let after = &rest[HEADER + len..];
            if after.is_empty() || rest.iter().all(|b| *b == 0) {
                Record::Torn(why)
            } else {
                Record::Corrupt(why)
            }
        }
    }
}

/// The folder name of the log of the state named `name`: letters, digits, `.` and `-` as they
/// are, every other character as its code in hex between `_`s (`main.rs:receiver#1` gives
/// `main.rs_3a_receiver_23_1`), so that distinct names never share a folder.
pub(crate) fn folder_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            out.push(c);
        } else {
            out.push_str(&format!("_{:x}_", c as u32));
        }
    }
    out
}

/// The log folder of receiver `id` under a checkpoint directory.
pub(crate) fn dir_for(checkpoint: &Path, id: &str) -> PathBuf {
    checkpoint.join("receivedData").join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_replays_truncates_and_stops_at_a_torn_tail() {
        let _serial = fail::FailScenario::setup();
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path().join("r")).unwrap();
        for seq in 1..=3 {
            wal.append(seq, &[seq as u8; 4]).unwrap();
        }
        wal.truncate(2).unwrap();
        wal.append(4, b"four").unwrap();
        assert_eq!(
            wal.replay(2).unwrap(),
            vec![(3, vec![3; 4]), (4, b"four".to_vec())]
        );
        wal.truncate(3).unwrap();
        assert_eq!(
            wal.segments().len(),
            1,
            "the first segment is fully covered and deleted"
        );
        // A torn record after the intact ones.
        let (_, last) = wal.segments().pop().unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
        f.write_all(&5u64.to_le_bytes()).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        assert_eq!(wal.replay(0).unwrap(), vec![(4, b"four".to_vec())]);
    }

    fn segment_with(dir: &Path, records: &[(u64, &[u8])]) -> PathBuf {
        // Failpoints are global: appends wait for the tests that set them.
        let _serial = fail::FailScenario::setup();
        let mut wal = Wal::open(dir.to_owned()).unwrap();
        for (seq, payload) in records {
            wal.append(*seq, payload).unwrap();
        }
        wal.segments().pop().unwrap().1
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_with(dir.path(), &[(1, b"one"), (2, b"two"), (3, b"three")]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 3 + HEADER] ^= 0xff; // the payload of record 2
        std::fs::write(&path, &bytes).unwrap();
        let wal = Wal::open(dir.path().to_owned()).unwrap();
        let err = wal.replay(0).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains(&format!("corrupt at byte {}", HEADER + 3))
                && err.contains("checksum mismatch")
                && err.contains("move it away"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_last_record_or_a_zeroed_tail_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_with(dir.path(), &[(1, b"one"), (2, b"two")]);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let wal = Wal::open(dir.path().to_owned()).unwrap();
        assert_eq!(wal.replay(0).unwrap(), vec![(1, b"one".to_vec())]);
        // A power loss may leave the file longer than its data, zero-filled.
        bytes[last] ^= 0xff;
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            wal.replay(0).unwrap(),
            vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
        );
    }

    #[test]
    fn a_failed_append_is_rolled_back_and_may_be_retried() {
        let _scenario = fail::FailScenario::setup();
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path().to_owned()).unwrap();
        wal.append(1, b"one").unwrap();
        fail::cfg("wal::before_sync", "return").unwrap();
        let err = wal.append(2, b"two").unwrap_err().to_string();
        fail::remove("wal::before_sync");
        assert!(err.contains("failed to append to write-ahead log"), "{err}");
        // The caller appends the block again, under a new sequence number.
        wal.append(3, b"two").unwrap();
        assert_eq!(
            wal.replay(0).unwrap(),
            vec![(1, b"one".to_vec()), (3, b"two".to_vec())],
            "the failed record is not in the log"
        );
    }

    #[test]
    fn a_new_segment_never_overwrites_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        segment_with(dir.path(), &[(1, b"one")]);
        let _serial = fail::FailScenario::setup();
        let mut wal = Wal::open(dir.path().to_owned()).unwrap();
        let err = wal.append(1, b"again").unwrap_err().to_string();
        assert!(err.contains("00000000000000000001.wal"), "{err}");
        assert_eq!(wal.replay(0).unwrap(), vec![(1, b"one".to_vec())]);
    }

    #[test]
    fn folder_names_keep_plain_names_and_never_share_a_folder() {
        assert_eq!(folder_name("0-numbers"), "0-numbers");
        assert_eq!(
            folder_name("main.rs:receiver#1"),
            "main.rs_3a_receiver_23_1"
        );
        // An escape ends at its closing `_`: a code followed by hex digits stays distinct.
        assert_ne!(folder_name("a:b"), folder_name("a\u{3ab}"));
        assert_ne!(folder_name("a_b"), folder_name("a:b"));
    }
}
