//! The memory backend of the [token store](super): state that lives as long as the process.

use super::{BoxFuture, StoreError, StoredState, TokenStore};

/// A [`TokenStore`] that lives only as long as the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: tokio::sync::Mutex<StoredState>,
}

// === impl MemoryStore ===

impl MemoryStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a store holding `state`.
    pub fn with_state(state: StoredState) -> Self {
        Self {
            state: tokio::sync::Mutex::new(state),
        }
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredState, StoreError>> {
        Box::pin(async move { Ok(self.state.lock().await.clone()) })
    }

    fn update<'a>(
        &'a self,
        f: Box<dyn FnOnce(&mut StoredState) + Send + 'a>,
    ) -> BoxFuture<'a, Result<StoredState, StoreError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            // Work on a copy so that a panicking `f` leaves the state untouched, as it does
            // for the file store.
            let mut next = state.clone();
            f(&mut next);
            *state = next.clone();
            Ok(next)
        })
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn is_persistent(&self) -> bool {
        false
    }
}
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn push_mint(n: u64) -> Box<dyn FnOnce(&mut StoredState) + Send + 'static> {
        Box::new(move |s: &mut StoredState| s.mints.push(n))
    }

    fn full_state() -> StoredState {
        StoredState {
            mints: vec![1_700_000_000_000, 1_700_000_060_000],
            ..StoredState::default()
        }
    }

    #[tokio::test]
    async fn memory_store_keeps_state_in_process() {
        let store = MemoryStore::new();
        assert!(!store.is_persistent());
        assert_eq!(store.describe(), "memory");
        assert_eq!(store.load().await.unwrap(), StoredState::default());

        let updated = store.update(push_mint(7)).await.unwrap();
        assert_eq!(updated.mints, vec![7]);
        assert_eq!(store.load().await.unwrap().mints, vec![7]);

        let store = MemoryStore::with_state(full_state());
        assert_eq!(store.load().await.unwrap(), full_state());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_updates_lose_nothing_and_survive_panics() {
        let store = Arc::new(MemoryStore::new());
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.update(push_mint(n)).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.load().await.unwrap().mints.len(), 50);

        let panicked = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .update(Box::new(|s| {
                        s.mints.clear();
                        panic!("closure failed");
                    }))
                    .await
            }
        })
        .await;
        assert!(panicked.is_err());
        assert_eq!(store.load().await.unwrap().mints.len(), 50);
    }
}
