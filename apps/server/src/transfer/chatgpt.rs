//! ChatGPT's data export (`conversations.json`): a list of conversations, each a `mapping`
//! of nodes (`id`, `parent`, `children`, `message`), the shown one `current_node`. A
//! message has `author.role`, `content` (`content_type`, `parts`), `create_time` (Unix
//! seconds, fractional) and `metadata.model_slug`.
//!
//! Kept: user and assistant messages with text (`text` and `multimodal_text` parts, `code`
//! as a fenced block). Left out, each with its reason: system and tool messages, hidden
//! ones, other content types (browsing, reasoning, execution output …), empty ones, and
//! the non-text parts (images, audio) of kept ones. A kept message whose parent was left
//! out hangs from the nearest kept ancestor, so every branch survives.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound as _, Utc};
use confab_api_types::ImportSkip;
use confab_core::model::{MessageStatus, Role};
use confab_core::transfer::{ImportConversation, ImportMessage};
use serde_json::{Map, Value};

/// One conversation as read, with what was left out of it.
pub struct Parsed {
    pub conversation: Option<ImportConversation>,
    pub skipped: Vec<ImportSkip>,
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let secs = value?.as_f64()?;
    if !secs.is_finite() {
        return None;
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9) as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999)).map(|t| t.trunc_subsecs(6))
}

/// What a node's message holds: its text, or why it is left out.
enum Content {
    Text {
        text: String,
        /// The content types of the non-text parts left out.
        left_out: Vec<String>,
    },
    Skip(String),
}

fn content(path: &str, message: &Map<String, Value>) -> Result<Content, String> {
    let Some(content) = message.get("content") else {
        return Ok(Content::Skip("a message without content".to_owned()));
    };
    let content = content
        .as_object()
        .ok_or_else(|| format!("{path}.message.content: expected an object"))?;
    let kind = content
        .get("content_type")
        .and_then(Value::as_str)
        .unwrap_or("text");
    match kind {
        "text" | "multimodal_text" => {
            let parts: &[Value] = match content.get("parts") {
                None | Some(Value::Null) => &[],
                Some(Value::Array(parts)) => parts.as_slice(),
                Some(_) => return Err(format!("{path}.message.content.parts: expected a list")),
            };
            let mut texts = Vec::new();
            let mut left_out = Vec::new();
            for part in parts {
                match part {
                    Value::String(text) => texts.push(text.as_str()),
                    Value::Object(object) => left_out.push(
                        object
                            .get("content_type")
                            .and_then(Value::as_str)
                            .unwrap_or("object")
                            .to_owned(),
                    ),
                    Value::Null => {}
                    other => left_out.push(type_name(other).to_owned()),
                }
            }
            Ok(Content::Text {
                text: texts.join("\n"),
                left_out,
            })
        }
        "code" => {
            let text = content.get("text").and_then(Value::as_str).unwrap_or("");
            let language = content
                .get("language")
                .and_then(Value::as_str)
                .filter(|l| *l != "unknown")
                .unwrap_or("");
            Ok(Content::Text {
                text: if text.trim().is_empty() {
                    String::new()
                } else {
                    format!("```{language}\n{text}\n```")
                },
                left_out: Vec::new(),
            })
        }
        other => Ok(Content::Skip(format!("{other} content is not imported"))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "text",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Why a message whose text is empty is left out.
fn empty_reason(left_out: &[String]) -> String {
    if left_out.is_empty() {
        "empty message".to_owned()
    } else if left_out.iter().all(|kind| kind.contains("image")) {
        "image-only message".to_owned()
    } else {
        format!("no text, only {} part(s)", left_out.join(", "))
    }
}

/// A node as read: its parent, and the message kept from it (if any).
struct Node {
    parent: Option<String>,
    kept: Option<ImportMessage>,
}

/// Reads conversation `index` of the list. `Err` names where it broke
/// (`conversations[3].mapping.<node>.message.author.role: expected text`).
pub fn conversation(index: usize, value: &Value) -> Result<Parsed, String> {
    let at = format!("conversations[{index}]");
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object, found {}", type_name(value)))?;
    let id = object
        .get("conversation_id")
        .or_else(|| object.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        // No id: the conversation's own text names it, so a second import still finds it.
        .unwrap_or_else(|| confab_core::shares::token_hash(&value.to_string()));
    let title = match object.get("title") {
        None | Some(Value::Null) => None,
        Some(Value::String(title)) => Some(title.clone()),
        Some(other) => {
            return Err(format!(
                "{at}.title: expected text, found {}",
                type_name(other)
            ));
        }
    };
    let created = time(object.get("create_time"));
    let updated = time(object.get("update_time"));
    let mapping = match object.get("mapping") {
        Some(Value::Object(mapping)) => mapping,
        Some(other) => {
            return Err(format!(
                "{at}.mapping: expected an object of nodes, found {}",
                type_name(other)
            ));
        }
        None => return Err(format!("{at}.mapping: missing")),
    };
    let fallback_time = created.unwrap_or_else(confab_core::model::now);
    let mut skipped = Vec::new();
    let mut nodes: HashMap<&str, Node> = HashMap::with_capacity(mapping.len());
    let mut order: Vec<(&str, DateTime<Utc>, usize)> = Vec::new();
    for (position, (key, node)) in mapping.iter().enumerate() {
        let path = format!("{at}.mapping.{key}");
        let node = node
            .as_object()
            .ok_or_else(|| format!("{path}: expected an object, found {}", type_name(node)))?;
        let parent = match node.get("parent") {
            None | Some(Value::Null) => None,
            Some(Value::String(parent)) => Some(parent.clone()),
            Some(other) => {
                return Err(format!(
                    "{path}.parent: expected an id or null, found {}",
                    type_name(other)
                ));
            }
        };
        if let Some(children) = node.get("children")
            && !children.is_array()
            && !children.is_null()
        {
            return Err(format!("{path}.children: expected a list of ids"));
        }
        let message = match node.get("message") {
            None | Some(Value::Null) => None,
            Some(Value::Object(message)) => Some(message),
            Some(other) => {
                return Err(format!(
                    "{path}.message: expected an object or null, found {}",
                    type_name(other)
                ));
            }
        };
        let kept = match message {
            // The tree's root, which ChatGPT leaves empty.
            None => None,
            Some(message) => {
                let role = message
                    .get("author")
                    .and_then(|a| a.get("role"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{path}.message.author.role: expected text"))?;
                let created_at = time(message.get("create_time")).unwrap_or(fallback_time);
                let hidden = message
                    .get("metadata")
                    .and_then(|m| m.get("is_visually_hidden_from_conversation"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let role = match role {
                    "user" => Some(Role::User),
                    "assistant" => Some(Role::Assistant),
                    _ => None,
                };
                let read = content(&path, message)?;
                match (role, read) {
                    (None, _) => {
                        let role = message
                            .get("author")
                            .and_then(|a| a.get("role"))
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        skipped.push(skip(&path, format!("{role} message")));
                        None
                    }
                    (Some(_), _) if hidden => {
                        skipped.push(skip(&path, "hidden message".to_owned()));
                        None
                    }
                    (Some(_), Content::Skip(why)) => {
                        skipped.push(skip(&path, why));
                        None
                    }
                    (Some(role), Content::Text { text, left_out }) => {
                        if text.trim().is_empty() {
                            skipped.push(skip(&path, empty_reason(&left_out)));
                            None
                        } else {
                            if !left_out.is_empty() {
                                skipped.push(skip(
                                    &format!("{path}.message.content.parts"),
                                    format!(
                                        "{} non-text part(s) left out ({})",
                                        left_out.len(),
                                        left_out.join(", ")
                                    ),
                                ));
                            }
                            order.push((key.as_str(), created_at, position));
                            Some(ImportMessage {
                                source_id: key.clone(),
                                parent: None,
                                role,
                                content: text,
                                status: MessageStatus::Complete,
                                model: if role == Role::Assistant {
                                    message
                                        .get("metadata")
                                        .and_then(|m| m.get("model_slug"))
                                        .and_then(Value::as_str)
                                        .map(str::to_owned)
                                } else {
                                    None
                                },
                                usage: None,
                                error: None,
                                created_at,
                                files: Vec::new(),
                            })
                        }
                    }
                }
            }
        };
        nodes.insert(key.as_str(), Node { parent, kept });
    }
    // The nearest kept node at or above `start` (a bounded walk: a cycle ends it).
    let nearest_kept = |start: Option<&str>| -> Option<String> {
        let mut at = start;
        for _ in 0..=nodes.len() {
            let key = at?;
            let node = nodes.get(key)?;
            if node.kept.is_some() {
                return Some(key.to_owned());
            }
            at = node.parent.as_deref();
        }
        None
    };
    order.sort_by_key(|&(_, at, position)| (at, position));
    let mut messages = Vec::with_capacity(order.len());
    for (key, _, _) in &order {
        let Some(node) = nodes.get(key) else { continue };
        let Some(kept) = &node.kept else { continue };
        let mut message = kept.clone();
        message.parent = nearest_kept(node.parent.as_deref());
        messages.push(message);
    }
    if messages.is_empty() {
        skipped.push(skip(&at, "no message with text".to_owned()));
        return Ok(Parsed {
            conversation: None,
            skipped,
        });
    }
    let current = object
        .get("current_node")
        .and_then(Value::as_str)
        .and_then(|node| nearest_kept(Some(node)));
    let last = messages.iter().map(|m| m.created_at).max();
    let created_at = created
        .or_else(|| messages.iter().map(|m| m.created_at).min())
        .unwrap_or(fallback_time);
    Ok(Parsed {
        conversation: Some(ImportConversation {
            key: format!("chatgpt:{id}"),
            title,
            model: None,
            created_at,
            updated_at: updated.or(last).unwrap_or(created_at),
            current,
            messages,
        }),
        skipped,
    })
}

fn skip(what: &str, why: String) -> ImportSkip {
    ImportSkip {
        what: what.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(id: &str, parent: Option<&str>, role: &str, parts: Value, t: f64) -> (String, Value) {
        (
            id.to_owned(),
            json!({"id": id, "parent": parent, "children": [],
                "message": {"id": id, "author": {"role": role}, "create_time": t,
                    "content": {"content_type": "text", "parts": parts},
                    "metadata": {"model_slug": "gpt-4o"}}}),
        )
    }

    #[test]
    fn branches_survive_and_left_out_nodes_are_bridged() {
        let mut mapping = serde_json::Map::new();
        mapping.insert(
            "root".to_owned(),
            json!({"id": "root", "parent": null, "children": ["sys"], "message": null}),
        );
        for (k, v) in [
            node("sys", Some("root"), "system", json!([""]), 1.0),
            node("u1", Some("sys"), "user", json!(["Grüße 👋"]), 2.0),
            node("a1", Some("u1"), "assistant", json!(["first"]), 3.0),
            node("a2", Some("u1"), "assistant", json!(["second"]), 4.0),
            node("t", Some("a2"), "tool", json!(["tool output"]), 5.0),
            node(
                "u2",
                Some("t"),
                "user",
                json!([{"content_type": "image_asset_pointer"}]),
                6.0,
            ),
        ] {
            mapping.insert(k, v);
        }
        let value = json!({"id": "c1", "title": "T", "create_time": 1.0, "update_time": 6.0,
            "mapping": mapping, "current_node": "u2"});
        let parsed = conversation(0, &value).unwrap();
        let c = parsed.conversation.unwrap();
        assert_eq!(c.key, "chatgpt:c1");
        let ids: Vec<(&str, Option<&str>)> = c
            .messages
            .iter()
            .map(|m| (m.source_id.as_str(), m.parent.as_deref()))
            .collect();
        assert_eq!(ids, [("u1", None), ("a1", Some("u1")), ("a2", Some("u1"))]);
        assert_eq!(c.messages[0].content, "Grüße 👋");
        assert_eq!(c.messages[1].model.as_deref(), Some("gpt-4o"));
        // The current node (an image-only message under a tool message) → a2.
        assert_eq!(c.current.as_deref(), Some("a2"));
        let whys: Vec<&str> = parsed.skipped.iter().map(|s| s.why.as_str()).collect();
        assert_eq!(
            whys,
            ["system message", "tool message", "image-only message"]
        );
    }

    #[test]
    fn a_malformed_node_is_named() {
        let value = json!({"id": "c", "mapping": {"n": {"parent": 5}}});
        let e = conversation(3, &value).err().unwrap();
        assert!(e.starts_with("conversations[3].mapping.n.parent:"), "{e}");
        let e = conversation(1, &json!({"mapping": []})).err().unwrap();
        assert!(e.starts_with("conversations[1].mapping:"), "{e}");
    }
}
