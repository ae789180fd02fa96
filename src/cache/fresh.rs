//! [`Fresh`]: one Postgres read a replica reuses for a short while instead of repeating it
//! for every order.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A value read from Postgres, reused for up to `max_age` after the read began. What
/// changes on this replica calls [`Fresh::forget`], so the next reader here sees the change;
/// other replicas see it within `max_age`. A read that began before a `forget` does not
/// keep its answer, which may predate the change. One read at a time: the orders that
/// arrive while it runs wait for it instead of sending the same read again (at 32
/// concurrent orders an expired window used to be read eight times a second).
pub struct Fresh<T> {
    max_age: Duration,
    state: Mutex<State<T>>,
    reading: tokio::sync::Mutex<()>,
}

struct State<T> {
    /// When the read began, and what it gave.
    value: Option<(Instant, Arc<T>)>,
    /// Moved by every `forget`.
    generation: u64,
    /// Reads finished, and whether the last one failed with the database out of reach.
    reads: u64,
    failed: Option<Failure>,
}

/// How the last read failed, for the readers that waited for it: they answer the same
/// rather than each trying again one after the other (a database out of reach would hold
/// every waiter for one more connection timeout per reader ahead of it).
#[derive(Clone)]
enum Failure {
    Unreachable,
    Other(String),
}

impl Failure {
    fn of(e: &sqlx::Error) -> Failure {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Failure::Unreachable
            }
            other => Failure::Other(other.to_string()),
        }
    }

    fn error(&self) -> sqlx::Error {
        match self {
            Failure::Unreachable => sqlx::Error::PoolTimedOut,
            Failure::Other(m) => sqlx::Error::Protocol(format!("a shared read failed: {m}")),
        }
    }
}

impl<T> Fresh<T> {
    pub fn new(max_age: Duration) -> Fresh<T> {
        Fresh {
            max_age,
            state: Mutex::new(State {
                value: None,
                generation: 0,
                reads: 0,
                failed: None,
            }),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value and when its read began, if it is younger than `max_age`.
    pub fn peek(&self) -> Option<(Instant, Arc<T>)> {
        let state = self.lock();
        let (at, value) = state.value.as_ref()?;
        (at.elapsed() < self.max_age).then(|| (*at, value.clone()))
    }

    /// The value, read with `load` when none is young enough.
    pub async fn get<F, Fut>(&self, load: F) -> sqlx::Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        Ok(self.get_with_time(load).await?.1)
    }

    /// [`Fresh::get`], with when the value's read began.
    pub async fn get_with_time<F, Fut>(&self, load: F) -> sqlx::Result<(Instant, Arc<T>)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        if let Some(hit) = self.peek() {
            return Ok(hit);
        }
        let before = self.lock().reads;
        let _reading = self.reading.lock().await;
        // The read this one waited for may have left a value young enough, or failed;
        // after a `forget` it left nothing, and this one reads afresh.
        if let Some(hit) = self.peek() {
            return Ok(hit);
        }
        let generation = {
            let state = self.lock();
            if let (true, Some(failed)) = (state.reads != before, &state.failed) {
                return Err(failed.error());
            }
            state.generation
        };
        let began = Instant::now();
        let read = load().await;
        let mut state = self.lock();
        state.reads += 1;
        state.failed = read.as_ref().err().map(Failure::of);
        let value = Arc::new(read?);
        if state.generation == generation {
            state.value = Some((began, value.clone()));
        }
        Ok((began, value))
    }

    /// Drops the value: the next reader asks Postgres.
    pub fn forget(&self) {
        let mut state = self.lock();
        state.value = None;
        state.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuses_a_young_value_and_rereads_after_forget() {
        let f = Fresh::new(Duration::from_secs(60));
        assert_eq!(*f.get(|| async { Ok(1) }).await.unwrap(), 1);
        assert_eq!(*f.get(|| async { Ok(2) }).await.unwrap(), 1);
        f.forget();
        assert!(f.peek().is_none());
        assert_eq!(*f.get(|| async { Ok(3) }).await.unwrap(), 3);
    }

    /// Readers started at once: their tasks, the reads they made, what lets a read finish.
    struct Readers<T> {
        tasks: Vec<tokio::task::JoinHandle<sqlx::Result<Arc<T>>>>,
        reads: Arc<std::sync::atomic::AtomicUsize>,
        go: Arc<tokio::sync::Notify>,
    }

    /// `n` readers of an empty `f` at once, each with a read that counts itself, waits for
    /// `go` and answers `answer()`.
    fn readers_at_once<T: Send + Sync + 'static>(
        f: &Arc<Fresh<T>>,
        n: usize,
        answer: fn() -> sqlx::Result<T>,
    ) -> Readers<T> {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let go = Arc::new(tokio::sync::Notify::new());
        let tasks = (0..n)
            .map(|_| {
                let (f, reads, go) = (f.clone(), reads.clone(), go.clone());
                tokio::spawn(async move {
                    f.get(|| async move {
                        reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        go.notified().await;
                        answer()
                    })
                    .await
                })
            })
            .collect();
        Readers { tasks, reads, go }
    }

    #[tokio::test]
    async fn readers_arriving_during_a_read_share_it() {
        let f = Arc::new(Fresh::new(Duration::from_secs(60)));
        let Readers { tasks, reads, go } = readers_at_once(&f, 8, || Ok(7));
        // Every reader has started and waits (the first in its read, the rest for it).
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Wakes every read under way: without the shared read, all eight.
        go.notify_waiters();
        for r in tasks {
            assert_eq!(*r.await.unwrap().unwrap(), 7);
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn readers_that_waited_for_a_failed_read_fail_with_it() {
        let f = Arc::new(Fresh::<i32>::new(Duration::from_secs(60)));
        let Readers { tasks, reads, go } =
            readers_at_once(&f, 4, || Err(sqlx::Error::PoolTimedOut));
        tokio::time::sleep(Duration::from_millis(20)).await;
        go.notify_waiters();
        for r in tasks {
            assert!(matches!(r.await.unwrap(), Err(sqlx::Error::PoolTimedOut)));
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The next reader tries again.
        assert_eq!(*f.get(|| async { Ok(5) }).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn an_old_value_is_read_again() {
        let f = Fresh::new(Duration::ZERO);
        assert_eq!(*f.get(|| async { Ok(1) }).await.unwrap(), 1);
        assert_eq!(*f.get(|| async { Ok(2) }).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_read_overtaken_by_forget_is_not_kept() {
        let f = Arc::new(Fresh::new(Duration::from_secs(60)));
        let (started, go) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let slow = {
            let (f, started, go) = (f.clone(), started.clone(), go.clone());
            tokio::spawn(async move {
                f.get(|| async move {
                    started.notify_one();
                    go.notified().await;
                    Ok("before the change")
                })
                .await
                .unwrap()
            })
        };
        started.notified().await;
        f.forget();
        go.notify_one();
        assert_eq!(*slow.await.unwrap(), "before the change");
        assert_eq!(*f.get(|| async { Ok("after") }).await.unwrap(), "after");
    }
}
