//! A connection opened on first use and kept: a backend asked every half second (`logs
//! --follow`, `--wait`) talks over one SSH connection, not one per question.

use std::cell::OnceCell;

use anyhow::Context as _;

use super::Session;
use crate::cluster::profile::SshTarget;

/// An SSH endpoint and, once used, its open [`Session`].
#[derive(Debug)]
pub struct LazySession {
    target: SshTarget,
    cluster: String,
    session: OnceCell<Session>,
}

impl LazySession {
    /// Nothing is connected yet; `cluster` names the profile in errors.
    pub fn new(target: SshTarget, cluster: &str) -> LazySession {
        LazySession {
            target,
            cluster: cluster.to_owned(),
            session: OnceCell::new(),
        }
    }

    /// The endpoint.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The session, connecting (host key verified) on first use.
    pub fn get(&self) -> anyhow::Result<&Session> {
        if let Some(session) = self.session.get() {
            return Ok(session);
        }
        let session = Session::connect(&self.target)
            .with_context(|| format!("failed to reach cluster `{}`", self.cluster))?;
        Ok(self.session.get_or_init(|| session))
    }
}
