//! The visible text of an HTML document: no scripts, styles or templates; blocks on lines.

use ego_tree::NodeRef;
use scraper::{Html, Node};

use crate::{Budget, ExtractError, Extracted};

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object",
];
/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "table",
    "ul",
    "ol",
    "dd",
    "dt",
    "hr",
    "title",
];

pub(crate) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let source = String::from_utf8_lossy(bytes);
    budget.check_time()?;
    let document = Html::parse_document(&source);
    budget.check_time()?;
    let mut out = String::new();
    let mut truncated = false;
    let mut stack = vec![Step::Enter(document.tree.root())];
    let mut visited = 0u32;
    while let Some(step) = stack.pop() {
        visited = visited.wrapping_add(1);
        if visited.is_multiple_of(4096) {
            budget.check_time()?;
        }
        let node = match step {
            Step::Enter(node) => node,
            Step::EndBlock => {
                new_line(&mut out);
                continue;
            }
        };
        match node.value() {
            Node::Text(text) => push_words(&mut out, text),
            Node::Element(element) => {
                let name = element.name();
                if HIDDEN.contains(&name) {
                    continue;
                }
                if BLOCKS.contains(&name) {
                    new_line(&mut out);
                    stack.push(Step::EndBlock);
                }
            }
            _ => {}
        }
        if out.len() > budget.max_output_bytes {
            truncated = true;
            break;
        }
        stack.extend(node.children().rev().map(Step::Enter));
    }
    Ok(budget.finish(out.trim().to_owned(), truncated))
}

/// A depth-first walk: entering a node, or leaving a block element.
enum Step<'a> {
    Enter(NodeRef<'a, Node>),
    EndBlock,
}

fn new_line(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Appends text with its runs of whitespace collapsed to one space, as a browser shows it.
fn push_words(out: &mut String, text: &str) {
    let starts_with_space = text.starts_with(char::is_whitespace);
    for (i, word) in text.split_whitespace().enumerate() {
        let needs_space =
            (i > 0 || starts_with_space) && !out.is_empty() && !out.ends_with([' ', '\n']);
        if needs_space {
            out.push(' ');
        }
        out.push_str(word);
    }
    if text.ends_with(char::is_whitespace) && !out.is_empty() && !out.ends_with([' ', '\n']) {
        out.push(' ');
    }
}
