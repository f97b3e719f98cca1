//! A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a cluster made by
//! `initdb` in a temporary directory, listening on 127.0.0.1 on a free port (and a unix socket
//! in that directory), trust authentication, one database; stopped and deleted on drop.
//!
//! `apt-get install postgresql` provides the binaries (`tests/support/install-postgres.sh`,
//! run by `.ci/run`). PostgreSQL refuses to run as root, so as root the server runs as the
//! `postgres` user that package creates.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running server with one database; stopped when dropped.
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    database: String,
    as_postgres_user: bool,
}

impl Postgres {
    /// Starts a new cluster and creates the database `database` in it.
    pub(crate) fn start(database: &str) -> Postgres {
        let bin = server_bin_dir();
        let dir = tempfile::Builder::new().prefix("pg-").tempdir().unwrap();
        let as_postgres_user = is_root();
        if as_postgres_user {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        let pg = |tool: &str| {
            let mut cmd = if as_postgres_user {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            cmd.env_remove("PGDATA");
            cmd
        };
        run(pg("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]));
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -F",
            dir.path().display()
        );
        run(pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start"]));
        run(pg("createdb")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .arg(database));
        Postgres {
            dir,
            bin,
            port,
            database: database.to_owned(),
            as_postgres_user,
        }
    }

    /// The libpq connection string of the database.
    pub(crate) fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={}",
            self.port, self.database
        )
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (as a crash would: immediate shutdown); `start_again` restarts it.
    pub(crate) fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Starts the stopped server again on the same port.
    pub(crate) fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -F",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.pg_ctl(&[
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "start",
        ]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        run(cmd.arg("-D").arg(data).args(args));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        // Already stopped by the test is fine.
        let _ = cmd
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// `/usr/lib/postgresql/<newest>/bin`, where Debian puts the server's programs.
fn server_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb); \
             install it with `apt-get install -y postgresql` or `bash tests/support/install-postgres.sh`"
        )
    })
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
