//! Builds the browser client (crate `confab-web`, folder `frontend/`) and embeds it in the
//! server, so that `cargo run` on a fresh machine serves the real client with nothing
//! installed by hand:
//!
//! 1. adds the `wasm32-unknown-unknown` target when the toolchain lacks it (`rustup target add`);
//! 2. runs a nested `cargo build -p confab-web --target wasm32-unknown-unknown --profile
//!    wasm-release --target-dir <workspace>/target/frontend` (its own target dir, so it never
//!    waits on the lock of the build that runs this script);
//! 3. generates the JavaScript glue with the `wasm-bindgen-cli-support` library, pinned to the
//!    same version as the `wasm-bindgen` crate;
//! 4. writes index.html, `app-<hash>.js`, `app-<hash>_bg.wasm`, `app-<hash>.css` and the icon
//!    into `OUT_DIR/web`, each with a gzip copy, and `OUT_DIR/web_assets.rs`, the table that
//!    `src/web_assets.rs` includes.
//!
//! `CONFAB_SKIP_WEB_BUILD=1` embeds a small placeholder page instead (fast iteration on the
//! server only). A failed client build fails this script: it never falls back silently.

use std::{
    env,
    ffi::OsString,
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

use flate2::{Compression, write::GzEncoder};
use sha2::{Digest, Sha256};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";
const SKIP_VAR: &str = "CONFAB_SKIP_WEB_BUILD";

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!();
            eprintln!(
                "error: the browser client (crate confab-web, folder frontend/) could not be built."
            );
            eprintln!("{e}");
            eprintln!();
            eprintln!(
                "To build only the server while working on it, set {SKIP_VAR}=1: it embeds a placeholder page instead of the client."
            );
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("apps/server is expected two levels below the workspace root")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let web_dir = out_dir.join("web");

    for watched in [
        "frontend/src",
        "frontend/Cargo.toml",
        "frontend/index.html",
        "frontend/static",
        "apps/api-types/src",
        "apps/api-types/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={SKIP_VAR}");

    if fs::exists(&web_dir)? {
        fs::remove_dir_all(&web_dir)?;
    }
    fs::create_dir_all(&web_dir)?;

    let skip = env::var(SKIP_VAR).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    let assets = if skip {
        println!(
            "cargo:warning={SKIP_VAR} is set: the server embeds a placeholder page, not the browser client"
        );
        placeholder_assets()
    } else {
        build_client(&workspace)?
    };
    write_assets(&web_dir, &out_dir, &assets, skip)
}

/// A file to embed, before compression.
struct Built {
    /// URL path without the leading slash; also the file name in `OUT_DIR/web`.
    name: String,
    content_type: &'static str,
    bytes: Vec<u8>,
    /// Hashed name: cached for a year by browsers.
    immutable: bool,
}

fn build_client(workspace: &Path) -> Result<Vec<Built>, BoxError> {
    let started = Instant::now();
    ensure_wasm_target()?;
    let target_dir = workspace.join("target").join("frontend");
    let wasm_path = compile_wasm(workspace, &target_dir)?;
    // Plain lines (not `cargo:`) are only shown with `cargo build -vv`.
    println!("confab-web: wasm compiled in {:.1?}", started.elapsed());
    let started = Instant::now();

    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm_path)
        .out_name("app")
        .web(true)
        .map_err(|e| format!("wasm-bindgen: {e:#}"))?
        .typescript(false)
        .debug(false)
        .keep_debug(false)
        .demangle(false)
        .remove_name_section(true)
        .remove_producers_section(true);
    let mut output = bindgen
        .generate_output()
        .map_err(|e| format!("wasm-bindgen could not generate the JavaScript glue: {e:#}"))?;
    if !output.snippets().values().all(Vec::is_empty) || !output.local_modules().is_empty() {
        return Err("the client uses JavaScript snippets (inline_js/module); build.rs does not embed those yet".into());
    }
    let js_glue = output.js().to_owned();
    let wasm = output.wasm_mut().emit_wasm();
    println!("confab-web: glue generated in {:.1?}", started.elapsed());

    let wasm_name = format!("app-{}_bg.wasm", short_hash(&wasm));
    // The glue exports an init function and does not call it: start the app from the module
    // itself, so index.html needs no inline script (the CSP allows only 'self').
    if !js_glue.contains("function __wbg_init") {
        return Err(
            "wasm-bindgen's glue has no __wbg_init function: was the pinned version changed?"
                .into(),
        );
    }
    let js = format!(
        "{js_glue}\n__wbg_init({{ module_or_path: new URL(\"{wasm_name}\", import.meta.url) }});\n"
    );
    let js_name = format!("app-{}.js", short_hash(js.as_bytes()));

    let frontend = workspace.join("frontend");
    let css = read(&frontend.join("static/app.css"))?;
    let css_name = format!("app-{}.css", short_hash(&css));
    let icon = read(&frontend.join("static/favicon.svg"))?;
    let icon_name = format!("favicon-{}.svg", short_hash(&icon));
    let template = String::from_utf8(read(&frontend.join("index.html"))?)?;
    let index = template
        .replace("{{APP_JS}}", &js_name)
        .replace("{{APP_WASM}}", &wasm_name)
        .replace("{{APP_CSS}}", &css_name)
        .replace("{{FAVICON}}", &icon_name);
    if index.contains("{{") {
        return Err("frontend/index.html has a placeholder build.rs does not know".into());
    }

    Ok(vec![
        Built {
            name: "index.html".into(),
            content_type: "text/html; charset=utf-8",
            bytes: index.into_bytes(),
            immutable: false,
        },
        Built {
            name: js_name,
            content_type: "text/javascript; charset=utf-8",
            bytes: js.into_bytes(),
            immutable: true,
        },
        Built {
            name: wasm_name,
            content_type: "application/wasm",
            bytes: wasm,
            immutable: true,
        },
        Built {
            name: css_name,
            content_type: "text/css; charset=utf-8",
            bytes: css,
            immutable: true,
        },
        Built {
            name: icon_name,
            content_type: "image/svg+xml",
            bytes: icon,
            immutable: true,
        },
    ])
}

fn placeholder_assets() -> Vec<Built> {
    let page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Confab</title></head>\
<body><main><h1>Confab</h1><p>This server was built with CONFAB_SKIP_WEB_BUILD=1, so the browser \
client is not included. The API is at <code>/api</code>; its documentation is at \
<a href=\"/docs\">/docs</a>. Rebuild without CONFAB_SKIP_WEB_BUILD to get the client.</p></main></body></html>\n";
    vec![Built {
        name: "index.html".into(),
        content_type: "text/html; charset=utf-8",
        bytes: page.as_bytes().to_vec(),
        immutable: false,
    }]
}

/// Adds the wasm target to the toolchain when it is missing (rustup does not install the
/// `targets` of rust-toolchain.toml for a toolchain that is already installed).
fn ensure_wasm_target() -> Result<(), BoxError> {
    if wasm_target_installed() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| {
            format!(
                "the {WASM_TARGET} target is not installed and rustup could not be run ({e}). \
                 Install the target for this toolchain and build again."
            )
        })?;
    if !status.success() || !wasm_target_installed() {
        return Err(format!("`rustup target add {WASM_TARGET}` failed ({status})").into());
    }
    Ok(())
}

fn wasm_target_installed() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|sysroot| {
            Path::new(sysroot.trim())
                .join("lib/rustlib")
                .join(WASM_TARGET)
                .join("lib")
                .is_dir()
        })
}

/// Environment that the outer cargo gives build scripts and that must not reach the nested
/// build: flags and wrappers meant for the host build (clippy sets RUSTC_WORKSPACE_WRAPPER),
/// the outer target dir, and the variables describing this build script.
fn leaks_into_nested_cargo(key: &str) -> bool {
    const KEEP: [&str; 2] = ["CARGO_HOME", "CARGO_MAKEFLAGS"];
    const KEEP_PREFIXES: [&str; 4] = [
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
    ];
    const DROP: [&str; 14] = [
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "__CARGO_FIX_PLZ",
    ];
    if KEEP.contains(&key) || KEEP_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return false;
    }
    key.starts_with("CARGO_") || DROP.contains(&key)
}

fn compile_wasm(workspace: &Path, target_dir: &Path) -> Result<PathBuf, BoxError> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args([
        "build",
        "-p",
        "confab-web",
        "--target",
        WASM_TARGET,
        "--profile",
        PROFILE,
        "--target-dir",
    ]);
    cmd.arg(target_dir);
    for (key, _) in env::vars_os() {
        if key.to_str().is_some_and(leaks_into_nested_cargo) {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("could not run cargo for the wasm build: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo build -p confab-web --target {WASM_TARGET} --profile {PROFILE}` failed ({status}); \
             the compiler's messages are above."
        )
        .into());
    }
    let wasm = target_dir
        .join(WASM_TARGET)
        .join(PROFILE)
        .join("confab_web.wasm");
    if !wasm.is_file() {
        return Err(format!("the wasm build succeeded but {} is missing", wasm.display()).into());
    }
    Ok(wasm)
}

fn read(path: &Path) -> Result<Vec<u8>, BoxError> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// The first 16 hex digits of the SHA-256: enough to tell builds apart.
fn short_hash(bytes: &[u8]) -> String {
    full_hash(bytes)[..16].to_owned()
}

fn full_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, BoxError> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

fn write_assets(
    web_dir: &Path,
    out_dir: &Path,
    assets: &[Built],
    placeholder: bool,
) -> Result<(), BoxError> {
    let started = Instant::now();
    let mut table =
        String::from("// Generated by apps/server/build.rs: the embedded browser client.\n\n");
    let mut report = String::new();
    let mut index = None;
    let mut entries = String::new();
    for asset in assets {
        fs::write(web_dir.join(&asset.name), &asset.bytes)?;
        let compressed = gzip(&asset.bytes)?;
        // Only worth serving when it is smaller.
        let gz_expr = if compressed.len() < asset.bytes.len() {
            let gz_name = format!("{}.gz", asset.name);
            fs::write(web_dir.join(&gz_name), &compressed)?;
            format!("Some(include_bytes!(concat!(env!(\"OUT_DIR\"), \"/web/{gz_name}\")))")
        } else {
            "None".to_owned()
        };
        let _ = writeln!(
            report,
            "{}\t{} bytes\t{} gzipped",
            asset.name,
            asset.bytes.len(),
            compressed.len()
        );
        let path = if asset.name == "index.html" {
            "/".to_owned()
        } else {
            format!("/{}", asset.name)
        };
        let expr = format!(
            "Asset {{ path: {path:?}, content_type: {ct:?}, immutable: {imm}, etag: {etag:?}, \
             body: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/web/{name}\")), gzip: {gz_expr} }}",
            ct = asset.content_type,
            imm = asset.immutable,
            etag = format!("\"{}\"", short_hash(&asset.bytes)),
            name = asset.name,
        );
        if asset.name == "index.html" {
            index = Some(expr);
        } else {
            let _ = writeln!(entries, "    {expr},");
        }
    }
    let index = index.ok_or("no index.html was produced")?;
    let _ = writeln!(
        table,
        "/// The page of the client: every client route answers with it."
    );
    let _ = writeln!(table, "static INDEX: Asset = {index};\n");
    let _ = writeln!(table, "/// The hashed files the page loads.");
    let _ = writeln!(table, "static ASSETS: &[Asset] = &[\n{entries}];\n");
    let _ = writeln!(table, "/// True when built with {SKIP_VAR}=1.");
    let _ = writeln!(
        table,
        "#[allow(dead_code)]\nconst PLACEHOLDER: bool = {placeholder};"
    );
    fs::write(out_dir.join("web_assets.rs"), table)?;
    println!(
        "confab-web: files written and compressed in {:.1?}",
        started.elapsed()
    );
    print!("{report}");
    fs::write(web_dir.join("SIZES.txt"), report)?;
    Ok(())
}
