//! The driver's resettable timer.

use std::future::poll_fn;
use std::pin::Pin;

use futures_lite::future::or;

use crate::inner::Signal;
use crate::runtime::Runtime;

/// A driver's timer: one runtime timer kept across turns and moved
/// ([`Runtime::reset_sleep`]) only when the engine's next deadline changes,
/// so a turn neither allocates nor re-registers a timer.
pub(super) struct Timer<R: Runtime> {
    sleep: Option<Pin<Box<R::Sleep>>>,
    /// The deadline `sleep` is set to and has not fired at yet.
    armed: Option<std::time::Instant>,
}

impl<R: Runtime> Timer<R> {
    pub(super) fn new() -> Self {
        Timer {
            sleep: None,
            armed: None,
        }
    }

    /// Sets the timer to `deadline` (`None`: no deadline, never fires).
    pub(super) fn arm(&mut self, rt: &R, deadline: Option<std::time::Instant>) {
        let Some(d) = deadline else {
            // A stale registration only costs a spurious turn, if it fires.
            self.armed = None;
            return;
        };
        if self.armed == Some(d) {
            return;
        }
        match &mut self.sleep {
            Some(s) => rt.reset_sleep(s.as_mut(), d),
            None => self.sleep = Some(Box::pin(rt.sleep_until(d))),
        }
        self.armed = Some(d);
    }

    /// Resolves when `signal` is raised or the armed deadline passes.
    pub(super) async fn wait(&mut self, signal: &Signal) {
        let woken = poll_fn(|cx| signal.poll(cx));
        match (self.armed, &mut self.sleep) {
            (Some(_), Some(sleep)) => {
                let fired = async {
                    sleep.as_mut().await;
                    true
                };
                if or(fired, async {
                    woken.await;
                    false
                })
                .await
                {
                    // Spent: the next `arm` sets it again, same deadline or not.
                    self.armed = None;
                }
            }
            _ => woken.await,
        }
    }
}
