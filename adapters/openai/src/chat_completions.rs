//! The Chat Completions API as OpenAI-compatible servers speak it (Ollama, vLLM, llama.cpp,
//! LM Studio): `POST {base_url}/chat/completions` with `"stream": true`, answered by
//! `data: {chunk}` lines and a final `data: [DONE]`.
//!
//! The system prompt is sent as a first `system` message; the length cap as `max_tokens`,
//! the name every compatible server knows. Usage is asked for with
//! `stream_options.include_usage`; a server that does not report it gives `usage: None`.

use crate::sse::Event;
use confab_core::LlmError;
use confab_core::model::Usage;
use confab_core::ports::{Completion, LlmEventStream, LlmRequest, LlmStream};
use serde::{Deserialize, Serialize};

use crate::attachments::chat_content;
use crate::config::{ConfigError, OpenAiConfig};
use crate::responses::{Content, failure, incomplete, role};
use crate::stream::{Decoder, Endpoint, Step, json, lenient};

/// An `LlmStream` over the Chat Completions API of an OpenAI-compatible server.
#[derive(Debug)]
pub struct ChatCompletionsLlm {
    endpoint: Endpoint,
    /// Attached images go as `image_url` parts (`CONFAB_LLM_VISION`); else they are named.
    vision: bool,
}

impl ChatCompletionsLlm {
    /// Builds the adapter; fails on an invalid base URL, an empty model or a key that
    /// cannot be sent in a header. An empty key sends no `Authorization` header.
    pub fn new(config: OpenAiConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: Endpoint::new(config, "chat/completions")?,
            vision: false,
        })
    }

    /// Sends attached images as `image_url` parts (for servers whose model sees images).
    #[must_use]
    pub const fn with_vision(mut self, vision: bool) -> Self {
        self.vision = vision;
        self
    }

    /// The endpoint requests go to.
    #[must_use]
    pub fn url(&self) -> &str {
        self.endpoint.url.as_str()
    }
}

impl LlmStream for ChatCompletionsLlm {
    fn provider(&self) -> &str {
        "openai-compatible"
    }

    fn default_model(&self) -> &str {
        &self.endpoint.model
    }

    fn stream(&self, request: LlmRequest) -> LlmEventStream {
        let body = request_body(
            &request,
            &self.endpoint.model,
            self.endpoint.max_output_tokens,
            self.vision,
        );
        self.endpoint
            .stream(body, ChatDecoder::default(), "chat/completions")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Content<'a>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The JSON body of a streaming Chat Completions request.
fn request_body(
    request: &LlmRequest,
    default_model: &str,
    default_max_output_tokens: Option<u32>,
    vision: bool,
) -> serde_json::Value {
    let model = if request.model.trim().is_empty() {
        default_model
    } else {
        &request.model
    };
    let system = request.instructions.as_deref().map(|content| ChatMessage {
        role: "system",
        content: Content::Text(content),
    });
    // Project knowledge: one more system message, after the instructions.
    let sources = confab_core::knowledge::sources_message(&request.sources);
    let sources = sources.as_deref().map(|content| ChatMessage {
        role: "system",
        content: Content::Text(content),
    });
    let last = request.messages.len();
    let history = request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| ChatMessage {
            role: role(m.role),
            content: if i + 1 == last && !request.attachments.is_empty() {
                Content::Parts(chat_content(&m.content, &request.attachments, vision))
            } else {
                Content::Text(&m.content)
            },
        });
    let body = Body {
        model,
        messages: system.into_iter().chain(sources).chain(history).collect(),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: request.max_output_tokens.or(default_max_output_tokens),
    };
    serde_json::to_value(body).unwrap_or_default()
}

/// Reads `chat.completion.chunk`s, remembering the finish reason, usage and model for the end.
#[derive(Default)]
struct ChatDecoder {
    finish_reason: Option<String>,
    usage: Option<ChunkUsage>,
    model: Option<String>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default, deserialize_with = "lenient")]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<ChunkUsage>,
    /// OpenAI's (and LiteLLM's) error chunk: `{"error": {...}}`.
    #[serde(default)]
    error: Option<serde_json::Value>,
    /// vLLM's error chunk is a bare error object: `{"object": "error", "message", …}`.
    #[serde(default)]
    object: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<ChoiceDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

impl ChatDecoder {
    fn completion(&mut self) -> Completion {
        let usage = self.usage.take();
        Completion {
            usage: usage.as_ref().map(|u| Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            }),
            cached_tokens: usage
                .as_ref()
                .and_then(|u| u.prompt_tokens_details.as_ref())
                .and_then(|d| d.cached_tokens),
            reasoning_tokens: usage
                .as_ref()
                .and_then(|u| u.completion_tokens_details.as_ref())
                .and_then(|d| d.reasoning_tokens),
            model: self.model.take(),
            incomplete: match self.finish_reason.as_deref() {
                None | Some("stop" | "tool_calls" | "function_call" | "eos") => None,
                Some(reason) => Some(incomplete(reason)),
            },
        }
    }
}

impl Decoder for ChatDecoder {
    fn event(&mut self, event: &Event) -> Result<Step, LlmError> {
        if event.data.trim() == "[DONE]" {
            return Ok(Step::Done(self.completion()));
        }
        let chunk: Chunk = json(event)?;
        if chunk.error.is_some() || chunk.object.as_deref() == Some("error") {
            // Errors are rare: the chunk is read again as a whole, whatever its shape.
            let value: serde_json::Value = json(event)?;
            return Err(failure(Some(&value)));
        }
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let mut text = String::new();
        if let Some(choice) = chunk.choices.into_iter().next() {
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
            if let Some(content) = choice.delta.and_then(|d| d.content) {
                text = content;
            }
        }
        Ok(if text.is_empty() {
            Step::Skip
        } else {
            Step::Delta(text)
        })
    }

    fn end(&mut self) -> Result<Completion, LlmError> {
        if self.finish_reason.is_some() {
            Ok(self.completion())
        } else {
            Err(LlmError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {

    use confab_core::model::Role;
    use confab_core::ports::{Incomplete, LlmMessage};
    use serde_json::json;

    use super::*;

    fn data(value: serde_json::Value) -> Event {
        raw(&value.to_string())
    }

    fn raw(text: &str) -> Event {
        Event {
            event: "message".to_owned(),
            data: text.to_owned(),
            id: String::new(),
            retry: None,
        }
    }

    fn chunk(content: Option<&str>, finish: Option<&str>) -> Event {
        data(
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "llama3.2", "choices": [{"index": 0, "delta": {"content": content},
            "logprobs": null, "finish_reason": finish}], "usage": null}),
        )
    }

    #[test]
    fn the_body_puts_instructions_first_as_a_system_message_and_asks_for_usage() {
        let request = LlmRequest {
            model: "llama3.2".to_owned(),
            instructions: Some("Be brief.".to_owned()),
            messages: vec![
                LlmMessage {
                    role: Role::User,
                    content: "hi".to_owned(),
                },
                LlmMessage {
                    role: Role::Assistant,
                    content: "hello".to_owned(),
                },
                LlmMessage {
                    role: Role::User,
                    content: "bye".to_owned(),
                },
            ],
            max_output_tokens: Some(100),
            attachments: Vec::new(),
            sources: Vec::new(),
        };
        assert_eq!(
            request_body(&request, "default", None, false),
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 100,
            })
        );
    }

    #[test]
    fn sources_are_one_system_message_after_the_instructions() {
        let request = LlmRequest {
            model: "m".to_owned(),
            instructions: Some("Be brief.".to_owned()),
            messages: vec![LlmMessage {
                role: Role::User,
                content: "who?".to_owned(),
            }],
            max_output_tokens: None,
            attachments: Vec::new(),
            sources: vec![confab_core::ports::LlmSource {
                n: 1,
                filename: "facts.txt".to_owned(),
                text: "The mascot is Zephyrine.".to_owned(),
            }],
        };
        let body = request_body(&request, "default", None, false);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0]["content"], "Be brief.");
        assert_eq!(messages[1]["role"], "system");
        let sources = messages[1]["content"].as_str().unwrap();
        assert!(sources.contains("[1]"), "{sources}");
        assert!(
            sources.ends_with("[1] facts.txt\nThe mascot is Zephyrine."),
            "{sources}"
        );
        assert_eq!(messages[2]["role"], "user");
    }

    #[test]
    fn without_instructions_there_is_no_system_message() {
        let request = LlmRequest {
            model: String::new(),
            instructions: None,
            messages: vec![LlmMessage {
                role: Role::User,
                content: "hi".to_owned(),
            }],
            max_output_tokens: None,
            attachments: Vec::new(),
            sources: Vec::new(),
        };
        let body = request_body(&request, "qwen", None, false);
        assert_eq!(body["model"], "qwen");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
        assert!(body.get("max_tokens").is_none());
    }

    #[test]
    fn content_becomes_deltas_and_done_completes_with_usage() {
        let mut d = ChatDecoder::default();
        assert_eq!(d.event(&chunk(Some(""), None)).unwrap(), Step::Skip);
        assert_eq!(
            d.event(&chunk(Some("Hi"), None)).unwrap(),
            Step::Delta("Hi".to_owned())
        );
        assert_eq!(d.event(&chunk(None, Some("stop"))).unwrap(), Step::Skip);
        let usage = data(json!({"id": "chatcmpl-1", "choices": [], "usage": {
            "prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 1}}}));
        assert_eq!(d.event(&usage).unwrap(), Step::Skip);
        assert_eq!(
            d.event(&raw("[DONE]")).unwrap(),
            Step::Done(Completion {
                usage: Some(Usage {
                    input_tokens: 9,
                    output_tokens: 2
                }),
                cached_tokens: Some(4),
                reasoning_tokens: Some(1),
                model: Some("llama3.2".to_owned()),
                incomplete: None,
            })
        );
    }

    #[test]
    fn an_unreadable_usage_or_model_does_not_fail_the_reply() {
        let mut d = ChatDecoder::default();
        let odd = data(
            json!({"id": "chatcmpl-1", "model": 7, "choices": [{"index": 0,
            "delta": {"content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5_000_000_000_u64, "completion_tokens": -2}}),
        );
        assert_eq!(d.event(&odd).unwrap(), Step::Delta("Hi".to_owned()));
        let Step::Done(c) = d.event(&raw("[DONE]")).unwrap() else {
            panic!("not done")
        };
        assert_eq!((c.usage, c.model), (None, None));
    }

    #[test]
    fn missing_usage_is_none_not_zero() {
        let mut d = ChatDecoder::default();
        d.event(&chunk(Some("Hi"), Some("stop"))).unwrap();
        let Step::Done(c) = d.event(&raw("[DONE]")).unwrap() else {
            panic!("not done")
        };
        assert_eq!(c.usage, None);
    }

    #[test]
    fn finish_reasons_map_to_incomplete() {
        for (reason, expected) in [
            ("length", Some(Incomplete::MaxOutputTokens)),
            ("content_filter", Some(Incomplete::ContentFilter)),
            ("stop", None),
            ("abort", Some(Incomplete::Other("abort".to_owned()))),
        ] {
            let mut d = ChatDecoder::default();
            d.event(&chunk(Some("x"), Some(reason))).unwrap();
            let Step::Done(c) = d.event(&raw("[DONE]")).unwrap() else {
                panic!("not done")
            };
            assert_eq!(c.incomplete, expected, "{reason}");
        }
    }

    #[test]
    fn a_finish_reason_then_the_end_of_the_stream_completes() {
        let mut d = ChatDecoder::default();
        d.event(&chunk(Some("x"), Some("length"))).unwrap();
        assert_eq!(
            d.end().unwrap().incomplete,
            Some(Incomplete::MaxOutputTokens)
        );
    }

    #[test]
    fn an_end_without_finish_reason_or_done_is_truncated() {
        let mut d = ChatDecoder::default();
        d.event(&chunk(Some("x"), None)).unwrap();
        assert_eq!(d.end().unwrap_err(), LlmError::Truncated);
    }

    #[test]
    fn an_error_chunk_is_an_upstream_error() {
        let mut d = ChatDecoder::default();
        let e = d
            .event(&data(
                json!({"error": {"message": "The model crashed.", "type": "server_error", "code": null}}),
            ))
            .unwrap_err();
        assert_eq!(
            e,
            LlmError::Upstream {
                status: None,
                code: Some("server_error".to_owned()),
                message: "The model crashed.".to_owned()
            }
        );
        let e = d
            .event(&data(json!({"error": "model not loaded"})))
            .unwrap_err();
        assert!(matches!(e, LlmError::Upstream { message, .. } if message == "model not loaded"));
    }

    #[test]
    fn error_chunks_of_compatible_servers_are_understood() {
        // LiteLLM: a numeric-looking code, the meaning only in the message.
        let litellm = json!({"error": {"message": "Invalid model name passed in model=gpt-9",
            "type": "invalid_request_error", "param": "model", "code": 400}});
        // vLLM: a bare error object.
        let vllm = json!({"object": "error", "message": "The model `gpt-9` does not exist.",
            "type": "NotFoundError", "param": null, "code": 404});
        for chunk in [litellm, vllm] {
            let e = ChatDecoder::default()
                .event(&data(chunk.clone()))
                .unwrap_err();
            assert!(
                matches!(&e, LlmError::Upstream { code: Some(c), .. } if c == "model_not_found"),
                "{chunk}: {e:?}"
            );
        }
        let quota = json!({"error": {"message": "You exceeded your current quota.",
            "type": "insufficient_quota", "code": "insufficient_quota"}});
        assert!(matches!(
            ChatDecoder::default().event(&data(quota)).unwrap_err(),
            LlmError::Upstream { code: Some(c), .. } if c == "insufficient_quota"
        ));
        let filtered = json!({"error": {"message": "filtered", "code": "content_filter"}});
        assert_eq!(
            ChatDecoder::default().event(&data(filtered)).unwrap_err(),
            LlmError::ContentFilter
        );
    }

    #[test]
    fn a_chunk_with_a_null_error_is_not_an_error() {
        let mut chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]});
        chunk["error"] = serde_json::Value::Null;
        assert_eq!(
            ChatDecoder::default().event(&data(chunk)).unwrap(),
            Step::Delta("Hi".to_owned())
        );
    }

    #[test]
    fn malformed_chunks_are_bad_responses() {
        let e = ChatDecoder::default()
            .event(&raw("{\"choices\": ["))
            .unwrap_err();
        assert!(matches!(e, LlmError::BadResponse(_)), "{e:?}");
    }
}
