//! `tracklock unlock --force NAME`: deletes every key of a lock, whoever
//! holds it.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use redis::Value;

use crate::args::{Target, UnlockArgs};
use crate::exit::{Failure, NOT_CONFIRMED, UNAVAILABLE, USAGE};
use crate::route::{error_text, Nodes};
use crate::status;

/// Deletion rounds while the same holder still shows a majority.
const ROUNDS: usize = 3;

pub(crate) fn unlock(target: &Target, args: &UnlockArgs) -> Result<ExitCode, Failure> {
    let terminal = io::stdin().is_terminal();
    if !args.yes && !terminal {
        return Err(Failure::new(
            USAGE,
            "unlock --force deletes someone's lock: confirm with --yes (no terminal to ask on)",
        ));
    }
    let before = status::read(target, &args.name)?;
    if !args.yes {
        // Show what is about to be deleted, then ask.
        print!("{}", before.text());
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
    let (_, _, keys) = status::key_names(&target.options, &args.name)?;
    let mut nodes = Nodes::new(target)?;
    let (mut deleted, mut kept) = (0, false);
    for _ in 0..ROUNDS {
        deleted += delete(&mut nodes, &keys)?;
        // A holder that still had a majority when one key went takes that
        // key back at its next extension, so keys deleted one after the
        // other can miss it: delete again while the same value holds a
        // majority. A new holder (a waiter that got the lock since) is
        // left alone.
        let Some(holder) = before.holder() else { break };
        kept = status::read(target, &args.name)?.holder() == Some(holder);
        if !kept {
            break;
        }
    }
    // DEL counts only keys that existed.
    println!(
        "{}: deleted {deleted} of its {} keys",
        args.name,
        keys.len()
    );
    if kept {
        return Err(Failure::new(
            UNAVAILABLE,
            format!("its holder kept a majority through {ROUNDS} rounds of deletion"),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes every key where it lives: how many existed.
fn delete(nodes: &mut Nodes, keys: &[String]) -> Result<i64, Failure> {
    let (mut deleted, mut failed) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        match nodes.send(i, redis::pipe().cmd("DEL").arg(key)) {
            Ok((_, replies)) => match (replies.iter().find_map(error_text), replies.as_slice()) {
                (None, [Value::Int(n)]) => deleted += n,
                (Some(e), _) => {
                    failed += 1;
                    eprintln!("tracklock: {key}: {e}");
                }
                (None, other) => {
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
    if failed > 0 {
        return Err(Failure::new(
            UNAVAILABLE,
            format!("{failed} key(s) could not be deleted"),
        ));
    }
    Ok(deleted)
}
