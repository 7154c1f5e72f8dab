//! 6. Cancelled acquisitions leave nothing behind: a `lock` wrapped in a
//!    timeout that fires, a waiter dropped while waiting, and acquisitions
//!    cancelled at arbitrary points on a free name. Afterwards no key holds
//!    a cancelled request's value, `active_locks()` is back to the holders'
//!    count, and the lock is still usable.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let keys = ctx.keys("held");
    let guard = a.lock("held").await.expect("lock");
    let values: Vec<_> = keys.iter().map(|k| ctx.admin().get(k)).collect();
    assert!(values.iter().all(Option::is_some));
    assert_eq!(a.active_locks(), 1);

    // A lock call that times out, from another locker and from the holder's
    // own locker.
    assert!(T::timeout(Duration::from_millis(300), b.lock("held"))
        .await
        .is_none());
    assert!(T::timeout(Duration::from_millis(300), a.lock("held"))
        .await
        .is_none());
    // A waiter task cancelled while it waits.
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let waiter = {
        let b = b.clone();
        T::spawn(async move {
            futures_lite::future::or(async { Some(b.lock("held").await) }, async {
                let _ = stop_rx.recv().await;
                None
            })
            .await
            .is_some()
        })
    };
    ctx.sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "waiter got a held lock");
    stop_tx.send(()).await.expect("stop");
    assert!(!waiter.await, "waiter must have been cancelled, not served");

    let admin = ctx.admin().clone();
    let same_values = || keys.iter().map(|k| admin.get(k)).collect::<Vec<_>>() == values;
    ctx.eventually(Duration::from_secs(1), "b tracks no lock", || {
        b.active_locks() == 0
    })
    .await;
    ctx.eventually(
        Duration::from_secs(1),
        "a tracks only the held lock",
        || a.active_locks() == 1,
    )
    .await;
    assert!(
        same_values(),
        "a cancelled request changed the holder's keys"
    );
    assert!(guard.is_held());
    assert_eq!(ctx.admin().keys("rueidislock:*").len(), 3);

    // Cancel acquisitions of a free name at many points (before sending,
    // with replies in flight, after the majority): each either completes
    // and is unlocked, or is dropped and must clean up after itself.
    let mut completed = 0;
    for i in 0..60u64 {
        let limit = Duration::from_micros(i.saturating_sub(30) * 100);
        let locker = if i % 2 == 0 { &a } else { &b };
        let attempt = async {
            if i % 3 == 0 {
                locker.try_lock("free").await
            } else {
                locker.lock("free").await
            }
        };
        // Cancel after a number of executor turns (catches the request
        // before it is written and with replies in flight), or after a
        // short time.
        let outcome = if i < 30 {
            futures_lite::future::or(async { Some(attempt.await) }, async {
                for _ in 0..i {
                    futures_lite::future::yield_now().await;
                }
                None
            })
            .await
        } else {
            T::timeout(limit, attempt).await
        };
        match outcome {
            Some(Ok(g)) => {
                g.unlock().await.expect("unlock");
                completed += 1;
            }
            // The previous cancelled attempt's keys may still be on their
            // way out (released in the background): a try can lose to them.
            Some(Err(Error::NotLocked)) if i % 3 == 0 => {}
            Some(Err(e)) => panic!("attempt {i} on the free name: {e}"),
            None => {}
        }
    }
    ctx.eventually(
        Duration::from_secs(2),
        "no keys of the free name left",
        || admin.keys("rueidislock:*:free").is_empty(),
    )
    .await;
    ctx.eventually(Duration::from_secs(2), "only the held lock tracked", || {
        a.active_locks() == 1 && b.active_locks() == 0
    })
    .await;
    assert!(same_values());

    // Still usable: the free name and, after the unlock, the held one.
    let g = b
        .try_lock("free")
        .await
        .expect("free name after cancellations");
    g.unlock().await.expect("unlock");
    guard.unlock().await.expect("unlock held");
    let g = ctx.lock_within(&b, "held", Duration::from_secs(1)).await;
    g.unlock().await.expect("unlock");
    ctx.assert_clean(&[&a, &b]).await;
    eprintln!("{completed}/60 timed acquisitions completed");
}

matrix!(body);
