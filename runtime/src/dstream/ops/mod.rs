//! DStream operations, each the batch operation of the same name applied at every batch time.

mod join;
mod narrow;
mod pair;
mod transform;
mod window;
mod window_pair;
