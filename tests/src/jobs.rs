//! Packaged jobs for the cluster tests, built once per test process: a long-running,
//! checkpointed word count from a template, and a short job that ends by itself (or fails, or
//! crashes once).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{cargo_stream, run};

/// How long generating and packaging a job may take (a release build of the runtime the
/// first time).
const BUILD: Duration = Duration::from_secs(1500);

/// The jar of the `running-word-count` template: `ARGS = HOST PORT`; reads lines from a TCP
/// server, prints the running count of each word every 1 s batch, checkpoints its totals in
/// `$CHECKPOINT_DIR`; SIGTERM stops it gracefully with a final `checkpoint-<ms>` file.
pub fn running_word_count() -> &'static Path {
    static JOB: OnceLock<Packaged> = OnceLock::new();
    &JOB.get_or_init(|| package_template("running-wc", "running-word-count", None))
        .jar
}

/// The jar of [`running_word_count`] that first prints `instance I of N` on stdout, from the
/// variables its launcher set (`CARGO_STREAM_INSTANCE`/`CARGO_STREAM_INSTANCES`, else Slurm's
/// `SLURM_PROCID`/`SLURM_NTASKS`; `-` for one unset): a job submitted with `--instances N`.
pub fn instance_word_count() -> &'static Path {
    static JOB: OnceLock<Packaged> = OnceLock::new();
    &JOB.get_or_init(|| {
        package_patched("instance-wc", "running-word-count", &|main: &str| {
            let at = main.find("fn run()").expect("the template has `fn run()`");
            let body = at + main[at..].find('{').expect("its body") + 1;
            format!("{}{INSTANCE_LINE}{}", &main[..body], &main[body..])
        })
    })
    .jar
}

/// What [`instance_word_count`] runs first.
const INSTANCE_LINE: &str = r#"
    let var = |a: &str, b: &str| {
        std::env::var(a).or_else(|_| std::env::var(b)).unwrap_or_else(|_| "-".to_owned())
    };
    println!(
        "instance {} of {}",
        var("CARGO_STREAM_INSTANCE", "SLURM_PROCID"),
        var("CARGO_STREAM_INSTANCES", "SLURM_NTASKS")
    );
"#;

/// The jar of a job that ends by itself: `ARGS = [N]` runs N (default 3) 200 ms batches of a
/// queue, printing `batch I`, then `done after N batches`, and exits 0. `fail` as the first
/// argument exits 1 at once (`error: asked to fail` on stderr); `panic` panics (exit code 101). `crash-once FILE` exits 1 if
/// FILE does not exist (creating it), else runs normally: a driver that crashes once.
pub fn finite() -> &'static Path {
    &finite_job().jar
}

/// The crate [`finite`] was packaged from (for submitting without `--artifact`).
pub fn finite_project() -> &'static Path {
    &finite_job().project
}

fn finite_job() -> &'static Packaged {
    static JOB: OnceLock<Packaged> = OnceLock::new();
    JOB.get_or_init(|| package_template("finite-job", "socket-word-count", Some(FINITE_MAIN)))
}

/// A generated crate and the jar packaged from it.
struct Packaged {
    project: PathBuf,
    jar: PathBuf,
}

const FINITE_MAIN: &str = r#"//! A job that ends by itself, for the cluster tests.
use std::time::Duration;

use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fail") => {
            eprintln!("error: asked to fail");
            std::process::exit(1);
        }
        Some("panic") => panic!("asked to panic"),
        Some("crash-once") => {
            let marker = std::path::Path::new(&args[1]);
            if !marker.exists() {
                std::fs::write(marker, b"crashed once\n").expect("write the marker");
                eprintln!("error: crashing once");
                std::process::exit(1);
            }
        }
        _ => {}
    }
    let batches: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let conf = StreamingConf::new("finite-job").master("local[2]");
    let ssc = StreamingContext::new(conf, Milliseconds(200))?;
    let lines = ssc.queue_stream((0..batches).map(|i| vec![format!("batch {i}")]));
    lines.print(10)?;
    ssc.start()?;
    ssc.await_termination_or_timeout(Duration::from_millis(200 * batches as u64 + 300))?;
    ssc.stop(true)?;
    println!("done after {batches} batches");
    Ok(())
}
"#;

fn package_template(name: &str, template: &str, main: Option<&str>) -> Packaged {
    match main {
        Some(main) => package_patched(name, template, &|_| main.to_owned()),
        None => package_patched(name, template, &|main| main.to_owned()),
    }
}

/// Generates `name` from `template`, rewrites its `src/main.rs` with `patch`, and packages it.
fn package_patched(name: &str, template: &str, patch: &dyn Fn(&str) -> String) -> Packaged {
    // A folder per test process under the shared target folder (test processes may run side
    // by side); those of processes that are gone are removed.
    let jobs = crate::e2e_target_dir().join("jobs");
    for entry in std::fs::read_dir(&jobs).into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = jobs.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(dir.join(name));
    std::fs::create_dir_all(&dir).expect("create the jobs folder");
    run(
        &mut cargo_stream(&dir, &["new", name, "--template", template, "--yes"]),
        Duration::from_secs(120),
    )
    .success();
    let project = dir.join(name);
    let main = project.join("src/main.rs");
    let text = std::fs::read_to_string(&main).expect("read src/main.rs");
    let patched = patch(&text);
    if patched != text {
        std::fs::write(&main, patched).expect("write src/main.rs");
    }
    let out = run(&mut cargo_stream(&project, &["package", "--json"]), BUILD).success();
    let report: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).expect("package --json prints one object");
    Packaged {
        jar: PathBuf::from(report["artifact"].as_str().expect("an artifact path")),
        project,
    }
}

/// The batch times of the checkpoints in `dir` (`checkpoint-<ms>` files), oldest first.
pub fn checkpoint_times(dir: &Path) -> Vec<u64> {
    let mut times: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()
        })
        .collect();
    times.sort_unstable();
    times
}
