//! Throw-away databases for tests (feature `test-support`): each store gets its own SQLite
//! file or PostgreSQL schema, migrated, and removed when the last clone of the store is
//! dropped, so tests run in parallel without seeing each other's rows.
//!
//! PostgreSQL tests read `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When that database cannot be reached,
//! [`postgres_store`] panics if `CI` is set and otherwise prints a loud notice and returns
//! `None`, so the caller can return early.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};

use crate::{PoolOptions, SqlStore, connect};

/// The database PostgreSQL tests use when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Pool settings for tests: a few connections, short waits.
#[must_use]
pub fn test_pool_options() -> PoolOptions {
    PoolOptions {
        max_size: 8,
        threads: 1,
        connect_timeout: Duration::from_secs(5),
        wait_timeout: Duration::from_secs(30),
        sqlite_cache_mib: crate::DEFAULT_SQLITE_CACHE_MIB,
    }
}

/// `TEST_DATABASE_URL`, or the local default.
#[must_use]
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Removes a temporary SQLite folder.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throw-away database: a URL, and the clean-up that removes it once this value and every
/// store opened from it are dropped.
pub struct TestDatabase {
    url: String,
    cleanup: Arc<dyn Send + Sync>,
}

impl TestDatabase {
    /// The database's URL (for PostgreSQL it selects the private schema).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new store (its own pool) on this database, migrated. Two stores of one database
    /// behave like two server processes sharing it.
    ///
    /// # Panics
    /// When the database cannot be opened or migrated.
    pub async fn store(&self) -> SqlStore {
        let store = connect(&self.url, test_pool_options())
            .await
            .expect("the test database opens and migrates");
        store
            .with_cleanup(Box::new(Arc::clone(&self.cleanup)))
            .unwrap_or_else(|_| panic!("a new store has no other clones"))
    }
}

/// A new SQLite database in a temporary file (WAL; stores get a pool of several connections).
#[must_use]
pub fn sqlite_database() -> TestDatabase {
    let dir = std::env::temp_dir().join(format!("confab-test-{}", uuid::Uuid::now_v7().simple()));
    TestDatabase {
        url: format!("sqlite://{}", dir.join("confab.db").display()),
        cleanup: Arc::new(TempDir(dir)),
    }
}

/// A migrated SQLite store in a new temporary file.
///
/// # Panics
/// When the file cannot be created or migrated.
pub async fn sqlite_store() -> SqlStore {
    sqlite_database().store().await
}

/// Drops a private PostgreSQL schema.
struct Schema {
    admin_url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop runs inside the tests' runtime, which must not block on itself: use a thread
        // with a runtime of its own.
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin_url).await.ok()?;
                conn.batch_execute(&sql).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop the test schema {}", self.name);
        }
    }
}

/// Reaches `TEST_DATABASE_URL`, or applies the CI rule: panic when `CI` is set, otherwise
/// print a loud notice and answer `None`.
///
/// # Panics
/// When the database is unreachable and `CI` is set.
pub async fn postgres_admin() -> Option<(String, AsyncPgConnection)> {
    let url = test_database_url();
    let reached =
        tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(&url)).await;
    match reached {
        Ok(Ok(conn)) => Some((url, conn)),
        Ok(Err(e)) => unreachable_postgres(&e.to_string()),
        Err(_) => unreachable_postgres("timed out"),
    }
}

fn unreachable_postgres(why: &str) -> Option<(String, AsyncPgConnection)> {
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL at TEST_DATABASE_URL is unreachable ({why}) and CI is set: the PostgreSQL tests must run"
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! SKIPPING a PostgreSQL test: TEST_DATABASE_URL is unreachable ({why}).\n\
         !!! Start PostgreSQL or set TEST_DATABASE_URL; with CI set this test fails.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

/// Adds `options=-c search_path=<schema>` to a PostgreSQL URL, so every connection of the
/// pool works in that schema.
#[must_use]
pub fn url_with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A new private schema in `TEST_DATABASE_URL`'s database, or `None` (after a loud notice)
/// when that database is unreachable and `CI` is not set.
///
/// # Panics
/// When the database is unreachable and `CI` is set, or the schema cannot be created.
pub async fn postgres_database() -> Option<TestDatabase> {
    let (admin_url, mut admin) = postgres_admin().await?;
    let name = format!("confab_test_{}", uuid::Uuid::now_v7().simple());
    admin
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .await
        .expect("the test schema is created");
    drop(admin);
    Some(TestDatabase {
        url: url_with_search_path(&admin_url, &name),
        cleanup: Arc::new(Schema { admin_url, name }),
    })
}

/// A migrated PostgreSQL store in a new private schema, or `None` as [`postgres_database`].
///
/// # Panics
/// As [`postgres_database`], or when the schema cannot be migrated.
pub async fn postgres_store() -> Option<SqlStore> {
    Some(postgres_database().await?.store().await)
}
