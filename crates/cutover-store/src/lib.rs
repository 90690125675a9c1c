//! The control plane's state store: SQLite with numbered migrations.
//!
//! Every operation is a plain function over a [`rusqlite::Connection`] (see
//! [`ops`]), so the same code runs alone or inside [`Store::atomically`],
//! which commits a group of changes as one transaction: an `apply` that is
//! rejected half-way leaves nothing half-written.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a row that a call
//! returned from survives a crash of the process (and of the machine). The
//! control plane persists its intent here before it acts.

pub mod access_keys;
pub mod agents;
pub mod deployment_configs;
mod error;
pub mod host_deployments;
pub mod image_pins;
mod migrations;
pub mod ops;
pub mod pipeline_ops;
mod pipeline_rows;
pub mod registry;
mod rows;
pub mod scans;
pub mod secrets;
pub mod taskdef_status;
pub mod webhook_ops;

pub use error::StoreError;
pub use pipeline_rows::{BuildProjectRow, BuildRow, PipelineRow, RepositoryRow};
pub use rows::{
    AlarmRow, AlarmSpec, DeploymentRow, EventRow, InvalidTransition, ServiceRow, TaskDefinitionRow,
    TaskRow,
};

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A handle on the database; cheap to share behind an `Arc`.
pub struct Store {
    conn: Mutex<Connection>,
    /// One permit: [`Store::call`] and [`Store::transact`] wait for it
    /// before they take a blocking-pool thread, so callers queue here,
    /// as tasks, rather than as pool threads parked on `conn`.
    gate: tokio::sync::Semaphore,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::init(conn, Some(path.to_path_buf()))
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::init(conn, None)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Store, StoreError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(StoreError::sql("configure connection"))?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            gate: tokio::sync::Semaphore::new(1),
            path,
        })
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(ops::schema_version)
    }

    /// Runs `f` on the connection (auto-commit per statement).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.lock())
    }

    /// Runs `f` in one transaction: all of its writes commit, or none.
    pub fn atomically<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("begin transaction"))?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::sql("commit transaction"))?;
        Ok(out)
    }

    /// Runs `f` on the connection on tokio's blocking pool, so an async
    /// caller never holds a worker thread while SQLite works or waits
    /// (`fsync` with `synchronous=FULL`). The async form of [`Store::with`].
    ///
    /// Calls take turns (first come, first served) before they reach the
    /// pool: the one connection serialises them anyway, and 100 service
    /// loops calling at once would otherwise park 100 pool threads on its
    /// lock (each with its stack and malloc arena, kept 10 s after use).
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.on_pool(move |store| store.with(f)).await
    }

    /// Runs `f` in one transaction on tokio's blocking pool: the async form
    /// of [`Store::atomically`].
    pub async fn transact<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.on_pool(move |store| store.atomically(f)).await
    }

    /// Runs `f` on the blocking pool once it is this caller's turn.
    async fn on_pool<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        // The semaphore is never closed, so `acquire` cannot fail.
        let _turn = self.gate.acquire().await.ok();
        let store = Arc::clone(self);
        join(tokio::task::spawn_blocking(move || f(&store)).await)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Unwraps a blocking task's result: a panic inside the closure is resumed
/// in the caller, as it would have been had the closure run inline.
fn join<T>(joined: Result<Result<T, StoreError>, tokio::task::JoinError>) -> Result<T, StoreError> {
    match joined {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::ShuttingDown),
    }
}

#[cfg(test)]
mod async_tests {
    use super::*;

    #[tokio::test]
    async fn call_and_transact_run_off_the_async_threads_and_commit_all_or_nothing() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        store
            .call(|c| {
                c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
                    .map_err(StoreError::sql("create"))
            })
            .await
            .unwrap();
        let failed = store
            .transact(|c| {
                c.execute("INSERT INTO t VALUES (1)", [])
                    .map_err(StoreError::sql("insert"))?;
                Err::<(), _>(StoreError::Conflict("refused half-way".into()))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))));
        let count: i64 = store
            .call(|c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(StoreError::sql("count"))
            })
            .await
            .unwrap();
        assert_eq!(count, 0, "the refused transaction left nothing behind");
    }

    #[tokio::test]
    async fn async_calls_take_turns_in_the_order_they_came() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        // Someone else holds the connection while the calls come in.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let holder = std::thread::spawn({
            let store = Arc::clone(&store);
            move || {
                store.with(|_| {
                    locked.send(()).unwrap();
                    held.recv().unwrap();
                    Ok(())
                })
            }
        });
        is_locked.recv().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let (store, order) = (Arc::clone(&store), Arc::clone(&order));
                tokio::spawn(async move {
                    store
                        .call(move |_| {
                            order.lock().unwrap().push(i);
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        holder.join().unwrap().unwrap();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        // Racing pool threads for the connection's lock would mix them up.
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    #[should_panic(expected = "closure panicked")]
    async fn a_panic_inside_the_closure_reaches_the_caller() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let _ = store
            .call(|_| -> Result<(), StoreError> { panic!("closure panicked") })
            .await;
    }
}
