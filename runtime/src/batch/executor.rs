//! The worker threads that run a batch's partitions.

use std::sync::Arc;

/// A handle to the context's worker pool (`local[N]` minus the receivers' threads).
#[derive(Clone)]
pub(crate) struct Executor {
    pool: Arc<rayon::ThreadPool>,
    /// Spark's default parallelism: the master's thread count.
    pub(crate) parallelism: usize,
}

impl Executor {
    pub(crate) fn new(workers: usize, parallelism: usize) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .thread_name(|i| format!("stream-worker-{i}"))
            .build()
            .expect("failed to start worker threads");
        Executor {
            pool: Arc::new(pool),
            parallelism: parallelism.max(1),
        }
    }

    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}
