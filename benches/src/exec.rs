//! The runtimes the bench drives, behind one trait: run a future to
//! completion from the (synchronous) orchestrator, spawn worker tasks, sleep,
//! and connect a tracklock locker.
//!
//! Each runtime gets two worker threads where it has a notion of them, and
//! the orchestrator waits on the main thread:
//!
//! - tokio: multi-thread runtime, 2 workers, `block_on` from the main thread;
//! - smol: smol's global executor with `SMOL_THREADS=2` (tracklock's smol
//!   drivers are spawned there too), `smol::block_on` from the main thread;
//! - glommio: thread-per-core, so one `LocalExecutor` thread hosts the
//!   locker, its drivers and every worker (a locker's I/O belongs to the
//!   executor that connected it).

use std::future::Future;
use std::time::Duration;

/// A runtime as the bench uses it.
pub(crate) trait Exec: Send + Sync + 'static {
    /// The tracklock runtime type.
    type Rt: tracklock::Runtime;

    /// Label in the table.
    fn name(&self) -> &'static str;

    /// Runs the future made by `f` on this runtime and waits for it on the
    /// calling (main) thread.
    fn run<T, Fut, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        Fut: Future<Output = T> + 'static,
        F: FnOnce() -> Fut + Send + 'static;

    /// Spawns a worker task (inside [`Exec::run`]); the returned future
    /// resolves with its output.
    fn spawn<T: Send + 'static>(
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + 'static;

    /// Sleeps (inside [`Exec::run`]).
    fn sleep(d: Duration) -> impl Future<Output = ()>;

    /// `tracklock::<rt>::Locker::connect` (inside [`Exec::run`]).
    fn connect(
        options: tracklock::Options,
    ) -> impl Future<Output = Result<tracklock::Locker<Self::Rt>, tracklock::Error>>;
}

/// tokio, multi-thread, 2 workers.
pub(crate) struct TokioExec {
    rt: tokio::runtime::Runtime,
}

impl TokioExec {
    /// Builds the runtime.
    pub(crate) fn new() -> TokioExec {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        TokioExec { rt }
    }

    /// The runtime handle (for the Ctrl-C task).
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }
}

impl Exec for TokioExec {
    type Rt = tracklock::tokio::Tokio;

    fn name(&self) -> &'static str {
        "tokio"
    }

    fn run<T, Fut, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        Fut: Future<Output = T> + 'static,
        F: FnOnce() -> Fut + Send + 'static,
    {
        self.rt.block_on(f())
    }

    fn spawn<T: Send + 'static>(
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + 'static {
        let h = tokio::spawn(fut);
        async move {
            match h.await {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
    }

    fn connect(
        options: tracklock::Options,
    ) -> impl Future<Output = Result<tracklock::Locker<Self::Rt>, tracklock::Error>> {
        tracklock::tokio::Locker::connect(options)
    }
}

/// smol's global executor on 2 threads.
pub(crate) struct SmolExec;

impl SmolExec {
    /// Asks for 2 global-executor threads (read when the executor starts, on
    /// the first `smol::spawn`; an explicit `SMOL_THREADS` wins). Call before
    /// any other thread exists.
    pub(crate) fn new() -> SmolExec {
        if std::env::var_os("SMOL_THREADS").is_none() {
            std::env::set_var("SMOL_THREADS", "2");
        }
        SmolExec
    }
}

impl Exec for SmolExec {
    type Rt = tracklock::smol::Smol;

    fn name(&self) -> &'static str {
        "smol"
    }

    fn run<T, Fut, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        Fut: Future<Output = T> + 'static,
        F: FnOnce() -> Fut + Send + 'static,
    {
        smol::block_on(f())
    }

    fn spawn<T: Send + 'static>(
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + 'static {
        smol::spawn(fut)
    }

    async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }

    fn connect(
        options: tracklock::Options,
    ) -> impl Future<Output = Result<tracklock::Locker<Self::Rt>, tracklock::Error>> {
        tracklock::smol::Locker::connect(options)
    }
}

#[cfg(feature = "glommio")]
pub(crate) use self::glommio_exec::GlommioExec;

#[cfg(feature = "glommio")]
mod glommio_exec {
    use std::future::Future;
    use std::time::Duration;

    use super::Exec;

    type Job = Box<dyn FnOnce() + Send>;

    /// One glommio `LocalExecutor` on its own thread, fed jobs over a
    /// channel (its tasks are `!Send`, so they are created on that thread).
    pub(crate) struct GlommioExec {
        jobs: smol::channel::Sender<Job>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl GlommioExec {
        /// Starts the executor thread, or says why io_uring is unavailable.
        /// The executor locks little memory (256 KiB) so it starts under a
        /// small `ulimit -l`.
        pub(crate) fn new() -> Result<GlommioExec, String> {
            let (jobs, rx) = smol::channel::unbounded::<Job>();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("glommio".into())
                .spawn(move || {
                    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                        .io_memory(256 << 10)
                        .ring_depth(128)
                        .make();
                    match ex {
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                        }
                        Ok(ex) => {
                            let _ = ready_tx.send(Ok(()));
                            ex.run(async move {
                                while let Ok(job) = rx.recv().await {
                                    job();
                                }
                            });
                        }
                    }
                })
                .map_err(|e| format!("cannot spawn the glommio thread: {e}"))?;
            match ready_rx.recv() {
                Ok(Ok(())) => Ok(GlommioExec {
                    jobs,
                    thread: Some(thread),
                }),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("the glommio thread died while starting".into()),
            }
        }
    }

    impl Drop for GlommioExec {
        fn drop(&mut self) {
            self.jobs.close();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    impl Exec for GlommioExec {
        type Rt = tracklock::glommio::Glommio;

        fn name(&self) -> &'static str {
            "glommio"
        }

        fn run<T, Fut, F>(&self, f: F) -> T
        where
            T: Send + 'static,
            Fut: Future<Output = T> + 'static,
            F: FnOnce() -> Fut + Send + 'static,
        {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let job: Job = Box::new(move || {
                glommio::spawn_local(async move {
                    let _ = tx.send(f().await);
                })
                .detach();
            });
            self.jobs
                .send_blocking(job)
                .expect("the glommio executor stopped");
            rx.recv().expect("a job on the glommio executor panicked")
        }

        fn spawn<T: Send + 'static>(
            fut: impl Future<Output = T> + Send + 'static,
        ) -> impl Future<Output = T> + 'static {
            glommio::spawn_local(fut)
        }

        fn sleep(d: Duration) -> impl Future<Output = ()> {
            glommio::timer::sleep(d)
        }

        fn connect(
            options: tracklock::Options,
        ) -> impl Future<Output = Result<tracklock::Locker<Self::Rt>, tracklock::Error>> {
            tracklock::glommio::Locker::connect(options)
        }
    }
}
