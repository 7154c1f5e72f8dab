//! The test runtimes themselves, independent of the lock engine.

use std::time::Duration;

use tracklock_tests::{SmolRt, TestRt, TokioRt};

fn runtime_basics<T: TestRt>() {
    let out = T::block_on(async {
        let t = T::spawn(async {
            T::sleep(Duration::from_millis(20)).await;
            7
        });
        let late = T::timeout(Duration::from_millis(10), T::sleep(Duration::from_secs(5))).await;
        assert!(late.is_none(), "timeout must fire");
        let on_time = T::timeout(Duration::from_secs(5), async { 1 }).await;
        assert_eq!(on_time, Some(1));
        t.await
    });
    assert_eq!(out, 7);
    let panicked = std::panic::catch_unwind(|| {
        T::block_on(async { T::spawn(async { panic!("boom") }).await })
    });
    assert!(panicked.is_err(), "a task's panic must reach the awaiter");
}

#[test]
fn harness_runtime_tokio() {
    runtime_basics::<TokioRt>();
}

#[test]
fn harness_runtime_smol() {
    runtime_basics::<SmolRt>();
}
