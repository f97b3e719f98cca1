//! The receivers' write-ahead log (Spark's `spark.streaming.receiver.writeAheadLog.enable`):
//! every block is appended and synced to a log under the checkpoint directory before it can
//! be processed, so blocks received but not covered by a checkpoint are replayed after a crash.
//!
//! A log is a folder of segments `<first sequence number>.wal`, each a run of records
//! `[sequence u64][length u32][crc32 u32][payload]`. A checkpoint starts a new segment and
//! deletes the segments it fully covers. Reading stops at a torn or corrupt record (the
//! block being written when the process died, which was never processed).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
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

pub(crate) struct Wal {
    dir: PathBuf,
    segment: Option<BufWriter<File>>,
}

const HEADER: usize = 16;

impl Wal {
    /// Opens (creating) the log in `dir`.
    pub(crate) fn open(dir: PathBuf) -> Result<Wal> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("failed to create write-ahead log", &dir, e))?;
        Ok(Wal { dir, segment: None })
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

    /// Appends block `seq` and syncs it to disk.
    pub(crate) fn append(&mut self, seq: u64, payload: &[u8]) -> Result<()> {
        if self.segment.is_none() {
            let path = self.dir.join(format!("{seq:020}.wal"));
            let f = File::create(&path).map_err(|e| Error::io("failed to create", &path, e))?;
            self.segment = Some(BufWriter::new(f));
        }
        let w = self.segment.as_mut().expect("opened above");
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        record.extend_from_slice(payload);
        w.write_all(&record)
            .and_then(|()| w.flush())
            .and_then(|()| w.get_ref().sync_data())
            .map_err(|e| Error::io("failed to append to write-ahead log", &self.dir, e))
    }

    /// Starts a new segment at the next append and deletes the segments holding only blocks
    /// up to `covered`.
    pub(crate) fn truncate(&mut self, covered: u64) {
        self.segment = None;
        let segments = self.segments();
        for (i, (_, path)) in segments.iter().enumerate() {
            // A segment is covered when the next one starts at or before `covered + 1`.
            if segments
                .get(i + 1)
                .is_some_and(|(next, _)| *next <= covered + 1)
            {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Every intact record with a sequence number above `after`, in order.
    pub(crate) fn replay(&self, after: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for (_, path) in self.segments() {
            let mut bytes = Vec::new();
            if File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .is_err()
            {
                tracing::warn!(file = %path.display(), "cannot read write-ahead log segment; skipped");
                continue;
            }
            let mut at = 0;
            while at + HEADER <= bytes.len() {
                let seq = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
                let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap_or_default())
                    as usize;
                let crc =
                    u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap_or_default());
                let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
                    break;
                };
                if crc32fast::hash(payload) != crc {
                    tracing::warn!(file = %path.display(), "torn record at the end of the write-ahead log; ignored");
                    break;
                }
                if seq > after {
                    out.push((seq, payload.to_vec()));
                }
                at += HEADER + len;
            }
        }
        out
    }
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
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path().join("r")).unwrap();
        for seq in 1..=3 {
            wal.append(seq, &[seq as u8; 4]).unwrap();
        }
        wal.truncate(2);
        wal.append(4, b"four").unwrap();
        assert_eq!(wal.replay(2), vec![(3, vec![3; 4]), (4, b"four".to_vec())]);
        wal.truncate(3);
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
        assert_eq!(wal.replay(0), vec![(4, b"four".to_vec())]);
    }
}
