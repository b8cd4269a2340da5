//! One store call repeated on an existing database, for instruction counts
//! (`valgrind --tool=callgrind`: run it with 1 and with 11 calls; the difference / 10 is
//! one call's instructions). Not a timing. The database is one the data suite kept
//! (`confab-bench --suites data --data-keep --data-dir <dir>`), opened without migrations.
//!
//! ```sh
//! cargo run --release -p confab-bench --example store_calls -- \
//!   sqlite://<dir>/knowledge.db knowledge dev:bench-knowledge <project id> 8 11 \
//!   "how does the server build an index for each query"
//! cargo run --release -p confab-bench --example store_calls -- \
//!   sqlite://<dir>/search.db search dev:bench-search-0 - 20 11 '"of the"'
//! ```

use std::str::FromStr as _;
use std::time::Duration;

use confab_core::ids::{ProjectId, UserId};
use confab_core::ports::{KnowledgeIndex as _, MessageSearch as _};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, kind, owner, project, limit, calls, query] = args.as_slice() else {
        return Err("arguments: url knowledge|search owner project|- limit calls query".into());
    };
    let owner = UserId::new(owner).map_err(|e| e.to_string())?;
    let project = (project != "-")
        .then(|| ProjectId::from_str(project))
        .transpose()
        .map_err(|e| e.to_string())?;
    let limit: u32 = limit.parse().map_err(|_| "limit: a number")?;
    let calls: u32 = calls.parse().map_err(|_| "calls: a number")?;
    let store = confab_sql::SqlStore::open(
        url,
        confab_sql::PoolOptions {
            max_size: 1,
            threads: 1,
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(30),
            sqlite_cache_mib: confab_sql::DEFAULT_SQLITE_CACHE_MIB,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    for _ in 0..calls {
        let found = match kind.as_str() {
            "knowledge" => {
                let project = project.ok_or("knowledge: a project id")?;
                store
                    .search(&owner, project, query, limit)
                    .await
                    .map(|hits| hits.len())
            }
            _ => {
                let parsed =
                    confab_core::search::SearchQuery::parse(query).map_err(|e| e.to_string())?;
                store
                    .search_messages(&owner, &parsed, project, None, limit)
                    .await
                    .map(|hits| hits.len())
            }
        }
        .map_err(|e| e.to_string())?;
        println!("{found} hits");
    }
    Ok(())
}
