//! Redis Sentinel: which server is the master, asked of the sentinels at
//! every connection of the data node ([`Sentinels::resolve`]), and a
//! subscription to `+switch-master` that drops the data connection when the
//! master changes ([`Sentinels::follow`]).
//!
//! The sentinels are spoken to in RESP2 over short connections of their
//! own (TLS when the locker uses it), outside the engine: they never hold
//! keys.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_lite::future::or;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame as Reply;
use tracklock_core::NodeError;

use crate::addr::join_host_port;
use crate::driver::conn::{connect, Conn};
use crate::error::SentinelFailure;
use crate::inner::Inner;
use crate::options::SentinelSettings;
use crate::runtime::deadline_after;
use crate::{Error, Runtime};

/// The subscription's first reconnection delay (it doubles to 1 s): a
/// sentinel that is down is not dialled in a loop.
const FOLLOW_BACKOFF_MIN: Duration = Duration::from_millis(50);
const FOLLOW_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A sentinel reply larger than this is refused (they are a few words).
const REPLY_MAX: usize = 64 * 1024;

/// One locker's sentinels and the master it follows.
pub(crate) struct Sentinels {
    settings: SentinelSettings,
    /// The sentinels, the one that answered last first.
    addrs: Mutex<Vec<String>>,
    /// The master named last, by a resolution or a `+switch-master`.
    announced: Mutex<Option<String>>,
}

/// What one sentinel said.
enum Answer {
    Master(String),
    Unknown,
    Refused(String),
    Unreachable(String),
}

impl Sentinels {
    pub(crate) fn new(settings: SentinelSettings, addrs: Vec<String>) -> Arc<Sentinels> {
        Arc::new(Sentinels {
            settings,
            addrs: Mutex::new(addrs),
            announced: Mutex::new(None),
        })
    }

    /// The master name.
    pub(crate) fn master(&self) -> &str {
        &self.settings.master
    }

    fn announce(&self, master: &str) {
        *self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(master.to_owned());
    }

    /// A switch away from `addr` was announced since it was resolved (the
    /// driver was connecting meanwhile).
    pub(crate) fn moved_from(&self, addr: &str) -> bool {
        let announced = self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        announced
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case(addr))
    }

    fn addrs(&self) -> Vec<String> {
        self.addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the sentinels in turn for the master's `host:port`, each
    /// within its share of `timeout`; the first that names it moves to the
    /// front. The error says why none did: a refusal first, then "unknown
    /// master", then unreachable.
    pub(crate) async fn resolve<R: Runtime>(
        &self,
        inner: &Inner<R>,
        timeout: Duration,
    ) -> Result<String, Error> {
        let addrs = self.addrs();
        let share = timeout / u32::try_from(addrs.len().max(1)).unwrap_or(u32::MAX);
        let (mut refused, mut unknown, mut unreachable) = (None, false, String::new());
        for addr in &addrs {
            match self.ask(inner, addr, share).await {
                Answer::Master(master) => {
                    self.announce(&master);
                    let mut list = self.addrs.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(i) = list.iter().position(|a| a == addr) {
                        let a = list.remove(i);
                        list.insert(0, a);
                    }
                    return Ok(master);
                }
                Answer::Unknown => unknown = true,
                Answer::Refused(text) => {
                    refused.get_or_insert(text);
                }
                Answer::Unreachable(e) => unreachable = format!("{addr}: {e}"),
            }
        }
        let failure = match (refused, unknown) {
            (Some(text), _) => SentinelFailure::Refused(text),
            (None, true) => SentinelFailure::UnknownMaster,
            (None, false) => SentinelFailure::Unreachable(unreachable),
        };
        Err(Error::Sentinel {
            master: self.settings.master.clone(),
            sentinels: addrs.join(","),
            failure,
        })
    }

    /// One sentinel's answer, within `timeout`.
    async fn ask<R: Runtime>(&self, inner: &Inner<R>, addr: &str, timeout: Duration) -> Answer {
        let deadline = deadline_after(inner.rt.now(), timeout);
        let ask = async {
            let mut c = match Client::open(inner, addr, &self.settings, timeout).await {
                Ok(c) => c,
                Err(e) => return e,
            };
            let name = self.settings.master.as_bytes();
            match c
                .call(&[b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME", name])
                .await
            {
                Err(e) => Answer::Unreachable(e.to_string()),
                Ok(Reply::Error(text)) => Answer::Refused(text),
                Ok(Reply::Null) => Answer::Unknown,
                Ok(Reply::Array(items)) => match items.as_slice() {
                    [Reply::BulkString(host), Reply::BulkString(port)] => {
                        let host = String::from_utf8_lossy(host);
                        let port = String::from_utf8_lossy(port);
                        Answer::Master(join_host_port(&host, port))
                    }
                    _ => Answer::Unreachable("unexpected reply to SENTINEL".into()),
                },
                Ok(_) => Answer::Unreachable("unexpected reply to SENTINEL".into()),
            }
        };
        or(ask, async {
            inner.rt.sleep_until(deadline).await;
            Answer::Unreachable(format!("no answer within {timeout:?}"))
        })
        .await
    }

    /// Follows failovers for as long as it is polled (the data node's
    /// driver polls it beside its own work and drops it when it exits):
    /// subscribes to `+switch-master` on one sentinel, moving to the next
    /// when that connection fails, and on a switch of our master drops the
    /// data connection (`node`) so that it connects to the new one. After
    /// each subscription it also checks that the current connection is to
    /// the master the sentinel names, in case a switch happened while no
    /// subscription was up.
    pub(crate) async fn follow<R: Runtime>(&self, inner: &Arc<Inner<R>>, node: usize) {
        let mut next = 0usize;
        let mut delay = FOLLOW_BACKOFF_MIN;
        loop {
            let addrs = self.addrs();
            let Some(addr) = addrs.get(next % addrs.len().max(1)).cloned() else {
                // No sentinel (refused by the options): nothing to follow,
                // and returning would end the driver polled beside this.
                return std::future::pending().await;
            };
            next = next.wrapping_add(1);
            if self.subscribed(inner, &addr, node).await {
                delay = FOLLOW_BACKOFF_MIN;
            }
            let wake = deadline_after(inner.rt.now(), delay);
            inner.rt.sleep_until(wake).await;
            delay = (delay * 2).min(FOLLOW_BACKOFF_MAX);
        }
    }

    /// One subscription, until its connection fails; true when it was up.
    async fn subscribed<R: Runtime>(&self, inner: &Arc<Inner<R>>, addr: &str, node: usize) -> bool {
        let timeout = inner.connect_timeout;
        let deadline = deadline_after(inner.rt.now(), timeout);
        let open = async {
            let mut c = Client::open(inner, addr, &self.settings, timeout)
                .await
                .ok()?;
            match c.call(&[b"SUBSCRIBE", b"+switch-master"]).await {
                Ok(Reply::Array(_)) => Some(c),
                _ => None,
            }
        };
        let opened = or(open, async {
            inner.rt.sleep_until(deadline).await;
            None
        })
        .await;
        let Some(mut c) = opened else {
            return false;
        };
        // A switch may have happened while no subscription was up.
        if let Answer::Master(m) = self.ask(inner, addr, timeout).await {
            self.switched(inner, node, &m);
        }
        // A sentinel that stops answering (frozen, or gone without a
        // reset) is found like a data node: pinged after `ping_interval`
        // of silence, dropped when the pong does not come as long again.
        let ping_every = inner.lock().engine.config().ping_interval();
        let mut pinged = false;
        loop {
            let wake = deadline_after(inner.rt.now(), ping_every);
            let step = or(async { Some(c.read().await) }, async {
                inner.rt.sleep_until(wake).await;
                None
            })
            .await;
            let items = match step {
                None if pinged => return true,
                None => {
                    if c.send(&[b"PING"]).await.is_err() {
                        return true;
                    }
                    pinged = true;
                    continue;
                }
                Some(Err(_)) => return true,
                Some(Ok(Reply::Array(items))) => items,
                Some(Ok(_)) => {
                    pinged = false;
                    continue;
                }
            };
            pinged = false;
            // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
            let Some(Reply::BulkString(text)) = items.get(2) else {
                continue;
            };
            let text = String::from_utf8_lossy(text);
            let words: Vec<&str> = text.split(' ').collect();
            if let [name, _, _, ip, port] = words.as_slice() {
                if *name == self.master() {
                    self.switched(inner, node, &join_host_port(ip, port));
                }
            }
        }
    }

    /// The master is `master` now: if the data connection is to another
    /// server, it is dropped (and resolved again by the driver).
    fn switched<R: Runtime>(&self, inner: &Arc<Inner<R>>, node: usize, master: &str) {
        self.announce(master);
        let mut sh = inner.lock();
        let Some(n) = sh.nodes.get_mut(node) else {
            return;
        };
        if n.connected && !n.addr.eq_ignore_ascii_case(master) {
            #[cfg(feature = "tracing")]
            tracing::info!(from = %n.addr, to = %master, "sentinel: master switched");
            n.close_request = Some(NodeError::Replica);
            sh.node_news.push(node);
            inner.wake_drivers(&mut sh, None);
        }
    }
}

/// A RESP2 connection to one sentinel.
struct Client<S> {
    conn: Conn<S>,
    rx: Vec<u8>,
    filled: usize,
}

impl<S> Client<S>
where
    S: embedded_io_async::Read<Error = io::Error> + embedded_io_async::Write<Error = io::Error>,
{
    /// Connects (TLS when the locker uses it) and authenticates.
    async fn open<R: Runtime<Stream = S>>(
        inner: &Inner<R>,
        addr: &str,
        settings: &SentinelSettings,
        timeout: Duration,
    ) -> Result<Client<S>, Answer> {
        let conn = connect(inner, usize::MAX, addr, timeout)
            .await
            .map_err(|c| Answer::Unreachable(c.into_error(addr).to_string()))?;
        let mut c = Client {
            conn,
            rx: vec![0; 512],
            filled: 0,
        };
        if let Some(pass) = &settings.password {
            let auth: Vec<&[u8]> = match &settings.username {
                Some(user) => vec![b"AUTH", user.as_bytes(), pass.as_bytes()],
                None => vec![b"AUTH", pass.as_bytes()],
            };
            match c.call(&auth).await {
                Ok(Reply::Error(text)) => return Err(Answer::Refused(text)),
                Ok(_) => {}
                Err(e) => return Err(Answer::Unreachable(e.to_string())),
            }
        }
        Ok(c)
    }

    /// Sends a command and reads its reply.
    async fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(args).await?;
        self.read().await
    }

    /// Sends a command.
    async fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        use embedded_io_async::Write;
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.conn.write_all(&out).await?;
        self.conn.flush().await
    }

    /// Reads the next reply (or published message).
    async fn read(&mut self) -> io::Result<Reply> {
        use embedded_io_async::Read;
        loop {
            match decode(&self.rx[..self.filled]) {
                Ok(Some((reply, used))) => {
                    self.rx.copy_within(used..self.filled, 0);
                    self.filled -= used;
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the sentinel sent invalid RESP",
                    ))
                }
            }
            if self.filled == self.rx.len() {
                if self.rx.len() >= REPLY_MAX {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a sentinel reply exceeded 64 KiB",
                    ));
                }
                self.rx.resize(self.rx.len() * 2, 0);
            }
            let n = self.conn.read(&mut self.rx[self.filled..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.filled += n;
        }
    }
}
