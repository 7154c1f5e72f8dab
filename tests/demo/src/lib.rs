//! Where the demo's Redis comes from (`cargo run --example demo`): the
//! server or cluster named by `REDIS_URL`, or a throwaway `redis-server` or
//! Redis Cluster started by the test kit and stopped when dropped.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::process::ExitCode;

use tracklock_testkit::{Admin, RedisCluster, RedisServer, StartError, TlsCerts, INSTALL_HINT};

/// The demo's Redis.
#[derive(Debug)]
pub enum Redis {
    /// `REDIS_URL`: a server or cluster someone else runs.
    Given(String),
    /// A throwaway server (stopped on drop).
    Server(RedisServer),
    /// A throwaway cluster of 3 masters and 3 replicas (stopped on drop).
    Cluster(RedisCluster),
    /// A throwaway server with a TLS port, signed by a throwaway CA (the
    /// certificates are removed on drop, after the server stops).
    TlsServer(RedisServer, TlsCerts),
    /// A throwaway cluster speaking TLS between clients and nodes.
    TlsCluster(RedisCluster),
}

/// Runs an example's `body` on a two-thread tokio runtime against the Redis
/// `want` names (or `REDIS_URL`), stopped afterwards: exit 0 when `body`
/// returns `Ok(true)`, 1 (with the error, prefixed by `what`, on stderr)
/// otherwise.
pub fn run_example(
    want: Want,
    what: &str,
    body: impl AsyncFnOnce(&Redis) -> Result<bool, Box<dyn StdError>>,
) -> ExitCode {
    let redis = match Redis::start(want) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(body(&redis));
    drop(redis);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{what} failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Which throwaway Redis the demo starts when `REDIS_URL` is not set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// A 3-master Redis Cluster instead of one server.
    pub cluster: bool,
    /// TLS (`rediss://`) with a throwaway CA.
    pub tls: bool,
}

impl Redis {
    /// `REDIS_URL` when it is set; otherwise a throwaway cluster when
    /// `cluster`, else a throwaway server (announced on stdout). The error
    /// is what to tell the user.
    pub fn start(want: Want) -> Result<Redis, String> {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Ok(Redis::Given(url));
        }
        if !tracklock_testkit::is_installed() {
            return Err(not_installed());
        }
        if want.tls && want.cluster {
            let c = RedisCluster::try_start_tls(3, 1).map_err(|e| e.to_string())?;
            println!(
                "started a throwaway Redis Cluster over TLS: TLS seeds {}",
                c.tls_seeds().join(", ")
            );
            return Ok(Redis::TlsCluster(c));
        }
        if want.tls {
            let certs = TlsCerts::try_generate()?;
            let s =
                RedisServer::try_start_tls(&certs, false, false, &[]).map_err(|e| e.to_string())?;
            println!(
                "started a throwaway redis-server with TLS at {} (CA {})",
                s.tls_addr(),
                certs.ca_cert().display()
            );
            return Ok(Redis::TlsServer(s, certs));
        }
        if want.cluster {
            let c = RedisCluster::try_start(3, 1).map_err(|e| e.to_string())?;
            println!(
                "started a throwaway Redis Cluster: masters {}",
                c.master_addrs().join(", ")
            );
            return Ok(Redis::Cluster(c));
        }
        match RedisServer::try_start() {
            Ok(s) => {
                println!("started a throwaway redis-server at {}", s.addr());
                Ok(Redis::Server(s))
            }
            Err(StartError::NotInstalled) => Err(not_installed()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The URL for `tracklock::Options::from_url`.
    pub fn url(&self) -> String {
        match self {
            Redis::Given(url) => url.clone(),
            Redis::Server(s) => s.url(),
            Redis::Cluster(c) => format!("redis+cluster://{}", c.seeds().join(",")),
            Redis::TlsServer(s, _) => format!("rediss://{}", s.tls_addr()),
            Redis::TlsCluster(c) => format!("rediss+cluster://{}", c.tls_seeds().join(",")),
        }
    }

    /// The throwaway CA's certificate (PEM file) that signed a TLS server's
    /// certificate, for `Options::tls_ca_file`; `None` for plain servers
    /// and for `REDIS_URL` (whose server is verified against the
    /// platform's roots).
    pub fn ca_file(&self) -> Option<PathBuf> {
        match self {
            Redis::TlsServer(_, certs) => Some(certs.ca_cert()),
            Redis::TlsCluster(c) => c.tls_certs().map(TlsCerts::ca_cert),
            _ => None,
        }
    }

    /// Where the administrator connects: the plain port of a throwaway
    /// server (a TLS server keeps one open for the test kit's plain admin
    /// client), or the lockers' URL.
    fn admin_url(&self) -> String {
        match self {
            Redis::TlsServer(s, _) => s.url(),
            Redis::TlsCluster(c) => format!("redis+cluster://{}", c.seeds().join(",")),
            _ => self.url(),
        }
    }

    /// Deletes `keys` behind the lockers' back, wherever they live (on a
    /// cluster, each on the master serving its slot, which it names);
    /// returns how many existed.
    pub fn delete(&self, keys: &[String]) -> Result<usize, Box<dyn StdError>> {
        let url = self.admin_url();
        let attached;
        let cluster = match self {
            Redis::Cluster(c) | Redis::TlsCluster(c) => Some(c),
            _ => match url.strip_prefix("redis+cluster://") {
                Some(hosts) => {
                    let seeds: Vec<String> = hosts.split(',').map(str::to_owned).collect();
                    attached = RedisCluster::attach(&seeds)?;
                    Some(&attached)
                }
                None => None,
            },
        };
        Ok(match cluster {
            Some(c) => {
                for k in keys {
                    println!(
                        "  admin: {k} lives on the master at {}",
                        c.addr(c.owner_of(k))
                    );
                }
                keys.iter().filter(|k| c.del(k)).count()
            }
            None => match url.strip_prefix("redis+instances://") {
                // Key `i` lives on instance `i mod N`.
                Some(hosts) => {
                    let hosts: Vec<&str> = hosts.split(',').collect();
                    let mut deleted = 0;
                    for (i, k) in keys.iter().enumerate() {
                        let admin =
                            Admin::try_connect(&format!("redis://{}", hosts[i % hosts.len()]))?;
                        deleted += admin.try_cmd::<usize>("DEL", &[k])?;
                    }
                    deleted
                }
                None => {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    Admin::try_connect(&url)?.try_cmd::<usize>("DEL", &keys)?
                }
            },
        })
    }

    /// The fenced resource of `cargo run --example fencing` (and the
    /// demo's last step): the hash `key` takes `data` only with a token at
    /// least as large as the largest it has taken (one holder may write
    /// again with its token), atomically in a Lua script. True when the
    /// write was taken. On a cluster it goes to the master of `key`'s
    /// slot, on instances to the first one.
    pub fn write_if_newer(
        &self,
        key: &str,
        token: u64,
        data: &str,
    ) -> Result<bool, Box<dyn StdError>> {
        const SCRIPT: &str = "local t=tonumber(redis.call('HGET',KEYS[1],'token') or '0') \
            if tonumber(ARGV[1])<t then return 0 end \
            redis.call('HSET',KEYS[1],'token',ARGV[1],'data',ARGV[2]) return 1";
        let token = token.to_string();
        let args = [SCRIPT, "1", key, token.as_str(), data];
        let url = self.admin_url();
        let taken: i64 = match (self, url.strip_prefix("redis+cluster://")) {
            (Redis::Cluster(c) | Redis::TlsCluster(c), _) => {
                c.try_cmd_for_key(key, "EVAL", &args)?
            }
            (_, Some(hosts)) => {
                let seeds: Vec<String> = hosts.split(',').map(str::to_owned).collect();
                RedisCluster::attach(&seeds)?.try_cmd_for_key(key, "EVAL", &args)?
            }
            (_, None) => {
                let url = match url.strip_prefix("redis+instances://") {
                    Some(hosts) => format!("redis://{}", hosts.split(',').next().unwrap_or("")),
                    None => url.clone(),
                };
                Admin::try_connect(&url)?.try_cmd("EVAL", &args)?
            }
        };
        Ok(taken == 1)
    }
}

fn not_installed() -> String {
    format!(
        "redis-server was not found and REDIS_URL is not set.\n\
         Either {INSTALL_HINT},\n\
         or point REDIS_URL at a running server, e.g. REDIS_URL=redis://127.0.0.1:6379/0"
    )
}
