//! Property test of the renderer's safety contract: for generated Markdown full of hostile
//! pieces, the HTML it writes, read by an HTML5 parser as a browser reads `innerHTML`, holds
//! only the renderer's own tags and attributes, and every link leads to http, https or mailto.

use proptest::prelude::*;
use scraper::{Html, node::Node};
use url::Url;

use super::render;

/// Pieces of Markdown that the generator strings together (with random ASCII between them).
const PIECES: &[&str] = &[
    // structure
    "\n",
    "\n\n",
    "# ",
    "## ",
    "###### ",
    "\n===\n",
    "\n---\n",
    "> ",
    ">> ",
    "- ",
    "* ",
    "+ ",
    "1. ",
    "3) ",
    "- [ ] ",
    "- [x] ",
    "    ",
    "\t",
    "***\n",
    "  \n",
    // emphasis, code
    "*",
    "**",
    "_",
    "__",
    "~~",
    "`",
    "``",
    "```\n",
    "```js\n",
    "~~~\n",
    "```\" onclick=\"x\n",
    // tables
    "| a | b |\n|:--|--:|\n| 1 | 2 |\n",
    "|:-:|\n",
    " | ",
    "\\|",
    // link syntax
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "![",
    "](",
    "[ref]",
    "[ref]: ",
    "[ref][ref]",
    " \"title\"",
    " 'title'",
    " (title)",
    // hostile and harmless destinations
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:x",
    "java\tscript:x",
    "java\nscript:x",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:x",
    "&#X4A;AVASCRIPT:x",
    "javascript&colon;x",
    "javascript&#58;x",
    "&#0;javascript:x",
    "\u{0}javascript:x",
    "\u{1}javascript:x",
    "%6Aavascript:x",
    "\\javascript:x",
    "vbscript:x",
    "VBScript:x",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<b>",
    "file:///etc/passwd",
    "blob:https://x/y",
    "https://ok.example/a?b=1&c=2#f",
    "http://ok.example",
    "mailto:a@b.example",
    "/relative/path",
    "#fragment",
    "?q=1",
    "//other.example/x",
    "./x:y",
    "<javascript:alert(1)>",
    "<https://ok.example>",
    "<a@b.example>",
    "<mailto:x@y.z>",
    // raw HTML
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:x\">",
    "<div style=\"color:red\">",
    "</div>",
    "<!-- c -->",
    "<iframe src=x>",
    "</p>",
    "<svg onload=alert(1)>",
    "<style>*{}</style>",
    "<p onclick=x>",
    "<input autofocus onfocus=x>",
    "<table><tr><td>x",
    "<![CDATA[x]]>",
    "<?php ?>",
    // escapes, entities and quotes
    "\\",
    "\\\\",
    "\"",
    "'",
    "&",
    "&amp;",
    "&lt;",
    "&quot;",
    "&#39;",
    "&#x22;",
    "&nbsp;",
    "\" onmouseover=\"alert(1)",
    "' onerror='x",
    "=",
    "`\"`",
];

fn markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => "[ -~]{0,6}",
        1 => "[a-z]{1,8}",
    ];
    prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

/// The classes the renderer writes.
fn allowed_class(tag: &str, class: &str) -> bool {
    match tag {
        "div" => class == "code-block",
        "button" => class == "copy-code",
        "code" => class.starts_with("language-"),
        "th" | "td" => matches!(class, "align-left" | "align-center" | "align-right"),
        _ => false,
    }
}

/// The attributes each tag may carry (`class` is checked by [`allowed_class`]).
fn allowed_attribute(tag: &str, attribute: &str) -> bool {
    matches!(
        (tag, attribute),
        ("a", "href" | "title")
            | ("ol", "start")
            | ("input", "type" | "disabled" | "checked")
            | ("button", "type" | "data-copy-code" | "aria-label")
            | ("div" | "button" | "code" | "th" | "td", "class")
    )
}

/// The renderer's tags, and the `html` and `body` the parser puts around a fragment.
const ALLOWED_TAGS: &[&str] = &[
    "html",
    "body",
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "div",
    "button",
    "pre",
    "code",
    "hr",
    "blockquote",
    "ol",
    "ul",
    "li",
    "input",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "em",
    "strong",
    "del",
    "a",
    "br",
];

/// Where a link leads once the browser has resolved it against the page's address.
fn resolved_scheme(href: &str) -> Option<String> {
    let page = Url::parse("https://confab.example/p/1/c/2").ok()?;
    page.join(href).ok().map(|u| u.scheme().to_owned())
}

/// Why the rendered HTML breaks the contract, if it does.
fn violation(html: &str) -> Option<String> {
    let doc = Html::parse_fragment(html);
    for node in doc.tree.nodes() {
        let Node::Element(element) = node.value() else {
            continue;
        };
        let tag = element.name();
        if !ALLOWED_TAGS.contains(&tag) {
            return Some(format!("tag <{tag}>"));
        }
        for (name, value) in element.attrs() {
            if !allowed_attribute(tag, name) {
                return Some(format!("attribute {name}={value:?} on <{tag}>"));
            }
            if name == "class" && !allowed_class(tag, value) {
                return Some(format!("class {value:?} on <{tag}>"));
            }
            if tag == "input" && name == "type" && value != "checkbox" {
                return Some(format!("input of type {value:?}"));
            }
            if name == "href"
                && let Some(scheme) = resolved_scheme(value)
                && !matches!(scheme.as_str(), "http" | "https" | "mailto")
            {
                return Some(format!("link to {value:?} ({scheme}:)"));
            }
        }
    }
    None
}

#[test]
fn the_checker_catches_what_it_must() {
    assert_eq!(
        violation("<p><a href=\"https://x.example\">x</a></p>"),
        None
    );
    assert_eq!(violation("<a href=\"/relative\">x</a>"), None);
    assert!(violation("<a href=\"JaVa&#83;cript:alert(1)\">x</a>").is_some());
    assert!(violation("<a href=\" java\tscript:x\">x</a>").is_some());
    assert!(violation("<a href=\"data:text/html,x\">x</a>").is_some());
    assert!(violation("<img src=x>").is_some());
    assert!(violation("<p onclick=\"x\">x</p>").is_some());
    assert!(violation("<table><tr><td style=\"text-align: right\">x</td></tr></table>").is_some());
    assert!(violation("<table><tr><td class=\"align-right\">x</td></tr></table>").is_none());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn generated_markdown_renders_to_safe_html_only(md in markdown()) {
        let html = render(&md);
        if let Some(why) = violation(&html) {
            prop_assert!(false, "{why}\nmarkdown: {md:?}\nhtml: {html}");
        }
    }
}
