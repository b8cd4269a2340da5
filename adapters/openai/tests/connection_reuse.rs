//! A reply's HTTP/1.1 connection goes back to the pool even when the caller drops the stream
//! at the terminal event and the provider sends the end of the chunked body a moment later:
//! the next reply must not pay a new TCP (and, in production, TLS) handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use confab_core::model::Role;
use confab_core::ports::{LlmEvent, LlmMessage, LlmRequest, LlmStream};
use confab_openai::{OpenAiConfig, ResponsesLlm};
use futures::StreamExt;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const EVENTS: &[&str] = &[
    r#"{"type":"response.output_text.delta","delta":"Hello"}"#,
    r#"{"type":"response.completed","response":{"model":"m","usage":{"input_tokens":3,"output_tokens":1}}}"#,
];

/// Reads one request (head and `content-length` body); false when the peer closed.
async fn read_request(socket: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A provider that answers every request on a connection with `EVENTS`, then sends the
/// chunked body's end 50 ms after the terminal event; counts the connections it accepts.
async fn provider() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                while read_request(&mut socket).await {
                    let mut out = String::from(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         transfer-encoding: chunked\r\n\r\n",
                    );
                    for data in EVENTS {
                        let event = format!("data: {data}\n\n");
                        out.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
                    }
                    socket.write_all(out.as_bytes()).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    socket.write_all(b"0\r\n\r\n").await.unwrap();
                }
            });
        }
    });
    (format!("http://{address}/v1"), accepted)
}

fn request() -> LlmRequest {
    LlmRequest {
        model: "m".to_owned(),
        instructions: None,
        messages: vec![LlmMessage {
            role: Role::User,
            content: "Hi".to_owned(),
        }],
        max_output_tokens: None,
    }
}

#[tokio::test]
async fn a_reply_dropped_at_its_terminal_event_leaves_its_connection_reusable() {
    let (base_url, accepted) = provider().await;
    let llm =
        ResponsesLlm::new(OpenAiConfig::new(SecretString::from("sk-test")).with_base_url(base_url))
            .unwrap();

    for round in 1..=3 {
        let mut stream = llm.stream(request());
        // As the chat use case does: stop reading at the completion, drop the stream.
        loop {
            match stream.next().await {
                Some(Ok(LlmEvent::Completed(_))) => break,
                Some(Ok(LlmEvent::Delta(_))) => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        drop(stream);
        // Longer than the provider's pause before the body's end.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "every reply after the first must reuse the pooled connection"
    );
}
