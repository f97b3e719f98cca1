//! Lock helpers: a poisoned lock is still used.
//!
//! A panicking user closure (caught and reported as a batch error) must not wedge
//! the engine: every mutex, read-write lock and condition variable wait in the
//! runtime takes the guard back from a poisoned lock rather than panicking in turn.

use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// `Mutex::lock` that recovers the guard of a poisoned mutex.
pub(crate) trait LockExt<T: ?Sized> {
    /// Locks, taking the guard back if a holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `RwLock::read` / `RwLock::write` that recover the guard of a poisoned lock.
pub(crate) trait RwLockExt<T: ?Sized> {
    /// Locks for reading, taking the guard back if a writer panicked.
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    /// Locks for writing, taking the guard back if a writer panicked.
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// `Condvar` waits that recover the guard of a poisoned mutex.
pub(crate) trait CondvarExt {
    /// Waits for a notification, taking the guard back if the mutex was poisoned.
    fn wait_locked<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T>;
    /// Waits at most `dur`, taking the guard back if the mutex was poisoned.
    fn wait_timeout_locked<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, std::sync::WaitTimeoutResult);
}

impl CondvarExt for Condvar {
    fn wait_locked<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    fn wait_timeout_locked<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, std::sync::WaitTimeoutResult) {
        self.wait_timeout(guard, dur)
            .unwrap_or_else(|p| p.into_inner())
    }
}
