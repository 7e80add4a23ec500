//! Two small files beside the engine's own in a data directory:
//!
//! - `meshtrace-layout`: which layout of keys and values the directory holds. A directory
//!   without it that holds an engine was written by a meshtrace before layout 2 (whose index
//!   keys could be misread, issue 13): it is refused with what to do, never misread. Layout 3
//!   added the indexed tags to the `by_service` entries (`codec/summary.rs`); an entry of
//!   layout 2 is one without them, which layout 3 reads as such (its span is read for the
//!   tags), so a layout-2 directory is migrated by rewriting this marker, nothing else.
//!   Layout 4 added the `metric_deltas` table (`derive/deltas.rs`): a directory of layout 2
//!   or 3 has no record to replay, so it is migrated the same way. A meshtrace of layout 3
//!   refuses a layout-4 directory (it would not replay the records: silently lower metrics).
//!   Layout 5 writes spans to the arrival-ordered `spans_by_arrival` table and notes each
//!   trace's seconds in `trace_arrivals` (`keys.rs`); it still reads the trace-keyed `spans`
//!   table of layouts 2 to 4, whose index entries it tells apart by their length, so those
//!   are migrated by rewriting the marker too, and their spans expire as they would have. A
//!   meshtrace of layout 4 refuses a layout-5 directory (it would not see the new spans).
//!   Layout 6 indexes spans by service in ten-second slices of their start (`by_slice`, with
//!   `service_slices` listing each service's slices); it still reads and expires the
//!   `by_service` entries of layouts 2 to 5, so those are migrated by rewriting the marker. A
//!   meshtrace of layout 5 refuses a layout-6 directory (its searches would miss new spans).
//!   Layout 7 files the spans of one trace that one write brings in one second as one group
//!   in `spans_by_arrival` (`codec/span_group.rs`), named by a group ID, which the spans'
//!   `by_slice` entries end with; it still reads the single spans of layouts 5 and 6 and
//!   their entries (told apart by their keys' lengths), so those are migrated by rewriting
//!   the marker. A meshtrace of layout 6 refuses a layout-7 directory (it would not read the
//!   groups: traces would come back without their new spans).
//! - `meshtrace-acknowledged`: the number of the last write batch the engine acknowledged and
//!   the next dictionary ID at that point, rewritten in place after every batch. It lives
//!   outside the engine's journal on purpose: when the journal is truncated or emptied, the
//!   engine recovers silently to an earlier batch; comparing its batch number with this record
//!   tells how many acknowledged batches were lost, and keeps lost dictionary IDs from being
//!   handed out again (old spans would read another string). It is not synced: a process crash
//!   keeps it (page cache), a power cut may leave an older record, which only under-reports.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

pub const LAYOUT_FILE: &str = "meshtrace-layout";
pub const ACK_FILE: &str = "meshtrace-acknowledged";
/// The layout this build writes and reads.
pub const LAYOUT_VERSION: u32 = 7;
/// The earlier layouts this build migrates (in place: see the module's documentation).
const MIGRATED_LAYOUTS: [u32; 5] = [2, 3, 4, 5, 6];
/// The engine's own marker file (fjall), present in every directory it has opened.
const ENGINE_MARKER: &str = "version";

/// Checks that `dir` holds this layout, migrates an earlier one, or marks a new directory. Creates
/// `dir` if needed.
pub fn check_or_mark(dir: &Path) -> Result<(), StoreError> {
    let marker = dir.join(LAYOUT_FILE);
    // A marker is one short line: read no more of whatever file is there.
    match read_limited(&marker) {
        Ok(text) => {
            let version = text
                .strip_prefix("meshtrace store layout ")
                .and_then(|v| v.trim().parse::<u32>().ok());
            match version {
                Some(LAYOUT_VERSION) => Ok(()),
                Some(old) if MIGRATED_LAYOUTS.contains(&old) => {
                    write_marker(dir, &marker)?;
                    tracing::info!(
                        dir = %dir.display(),
                        "migrated the data directory from store layout {old} to {LAYOUT_VERSION}"
                    );
                    Ok(())
                }
                Some(other) => Err(StoreError::Layout(format!(
                    "the data directory {} holds store layout {other}, and this meshtrace reads layout {LAYOUT_VERSION}: run the meshtrace that wrote it, or start this one with another --data-dir",
                    dir.display()
                ))),
                None => Err(StoreError::Layout(format!(
                    "{} is not a meshtrace layout marker (it should read `meshtrace store layout {LAYOUT_VERSION}`)",
                    marker.display()
                ))),
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if dir.join(ENGINE_MARKER).exists() {
                return Err(StoreError::Layout(format!(
                    "the data directory {} was written by an earlier meshtrace (store layout 1), whose index keys this version cannot read safely: move it aside or delete it and start again (or keep the earlier meshtrace on it until its data expires)",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            write_marker(dir, &marker)
        }
        Err(e) => Err(io_error(&marker, e)),
    }
}

/// The marker's text, at most 256 bytes of it.
fn read_limited(marker: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    File::open(marker)?.take(256).read_to_string(&mut text)?;
    Ok(text)
}

/// Writes the marker of this layout: to a new file renamed over the old one (a crash leaves
/// one marker or the other, never half of one), synced, and the directory synced too.
fn write_marker(dir: &Path, marker: &Path) -> Result<(), StoreError> {
    let fresh = dir.join(format!("{LAYOUT_FILE}.new"));
    let mut file = File::create(&fresh).map_err(|e| io_error(&fresh, e))?;
    file.write_all(format!("meshtrace store layout {LAYOUT_VERSION}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&fresh, e))?;
    std::fs::rename(&fresh, marker).map_err(|e| io_error(marker, e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn io_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Layout(format!("{}: {error}", path.display()))
}

/// What the acknowledgement record said when the store opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckRecord {
    /// No record (a new directory).
    Missing,
    /// A record whose checksum does not match.
    Damaged,
    Found {
        batch: u64,
        dictionary_next: u32,
    },
}

const RECORD_LEN: usize = 20;
/// One byte more than a record, to see a file that is too long.
const READ_LIMIT: u64 = RECORD_LEN as u64 + 1;

fn checksum(bytes: &[u8]) -> u64 {
    crate::codec::process_hash(bytes)
}

fn encode(batch: u64, dictionary_next: u32) -> [u8; RECORD_LEN] {
    let mut record = [0u8; RECORD_LEN];
    let (head, sum) = record.split_at_mut(12);
    let (b, d) = head.split_at_mut(8);
    b.copy_from_slice(&batch.to_le_bytes());
    d.copy_from_slice(&dictionary_next.to_le_bytes());
    sum.copy_from_slice(&checksum(head).to_le_bytes());
    record
}

fn decode(bytes: &[u8]) -> AckRecord {
    if bytes.is_empty() {
        return AckRecord::Missing; // created, nothing acknowledged yet
    }
    let Ok(record) = <[u8; RECORD_LEN]>::try_from(bytes) else {
        return AckRecord::Damaged;
    };
    let (head, sum) = record.split_at(12);
    let (b, d) = head.split_at(8);
    let (Ok(b), Ok(d), Ok(sum)) = (
        <[u8; 8]>::try_from(b),
        <[u8; 4]>::try_from(d),
        <[u8; 8]>::try_from(sum),
    ) else {
        return AckRecord::Damaged;
    };
    if u64::from_le_bytes(sum) != checksum(head) {
        return AckRecord::Damaged;
    }
    AckRecord::Found {
        batch: u64::from_le_bytes(b),
        dictionary_next: u32::from_le_bytes(d),
    }
}

/// Reads the record of `dir` without changing anything.
pub fn read_ack(dir: &Path) -> Result<AckRecord, StoreError> {
    let path = dir.join(ACK_FILE);
    let mut bytes = Vec::with_capacity(RECORD_LEN);
    match File::open(&path) {
        Ok(file) => {
            file.take(READ_LIMIT)
                .read_to_end(&mut bytes)
                .map_err(|e| io_error(&path, e))?;
            Ok(decode(&bytes))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(AckRecord::Missing),
        Err(e) => Err(io_error(&path, e)),
    }
}

/// The record, opened at the first write (an open that writes nothing, like the data check,
/// leaves the directory as it was) and kept open for rewriting after every batch.
pub struct AckWriter {
    path: PathBuf,
    file: Option<File>,
    failed: bool,
}

impl AckWriter {
    pub fn new(dir: &Path) -> AckWriter {
        AckWriter {
            path: dir.join(ACK_FILE),
            file: None,
            failed: false,
        }
    }

    pub fn write(&mut self, batch: u64, dictionary_next: u32) {
        if self.file.is_none() && !self.failed {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&self.path);
            match file {
                Ok(file) => self.file = Some(file),
                Err(error) => {
                    tracing::warn!(path = %self.path.display(), %error, "cannot open the acknowledgement record: journal damage will not be detected");
                    self.failed = true;
                }
            }
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let record = encode(batch, dictionary_next);
        let result = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&record));
        if let Err(error) = result {
            if !self.failed {
                tracing::warn!(path = %self.path.display(), %error, "cannot write the acknowledgement record");
            }
            self.failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_seen() {
        let record = encode(77, 5);
        assert_eq!(
            decode(&record),
            AckRecord::Found {
                batch: 77,
                dictionary_next: 5
            }
        );
        let mut bad = record;
        bad[3] ^= 1;
        assert_eq!(decode(&bad), AckRecord::Damaged);
        assert_eq!(decode(&record[..10]), AckRecord::Damaged);
        assert_eq!(decode(&[]), AckRecord::Missing);
    }

    #[test]
    fn a_directory_of_layout_1_is_refused_and_a_new_one_is_marked() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("new");
        check_or_mark(&fresh).unwrap();
        check_or_mark(&fresh).unwrap();

        let old = dir.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("version"), b"FJL\x03").unwrap();
        let error = check_or_mark(&old).unwrap_err().to_string();
        assert!(
            error.contains("earlier meshtrace (store layout 1)"),
            "{error}"
        );
        // A later layout is refused; the earlier ones are migrated.
        std::fs::write(old.join(LAYOUT_FILE), "meshtrace store layout 8\n").unwrap();
        let error = check_or_mark(&old).unwrap_err().to_string();
        assert!(error.contains("holds store layout 8"), "{error}");
        for earlier in ["2", "3", "4", "5", "6"] {
            std::fs::write(
                old.join(LAYOUT_FILE),
                format!("meshtrace store layout {earlier}\n"),
            )
            .unwrap();
            check_or_mark(&old).unwrap();
            assert_eq!(
                std::fs::read_to_string(old.join(LAYOUT_FILE)).unwrap(),
                "meshtrace store layout 7\n"
            );
        }
    }
}
