//! `cargo stream new` creates a streaming job from a template, or an exercise to solve.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::GlobalArgs;
use crate::error::with_help;
use crate::machine_message;
use crate::shell::Shell;
use crate::templates::generate::{NewOpts, generate};
use crate::templates::runtime_dep::RuntimeRequest;
use crate::templates::{self, DEFAULT_TEMPLATE, Kind};

/// `cargo stream new` creates a streaming job from a template, or an exercise to solve.
///
/// The templates are embedded in `cargo-stream`, so this works offline. The new crate has a
/// README, a `Stream.toml` (a `local[2]` profile and a commented cluster profile), a test, and
/// runs at once with `cargo run`. An existing folder is never overwritten.
///
/// The crate depends on the runtime this `cargo-stream` was built from, by path; `--portable`
/// writes a copy of the runtime into the crate instead, so that it can be moved anywhere.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cargo stream new word-count
  cargo stream new logs --template directory-word-count --define dir=/var/log/incoming
  cargo stream new flume-hw --exercise tcp-agent-receiver
  cargo stream new --list")]
pub struct NewArgs {
    /// Folder to create; its last component is the package name
    #[arg(value_name = "PATH", required_unless_present = "list")]
    pub path: Option<PathBuf>,
    /// Package name, if not the folder's name
    #[arg(long)]
    pub name: Option<String>,
    /// Template to start from (see --list)
    #[arg(
        long,
        short = 't',
        value_name = "TEMPLATE",
        conflicts_with = "exercise"
    )]
    pub template: Option<String>,
    /// Exercise to start (see --list)
    #[arg(long, short = 'e', value_name = "EXERCISE")]
    pub exercise: Option<String>,
    /// Set a template variable (repeatable)
    #[arg(long, short = 'd', value_name = "KEY=VALUE", value_parser = templates::parse_define)]
    pub define: Vec<(String, String)>,
    /// Take every variable's default without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// List the templates and exercises
    #[arg(long)]
    pub list: bool,
    /// Print results as JSON lines on stdout
    #[arg(long)]
    pub json: bool,
    /// Write a copy of the runtime into the crate (`vendor/`) so that it builds anywhere
    #[arg(long, alias = "vendor-runtime", conflicts_with_all = ["runtime_path", "runtime_registry"])]
    pub portable: bool,
    /// Depend on the runtime at this path
    #[arg(long, value_name = "PATH", conflicts_with = "runtime_registry")]
    pub runtime_path: Option<PathBuf>,
    /// Depend on the runtime's crates.io release
    #[arg(long)]
    pub runtime_registry: bool,
}

/// Runs `cargo stream new`.
pub fn exec(shell: &mut Shell, _global: &GlobalArgs, args: NewArgs) -> anyhow::Result<()> {
    if args.list {
        return list(shell, args.json);
    }
    let (name, kind) = match (&args.template, &args.exercise) {
        (_, Some(e)) => (e.clone(), Kind::Exercise),
        (Some(t), None) => (t.clone(), Kind::Template),
        (None, None) => (DEFAULT_TEMPLATE.to_owned(), Kind::Template),
    };
    let template = templates::find(&name, kind)?;
    let mut defines = args.define.clone();
    if !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        ask_vars(&template, &mut defines)?;
    }
    let runtime = if args.portable {
        RuntimeRequest::Vendor
    } else if let Some(path) = args.runtime_path {
        RuntimeRequest::Path(path)
    } else if args.runtime_registry {
        RuntimeRequest::Registry
    } else {
        RuntimeRequest::Auto
    };
    let opts = NewOpts {
        path: args
            .path
            .clone()
            .expect("clap requires PATH without --list"),
        name: args.name.clone(),
        template: name,
        kind,
        defines,
        runtime,
    };
    let report = generate(&opts, &template)?;
    let what = match kind {
        Kind::Template => "template",
        Kind::Exercise => "exercise",
    };
    shell.status(
        "Created",
        format!(
            "`{}` from {what} `{}` in `{}`",
            report.name,
            report.template,
            opts.path.display()
        ),
    );
    shell.verbose_status(
        "Runtime",
        format!("cargo-stream-runtime = {}", report.runtime_dependency),
    );
    if args.json {
        machine_message::emit(&report)?;
    } else {
        match kind {
            Kind::Template => shell.note(format!(
                "run it with `cd {} && cargo run`; see its README.md",
                opts.path.display()
            )),
            Kind::Exercise => shell.note(format!(
                "read `{}/README.md`, then `cargo test` until it passes",
                opts.path.display()
            )),
        }
    }
    Ok(())
}

fn list(shell: &mut Shell, json: bool) -> anyhow::Result<()> {
    let catalog = templates::catalog()?;
    if json {
        for t in &catalog {
            machine_message::emit(t)?;
        }
        return Ok(());
    }
    let width = catalog.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for (kind, title) in [
        (Kind::Template, "Templates (--template):"),
        (Kind::Exercise, "Exercises (--exercise):"),
    ] {
        shell.out(title)?;
        for t in catalog.iter().filter(|t| t.kind == kind) {
            let default = if t.name == DEFAULT_TEMPLATE {
                " (default)"
            } else {
                ""
            };
            shell.out(format!("  {:width$}  {}{default}", t.name, t.description))?;
            for (key, var) in &t.vars {
                let hint = var.hint().map(|h| format!(" ({h})")).unwrap_or_default();
                shell.out(format!(
                    "  {:width$}    --define {key}={}  {}{hint}",
                    "", var.default, var.description
                ))?;
            }
        }
    }
    Ok(())
}

/// Asks for each variable not set with `--define`; an empty answer takes the default, and an
/// answer that fails the variable's check is asked again.
fn ask_vars(
    template: &templates::Template,
    defines: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    for (key, var) in &template.vars {
        if defines.iter().any(|(k, _)| k == key) {
            continue;
        }
        let hint = var.hint().map(|h| format!(", {h}")).unwrap_or_default();
        loop {
            eprint!("{} ({key}{hint}) [{}]: ", var.description, var.default);
            std::io::stderr().flush()?;
            let mut answer = String::new();
            if stdin
                .lock()
                .read_line(&mut answer)
                .context("failed to read an answer")?
                == 0
            {
                return Err(with_help(
                    anyhow::anyhow!("no answer for `{key}`"),
                    "pass `--yes` to take the defaults",
                ));
            }
            let answer = answer.trim();
            if answer.is_empty() {
                break;
            }
            match var.check(key, answer) {
                Ok(_) => {
                    defines.push((key.clone(), answer.to_owned()));
                    break;
                }
                Err(e) => eprintln!("{e}; try again, or press Enter for the default"),
            }
        }
    }
    Ok(())
}
