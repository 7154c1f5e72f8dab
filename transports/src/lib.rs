//! Byte-stream transports for **tracklock**.
//!
//! [`embedded_io_async::Read`] + [`embedded_io_async::Write`] is the one stream
//! trait every tracklock driver is written against, from firmware to tokio.
//! Standard-library streams are wrapped with the adapters of
//! `embedded-io-adapters` (re-exported as `adapters` when a runtime feature
//! is on) rather than by hand-written wrappers.
//!
//! Features:
//! - `tokio`: `tcp::connect_tokio`, a `tokio::net::TcpStream` in
//!   `adapters::tokio_1::FromTokio`;
//! - `smol`: `tcp::connect_smol`, an `async_net::TcpStream` in
//!   `adapters::futures_03::FromFutures`;
//! - `glommio` (Linux): `tcp::connect_glommio`, a `glommio::net::TcpStream`
//!   in `adapters::futures_03::FromFutures`;
//! - `std`: pulled by the three; without any feature the crate is `no_std`.
//!
//! Always available, `no_std` and allocation-free: [`device`], a
//! single-task driver of one engine over one stream, for firmware.
//!
//! TLS: nothing here knows about it. The `tracklock` crate (feature `tls`)
//! runs rustls over these streams; on firmware, put a TLS client stream that
//! implements `embedded_io_async::{Read, Write}` (for example
//! `embedded_tls::TlsConnection` over the TCP socket, opened before the
//! [`device::Device`] handshake) under [`device::Device`] in place of the
//! plain socket. Its `read` must be cancel-safe like the ones below.
//!
//! Cancel safety: the adapters implement `read` and `write` as a single
//! `poll_read` / `poll_write` of the inner stream, and the three TCP streams
//! are readiness-based. A pending call has neither consumed input nor written
//! output, so dropping a pending `read` or `write` future (to race it against
//! a timer or a wake-up) loses no data.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use embedded_io_async;
pub use embedded_io_async::{Read, Write};

/// `embedded-io-adapters`, re-exported so users need not depend on it.
#[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]
pub use embedded_io_adapters as adapters;

pub mod device;
#[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]
pub mod tcp;
