//! A throwaway PostgreSQL server for tests, shared by the end-to-end tests (`tests/e2e/`) and
//! the examples' tests (`examples/tests/postgres.rs`, through a dev-dependency on this crate).
//!
//! Debian's server binaries (`/usr/lib/postgresql/<newest>/bin`, installed by
//! `tests/support/install-postgres.sh` when missing), a cluster made by `initdb` in a
//! temporary folder, listening on 127.0.0.1 on a free port (and on a unix socket in that
//! folder) with trust authentication, and one database. PostgreSQL refuses to run as root, so
//! as root the server runs as the `postgres` user the package creates. Stopped and deleted on
//! drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{free_port, workspace_root};

/// A running server with one database; stopped and deleted when dropped.
///
/// ```no_run
/// let db = cargo_stream_tests::postgres::Postgres::start("stream");
/// db.query("CREATE TABLE t (n int)");
/// assert_eq!(db.query("SELECT count(*) FROM t").trim(), "0");
/// ```
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    database: String,
    as_postgres_user: bool,
}

impl Postgres {
    /// Starts a new cluster and creates the database `database` in it.
    pub fn start(database: &str) -> Postgres {
        let bin = server_bin_dir();
        let dir = tempfile::Builder::new().prefix("pg-").tempdir().unwrap();
        let as_postgres_user = is_root();
        if as_postgres_user {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(dir.path());
            run("chown", &mut chown);
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            database: database.to_owned(),
            as_postgres_user,
        };
        pg.tool("initdb", |c| {
            c.arg("-D").arg(pg.data()).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]);
        });
        pg.start_again();
        pg.tool("createdb", |c| {
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(database);
        });
        pg
    }

    /// The libpq connection string of the database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={}",
            self.port, self.database
        )
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (as a crash would: immediate shutdown); `start_again` restarts it.
    pub fn stop(&self) {
        self.tool("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]);
        });
    }

    /// Starts the stopped server again on the same port (and starts it the first time).
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -F",
            self.port,
            self.dir.path().display()
        );
        self.tool("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-o", &options, "-l"])
                .arg(self.log())
                .args(["-w", "-t", "60", "start"]);
        });
    }

    /// Runs a query with `psql` and returns its unaligned, tuples-only output.
    pub fn query(&self, sql: &str) -> String {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", &self.database])
            .args(["-A", "-t", "-c", sql]);
        run("psql", &mut psql)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command for the server program `name`, run as `postgres` when we are root.
    fn command(&self, name: &str) -> Command {
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        };
        cmd.env_remove("PGDATA");
        cmd
    }

    /// Runs the server program `name` with the arguments `args` adds; panics with its output
    /// (and the server's log) unless it succeeds.
    fn tool(&self, name: &str, args: impl FnOnce(&mut Command)) {
        let mut cmd = self.command(name);
        args(&mut cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run PostgreSQL's `{name}`: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            panic!(
                "PostgreSQL's `{name}` failed with {} (cluster in {}):\n{}{}\n--- server.log\n{log}",
                out.status,
                self.dir.path().display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Already stopped by the test is fine.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// `/usr/lib/postgresql/<newest>/bin`, where Debian puts the server's programs; installed
/// first (`tests/support/install-postgres.sh`) when missing.
fn server_bin_dir() -> PathBuf {
    if let Some(dir) = newest_server_bin_dir(Path::new("/usr/lib/postgresql")) {
        return dir;
    }
    let script = workspace_root().join("tests/support/install-postgres.sh");
    let _ = Command::new("bash").arg(&script).status();
    newest_server_bin_dir(Path::new("/usr/lib/postgresql")).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb); \
             install it with `apt-get install -y postgresql` or, as root, `bash {}`",
            script.display()
        )
    })
}

/// The `bin` folder with an `initdb` of the highest version under `root` (versions compared
/// as numbers: 15 is newer than 9.6).
fn newest_server_bin_dir(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: Vec<u32> = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `cmd` (the program `name`) and returns its stdout; panics with its output unless it
/// succeeds.
fn run(name: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{name}`: {e}"));
    assert!(
        out.status.success(),
        "`{name}` failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::newest_server_bin_dir;

    #[test]
    fn the_newest_version_is_chosen_by_number_and_needs_an_initdb() {
        let root = tempfile::tempdir().unwrap();
        for (version, initdb) in [("9.6", true), ("15", true), ("16", false), ("main", true)] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            if initdb {
                std::fs::write(bin.join("initdb"), "").unwrap();
            }
        }
        assert_eq!(
            newest_server_bin_dir(root.path()),
            Some(root.path().join("15/bin"))
        );
        assert_eq!(newest_server_bin_dir(&root.path().join("none")), None);
    }
}
