//! `connect`'s wait: until the engine is usable (enough nodes ready to take
//! a lock), until first connections failed such that it cannot become
//! usable, or until the connect timeout.

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use tracklock_core::NodeId;

use crate::inner::Inner;
use crate::shared::{NodeState, Shared};
use crate::{Error, Mode, Runtime};

impl Shared {
    /// `connect` cannot succeed any more: the error to report (that of the
    /// lowest failed node), else `None`. Whether the failed nodes rule out
    /// success is the engine's call ([`tracklock_core::Engine::can_become_usable`]).
    fn startup_failure(&mut self) -> Option<Error> {
        let nodes = &self.nodes;
        let failed = |node: NodeId| {
            nodes
                .get(usize::from(node.0))
                .is_some_and(NodeState::is_failed)
        };
        if self.engine.can_become_usable(failed) {
            return None;
        }
        let failed = self.nodes.iter_mut().filter(|n| n.is_failed());
        let first = failed.filter_map(|n| n.first_error.take()).next();
        Some(first.unwrap_or_else(|| Error::Connect {
            addr: String::new(),
            source: io::Error::other("the first connections failed"),
        }))
    }
}

impl<R: Runtime> Inner<R> {
    /// Polls the start-up: `Ok` once the engine is usable, an error once it
    /// cannot become usable because first connections failed (single: the
    /// node's; instances: the failed ones carry too many keys; cluster:
    /// every seed failed).
    pub(crate) fn poll_startup(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut sh = self.lock();
        let result = if sh.engine.is_usable() {
            Ok(())
        } else if let Some(e) = sh.startup_failure() {
            Err(e)
        } else if sh.stopped || sh.closing {
            Err(Error::Closed)
        } else {
            sh.startup_waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        sh.startup_waker = None;
        Poll::Ready(result)
    }

    /// `connect`'s error when the engine is not usable within `timeout`.
    pub(crate) fn startup_timeout(&self, timeout: Duration) -> Error {
        let mut sh = self.lock();
        sh.startup_waker = None;
        let ready = (0..sh.nodes.len())
            .filter(|&i| sh.engine.is_ready(NodeId(i as u16)))
            .count();
        let total = sh.nodes.len();
        let last = sh
            .last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        if self.mode() == Mode::Single && sh.nodes.first().is_some_and(|n| n.tls_handshaking) {
            return Error::Tls {
                addr: self.addresses().join(","),
                failure: crate::TlsFailure::HandshakeTimeout,
                source: format!("no TLS handshake within {timeout:?}").into(),
            };
        }
        let message = match self.mode() {
            Mode::Single => format!("not connected within {timeout:?}"),
            Mode::Sentinel => format!(
                "sentinel mode: master {:?} not connected within {timeout:?}{last}",
                self.sentinel.as_ref().map_or("", |s| s.master())
            ),
            Mode::Instances => format!(
                "instances mode: not usable within {timeout:?} \
                 ({ready} of {total} instances ready, a lock needs its key majority{last})"
            ),
            _ => format!(
                "cluster mode: not usable within {timeout:?} (needs the slot map and a majority \
                 of its masters ready; {ready} of {total} nodes ready{last})"
            ),
        };
        Error::Connect {
            addr: self.addresses().join(","),
            source: io::Error::new(io::ErrorKind::TimedOut, message),
        }
    }
}
