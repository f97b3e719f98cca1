//! The graph's lineage, as far as keys go: which node each node was made from and by which
//! operation (called where), and which nodes are Kafka streams or keyed by the record key.
//! Stateful operations ask it whether their key is still the record key (co-partitioning).

use std::any::Any;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;

/// A node's identity: the address of its `Arc`.
pub(crate) fn node_id<T: ?Sized>(node: &Arc<T>) -> usize {
    Arc::as_ptr(node) as *const () as usize
}

/// Operations after which the key of every pair is the key it had before (Kafka Streams'
/// non-key-changing operations), so a stream keyed by the record key stays keyed by it.
const KEEPS_KEY: [&str; 11] = [
    "repartition_read",
    "filter",
    "map_values",
    "flat_map_values",
    "reduce_by_key",
    "group_by_key",
    "combine_by_key",
    "update_state_by_key",
    "repartition",
    "window",
    "cache",
];

/// Operations after which each batch partition still holds the records of one Kafka
/// partition, in order (narrow operations that keep partitions).
#[cfg_attr(not(feature = "kafka"), allow(dead_code))] // Only Kafka streams mark nodes.
const KEEPS_PARTITIONS: [&str; 5] = ["filter", "map", "flat_map", "map_values", "flat_map_values"];

#[derive(Clone)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))] // Only Kafka streams mark nodes.
enum Tag {
    None,
    /// A direct Kafka stream's records: holds its source (an `Arc<DirectKafkaSource>`).
    Kafka(Arc<dyn Any + Send + Sync>),
    /// A stream keyed by the record key: holds an `Arc<KeyTasks<K>>`.
    Keyed(Arc<dyn Any + Send + Sync>),
}

struct Info {
    parent: Option<usize>,
    op: String,
    at: String,
    tag: Tag,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Lineage {
    nodes: HashMap<usize, Info>,
}

/// What a stateful operation finds above it.
pub(crate) enum Upstream {
    /// No Kafka stream: nothing to check.
    NotKafka,
    /// A stream keyed by the record key, through key-preserving operations only.
    Keyed(Arc<dyn Any + Send + Sync>),
    /// A Kafka stream, but an operation on the way may change the key.
    Changed {
        /// The operation.
        op: String,
        /// Where it was called.
        at: String,
    },
    /// A Kafka stream's records, not keyed by the record key.
    Unkeyed,
}

impl Lineage {
    /// Records that node `child` was made from `parent` by `op`, called at `at`.
    pub(crate) fn edge(&mut self, child: usize, parent: usize, op: &str, at: &Location<'_>) {
        self.nodes.insert(
            child,
            Info {
                parent: Some(parent),
                op: op.to_owned(),
                at: at.to_string(),
                tag: Tag::None,
            },
        );
    }

    /// Marks `node` as a direct Kafka stream.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn mark_kafka(
        &mut self,
        node: usize,
        at: &Location<'_>,
        source: Arc<dyn Any + Send + Sync>,
    ) {
        self.nodes.insert(
            node,
            Info {
                parent: None,
                op: "direct_kafka_stream".into(),
                at: at.to_string(),
                tag: Tag::Kafka(source),
            },
        );
    }

    /// Marks `node` (already recorded with its parent) as keyed by the record key.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn mark_keyed(&mut self, node: usize, tasks: Arc<dyn Any + Send + Sync>) {
        if let Some(i) = self.nodes.get_mut(&node) {
            i.tag = Tag::Keyed(tasks);
        }
    }

    /// What is above `node` (the parent of a stateful operation), for co-partitioning.
    pub(crate) fn upstream(&self, node: usize) -> Upstream {
        let mut cur = Some(node);
        let mut changed: Option<(String, String)> = None;
        while let Some(id) = cur {
            let Some(info) = self.nodes.get(&id) else {
                return Upstream::NotKafka;
            };
            match &info.tag {
                Tag::Keyed(t) => {
                    return match changed {
                        None => Upstream::Keyed(t.clone()),
                        Some((op, at)) => Upstream::Changed { op, at },
                    };
                }
                Tag::Kafka(_) => {
                    return match changed {
                        None => Upstream::Unkeyed,
                        Some((op, at)) => Upstream::Changed { op, at },
                    };
                }
                Tag::None => {}
            }
            if changed.is_none() && !KEEPS_KEY.contains(&info.op.as_str()) {
                changed = Some((info.op.clone(), info.at.clone()));
            }
            cur = info.parent;
        }
        Upstream::NotKafka
    }

    /// The direct Kafka stream above `node` when each batch partition of `node` still holds
    /// one Kafka partition's records (narrow operations only since the stream); else the
    /// first operation on the way that mixes partitions, or `Ok(None)` when no Kafka stream is
    /// above.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn kafka_partitions_kept(
        &self,
        node: usize,
    ) -> Result<Option<Arc<dyn Any + Send + Sync>>, (String, String)> {
        let mut cur = Some(node);
        let mut mixed: Option<(String, String)> = None;
        while let Some(id) = cur {
            let Some(info) = self.nodes.get(&id) else {
                return Ok(None);
            };
            if let Tag::Kafka(source) = &info.tag {
                return match mixed {
                    None => Ok(Some(source.clone())),
                    Some(m) => Err(m),
                };
            }
            if mixed.is_none()
                && !KEEPS_PARTITIONS.contains(&info.op.as_str())
                && info.op != "keyed"
            {
                mixed = Some((info.op.clone(), info.at.clone()));
            }
            cur = info.parent;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_changing_operation_between_kafka_and_state_is_found() {
        let here = Location::caller();
        let mut l = Lineage::default();
        l.mark_kafka(1, here, Arc::new(()));
        l.edge(2, 1, "keyed", here);
        l.mark_keyed(2, Arc::new(()));
        l.edge(3, 2, "map_values", here);
        l.edge(4, 3, "reduce_by_key", here);
        assert!(matches!(l.upstream(4), Upstream::Keyed(_)));
        l.edge(5, 4, "map", here);
        l.edge(6, 5, "filter", here);
        match l.upstream(6) {
            Upstream::Changed { op, .. } => assert_eq!(op, "map"),
            _ => panic!("map changes keys"),
        }
        l.edge(7, 1, "flat_map", here);
        assert!(matches!(l.upstream(7), Upstream::Changed { .. }));
        l.edge(8, 1, "filter", here);
        assert!(matches!(l.upstream(8), Upstream::Unkeyed));
        assert!(matches!(l.upstream(99), Upstream::NotKafka));
        assert!(matches!(l.kafka_partitions_kept(7), Ok(Some(_))));
        assert_eq!(l.kafka_partitions_kept(4).err().unwrap().0, "reduce_by_key");
        assert!(matches!(l.kafka_partitions_kept(99), Ok(None)));
    }
}
