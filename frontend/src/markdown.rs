//! Markdown → HTML for the model's replies, safe to set as `innerHTML`.
//!
//! The model's text is untrusted: raw HTML in it (blocks and inline tags) is turned into text
//! before rendering, so it shows as written and never becomes markup; link and image targets
//! with a scheme other than http, https or mailto are dropped; images become plain links (the
//! page loads nothing from elsewhere). Code blocks get a "Copy" button, wired up by the message
//! list through event delegation (`data-copy-code`).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// The HTML placed before each code block: a wrapper and its copy button.
pub const CODE_BLOCK_OPEN: &str = r#"<div class="code-block"><button type="button" class="copy-code" data-copy-code aria-label="Copy code">Copy</button>"#;
const CODE_BLOCK_CLOSE: &str = "</div>";

/// Renders a reply's Markdown as sanitized HTML.
pub fn render(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events = Vec::new();
    for event in Parser::new_ext(markdown, options) {
        match event {
            // Raw HTML from the model: shown as text, never injected.
            Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
            Event::Start(Tag::HtmlBlock) => events.push(Event::Start(Tag::Paragraph)),
            Event::End(TagEnd::HtmlBlock) => events.push(Event::End(TagEnd::Paragraph)),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url: safe_url(dest_url),
                    title,
                    id,
                }));
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url: safe_url(dest_url),
                    title,
                    id,
                }));
            }
            Event::End(TagEnd::Image) => events.push(Event::End(TagEnd::Link)),
            Event::Start(Tag::CodeBlock(kind)) => {
                events.push(Event::Html(CowStr::Borrowed(CODE_BLOCK_OPEN)));
                events.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Event::End(TagEnd::CodeBlock) => {
                events.push(Event::End(TagEnd::CodeBlock));
                events.push(Event::Html(CowStr::Borrowed(CODE_BLOCK_CLOSE)));
            }
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(markdown.len() * 3 / 2 + 16);
    html::push_html(&mut out, events.into_iter());
    out
}

/// Keeps relative links and http(s)/mailto ones; anything else (`javascript:`, `data:`,
/// `vbscript:` …) becomes an empty target.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    // Browsers ignore ASCII whitespace and control characters inside a scheme
    // ("java\tscript:"), so the check does too.
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = cleaned.find(':');
    let path_start = cleaned.find(['/', '?', '#']);
    let has_scheme = match (scheme_end, path_start) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        _ => false,
    };
    if !has_scheme
        || cleaned.starts_with("http:")
        || cleaned.starts_with("https:")
        || cleaned.starts_with("mailto:")
    {
        url
    } else {
        CowStr::Borrowed("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_from_the_model_is_shown_as_text() {
        let out =
            render("hi <script>alert(1)</script> there\n\n<div onclick=\"x()\">block</div>\n");
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<div onclick"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains("&lt;div onclick="), "{out}");
    }

    #[test]
    fn an_image_with_an_onerror_handler_never_becomes_an_img_tag() {
        let out = render("<img src=x onerror=alert(1)>");
        assert!(!out.contains("<img"), "{out}");
        let out = render("![cat](https://example.com/cat.png)");
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains(r#"<a href="https://example.com/cat.png">cat</a>"#),
            "{out}"
        );
    }

    #[test]
    fn script_links_are_neutralized() {
        for link in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x](<java\tscript:alert(1)>)",
            "[x](data:text/html,hi)",
            "[x](vbscript:msgbox)",
        ] {
            let out = render(link);
            assert!(
                !out.to_ascii_lowercase().contains("script:"),
                "{link} → {out}"
            );
            assert!(!out.contains("data:"), "{link} → {out}");
        }
    }

    #[test]
    fn ordinary_links_are_kept() {
        let out = render("[a](https://example.com/x?y=1) [b](/p/1) [c](#top) [d](mailto:a@b.c)");
        assert!(out.contains(r#"href="https://example.com/x?y=1""#), "{out}");
        assert!(out.contains(r#"href="/p/1""#), "{out}");
        assert!(out.contains(r##"href="#top""##), "{out}");
        assert!(out.contains(r#"href="mailto:a@b.c""#), "{out}");
    }

    #[test]
    fn code_blocks_get_a_copy_button_and_escaped_content() {
        let out = render("```rust\nlet a = \"<b>\";\n```\n");
        assert!(out.starts_with(CODE_BLOCK_OPEN), "{out}");
        assert!(out.contains(r#"<code class="language-rust">"#), "{out}");
        assert!(out.contains("&lt;b&gt;"), "{out}");
        assert!(out.replace('\n', "").ends_with("</pre></div>"), "{out}");
    }

    #[test]
    fn common_markdown_renders() {
        let out = render(
            "# Title\n\n**bold** and `code`\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        for needle in [
            "<h1>Title</h1>",
            "<strong>bold</strong>",
            "<code>code</code>",
            "<li>one</li>",
            "<table>",
        ] {
            assert!(out.contains(needle), "{needle} missing in {out}");
        }
    }

    #[test]
    fn unfinished_markdown_while_streaming_still_renders() {
        let out = render("Here is code:\n\n```py\nprint(1");
        assert!(out.contains("print(1"), "{out}");
        assert!(out.replace('\n', "").contains("</pre></div>"), "{out}");
    }
}
