//! Which instance of a scaled-out job this process is: instance `i` of `N`, from
//! [`StreamingConf::instance`](crate::StreamingConf::instance), else `CARGO_STREAM_INSTANCE` /
//! `CARGO_STREAM_INSTANCES` (set by the launcher), else Slurm's `SLURM_PROCID` /
//! `SLURM_NTASKS` (when Slurm runs more than one task).

use crate::error::{Error, Result};

/// The environment variable holding this process's instance number (`0` to `N - 1`).
pub const INSTANCE_ENV: &str = "CARGO_STREAM_INSTANCE";
/// The environment variable holding the job's instance count `N`.
pub const INSTANCES_ENV: &str = "CARGO_STREAM_INSTANCES";
/// Slurm's rank of the task (read when [`INSTANCES_ENV`] is not set).
pub const SLURM_PROCID_ENV: &str = "SLURM_PROCID";
/// Slurm's task count (read when [`INSTANCES_ENV`] is not set).
pub const SLURM_NTASKS_ENV: &str = "SLURM_NTASKS";

/// Instance `index` of `count`: the process owns the Kafka partitions `p` with
/// `p mod count == index` (a static, deterministic assignment, as Kafka Streams' tasks are
/// spread when nothing moves), and checkpoints the state of those partitions (its *tasks*)
/// under the shared checkpoint directory.
///
/// ```
/// use cargo_stream_runtime::tasks::Instance;
/// let second = Instance::new(1, 3)?;
/// assert!(second.owns(1) && second.owns(4));
/// assert!(!second.owns(0));
/// assert_eq!(second.to_string(), "instance 1 of 3");
/// # Ok::<(), cargo_stream_runtime::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// This instance's number, `0..count`.
    pub index: u32,
    /// How many instances the job runs as.
    pub count: u32,
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instance {} of {}", self.index, self.count)
    }
}

impl Instance {
    /// Instance `index` of `count`; `count == 0` or `index >= count` is an
    /// [`Error::InvalidSetting`] naming `StreamingConf::instance`.
    pub fn new(index: u32, count: u32) -> Result<Instance> {
        check(
            index,
            count,
            "StreamingConf::instance",
            "the index",
            "the count",
        )
    }

    /// Whether Kafka partition `partition` is this instance's (`partition mod count == index`).
    pub fn owns(&self, partition: i32) -> bool {
        partition >= 0 && (partition as u32) % self.count == self.index
    }

    /// The instance the environment names: [`INSTANCE_ENV`] and [`INSTANCES_ENV`] when
    /// `CARGO_STREAM_INSTANCES` is set, else [`SLURM_PROCID_ENV`] and [`SLURM_NTASKS_ENV`] when
    /// Slurm runs more than one task, else `None` (one process, no tasks). A value that is not
    /// a number, a count of 0 or an index outside `0..count` is an error naming the variable.
    pub fn from_env() -> Result<Option<Instance>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `get` (for tests).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Instance>> {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(count) = set(INSTANCES_ENV) {
            let count = number(INSTANCES_ENV, &count)?;
            let index = match set(INSTANCE_ENV) {
                Some(i) => number(INSTANCE_ENV, &i)?,
                None => {
                    return Err(Error::InvalidSetting {
                        name: INSTANCE_ENV,
                        why: format!(
                            "`{INSTANCES_ENV}={count}` is set but `{INSTANCE_ENV}` is not: set it to this process's instance number, 0 to {}",
                            count.saturating_sub(1)
                        ),
                    });
                }
            };
            return check(index, count, INSTANCE_ENV, INSTANCE_ENV, INSTANCES_ENV).map(Some);
        }
        if let Some(i) = set(INSTANCE_ENV) {
            return Err(Error::InvalidSetting {
                name: INSTANCES_ENV,
                why: format!(
                    "`{INSTANCE_ENV}={i}` is set but `{INSTANCES_ENV}` is not: set it to the job's instance count"
                ),
            });
        }
        if let Some(count) = set(SLURM_NTASKS_ENV) {
            let count = number(SLURM_NTASKS_ENV, &count)?;
            if count <= 1 {
                return Ok(None);
            }
            let index = match set(SLURM_PROCID_ENV) {
                Some(i) => number(SLURM_PROCID_ENV, &i)?,
                None => {
                    return Err(Error::InvalidSetting {
                        name: SLURM_PROCID_ENV,
                        why: format!(
                            "`{SLURM_NTASKS_ENV}={count}` is set but `{SLURM_PROCID_ENV}` is not: start the tasks with `srun`, or set `{INSTANCE_ENV}` and `{INSTANCES_ENV}`"
                        ),
                    });
                }
            };
            return check(
                index,
                count,
                SLURM_PROCID_ENV,
                SLURM_PROCID_ENV,
                SLURM_NTASKS_ENV,
            )
            .map(Some);
        }
        Ok(None)
    }
}

fn number(name: &'static str, value: &str) -> Result<u32> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| Error::InvalidSetting {
            name,
            why: format!(
                "`{name}={value}` is not a number: set it to a whole number such as 0, 1 or 2"
            ),
        })
}

fn check(
    index: u32,
    count: u32,
    name: &'static str,
    index_name: &str,
    count_name: &str,
) -> Result<Instance> {
    if count == 0 {
        return Err(Error::InvalidSetting {
            name,
            why: format!("{count_name} is 0: a job runs as at least one instance"),
        });
    }
    if index >= count {
        return Err(Error::InvalidSetting {
            name,
            why: format!(
                "{index_name} is {index} but {count_name} is {count}: instances are numbered 0 to {}",
                count - 1
            ),
        });
    }
    Ok(Instance { index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Option<Instance>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Instance::from_lookup(|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
    }

    fn message(r: Result<Option<Instance>>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn the_launchers_variables_win_over_slurms() {
        assert_eq!(env(&[]).unwrap(), None);
        let vars = [
            (INSTANCE_ENV, "2"),
            (INSTANCES_ENV, "3"),
            (SLURM_PROCID_ENV, "0"),
            (SLURM_NTASKS_ENV, "5"),
        ];
        assert_eq!(env(&vars).unwrap(), Some(Instance { index: 2, count: 3 }));
        let slurm = [(SLURM_PROCID_ENV, "4"), (SLURM_NTASKS_ENV, "5")];
        assert_eq!(env(&slurm).unwrap(), Some(Instance { index: 4, count: 5 }));
        // One Slurm task is one process: no instances.
        assert_eq!(
            env(&[(SLURM_PROCID_ENV, "0"), (SLURM_NTASKS_ENV, "1")]).unwrap(),
            None
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let m = message(env(&[(INSTANCE_ENV, "3"), (INSTANCES_ENV, "3")]));
        assert!(m.contains(INSTANCE_ENV) && m.contains("0 to 2"), "{m}");
        let m = message(env(&[(INSTANCE_ENV, "0"), (INSTANCES_ENV, "0")]));
        assert!(m.contains(INSTANCES_ENV) && m.contains("is 0"), "{m}");
        let m = message(env(&[(INSTANCE_ENV, "one"), (INSTANCES_ENV, "3")]));
        assert!(
            m.contains("`CARGO_STREAM_INSTANCE=one` is not a number"),
            "{m}"
        );
        let m = message(env(&[(INSTANCES_ENV, "x")]));
        assert!(
            m.contains("`CARGO_STREAM_INSTANCES=x` is not a number"),
            "{m}"
        );
        let m = message(env(&[(INSTANCES_ENV, "2")]));
        assert!(m.contains("`CARGO_STREAM_INSTANCE` is not"), "{m}");
        let m = message(env(&[(INSTANCE_ENV, "1")]));
        assert!(m.contains(INSTANCES_ENV), "{m}");
        let m = message(env(&[(SLURM_PROCID_ENV, "7"), (SLURM_NTASKS_ENV, "4")]));
        assert!(m.contains(SLURM_PROCID_ENV) && m.contains("0 to 3"), "{m}");
        let m = Instance::new(2, 2).unwrap_err().to_string();
        assert!(m.contains("StreamingConf::instance"), "{m}");
    }

    #[test]
    fn partitions_go_round_robin() {
        let owned = |i| {
            (0..7)
                .filter(|p| Instance::new(i, 3).unwrap().owns(*p))
                .collect::<Vec<_>>()
        };
        assert_eq!(owned(0), vec![0, 3, 6]);
        assert_eq!(owned(1), vec![1, 4]);
        assert_eq!(owned(2), vec![2, 5]);
    }
}
