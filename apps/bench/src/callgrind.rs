//! Instruction counts of the servers under `valgrind --tool=callgrind` (`--callgrind`): a
//! figure of CPU cost that other processes on the machine do not change, unlike CPU seconds.
//! The counters are zeroed before a measured round and dumped after it with
//! `callgrind_control`, so that start-up and setup are not counted.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// The dump files of process `pid` in `dir` are `callgrind.<pid>` (at exit) and
/// `callgrind.<pid>.<n>` (each `callgrind_control --dump`).
#[must_use]
pub fn out_pattern(dir: &Path) -> PathBuf {
    dir.join("callgrind.%p")
}

async fn control(flag: &str, pid: u32) -> Result<(), String> {
    let output = Command::new("callgrind_control")
        .args([flag, &pid.to_string()])
        .output()
        .await
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {flag} {pid}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Zeroes the counters of `pid`.
///
/// # Errors
/// When `callgrind_control` fails (the process does not run under callgrind).
pub async fn zero(pid: u32) -> Result<(), String> {
    control("--zero", pid).await
}

/// Dumps the counters of `pid` and returns the instructions counted since they were zeroed.
///
/// # Errors
/// When `callgrind_control` fails or no dump is found.
pub async fn dump(dir: &Path, pid: u32) -> Result<u64, String> {
    control("--dump", pid).await?;
    let prefix = format!("callgrind.{pid}.");
    let newest = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let n: u64 = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, entry.path()))
        })
        .max_by_key(|(n, _)| *n)
        .ok_or_else(|| format!("no callgrind dump of {pid} in {}", dir.display()))?;
    let text = std::fs::read_to_string(&newest.1).map_err(|e| e.to_string())?;
    total(&text).ok_or_else(|| format!("{}: no totals", newest.1.display()))
}

/// The `totals:` (or `summary:`) line of a dump: instructions (`Ir`, the first event).
fn total(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_the_first_event_of_the_totals_line() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) main\n3 10\ntotals: 123456\n";
        assert_eq!(total(dump), Some(123_456));
        assert_eq!(total("summary: 77 5\n"), Some(77));
        assert_eq!(total("events: Ir\n"), None);
    }
}
