# Confab's everyday commands. `just` with no recipe lists them. None is required:
# each recipe is a plain cargo command you can run yourself.

# List the recipes.
default:
    @just --list

# Start the server with the embedded defaults (SQLite, dev sign-in, echo model) at http://127.0.0.1:8000.
run:
    cargo run

# Run the whole test suite (PostgreSQL and Chromium tests skip loudly when absent, outside CI).
test:
    cargo test --workspace

# Format, lint and test exactly as CI does.
ci:
    bash .ci/run

# Lints only.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Apply database migrations to DATABASE_URL and exit.
migrate:
    cargo run -- migrate

# Print the effective configuration (secrets masked).
config:
    cargo run -- config

# Start a throwaway PostgreSQL database for local runs (expects a local server with trust auth).
db-create name="confab":
    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE {{name}}'

# Run against PostgreSQL.
run-postgres name="confab":
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/{{name}} cargo run

# The load benchmark and the micro-benchmarks; figures go to docs/benchmarks.md.
bench:
    cargo run --release -p confab-bench
