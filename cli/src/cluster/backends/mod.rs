//! One module per kind of cluster manager, each implementing [`crate::cluster::Backend`]:
//! Spark's REST gateway, `spark-submit` over SSH, a plain Linux host over SSH, and Slurm.

pub mod slurm;
pub mod spark_master;
pub mod spark_rest;
pub mod spark_ssh;
pub mod ssh_host;
