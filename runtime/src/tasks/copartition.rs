//! Co-partitioning checks of a job running as instances, beyond `update_state_by_key` and
//! `map_with_state` (which keep their state per task): joins between two Kafka streams need
//! both keyed by the record key over topics of the same partition count, and operations whose
//! state is kept per instance (windows) are refused on a Kafka stream, since a rescale would
//! lose or misplace it.

use std::panic::Location;
use std::sync::Arc;

use crate::batch::{Data, Key};
use crate::dstream::DStream;
use crate::error::Error;

use super::lineage::{Upstream, node_id};
use super::store::KeyTasks;

/// One side of a join between two Kafka streams: its keys' tasks, or why its key may not be
/// the record key.
fn side<K: Key>(upstream: Upstream) -> Result<Option<Arc<KeyTasks<K>>>, String> {
    match upstream {
        Upstream::NotKafka => Ok(None),
        Upstream::Keyed(any) => any
            .downcast::<KeyTasks<K>>()
            .map(Some)
            .map_err(|_| "its key type is not the one the stream was keyed with".to_owned()),
        Upstream::Changed { op, at } => Err(format!(
            "its key may not be the record key: `{op}` at {at} may change it"
        )),
        Upstream::Unkeyed => Err(
            "its records are not keyed by the record key: read them with `.keyed::<K>()` on the direct Kafka stream"
                .to_owned(),
        ),
    }
}

impl<K: Key, V: Data> DStream<(K, V)> {
    /// With instances, for a join (`op`) of this stream with `other` when both read Kafka:
    /// each side's key must be its record key (else `start()` fails now), and their topics
    /// must have the same partition count (checked at `start()`, once the partitions are
    /// listed), so that a key's records are in the same instance on both sides. A join with a
    /// stream that is not read from Kafka is left alone: each instance joins its own share
    /// with what it reads of the other.
    #[track_caller]
    pub(crate) fn check_join_copartitioned<W: Data>(&self, other: &DStream<(K, W)>, op: &str) {
        if self.shared.conf.instance.is_none() {
            return;
        }
        let operation = format!("{op} at {}", Location::caller());
        let mut graph = self.shared.graph_mut();
        let left = graph.lineage.upstream(node_id(&self.node));
        let right = graph.lineage.upstream(node_id(&other.node));
        if matches!(left, Upstream::NotKafka) || matches!(right, Upstream::NotKafka) {
            return;
        }
        let (left, right) = match (side::<K>(left), side::<K>(right)) {
            (Ok(Some(l)), Ok(Some(r))) => (l, r),
            (Err(why), _) => {
                graph.problems.push(Error::NotCoPartitioned {
                    operation,
                    why: format!("its left side (this stream): {why}"),
                });
                return;
            }
            (_, Err(why)) => {
                graph.problems.push(Error::NotCoPartitioned {
                    operation,
                    why: format!("its right side (the `other` stream): {why}"),
                });
                return;
            }
            _ => return,
        };
        graph.start_checks.push(Box::new(move || {
            let topic = |tasks: &KeyTasks<K>| {
                tasks
                    .source
                    .topic()
                    .map_err(|why| Error::NotCoPartitioned {
                        operation: operation.clone(),
                        why: format!("the stream keyed at {}: {why}", tasks.at),
                    })
            };
            let (l, r) = (topic(&left)?, topic(&right)?);
            if l.1 == r.1 {
                return Ok(());
            }
            Err(Error::NotCoPartitioned {
                operation: operation.clone(),
                why: format!(
                    "it joins topic `{}` ({} partitions) with topic `{}` ({} partitions): each instance reads the partitions `p mod N == i` of both, so a key's records meet in one instance only when both topics have the same partition count; create them with the same count, or send one side through a topic of the other's count",
                    l.0, l.1, r.0, r.1
                ),
            })
        }));
    }
}

impl<T: Data> DStream<T> {
    /// With instances, refuses (at `start()`) an operation `op` whose state is kept per
    /// instance, not per task, when it reads a Kafka stream: a rescale would restore it into
    /// an instance that no longer reads the partitions it came from. Called where the state
    /// is made (a window's batches).
    #[track_caller]
    pub(crate) fn refuse_instance_state(&self, op: &str) {
        let Some(instance) = self.shared.conf.instance else {
            return;
        };
        let mut graph = self.shared.graph_mut();
        if matches!(
            graph.lineage.upstream(node_id(&self.node)),
            Upstream::NotKafka
        ) {
            return;
        }
        graph.problems.push(Error::InvalidSetting {
            name: "instances",
            why: format!(
                "`{op}` at {} keeps its state (the window's batches) per instance, not per task, on a Kafka stream: stopped at {} instances and started at another count, an instance would restore batches of partitions it no longer reads and lack those of partitions it now reads, so {instance} refuses it; keep the running state with `update_state_by_key` or `map_with_state` on a keyed stream (kept per task), or run the job as one instance",
                Location::caller(),
                instance.count,
            ),
        });
    }
}
