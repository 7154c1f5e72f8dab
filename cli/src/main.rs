//! `tracklock`: a distributed `flock(1)` on Redis. `tracklock run --name N
//! -- CMD` runs CMD while holding the tracklock lock N; `status` shows a
//! lock's keys, `unlock --force` deletes them. Exit codes: [`exit`].
#![forbid(unsafe_code)]

mod args;
mod exit;
mod route;
mod run;
mod status;
mod unlock;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};
use crate::exit::{Failure, OSERR, USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are not errors; every real usage
            // error exits 64 (EX_USAGE) rather than clap's 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(failure) => failure.exit(),
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let target = cli.conn.target()?;
    match cli.command {
        Command::Run(args) => {
            if args.wait == Some(std::time::Duration::ZERO) {
                return Err(Failure::new(
                    USAGE,
                    "--wait 0 would never get the lock; use --try for one attempt",
                ));
            }
            // One thread is enough: one locker, one child, three signals.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::new(OSERR, format!("cannot start the runtime: {e}")))?;
            let options = target.options.fencing(args.fencing);
            runtime.block_on(run::run(options, args))
        }
        Command::Status(args) => status::status(&target, &args),
        Command::Unlock(args) => unlock::unlock(&target, &args),
    }
}
