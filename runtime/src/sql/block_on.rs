//! The Tokio runtime DataFusion's plans run on, shared by every SQL query of the process.

use std::future::Future;
use std::sync::OnceLock;

/// Runs `future` to completion on the shared SQL runtime, from a batch's job or worker thread.
///
/// DataFusion executes a plan as async tasks spread over its partitions; they run on this
/// multi-threaded runtime (one thread per core, started on first use), while the calling
/// thread, which belongs to the streaming context, blocks until the result is complete.
pub(crate) fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("stream-sql")
            .build()
            .expect("cannot start the SQL runtime's threads")
    });
    if tokio::runtime::Handle::try_current().is_ok() {
        // Called from inside another Tokio runtime (a job's `#[tokio::main]` building its
        // graph), where blocking would panic: block a helper thread instead.
        return std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
    }
    runtime.block_on(future)
}
