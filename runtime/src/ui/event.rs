//! The events the status page is built from: what listeners hear, as one serializable type,
//! so the live page and the event log (`event_log.rs`) feed the same statistics (`status.rs`).

use serde::{Deserialize, Serialize};

use crate::metrics::{BatchInfo, CheckpointInfo, OutputOperationInfo, ReceiverInfo};
use crate::time::Time;

/// One event of a job, as one line of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// The context started.
    Started {
        app_name: String,
        /// The application id the REST API serves (`local-<start ms>`, as Spark's local mode).
        app_id: String,
        batch_ms: u64,
        /// Wall-clock start (ms since the Unix epoch).
        start_time: u64,
        first_batch: Time,
        /// Every input's name, by input stream id.
        inputs: Vec<String>,
        /// Every receiver's input stream id and name.
        receivers: Vec<(usize, String)>,
        /// The job's output operations.
        #[serde(default)]
        output_ops: usize,
    },
    BatchSubmitted {
        batch: BatchInfo,
    },
    BatchStarted {
        batch: BatchInfo,
    },
    BatchCompleted {
        batch: BatchInfo,
    },
    BatchFailed {
        batch: BatchInfo,
    },
    OutputOperationStarted {
        operation: OutputOperationInfo,
    },
    OutputOperationCompleted {
        operation: OutputOperationInfo,
    },
    ReceiverStarted {
        receiver: ReceiverInfo,
    },
    ReceiverError {
        receiver: ReceiverInfo,
    },
    ReceiverStopped {
        receiver: ReceiverInfo,
    },
    Checkpoint {
        checkpoint: CheckpointInfo,
    },
    /// The context stopped (wall-clock ms).
    Stopped {
        time: u64,
    },
}

impl Event {
    /// Whether the event goes to the event log: everything but the steps of a batch in
    /// flight, which its completion line repeats.
    pub(crate) fn logged(&self) -> bool {
        !matches!(
            self,
            Event::BatchSubmitted { .. }
                | Event::BatchStarted { .. }
                | Event::OutputOperationStarted { .. }
                | Event::OutputOperationCompleted { .. }
        )
    }
}
