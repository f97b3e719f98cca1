//! The guard: which records of a batch with these offset ranges are still to be written, given
//! the ends PostgreSQL holds for their partitions? Those from the stored end (or the range's
//! start, for a partition never written) to the range's end; none when the stored end is at or
//! past the range's end (written before); and a stored end before the range's start is a gap
//! that would lose records, refused.

use std::collections::BTreeMap;

use super::super::range::{OffsetRange, TopicPartition};

/// What the guard decided for a batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Write these ranges (the parts of the batch's not written before; the batch's own
    /// ranges when each stored end equals its start).
    Write(Vec<OffsetRange>),
    /// Written before, all of it: each non-empty range with the stored end of its partition.
    Written(Vec<(OffsetRange, i64)>),
    /// The stored end of this partition is before the batch's start.
    Gap(OffsetRange, i64),
}

/// The verdict for `ranges` given the `stored` ends of their partitions (a partition never
/// written has none).
pub(super) fn check(ranges: &[OffsetRange], stored: &BTreeMap<TopicPartition, i64>) -> Verdict {
    let mut unwritten = Vec::with_capacity(ranges.len());
    let mut written = Vec::new();
    for range in ranges {
        let start = match stored.get(&range.topic_partition()).copied() {
            None => range.from_offset,
            Some(end) if end < range.from_offset => return Verdict::Gap(range.clone(), end),
            Some(end) => end,
        };
        if start > range.from_offset {
            written.push((range.clone(), start));
        }
        unwritten.push(OffsetRange {
            from_offset: start.min(range.until_offset),
            ..range.clone()
        });
    }
    if !written.is_empty() && unwritten.iter().all(|r| r.count() == 0) {
        Verdict::Written(written)
    } else {
        Verdict::Write(unwritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(ends: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        ends.iter()
            .map(|(p, e)| (TopicPartition::new("t", *p), *e))
            .collect()
    }

    fn r(p: i32, from: i64, until: i64) -> OffsetRange {
        OffsetRange::new("t", p, from, until)
    }

    #[test]
    fn a_batch_starting_at_the_stored_ends_or_at_new_partitions_is_written_whole() {
        let ranges = vec![r(0, 10, 20), r(1, 0, 5), r(2, 7, 7)];
        assert_eq!(
            check(&ranges, &stored(&[(0, 10), (2, 7)])),
            Verdict::Write(ranges.clone())
        );
        assert_eq!(check(&ranges, &stored(&[])), Verdict::Write(ranges.clone()));
        // Nothing in it, nothing written before: an empty batch, written (as nothing).
        assert_eq!(
            check(&[r(0, 3, 3)], &stored(&[(0, 3)])),
            Verdict::Write(vec![r(0, 3, 3)])
        );
    }

    #[test]
    fn a_batch_whose_ends_are_stored_was_written() {
        // Written before (ends 20 and 5), or later batches too (end 30); the empty range of
        // partition 2 starts at its stored end and changes nothing.
        let ranges = [r(0, 10, 20), r(1, 0, 5), r(2, 7, 7)];
        let verdict = check(&ranges, &stored(&[(0, 30), (1, 5), (2, 7)]));
        assert_eq!(
            verdict,
            Verdict::Written(vec![(r(0, 10, 20), 30), (r(1, 0, 5), 5)])
        );
    }

    #[test]
    fn only_the_records_after_the_stored_ends_are_written() {
        // Regenerated after a crash with other ranges than the batches written had: partition
        // 0 was written up to 15, partition 1 to its end, partition 2 never.
        let ranges = [r(0, 10, 20), r(1, 0, 5), r(2, 0, 4)];
        assert_eq!(
            check(&ranges, &stored(&[(0, 15), (1, 9)])),
            Verdict::Write(vec![r(0, 15, 20), r(1, 5, 5), r(2, 0, 4)])
        );
    }

    #[test]
    fn a_stored_end_before_the_start_is_a_gap() {
        let ranges = [r(0, 10, 20), r(1, 8, 9)];
        assert_eq!(
            check(&ranges, &stored(&[(0, 30), (1, 5)])),
            Verdict::Gap(r(1, 8, 9), 5)
        );
    }
}
