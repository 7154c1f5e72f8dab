//! 16. Different prefixes do not interfere; `with_lock` returns
//!     `Ok(Ok(value))` normally and `Ok(Err(KeysChanged))` when the keys are
//!     deleted mid-run (the future is dropped).

use tracklock_tests::prelude::*;

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let pa = ctx.connect_with(ctx.opts().prefix("alpha")).await;
    let pb = ctx.connect_with(ctx.opts().prefix("beta")).await;
    let def = ctx.connect().await;
    let ga = pa.lock("same").await.expect("alpha");
    let gb = pb.try_lock("same").await.expect("beta does not see alpha");
    let gd = def
        .try_lock("same")
        .await
        .expect("default prefix is separate");
    assert_eq!(ctx.admin().keys("alpha:*"), lock_keys("alpha", "same", 2));
    assert_eq!(ctx.admin().keys("beta:*"), lock_keys("beta", "same", 2));
    // Losing one does not disturb the others.
    let bound = ctx.loss_bound();
    ctx.admin().del(&lock_keys("alpha", "same", 2));
    let (reason, _) = ctx.expect_lost(&ga, bound).await;
    assert_eq!(reason, LostReason::KeysChanged);
    ctx.expect_held_for(&gb, Duration::from_millis(300)).await;
    assert!(gd.is_held());
    drop(ga);
    gb.unlock().await.expect("unlock");
    gd.unlock().await.expect("unlock");
    let admin = ctx.admin().clone();
    ctx.eventually(Duration::from_secs(2), "no keys left", || {
        admin.keys("*").is_empty()
    })
    .await;

    // with_lock: normal run.
    let out = def
        .with_lock("w", async {
            T::sleep(Duration::from_millis(20)).await;
            42
        })
        .await;
    match out {
        Ok(Ok(42)) => {}
        other => panic!("expected Ok(Ok(42)), got {other:?}"),
    }
    assert!(
        ctx.lock_keys_present().is_empty(),
        "with_lock did not unlock"
    );

    // with_lock: the keys are deleted mid-run.
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let deleter = {
        let admin = ctx.admin().clone();
        let keys = ctx.keys("w");
        T::spawn(async move {
            let start = Instant::now();
            while !admin.exists(&keys[0]) {
                assert!(start.elapsed() < Duration::from_secs(5), "lock never taken");
                T::sleep(Duration::from_millis(5)).await;
            }
            T::sleep(Duration::from_millis(100)).await;
            admin.del(&keys);
            Instant::now()
        })
    };
    let work = {
        let flag = DropFlag(dropped.clone());
        let finished = finished.clone();
        async move {
            let _flag = flag;
            T::sleep(Duration::from_secs(30)).await;
            finished.store(true, Ordering::SeqCst);
            7
        }
    };
    let out = T::timeout(Duration::from_secs(10), def.with_lock("w", work))
        .await
        .expect("with_lock returns after the loss");
    let deleted_at = deleter.await;
    let took = deleted_at.elapsed();
    match out {
        Ok(Err(LostReason::KeysChanged)) => {}
        other => panic!("expected Ok(Err(KeysChanged)), got {other:?}"),
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the work future was not dropped"
    );
    assert!(!finished.load(Ordering::SeqCst));
    assert!(
        took <= ctx.loss_bound(),
        "with_lock returned {took:?} after the delete"
    );
    ctx.assert_clean(&[&pa, &pb, &def]).await;
}

matrix!(body);
