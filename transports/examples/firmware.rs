//! Firmware-style use of the lock, run on the host: one task, one engine
//! without allocation (`cargo run -p tracklock-transports --example
//! firmware` builds `tracklock-core` without `alloc`), one TCP stream, a
//! clock and a timer. On a board the stream would be an embassy-net
//! `TcpSocket`, the clock `embassy_time::Instant::now()` and the delay
//! `embassy_time::Timer::at`; here they are tokio's, through
//! `embedded-io-adapters`.
//!
//! Uses `REDIS_URL` (`redis://[:password@]host:port[/db]`) when set, else
//! starts a throwaway `redis-server` on a free loopback port (the test
//! kit's, a dev-dependency).
//!
//! The job: take the lock `pump`, run the pump for a while (the lock is
//! extended meanwhile), release it, three times; a second "device" in the
//! same task tries the lock while it is held and is refused.

use std::future::Future;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use tracklock_core::{Config, Engine, Instant, Text};
use tracklock_transports::device::{Clock, Delay, Device, Error, Outcome};

/// Monotonic nanoseconds since boot (here: since `main` started).
struct BootClock(std::time::Instant);

impl Clock for BootClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

/// A timer on the same timeline.
struct Timer(std::time::Instant);

impl Delay for Timer {
    fn delay_until(&mut self, deadline: Instant) -> impl Future<Output = ()> {
        tokio::time::sleep_until((self.0 + Duration::from_nanos(deadline.as_nanos())).into())
    }
}

type Stream = FromTokio<tokio::net::TcpStream>;

async fn connect(addr: &str) -> std::io::Result<Stream> {
    let s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(FromTokio::new(s))
}

/// `redis://[[user]:password@]host:port[/db]` → (`host:port`, password, db).
fn parse_url(url: &str) -> (String, Option<String>, u32) {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let password = auth.map(|a| a.rsplit(':').next().unwrap_or(a).to_owned());
    let (hostport, db) = match rest.split_once('/') {
        Some((h, d)) => (h, d.parse().unwrap_or(0)),
        None => (rest, 0),
    };
    (hostport.to_owned(), password.filter(|p| !p.is_empty()), db)
}

/// A seed for lock values. Firmware: the hardware RNG.
fn seed(salt: u8) -> [u8; 32] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut s = [salt; 32];
    s[..16].copy_from_slice(&t.to_le_bytes());
    s[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    s
}

async fn run_pump(cycle: u32) -> u32 {
    for stroke in 1..=3 {
        println!("  cycle {cycle}: pump stroke {stroke}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    cycle * 3
}

async fn firmware(addr: &str, password: Option<String>, database: u32) -> Result<(), String> {
    let boot = std::time::Instant::now();
    let config = Config::default()
        // Short lease, so the 1.2 s job outlives it several times over.
        .with_validity(Duration::from_millis(500))
        .with_password(password.as_deref().and_then(Text::new))
        .with_database(database)
        .with_client_name(Text::new("firmware-example"));
    // On a board: a `static` (StaticCell) rather than the stack.
    let mut engine = Engine::new(config.clone(), seed(1)).map_err(|e| e.to_string())?;
    let mut other = Engine::new(config, seed(2)).map_err(|e| e.to_string())?;
    println!(
        "engine: {} bytes, allocation-free: {}",
        std::mem::size_of::<Engine>(),
        !tracklock_core::ALLOC
    );

    let stream = connect(addr).await.map_err(|e| e.to_string())?;
    let mut device: Device<'_, _, _, _, 1024> =
        Device::new(&mut engine, stream, BootClock(boot), Timer(boot));
    let stream = connect(addr).await.map_err(|e| e.to_string())?;
    let mut rival: Device<'_, _, _, _, 1024> =
        Device::new(&mut other, stream, BootClock(boot), Timer(boot));
    device.handshake().await.map_err(|e| e.to_string())?;
    rival.handshake().await.map_err(|e| e.to_string())?;
    println!("connected to {addr}");

    for cycle in 1..=3 {
        let lock = match device.lock("pump").await {
            Ok(l) => l,
            Err(e) => return Err(format!("lock: {e}")),
        };
        println!("cycle {cycle}: lock taken");
        match rival.try_lock("pump").await {
            Err(Error::NotLocked) => println!("  the rival is refused while we hold it"),
            other => return Err(format!("rival: unexpected {other:?}")),
        }
        match device.run_until(&lock, run_pump(cycle)).await {
            Ok(Outcome::Done(strokes)) => println!("  done ({strokes} strokes in total)"),
            Ok(Outcome::Lost(reason)) => println!("  lock lost, pump stopped: {reason}"),
            // On a board: reconnect (device.reconnect(new_stream)) and retry.
            Err(e) => return Err(format!("connection: {e}")),
        }
        device.unlock(lock).await.map_err(|e| e.to_string())?;
        println!("cycle {cycle}: released");
    }
    device.close().await.map_err(|e| e.to_string())?;
    rival.close().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    let (addr, password, db, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let (addr, password, db) = parse_url(&url);
            (addr, password, db, None)
        }
        // The host stands in for the rest of the system: the test kit's
        // throwaway server (stopped on drop).
        Err(_) => match tracklock_testkit::RedisServer::try_start() {
            Ok(server) => (server.addr(), None, 0, Some(server)),
            Err(e) => {
                eprintln!("no REDIS_URL and no redis-server: {e}");
                std::process::exit(2)
            }
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(firmware(&addr, password, db)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
