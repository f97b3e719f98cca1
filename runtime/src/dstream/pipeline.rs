//! Pipelining: chains of narrow operations (`map`, `flat_map`, `filter`, `map_values`) run as
//! one pass per partition piece, as Spark runs the narrow operations of a stage, instead of
//! building a whole intermediate collection per operation. The chain ends where a batch is
//! needed whole (an output), or in a shuffle's map side, which combines straight from it.
//!
//! Records move through the chain a chunk at a time: each operation is a monomorphised loop
//! over a chunk of its input ([`Stage`]), composed when the graph is built, so the one dynamic
//! call per operation is paid per chunk of [`CHUNK`] records, not per record (a boxed iterator
//! per operation cost two indirect calls and an out-of-line `Option` per word of a word count).
//! Each stage reuses one buffer for the whole piece: nothing is allocated per record.

use crate::batch::{Batch, Data, Executor};

/// A piece of a partition's records, produced a chunk at a time.
pub(crate) trait Chunks<T>: Send {
    /// Appends the records made from the next chunk of the piece's input to `out` (none when
    /// a filter dropped them all); `false` when the input is exhausted (nothing appended).
    fn fill(&mut self, out: &mut Vec<T>) -> bool;

    /// How many input records of the piece are left (a capacity hint).
    fn remaining(&self) -> usize;
}

/// One piece of a partition's records, produced on demand.
pub(crate) type Records<T> = Box<dyn Chunks<T>>;

/// Input records per chunk: small enough that a chunk's records (and a `flat_map`'s words
/// from them) stay in the first-level cache, large enough that the per-chunk calls vanish.
pub(crate) const CHUNK: usize = 64;

/// The source of a piece: a cut of a partition, moved out a chunk at a time.
struct Source<T>(std::vec::IntoIter<T>);

impl<T: Send> Chunks<T> for Source<T> {
    fn fill(&mut self, out: &mut Vec<T>) -> bool {
        let n = self.0.len().min(CHUNK);
        if n == 0 {
            return false;
        }
        out.extend(self.0.by_ref().take(n));
        true
    }

    fn remaining(&self) -> usize {
        self.0.len()
    }
}

/// A narrow operation fused onto its input: `op` turns a chunk of input records (drained from
/// `buf`) into output records appended to `out`. `op` is the operation's own closure type, so
/// the user's function is inlined into the loop.
pub(crate) struct Stage<T, F> {
    input: Records<T>,
    buf: Vec<T>,
    op: F,
}

impl<T, F> Stage<T, F> {
    /// `op` applied to `input`'s chunks.
    pub(crate) fn new(input: Records<T>, op: F) -> Self {
        Stage {
            input,
            buf: Vec::new(),
            op,
        }
    }
}

impl<T: Send, U, F> Chunks<U> for Stage<T, F>
where
    F: FnMut(&mut Vec<T>, &mut Vec<U>) + Send,
{
    fn fill(&mut self, out: &mut Vec<U>) -> bool {
        self.buf.clear();
        if !self.input.fill(&mut self.buf) {
            return false;
        }
        (self.op)(&mut self.buf, out);
        true
    }

    fn remaining(&self) -> usize {
        self.input.remaining()
    }
}

/// Calls `each` on every record of `records`, chunk by chunk, with one reused buffer.
pub(crate) fn for_each<T>(mut records: Records<T>, mut each: impl FnMut(T)) {
    let mut buf = Vec::new();
    while records.fill(&mut buf) {
        buf.drain(..).for_each(&mut each);
    }
}

/// The fewest records a partition is cut into pieces of: below it the work is too short to
/// be worth another thread.
const MIN_PIECE: usize = 1024;

/// How many pieces per worker thread a large batch is cut into, so that threads that finish
/// early take more (work stealing) instead of waiting on the slowest.
const PIECES_PER_THREAD: usize = 4;

/// A batch whose partitions are still iterators. A large partition is cut into pieces run on
/// different threads (a receiver's block is one partition: without this, one thread did all
/// the work of a batch of one block); the pieces of a partition come back together, in
/// order, when the batch is collected, so partitions are as before.
pub(crate) struct Lazy<T> {
    /// The pieces, partition by partition, in order.
    pub(crate) parts: Vec<Records<T>>,
    /// The partition each piece belongs to.
    owners: Vec<usize>,
    /// The number of partitions.
    partitions: usize,
    pub(crate) exec: Executor,
}

impl<T: Data> Lazy<T> {
    pub(crate) fn from_batch(batch: Batch<T>) -> Self {
        let exec = batch.exec;
        let partitions = batch.parts.len();
        let total: usize = batch.parts.iter().map(Vec::len).sum();
        let threads = exec.parallelism;
        let piece = if threads > 1 {
            MIN_PIECE.max(total.div_ceil(threads * PIECES_PER_THREAD))
        } else {
            usize::MAX
        };
        let mut parts: Vec<Records<T>> = Vec::with_capacity(partitions);
        let mut owners = Vec::with_capacity(partitions);
        for (i, p) in batch.parts.into_iter().enumerate() {
            for piece in cut(p, piece) {
                parts.push(Box::new(Source(piece.into_iter())));
                owners.push(i);
            }
        }
        Lazy {
            parts,
            owners,
            partitions,
            exec,
        }
    }

    /// Applies `f` to each piece's iterator: `f` must treat records one by one (a narrow,
    /// per-record operation), as pieces split partitions.
    pub(crate) fn then<U: Data>(self, f: impl Fn(Records<T>) -> Records<U>) -> Lazy<U> {
        Lazy {
            parts: self.parts.into_iter().map(f).collect(),
            owners: self.owners,
            partitions: self.partitions,
            exec: self.exec,
        }
    }

    /// Runs each piece's chain to its end on the worker threads, with `finish`: one result per
    /// piece (a shuffle's map side combines per piece).
    pub(crate) fn run<U: Send>(
        self,
        finish: impl Fn(Records<T>) -> Vec<U> + Send + Sync,
    ) -> (Vec<Vec<U>>, Executor) {
        use rayon::prelude::*;
        let parts = if self.parts.len() <= 1 {
            self.parts.into_iter().map(finish).collect()
        } else {
            self.exec
                .install(|| self.parts.into_par_iter().map(&finish).collect())
        };
        (parts, self.exec)
    }

    /// The records, collected, each partition whole again.
    pub(crate) fn materialize(mut self) -> Batch<T> {
        let (owners, partitions) = (std::mem::take(&mut self.owners), self.partitions);
        let (pieces, exec) = self.run(|mut it| {
            let mut out = Vec::with_capacity(it.remaining());
            while it.fill(&mut out) {}
            out
        });
        let mut parts: Vec<Vec<T>> = (0..partitions).map(|_| Vec::new()).collect();
        for (piece, owner) in pieces.into_iter().zip(owners) {
            let part = &mut parts[owner];
            if part.is_empty() {
                *part = piece;
            } else {
                part.extend(piece);
            }
        }
        Batch::new(parts, exec)
    }
}

/// `p` cut into contiguous pieces of at most `len` records (`p` itself when it fits), moving
/// each record once.
fn cut<T>(mut p: Vec<T>, len: usize) -> Vec<Vec<T>> {
    if p.len() <= len {
        return vec![p];
    }
    let n = p.len().div_ceil(len);
    let mut pieces = Vec::with_capacity(n);
    for i in (1..n).rev() {
        pieces.push(p.split_off(i * p.len() / (i + 1)));
    }
    pieces.push(p);
    pieces.reverse();
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_order_and_bounds_pieces() {
        let v: Vec<u32> = (0..10).collect();
        let pieces = cut(v.clone(), 3);
        assert!(
            pieces.iter().all(|p| !p.is_empty() && p.len() <= 3),
            "{pieces:?}"
        );
        assert_eq!(pieces.concat(), v);
        assert_eq!(cut(v.clone(), 10), vec![v]);
    }

    #[test]
    fn a_large_partition_runs_on_every_thread_and_comes_back_whole() {
        let exec = Executor::new(2, 2);
        let big: Vec<u64> = (0..(MIN_PIECE * 16) as u64).collect();
        let batch = Batch::new(vec![big.clone(), vec![], vec![7]], exec);
        let lazy = Lazy::from_batch(batch);
        assert_eq!(lazy.parts.len(), 2 * PIECES_PER_THREAD + 2, "pieces");
        let threads = std::sync::Mutex::new(std::collections::HashSet::new());
        let out = lazy
            .then(|it| {
                Box::new(Stage::new(it, |i: &mut Vec<u64>, o: &mut Vec<u64>| {
                    o.extend(i.drain(..).map(|x| x * 2))
                }))
            })
            .then(|it| {
                Box::new(Stage::new(it, |i: &mut Vec<u64>, o: &mut Vec<u64>| {
                    o.extend(i.drain(..).filter(|x| x % 3 != 1))
                }))
            })
            .materialize();
        let doubled: Vec<u64> = big.iter().map(|x| x * 2).filter(|x| x % 3 != 1).collect();
        assert_eq!(out.parts, vec![doubled, vec![], vec![14]]);
        let one = Batch::new(vec![big], Executor::new(2, 2));
        let (pieces, _) = Lazy::from_batch(one).run(|it| {
            threads.lock().unwrap().insert(std::thread::current().id());
            // Long enough for the second thread to take pieces on a busy machine.
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut n = 0;
            for_each(it, |_| n += 1);
            vec![n]
        });
        assert_eq!(pieces.concat().iter().sum::<usize>(), MIN_PIECE * 16);
        assert_eq!(
            threads.lock().unwrap().len(),
            2,
            "both worker threads ran pieces"
        );
    }

    #[test]
    fn a_chunk_a_filter_empties_does_not_end_the_piece() {
        // Whole chunks of the input are dropped by the filter: the records after them are
        // still produced (a stage whose chunk came out empty is not exhausted).
        let n = (CHUNK * 5) as u64;
        let batch = Batch::new(vec![(0..n).collect()], Executor::new(1, 1));
        let out = Lazy::from_batch(batch)
            .then(|it| {
                Box::new(Stage::new(it, move |i: &mut Vec<u64>, o: &mut Vec<u64>| {
                    o.extend(i.drain(..).filter(|x| *x >= n - 3))
                }))
            })
            .materialize();
        assert_eq!(out.parts, vec![vec![n - 3, n - 2, n - 1]]);
    }
}
