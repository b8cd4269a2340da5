//! Markdown → HTML for the model's replies, safe to set as `innerHTML`.
//!
//! A small CommonMark renderer of our own (pulldown-cmark with its HTML writer and entity
//! tables was about a quarter of the wasm): paragraphs, ATX and setext headings, emphasis,
//! strong, `~~strikethrough~~`, code spans, fenced and indented code blocks, block quotes,
//! bullet and ordered lists (tight or loose, nested, task items `- [x]`), links (inline,
//! reference, `<autolinks>`), thematic breaks, hard line breaks and GitHub-style tables.
//!
//! The model's text is untrusted. The output is made only of the tags written here and of
//! escaped text: raw HTML in the reply is never recognized as HTML, so it shows as written and
//! never becomes markup; link and image targets with a scheme other than http, https or mailto
//! are dropped; images become plain links (the page loads nothing from elsewhere). Code blocks
//! get a "Copy" button, wired up by the message list through event delegation
//! (`data-copy-code`). Deeply nested quotes and lists (over 32 levels) are read as text.

mod block;
mod inline;
#[cfg(test)]
mod proptests;

use block::{Align, Defs, Kind, Node};

/// The HTML placed before each code block: a wrapper and its copy button.
pub const CODE_BLOCK_OPEN: &str = r#"<div class="code-block"><button type="button" class="copy-code" data-copy-code aria-label="Copy code">Copy</button>"#;
const CODE_BLOCK_CLOSE: &str = "</div>";

/// Renders a reply's Markdown as sanitized HTML.
pub fn render(markdown: &str) -> String {
    let doc = block::parse(markdown);
    let mut out = String::with_capacity(markdown.len() * 3 / 2 + 16);
    render_blocks(
        &mut out,
        &doc.nodes,
        &doc.nodes[0].children,
        false,
        &doc.defs,
    );
    out
}

/// Renders a reply that cites numbered sources: each `[n]` with a source `n` becomes a link
/// to `url(n)`, titled with `title(n)` — by link reference definitions placed before the text,
/// so that they win over any the reply defines itself, and every other rule (code is left as
/// is, escaping, safe targets) holds as in [`render`].
pub fn render_cited<'a>(
    markdown: &str,
    sources: impl IntoIterator<Item = (u32, String, &'a str)>,
) -> String {
    let mut text = String::new();
    for (n, url, title) in sources {
        text.push('[');
        text.push_str(&n.to_string());
        text.push_str("]: <");
        // The URL is ours; the brackets and whitespace that would end it are left out.
        text.extend(
            url.chars()
                .filter(|c| !matches!(c, '<' | '>' | '\\') && !c.is_whitespace()),
        );
        text.push_str("> \"");
        for c in title.chars() {
            match c {
                '"' | '\\' => {
                    text.push('\\');
                    text.push(c);
                }
                c if c.is_control() => text.push(' '),
                c => text.push(c),
            }
        }
        text.push_str("\"\n");
    }
    if text.is_empty() {
        return render(markdown);
    }
    text.push('\n');
    text.push_str(markdown);
    render(&text)
}

fn render_blocks(out: &mut String, nodes: &[Node], ids: &[usize], tight: bool, defs: &Defs) {
    for &id in ids {
        let node = &nodes[id];
        match &node.kind {
            Kind::Paragraph => paragraph(out, &node.text, tight, "", defs),
            Kind::Heading(level) => {
                let level = char::from(b'0' + level);
                out.push_str("<h");
                out.push(level);
                out.push('>');
                inline::render(out, &node.text, defs);
                out.push_str("</h");
                out.push(level);
                out.push_str(">\n");
            }
            Kind::Code { lang, .. } => {
                out.push_str(CODE_BLOCK_OPEN);
                out.push_str("<pre><code");
                if !lang.is_empty() {
                    out.push_str(" class=\"language-");
                    escape_text(out, lang);
                    out.push('"');
                }
                out.push('>');
                escape_text(out, &node.text);
                out.push_str("</code></pre>\n");
                out.push_str(CODE_BLOCK_CLOSE);
            }
            Kind::Rule => out.push_str("<hr />\n"),
            Kind::Quote => {
                out.push_str("<blockquote>\n");
                render_blocks(out, nodes, &node.children, false, defs);
                out.push_str("</blockquote>\n");
            }
            Kind::List { start, tight, .. } => {
                let tag = if start.is_some() { "ol" } else { "ul" };
                match start {
                    Some(n) if *n != 1 => {
                        out.push_str("<ol start=\"");
                        out.push_str(&n.to_string());
                        out.push_str("\">\n");
                    }
                    _ => {
                        out.push('<');
                        out.push_str(tag);
                        out.push_str(">\n");
                    }
                }
                for &item in &node.children {
                    out.push_str("<li>");
                    render_item(out, nodes, &nodes[item].children, *tight, defs);
                    out.push_str("</li>\n");
                }
                out.push_str("</");
                out.push_str(tag);
                out.push_str(">\n");
            }
            Kind::Table { aligns, rows } => render_table(out, aligns, rows, defs),
            Kind::Document | Kind::Item { .. } => {}
        }
    }
}

fn paragraph(out: &mut String, text: &str, tight: bool, prefix: &str, defs: &Defs) {
    if !tight {
        out.push_str("<p>");
    }
    out.push_str(prefix);
    inline::render(out, text, defs);
    if !tight {
        out.push_str("</p>\n");
    }
}

/// A list item's blocks; a first paragraph starting with `[ ]` or `[x]` makes a task item.
fn render_item(out: &mut String, nodes: &[Node], ids: &[usize], tight: bool, defs: &Defs) {
    if let Some((&first, rest)) = ids.split_first()
        && matches!(nodes[first].kind, Kind::Paragraph)
    {
        let text = &nodes[first].text;
        let checkbox = match text.get(..4) {
            Some("[ ] " | "[ ]\t" | "[ ]\n") => Some(r#"<input disabled="" type="checkbox"/>"#),
            Some("[x] " | "[x]\t" | "[x]\n" | "[X] " | "[X]\t" | "[X]\n") => {
                Some(r#"<input disabled="" type="checkbox" checked=""/>"#)
            }
            _ => None,
        };
        if let Some(checkbox) = checkbox {
            paragraph(out, &text[3..], tight, &format!("{checkbox}\n"), defs);
            render_blocks(out, nodes, rest, tight, defs);
            return;
        }
    }
    render_blocks(out, nodes, ids, tight, defs);
}

fn render_table(out: &mut String, aligns: &[Align], rows: &[Vec<String>], defs: &Defs) {
    out.push_str("<table>");
    for (r, row) in rows.iter().enumerate() {
        let cell = if r == 0 {
            out.push_str("<thead><tr>");
            "th"
        } else {
            out.push_str("<tr>");
            "td"
        };
        for (text, align) in row.iter().zip(aligns) {
            out.push('<');
            out.push_str(cell);
            // A class, not an inline `style`: the page's CSP (`style-src 'self'`) drops inline
            // styles, so only the stylesheet's `.align-*` rules can align a column.
            out.push_str(match align {
                Align::None => ">",
                Align::Left => " class=\"align-left\">",
                Align::Center => " class=\"align-center\">",
                Align::Right => " class=\"align-right\">",
            });
            inline::render(out, text, defs);
            out.push_str("</");
            out.push_str(cell);
            out.push('>');
        }
        out.push_str(if r == 0 {
            "</tr></thead><tbody>\n"
        } else {
            "</tr>\n"
        });
    }
    out.push_str("</tbody></table>\n");
}

/// Escapes text for an element's content or a quoted attribute value.
fn escape_text(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(escaped);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

/// Writes a URL for an `href="…"`: characters outside a safe set are percent-encoded, `&`
/// and `'` become entities (as pulldown-cmark's `escape_href`).
fn escape_href(out: &mut String, url: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in url.as_bytes() {
        match b {
            b'&' => out.push_str("&amp;"),
            b'\'' => out.push_str("&#x27;"),
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'!'
            | b'#'..=b'%'
            | b'('..=b'/'
            | b':'
            | b';'
            | b'='
            | b'?'
            | b'@'
            | b'_'
            | b'~' => out.push(char::from(b)),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// Keeps relative links and http(s)/mailto ones; anything else (`javascript:`, `data:`,
/// `vbscript:` …) becomes an empty target.
fn safe_url(url: &str) -> &str {
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
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cited_sources_become_links_and_nothing_else_changes() {
        let sources = || {
            [
                (1, "/api/files/a1/content".to_owned(), "facts \"x\".txt"),
                (2, "/api/files/b2/content".to_owned(), "more.md"),
            ]
        };
        let out = render_cited(
            "A quokka [1], clover [2] and [3].\n\n`[1]` <b>x</b>\n\n[1]: https://evil.example\n",
            sources(),
        );
        assert_eq!(
            out,
            "<p>A quokka <a href=\"/api/files/a1/content\" title=\"facts &quot;x&quot;.txt\">1</a>, \
             clover <a href=\"/api/files/b2/content\" title=\"more.md\">2</a> and [3].</p>\n\
             <p><code>[1]</code> &lt;b&gt;x&lt;/b&gt;</p>\n"
        );
        assert_eq!(render_cited("plain [1]", []), render("plain [1]"));
        let hostile = render_cited("[1]", [(1, "javascript:alert(1)".to_owned(), "x")]);
        assert!(!hostile.contains("javascript"), "{hostile}");
    }

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

    /// Renders with the newlines between tags removed (they do not show).
    fn html(markdown: &str) -> String {
        render(markdown)
            .replace(">\n<", "><")
            .replace(CODE_BLOCK_OPEN, "[copy]")
            .trim_end()
            .to_owned()
    }

    #[test]
    fn headings_in_both_styles() {
        assert_eq!(
            html("# One\n## Two ##\n###### Six"),
            "<h1>One</h1><h2>Two</h2><h6>Six</h6>"
        );
        assert_eq!(html("####### seven"), "<p>####### seven</p>");
        assert_eq!(html("#hashtag"), "<p>#hashtag</p>");
        assert_eq!(html("Title\n===\n\nSub\n---"), "<h1>Title</h1><h2>Sub</h2>");
    }

    #[test]
    fn emphasis_strong_and_strikethrough() {
        assert_eq!(
            html("*em* _em_ **strong** __strong__ ***both*** ~~gone~~ ~gone~"),
            "<p><em>em</em> <em>em</em> <strong>strong</strong> <strong>strong</strong> \
             <em><strong>both</strong></em> <del>gone</del> <del>gone</del></p>"
        );
        assert_eq!(
            html("**bold *and em* inside**"),
            "<p><strong>bold <em>and em</em> inside</strong></p>"
        );
        // Underscores inside words stay (snake_case); stars may emphasize inside a word.
        assert_eq!(
            html("snake_case_name and un*frigging*believable"),
            "<p>snake_case_name and un<em>frigging</em>believable</p>"
        );
        assert_eq!(html("2 * 3 * 4 and a * b"), "<p>2 * 3 * 4 and a * b</p>");
        assert_eq!(html("**unclosed and *half"), "<p>**unclosed and *half</p>");
        assert_eq!(
            html("*foo**bar**baz*"),
            "<p><em>foo<strong>bar</strong>baz</em></p>"
        );
    }

    #[test]
    fn code_spans_keep_their_content_literal() {
        assert_eq!(
            html("`a <b> *c*` and ``x ` y`` and `` `tick` ``"),
            "<p><code>a &lt;b&gt; *c*</code> and <code>x ` y</code> and <code>`tick`</code></p>"
        );
        assert_eq!(
            html("`\\*not escaped\\*`"),
            "<p><code>\\*not escaped\\*</code></p>"
        );
        assert_eq!(
            html("`unclosed and *em*"),
            "<p>`unclosed and <em>em</em></p>"
        );
        assert_eq!(html("`line\nbreak`"), "<p><code>line break</code></p>");
    }

    #[test]
    fn fenced_and_indented_code_blocks() {
        assert_eq!(
            render("~~~\n<x>\n\tindented\n~~~\n"),
            format!("{CODE_BLOCK_OPEN}<pre><code>&lt;x&gt;\n\tindented\n</code></pre>\n</div>")
        );
        assert_eq!(
            html("````md\n```\ninner\n```\n````"),
            "[copy]<pre><code class=\"language-md\">```\ninner\n```\n</code></pre></div>"
        );
        assert_eq!(
            html("    let x = 1;\n\n    x\n"),
            "[copy]<pre><code>let x = 1;\n\nx\n</code></pre></div>"
        );
        assert_eq!(
            html("- item\n\n  ```sh\n  ls\n  ```"),
            "<ul><li><p>item</p>[copy]<pre><code class=\"language-sh\">ls\n</code></pre></div></li></ul>"
        );
        // A language with quotes cannot leave its attribute.
        assert_eq!(
            html("```\"><script>\nx\n```"),
            "[copy]<pre><code class=\"language-&quot;&gt;&lt;script&gt;\">x\n</code></pre></div>"
        );
    }

    #[test]
    fn lists_tight_loose_nested_ordered_and_tasks() {
        assert_eq!(
            html("- a\n- b\n  - c\n* d"),
            "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul><ul><li>d</li></ul>"
        );
        assert_eq!(
            html("1. a\n\n2. b"),
            "<ol><li><p>a</p></li><li><p>b</p></li></ol>"
        );
        assert_eq!(
            html("3) three\n4) four"),
            "<ol start=\"3\"><li>three</li><li>four</li></ol>"
        );
        assert_eq!(
            html("- [ ] todo\n- [x] done\n- [X] also"),
            "<ul><li><input disabled=\"\" type=\"checkbox\"/>\ntodo</li>\
             <li><input disabled=\"\" type=\"checkbox\" checked=\"\"/>\ndone</li>\
             <li><input disabled=\"\" type=\"checkbox\" checked=\"\"/>\nalso</li></ul>"
        );
        // Only a list starting at 1 interrupts a paragraph.
        assert_eq!(
            html("Total:\n2. not a list"),
            "<p>Total:\n2. not a list</p>"
        );
        assert_eq!(html("Steps:\n1. one"), "<p>Steps:</p><ol><li>one</li></ol>");
        assert_eq!(html("- a\nlazy"), "<ul><li>a\nlazy</li></ul>");
    }

    #[test]
    fn block_quotes_rules_and_breaks() {
        assert_eq!(
            html("> a\n> > b\nlazy"),
            "<blockquote><p>a</p><blockquote><p>b\nlazy</p></blockquote></blockquote>"
        );
        assert_eq!(html("a\n\n---\n***\n_ _ _"), "<p>a</p><hr /><hr /><hr />");
        assert_eq!(
            html("two  \nspaces\\\nbackslash\nsoft"),
            "<p>two<br />\nspaces<br />\nbackslash\nsoft</p>"
        );
    }

    #[test]
    fn links_of_every_kind() {
        assert_eq!(
            html(
                "[a](/x \"T\") [b][r] [r][] [r] <https://e.com/a?b=1&c> <me@e.com>\n\n[R]: https://r.org 'Ref'"
            ),
            "<p><a href=\"/x\" title=\"T\">a</a> <a href=\"https://r.org\" title=\"Ref\">b</a> \
             <a href=\"https://r.org\" title=\"Ref\">r</a> <a href=\"https://r.org\" title=\"Ref\">r</a> \
             <a href=\"https://e.com/a?b=1&amp;c\">https://e.com/a?b=1&amp;c</a> \
             <a href=\"mailto:me@e.com\">me@e.com</a></p>"
        );
        assert_eq!(
            html("[a](<with space> (t))"),
            "<p><a href=\"with%20space\" title=\"t\">a</a></p>"
        );
        assert_eq!(html("[a](/p(1))"), "<p><a href=\"/p(1)\">a</a></p>");
        assert_eq!(
            html("[outer [inner](/i)](/o)"),
            "<p>[outer <a href=\"/i\">inner</a>](/o)</p>"
        );
        assert_eq!(
            html("[*em* `code`](/x)"),
            "<p><a href=\"/x\"><em>em</em> <code>code</code></a></p>"
        );
        assert_eq!(
            html("[undefined] and [x](missing"),
            "<p>[undefined] and [x](missing</p>"
        );
        assert_eq!(
            html("![alt *text*](/i.png)"),
            "<p><a href=\"/i.png\">alt <em>text</em></a></p>"
        );
    }

    /// Alignment is a class: the page's CSP (`style-src 'self'`) blocks inline `style`
    /// attributes, so an inline `text-align` would never show.
    #[test]
    fn table_columns_are_aligned_by_class_not_inline_style() {
        let out = html("| l | c | r |\n|:--|:-:|--:|\n| 1 | 2 | 3 |");
        assert!(!out.contains("style="), "{out}");
        assert!(out.contains("<th class=\"align-left\">l</th>"), "{out}");
        assert!(out.contains("<td class=\"align-center\">2</td>"), "{out}");
        assert!(out.contains("<td class=\"align-right\">3</td>"), "{out}");
    }

    #[test]
    fn tables_with_alignment_and_escaped_pipes() {
        assert_eq!(
            html(
                "| a | b | c | d |\n|---|:--|:-:|--:|\n| `x\\|y` | **b** | c\n| 1 | 2 | 3 | 4 | 5 |"
            ),
            "<table><thead><tr><th>a</th><th class=\"align-left\">b</th>\
             <th class=\"align-center\">c</th><th class=\"align-right\">d</th></tr></thead><tbody>\
             <tr><td><code>x|y</code></td><td class=\"align-left\"><strong>b</strong></td>\
             <td class=\"align-center\">c</td><td class=\"align-right\"></td></tr>\
             <tr><td>1</td><td class=\"align-left\">2</td><td class=\"align-center\">3</td>\
             <td class=\"align-right\">4</td></tr></tbody></table>"
        );
        assert_eq!(
            html("a | b\n--|--\n\nafter"),
            "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody></tbody></table><p>after</p>"
        );
        assert_eq!(html("Title\n---"), "<h2>Title</h2>");
        assert_eq!(
            html("a | b\n-- | --\n> quote"),
            "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody></tbody></table><blockquote><p>quote</p></blockquote>"
        );
    }

    #[test]
    fn escapes_and_entities() {
        assert_eq!(
            html("\\*not em\\* \\# \\\\ \\a"),
            "<p>*not em* # \\ \\a</p>"
        );
        assert_eq!(
            html("&copy; &amp; &#65; &#x1F600; &#0; &bogus; & AT&T"),
            "<p>© &amp; A 😀 \u{FFFD} &amp;bogus; &amp; AT&amp;T</p>"
        );
        assert_eq!(html("a\0b"), "<p>a\u{FFFD}b</p>");
    }

    #[test]
    fn attribute_values_cannot_be_escaped_from() {
        for (markdown, href) in [
            ("[x](\"onmouseover=alert(1))", "%22onmouseover=alert(1)"),
            (
                "<http://a.b/\"onmouseover=alert(1)>",
                "http://a.b/%22onmouseover=alert(1)",
            ),
            ("[x](/a'b)", "/a&#x27;b"),
            ("[x](/é<>)", "/%C3%A9%3C%3E"),
        ] {
            let out = render(markdown);
            assert!(
                out.contains(&format!("href=\"{href}\"")),
                "{markdown} → {out}"
            );
        }
        let out = render("[x](/u \"a\\\" onclick=\\\"b\")");
        assert!(out.contains("title=\"a&quot; onclick=&quot;b\""), "{out}");
    }

    #[test]
    fn script_targets_are_dropped_in_every_link_form() {
        for markdown in [
            "[x](&#106;avascript:alert(1))",
            "[x](java&#x09;script:alert(1))",
            "[x](<javascript:alert(1)>)",
            "[x][r]\n\n[r]: javascript:alert(1)",
            "<javascript:alert(1)>",
            "<JAVASCRIPT:alert(1)>",
            "![x](data:image/svg+xml;base64,PHN2Zz4=)",
            "<vbscript:msgbox>",
        ] {
            let out = render(markdown);
            assert!(out.contains("href=\"\""), "{markdown} → {out}");
            assert!(
                !out.contains("href=\"j") && !out.contains("href=\"J"),
                "{markdown} → {out}"
            );
            assert!(
                !out.contains("href=\"data") && !out.contains("href=\"vb"),
                "{markdown} → {out}"
            );
        }
    }

    #[test]
    fn only_its_own_tags_are_ever_written() {
        const ALLOWED: &[&str] = &[
            "a",
            "em",
            "strong",
            "del",
            "code",
            "pre",
            "p",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "ul",
            "ol",
            "li",
            "blockquote",
            "hr",
            "br",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
            "input",
            "div",
            "button",
        ];
        let pieces = [
            "<b>",
            "</p>",
            "<img src=x onerror=alert(1)>",
            "<!-- c -->",
            "<?php ?>",
            "<![CDATA[x]]>",
            "*",
            "_",
            "`",
            "[",
            "](",
            ")",
            "\n",
            "\n\n",
            "> ",
            "- ",
            "1. ",
            "|",
            "---",
            "```",
            "    ",
            "&lt;",
            "&#60;",
            "\\<",
            "<a href=x>",
            "<http://x>",
            "\"",
            "'",
            "~~",
            "a",
            "é",
        ];
        // Every sequence of three pieces, so each can meet each other.
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let markdown = format!("{a}{b}{c}x{c}{b}{a}");
                    let out = render(&markdown);
                    for tag in out.split('<').skip(1) {
                        let name: String = tag
                            .trim_start_matches('/')
                            .chars()
                            .take_while(char::is_ascii_alphanumeric)
                            .collect();
                        assert!(
                            ALLOWED.contains(&name.as_str()),
                            "<{tag} from {markdown:?}: {out}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn deep_nesting_and_pathological_input_stay_cheap() {
        for markdown in [
            "> ".repeat(100_000),
            "- ".repeat(50_000),
            "1. ".repeat(30_000),
            "*a ".repeat(30_000),
            "[".repeat(50_000) + &"](x)".repeat(50_000),
            "![".repeat(20_000) + &"[a](b)".repeat(20_000),
            (1..300).map(|n| "`".repeat(n) + "x").collect(),
            "| a |\n|---|\n".repeat(5_000),
        ] {
            let started = std::time::Instant::now();
            let out = render(&markdown);
            assert!(!out.is_empty());
            assert!(
                started.elapsed().as_secs() < 5,
                "too slow on {}…",
                &markdown[..20]
            );
        }
        // Past 32 levels, quotes are text.
        let out = render(&"> ".repeat(40).replace("> ", ">"));
        assert_eq!(out.matches("<blockquote>").count(), 32, "{out}");
    }

    /// What the client rendered with pulldown-cmark before this renderer (kept for comparison).
    fn pulldown_render(markdown: &str) -> String {
        use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
        let options =
            Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
        let safe = |url: CowStr<'_>| CowStr::from(safe_url(&url).to_owned());
        let events = Parser::new_ext(markdown, options).map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::HtmlBlock) => Event::Start(Tag::Paragraph),
            Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::Paragraph),
            Event::Start(
                Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }
                | Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                },
            ) => Event::Start(Tag::Link {
                link_type,
                dest_url: safe(dest_url),
                title,
                id,
            }),
            Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
            other => other,
        });
        let mut out = String::new();
        pulldown_cmark::html::push_html(&mut out, events);
        out
    }

    /// HTML with the differences that do not show removed: newlines between tags, the code
    /// block wrapper, optional escapes of quotes, and pulldown-cmark's inline alignment styles
    /// (which this renderer writes as `align-*` classes).
    fn comparable(html: &str) -> String {
        let mut s = html
            .replace(CODE_BLOCK_OPEN, "")
            .replace("style=\"text-align: left\"", "class=\"align-left\"")
            .replace("style=\"text-align: center\"", "class=\"align-center\"")
            .replace("style=\"text-align: right\"", "class=\"align-right\"")
            .replace("</pre>\n</div>", "</pre>")
            .replace("&quot;", "\"")
            .replace("&#39;", "'");
        while s.contains(">\n") || s.contains("\n<") {
            s = s.replace(">\n", ">").replace("\n<", "<");
        }
        s.trim().to_owned()
    }

    #[test]
    fn renders_replies_as_pulldown_cmark_did() {
        let replies = [
            "Sure! Here's a **quick** overview:\n\n1. First, install the *tool*.\n2. Then run `cargo build`.\n3. Done.\n",
            "## Example\n\n```rust\nfn main() {\n    println!(\"Hello, {}!\", \"world\");\n}\n```\n\nThat prints `Hello, world!`.",
            "| Name | Age | City |\n|:-----|:---:|-----:|\n| Ann | 30 | Paris |\n| Bob | 25 | *Rome* |\n\nSee the [docs](https://example.com/docs \"Docs\").",
            "> **Note:** quotes can hold lists:\n> - one\n> - two\n>\n> and more.\n\n---\n\nDone.",
            "- [x] Write code\n- [ ] Test it\n  - [ ] unit\n  - [ ] e2e\n- [ ] Ship\n",
            "Use `a_b_c` or __bold__ and ~~old~~ new.\nLine two  \nhard break, then \\\nanother.",
            "1. Step one:\n\n   ```bash\n   ls -la\n   ```\n\n2. Step two\n\n   More text.\n",
            "Links: <https://rust-lang.org>, [ref][1], [Ref], email <a@b.co>.\n\n[1]: https://one.example\n[ref]: /relative \"Title\"",
            "Title\n=====\n\nSub-title\n---------\n\nText with &copy; and &amp; and &#8212; dash.",
            "* a\n* b\n\n\n* c\n\n+ other list\n\n10. ten\n11. eleven",
            "Inline `code with `` backticks` and ``double ` inside``.\n\n    indented code\n    block\n\nafter",
            "Math-like: 2 * 3 * 4 = 24, a*b*c, *emph*asis, snake_case_word, __init__.py",
            "Nested **bold with *em* and `code`** end.\n\n***both*** and *__mixed__*.",
            "Unfinished stream: **bold with no end and a [link](https://x.y",
            "Escapes: \\*not\\*, \\_not\\_, \\`not\\`, \\[not\\](x), 1\\. not list, \\# not heading",
            "```\nunclosed fence while streaming\nline 2",
            "Image: ![a cat](https://example.com/cat.png \"Cat\") and [link with ![img](i.png)](p)",
            "Table without pipes at the ends:\n\nA | B\n--|--\n1 | 2\n3 | 4\n",
            "> Quote with code:\n>\n> ```js\n> let a = 1;\n> ```\n",
            "- a\n    - b (4 spaces)\n        - c\n- d\n\n  continuation of d\n",
            "Trailing spaces   \nand tabs\there.\n\n\n\nMany blank lines.",
            "***\n___\n- - -\n\nRules above.",
            "Unicode: café, naïve, 日本語 **太字** and *斜体*, emoji 😀 ~~删除~~.",
            "[javascript](javascript:alert(1)) [data](data:text/html,x) [ok](mailto:a@b.c)",
        ];
        for reply in replies {
            assert_eq!(
                comparable(&render(reply)),
                comparable(&pulldown_render(reply)),
                "\n{reply}"
            );
        }
    }
}
