//! Unit tests of [`Options`]: defaults, setters, validation, URLs, address
//! lists.

use super::*;

fn config_err(o: Options) -> ConfigError {
    match o.to_config() {
        Err(Error::Config(e)) => e,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn defaults_match_go_rueidislock() {
    let o = Options::new("127.0.0.1:6379");
    assert_eq!(o.address(), "127.0.0.1:6379");
    let c = o.to_config().unwrap();
    assert_eq!(c.prefix(), "rueidislock");
    assert_eq!(c.key_majority(), 2);
    assert_eq!(c.validity(), Duration::from_secs(5));
    assert_eq!(c.effective_extend_interval(), Duration::from_millis(2500));
    assert_eq!(c.try_next_after(), Duration::from_millis(20));
    assert_eq!(c.drift_ppm(), 10_000);
    assert_eq!(c.margin(), Duration::from_millis(5));
    assert_eq!(c.noloop(), NoLoop::Auto);
    assert!(c.client_caching());
    assert_eq!(c.ttl_mode(), TtlMode::Relative);
    assert_eq!(c.ping_interval(), Duration::from_secs(1));
    assert_eq!(c.database(), 0);
    assert!(!c.fair());
    assert!(c.username().is_none() && c.password().is_none() && c.client_name().is_none());
    assert_eq!(o.connect_timeout_value(), Duration::from_secs(5));
}

#[test]
fn setters_reach_the_config() {
    let c = Options::new("h:1")
        .username("u")
        .password("p")
        .database(3)
        .client_name("me")
        .prefix("locks")
        .key_majority(3)
        .validity(Duration::from_secs(10))
        .extend_interval(Duration::from_secs(2))
        .try_next_after(Duration::from_millis(50))
        .drift(0.02)
        .margin(Duration::from_millis(7))
        .noloop(NoLoop::On)
        .client_caching(false)
        .absolute_ttl(true)
        .ping_interval(Duration::from_millis(500))
        .connect_timeout(Duration::from_secs(1))
        .fair(true)
        .to_config()
        .unwrap();
    assert!(c.fair());
    assert_eq!(c.username(), Some("u"));
    assert_eq!(c.password(), Some("p"));
    assert_eq!(c.database(), 3);
    assert_eq!(c.client_name(), Some("me"));
    assert_eq!(c.prefix(), "locks");
    assert_eq!(c.key_majority(), 3);
    assert_eq!(c.validity(), Duration::from_secs(10));
    assert_eq!(c.extend_interval(), Some(Duration::from_secs(2)));
    assert_eq!(c.try_next_after(), Duration::from_millis(50));
    assert_eq!(c.drift_ppm(), 20_000);
    assert_eq!(c.margin(), Duration::from_millis(7));
    assert_eq!(c.noloop(), NoLoop::On);
    assert!(!c.client_caching());
    assert_eq!(c.ttl_mode(), TtlMode::Absolute);
    assert_eq!(c.ping_interval(), Duration::from_millis(500));
}

#[test]
fn validation_names_the_option() {
    let o = || Options::new("h:1");
    assert_eq!(config_err(o().key_majority(0)), ConfigError::MajorityZero);
    assert!(matches!(
        config_err(o().key_majority(200)),
        ConfigError::MajorityTooLarge(200)
    ));
    assert_eq!(
        config_err(o().validity(Duration::ZERO)),
        ConfigError::ValidityTooShort
    );
    assert_eq!(
        config_err(o().extend_interval(Duration::from_secs(5))),
        ConfigError::ExtendInterval
    );
    assert_eq!(
        config_err(o().extend_interval(Duration::ZERO)),
        ConfigError::ExtendInterval
    );
    assert_eq!(
        config_err(o().try_next_after(Duration::ZERO)),
        ConfigError::TryNextAfter
    );
    for d in [0.5, -0.1, f64::NAN, f64::INFINITY] {
        assert_eq!(config_err(o().drift(d)), ConfigError::Drift, "drift {d}");
    }
    assert_eq!(
        config_err(o().margin(Duration::from_secs(5))),
        ConfigError::MarginTooLarge
    );
    assert_eq!(config_err(o().prefix("")), ConfigError::EmptyPrefix);
    assert_eq!(config_err(o().prefix("a:")), ConfigError::AmbiguousPrefix);
    assert_eq!(
        config_err(o().username("u")),
        ConfigError::UsernameWithoutPassword
    );
    assert_eq!(
        config_err(o().ping_interval(Duration::ZERO)),
        ConfigError::PingInterval
    );
    let msg = o().key_majority(0).to_config().unwrap_err().to_string();
    assert!(msg.contains("key_majority"), "{msg}");
}

#[test]
fn debug_hides_the_password() {
    let s = format!("{:?}", Options::new("h:1").password("hunter2"));
    assert!(!s.contains("hunter2"), "{s}");
    assert!(s.contains("<redacted>"));
}

#[test]
fn url_full() {
    let o = Options::from_url("redis://alice:s%40cret@redis.example:6380/2").unwrap();
    assert_eq!(o.address(), "redis.example:6380");
    assert_eq!(o.config.username(), Some("alice"));
    assert_eq!(o.config.password(), Some("s@cret"));
    assert_eq!(o.config.database(), 2);
}

#[test]
fn url_variants() {
    let o = Options::from_url("redis://localhost").unwrap();
    assert_eq!(o.address(), "localhost:6379");
    assert_eq!(o.config.database(), 0);
    assert!(o.config.username().is_none() && o.config.password().is_none());

    let o = Options::from_url("REDIS://127.0.0.1:7000/").unwrap();
    assert_eq!(o.address(), "127.0.0.1:7000");

    let o = Options::from_url("redis://:pw@h").unwrap();
    assert!(o.config.username().is_none());
    assert_eq!(o.config.password(), Some("pw"));

    let o = Options::from_url("redis://u:p:q@h/15").unwrap();
    assert_eq!(o.config.username(), Some("u"));
    assert_eq!(o.config.password(), Some("p:q"));
    assert_eq!(o.config.database(), 15);

    let o = Options::from_url("redis://[::1]:6390/1").unwrap();
    assert_eq!(o.address(), "[::1]:6390");
    let o = Options::from_url("redis://[::1]").unwrap();
    assert_eq!(o.address(), "[::1]:6379");

    // A user without a password parses, and is refused by validation.
    let o = Options::from_url("redis://bob@h").unwrap();
    assert_eq!(
        o.to_config().unwrap_err().to_string(),
        "invalid option: username is set but password is not"
    );
}

#[test]
fn url_errors() {
    for url in [
        "",
        "localhost:6379",
        "http://h",
        "unix:///tmp/redis.sock",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:70000",
        "redis://h:port",
        "redis://h/db",
        "redis://h/-1",
        "redis://h?protocol=3",
        "redis://[::1",
        "redis://[::1]x",
        "redis://u:%zz@h",
        "redis://u:%f0%28@h",
    ] {
        match Options::from_url(url) {
            Err(Error::InvalidUrl(m)) => assert!(!m.is_empty()),
            other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
        }
    }
    // The message does not leak the password.
    let e = Options::from_url("redis://u:topsecret@h:bad").unwrap_err();
    assert!(!e.to_string().contains("topsecret"), "{e}");
}

#[test]
fn url_tls_schemes() {
    for (url, mode) in [
        ("rediss://h", Mode::Single),
        ("REDISS+CLUSTER://a:1,b:2", Mode::Cluster),
        ("rediss+instances://:pw@a:1,b:2,c:3/2", Mode::Instances),
    ] {
        let r = Options::from_url(url);
        #[cfg(feature = "tls")]
        {
            let o = r.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(o.mode(), mode);
            assert!(o.is_tls(), "{url}");
            assert!(o.to_config().unwrap().tls_ports());
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = mode;
            assert!(matches!(r, Err(Error::TlsNotEnabled)), "{url}: {r:?}");
        }
    }
    let o = Options::from_url("redis://h").unwrap();
    assert!(!o.is_tls());
    assert!(!o.to_config().unwrap().tls_ports());
}

#[cfg(feature = "tls")]
#[test]
fn tls_setters() {
    let o = Options::new("h:1").tls_server_name("redis.example");
    assert!(o.is_tls(), "a TLS setter turns TLS on");
    assert!(!o.clone().tls(false).is_tls());
    assert!(o.tls(true).is_tls(), "tls(true) keeps the settings");
    // Debug shows the settings, never key material.
    let o = Options::new("h:1").tls_client_cert_pem("CERT", "SECRET KEY");
    let d = format!("{o:?}");
    assert!(!d.contains("SECRET"), "{d}");
}

fn address_err(o: Options) -> AddressError {
    match o.to_config() {
        Err(Error::Addresses(e)) => e,
        other => panic!("expected an address error, got {other:?}"),
    }
}

#[test]
fn modes_set_the_topology() {
    let o = Options::new("h:1");
    assert_eq!(o.mode(), Mode::Single);
    assert_eq!(o.addresses(), ["h:1"]);
    assert_eq!(o.to_config().unwrap().topology(), Topology::Single);

    let o = Options::cluster(["a:7000", "b:7001"]);
    assert_eq!(o.mode(), Mode::Cluster);
    assert_eq!(o.address(), "a:7000");
    assert_eq!(o.addresses(), ["a:7000", "b:7001"]);
    assert_eq!(o.to_config().unwrap().topology(), Topology::Cluster(2));

    let o = Options::instances(vec![
        "a:1".to_owned(),
        "b:2".to_owned(),
        "[::1]:3".to_owned(),
    ]);
    assert_eq!(o.mode(), Mode::Instances);
    assert_eq!(o.to_config().unwrap().topology(), Topology::Instances(3));
    assert_eq!(
        o.endpoints().unwrap(),
        [("a".into(), 1), ("b".into(), 2), ("::1".into(), 3)]
    );
    let s = format!("{o:?}");
    assert!(s.contains("Instances") && s.contains("[::1]:3"), "{s}");
    assert_eq!(Mode::Cluster.to_string(), "cluster");
}

#[test]
fn address_lists_are_checked() {
    assert_eq!(
        address_err(Options::cluster(Vec::<String>::new())),
        AddressError::Empty
    );
    assert_eq!(
        address_err(Options::instances(Vec::<&str>::new())),
        AddressError::Empty
    );
    assert_eq!(
        address_err(Options::cluster(["a:1", "b:2", "A:1"])),
        AddressError::Duplicate("A:1".into())
    );
    assert_eq!(
        address_err(Options::instances(["[::1]:1", "[::1]:1"])),
        AddressError::Duplicate("[::1]:1".into())
    );
    for bad in [
        "h", "h:", "h:0", "h:70000", "h:x", "h:+1", ":1", "::1:6379", "[::1", "[::1]", "[]:1",
        "[::1]x:1", "a b:1", "a,b:1", "",
    ] {
        match address_err(Options::new(bad)) {
            AddressError::Invalid { addr, reason } => {
                assert_eq!(addr, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?}: expected Invalid, got {other:?}"),
        }
        assert!(
            matches!(
                address_err(Options::cluster(["ok:1", bad])),
                AddressError::Invalid { .. }
            ),
            "{bad:?}"
        );
    }
    for good in ["h:1", "[::1]:6379", "redis.example:65535", "10.0.0.1:6379"] {
        Options::new(good).to_config().unwrap();
    }
    let many: Vec<String> = (0..=u32::from(u16::MAX))
        .map(|i| format!("h{i}:1"))
        .collect();
    assert_eq!(
        address_err(Options::cluster(many)),
        AddressError::TooMany(65536)
    );
}

#[test]
fn instances_must_fit_the_keys() {
    let inst = |n: usize| Options::instances((0..n).map(|i| format!("h{i}:1")));
    // One instance: like a single server.
    inst(1).to_config().unwrap();
    // Two: the first holds 2 of the 3 keys.
    assert_eq!(
        address_err(inst(2)),
        AddressError::FragileInstances {
            instances: 2,
            keys: 3,
            majority: 2
        }
    );
    assert!(matches!(
        address_err(inst(2).key_majority(4)),
        AddressError::FragileInstances { .. }
    ));
    inst(3).to_config().unwrap();
    assert_eq!(
        address_err(inst(4)),
        AddressError::UnusedInstances {
            instances: 4,
            keys: 3
        }
    );
    for n in 3..=5 {
        inst(n).key_majority(3).to_config().unwrap();
    }
    assert!(matches!(
        address_err(inst(6).key_majority(3)),
        AddressError::UnusedInstances { .. }
    ));
    inst(1).key_majority(1).to_config().unwrap();
    assert!(matches!(
        address_err(inst(2).key_majority(1)),
        AddressError::UnusedInstances { .. }
    ));
    // A bad majority is reported as such, not as an address problem.
    assert_eq!(
        config_err(inst(3).key_majority(0)),
        ConfigError::MajorityZero
    );
}

#[test]
fn cluster_needs_database_zero() {
    assert_eq!(
        config_err(Options::cluster(["a:1"]).database(1)),
        ConfigError::ClusterDatabase
    );
    Options::instances(["a:1", "b:1", "c:1"])
        .database(1)
        .to_config()
        .unwrap();
}

#[test]
fn url_host_lists() {
    let o = Options::from_url("redis+cluster://a:7000,b:7001").unwrap();
    assert_eq!(o.mode(), Mode::Cluster);
    assert_eq!(o.addresses(), ["a:7000", "b:7001"]);
    assert_eq!(o.to_config().unwrap().topology(), Topology::Cluster(2));

    let o = Options::from_url("REDIS+CLUSTER://u:p%2Cw@[::1]:7000,b/0").unwrap();
    assert_eq!(o.mode(), Mode::Cluster);
    assert_eq!(o.addresses(), ["[::1]:7000", "b:6379"]);
    assert_eq!(o.config.username(), Some("u"));
    assert_eq!(o.config.password(), Some("p,w"));

    let o = Options::from_url("redis+instances://:pw@h1:1,h2,h3:3/2").unwrap();
    assert_eq!(o.mode(), Mode::Instances);
    assert_eq!(o.addresses(), ["h1:1", "h2:6379", "h3:3"]);
    assert_eq!(o.config.password(), Some("pw"));
    assert_eq!(o.config.database(), 2);
    assert_eq!(o.to_config().unwrap().topology(), Topology::Instances(3));

    // One host is fine in every mode.
    let o = Options::from_url("redis+cluster://seed").unwrap();
    assert_eq!(o.addresses(), ["seed:6379"]);
    let o = Options::from_url("redis://h").unwrap();
    assert_eq!(o.mode(), Mode::Single);

    // Parsed, then refused by validation.
    assert!(matches!(
        Options::from_url("redis+instances://a,b")
            .unwrap()
            .to_config(),
        Err(Error::Addresses(AddressError::FragileInstances { .. }))
    ));
    assert!(matches!(
        Options::from_url("redis+cluster://a,a")
            .unwrap()
            .to_config(),
        Err(Error::Addresses(AddressError::Duplicate(_)))
    ));

    for url in [
        "redis://a:1,b:2",
        "redis+cluster://a:1,,b:2",
        "redis+cluster://a:1,",
        "redis+cluster://",
        "redis+cluster://a:1,b:0",
        "redis+cluster://a:1/1",
        "redis+instances://a:1,[::1",
        "redis+sentinel://a:1",
    ] {
        match Options::from_url(url) {
            Err(Error::InvalidUrl(m)) => assert!(!m.is_empty()),
            other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[test]
fn sentinel_builder() {
    let o = Options::sentinel("mymaster", ["s1:26379", "s2:26380"])
        .sentinel_username("su")
        .sentinel_password("sp")
        .password("dp")
        .database(2);
    assert_eq!(o.mode(), Mode::Sentinel);
    assert_eq!(o.sentinel_master(), Some("mymaster"));
    let s = o.sentinel_settings().unwrap();
    assert_eq!(
        (s.username.as_deref(), s.password.as_deref()),
        (Some("su"), Some("sp"))
    );
    let c = o.to_config().unwrap();
    assert_eq!(c.topology(), Topology::Single);
    assert!(c.follow_failover());
    assert_eq!(c.password(), Some("dp"), "the data node's password");
    assert_eq!(c.database(), 2);
    // Neither password shows in Debug.
    let debug = format!("{o:?}");
    assert!(
        !debug.contains("\"sp\"") && !debug.contains("dp\""),
        "{debug}"
    );
    // Other modes do not follow failovers.
    assert!(!Options::new("h:1").to_config().unwrap().follow_failover());
}

#[test]
fn sentinel_options_are_checked() {
    for bad in ["", "two words", "tab\there"] {
        assert!(
            matches!(
                Options::sentinel(bad, ["s:1"]).to_config(),
                Err(Error::Addresses(AddressError::MasterName))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        Options::sentinel("m", Vec::<String>::new()).to_config(),
        Err(Error::Addresses(AddressError::Empty))
    ));
    assert!(matches!(
        Options::sentinel("m", ["s:1", "S:1"]).to_config(),
        Err(Error::Addresses(AddressError::Duplicate(_)))
    ));
    assert!(matches!(
        Options::new("h:1").sentinel_password("x").to_config(),
        Err(Error::Addresses(AddressError::NotSentinel))
    ));
}

#[test]
fn url_sentinel() {
    let o = Options::from_url(
        "redis+sentinel://u:d%40p@s1,[::1]:26380,s3:1/my%2Dmaster/3\
         ?sentinel_username=su&sentinel_password=s%26p",
    )
    .unwrap();
    assert_eq!(o.mode(), Mode::Sentinel);
    assert_eq!(o.addresses(), ["s1:26379", "[::1]:26380", "s3:1"]);
    assert_eq!(o.sentinel_master(), Some("my-master"));
    let s = o.sentinel_settings().unwrap();
    assert_eq!(s.username.as_deref(), Some("su"));
    assert_eq!(s.password.as_deref(), Some("s&p"));
    let c = o.to_config().unwrap();
    assert_eq!((c.username(), c.password()), (Some("u"), Some("d@p")));
    assert_eq!(c.database(), 3);
    assert!(!o.is_tls());

    let r = Options::from_url("rediss+sentinel://s1/m");
    #[cfg(feature = "tls")]
    assert!(r.unwrap().is_tls());
    #[cfg(not(feature = "tls"))]
    assert!(matches!(r, Err(Error::TlsNotEnabled)), "{r:?}");

    for url in [
        "redis+sentinel://s1",
        "redis+sentinel://s1/",
        "redis+sentinel://s1/m/x",
        "redis+sentinel://s1/m?password=x",
        "redis+sentinel://s1/m?sentinel_password=%zz",
        "redis+sentinel://s1:0/m",
        "redis+sentinel://s1/m#f",
        "redis://h/0?sentinel_password=x",
    ] {
        match Options::from_url(url) {
            Err(Error::InvalidUrl(m)) => assert!(!m.is_empty()),
            other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
        }
    }
    // A master name with a space is refused when connecting.
    let o = Options::from_url("redis+sentinel://s1/a%20b").unwrap();
    assert!(matches!(
        o.to_config(),
        Err(Error::Addresses(AddressError::MasterName))
    ));
}
