//! Configuration at start-up, seen from outside the real process: what stops the start, what
//! `confab config` prints, and that no password reaches the output.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Scratch, Server, base_env, command, free_port, set};

/// Runs `confab` with `args` to its end. A process still running after a generous limit
/// (one that started serving although it should have refused) is killed and fails the test.
fn run(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let mut child = command(dir, env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "confab {args:?} did not exit: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Defect 7: these values were accepted and panicked (or misbehaved) later.
#[test]
fn absurd_numbers_stop_the_start_naming_the_variable_the_value_and_the_range() {
    let dir = Scratch::new("absurd");
    for (var, value, range) in [
        (
            "CONFAB_REPLY_LEASE_SECS",
            "10000000000000000000",
            "3 to 300 s",
        ),
        (
            "CONFAB_LLM_TIMEOUT_SECS",
            "18446744073709551615",
            "1 to 86400 s",
        ),
        (
            "CONFAB_DB_CONNECT_TIMEOUT_SECS",
            "18446744073709551615",
            "1 to 600 s",
        ),
        ("CONFAB_DB_POOL_SIZE", "0", "1 to 1000"),
        ("CONFAB_DB_POOL_SIZE", "1000000000", "1 to 1000"),
        ("CONFAB_WORKERS", "0", "1 to 1024"),
    ] {
        let mut env = base_env(dir.path(), free_port());
        set(&mut env, var, value);
        let output = run(dir.path(), &env, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(stderr.contains(value), "{stderr}");
        assert!(stderr.contains(range), "{stderr}");
    }
}

/// Defect 7: `confab config` left out the pool size, the database timeouts, the workers and
/// the output limit. Now every key is listed with where its value came from.
#[test]
fn confab_config_lists_every_setting_with_its_source() {
    let dir = Scratch::new("config-sources");
    std::fs::write(
        dir.path().join("confab.toml"),
        "confab_sends_per_minute = 7\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), "CONFAB_CONTEXT_TOKENS=3000\n").unwrap();
    let env = base_env(dir.path(), free_port());
    let output = run(dir.path(), &env, &["config"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in [
        "CONFAB_DB_POOL_SIZE = 16   # default",
        "CONFAB_DB_CONNECT_TIMEOUT_SECS = 5   # default",
        "CONFAB_DB_WAIT_TIMEOUT_SECS = 5   # default",
        "CONFAB_WORKERS = 1   # environment",
        "CONFAB_MAX_OUTPUT_TOKENS = (not set)   # default",
        "CONFAB_SENDS_PER_MINUTE = 7   # confab.toml",
        "CONFAB_CONTEXT_TOKENS = 3000   # .env",
        "CONFAB_DEV_AUTH_SECRET = ******** (set)   # environment",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no {line:?} in:\n{stdout}"
        );
    }
}

/// Defect 3: a password given as a query parameter of `DATABASE_URL` was printed by `confab
/// config` and in the composition error.
#[test]
fn no_database_password_is_printed_by_confab_config_or_a_failed_start() {
    let dir = Scratch::new("db-secret");
    let mut env = base_env(dir.path(), free_port());
    // Nothing listens on this port: opening the database fails.
    let url = format!(
        "postgres://confab:userinfo-secret@127.0.0.1:{}/confab?sslmode=prefer&password=query-secret",
        free_port()
    );
    set(&mut env, "DATABASE_URL", &url);
    set(&mut env, "CONFAB_DB_CONNECT_TIMEOUT_SECS", "2");

    let config = run(dir.path(), &env, &["config"]);
    let stdout = String::from_utf8_lossy(&config.stdout);
    assert!(
        stdout.contains("DATABASE_URL = postgres://confab:***@127.0.0.1"),
        "{stdout}"
    );

    let start = run(dir.path(), &env, &[]);
    assert!(!start.status.success());
    let stderr = String::from_utf8_lossy(&start.stderr);
    assert!(
        stderr.contains("the database could not be opened"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1"), "{stderr}");

    for printed in [&stdout, &stderr] {
        assert!(!printed.contains("userinfo-secret"), "{printed}");
        assert!(!printed.contains("query-secret"), "{printed}");
    }
}

/// Defect 3: the start-up log line named the database with its query password.
#[tokio::test]
async fn the_start_up_log_names_the_adapters_without_the_database_password() {
    let Some(database) = confab_sql::testing::postgres_database().await else {
        return;
    };
    let dir = Scratch::new("db-secret-log");
    let mut env = base_env(dir.path(), free_port());
    // PostgreSQL here trusts local connections: the password is sent and ignored.
    let url = format!("{}&password=query-secret", database.url());
    set(&mut env, "DATABASE_URL", &url);
    let server = Server::start(dir.path(), &env).await;
    let logs = server.logs();
    assert!(logs.contains("composed adapters"), "{logs}");
    assert!(
        logs.contains("auth=\"dev\"") || logs.contains("auth=dev"),
        "{logs}"
    );
    assert!(logs.contains("password=***"), "{logs}");
    assert!(!logs.contains("query-secret"), "{logs}");
}
