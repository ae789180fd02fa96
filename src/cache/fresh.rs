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
/// keep its answer, which may predate the change.
pub struct Fresh<T> {
    max_age: Duration,
    state: Mutex<State<T>>,
}

struct State<T> {
    /// When the read began, and what it gave.
    value: Option<(Instant, Arc<T>)>,
    /// Moved by every `forget`.
    generation: u64,
}

impl<T> Fresh<T> {
    pub fn new(max_age: Duration) -> Fresh<T> {
        Fresh {
            max_age,
            state: Mutex::new(State {
                value: None,
                generation: 0,
            }),
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
        let generation = self.lock().generation;
        let began = Instant::now();
        let value = Arc::new(load().await?);
        let mut state = self.lock();
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
