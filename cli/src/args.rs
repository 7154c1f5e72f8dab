//! The command line: subcommands, connection flags, durations.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracklock::Options;

use crate::exit::{Failure, TABLE, USAGE};

/// A distributed flock(1) on Redis: run a command while holding a lock
/// that other tracklock runs, programs using the tracklock library and Go
/// rueidislock programs on the same Redis respect.
#[derive(Debug, Parser)]
#[command(name = "tracklock", version, after_help = TABLE, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) conn: Connection,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the lock lives and how it is laid out; the same for every
/// subcommand (and may follow it).
#[derive(Debug, Args)]
pub(crate) struct Connection {
    // `help` rather than a doc comment: rustdoc would read the brackets
    // as links. The value is hidden from `--help`: it may hold a password.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        global = true,
        help = "Redis URL: redis://[user[:pass]@]host[:port][/db], \
                redis+cluster://h1:p1,h2:p2, redis+instances://h1:p1,h2:p2,h3:p3 or \
                redis+sentinel://s1:p1,s2:p2/master_name[?sentinel_password=…]; \
                rediss… for TLS"
    )]
    pub(crate) url: Option<String>,
    /// PEM file of the certificate authorities to trust for rediss://
    /// URLs, instead of the platform's root certificates
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) tls_ca_file: Option<PathBuf>,
    /// Key prefix: keys are {prefix}:{i}:{name} [default: rueidislock]
    #[arg(long, global = true)]
    pub(crate) prefix: Option<String>,
    /// m: a lock holds m of 2m-1 keys, 1 to 8 [default: 2]
    #[arg(long, global = true)]
    pub(crate) majority: Option<u8>,
    /// TTL written on each key, extended while held (e.g. 10s, 500ms)
    /// [default: 5s]
    #[arg(long, global = true, value_parser = duration)]
    pub(crate) validity: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command while holding the lock NAME.
    ///
    /// Waits for the lock (forever unless --wait or --try), runs the
    /// command in its own process group with TRACKLOCK_NAME=NAME (and with
    /// --fencing TRACKLOCK_TOKEN=N) in its environment, keeps the lock extended while it runs and releases it
    /// when it exits. SIGINT, SIGTERM and SIGHUP are passed on to the
    /// command's group. If the lock is lost, the group gets SIGTERM, then
    /// SIGKILL after --kill-after, and tracklock exits 79.
    #[command(after_help = TABLE)]
    Run(RunArgs),
    /// Show the keys of lock NAME: value, TTL, and whether a majority of
    /// them carries one value (the lock is held).
    #[command(after_help = TABLE)]
    Status(StatusArgs),
    /// Delete the keys of lock NAME, whoever holds it. Its holder is told
    /// it lost the lock (a tracklock run stops its command).
    #[command(after_help = TABLE)]
    Unlock(UnlockArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The lock's name
    #[arg(long)]
    pub(crate) name: String,
    /// Give up (exit 75) when the lock is not had within this long
    #[arg(long, value_parser = duration, conflicts_with_all = ["try_once", "force"])]
    pub(crate) wait: Option<Duration>,
    /// One attempt: exit 75 at once when the lock is held
    #[arg(long = "try", conflicts_with = "force")]
    pub(crate) try_once: bool,
    /// Take the lock from whoever holds it (they are told they lost it)
    #[arg(long)]
    pub(crate) force: bool,
    /// Fencing token: TRACKLOCK_TOKEN=N in the command's environment, N
    /// larger than the token of every run of NAME that held the lock
    /// before this one started waiting (costs one more round trip)
    #[arg(long)]
    pub(crate) fencing: bool,
    /// After the lock is lost, how long the command gets between SIGTERM
    /// and SIGKILL
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub(crate) kill_after: Duration,
    /// The command and its arguments (after `--`)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The lock's name
    pub(crate) name: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// Required: deleting a lock's keys takes it from its holder
    #[arg(long, required = true)]
    pub(crate) force: bool,
    /// The lock's name
    pub(crate) name: String,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(long)]
    pub(crate) yes: bool,
}

/// A duration such as `10s`, `500ms`, `1m 30s` or `2h`.
fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 10s, 500ms, 1m)"))
}

/// Where the lock lives, as every subcommand needs it.
pub(crate) struct Target {
    /// The library's options (`run` locks with them; `status` and
    /// `unlock` take the mode, addresses, login and key layout from them).
    pub(crate) options: Options,
    /// `--tls-ca-file`'s PEM text, already checked to hold certificates.
    pub(crate) tls_ca: Option<Vec<u8>>,
    /// The sentinels' own `AUTH` from a sentinel URL's query: `Options`
    /// keeps them but does not hand them out, and `status` and `unlock`
    /// ask the sentinels themselves.
    pub(crate) sentinel_username: Option<String>,
    pub(crate) sentinel_password: Option<String>,
}

impl Connection {
    /// The library's options from the URL and flags, and what `status` and
    /// `unlock` need besides; every value is checked here, so a bad one is
    /// a usage error before anything connects.
    pub(crate) fn target(&self) -> Result<Target, Failure> {
        let mut options = self.options()?;
        let tls_ca = match &self.tls_ca_file {
            None => None,
            Some(_) if !options.is_tls() => {
                return Err(Failure::new(
                    USAGE,
                    "--tls-ca-file needs a rediss:// URL (TLS)",
                ))
            }
            Some(path) => {
                let pem = read_ca(path)?;
                options = options.tls_ca_pem(pem.clone());
                Some(pem)
            }
        };
        let (sentinel_username, sentinel_password) = match &self.url {
            Some(url) if options.mode() == tracklock::Mode::Sentinel => sentinel_auth(url)?,
            _ => (None, None),
        };
        Ok(Target {
            options,
            tls_ca,
            sentinel_username,
            sentinel_password,
        })
    }

    fn options(&self) -> Result<Options, Failure> {
        let Some(url) = &self.url else {
            return Err(Failure::new(
                USAGE,
                "no Redis given: pass --url or set REDIS_URL (e.g. redis://127.0.0.1:6379)",
            ));
        };
        let mut options = Options::from_url(url).map_err(|e| Failure::from_lock_error(&e))?;
        if let Some(prefix) = &self.prefix {
            options = options.prefix(prefix.as_str());
        }
        if let Some(m) = self.majority {
            options = options.key_majority(m);
        }
        if let Some(v) = self.validity {
            options = options.validity(v);
        }
        options = options.client_name("tracklock-cli");
        options
            .to_config()
            .map_err(|e| Failure::from_lock_error(&e))?;
        Ok(options)
    }
}

/// The PEM file of `--tls-ca-file`: read now, so that a missing file or
/// one without a certificate is a usage error for every subcommand.
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let bad = |why: String| Failure::new(USAGE, format!("--tls-ca-file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
        certs += 1;
    }
    if certs == 0 {
        return Err(bad("no CERTIFICATE in the file".to_owned()));
    }
    Ok(pem)
}

/// `sentinel_username` and `sentinel_password` from the query of a
/// sentinel URL that `Options::from_url` accepted (so the query holds no
/// other parameter, and is cut at the first `?` as it does).
fn sentinel_auth(url: &str) -> Result<(Option<String>, Option<String>), Failure> {
    let (mut user, mut pass) = (None, None);
    let query = url.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| Failure::new(USAGE, "bad percent-encoding in a query parameter"))?
            .into_owned();
        match k {
            "sentinel_username" => user = Some(v),
            "sentinel_password" => pass = Some(v),
            _ => {}
        }
    }
    Ok((user, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_sentinel_auth_from_the_query() {
        let got = sentinel_auth(
            "redis+sentinel://:d@s1,s2/m/2?sentinel_username=u%40x&sentinel_password=p%26w",
        );
        let (user, pass) = got.unwrap();
        assert_eq!(user.as_deref(), Some("u@x"));
        assert_eq!(pass.as_deref(), Some("p&w"));
        let (user, pass) = sentinel_auth("redis+sentinel://s1/m").unwrap();
        assert_eq!((user, pass), (None, None));
        assert!(sentinel_auth("redis+sentinel://s1/m?sentinel_password=%ff").is_err());
    }

    #[test]
    fn cli_durations() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(duration("soon").unwrap_err().contains("10s"));
        assert!(duration("").is_err());
    }

    #[test]
    fn cli_arguments_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
