//! 5. Holding for three validity periods keeps the lock (automatic
//!    extension) while another locker waits; the waiter gets it right after
//!    the unlock.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let holder = ctx.connect().await;
    let waiter = ctx.connect().await;
    let guard = holder.lock("long").await.expect("lock");
    let got = Arc::new(AtomicBool::new(false));
    let task = {
        let waiter = waiter.clone();
        let got = got.clone();
        T::spawn(async move {
            let g = waiter.lock("long").await.expect("waiter lock");
            got.store(true, Ordering::SeqCst);
            let at = Instant::now();
            g.unlock().await.expect("waiter unlock");
            at
        })
    };
    let start = Instant::now();
    while start.elapsed() < VALIDITY * 3 {
        ctx.expect_held_for(&guard, Duration::from_millis(250))
            .await;
        assert!(
            !got.load(Ordering::SeqCst),
            "waiter acquired while held, after {:?} ({})",
            start.elapsed(),
            ctx.variant
        );
    }
    // Keys still carry a fresh TTL.
    for k in ctx.keys("long") {
        let ttl = ctx.admin().pttl(&k);
        assert!(ttl > 0, "{k}: TTL {ttl}");
    }
    // The release, the invalidation and the waiter's SET: three round
    // trips, within 500 ms on a quiet machine; capped below the waiter's
    // fallback (the holder's TTL, at least validity - extend interval after
    // an extension), so that only the invalidation can meet it.
    let bound = ctx
        .rtt()
        .at_least(Duration::from_millis(500), 3)
        .min(EXTEND_INTERVAL * 3 / 4);
    let released = Instant::now();
    guard.unlock().await.expect("unlock");
    let acquired = T::timeout(VALIDITY, task)
        .await
        .unwrap_or_else(|| panic!("waiter did not get the lock within {VALIDITY:?} of the unlock"));
    let lag = acquired.saturating_duration_since(released);
    assert!(lag < bound, "hand-off took {lag:?} (bound {bound:?})");
    ctx.assert_clean(&[&holder, &waiter]).await;
}

matrix!(body);
