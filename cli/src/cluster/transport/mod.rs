//! How this machine talks to clusters, whatever the manager: SSH sessions (commands, SFTP,
//! tunnels, host keys, shell quoting), HTTP error descriptions, and JWTs.

pub mod http;
pub mod jwt;
pub mod ssh;
