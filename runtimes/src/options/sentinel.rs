//! Sentinel mode's options: the master name and the sentinels' own `AUTH`.

use std::fmt;

use super::{Mode, Options};
use crate::error::AddressError;

/// The master to ask the sentinels for, and how to authenticate to them
/// (separate from the data node's `AUTH`).
#[derive(Clone, Default)]
pub(crate) struct SentinelSettings {
    pub(crate) master: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl fmt::Debug for SentinelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelSettings")
            .field("master", &self.master)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Options {
    /// Options for the master named `master_name` as Redis Sentinel knows it,
    /// asked of `sentinels` (`host:port` each, usually port 26379).
    ///
    /// At every connection of the data node (the first and each
    /// reconnection) the sentinels are asked in turn
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`); one that does not answer within
    /// its share of the connect timeout, or knows no such master, is
    /// skipped, and the first that answers is asked first next time. The
    /// server named must say it is a master in its handshake (`HELLO`'s
    /// `role`, what `ROLE` reports), else it is asked again after a
    /// backoff. A subscription to one sentinel's `+switch-master` events,
    /// and any `READONLY` reply, make the locker drop the data connection
    /// and resolve the master again; see the README's "Sentinel" section
    /// for what a failover keeps and what it may lose.
    ///
    /// The user name, password, database and TLS settings apply to the
    /// data node (and TLS to the sentinels too); the sentinels' own `AUTH`
    /// is [`Options::sentinel_password`].
    ///
    /// ```
    /// use tracklock::{Mode, Options};
    ///
    /// let o = Options::sentinel("mymaster", ["10.0.0.1:26379", "10.0.0.2:26379"])
    ///     .sentinel_password("sentinel-secret")
    ///     .password("data-secret");
    /// assert_eq!(o.mode(), Mode::Sentinel);
    /// assert_eq!(o.sentinel_master(), Some("mymaster"));
    /// assert_eq!(o.addresses().len(), 2);
    /// ```
    pub fn sentinel<I, S>(master_name: impl Into<String>, sentinels: I) -> Options
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut o = Options::with_mode(
            Mode::Sentinel,
            sentinels.into_iter().map(Into::into).collect(),
        );
        o.sentinel = Some(SentinelSettings {
            master: master_name.into(),
            ..SentinelSettings::default()
        });
        o
    }

    /// The user name the sentinels are authenticated with (`AUTH user
    /// password`, Redis 6.2+ sentinels with ACLs); needs
    /// [`Options::sentinel_password`]. Sentinel mode only (elsewhere
    /// [`AddressError::NotSentinel`] when connecting).
    pub fn sentinel_username(mut self, v: impl Into<String>) -> Self {
        self.sentinel.get_or_insert_with(Default::default).username = Some(v.into());
        self
    }

    /// The password of the sentinels (their own `requirepass`), sent with
    /// `AUTH` before asking them anything. Distinct from
    /// [`Options::password`], which is the data node's. Sentinel mode only (elsewhere
    /// [`AddressError::NotSentinel`] when connecting).
    pub fn sentinel_password(mut self, v: impl Into<String>) -> Self {
        self.sentinel.get_or_insert_with(Default::default).password = Some(v.into());
        self
    }

    /// The master name, in sentinel mode.
    pub fn sentinel_master(&self) -> Option<&str> {
        self.sentinel.as_ref().map(|s| s.master.as_str())
    }

    pub(crate) fn sentinel_settings(&self) -> Option<&SentinelSettings> {
        self.sentinel.as_ref()
    }

    /// The master name is a single word (it goes into a command and is
    /// compared with the words of `+switch-master` messages).
    pub(super) fn check_sentinel(&self) -> Result<(), AddressError> {
        if self.mode != Mode::Sentinel {
            return match self.sentinel {
                Some(_) => Err(AddressError::NotSentinel),
                None => Ok(()),
            };
        }
        let ok = self.sentinel.as_ref().is_some_and(|s| {
            !s.master.is_empty()
                && !s
                    .master
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
        });
        if ok {
            Ok(())
        } else {
            Err(AddressError::MasterName)
        }
    }
}
