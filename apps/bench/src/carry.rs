//! The export and import benchmark (`--suites carry`, issue 18): an import of generated
//! ChatGPT conversations (`--carry-conversations` of `--carry-messages` messages each, by
//! default 1,000 × 100 = 100,000 messages), then the export of that account as a zip,
//! read as it streams. For each: the time, the bytes, and the server's resident memory
//! before and at its peak (sampled every 10 ms), so that "memory stays flat whatever the
//! size" is a figure.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::BenchError;
use crate::procfs;
use crate::server::Tenant;

/// The figures of one run of the carry suite.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CarryReport {
    pub conversations: usize,
    pub messages: usize,
    pub import: Option<Transfer>,
    pub export: Option<Transfer>,
}

/// One import or export.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Transfer {
    pub bytes: u64,
    pub millis: u128,
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
}

impl Transfer {
    #[must_use]
    pub const fn growth_kib(&self) -> u64 {
        self.rss_peak_kib.saturating_sub(self.rss_before_kib)
    }
}

impl CarryReport {
    pub fn markdown(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "### Export and import ({} conversations, {} messages)\n",
            self.conversations, self.messages
        );
        let _ = writeln!(
            out,
            "| | bytes | time | server RSS before | peak | growth |\n|---|---:|---:|---:|---:|---:|"
        );
        for (name, t) in [
            ("import (ChatGPT conversations.json)", &self.import),
            ("export (`GET /api/export`, zip)", &self.export),
        ] {
            if let Some(t) = t {
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} ms | {} KiB | {} KiB | {} KiB |",
                    t.bytes,
                    t.millis,
                    t.rss_before_kib,
                    t.rss_peak_kib,
                    t.growth_kib()
                );
            }
        }
        out.push('\n');
    }
}

/// ChatGPT's `conversations.json` with `conversations` conversations of `messages`
/// messages each (a chain of alternating user and assistant messages).
#[must_use]
pub fn chatgpt_export(conversations: usize, messages: usize) -> Vec<u8> {
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit — ünïcode ✓. ".repeat(3);
    let list: Vec<Value> = (0..conversations)
        .map(|c| {
            let mut mapping = serde_json::Map::new();
            mapping.insert(
                "root".to_owned(),
                json!({"id": "root", "parent": null, "children": ["m0"], "message": null}),
            );
            for m in 0..messages {
                let id = format!("m{m}");
                let parent = if m == 0 {
                    "root".to_owned()
                } else {
                    format!("m{}", m - 1)
                };
                let role = if m % 2 == 0 { "user" } else { "assistant" };
                #[allow(clippy::cast_precision_loss)]
                let t = 1_700_000_000.0 + (c * messages + m) as f64;
                mapping.insert(
                    id.clone(),
                    json!({"id": id, "parent": parent,
                        "children": if m + 1 < messages { vec![format!("m{}", m + 1)] } else { Vec::new() },
                        "message": {"id": id, "author": {"role": role}, "create_time": t,
                            "content": {"content_type": "text", "parts": [format!("{m}: {text}")]},
                            "metadata": {"model_slug": "gpt-4o"}}}),
                );
            }
            json!({"title": format!("conversation {c}"), "create_time": 1_700_000_000.0,
                "update_time": 1_700_000_001.0, "conversation_id": format!("bench-{c}"),
                "current_node": format!("m{}", messages.saturating_sub(1)), "mapping": mapping})
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_default()
}

/// Samples the process's RSS every 10 ms until told to stop; answers the peak.
fn sample_peak(pid: u32) -> (watch::Sender<bool>, tokio::task::JoinHandle<u64>) {
    let (stop, mut stopped) = watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut peak = procfs::rss_kib(pid).unwrap_or(0);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
            peak = peak.max(procfs::rss_kib(pid).unwrap_or(0));
        }
        peak.max(procfs::rss_kib(pid).unwrap_or(0))
    });
    (stop, sampler)
}

async fn finish_sampling(
    stop: watch::Sender<bool>,
    sampler: tokio::task::JoinHandle<u64>,
) -> Result<u64, BenchError> {
    let _ = stop.send(true);
    sampler
        .await
        .map_err(|e| BenchError::Setup(format!("the RSS sampler failed: {e}")))
}

/// Imports the generated conversations into the tenant's project, then exports the
/// account, measuring each.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    pid: u32,
    tenant: &Tenant,
    conversations: usize,
    messages: usize,
) -> Result<CarryReport, BenchError> {
    let mut report = CarryReport {
        conversations,
        messages: conversations * messages,
        ..CarryReport::default()
    };
    let file = chatgpt_export(conversations, messages);
    let bytes = file.len() as u64;
    eprintln!("carry: importing {conversations} conversations ({bytes} bytes)");
    let rss_before_kib = procfs::rss_kib(pid).unwrap_or(0);
    let (stop, sampler) = sample_peak(pid);
    let started = Instant::now();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(file).file_name("conversations.json"),
    );
    let response = http
        .post(format!("{base}/api/projects/{}/import", tenant.project_id))
        .bearer_auth(&tenant.token)
        .timeout(Duration::from_secs(3_600))
        .multipart(form)
        .send()
        .await?;
    let status = response.status();
    let answer = response.text().await?;
    let millis = started.elapsed().as_millis();
    let rss_peak_kib = finish_sampling(stop, sampler).await?;
    if !status.is_success() {
        return Err(BenchError::Setup(format!("import: {status}: {answer}")));
    }
    report.import = Some(Transfer {
        bytes,
        millis,
        rss_before_kib,
        rss_peak_kib,
    });
    eprintln!("carry: import {:?}", report.import);

    eprintln!("carry: exporting the account");
    let rss_before_kib = procfs::rss_kib(pid).unwrap_or(0);
    let (stop, sampler) = sample_peak(pid);
    let started = Instant::now();
    let response = http
        .get(format!("{base}/api/export"))
        .bearer_auth(&tenant.token)
        .timeout(Duration::from_secs(3_600))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(BenchError::Setup(format!("export: {}", response.status())));
    }
    let mut body = response.bytes_stream();
    let mut bytes = 0_u64;
    while let Some(chunk) = body.next().await {
        bytes += chunk?.len() as u64;
    }
    let millis = started.elapsed().as_millis();
    let rss_peak_kib = finish_sampling(stop, sampler).await?;
    report.export = Some(Transfer {
        bytes,
        millis,
        rss_before_kib,
        rss_peak_kib,
    });
    eprintln!("carry: export {:?}", report.export);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_export_has_the_asked_shape() {
        let file = chatgpt_export(3, 4);
        let list: Vec<Value> = serde_json::from_slice(&file).unwrap();
        assert_eq!(list.len(), 3);
        // The root and four messages.
        assert_eq!(list[2]["mapping"].as_object().unwrap().len(), 5);
        assert_eq!(list[0]["current_node"], "m3");
    }
}
