//! Failpoints for the fault-injection tests: named places on the fault paths (checkpoint
//! write, write-ahead log append and truncation, receiver start and stop, batch run) where a
//! test can make the runtime fail, panic or stop.
//!
//! With the `failpoints` feature they are the `fail` crate's (`fail::cfg("name", "panic")`, or
//! the `FAILPOINTS` environment variable in a child process); without it they compile to
//! nothing, so a job's build carries none of them.

/// Marks a failpoint: `failpoint!("checkpoint::before_rename")`, or with a closure turning the
/// configured `return` action into the enclosing function's error:
/// `failpoint!("wal::append", |_| Err(io_error()))`.
#[cfg(feature = "failpoints")]
macro_rules! failpoint {
    ($name:expr) => {
        fail::fail_point!($name)
    };
    ($name:expr, $e:expr) => {
        fail::fail_point!($name, $e)
    };
}

#[cfg(not(feature = "failpoints"))]
macro_rules! failpoint {
    ($name:expr) => {};
    ($name:expr, $e:expr) => {};
}

pub(crate) use failpoint;
