//! The `submit-scripts/` a user can also run by hand, filled in with the job's values: the
//! `spark-submit` wrapper (`spark-submit.sh`) and the SSH launcher (`ssh-launch.sh`), written
//! into the bundle beside its `run.sh` and next to the jar as `NAME-spark-submit.sh` and
//! `NAME-ssh-launch.sh`.
//!
//! Each script opens with a block of shell variables whose values are `@@KEY@@` placeholders
//! (plain words, so the unfilled file still parses); filling replaces each with the value as
//! one single-quoted shell word.

use crate::quote::single_quoted;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::bundle::{self, Entry};

/// `submit-scripts/spark-submit.sh`: submits the jar in cluster mode with the cluster's own
/// `spark-submit`.
pub const SPARK_SUBMIT_SH: &str = include_str!("../../../submit-scripts/spark-submit.sh");
/// `submit-scripts/ssh-launch.sh`: copies, checks, unpacks and starts the bundle detached on a
/// Linux host over SSH.
pub const SSH_LAUNCH_SH: &str = include_str!("../../../submit-scripts/ssh-launch.sh");
/// `submit-scripts/common.sh`: the helpers both scripts share; [`fill`] puts it in place of the
/// line that sources it, so that each filled-in script stands alone.
pub const COMMON_SH: &str = include_str!("../../../submit-scripts/common.sh");
/// The line of a script that sources [`COMMON_SH`].
const SOURCES_COMMON: &str = ". \"$(dirname \"$0\")/common.sh\"\n";

/// The driver cores the `spark-submit` wrapper asks for unless told otherwise.
pub const DEFAULT_DRIVER_CORES: u32 = 1;
/// The driver memory the `spark-submit` wrapper asks for unless told otherwise: the driver is
/// the small Java launcher, the job's own memory is outside the JVM.
pub const DEFAULT_DRIVER_MEMORY: &str = "512m";

/// A script `package` fills in.
#[derive(Clone, Copy, Debug)]
pub struct Script {
    /// Its file name in the bundle and the suffix of its copy beside the jar.
    pub file: &'static str,
    /// The unfilled text.
    pub template: &'static str,
}

/// The scripts, in the order they are written.
pub const SCRIPTS: [Script; 2] = [
    Script {
        file: "spark-submit.sh",
        template: SPARK_SUBMIT_SH,
    },
    Script {
        file: "ssh-launch.sh",
        template: SSH_LAUNCH_SH,
    },
];

/// The job's values the scripts are filled in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobValues {
    /// Package name (the application name).
    pub name: String,
    /// Package version.
    pub version: String,
    /// The jar's file name, which the scripts look for beside themselves.
    pub jar_file: String,
    /// The jar's main class.
    pub main_class: String,
    /// Default driver cores.
    pub driver_cores: u32,
    /// Default driver memory.
    pub driver_memory: String,
    /// The jar's hex sha256: known for the copies beside the jar only, since the bundle
    /// cannot hold its own checksum.
    pub jar_sha256: Option<String>,
}

impl JobValues {
    /// The value of placeholder `key`, or `None` for an unknown key.
    fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "NAME" => self.name.clone(),
            "VERSION" => self.version.clone(),
            "JAR_FILE" => self.jar_file.clone(),
            "MAIN_CLASS" => self.main_class.clone(),
            "DRIVER_CORES" => self.driver_cores.to_string(),
            "DRIVER_MEMORY" => self.driver_memory.clone(),
            "JAR_SHA256" => self.jar_sha256.clone().unwrap_or_default(),
            _ => return None,
        })
    }
}

/// Replaces every `@@KEY@@` (`KEY` of `A-Z`, `0-9`, `_`) in `template` by its value, quoted;
/// an unknown key is an error. Other `@@` text is left alone. The line sourcing
/// `common.sh`, if any, becomes [`COMMON_SH`] itself.
///
/// # Examples
///
/// ```
/// use cargo_stream::package::scripts::{JobValues, fill};
/// let values = JobValues {
///     name: "wc".into(),
///     version: "0.1.0".into(),
///     jar_file: "wc-0.1.0-x86_64-unknown-linux-gnu.jar".into(),
///     main_class: "cargostream.Launcher".into(),
///     driver_cores: 1,
///     driver_memory: "512m".into(),
///     jar_sha256: None,
/// };
/// assert_eq!(fill("APP=@@NAME@@ SHA=@@JAR_SHA256@@", &values).unwrap(), "APP='wc' SHA=''");
/// ```
pub fn fill(template: &str, values: &JobValues) -> anyhow::Result<String> {
    let template = template.replacen(SOURCES_COMMON, COMMON_SH, 1);
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template.as_str();
    while let Some(start) = rest.find("@@") {
        let after = &rest[start + 2..];
        let key_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if key_len == 0 || !after[key_len..].starts_with("@@") {
            out.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        let key = &after[..key_len];
        let value = values
            .get(key)
            .with_context(|| format!("unknown placeholder `@@{key}@@` in a submit script"))?;
        out.push_str(&rest[..start]);
        out.push_str(&single_quoted(&value));
        rest = &after[key_len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The filled-in scripts as bundle entries (mode `0755`), without the jar's checksum.
pub fn bundle_entries(values: &JobValues) -> anyhow::Result<Vec<Entry>> {
    let values = JobValues {
        jar_sha256: None,
        ..values.clone()
    };
    SCRIPTS
        .iter()
        .map(|s| Ok(Entry::executable(s.file, fill(s.template, &values)?)))
        .collect()
}

/// Where the copy of each script beside the jar goes: `DIR/NAME-spark-submit.sh`, ...
pub fn beside_paths(out_dir: &Path, name: &str) -> Vec<PathBuf> {
    SCRIPTS
        .iter()
        .map(|s| out_dir.join(format!("{name}-{}", s.file)))
        .collect()
}

/// Writes the filled-in scripts beside the jar, executable, each through a temporary file;
/// returns their paths.
pub fn write_beside(out_dir: &Path, values: &JobValues) -> anyhow::Result<Vec<PathBuf>> {
    let paths = beside_paths(out_dir, &values.name);
    for (script, path) in SCRIPTS.iter().zip(&paths) {
        bundle::write_atomically(path, fill(script.template, values)?.as_bytes())?;
        make_executable(path)?;
    }
    Ok(paths)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make `{}` executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn values(name: &str) -> JobValues {
        JobValues {
            name: name.into(),
            version: "1.0.0-rc.1+build.5".into(),
            jar_file: format!("{name}-1.0.0-x86_64-unknown-linux-gnu.jar"),
            main_class: super::super::MAIN_CLASS.into(),
            driver_cores: 2,
            driver_memory: "1g".into(),
            jar_sha256: Some("ab".repeat(32)),
        }
    }

    /// `sh SCRIPT`: not the script itself, which another test's fork may still hold open for
    /// writing (ETXTBSY).
    fn sh(script: &Path) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg(script);
        cmd
    }

    /// What `sh` makes of `text` as the value of a variable.
    fn sh_value(text: &str) -> String {
        let script = format!("V={}\nprintf %s \"$V\"", single_quoted(text));
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn odd_values_survive_the_shell() {
        for odd in [
            "plain",
            "it's",
            "''",
            "a b\tc",
            "$HOME `id` $(id) \\ \" ; & | * ? [x] ~ #",
            "line\nbreak\n",
            "@@NAME@@",
            "-n",
            "",
            "ünïcødé",
        ] {
            assert_eq!(sh_value(odd), odd, "{odd:?}");
        }
    }

    #[test]
    fn fill_replaces_known_keys_and_leaves_other_at_signs() {
        let v = values("o'brien");
        let out = fill("A=@@NAME@@\ncase $x in @@*) ;; esac # @@ @@lower@@ @@", &v).unwrap();
        assert_eq!(
            out,
            "A='o'\\''brien'\ncase $x in @@*) ;; esac # @@ @@lower@@ @@"
        );
        assert!(
            fill("@@NOPE@@", &v)
                .unwrap_err()
                .to_string()
                .contains("@@NOPE@@")
        );
    }

    #[test]
    fn scripts_are_filled_completely_and_parse() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["wc", "o'brien $(touch pwned)"] {
            let v = values(name);
            for entry in bundle_entries(&v).unwrap() {
                let text = String::from_utf8(entry.data.clone()).unwrap();
                assert_eq!(entry.mode, 0o755);
                assert!(text.starts_with("#!/bin/sh\n"), "{}", entry.name);
                assert!(
                    !text.contains("=@@"),
                    "{} keeps a placeholder:\n{text}",
                    entry.name
                );
                assert!(
                    text.contains(COMMON_SH) && !text.contains("common.sh\"\n"),
                    "{} does not stand alone:\n{text}",
                    entry.name
                );
                assert!(
                    text.contains("JAR_SHA256=''") || !text.contains("JAR_SHA256="),
                    "the bundled copy has no checksum"
                );
                let path = tmp.path().join(&entry.name);
                std::fs::write(&path, &text).unwrap();
                let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
                assert!(
                    out.status.success(),
                    "`sh -n {}`: {}",
                    entry.name,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        assert!(!tmp.path().join("pwned").exists());
    }

    #[test]
    fn filled_values_reach_the_script_and_help_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let v = values("o'brien");
        let paths = write_beside(tmp.path(), &v).unwrap();
        assert_eq!(
            paths,
            [
                tmp.path().join("o'brien-spark-submit.sh"),
                tmp.path().join("o'brien-ssh-launch.sh")
            ]
        );
        for path in &paths {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{}", path.display());
            let out = sh(path).arg("--help").output().unwrap();
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                help.contains("o'brien 1.0.0-rc.1+build.5"),
                "{}: {help}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(text.contains(&format!("JAR_SHA256='{}'", "ab".repeat(32))));
    }

    #[test]
    fn spark_submit_print_shows_the_command() {
        let tmp = tempfile::tempdir().unwrap();
        let v = values("wc");
        let paths = write_beside(tmp.path(), &v).unwrap();
        std::fs::write(tmp.path().join(&v.jar_file), "jar").unwrap();
        let run = |args: &[&str]| {
            sh(&paths[0])
                .args(args)
                .env_remove("SPARK_HOME")
                .env("PATH", "/usr/bin:/bin")
                .output()
                .unwrap()
        };
        let out = run(&[
            "--master",
            "spark://h:6066",
            "--supervise",
            "--conf",
            "spark.x=a b",
            "--print",
            "--",
            "it's",
            "2",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        let jar = tmp.path().join(&v.jar_file);
        let want = format!(
            "'spark-submit' --master 'spark://h:6066' --deploy-mode cluster --name 'wc' \
             --class 'cargostream.Launcher' --driver-memory '1g' --driver-cores 2 --supervise \
             --conf spark.master.rest.enabled=true --conf 'spark.x=a b' '{}' 'it'\\''s' '2'\n",
            jar.display()
        );
        assert_eq!(line, want);
        // The legacy port gets no REST setting; a missing master or spark-submit is named.
        let out = run(&["--master", "spark://h:7077", "--print"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("rest.enabled"));
        let out = run(&["--print"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("no master"));
        let out = run(&["--master", "spark://h:7077"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("spark-submit not found"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn ssh_launch_refuses_to_skip_host_key_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let v = values("wc");
        let paths = write_beside(tmp.path(), &v).unwrap();
        let out = sh(&paths[1])
            .args(["-o", "StrictHostKeyChecking=no", "u@h"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("host keys are always checked"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!SSH_LAUNCH_SH.contains("StrictHostKeyChecking=no"));
        assert!(SSH_LAUNCH_SH.contains("BatchMode=yes"));
    }

    #[test]
    fn unfilled_scripts_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        for script in SCRIPTS {
            let path = tmp.path().join(script.file);
            std::fs::write(&path, script.template).unwrap();
            let out = Command::new("sh")
                .arg(&path)
                .arg("--help")
                .output()
                .unwrap();
            assert!(!out.status.success());
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("unfilled template"),
                "{}",
                script.file
            );
        }
    }
}
