//! One module per verb, each a clap `Args` struct and an `exec` that turns the flags into the
//! options of the library function doing the work, in the manner of cargo's `cli()`/`exec()`.

pub mod kill;
pub mod list;
pub mod logs;
pub mod new;
pub mod package;
pub mod status;
pub mod submit;

use crate::cli::{Command, GlobalArgs};
use crate::shell::Shell;

/// Runs the verb.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, command: Command) -> anyhow::Result<()> {
    match command {
        Command::New(args) => new::exec(shell, global, args),
        Command::Package(args) => package::exec(shell, global, args),
        Command::Submit(args) => submit::exec(shell, global, args),
        Command::Status(args) => status::exec(shell, global, args),
        Command::Kill(args) => kill::exec(shell, global, args),
        Command::Logs(args) => logs::exec(shell, global, args),
        Command::List(args) => list::exec(shell, global, args),
    }
}
