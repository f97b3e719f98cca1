//! State across batches: `update_state_by_key` and `map_with_state`, with their state kept
//! partitioned like the keys and checkpointed.

mod idle;
mod map_with_state;
mod name;
pub(crate) mod partition;
pub(crate) mod store;
mod task_store;
mod update_state;

pub use map_with_state::{MapWithStateDStream, State, StateSpec};
pub use update_state::UpdateInput;

/// What state and its keys must be: stream data that can be checkpointed.
pub trait StateData: crate::batch::Data + serde::Serialize + serde::de::DeserializeOwned {}
impl<T: crate::batch::Data + serde::Serialize + serde::de::DeserializeOwned> StateData for T {}
