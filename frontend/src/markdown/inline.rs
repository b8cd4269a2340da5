//! Inline content: code spans, emphasis, strong, strikethrough, links, autolinks, escapes,
//! entities and line breaks, following CommonMark's delimiter-stack algorithm.
//!
//! The output is built from escaped text and the fixed tags written here; nothing from the
//! input is ever copied into the HTML unescaped, so `<tags>` in the text stay text.

use super::{block::Defs, escape_href, escape_text, safe_url};

/// A piece of the output. Delimiter runs keep their characters until emphasis is resolved;
/// tags found for them go into `before` (closing) and `after` (opening).
struct Piece {
    html: String,
    before: String,
    after: String,
    /// Plain HTML that more text may be appended to.
    plain: bool,
}

struct Delim {
    piece: usize,
    ch: u8,
    count: usize,
    orig: usize,
    can_open: bool,
    can_close: bool,
}

struct Bracket {
    piece: usize,
    delims: usize,
    image: bool,
    /// Byte offset just after the `[`.
    start: usize,
}

struct Inline<'a> {
    src: &'a str,
    defs: &'a Defs,
    pieces: Vec<Piece>,
    delims: Vec<Delim>,
    brackets: Vec<Bracket>,
    /// The link openers `brackets[..links_closed]` are inactive: a link contains no link.
    links_closed: usize,
    /// Backtick run lengths known to have no closing run further on.
    no_closer: Vec<bool>,
}

/// Renders a paragraph's (or heading's, or cell's) raw text as HTML.
pub fn render(out: &mut String, text: &str, defs: &Defs) {
    let src = text.trim_matches([' ', '\t', '\n']);
    let mut p = Inline {
        src,
        defs,
        pieces: Vec::new(),
        delims: Vec::new(),
        brackets: Vec::new(),
        links_closed: 0,
        no_closer: Vec::new(),
    };
    p.run();
    p.process_emphasis(0);
    for piece in p.pieces {
        out.push_str(&piece.before);
        out.push_str(&piece.html);
        out.push_str(&piece.after);
    }
}

fn is_special(b: u8) -> bool {
    matches!(
        b,
        b'\n' | b'\\' | b'`' | b'*' | b'_' | b'~' | b'[' | b']' | b'!' | b'<' | b'&'
    )
}

fn is_punct(c: Option<char>) -> bool {
    c.is_some_and(|c| {
        c.is_ascii_punctuation() || (!c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace())
    })
}

fn is_space(c: Option<char>) -> bool {
    c.is_none_or(char::is_whitespace)
}

impl Inline<'_> {
    fn push_piece(&mut self, html: String, plain: bool) {
        self.pieces.push(Piece {
            html,
            before: String::new(),
            after: String::new(),
            plain,
        });
    }

    /// Appends HTML to the last plain piece (or a new one).
    fn html(&mut self, html: &str) {
        match self.pieces.last_mut() {
            Some(p) if p.plain => p.html.push_str(html),
            _ => self.push_piece(html.to_owned(), true),
        }
    }

    fn text(&mut self, text: &str) {
        let mut escaped = String::new();
        escape_text(&mut escaped, text);
        self.html(&escaped);
    }

    fn run(&mut self) {
        let src = self.src;
        let b = src.as_bytes();
        let mut i = 0;
        while i < b.len() {
            i = match b[i] {
                b'\n' => self.line_break(i, false),
                b'\\' => match b.get(i + 1) {
                    Some(b'\n') => self.line_break(i + 1, true),
                    Some(&c) if c.is_ascii_punctuation() => {
                        self.text(&src[i + 1..i + 2]);
                        i + 2
                    }
                    _ => {
                        self.text("\\");
                        i + 1
                    }
                },
                b'`' => self.code_span(i),
                b'*' | b'_' | b'~' => self.delim_run(i),
                b'[' => self.open_bracket(i, false),
                b'!' if b.get(i + 1) == Some(&b'[') => self.open_bracket(i, true),
                b']' => self.close_bracket(i),
                b'<' => self.autolink(i).unwrap_or_else(|| {
                    self.text("<");
                    i + 1
                }),
                b'&' => match entity(&src[i..]) {
                    Some((c, len)) => {
                        self.text(c.encode_utf8(&mut [0; 4]));
                        i + len
                    }
                    None => {
                        self.text("&");
                        i + 1
                    }
                },
                _ => {
                    let end = b[i + 1..]
                        .iter()
                        .position(|&c| is_special(c))
                        .map_or(b.len(), |p| i + 1 + p);
                    self.text(&src[i..end]);
                    end
                }
            };
        }
    }

    /// A line ending at `i`: a hard break after two spaces or a backslash, else a soft one.
    fn line_break(&mut self, i: usize, backslash: bool) -> usize {
        let mut hard = backslash;
        if !backslash && let Some(p) = self.pieces.last_mut().filter(|p| p.plain) {
            hard = p.html.ends_with("  ");
            let kept = p.html.trim_end_matches([' ', '\t']).len();
            p.html.truncate(kept);
        }
        self.html(if hard { "<br />\n" } else { "\n" });
        let b = self.src.as_bytes();
        let mut j = i + 1;
        while matches!(b.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        j
    }

    fn code_span(&mut self, i: usize) -> usize {
        let b = self.src.as_bytes();
        let len = b[i..].iter().take_while(|&&c| c == b'`').count();
        let start = i + len;
        if !self.no_closer.get(len).copied().unwrap_or(false) {
            let mut j = start;
            while let Some(p) = b[j..].iter().position(|&c| c == b'`') {
                let open = j + p;
                let run = b[open..].iter().take_while(|&&c| c == b'`').count();
                if run == len {
                    let content = self.src[start..open].replace('\n', " ");
                    let trimmed = match content.strip_prefix(' ').and_then(|c| c.strip_suffix(' '))
                    {
                        Some(inner) if !content.bytes().all(|c| c == b' ') => inner,
                        _ => &content,
                    };
                    let mut html = String::from("<code>");
                    escape_text(&mut html, trimmed);
                    html.push_str("</code>");
                    self.html(&html);
                    return open + run;
                }
                j = open + run;
            }
            if self.no_closer.len() <= len {
                self.no_closer.resize(len + 1, false);
            }
            self.no_closer[len] = true;
        }
        self.text(&self.src[i..start]);
        start
    }

    fn delim_run(&mut self, i: usize) -> usize {
        let src = self.src;
        let ch = src.as_bytes()[i];
        let len = src.as_bytes()[i..].iter().take_while(|&&c| c == ch).count();
        let end = i + len;
        let before = src[..i].chars().next_back();
        let after = src[end..].chars().next();
        let left = !is_space(after) && (!is_punct(after) || is_space(before) || is_punct(before));
        let right = !is_space(before) && (!is_punct(before) || is_space(after) || is_punct(after));
        let (can_open, can_close) = match ch {
            b'_' => (
                left && (!right || is_punct(before)),
                right && (!left || is_punct(after)),
            ),
            // As pulldown-cmark: `~~` may be inside a word, `~` may not (like `_`).
            b'~' if len == 2 => (!is_space(after), !is_space(before)),
            b'~' if len == 1 => (
                left && (!right || is_punct(before)),
                right && (!left || is_punct(after)),
            ),
            b'~' => (false, false),
            _ => (left, right),
        };
        self.push_piece(src[i..end].to_owned(), false);
        if can_open || can_close {
            self.delims.push(Delim {
                piece: self.pieces.len() - 1,
                ch,
                count: len,
                orig: len,
                can_open,
                can_close,
            });
        }
        end
    }

    fn open_bracket(&mut self, i: usize, image: bool) -> usize {
        let len = if image { 2 } else { 1 };
        self.push_piece(self.src[i..i + len].to_owned(), false);
        self.brackets.push(Bracket {
            piece: self.pieces.len() - 1,
            delims: self.delims.len(),
            image,
            start: i + len,
        });
        i + len
    }

    fn close_bracket(&mut self, i: usize) -> usize {
        let Some(opener) = self.brackets.pop() else {
            self.text("]");
            return i + 1;
        };
        let index = self.brackets.len();
        let active = opener.image || index >= self.links_closed;
        self.links_closed = self.links_closed.min(index);
        let target = if active {
            self.link_target(opener.start, i)
        } else {
            None
        };
        let Some((dest, title, end)) = target else {
            self.text("]");
            return i + 1;
        };
        self.process_emphasis(opener.delims);
        let mut open = String::from("<a href=\"");
        escape_href(&mut open, safe_url(&dest));
        if let Some(title) = title {
            open.push_str("\" title=\"");
            escape_text(&mut open, &title);
        }
        open.push_str("\">");
        self.pieces[opener.piece].html = open;
        self.push_piece("</a>".to_owned(), false);
        if !opener.image {
            self.links_closed = index;
        }
        end
    }

    /// What follows the `]` at `close`: `(dest "title")`, `[label]`, `[]` or nothing (a
    /// reference by the link text itself) → destination, title and where the link ends.
    fn link_target(
        &self,
        text_start: usize,
        close: usize,
    ) -> Option<(String, Option<String>, usize)> {
        let src = self.src;
        let after = close + 1;
        if src.as_bytes().get(after) == Some(&b'(')
            && let Some(found) = inline_target(src, after + 1)
        {
            return Some(found);
        }
        let (label, end) = match link_label(src, after) {
            Some((label, end)) if !label.trim().is_empty() => (label, end),
            Some((_, end)) => (&src[text_start..close], end),
            None => (&src[text_start..close], after),
        };
        let (dest, title) = self.defs.get(&normalize_label(label))?;
        Some((dest.clone(), title.clone(), end))
    }

    fn autolink(&mut self, i: usize) -> Option<usize> {
        let rest = &self.src[i + 1..];
        let end = rest.find(['>', '<', ' ', '\t', '\n'])?;
        if rest.as_bytes()[end] != b'>' {
            return None;
        }
        let inner = &rest[..end];
        let href = if is_uri(inner) {
            let mut h = String::new();
            escape_href(&mut h, safe_url(inner));
            h
        } else if is_email(inner) {
            let mut h = String::from("mailto:");
            escape_href(&mut h, inner);
            h
        } else {
            return None;
        };
        let mut html = format!("<a href=\"{href}\">");
        escape_text(&mut html, inner);
        html.push_str("</a>");
        self.html(&html);
        Some(i + 1 + end + 1)
    }

    /// Matches closers with openers among the delimiters from `bottom` up, then drops them.
    fn process_emphasis(&mut self, bottom: usize) {
        let n = self.delims.len();
        // A doubly linked list over delims[bottom..]: removal keeps indices stable.
        let mut prev: Vec<Option<usize>> = (bottom..n)
            .map(|k| k.checked_sub(1).filter(|&p| p >= bottom))
            .collect();
        let mut next: Vec<Option<usize>> = (bottom..n)
            .map(|k| Some(k + 1).filter(|&x| x < n))
            .collect();
        let at = |k: usize| k - bottom;
        // Per closer kind, the index at or below which no opener can be found.
        let mut openers_bottom = [[[None::<usize>; 3]; 2]; 3];
        let mut closer = (bottom < n).then_some(bottom);
        while let Some(c) = closer {
            let d = &self.delims[c];
            if !d.can_close {
                closer = next[at(c)];
                continue;
            }
            let kind = match d.ch {
                b'*' => 0,
                b'_' => 1,
                _ => 2,
            };
            let floor = &mut openers_bottom[kind][usize::from(d.can_open)][d.orig % 3];
            let mut found = None;
            let mut o = prev[at(c)];
            while let Some(oi) = o {
                if floor.is_some_and(|f| oi <= f) {
                    break;
                }
                let od = &self.delims[oi];
                // CommonMark's "rule of 3" for runs that can both open and close.
                let odd = (od.can_close || d.can_open)
                    && (od.orig + d.orig).is_multiple_of(3)
                    && !(od.orig.is_multiple_of(3) && d.orig.is_multiple_of(3));
                let fits = if d.ch == b'~' {
                    od.count == d.count
                } else {
                    !odd
                };
                if od.ch == d.ch && od.can_open && fits {
                    found = Some(oi);
                    break;
                }
                o = prev[at(oi)];
            }
            let Some(oi) = found else {
                *floor = prev[at(c)];
                let after = next[at(c)];
                if !self.delims[c].can_open {
                    unlink(&mut prev, &mut next, bottom, c);
                }
                closer = after;
                continue;
            };
            let (used, tag) = if d.ch == b'~' {
                (d.count, "del")
            } else if d.count >= 2 && self.delims[oi].count >= 2 {
                (2, "strong")
            } else {
                (1, "em")
            };
            let (op, cp) = (self.delims[oi].piece, self.delims[c].piece);
            self.pieces[op].after.insert_str(0, &format!("<{tag}>"));
            self.pieces[cp].before.push_str(&format!("</{tag}>"));
            self.delims[oi].count -= used;
            self.delims[c].count -= used;
            self.pieces[op].html.truncate(self.delims[oi].count);
            self.pieces[cp].html.truncate(self.delims[c].count);
            // Delimiters between the two become text.
            next[at(oi)] = Some(c);
            prev[at(c)] = Some(oi);
            if self.delims[oi].count == 0 {
                unlink(&mut prev, &mut next, bottom, oi);
            }
            if self.delims[c].count == 0 {
                closer = next[at(c)];
                unlink(&mut prev, &mut next, bottom, c);
            }
        }
        self.delims.truncate(bottom);
    }
}

fn unlink(prev: &mut [Option<usize>], next: &mut [Option<usize>], bottom: usize, k: usize) {
    let (p, n) = (prev[k - bottom], next[k - bottom]);
    if let Some(p) = p {
        next[p - bottom] = n;
    }
    if let Some(n) = n {
        prev[n - bottom] = p;
    }
}

/// Skips spaces and tabs, with at most one line ending among them.
fn skip_space(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    let mut newline = false;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\t' => {}
            b'\n' if !newline => newline = true,
            _ => break,
        }
        i += 1;
    }
    i
}

/// `dest "title")` from `i` (just after the `(`) → destination, title, end.
fn inline_target(s: &str, i: usize) -> Option<(String, Option<String>, usize)> {
    let i = skip_space(s, i);
    if s.as_bytes().get(i) == Some(&b')') {
        return Some((String::new(), None, i + 1));
    }
    let (dest, after_dest) = link_destination(s, i)?;
    let j = skip_space(s, after_dest);
    let (title, j) = match link_title(s, j) {
        Some((title, end)) if j > after_dest => (Some(title), skip_space(s, end)),
        _ => (None, j),
    };
    (s.as_bytes().get(j) == Some(&b')')).then_some((dest, title, j + 1))
}

/// `<dest>` or a run without spaces or control characters, parentheses balanced.
fn link_destination(s: &str, i: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.get(i) == Some(&b'<') {
        let mut j = i + 1;
        loop {
            match *b.get(j)? {
                b'>' => return Some((unescape(&s[i + 1..j]), j + 1)),
                b'\n' | b'<' => return None,
                b'\\' if b.get(j + 1).is_some_and(u8::is_ascii_punctuation) => j += 2,
                _ => j += 1,
            }
        }
    }
    let mut depth = 0usize;
    let mut j = i;
    while let Some(&c) = b.get(j) {
        match c {
            b'\\' if b.get(j + 1).is_some_and(u8::is_ascii_punctuation) => j += 1,
            b'(' => {
                depth += 1;
                if depth > 32 {
                    return None;
                }
            }
            b')' if depth == 0 => break,
            b')' => depth -= 1,
            0..=b' ' | 0x7f => break,
            _ => {}
        }
        j += 1;
    }
    (j > i && depth == 0).then(|| (unescape(&s[i..j]), j))
}

/// `"title"`, `'title'` or `(title)` at `i` → the title and its end.
fn link_title(s: &str, i: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let close = match *b.get(i)? {
        b'"' => b'"',
        b'\'' => b'\'',
        b'(' => b')',
        _ => return None,
    };
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            c if c == close => return Some((unescape(&s[i + 1..j]), j + 1)),
            b'(' if close == b')' => return None,
            b'\\' if b.get(j + 1).is_some() => j += 2,
            _ => j += 1,
        }
    }
}

/// `[label]` at `i` → the label's raw text and the end.
fn link_label(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b']' => break,
            b'[' => return None,
            b'\\' if b.get(j + 1).is_some() => j += 2,
            _ => j += 1,
        }
    }
    (j - i <= 1000).then(|| (&s[i + 1..j], j + 1))
}

/// Labels match case-insensitively (ASCII) and with runs of whitespace as one space.
pub fn normalize_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for word in label.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.make_ascii_lowercase();
    out
}

/// A link reference definition at the start of `s`
/// (`[label]: dest "title"`, up to the end of its line) → label, destination, title, length.
pub fn link_definition(s: &str) -> Option<(String, String, Option<String>, usize)> {
    let (label, i) = link_label(s, 0)?;
    if label.trim().is_empty() || s.as_bytes().get(i) != Some(&b':') {
        return None;
    }
    let i = skip_space(s, i + 1);
    let (dest, after_dest) = link_destination(s, i)?;
    let line_end = |from: usize| -> Option<usize> {
        let rest = &s[from..];
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end]
            .bytes()
            .all(|c| c == b' ' || c == b'\t')
            .then(|| (from + end + 1).min(s.len()))
    };
    let j = skip_space(s, after_dest);
    if j > after_dest
        && let Some((title, end)) = link_title(s, j)
        && let Some(end) = line_end(end)
    {
        return Some((normalize_label(label), dest, Some(title), end));
    }
    let end = line_end(after_dest)?;
    Some((normalize_label(label), dest, None, end))
}

/// Removes backslash escapes and decodes entities (link destinations, titles, info strings).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1).is_some_and(u8::is_ascii_punctuation) => {
                out.push_str(&s[i + 1..i + 2]);
                i += 2;
            }
            b'&' => {
                let (c, len) = entity(&s[i..]).unwrap_or(('&', 1));
                out.push(c);
                i += len;
            }
            _ => {
                let end = b[i + 1..]
                    .iter()
                    .position(|&c| c == b'\\' || c == b'&')
                    .map_or(b.len(), |p| i + 1 + p);
                out.push_str(&s[i..end]);
                i = end;
            }
        }
    }
    out
}

/// The named entities most seen in text; others stay as written.
const ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("hellip", '…'),
    ("mdash", '—'),
    ("ndash", '–'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("bull", '•'),
    ("middot", '·'),
    ("deg", '°'),
    ("plusmn", '±'),
    ("times", '×'),
    ("divide", '÷'),
    ("minus", '−'),
    ("le", '≤'),
    ("ge", '≥'),
    ("ne", '≠'),
    ("larr", '←'),
    ("rarr", '→'),
    ("uarr", '↑'),
    ("darr", '↓'),
    ("harr", '↔'),
    ("euro", '€'),
    ("pound", '£'),
    ("yen", '¥'),
    ("cent", '¢'),
    ("sect", '§'),
    ("para", '¶'),
    ("check", '✓'),
];

/// `&name;`, `&#123;` or `&#x1F600;` at the start of `s` → the character and the length.
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.as_bytes().iter().take(34).position(|&c| c == b';')?;
    let body = &s[1..end];
    let c = if let Some(num) = body.strip_prefix('#') {
        let (digits, radix, max) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 6),
            None => (num, 10, 7),
        };
        if digits.is_empty() || digits.len() > max || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let n = u32::from_str_radix(digits, radix).ok()?;
        char::from_u32(n)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{FFFD}')
    } else {
        ENTITIES.iter().find(|(name, _)| *name == body)?.1
    };
    Some((c, end + 1))
}

/// `scheme:rest`: a scheme of 2–32 letters, digits, `+`, `.`, `-`, starting with a letter.
fn is_uri(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s.as_bytes()[..colon];
    (2..=32).contains(&scheme.len())
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
        && !s.bytes().any(|c| c.is_ascii_control())
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&c))
        && domain.split('.').all(|part| {
            let b = part.as_bytes();
            (1..=63).contains(&b.len())
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}
