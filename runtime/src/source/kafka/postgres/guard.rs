//! The guard: may a batch with these offset ranges be written, given the ends PostgreSQL
//! holds for their partitions? Only when each stored end equals the batch's start; a batch
//! already written (every stored end past its start) is skipped; anything else would lose or
//! double records and is refused.

use std::collections::BTreeMap;

use super::super::range::{OffsetRange, TopicPartition};

/// What the guard decided for a batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Every stored end equals the batch's start (or there is none yet): write.
    Apply,
    /// Already written: the stored ends of these partitions are at or past the batch's end.
    Replay(Vec<(OffsetRange, i64)>),
    /// The stored end of this partition is before the batch's start.
    Gap(OffsetRange, i64),
    /// Part of the batch was written under other ranges: each range with its stored end.
    PartlyWritten(Vec<(OffsetRange, Option<i64>)>),
}

/// The verdict for `ranges` given the `stored` ends of their partitions (a partition never
/// written has none).
pub(super) fn check(ranges: &[OffsetRange], stored: &BTreeMap<TopicPartition, i64>) -> Verdict {
    let mut replayed = Vec::new();
    // Non-empty ranges that start where the stored end is: new records for those partitions.
    let mut fresh = false;
    let mut partly = false;
    for range in ranges {
        let end = stored.get(&range.topic_partition()).copied();
        match end {
            None => fresh |= range.count() > 0,
            Some(end) if end == range.from_offset => fresh |= range.count() > 0,
            Some(end) if end < range.from_offset => return Verdict::Gap(range.clone(), end),
            Some(end) if end >= range.until_offset => replayed.push((range.clone(), end)),
            // Inside the range: written up to a point no batch of these ranges ends at.
            Some(_) => partly = true,
        }
    }
    if partly || (fresh && !replayed.is_empty()) {
        return Verdict::PartlyWritten(
            ranges
                .iter()
                .map(|r| (r.clone(), stored.get(&r.topic_partition()).copied()))
                .collect(),
        );
    }
    if replayed.is_empty() {
        Verdict::Apply
    } else {
        Verdict::Replay(replayed)
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
    fn a_batch_starting_at_the_stored_ends_or_at_new_partitions_is_applied() {
        let ranges = [r(0, 10, 20), r(1, 0, 5), r(2, 7, 7)];
        assert_eq!(check(&ranges, &stored(&[(0, 10), (2, 7)])), Verdict::Apply);
        assert_eq!(check(&ranges, &stored(&[])), Verdict::Apply);
    }

    #[test]
    fn a_batch_whose_ends_are_stored_is_a_replay() {
        // Written before (ends 20 and 5), or later batches too (end 30); the empty range of
        // partition 2 starts at its stored end and changes nothing.
        let ranges = [r(0, 10, 20), r(1, 0, 5), r(2, 7, 7)];
        let verdict = check(&ranges, &stored(&[(0, 30), (1, 5), (2, 7)]));
        assert_eq!(
            verdict,
            Verdict::Replay(vec![(r(0, 10, 20), 30), (r(1, 0, 5), 5)])
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

    #[test]
    fn a_stored_end_inside_a_range_or_a_mix_of_written_and_new_is_refused() {
        let inside = check(&[r(0, 10, 20)], &stored(&[(0, 15)]));
        assert!(matches!(inside, Verdict::PartlyWritten(_)), "{inside:?}");
        let mixed = check(&[r(0, 10, 20), r(1, 0, 5)], &stored(&[(0, 20)]));
        assert_eq!(
            mixed,
            Verdict::PartlyWritten(vec![(r(0, 10, 20), Some(20)), (r(1, 0, 5), None)])
        );
    }
}
