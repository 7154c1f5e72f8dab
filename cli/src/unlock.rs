//! `tracklock unlock --force NAME`: deletes every key of a lock, whoever
//! holds it.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use tracklock::Options;

use crate::args::UnlockArgs;
use crate::exit::{Failure, NOT_CONFIRMED, UNAVAILABLE, USAGE};
use crate::resp::Reply;
use crate::route::Nodes;
use crate::status;

pub(crate) fn unlock(options: &Options, args: &UnlockArgs) -> Result<ExitCode, Failure> {
    if !args.yes {
        if !io::stdin().is_terminal() {
            return Err(Failure::new(
                USAGE,
                "unlock --force deletes someone's lock: confirm with --yes (no terminal to ask on)",
            ));
        }
        // Show what is about to be deleted, then ask.
        print!("{}", status::read(options, &args.name)?.text());
        print!("Delete these keys, taking the lock from its holder? [y/N] ");
        io::stdout().flush().ok();
        let mut answer = String::new();
        io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Failure::new(USAGE, format!("no answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(Failure::new(
                NOT_CONFIRMED,
                "not confirmed; nothing deleted",
            ));
        }
    }
    let (_, _, keys) = status::key_names(options, &args.name)?;
    let mut nodes = Nodes::new(options)?;
    let (mut deleted, mut failed) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        match nodes.send(i, &[&[b"DEL", key.as_bytes()]]) {
            Ok((_, replies)) => match replies.as_slice() {
                [Reply::Int(n)] => deleted += n,
                other => {
                    failed += 1;
                    eprintln!("tracklock: {key}: unexpected reply {other:?}");
                }
            },
            Err(e) => {
                failed += 1;
                eprintln!("tracklock: {key}: {e}");
            }
        }
    }
    // DEL counts only keys that existed.
    println!(
        "{}: deleted {deleted} of its {} keys",
        args.name,
        keys.len()
    );
    if failed > 0 {
        return Err(Failure::new(
            UNAVAILABLE,
            format!("{failed} key(s) could not be deleted"),
        ));
    }
    Ok(ExitCode::SUCCESS)
}
