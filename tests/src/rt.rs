//! The async runtimes of the suites behind one trait, so each scenario
//! is written once, generic over [`TestRt`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tracklock::{Error, Locker, Options};

/// An async runtime the scenarios run on.
pub trait TestRt: Sized + Send + Sync + 'static {
    /// The tracklock runtime lockers use on this test runtime.
    type R: tracklock::Runtime;

    /// Short name used in test names: `tokio`, `smol` or `glommio`.
    const NAME: &'static str;

    /// Runs `fut` to completion on a fresh runtime (tokio: multi-thread, two
    /// workers; smol: `smol::block_on`, tasks on smol's global executor;
    /// glommio: a local executor on the calling thread).
    fn block_on<F: Future>(fut: F) -> F::Output;

    /// Spawns a task; awaiting the handle gives its output (and re-raises
    /// its panic). Dropping the handle does not cancel the task.
    fn spawn<F>(fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Sleeps for `d`.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;

    /// Runs `fut` for at most `d`: `None` when time ran out (and `fut` was
    /// dropped).
    fn timeout<F: Future>(d: Duration, fut: F) -> impl Future<Output = Option<F::Output>>;

    /// `Locker::connect` on this runtime.
    fn connect(
        opts: Options,
    ) -> impl Future<Output = Result<Locker<Self::R>, Error>> + Send + 'static;
}

/// A spawned task's handle.
pub struct Task<T>(TaskInner<T>);

enum TaskInner<T> {
    Tokio(tokio::task::JoinHandle<T>),
    Smol(smol::Task<T>),
    /// A glommio task's outcome (its panic caught), sent when it ends:
    /// glommio's own handle is `!Send`.
    #[cfg(feature = "glommio")]
    Glommio(tokio::sync::oneshot::Receiver<std::thread::Result<T>>),
}

impl<T> Task<T> {
    /// True once the task finished.
    pub fn is_finished(&self) -> bool {
        match &self.0 {
            TaskInner::Tokio(h) => h.is_finished(),
            TaskInner::Smol(t) => t.is_finished(),
            #[cfg(feature = "glommio")]
            TaskInner::Glommio(rx) => !rx.is_empty() || rx.is_terminated(),
        }
    }
}

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.get_mut().0 {
            TaskInner::Tokio(h) => match Pin::new(h).poll(cx) {
                Poll::Ready(Ok(v)) => Poll::Ready(v),
                Poll::Ready(Err(e)) => match e.try_into_panic() {
                    Ok(payload) => std::panic::resume_unwind(payload),
                    Err(e) => panic!("task failed: {e}"),
                },
                Poll::Pending => Poll::Pending,
            },
            TaskInner::Smol(t) => Pin::new(t).poll(cx),
            #[cfg(feature = "glommio")]
            TaskInner::Glommio(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(Ok(v))) => Poll::Ready(v),
                Poll::Ready(Ok(Err(payload))) => std::panic::resume_unwind(payload),
                Poll::Ready(Err(_)) => panic!("glommio task dropped before it finished"),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// tokio, multi-thread with two workers.
#[derive(Debug, Clone, Copy)]
pub struct TokioRt;

impl TestRt for TokioRt {
    type R = tracklock::tokio::Tokio;
    const NAME: &'static str = "tokio";

    fn block_on<F: Future>(fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let out = rt.block_on(fut);
        rt.shutdown_timeout(Duration::from_secs(1));
        out
    }

    fn spawn<F>(fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Task(TaskInner::Tokio(tokio::spawn(fut)))
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }

    async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
        tokio::time::timeout(d, fut).await.ok()
    }

    fn connect(
        opts: Options,
    ) -> impl Future<Output = Result<Locker<Self::R>, Error>> + Send + 'static {
        tracklock::tokio::Locker::connect(opts)
    }
}

/// smol: `smol::block_on` for the body, smol's global executor for tasks
/// (and for the lockers' drivers).
#[derive(Debug, Clone, Copy)]
pub struct SmolRt;

impl TestRt for SmolRt {
    type R = tracklock::smol::Smol;
    const NAME: &'static str = "smol";

    fn block_on<F: Future>(fut: F) -> F::Output {
        smol::block_on(fut)
    }

    fn spawn<F>(fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Task(TaskInner::Smol(smol::spawn(fut)))
    }

    async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }

    fn timeout<F: Future>(d: Duration, fut: F) -> impl Future<Output = Option<F::Output>> {
        futures_lite::future::or(async move { Some(fut.await) }, async move {
            async_io::Timer::after(d).await;
            None
        })
    }

    fn connect(
        opts: Options,
    ) -> impl Future<Output = Result<Locker<Self::R>, Error>> + Send + 'static {
        tracklock::smol::Locker::connect(opts)
    }
}

/// glommio (feature `glommio`, Linux): a `LocalExecutor` on the scenario's thread, tasks and the
/// lockers' drivers on `glommio::spawn_local`. glommio futures are `!Send`,
/// so `sleep`, `connect` and task handles cross to the scenario through
/// channels fed by local tasks (the scenario runs on the same thread).
///
/// The executor gets 256 KiB of I/O memory and a 32-entry ring instead of
/// glommio's 10 MiB default, to stay within a low `ulimit -l` (locked
/// memory) on CI machines.
#[cfg(feature = "glommio")]
#[derive(Debug, Clone, Copy)]
pub struct GlommioRt;

#[cfg(feature = "glommio")]
impl GlommioRt {
    /// Runs `fut` on a local task and sends its output (or panic) back.
    fn local<F>(fut: F) -> tokio::sync::oneshot::Receiver<std::thread::Result<F::Output>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        use futures_lite::FutureExt;
        let (tx, rx) = tokio::sync::oneshot::channel();
        glommio::spawn_local(async move {
            let out = std::panic::AssertUnwindSafe(fut).catch_unwind().await;
            let _ = tx.send(out);
        })
        .detach();
        rx
    }
}

#[cfg(feature = "glommio")]
impl TestRt for GlommioRt {
    type R = tracklock::glommio::Glommio;
    const NAME: &'static str = "glommio";

    fn block_on<F: Future>(fut: F) -> F::Output {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .ring_depth(32)
            .make()
            .expect("glommio executor (io_uring)");
        // io_uring completions interrupt this thread's blocking socket
        // calls: the kit's admin connections do their I/O elsewhere.
        /// Restores the setting, also when `fut` panics.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                tracklock_testkit::offload::offload_blocking_io(self.0);
            }
        }
        let _restore = Restore(tracklock_testkit::offload::offload_blocking_io(true));
        ex.run(fut)
    }

    fn spawn<F>(fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Task(TaskInner::Glommio(Self::local(fut)))
    }

    async fn sleep(d: Duration) {
        Task(TaskInner::Glommio(Self::local(glommio::timer::sleep(d)))).await
    }

    fn timeout<F: Future>(d: Duration, fut: F) -> impl Future<Output = Option<F::Output>> {
        futures_lite::future::or(async move { Some(fut.await) }, async move {
            glommio::timer::sleep(d).await;
            None
        })
    }

    async fn connect(opts: Options) -> Result<Locker<Self::R>, Error> {
        Task(TaskInner::Glommio(Self::local(
            tracklock::glommio::Locker::connect(opts),
        )))
        .await
    }
}
