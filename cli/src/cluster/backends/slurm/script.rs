//! The batch script a Slurm job runs: check the staged bundle, unzip it into the job's folder,
//! and `exec` the job's binary.
//!
//! Why `exec`, and not the bundle's `run.sh`: on `scancel`, Slurm sends SIGTERM to every
//! process of the job (then SIGKILL after `KillWait`). `run.sh` forwards the SIGTERM it gets to
//! the job, so the job would get two, and the runtime takes a second signal as "stop at once",
//! skipping the final checkpoint. With `exec` the job is the batch step's only process and gets
//! exactly one SIGTERM.
//!
//! The job's environment travels with the job description through slurmrestd; through
//! `sbatch` it is exported by the script itself, so that no value shows on a command line of
//! the login node.

use crate::quote::single_quoted;
use std::collections::BTreeMap;

use crate::cluster::run_sh::{bundle_job_fn, unpack_fn};

/// What the script needs to know.
#[derive(Clone, Debug)]
pub struct Script<'a> {
    /// The staged jar, as the node sees it.
    pub jar: &'a str,
    /// Its sha256 (checked on the node when `sha256sum` is there).
    pub sha256: &'a str,
    /// The job's folder, as the node sees it: the bundle is unzipped into `bundle/` there.
    pub dir: &'a str,
    /// The job's arguments.
    pub args: &'a [String],
    /// Environment variables the script exports before it runs the job (names checked with
    /// [`is_env_name`]).
    pub env: &'a BTreeMap<String, String>,
    /// How many tasks: above 1, the job's binary runs as `srun`'s tasks, instance
    /// `SLURM_PROCID` of `SLURM_NTASKS` each, writing `stdout.I` and `stderr.I`.
    pub tasks: u32,
}

const TEMPLATE: &str = r#"#!/bin/sh
# Written by cargo-stream: runs the bundle @JAR_NAME@ as a Slurm batch job.
# The shell ends by exec-ing the job, so that scancel's SIGTERM reaches it once (it then stops
# gracefully, writing its last checkpoint) before KillWait ends in SIGKILL.
set -eu
@EXPORTS@jar=@JAR@
sha256=@SHA256@
dir=@DIR@
fail() { echo "cargo-stream: $1" >&2; exit "${2:-1}"; }
host=$(hostname 2>/dev/null || echo "this node")
[ -r "$jar" ] || fail "cannot read the bundle $jar on $host (is the upload folder shared with the nodes?)"
if command -v sha256sum >/dev/null 2>&1; then
    got=$(sha256sum "$jar" | cut -d ' ' -f 1)
    [ "$got" = "$sha256" ] || fail "$jar on $host has sha256 $got, not $sha256"
fi
bundle=$dir/bundle
rm -rf "$bundle"
@FUNCTIONS@
unpack "$jar" "$bundle"
bundle_job "$bundle"
cd "$dir"
@LAUNCH@"$exe"@ARGS@@WAIT@
"#;

/// How the script starts a job of several tasks: `srun` runs the binary once per task (each
/// knows its instance from `SLURM_PROCID`), with each task's output in files of its own, in
/// the background of this shell.
///
/// Why not `exec srun`, and why SIGURG: `srun` answers a SIGTERM by killing its tasks with
/// SIGKILL, and Slurm's cancel signals the batch step (this shell and `srun`) with the tasks.
/// So `cargo stream kill` sends the whole job SIGURG, which `srun` and the job ignore, and this
/// shell turns it into one SIGTERM to the job's steps only (`scancel --signal=TERM`, which
/// leaves the batch step alone): each task stops gracefully with its final checkpoint.
/// `--kill-on-bad-exit=0` keeps the others running when one fails.
const SRUN: &str = "stopped=0\ntrap 'stopped=1; scancel --signal=TERM \"$SLURM_JOB_ID\"' URG\n\
srun --kill-on-bad-exit=0 --input=none --output=\"$dir/stdout.%t\" --error=\"$dir/stderr.%t\" ";

/// After [`SRUN`]: waits for `srun` (again after a trapped signal) and exits with its code;
/// stopped by `cargo stream kill`, even a clean graceful stop exits 143 (128 + SIGTERM), as
/// `run.sh` and the jar's launcher do: the job then ends FAILED with 143, which the `slurm`
/// backend reads as KILLED (`state::tasks_status_of`).
const SRUN_WAIT: &str = " &\nsrun=$!\nstatus=0\nwait \"$srun\" || status=$?\n\
while kill -0 \"$srun\" 2>/dev/null; do status=0; wait \"$srun\" || status=$?; done\n\
if [ \"$stopped\" = 1 ] && [ \"$status\" = 0 ]; then status=143; fi\n\
exit \"$status\"";

impl Script<'_> {
    /// The script's text.
    pub fn render(&self) -> String {
        let name = self.jar.rsplit('/').next().unwrap_or(self.jar);
        let args: String = self
            .args
            .iter()
            .map(|a| format!(" {}", single_quoted(a)))
            .collect();
        let exports: String = self
            .env
            .iter()
            .filter(|(k, _)| is_env_name(k))
            .map(|(k, v)| format!("{k}={}\nexport {k}\n", single_quoted(v)))
            .collect();
        // The name only sits in a comment: keep it to one line.
        let name = name.replace(['\n', '\r'], " ");
        let (jar, sha256, dir) = (
            single_quoted(self.jar),
            single_quoted(self.sha256),
            single_quoted(self.dir),
        );
        // `run.sh`'s own functions: unpack the jar, find the binary, set the environment.
        let functions = format!("{}{}", unpack_fn(), bundle_job_fn());
        let (launch, wait) = if self.tasks > 1 {
            (SRUN, SRUN_WAIT)
        } else {
            ("exec ", "")
        };
        let values: [(&str, &str); 9] = [
            ("@LAUNCH@", launch),
            ("@WAIT@", wait),
            ("@JAR_NAME@", &name),
            ("@JAR@", &jar),
            ("@SHA256@", &sha256),
            ("@DIR@", &dir),
            ("@ARGS@", &args),
            ("@EXPORTS@", &exports),
            ("@FUNCTIONS@", &functions),
        ];
        // One pass over the template: a value that happens to hold `@ARGS@` stays as it is.
        let mut out = String::with_capacity(TEMPLATE.len() + functions.len());
        let mut rest = TEMPLATE;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            match values.iter().find(|(key, _)| rest[at..].starts_with(key)) {
                Some((key, value)) => {
                    out.push_str(value);
                    rest = &rest[at + key.len()..];
                }
                None => {
                    out.push('@');
                    rest = &rest[at + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Whether `name` can be an environment variable a shell exports (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_survive_the_shell() {
        let args = vec![
            "a b".to_owned(),
            "it's".to_owned(),
            "$HOME".to_owned(),
            String::new(),
        ];
        let text = Script {
            jar: "/shared/wc-1.jar",
            sha256: "ab",
            dir: "/shared/jobs/wc-1",
            args: &args,
            env: &BTreeMap::new(),
            tasks: 1,
        }
        .render();
        let tmp = tempfile::tempdir().unwrap();
        // Run the last line's words through a real shell, with `printf` for the job.
        let exec = text.lines().find(|l| l.starts_with("exec ")).unwrap();
        let probe = exec.replace("exec \"$exe\"", "printf '[%s]'");
        let out = std::process::Command::new("sh")
            .args(["-c", &probe])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[a b][it's][$HOME][]");
        assert!(text.contains("jar='/shared/wc-1.jar'"), "{text}");
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains("set -eu\njar="), "{text}");
    }

    #[test]
    fn exported_values_survive_the_shell() {
        let env: BTreeMap<String, String> = [
            ("GREETING", "it's $HOME"),
            ("RUST_LOG", "info"),
            ("bad-name", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let text = Script {
            jar: "/j.jar",
            sha256: "ab",
            dir: "/d",
            args: &[],
            env: &env,
            tasks: 1,
        }
        .render();
        let exports: String = text
            .lines()
            .filter(|l| l.starts_with("GREETING=") || l.starts_with("export "))
            .map(|l| format!("{l}\n"))
            .collect();
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("{exports}sh -c 'printf %s \"$GREETING\"'")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME");
        assert!(!text.contains("bad-name"), "{text}");
        assert!(is_env_name("_A1") && !is_env_name("1A") && !is_env_name(""));
    }

    #[test]
    fn tasks_run_under_srun_each_with_its_own_output() {
        let one = Script {
            jar: "/j.jar",
            sha256: "ab",
            dir: "/d",
            args: &[],
            env: &BTreeMap::new(),
            tasks: 1,
        }
        .render();
        assert!(one.contains("\nexec \"$exe\"\n"), "{one}");
        assert!(!one.contains("srun"), "{one}");
        let three = Script {
            tasks: 3,
            jar: "/j.jar",
            sha256: "ab",
            dir: "/d",
            args: &["a b".to_owned()],
            env: &BTreeMap::new(),
        }
        .render();
        assert!(
            three.contains(
                "\nsrun --kill-on-bad-exit=0 --input=none --output=\"$dir/stdout.%t\" --error=\"$dir/stderr.%t\" \"$exe\" 'a b' &\n"
            ),
            "{three}"
        );
        assert!(three.contains("trap 'stopped=1; scancel --signal=TERM \"$SLURM_JOB_ID\"' URG\n"));
        // The shell waits for srun through trapped signals and exits with its code: run with
        // a stand-in `srun` that exits 7 after a SIGURG to the shell.
        let tmp = tempfile::tempdir().unwrap();
        let body = &three[three.find("stopped=0").unwrap()..];
        let line = body.lines().find(|l| l.starts_with("srun ")).unwrap();
        let probe = body
            .replace(line, "(kill -URG $$; sleep 0.2; exit 7) &")
            .replace("scancel", "echo scancel");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("SLURM_JOB_ID=42\nexe=true\ndir=.\n{probe}")])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7), "{probe}\n{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "scancel --signal=TERM 42\n"
        );
    }
}
