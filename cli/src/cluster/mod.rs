//! Cluster managers: the profiles that name them ([`profile`]), the one [`Backend`] trait they
//! implement, one module per kind in [`backends`] (Spark's REST gateway, `spark-submit` over
//! SSH, a plain SSH host, Slurm) on the wire protocols of [`transport`] (SSH, HTTP, JWT), how
//! the artifact reaches a place the cluster reads ([`stage`]), and the local record of what was
//! submitted ([`record`]), which keeps the names of the job's
//! environment variables but never their values ([`secret`]).

pub mod backend;
pub mod backends;
pub mod driver_ui;
pub mod follow;
pub mod history;
pub mod profile;
pub mod record;
pub mod run_sh;
pub mod secret;
pub mod stage;
pub mod submit;
pub mod transport;
pub mod utc;

pub use backend::{Backend, JobSpec, JobState, Listed, LogStream, Status, Submitted};
pub use profile::{Kind, Profile, ProfileKeys};
pub use record::Record;

/// The backend for a profile.
pub fn backend(profile: &Profile) -> anyhow::Result<Box<dyn Backend>> {
    Ok(match &profile.keys {
        ProfileKeys::SparkRest(keys) => {
            Box::new(backends::spark_rest::SparkRest::new(profile, keys)?)
        }
        ProfileKeys::Ssh(_) => Box::new(backends::ssh_host::SshHost::new(profile)?),
        ProfileKeys::Slurm(keys) => Box::new(backends::slurm::Slurm::new(profile, keys)?),
        ProfileKeys::SparkSsh(keys) => Box::new(backends::spark_ssh::SparkSsh::new(profile, keys)?),
    })
}
