//! OpenAI's Responses API: `POST {base_url}/responses` with `"stream": true`.
//!
//! Of the many event types a stream may carry, four matter for a plain text reply:
//! `response.output_text.delta` (text), `response.completed` and `response.incomplete`
//! (the end, with usage), `response.failed` and `error` (a failure). All others are skipped.

use crate::sse::Event;
use confab_core::LlmError;
use confab_core::model::{Role, Usage};
use confab_core::ports::{Completion, Incomplete, LlmEventStream, LlmRequest, LlmStream};
use serde::{Deserialize, Serialize};

use crate::attachments::responses_content;
use crate::config::{ConfigError, OpenAiConfig};
use crate::provider_error::{ProviderError, classify};
use crate::stream::{Decoder, Endpoint, Step, json, lenient};

/// An `LlmStream` over OpenAI's Responses API. Requests are sent with `"store": false`.
#[derive(Debug)]
pub struct ResponsesLlm {
    endpoint: Endpoint,
}

impl ResponsesLlm {
    /// Builds the adapter; fails on an invalid base URL, an empty model or a key that
    /// cannot be sent in a header.
    pub fn new(config: OpenAiConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: Endpoint::new(config, "responses")?,
        })
    }

    /// The endpoint requests go to.
    #[must_use]
    pub fn url(&self) -> &str {
        self.endpoint.url.as_str()
    }
}

impl LlmStream for ResponsesLlm {
    fn provider(&self) -> &str {
        "openai"
    }

    fn default_model(&self) -> &str {
        &self.endpoint.model
    }

    fn stream(&self, request: LlmRequest) -> LlmEventStream {
        let body = request_body(
            &request,
            &self.endpoint.model,
            self.endpoint.max_output_tokens,
        );
        self.endpoint.stream(body, ResponsesDecoder, "responses")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<&'a str>,
    input: Vec<InputMessage<'a>>,
    stream: bool,
    store: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
}

#[derive(Serialize)]
struct InputMessage<'a> {
    role: &'static str,
    content: Content<'a>,
}

/// A message's content: its text, or (the new message with attachments) an array of parts.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Content<'a> {
    Text(&'a str),
    Parts(serde_json::Value),
}

/// The JSON body of a streaming Responses request.
fn request_body(
    request: &LlmRequest,
    default_model: &str,
    default_max_output_tokens: Option<u32>,
) -> serde_json::Value {
    let model = if request.model.trim().is_empty() {
        default_model
    } else {
        &request.model
    };
    // Project knowledge: one developer message before the conversation.
    let sources = confab_core::knowledge::sources_message(&request.sources);
    let sources = sources.as_deref().map(|text| InputMessage {
        role: "developer",
        content: Content::Text(text),
    });
    let body = Body {
        model,
        instructions: request.instructions.as_deref(),
        input: sources
            .into_iter()
            .chain(
                request
                    .messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| InputMessage {
                        role: role(m.role),
                        content: if i + 1 == request.messages.len()
                            && !request.attachments.is_empty()
                        {
                            Content::Parts(responses_content(&m.content, &request.attachments))
                        } else {
                            Content::Text(&m.content)
                        },
                    }),
            )
            .collect(),
        stream: true,
        store: false,
        max_output_tokens: request.max_output_tokens.or(default_max_output_tokens),
    };
    serde_json::to_value(body).unwrap_or_default()
}

pub(crate) fn role(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Reads Responses API events.
struct ResponsesDecoder;

#[derive(Deserialize)]
struct TextDelta {
    delta: String,
}

#[derive(Deserialize)]
struct Finished {
    response: ResponseObject,
}

#[derive(Default, Deserialize)]
struct ResponseObject {
    #[serde(default, deserialize_with = "lenient")]
    model: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<ResponseUsage>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
}

#[derive(Deserialize)]
struct ResponseUsage {
    input_tokens: u32,
    output_tokens: u32,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    #[serde(default)]
    reason: Option<String>,
}

/// The fields of an event that a text delta needs, read straight from its bytes: the
/// stream's most frequent event is parsed once, into no intermediate value (issue 20).
#[derive(Deserialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    delta: Option<String>,
}

const TEXT_DELTA: &str = "response.output_text.delta";

impl Decoder for ResponsesDecoder {
    fn event(&mut self, event: &Event) -> Result<Step, LlmError> {
        // An event whose name says a reply does not need it is skipped unread: OpenAI names
        // every event, and each framing event (`response.created`, `…in_progress`,
        // `…output_item.added`, `…content_part.done`, …) repeats the response object, the
        // whole text included at the end. An unnamed event (`message`) is read for its type.
        if !matches!(
            event.event.as_str(),
            "" | "message"
                | TEXT_DELTA
                | "response.completed"
                | "response.incomplete"
                | "response.failed"
                | "error"
        ) {
            return Ok(Step::Skip);
        }
        // A text delta's fields in one pass, and the type of an event to skip; the rest (the
        // end, a failure, a field of another shape, invalid JSON) is read as a whole value
        // below, with the same answers as before.
        if let Ok(DeltaEvent { kind, delta }) = serde_json::from_str::<DeltaEvent<'_>>(&event.data)
        {
            match (kind.as_deref().unwrap_or(&event.event), delta) {
                (TEXT_DELTA, Some(delta)) if delta.is_empty() => return Ok(Step::Skip),
                (TEXT_DELTA, Some(delta)) => return Ok(Step::Delta(delta)),
                // The events a reply does not need (each of the stream's framing events repeats
                // the response object, with the whole text at the end): skipped unread.
                (kind, _)
                    if !matches!(
                        kind,
                        TEXT_DELTA
                            | "response.completed"
                            | "response.incomplete"
                            | "response.failed"
                            | "error"
                    ) =>
                {
                    return Ok(Step::Skip);
                }
                _ => {}
            }
        }
        let value: serde_json::Value = json(event)?;
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&event.event)
            .to_owned();
        let parse = |what: &str| LlmError::BadResponse(format!("a {kind} event lacks {what}"));
        match kind.as_str() {
            TEXT_DELTA => {
                let delta: TextDelta =
                    serde_json::from_value(value).map_err(|_| parse("its text delta"))?;
                Ok(if delta.delta.is_empty() {
                    Step::Skip
                } else {
                    Step::Delta(delta.delta)
                })
            }
            "response.completed" | "response.incomplete" => {
                let finished: Finished =
                    serde_json::from_value(value).map_err(|_| parse("a valid response object"))?;
                let mut completion = completion(finished.response);
                if kind == "response.incomplete" && completion.incomplete.is_none() {
                    completion.incomplete = Some(Incomplete::Other("unknown".to_owned()));
                }
                Ok(Step::Done(completion))
            }
            // The report is `response.error` of a failed response; an `error` event has its
            // fields at the top level, or under `error` in some servers.
            "response.failed" => Err(failure(value.get("response").and_then(|r| r.get("error")))),
            "error" => Err(failure(Some(&value))),
            _ => Ok(Step::Skip),
        }
    }

    fn end(&mut self) -> Result<Completion, LlmError> {
        Err(LlmError::Truncated)
    }
}

fn completion(response: ResponseObject) -> Completion {
    let (usage, cached_tokens, reasoning_tokens) = match response.usage {
        Some(u) => (
            Some(Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            }),
            u.input_tokens_details.and_then(|d| d.cached_tokens),
            u.output_tokens_details.and_then(|d| d.reasoning_tokens),
        ),
        None => (None, None, None),
    };
    Completion {
        usage,
        cached_tokens,
        reasoning_tokens,
        model: response.model,
        incomplete: response
            .incomplete_details
            .map(|d| incomplete(d.reason.as_deref().unwrap_or("unknown"))),
    }
}

pub(crate) fn incomplete(reason: &str) -> Incomplete {
    match reason {
        "max_output_tokens" | "max_tokens" | "length" => Incomplete::MaxOutputTokens,
        "content_filter" => Incomplete::ContentFilter,
        other => Incomplete::Other(other.to_owned()),
    }
}

/// A provider's failure event as an `LlmError`; `report` is where its error object should be.
pub(crate) fn failure(report: Option<&serde_json::Value>) -> LlmError {
    let report = report.and_then(ProviderError::find).unwrap_or_default();
    classify(None, &report, None)
}

#[cfg(test)]
mod tests {

    use confab_core::ports::LlmMessage;
    use serde_json::json;

    use super::*;

    fn event(name: &str, data: serde_json::Value) -> Event {
        Event {
            event: name.to_owned(),
            data: data.to_string(),
            id: String::new(),
            retry: None,
        }
    }

    fn decode(data: serde_json::Value) -> Result<Step, LlmError> {
        let name = data["type"].as_str().unwrap_or("message").to_owned();
        ResponsesDecoder.event(&event(&name, data))
    }

    fn request(instructions: Option<&str>, max: Option<u32>) -> LlmRequest {
        LlmRequest {
            model: "gpt-test".to_owned(),
            instructions: instructions.map(str::to_owned),
            messages: vec![
                LlmMessage {
                    role: Role::User,
                    content: "first".to_owned(),
                },
                LlmMessage {
                    role: Role::Assistant,
                    content: "second".to_owned(),
                },
                LlmMessage {
                    role: Role::User,
                    content: "third".to_owned(),
                },
            ],
            max_output_tokens: max,
            attachments: Vec::new(),
            sources: Vec::new(),
        }
    }

    #[test]
    fn the_body_streams_without_storing_and_keeps_the_order_of_messages() {
        let body = request_body(&request(Some("Be brief."), Some(300)), "default", None);
        assert_eq!(
            body,
            json!({
                "model": "gpt-test",
                "instructions": "Be brief.",
                "input": [
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "second"},
                    {"role": "user", "content": "third"},
                ],
                "stream": true,
                "store": false,
                "max_output_tokens": 300,
            })
        );
    }

    #[test]
    fn sources_are_a_developer_message_before_the_conversation() {
        let mut req = request(Some("Be brief."), None);
        req.sources = vec![confab_core::ports::LlmSource {
            n: 1,
            filename: "facts.txt".to_owned(),
            text: "The mascot is Zephyrine.".to_owned(),
        }];
        let body = request_body(&req, "default", None);
        assert_eq!(body["instructions"], "Be brief.");
        let input = body["input"].as_array().unwrap();
        assert_eq!(input[0]["role"], "developer");
        let text = input[0]["content"].as_str().unwrap();
        assert!(
            text.ends_with("[1] facts.txt\nThe mascot is Zephyrine."),
            "{text}"
        );
        assert_eq!(input.len(), req.messages.len() + 1);
    }

    #[test]
    fn absent_instructions_and_limits_are_left_out_of_the_body() {
        let body = request_body(&request(None, None), "default", None);
        assert!(body.get("instructions").is_none());
        assert!(body.get("max_output_tokens").is_none());
    }

    #[test]
    fn the_configured_model_and_limit_fill_in_for_the_request() {
        let mut r = request(None, None);
        r.model = String::new();
        let body = request_body(&r, "gpt-4.1-mini", Some(64));
        assert_eq!(body["model"], "gpt-4.1-mini");
        assert_eq!(body["max_output_tokens"], 64);
    }

    #[test]
    fn text_deltas_become_deltas() {
        let step = decode(
            json!({"type": "response.output_text.delta", "sequence_number": 4,
            "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hel", "logprobs": []}),
        );
        assert_eq!(step.unwrap(), Step::Delta("Hel".to_owned()));
    }

    #[test]
    fn a_deltas_text_is_read_whole_whatever_its_escapes_and_its_type_may_be_the_events_name() {
        let step =
            decode(json!({"type": "response.output_text.delta", "delta": "a\"b\\\n\u{e9} 🦀"}));
        assert_eq!(step.unwrap(), Step::Delta("a\"b\\\n\u{e9} 🦀".to_owned()));
        // Escapes in the type itself (a borrowed field that must be unescaped).
        let escaped = Event {
            event: "message".to_owned(),
            data: r#"{"type":"response.output_text\u002edelta","delta":"y"}"#.to_owned(),
            id: String::new(),
            retry: None,
        };
        assert_eq!(
            ResponsesDecoder.event(&escaped).unwrap(),
            Step::Delta("y".to_owned())
        );
        // Without a `type` (or with a null one) the event's name says what it is.
        for data in [json!({"delta": "x"}), json!({"type": null, "delta": "x"})] {
            let step = ResponsesDecoder.event(&event("response.output_text.delta", data.clone()));
            assert_eq!(step.unwrap(), Step::Delta("x".to_owned()));
            let other = ResponsesDecoder.event(&event("message", data));
            assert_eq!(other.unwrap(), Step::Skip);
        }
        // The `type` wins over the name; an empty delta is nothing to relay.
        let step = ResponsesDecoder.event(&event(
            "response.output_text.delta",
            json!({"type": "response.created", "delta": "x"}),
        ));
        assert_eq!(step.unwrap(), Step::Skip);
        assert_eq!(
            decode(json!({"type": "response.output_text.delta", "delta": ""})).unwrap(),
            Step::Skip
        );
        // A delta of another shape is still the error it was.
        assert!(matches!(
            decode(json!({"type": "response.output_text.delta", "delta": 5})),
            Err(LlmError::BadResponse(_))
        ));
    }

    #[test]
    fn other_event_types_are_skipped() {
        for kind in [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.done",
            "response.reasoning_summary_text.delta",
            "response.some_future_event",
        ] {
            let step = decode(json!({"type": kind, "sequence_number": 1, "delta": {"odd": true}}));
            assert_eq!(step.unwrap(), Step::Skip, "{kind}");
        }
    }

    #[test]
    fn completed_carries_usage_cached_and_reasoning_tokens() {
        let step = decode(
            json!({"type": "response.completed", "sequence_number": 9, "response": {
            "id": "resp_1", "status": "completed", "model": "gpt-4.1-mini-2025-04-14",
            "usage": {"input_tokens": 37, "input_tokens_details": {"cached_tokens": 12},
                      "output_tokens": 11, "output_tokens_details": {"reasoning_tokens": 3},
                      "total_tokens": 48}}}),
        );
        assert_eq!(
            step.unwrap(),
            Step::Done(Completion {
                usage: Some(Usage {
                    input_tokens: 37,
                    output_tokens: 11
                }),
                cached_tokens: Some(12),
                reasoning_tokens: Some(3),
                model: Some("gpt-4.1-mini-2025-04-14".to_owned()),
                incomplete: None,
            })
        );
    }

    #[test]
    fn completed_without_usage_reports_none() {
        let step = decode(json!({"type": "response.completed", "response": {"usage": null}}));
        let Step::Done(c) = step.unwrap() else {
            panic!("not done")
        };
        assert_eq!(c.usage, None);
    }

    #[test]
    fn an_unreadable_usage_or_model_does_not_fail_a_finished_reply() {
        for (usage, model) in [
            (
                json!({"input_tokens": 5_000_000_000_u64, "output_tokens": 1}),
                json!("m"),
            ),
            (json!({"input_tokens": -1, "output_tokens": 1.5}), json!(42)),
            (json!("lots"), json!({"name": "m"})),
        ] {
            let step = decode(json!({"type": "response.completed",
                "response": {"usage": usage, "model": model}}));
            let Step::Done(c) = step.unwrap() else {
                panic!("not done")
            };
            assert_eq!(c.usage, None);
        }
    }

    #[test]
    fn incomplete_reasons_are_mapped() {
        for (reason, expected) in [
            ("max_output_tokens", Incomplete::MaxOutputTokens),
            ("content_filter", Incomplete::ContentFilter),
            ("turn_limit", Incomplete::Other("turn_limit".to_owned())),
        ] {
            let step = decode(json!({"type": "response.incomplete", "response": {
                "status": "incomplete", "incomplete_details": {"reason": reason},
                "usage": {"input_tokens": 1, "output_tokens": 2}}}));
            let Step::Done(c) = step.unwrap() else {
                panic!("not done")
            };
            assert_eq!(c.incomplete, Some(expected));
            assert_eq!(c.usage.map(|u| u.output_tokens), Some(2));
        }
    }

    #[test]
    fn a_failed_response_carries_the_providers_code_and_message() {
        let step = decode(
            json!({"type": "response.failed", "response": {"status": "failed",
            "error": {"code": "server_error", "message": "The model crashed."}}}),
        );
        assert_eq!(
            step.unwrap_err(),
            LlmError::Upstream {
                status: None,
                code: Some("server_error".to_owned()),
                message: "The model crashed.".to_owned()
            }
        );
    }

    #[test]
    fn error_events_carry_code_and_message_flat_or_nested() {
        let flat = decode(json!({"type": "error", "code": "insufficient_quota",
            "message": "No credit.", "param": null, "sequence_number": 2}));
        let nested = decode(
            json!({"type": "error", "error": {"type": "invalid_request_error",
            "code": "insufficient_quota", "message": "No credit."}}),
        );
        for step in [flat, nested] {
            assert_eq!(
                step.unwrap_err(),
                LlmError::Upstream {
                    status: None,
                    code: Some("insufficient_quota".to_owned()),
                    message: "No credit.".to_owned()
                }
            );
        }
    }

    #[test]
    fn failure_events_with_numeric_codes_or_no_error_object_are_understood() {
        let numeric = decode(json!({"type": "error", "code": 400,
            "message": "Invalid model name passed in model=gpt-9", "param": null}));
        assert!(
            matches!(&numeric, Err(LlmError::Upstream { code: Some(c), .. }) if c == "model_not_found"),
            "{numeric:?}"
        );
        let bare = decode(json!({"type": "response.failed", "response": {"status": "failed"}}));
        assert_eq!(
            bare.unwrap_err(),
            LlmError::Upstream {
                status: None,
                code: None,
                message: "the provider reported a failure".to_owned()
            }
        );
        let odd = decode(json!({"type": "error", "error": "overloaded"}));
        assert!(
            matches!(&odd, Err(LlmError::Upstream { code: Some(c), .. }) if c == "overloaded"),
            "{odd:?}"
        );
        let filtered = decode(json!({"type": "response.failed", "response": {
            "error": {"code": "content_filter", "message": "Filtered."}}}));
        assert_eq!(filtered.unwrap_err(), LlmError::ContentFilter);
    }

    #[test]
    fn a_rate_limit_failure_is_rate_limited() {
        let step = decode(json!({"type": "response.failed", "response": {
            "error": {"code": "rate_limit_exceeded", "message": "Slow down."}}}));
        assert_eq!(
            step.unwrap_err(),
            LlmError::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn malformed_json_is_a_bad_response() {
        let e = ResponsesDecoder
            .event(&Event {
                event: "response.output_text.delta".to_owned(),
                data: "{\"type\": \"response.output_text.delta\", \"delta\": ".to_owned(),
                id: String::new(),
                retry: None,
            })
            .unwrap_err();
        assert!(matches!(e, LlmError::BadResponse(_)), "{e:?}");
    }

    #[test]
    fn a_framing_event_named_by_the_stream_is_skipped_unread_and_an_unnamed_one_is_read() {
        // Named: what a reply does not need is not parsed (not even checked as JSON).
        for name in [
            "response.created",
            "response.output_item.done",
            "response.content_part.added",
        ] {
            let skipped = ResponsesDecoder.event(&Event {
                event: name.to_owned(),
                data: "{\"type\": \"response.failed\", \"response\": ".to_owned(),
                id: String::new(),
                retry: None,
            });
            assert!(matches!(skipped, Ok(Step::Skip)), "{name}: {skipped:?}");
        }
        // Unnamed (a server that sends no `event:` line): read, so malformed data fails …
        let unnamed = ResponsesDecoder.event(&Event {
            event: "message".to_owned(),
            data: "{\"type\": \"response.created\", \"response\": ".to_owned(),
            id: String::new(),
            retry: None,
        });
        assert!(
            matches!(unnamed, Err(LlmError::BadResponse(_))),
            "{unnamed:?}"
        );
        // … and its type decides, as a named delta's does.
        let delta = ResponsesDecoder.event(&Event {
            event: "message".to_owned(),
            data: json!({"type": TEXT_DELTA, "delta": "hi"}).to_string(),
            id: String::new(),
            retry: None,
        });
        assert!(
            matches!(delta, Ok(Step::Delta(ref d)) if d == "hi"),
            "{delta:?}"
        );
    }

    #[test]
    fn a_delta_without_text_is_a_bad_response() {
        let e = decode(json!({"type": "response.output_text.delta", "delta": 5})).unwrap_err();
        assert!(matches!(e, LlmError::BadResponse(_)), "{e:?}");
    }

    #[test]
    fn an_end_without_a_terminal_event_is_truncated() {
        assert_eq!(ResponsesDecoder.end().unwrap_err(), LlmError::Truncated);
    }
}
