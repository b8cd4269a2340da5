//! The machine's own floor under the figures, measured in the same run: how long a sleeping
//! thread takes to run again once another thread wakes it, and how long PostgreSQL takes to
//! answer, at the pace the benchmark works at (a request every 20 ms, the machine idle in
//! between). Every delta through the server wakes one thread more than the direct path does,
//! and every send waits for PostgreSQL's answer to its turn: where a target is below these,
//! no change to the server can meet it on this machine.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::BenchError;
use crate::stats::Samples;

/// How long each probe sleeps between two measurements: the fake provider's pace.
const IDLE: Duration = Duration::from_millis(20);

/// Samples per probe (each after an idle period: about 6 s per probe).
const SAMPLES: usize = 300;

/// p50 and p99 of one probe, µs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Latency {
    pub p50_us: u32,
    pub p99_us: u32,
}

impl Latency {
    fn of(mut samples: Samples) -> Option<Self> {
        Some(Self {
            p50_us: samples.percentile(50.0)?,
            p99_us: samples.percentile(99.0)?,
        })
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// From one thread writing a byte after sleeping [`IDLE`] to another thread, blocked reading
/// it, running again.
pub fn wake_up() -> Result<Option<Latency>, BenchError> {
    let (mut writer, mut reader) = UnixStream::pair()?;
    let base = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        for _ in 0..SAMPLES {
            std::thread::sleep(IDLE);
            let sent = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            writer.write_all(&sent.to_le_bytes())?;
        }
        Ok(())
    });
    let mut samples = Samples::default();
    let mut sent = [0_u8; 8];
    for _ in 0..SAMPLES {
        reader.read_exact(&mut sent)?;
        let woke = base.elapsed();
        let sent = Duration::from_nanos(u64::from_le_bytes(sent));
        samples.push(micros(woke.saturating_sub(sent)));
    }
    sender
        .join()
        .map_err(|_| BenchError::Setup("the wake-up probe's thread panicked".to_owned()))??;
    Ok(Latency::of(samples))
}

/// PostgreSQL's answers to one client.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PostgresFloor {
    /// `SELECT 1`: one round trip.
    pub select_one: Latency,
    /// `BEGIN`, an insert of two rows, an update of another, `COMMIT`, sent at once (one round
    /// trip, like the send's turn) and committed durably.
    pub write_transaction: Latency,
}

/// Measures [`PostgresFloor`] on `url` (a throw-away database: it creates two tables).
pub async fn postgres(url: &str) -> Result<Option<PostgresFloor>, BenchError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE floor_parent (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
             CREATE TABLE floor_child (id bigserial PRIMARY KEY, parent int NOT NULL REFERENCES floor_parent (id),
                                       content text NOT NULL, at timestamptz NOT NULL);
             INSERT INTO floor_parent VALUES (1, now());",
        )
        .await?;
    let select = client.prepare("SELECT 1").await?;
    let begin = client.prepare("BEGIN").await?;
    let insert = client
        .prepare(
            "INSERT INTO floor_child (parent, content, at) VALUES (1, $1, now()), (1, '', now())",
        )
        .await?;
    let update = client
        .prepare("UPDATE floor_parent SET updated_at = now() WHERE id = 1")
        .await?;
    let commit = client.prepare("COMMIT").await?;

    let mut selects = Samples::default();
    let mut writes = Samples::default();
    for _ in 0..SAMPLES {
        tokio::time::sleep(IDLE).await;
        let started = Instant::now();
        client.query_one(&select, &[]).await?;
        selects.push(micros(started.elapsed()));

        tokio::time::sleep(IDLE).await;
        let started = Instant::now();
        // Each request is sent when first polled: all four go out before any answer is read.
        futures::try_join!(
            client.execute(&begin, &[]),
            client.execute(&insert, &[&"Hello, how are you?"]),
            client.execute(&update, &[]),
            client.execute(&commit, &[]),
        )?;
        writes.push(micros(started.elapsed()));
    }
    drop(client);
    let _ = driver.await;
    Ok(Latency::of(selects)
        .zip(Latency::of(writes))
        .map(|(select_one, write_transaction)| PostgresFloor {
            select_one,
            write_transaction,
        }))
}
