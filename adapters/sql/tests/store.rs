//! What the contract suites in `confab-tests` cannot see: how the adapter opens databases,
//! what it stores on disk, and how it behaves when the database goes away. The suites are
//! the main proof of the ports' behaviour.
// Test code: a failed unwrap is a failed test (clippy.toml covers #[test] and #[cfg(test)];
// this covers the helpers of this test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use confab_core::error::StoreError;
use confab_core::ids::{ConversationId, ProjectId, UserId};
use confab_core::model::{Conversation, Message, Project, now};
use confab_core::ports::{ChatHistory, ProjectStore};
use confab_sql::{PoolOptions, SqlError, connect, testing};
use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, QueryableByName, RunQueryDsl as _, SqliteConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

fn owner() -> UserId {
    UserId::new(format!("user-{}", uuid::Uuid::now_v7().simple())).unwrap()
}

fn project(owner: &UserId) -> Project {
    let at = now();
    Project {
        id: ProjectId::new(),
        owner_id: owner.clone(),
        name: "Support bot".to_owned(),
        description: None,
        created_at: at,
        updated_at: at,
        knowledge: true,
        language: confab_core::values::SearchLanguage::default(),
    }
}

/// A store on a new SQLite file at `path`, with the default pool.
async fn sqlite_file_store(path: &std::path::Path) -> confab_sql::SqlStore {
    connect(
        &format!("sqlite://{}", path.display()),
        PoolOptions::default(),
    )
    .await
    .unwrap()
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("confab-sql-test-{}", uuid::Uuid::now_v7().simple()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_store_keeps_one_database_for_all_its_connections() {
    let options = PoolOptions {
        max_size: 4,
        ..PoolOptions::default()
    };
    let store = connect("sqlite::memory:", options).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let owner = owner();
    let project = project(&owner);
    store.insert_project(&project).await.unwrap();

    let mut reads = JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        let owner = owner.clone();
        reads.spawn(async move { store.get_project(&owner, project.id).await });
    }
    while let Some(read) = reads.join_next().await {
        assert_eq!(read.unwrap().unwrap().name, "Support bot");
    }
    // Applying the migrations again is a no-op.
    store.run_migrations().await.unwrap();
    assert!(store.get_project(&owner, project.id).await.is_ok());

    // Another in-memory store is another database.
    let other = connect("sqlite::memory:", PoolOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        other.get_project(&owner, project.id).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn connect_creates_the_folder_of_a_new_sqlite_file_and_turns_on_wal() {
    let dir = temp_dir();
    let path = dir.join("nested").join("confab.db");
    let store = sqlite_file_store(&path).await;
    store.ping().await.unwrap();
    assert!(path.exists());

    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mut raw = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
        .get_result(&mut raw)
        .unwrap();
    assert_eq!(mode.journal_mode, "wal");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sqlite_stores_ids_and_timestamps_as_fixed_width_text() {
    let dir = temp_dir();
    let path = dir.join("confab.db");
    let store = sqlite_file_store(&path).await;
    let owner = owner();
    let mut project = project(&owner);
    // Whole seconds: a variable-width format would drop the fraction and sort wrongly.
    project.created_at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    project.updated_at = chrono::DateTime::from_timestamp_micros(1_790_000_000_000_001).unwrap();
    store.insert_project(&project).await.unwrap();

    #[derive(QueryableByName)]
    struct Raw {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        created_at: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        updated_at: String,
    }
    let mut raw = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let row: Raw = diesel::sql_query("SELECT id, created_at, updated_at FROM projects")
        .get_result(&mut raw)
        .unwrap();
    assert_eq!(row.id, project.id.to_string());
    assert_eq!(row.created_at, "2026-09-21T14:13:20.000000Z");
    assert_eq!(row.updated_at, "2026-09-21T14:13:20.000001Z");
    assert_eq!(
        store.get_project(&owner, project.id).await.unwrap(),
        project
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sqlite_enforces_foreign_keys_and_one_streaming_reply_in_the_schema_itself() {
    let dir = temp_dir();
    let path = dir.join("confab.db");
    let store = sqlite_file_store(&path).await;
    drop(store);
    let mut raw = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    raw.batch_execute("PRAGMA foreign_keys = ON").unwrap();
    let orphan = raw.batch_execute(
        "INSERT INTO conversations (id, project_id, owner_id, title, created_at, updated_at) \
         VALUES ('00000000-0000-7000-8000-000000000001', \
         '00000000-0000-7000-8000-000000000002', 'u', NULL, \
         '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
    );
    let orphan = orphan.expect_err("a conversation without its project was stored");
    assert!(
        orphan.to_string().contains("FOREIGN KEY"),
        "refused for its missing project, not for its shape: {orphan}"
    );

    let at = "'2026-01-01T00:00:00.000000Z'";
    raw.batch_execute(&format!(
        "INSERT INTO projects VALUES ('00000000-0000-7000-8000-000000000002', 'u', 'p', NULL, {at}, {at}, 1, 'english'); \
         INSERT INTO conversations (id, project_id, owner_id, title, created_at, updated_at) \
         VALUES ('00000000-0000-7000-8000-000000000001', \
         '00000000-0000-7000-8000-000000000002', 'u', NULL, {at}, {at})"
    ))
    .unwrap();
    let reply = |n: u8| {
        format!(
            "INSERT INTO messages VALUES ('00000000-0000-7000-8000-0000000000{n:02}', \
             '00000000-0000-7000-8000-000000000001', 'assistant', '', 'streaming', 'm', \
             NULL, NULL, NULL, NULL, {at}, {at}, NULL, NULL)"
        )
    };
    raw.batch_execute(&reply(10)).unwrap();
    assert!(
        raw.batch_execute(&reply(11)).is_err(),
        "a second streaming reply was stored"
    );
    assert!(
        raw.batch_execute(
            &reply(12)
                .replace("'assistant'", "'system'")
                .replace("'streaming'", "'complete'")
        )
        .is_err(),
        "a message with an unknown role was stored"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Current-thread, like an actix-web worker: there, diesel-async cannot wait for an
/// abandoned SQLite query with `block_in_place`, so the adapter must not abandon one.
#[tokio::test]
async fn a_write_whose_caller_goes_away_still_completes_and_leaves_the_pool_usable() {
    let dir = temp_dir();
    let path = dir.join("confab.db");
    let options = PoolOptions {
        max_size: 1,
        ..PoolOptions::default()
    };
    let store = connect(&format!("sqlite://{}", path.display()), options)
        .await
        .unwrap();
    let owner = owner();

    // Another process holds the write lock, so the write waits on SQLite's busy handler
    // (on a blocking thread) until its caller gives up.
    let mut other = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    other.batch_execute("BEGIN IMMEDIATE").unwrap();
    let abandoned = project(&owner);
    let waiting =
        tokio::time::timeout(Duration::from_millis(200), store.insert_project(&abandoned)).await;
    assert!(
        waiting.is_err(),
        "the write should still be waiting for the lock"
    );
    other.batch_execute("COMMIT").unwrap();

    // The writer connection finishes the abandoned write, then serves the next writer.
    store.insert_project(&project(&owner)).await.unwrap();
    assert_eq!(
        store.get_project(&owner, abandoned.id).await.unwrap(),
        abandoned
    );
    assert_eq!(
        store.list_projects(&owner, None, 10).await.unwrap().len(),
        2
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn unsupported_urls_and_unreachable_servers_are_refused_at_connect() {
    assert!(matches!(
        connect("mysql://localhost/confab", PoolOptions::default()).await,
        Err(SqlError::UnsupportedUrl)
    ));
    // Nothing listens on port 1.
    let options = PoolOptions {
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    };
    let refused = connect(
        "postgres://postgres:secret-password@127.0.0.1:1/confab",
        options,
    )
    .await;
    match refused {
        Err(e @ SqlError::Connect(_)) => assert!(!e.to_string().contains("secret-password")),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

/// A TCP relay to PostgreSQL that can be cut, to take the database away from a running store.
struct Relay {
    port: u16,
    /// Tells the relay to close everything; dropping it does too.
    stop: Option<oneshot::Sender<()>>,
    relay: JoinHandle<()>,
}

impl Relay {
    /// Relays `127.0.0.1:port` (0: any free port) to `target`.
    async fn start(port: u16, target: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.to_owned();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let relay = tokio::spawn(async move {
            let mut pipes = JoinSet::new();
            loop {
                let mut client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => break,
                    },
                    _ = &mut stopped => break,
                };
                let target = target.clone();
                pipes.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
            drop(listener);
            // An aborted task's join completes once its future, and so its sockets, are dropped.
            pipes.abort_all();
            while pipes.join_next().await.is_some() {}
        });
        Self {
            port,
            stop: Some(stop),
            relay,
        }
    }

    /// Closes the listener and every relayed connection, and returns once they are closed.
    async fn cut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            (&mut self.relay).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_calls_answer_unavailable_when_the_database_goes_away_and_recover() {
    let Some(database) = testing::postgres_database().await else {
        return;
    };
    // postgres://user@host:port/db?options=… → host:port
    let url = database.url();
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let host = authority.rsplit('@').next().unwrap().to_owned();
    let mut relay = Relay::start(0, &host).await;
    let relayed = url.replacen(&host, &format!("127.0.0.1:{}", relay.port), 1);
    let options = PoolOptions {
        max_size: 2,
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    };
    let store = connect(&relayed, options).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    store.ping().await.unwrap();

    relay.cut().await;
    match store.ping().await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let owner = owner();
    match store.get_project(&owner, ProjectId::new()).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }

    let _back = Relay::start(relay.port, &host).await;
    store.ping().await.unwrap();
    assert!(matches!(
        store.get_project(&owner, ProjectId::new()).await,
        Err(StoreError::NotFound)
    ));
}

/// The lease of a reply and the conversation's clock, across two stores sharing one
/// database: a second process cannot start a turn while the first one streams.
async fn two_processes_take_turns(database: testing::TestDatabase) {
    let first = database.store().await;
    let second = database.store().await;
    let owner = owner();
    let project = project(&owner);
    first.insert_project(&project).await.unwrap();
    let at = now();
    let conversation = Conversation {
        active_reply_id: None,
        leaf_id: None,
        model: None,
        id: ConversationId::new(),
        project_id: project.id,
        owner_id: owner.clone(),
        title: None,
        created_at: at,
        updated_at: at,
    };
    first.insert_conversation(&conversation).await.unwrap();
    let stores = [Arc::new(first), Arc::new(second)];
    let mut turns = JoinSet::new();
    for i in 0..10 {
        let store = Arc::clone(&stores[i % 2]);
        let owner = owner.clone();
        turns.spawn(async move {
            let at = now();
            let user = Message::user(conversation.id, format!("hello {i}"), None, at);
            let mut reply = Message::pending_reply(conversation.id, "m".to_owned(), at);
            reply.parent_id = Some(user.id);
            let turn = confab_core::ports::NewTurn {
                user: Some(user),
                parent: confab_core::Parent::Leaf,
                reply,
                file_ids: Vec::new(),
                quota: None,
            };
            store
                .begin_turn(&owner, &turn, at - chrono::TimeDelta::minutes(5), 200)
                .await
        });
    }
    let mut started = 0;
    while let Some(turn) = turns.join_next().await {
        match turn.unwrap() {
            Ok(_) => started += 1,
            Err(StoreError::Conflict(confab_core::error::Conflict::ReplyInProgress)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started, 1);
    let messages = stores[0]
        .list_messages(&owner, conversation.id, None, 100)
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_lets_one_of_many_concurrent_turns_start() {
    two_processes_take_turns(testing::sqlite_database()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lets_one_of_many_concurrent_turns_start() {
    let Some(database) = testing::postgres_database().await else {
        return;
    };
    two_processes_take_turns(database).await;
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A PostgreSQL connection's I/O is a task on the runtime that opened it, and each actix
/// worker is a thread with a runtime of its own. Each thread that uses the store gets
/// connections of its own, so a query never waits on another thread's runtime: not for the
/// two wake-ups of every round trip, and not at all when that thread is busy. Here the
/// runtime that opened the store (and its first connection) is not running while another
/// thread uses the store; with one pool for all threads that thread's query waited forever.
#[test]
fn a_thread_never_waits_on_connections_opened_by_another() {
    let setup = current_thread_runtime();
    let Some(database) = setup.block_on(testing::postgres_database()) else {
        return;
    };
    // Opening checks a connection: it is idle in a pool now, its I/O task on `setup`, which
    // runs tasks only inside `block_on`.
    let store = setup.block_on(database.store());

    let worker = std::thread::spawn(move || {
        current_thread_runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                let owner = owner();
                let project = project(&owner);
                store.ping().await?;
                store.insert_project(&project).await?;
                store.get_project(&owner, project.id).await
            })
            .await
        })
    });
    match worker.join().unwrap() {
        Ok(Ok(read)) => assert_eq!(read.name, "Support bot"),
        Ok(Err(e)) => panic!("the worker thread's queries failed: {e:?}"),
        Err(_) => panic!("the worker thread's queries waited on the other thread's runtime"),
    }
    drop(setup);
}

/// A SQLite file's write-ahead log is copied into the database by a background task, not by
/// whichever commit takes the log past SQLite's threshold (that commit, and every send queued
/// behind it, waited for the copy and its `fsync`s).
#[tokio::test]
async fn a_sqlite_files_log_is_checkpointed_in_the_background() {
    let dir = temp_dir();
    let path = dir.join("confab.db");
    let store = sqlite_file_store(&path).await;
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    let owner = owner();
    for _ in 0..100 {
        store.insert_project(&project(&owner)).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file never grew: its log was not checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A model that says "Hello" and completes only when the test opens its gate.
struct GatedLlm {
    gate: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl confab_core::ports::LlmStream for GatedLlm {
    fn provider(&self) -> &str {
        "gated"
    }

    fn default_model(&self) -> &str {
        "gated-1"
    }

    fn stream(&self, _: confab_core::ports::LlmRequest) -> confab_core::ports::LlmEventStream {
        use confab_core::ports::{Completion, LlmEvent};
        let gate = self.gate.lock().unwrap().take();
        Box::pin(async_stream::stream! {
            yield Ok(LlmEvent::Delta("Hello".to_owned()));
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            yield Ok(LlmEvent::Completed(Completion::default()));
        })
    }
}

struct Unlimited;

#[async_trait::async_trait]
impl confab_core::ports::SendLimiter for Unlimited {
    async fn try_acquire(&self, _: &UserId) -> Result<(), Duration> {
        Ok(())
    }

    async fn refund(&self, _: &UserId) {}
}

/// The fault of issue 15: the database is away when a reply's final write is made. The
/// write is retried until the database is back, and `done` means stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_write_made_while_postgres_is_away_is_retried_and_done_means_stored() {
    use confab_core::{CancelToken, ChatEvent, ChatService, ChatSettings, Limits, SendRequest};
    use futures::StreamExt as _;

    let Some(database) = testing::postgres_database().await else {
        return;
    };
    let url = database.url();
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let host = authority.rsplit('@').next().unwrap().to_owned();
    let mut relay = Relay::start(0, &host).await;
    let relayed = url.replacen(&host, &format!("127.0.0.1:{}", relay.port), 1);
    let options = PoolOptions {
        max_size: 2,
        connect_timeout: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(2),
        ..PoolOptions::default()
    };
    let store = Arc::new(connect(&relayed, options).await.unwrap());
    let direct = database.store().await;
    let owner = owner();
    let project = project(&owner);
    store.insert_project(&project).await.unwrap();
    let at = now();
    let conversation = Conversation {
        active_reply_id: None,
        leaf_id: None,
        model: None,
        id: ConversationId::new(),
        project_id: project.id,
        owner_id: owner.clone(),
        title: None,
        created_at: at,
        updated_at: at,
    };
    store.insert_conversation(&conversation).await.unwrap();
    let (open_gate, gate) = oneshot::channel();
    let chat = ChatService::new(
        Arc::clone(&store) as Arc<dyn ChatHistory>,
        Arc::clone(&store) as Arc<dyn confab_core::ports::PromptStore>,
        Arc::new(GatedLlm {
            gate: std::sync::Mutex::new(Some(gate)),
        }),
        Arc::new(Unlimited),
        ChatSettings::default(),
        Limits::default(),
    )
    .with_timer(Arc::new(|d| -> futures::future::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }));
    let mut events = chat
        .send(
            &confab_core::Principal {
                user_id: owner.clone(),
            },
            SendRequest {
                conversation_id: conversation.id,
                content: "hi".to_owned(),
                client_message_id: None,
                parent: confab_core::Parent::Leaf,
                file_ids: Vec::new(),
            },
            CancelToken::new(),
        )
        .await
        .unwrap();
    // The reply is under way; then the database goes away, and the model finishes.
    while !matches!(events.next().await, Some(ChatEvent::Delta { .. })) {}
    relay.cut().await;
    open_gate.send(()).unwrap();
    let last = tokio::spawn(async move { events.collect::<Vec<_>>().await });
    // The outage lasts a second (well within the 6 s lease), then the database is back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _back = Relay::start(relay.port, &host).await;
    let events = tokio::time::timeout(Duration::from_secs(30), last)
        .await
        .unwrap()
        .unwrap();

    let Some(ChatEvent::Done(done)) = events.last() else {
        panic!("expected done once stored: {events:?}");
    };
    let stored = direct
        .list_messages(&owner, conversation.id, None, 10)
        .await
        .unwrap();
    assert_eq!(
        &stored[1], done,
        "`done` was sent for a reply that is not stored"
    );
    assert_eq!(stored[1].content, "Hello");
}

/// Issue 17: a conversation written by the schema before trees, as rows of the first
/// migration: a project, a linear conversation of two turns (the second reply failed) and an
/// empty conversation. The same SQL text serves both backends (ids and times as text).
struct OldRows {
    owner: UserId,
    conversation: ConversationId,
    empty: ConversationId,
    /// The messages, oldest first.
    messages: Vec<confab_core::ids::MessageId>,
    sql: String,
}

fn old_rows() -> OldRows {
    let owner = owner();
    let project = uuid::Uuid::now_v7();
    let conversation = uuid::Uuid::now_v7();
    let empty = uuid::Uuid::now_v7();
    let messages: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
    let at = "2026-11-30T10:00:00.000000Z";
    let mut sql = format!(
        "INSERT INTO projects (id, owner_id, name, created_at, updated_at) VALUES ('{project}', '{owner}', 'Old bot', '{at}', '{at}');
         INSERT INTO conversations (id, project_id, owner_id, title, created_at, updated_at) VALUES
             ('{conversation}', '{project}', '{owner}', 'Before trees', '{at}', '{at}'),
             ('{empty}', '{project}', '{owner}', NULL, '{at}', '{at}');",
        owner = owner.as_str()
    );
    for (i, id) in messages.iter().enumerate() {
        let (role, status, model) = match i {
            0 | 2 => ("user", "complete", "NULL"),
            1 => ("assistant", "complete", "'m'"),
            _ => ("assistant", "failed", "'m'"),
        };
        sql.push_str(&format!(
            "INSERT INTO messages (id, conversation_id, role, content, status, model, created_at, touched_at)
             VALUES ('{id}', '{conversation}', '{role}', 'text {i}', '{status}', {model}, '{at}', '{at}');"
        ));
    }
    OldRows {
        owner,
        conversation: ConversationId::from_uuid(conversation),
        empty: ConversationId::from_uuid(empty),
        messages: messages
            .into_iter()
            .map(confab_core::ids::MessageId::from_uuid)
            .collect(),
        sql,
    }
}

/// After the migration the old conversation is a chain ending at its newest message, the
/// empty one has no leaf, and a new send continues the chain.
async fn assert_migrated_to_a_chain(store: &confab_sql::SqlStore, old: &OldRows) {
    let conversation = store
        .get_conversation(&old.owner, old.conversation)
        .await
        .unwrap();
    assert_eq!(conversation.leaf_id, old.messages.last().copied());
    assert_eq!(conversation.model, None);
    let empty = store.get_conversation(&old.owner, old.empty).await.unwrap();
    assert_eq!(empty.leaf_id, None);
    let branch = store
        .list_branch(&old.owner, old.conversation, None, None, 100)
        .await
        .unwrap();
    let ids: Vec<_> = branch.messages.iter().map(|m| m.message.id).collect();
    assert_eq!(
        ids, old.messages,
        "the whole line is the branch, oldest first"
    );
    let parents: Vec<_> = branch
        .messages
        .iter()
        .map(|m| m.message.parent_id)
        .collect();
    let mut expected = vec![None];
    expected.extend(old.messages[..3].iter().copied().map(Some));
    assert_eq!(parents, expected, "each message follows the one before it");
    assert!(
        branch
            .messages
            .iter()
            .all(|m| m.sibling_ids == [m.message.id])
    );

    let at = now();
    let user = Message::user(old.conversation, "after the upgrade".to_owned(), None, at);
    let mut reply = Message::pending_reply(old.conversation, "m".to_owned(), at);
    reply.parent_id = Some(user.id);
    let turn = confab_core::ports::NewTurn {
        user: Some(user),
        parent: confab_core::Parent::Leaf,
        reply,
        file_ids: Vec::new(),
        quota: None,
    };
    let read = store
        .begin_turn(&old.owner, &turn, at - chrono::TimeDelta::minutes(5), 200)
        .await
        .unwrap();
    assert_eq!(read.parent_id, old.messages.last().copied());
    let history: Vec<_> = read.history.iter().map(|m| m.id).collect();
    assert_eq!(
        history, old.messages,
        "a send after the upgrade reads the whole line"
    );
}

/// The version of the migration that turned conversations into trees.
const TREE_MIGRATION: &str = "20261206000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_turns_a_linear_conversation_into_a_chain() {
    use diesel_migrations::MigrationHarness as _;
    let database = testing::sqlite_database();
    let path = database.url().trim_start_matches("sqlite://").to_owned();
    std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
    let old = old_rows();
    {
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.run_next_migration(confab_sql::SQLITE_MIGRATIONS)
            .unwrap();
        conn.batch_execute(&old.sql).unwrap();
    }
    let store = database.store().await;
    assert_migrated_to_a_chain(&store, &old).await;
    drop(store);
    // The migration reverts (its down.sql, after those of the later migrations) and applies
    // again on the data it made.
    let mut conn = SqliteConnection::establish(&path).unwrap();
    conn.batch_execute("PRAGMA busy_timeout = 10000").unwrap();
    loop {
        let reverted = conn
            .revert_last_migration(confab_sql::SQLITE_MIGRATIONS)
            .unwrap();
        if reverted.to_string().replace('-', "") == TREE_MIGRATION {
            break;
        }
    }
    conn.run_pending_migrations(confab_sql::SQLITE_MIGRATIONS)
        .unwrap();
    drop(conn);
    let store = database.store().await;
    let branch = store
        .list_branch(&old.owner, old.conversation, None, None, 100)
        .await
        .unwrap();
    assert_eq!(branch.messages.len(), old.messages.len() + 2);
    assert_eq!(&branch_ids(&branch)[..4], &old.messages[..]);
}

fn branch_ids(branch: &confab_core::ports::Branch) -> Vec<confab_core::ids::MessageId> {
    branch.messages.iter().map(|m| m.message.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_turns_a_linear_conversation_into_a_chain() {
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::MigrationHarness as _;
    let Some(database) = testing::postgres_database().await else {
        return;
    };
    let old = old_rows();
    let (url, sql) = (database.url().to_owned(), old.sql.clone());
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .unwrap();
        conn.run_next_migration(confab_sql::POSTGRES_MIGRATIONS)
            .unwrap();
        conn.batch_execute(&sql).unwrap();
    })
    .await
    .unwrap();
    let store = database.store().await;
    assert_migrated_to_a_chain(&store, &old).await;
}

/// A write a user waits on (here a new project) goes before the background writes waiting for
/// SQLite's one writer connection (usage entries, replies' renewals and final writes): it
/// waits for the batch it joins, not for every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreground_write_passes_the_background_writes_waiting_for_the_writer() {
    use confab_core::usage::{Purpose, TokenCounts, UsageEntry, UsageLedger as _};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dir = temp_dir();
    let store = Arc::new(sqlite_file_store(&dir.join("gate.db")).await);
    let user = owner();
    let done = Arc::new(AtomicUsize::new(0));
    let mut background = JoinSet::new();
    const BACKGROUND: usize = 2_000;
    for _ in 0..BACKGROUND {
        let (store, done, user) = (Arc::clone(&store), Arc::clone(&done), user.clone());
        background.spawn(async move {
            let entry = UsageEntry {
                id: uuid::Uuid::now_v7(),
                user_id: user,
                conversation_id: None,
                message_id: None,
                model: "m".to_owned(),
                purpose: Purpose::Chat,
                tokens: TokenCounts::default(),
                estimated: false,
                cost_micros: None,
                created_at: now(),
            };
            store.record(&entry).await.unwrap();
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    // Let the background writes queue up.
    while done.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = done.load(Ordering::SeqCst);
    store.insert_project(&project(&user)).await.unwrap();
    let passed_by = done.load(Ordering::SeqCst) - before;
    while background.join_next().await.is_some() {}
    assert_eq!(done.load(Ordering::SeqCst), BACKGROUND);
    assert!(
        before + 20 < BACKGROUND,
        "the background writes were done before the test's write ({before}): nothing to pass"
    );
    // The batch it joined went first, and the batches committed before this task read the
    // count (they commit `BACKGROUND_BATCH` at a time); in a first-come queue every one
    // still queued would have.
    assert!(
        passed_by * 2 < BACKGROUND - before,
        "{passed_by} background writes went first (of {} still queued, in batches of {})",
        BACKGROUND - before,
        confab_sql::BACKGROUND_BATCH
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// PostgreSQL's `confab_fold` (PL/pgSQL since 2026-12-13-000100; since 2026-12-13-000200 it
/// returns text without a Latin letter of its table as lowered, and replaces the distinct
/// letters of other text one by one) folds every text exactly as the `translate` table of
/// 2026-12-07-000200 did: that migration's own table is the oracle.
#[tokio::test]
async fn postgres_fold_gives_what_the_first_table_gave() {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

    #[derive(QueryableByName)]
    struct Folded {
        #[diesel(sql_type = Text)]
        folded: String,
        #[diesel(sql_type = Text)]
        oracle: String,
    }

    let first = include_str!("../../../migrations/postgres/2026-12-07-000200_search/up.sql");
    let table = first
        .split_once("RETURN translate(lower($1),")
        .and_then(|(_, rest)| rest.split_once(");"))
        .map(|(args, _)| args)
        .expect("the first migration's translate table");
    let letters: Vec<&str> = table.split('\'').collect();
    let [_, from, _, to, _] = letters[..] else {
        panic!("two quoted strings in {table:?}");
    };
    assert!(from.chars().count() > 500 && from.chars().count() == to.chars().count());

    let Some(database) = testing::postgres_database().await else {
        return;
    };
    let _store = database.store().await;
    let mut conn = AsyncPgConnection::establish(database.url()).await.unwrap();
    let mut inputs: Vec<String> = [
        "",
        "Hello World",
        "plain ascii, digits 0123 and ~!@#$%^&*()_+{}|:\"<>? \t\n",
        "Café CRÈME brûlée",
        "ÆSIR Straße Øresund Łódź İstanbul",
        "mixed: naïve résumé ascii then ñ",
        "Ελληνικά Кириллица 日本語 🙂",
        "Le café était très bon, mais la crème brûlée était décevante. Où est la gare? Ça dépend.",
        "Tiếng Việt có nhiều dấu thanh và chữ cái đặc biệt như ă â đ ê ô ơ ư. ĂÂĐÊÔƠƯ × ÷",
        "中文的句子没有拉丁字母，但有标点符号。",
        "Łęk Ŝŝ ḃ ạ Việt",
        "ASCII only UPPER lower MiXeD",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    inputs.push(from.to_owned());
    inputs.push(from.to_uppercase());
    inputs.push(format!("{} {}", "a long ascii reply ".repeat(50), "é"));
    for input in &inputs {
        let query = diesel::sql_query(
            "SELECT confab_fold($1) AS folded, translate(lower($1), $2, $3) AS oracle",
        )
        .bind::<Text, _>(input)
        .bind::<Text, _>(from)
        .bind::<Text, _>(to);
        let row: Folded = RunQueryDsl::get_result(query, &mut conn).await.unwrap();
        assert_eq!(row.folded, row.oracle, "folding {input:?}");
    }
    let query = diesel::sql_query("SELECT confab_fold('Café') AS folded, 'cafe' AS oracle");
    let row: Folded = RunQueryDsl::get_result(query, &mut conn).await.unwrap();
    assert_eq!(row.folded, row.oracle);
}
