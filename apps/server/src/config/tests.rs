use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_sources(&Sources::from_pairs(pairs.iter().copied()))
}

fn shown<'a>(s: &'a Settings, name: &str) -> &'a Shown {
    s.shown.iter().find(|l| l.name == name).unwrap()
}

#[test]
fn nothing_set_gives_dev_auth_echo_and_sqlite() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(s.database.url.expose_secret(), "sqlite://data/confab.db");
    assert_eq!(s.database.pool.max_size, 16);
    assert!(matches!(&s.files, FilesSettings::Dir(d) if d.as_os_str() == "data/files"));
    assert_eq!(s.auth.provider(), "dev");
    assert!(matches!(s.llm, LlmSettings::Echo { pace } if pace == Duration::from_millis(30)));
    assert_eq!(s.model_name(), "echo-1");
    assert_eq!(s.sends_per_minute, 20);
    assert_eq!(s.limits.upload_bytes, 25 * 1024 * 1024);
    assert_eq!(s.chat.reply_lease, chrono::Duration::seconds(6));
    assert_eq!(s.shutdown_grace, Duration::from_secs(8));
    assert_eq!(s.log_format, LogFormat::Human);
}

#[test]
fn an_invalid_value_names_its_variable() {
    for (var, value) in [
        ("CONFAB_BIND", "nope"),
        ("CONFAB_LLM", "gpt"),
        ("CONFAB_SENDS_PER_MINUTE", "-1"),
        ("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", "maybe"),
    ] {
        let err = settings(&[(var, value)]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{var}:")), "{err}");
    }
}

/// Defect 7: numbers that panicked later (an `Instant` overflow, a pool of 0 or 10^9, no
/// workers) stop the start, naming the variable, the value and the allowed range.
#[test]
fn absurd_numbers_are_refused_naming_the_variable_the_value_and_the_range() {
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
        ("CONFAB_DB_WAIT_TIMEOUT_SECS", "99999999999", "1 to 600 s"),
        ("CONFAB_DB_POOL_SIZE", "0", "1 to 1000"),
        ("CONFAB_DB_POOL_SIZE", "1000000000", "1 to 1000"),
        ("CONFAB_WORKERS", "0", "1 to 1024"),
        ("CONFAB_MAX_OUTPUT_TOKENS", "0", "1 to 1000000"),
        (
            "CONFAB_SHUTDOWN_GRACE_SECS",
            "99999999999999",
            "0 to 3600 s",
        ),
        ("CONFAB_DEV_TOKEN_TTL_SECS", "0", "1 to 31622400 s"),
        ("CONFAB_LLM_IDLE_TIMEOUT_SECS", "0", "1 to 3600 s"),
    ] {
        let err = settings(&[(var, value)]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{var}:")), "{err}");
        assert!(err.contains(value), "{err}");
        assert!(err.contains(range), "{err}");
    }
    // Keys of the model that is not chosen are checked too.
    assert!(settings(&[("CONFAB_LLM_MAX_RETRIES", "1000")]).is_err());
}

#[test]
fn an_openai_key_selects_openai_and_is_never_printed() {
    let s = settings(&[("OPENAI_API_KEY", "sk-secret-123")]).unwrap();
    assert!(matches!(
        s.llm,
        LlmSettings::OpenAi {
            compatible: false,
            ..
        }
    ));
    assert_eq!(s.model_name(), "gpt-4.1-mini");
    let printed = s.to_string();
    assert!(!printed.contains("sk-secret-123"));
    assert!(
        printed.contains("OPENAI_API_KEY = ******** (set)"),
        "{printed}"
    );
    assert!(printed.contains("CONFAB_LLM = openai"), "{printed}");
    assert!(!format!("{s:?}").contains("sk-secret-123"));
}

#[test]
fn http2_prior_knowledge_is_off_unless_asked_for() {
    let h2 = |flag: &str| match settings(&[
        ("OPENAI_API_KEY", "sk-x"),
        ("CONFAB_LLM_HTTP2_PRIOR_KNOWLEDGE", flag),
    ])
    .unwrap()
    .llm
    {
        LlmSettings::OpenAi { config, .. } => config.provider.http2_prior_knowledge,
        LlmSettings::Echo { .. } => panic!("expected openai"),
    };
    assert!(!h2(""));
    assert!(!h2("0"));
    assert!(h2("true"));
}

#[test]
fn a_clerk_key_selects_clerk() {
    // `pk_test_` and the base64 of `clerk.example.com$`.
    let s = settings(&[("CLERK_PUBLISHABLE_KEY", "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k")]).unwrap();
    assert_eq!(s.auth.provider(), "clerk");
    let err = settings(&[("CONFAB_AUTH", "clerk")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("CLERK_PUBLISHABLE_KEY"), "{err}");
}

#[test]
fn local_accounts_on_several_replicas_need_a_shared_secret() {
    let local = ("CONFAB_AUTH", "local");
    let redis = ("CONFAB_REDIS_URL", "redis://127.0.0.1:6379");
    let err = settings(&[local, redis]).unwrap_err().to_string();
    assert!(err.starts_with("CONFAB_LOCAL_AUTH_SECRET:"), "{err}");
    assert!(err.contains("CONFAB_REDIS_URL"), "{err}");
    let secret = (
        "CONFAB_LOCAL_AUTH_SECRET",
        "0123456789abcdef0123456789abcdef",
    );
    assert!(settings(&[local, redis, secret]).is_ok());
    // One process may keep its random per-start key.
    assert!(settings(&[local]).is_ok());
}

#[test]
fn dev_auth_refuses_a_public_address_unless_allowed() {
    let s = settings(&[("CONFAB_BIND", "0.0.0.0:8000")]).unwrap();
    let err = s.check_safe_to_serve().unwrap_err().to_string();
    assert!(err.contains("CONFAB_DEV_AUTH_ALLOW_REMOTE"), "{err}");
    let s = settings(&[
        ("CONFAB_BIND", "0.0.0.0:8000"),
        ("CONFAB_DEV_AUTH_ALLOW_REMOTE", "1"),
    ])
    .unwrap();
    assert!(s.check_safe_to_serve().is_ok());
}

#[test]
fn environment_beats_dotenv_beats_toml_and_each_value_says_where_it_came_from() {
    let dir = std::env::temp_dir().join(format!("confab-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("confab.toml");
    let dotenv = dir.join(".env");
    std::fs::write(
        &toml,
        "confab_sends_per_minute = 5\nCONFAB_CONTEXT_TOKENS = 1000\nCONFAB_ECHO_PACE_MS = 7\n\
         clerk_authorized_parties = [\"https://a.example\", \"https://b.example\"]\n",
    )
    .unwrap();
    std::fs::write(
        &dotenv,
        "CONFAB_CONTEXT_TOKENS=2000\nCONFAB_ECHO_PACE_MS=8\n",
    )
    .unwrap();
    let env = [("CONFAB_ECHO_PACE_MS".to_owned(), "9".to_owned())];
    let sources = Sources::from_layers(&toml, true, &dotenv, env).unwrap();
    let s = Settings::from_sources(&sources).unwrap();
    assert_eq!(s.sends_per_minute, 5);
    assert_eq!(s.chat.context_tokens, 2000);
    assert!(matches!(s.llm, LlmSettings::Echo { pace } if pace == Duration::from_millis(9)));
    let file = Source::File(toml.display().to_string());
    assert_eq!(shown(&s, "CONFAB_SENDS_PER_MINUTE").source, file);
    assert_eq!(shown(&s, "CONFAB_CONTEXT_TOKENS").source, Source::DotEnv);
    assert_eq!(shown(&s, "CONFAB_ECHO_PACE_MS").source, Source::Env);
    assert_eq!(shown(&s, "CONFAB_BIND").source, Source::Default);
    let parties = shown(&s, "CLERK_AUTHORIZED_PARTIES");
    assert_eq!(parties.value, "https://a.example,https://b.example");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_malformed_settings_or_dotenv_file_is_refused_without_quoting_its_secret() {
    let dir = std::env::temp_dir().join(format!("confab-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("confab.toml");
    let dotenv = dir.join(".env");
    std::fs::write(&toml, "OPENAI_API_KEY = sk-proj-Secret123\n").unwrap();
    let err = Sources::from_layers(&toml, true, &dotenv, [])
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("Secret123"), "{err}");
    assert!(err.contains("line 1"), "{err}");
    std::fs::write(&toml, "").unwrap();
    std::fs::write(&dotenv, "OPENAI_API_KEY='sk-proj-Secret123\n").unwrap();
    let err = Sources::from_layers(&toml, true, &dotenv, [])
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("Secret123"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_empty_variable_leaves_the_value_of_the_layers_below() {
    let dir = std::env::temp_dir().join(format!("confab-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("confab.toml");
    std::fs::write(&toml, "confab_sends_per_minute = 5\n").unwrap();
    let env = [("CONFAB_SENDS_PER_MINUTE".to_owned(), " ".to_owned())];
    let sources = Sources::from_layers(&toml, true, &dir.join(".env"), env).unwrap();
    let s = Settings::from_sources(&sources).unwrap();
    assert_eq!(s.sends_per_minute, 5);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_named_settings_file_is_an_error() {
    let missing = std::env::temp_dir().join("confab-no-such-file.toml");
    assert!(Sources::from_layers(&missing, true, &missing, []).is_err());
    assert!(Sources::from_layers(&missing, false, &missing, []).is_ok());
}

/// Defect 7: `confab config` left out the pool size, both database timeouts, the workers and
/// the output limit; now it lists every key of the table, with its source.
#[test]
fn confab_config_shows_every_key_with_its_source() {
    let s = settings(&[("CONFAB_WORKERS", "3")]).unwrap();
    let printed = s.to_string();
    for key in KEYS {
        assert!(
            printed
                .lines()
                .any(|l| l.starts_with(&format!("{} = ", key.name))),
            "{} is missing from:\n{printed}",
            key.name
        );
    }
    assert!(
        printed.contains("CONFAB_WORKERS = 3   # environment"),
        "{printed}"
    );
    assert!(
        printed.contains("CONFAB_DB_POOL_SIZE = 16   # default"),
        "{printed}"
    );
}

/// Defect 3: a password in `DATABASE_URL`'s query was printed by `confab config`. No URL
/// setting prints its password, in the userinfo or the query.
#[test]
fn no_password_in_a_url_setting_is_printed() {
    let urls: Vec<(&str, String)> = KEYS
        .iter()
        .filter(|key| matches!(key.kind, Kind::Url))
        .map(|key| {
            let scheme = if key.name == "DATABASE_URL" {
                "postgres"
            } else {
                "https"
            };
            let url = format!(
                "{scheme}://u:userinfo-{0}@h/x?sslmode=require&password=query-{0}&api_key=key-{0}",
                key.name
            );
            (key.name, url)
        })
        .collect();
    assert!(urls.len() >= 6, "{urls:?}");
    let mut pairs: Vec<(&str, &str)> = urls.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("CONFAB_AUTH", "dev"));
    let s = settings(&pairs).unwrap();
    let printed = format!("{s}{s:?}");
    for (name, _) in &urls {
        for secret in ["userinfo-", "query-", "key-"] {
            assert!(!printed.contains(&format!("{secret}{name}")), "{printed}");
        }
    }
    assert!(printed.contains("sslmode=require"), "{printed}");
}

#[test]
fn a_bad_secret_is_refused_without_being_repeated() {
    let err = settings(&[("CONFAB_DEV_AUTH_SECRET", "hunter2")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("CONFAB_DEV_AUTH_SECRET"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn every_default_satisfies_its_own_key() {
    for key in KEYS {
        if let DefaultValue::Is(value) = key.default {
            assert!(key.kind.check(value).is_ok(), "{}", key.name);
        }
    }
}

/// The README's configuration table is generated from [`KEYS`]; set `CONFAB_WRITE_README=1`
/// to rewrite it.
#[test]
fn the_readme_configuration_table_is_the_key_table() {
    const START: &str =
        "<!-- configuration table: generated from apps/server/src/config/keys.rs -->\n";
    const END: &str = "<!-- end of configuration table -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme.find(START).expect("the README marks its table") + START.len();
    let end = readme[start..]
        .find(END)
        .expect("the README marks its table's end")
        + start;
    let expected = markdown_table();
    if readme[start..end] != expected && std::env::var_os("CONFAB_WRITE_README").is_some() {
        std::fs::write(
            path,
            format!("{}{expected}{}", &readme[..start], &readme[end..]),
        )
        .unwrap();
        return;
    }
    assert_eq!(
        readme[start..end],
        expected,
        "README.md's configuration table differs from the key table; \
         run with CONFAB_WRITE_README=1 to rewrite it"
    );
}
