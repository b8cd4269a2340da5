//! Block structure: lines → a tree of quotes, lists, paragraphs, headings, code blocks, rules
//! and tables, following the CommonMark parsing strategy (commonmark.js): each line first
//! continues the open containers it can, then may open new blocks, then adds its text.
//!
//! No HTML blocks: a line of HTML is paragraph text like any other, escaped when rendered.

use std::collections::HashMap;

use super::inline;

/// Link reference definitions: normalized label → (destination, title).
pub type Defs = HashMap<String, (String, Option<String>)>;

/// Deeper quotes and lists are read as text: bounds the recursion of rendering.
const MAX_DEPTH: usize = 32;

/// Column alignment of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    None,
    Left,
    Center,
    Right,
}

#[derive(Debug)]
pub enum Kind {
    Document,
    Quote,
    /// `marker`: the bullet (`-`, `+`, `*`) or, for ordered lists, the delimiter (`.`, `)`).
    List {
        marker: u8,
        start: Option<u32>,
        tight: bool,
    },
    /// `width`: the column where the item's content starts, relative to its container.
    Item {
        width: usize,
    },
    Paragraph,
    Heading(u8),
    /// `fence`: b'`' or b'~', 0 for an indented block.
    Code {
        fence: u8,
        len: usize,
        indent: usize,
        lang: String,
    },
    Rule,
    /// The first row is the header.
    Table {
        aligns: Vec<Align>,
        rows: Vec<Vec<String>>,
    },
}

#[derive(Debug)]
pub struct Node {
    pub kind: Kind,
    pub children: Vec<usize>,
    /// Paragraph, heading and code text.
    pub text: String,
    parent: usize,
    open: bool,
    depth: usize,
    first_line: usize,
    last_line: usize,
}

/// A parsed document: `nodes[0]` is the root.
pub struct Doc {
    pub nodes: Vec<Node>,
    pub defs: Defs,
}

pub fn parse(markdown: &str) -> Doc {
    let mut p = Parser {
        nodes: vec![Node {
            kind: Kind::Document,
            children: Vec::new(),
            text: String::new(),
            parent: 0,
            open: true,
            depth: 0,
            first_line: 0,
            last_line: 0,
        }],
        defs: Defs::new(),
        tip: 0,
        old_tip: 0,
        last_matched: 0,
        all_closed: true,
        line_no: 0,
        ln: "",
        offset: 0,
        column: 0,
        next_nonspace: 0,
        next_nonspace_column: 0,
        indent: 0,
        blank: false,
        partial_tab: false,
        line_done: false,
    };
    let text = markdown.replace('\0', "\u{FFFD}");
    let (text, unfinished) = match text.strip_suffix('\n') {
        Some(t) => (t, false),
        None => (text.as_str(), true),
    };
    for line in text.split('\n') {
        p.line_no += 1;
        p.incorporate(line.strip_suffix('\r').unwrap_or(line));
    }
    if unfinished && let Kind::Code { .. } = p.nodes[p.tip].kind {
        // A reply still streaming: its code's last line has no line ending yet.
        p.nodes[p.tip].text.pop();
    }
    while p.tip != 0 {
        p.finalize(p.tip, p.line_no);
    }
    p.finalize(0, p.line_no);
    Doc {
        nodes: p.nodes,
        defs: p.defs,
    }
}

struct Parser<'a> {
    nodes: Vec<Node>,
    defs: Defs,
    tip: usize,
    old_tip: usize,
    last_matched: usize,
    all_closed: bool,
    line_no: usize,
    ln: &'a str,
    offset: usize,
    column: usize,
    next_nonspace: usize,
    next_nonspace_column: usize,
    indent: usize,
    blank: bool,
    partial_tab: bool,
    /// The whole line was taken by the block that started on it (heading, rule, fence, …).
    line_done: bool,
}

fn space_or_tab(c: Option<u8>) -> bool {
    matches!(c, Some(b' ' | b'\t'))
}

impl<'a> Parser<'a> {
    fn peek(&self, at: usize) -> Option<u8> {
        self.ln.as_bytes().get(at).copied()
    }

    fn find_next_nonspace(&mut self) {
        let mut i = self.offset;
        let mut cols = self.column;
        loop {
            match self.peek(i) {
                Some(b' ') => cols += 1,
                Some(b'\t') => cols += 4 - cols % 4,
                _ => break,
            }
            i += 1;
        }
        self.blank = i >= self.ln.len();
        self.next_nonspace = i;
        self.next_nonspace_column = cols;
        self.indent = cols - self.column;
    }

    fn advance_next_nonspace(&mut self) {
        self.offset = self.next_nonspace;
        self.column = self.next_nonspace_column;
        self.partial_tab = false;
    }

    /// Moves `count` characters on, or `count` columns when `columns` (a tab may then be
    /// consumed in part).
    fn advance(&mut self, mut count: usize, columns: bool) {
        while count > 0 {
            match self.peek(self.offset) {
                None => break,
                Some(b'\t') => {
                    let to_tab = 4 - self.column % 4;
                    if columns {
                        self.partial_tab = to_tab > count;
                        let step = to_tab.min(count);
                        self.column += step;
                        if !self.partial_tab {
                            self.offset += 1;
                        }
                        count -= step;
                    } else {
                        self.partial_tab = false;
                        self.column += to_tab;
                        self.offset += 1;
                        count -= 1;
                    }
                }
                Some(_) => {
                    self.partial_tab = false;
                    self.offset += 1;
                    self.column += 1;
                    count -= 1;
                }
            }
        }
    }

    /// The rest of the line from the current position (a tab consumed in part counts as spaces).
    fn rest(&self) -> String {
        let mut s = String::new();
        let mut from = self.offset;
        if self.partial_tab {
            from += 1;
            for _ in 0..4 - self.column % 4 {
                s.push(' ');
            }
        }
        s.push_str(self.ln.get(from..).unwrap_or(""));
        s
    }

    fn add_line(&mut self) {
        let rest = self.rest();
        let text = &mut self.nodes[self.tip].text;
        text.push_str(&rest);
        text.push('\n');
    }

    fn incorporate(&mut self, ln: &'a str) {
        self.ln = ln;
        self.offset = 0;
        self.column = 0;
        self.blank = false;
        self.partial_tab = false;
        self.line_done = false;
        self.old_tip = self.tip;

        // 1. Continue the open blocks.
        let mut container = 0;
        while let Some(&last) = self.nodes[container].children.last() {
            if !self.nodes[last].open {
                break;
            }
            container = last;
            self.find_next_nonspace();
            match self.continues(container) {
                Continue::Yes => {}
                Continue::No => {
                    container = self.nodes[container].parent;
                    break;
                }
                Continue::LineDone => return,
            }
        }
        self.all_closed = container == self.old_tip;
        self.last_matched = container;

        // 2. Open new blocks.
        let mut matched_leaf = matches!(self.nodes[container].kind, Kind::Code { .. });
        while !matched_leaf {
            self.find_next_nonspace();
            match self.start(container) {
                Start::None => {
                    self.advance_next_nonspace();
                    break;
                }
                Start::Container => container = self.tip,
                Start::Leaf => {
                    container = self.tip;
                    matched_leaf = true;
                }
            }
        }

        // 3. Add the line's text.
        if !self.all_closed && !self.blank && matches!(self.nodes[self.tip].kind, Kind::Paragraph) {
            // A lazy continuation line of a paragraph.
            self.add_line();
            return;
        }
        self.close_unmatched();
        if self.line_done {
            return;
        }
        let ln = self.ln;
        match &mut self.nodes[container].kind {
            Kind::Code { .. } | Kind::Paragraph => self.add_line(),
            Kind::Table { aligns, rows } if !self.blank => {
                let mut row = split_row(ln.get(self.offset..).unwrap_or(""));
                row.resize(aligns.len(), String::new());
                rows.push(row);
            }
            _ if !self.blank => {
                self.add_child(Kind::Paragraph);
                self.advance_next_nonspace();
                self.add_line();
            }
            _ => {}
        }
    }

    fn continues(&mut self, container: usize) -> Continue {
        let indented = self.indent >= 4;
        match self.nodes[container].kind {
            Kind::Quote => {
                if !indented && self.peek(self.next_nonspace) == Some(b'>') {
                    self.advance_next_nonspace();
                    self.advance(1, false);
                    if space_or_tab(self.peek(self.offset)) {
                        self.advance(1, true);
                    }
                    Continue::Yes
                } else {
                    Continue::No
                }
            }
            Kind::Item { width } => {
                if self.blank {
                    if self.nodes[container].children.is_empty() {
                        // A list item can start with at most one blank line.
                        return Continue::No;
                    }
                    self.advance_next_nonspace();
                    Continue::Yes
                } else if self.indent >= width {
                    self.advance(width, true);
                    Continue::Yes
                } else {
                    Continue::No
                }
            }
            Kind::Document | Kind::List { .. } => Continue::Yes,
            Kind::Paragraph if !self.blank => Continue::Yes,
            // A line of a lone `|` ends a table (as pulldown-cmark).
            Kind::Table { .. }
                if !self.blank && self.ln[self.next_nonspace..].trim_end() != "|" =>
            {
                Continue::Yes
            }
            Kind::Paragraph | Kind::Table { .. } | Kind::Heading(_) | Kind::Rule => Continue::No,
            Kind::Code {
                fence, len, indent, ..
            } => {
                if fence == 0 {
                    if indented {
                        self.advance(4, true);
                    } else if self.blank {
                        self.advance_next_nonspace();
                    } else {
                        return Continue::No;
                    }
                    return Continue::Yes;
                }
                let rest = &self.ln.as_bytes()[self.next_nonspace..];
                let run = rest.iter().take_while(|&&c| c == fence).count();
                if !indented && run >= len && rest[run..].iter().all(|&c| c == b' ' || c == b'\t') {
                    self.finalize(container, self.line_no);
                    return Continue::LineDone;
                }
                let mut i = indent;
                while i > 0 && space_or_tab(self.peek(self.offset)) {
                    self.advance(1, true);
                    i -= 1;
                }
                Continue::Yes
            }
        }
    }

    fn start(&mut self, container: usize) -> Start {
        let rest = &self.ln[self.next_nonspace..];
        let Some(&c) = rest.as_bytes().first() else {
            return Start::None;
        };
        let in_paragraph = matches!(self.nodes[container].kind, Kind::Paragraph);
        let deep = self.nodes[container].depth >= MAX_DEPTH;
        if self.indent >= 4 {
            // An indented code block, unless the line continues a paragraph.
            if matches!(self.nodes[self.tip].kind, Kind::Paragraph) || self.blank {
                return Start::None;
            }
            self.advance(4, true);
            self.close_unmatched();
            self.add_child(Kind::Code {
                fence: 0,
                len: 0,
                indent: 0,
                lang: String::new(),
            });
            return Start::Leaf;
        }
        if c == b'>' && !deep {
            self.advance_next_nonspace();
            self.advance(1, false);
            if space_or_tab(self.peek(self.offset)) {
                self.advance(1, true);
            }
            self.close_unmatched();
            self.add_child(Kind::Quote);
            return Start::Container;
        }
        if c == b'#'
            && let Some((level, text)) = atx_heading(rest)
        {
            self.close_unmatched();
            self.add_child(Kind::Heading(level));
            self.nodes[self.tip].text = text.to_owned();
            self.line_done = true;
            return Start::Leaf;
        }
        if c == b'`' || c == b'~' {
            let len = rest.bytes().take_while(|&b| b == c).count();
            let info = rest[len..].trim_matches([' ', '\t']);
            if len >= 3 && !(c == b'`' && info.contains('`')) {
                let word = info.split(' ').next().unwrap_or("");
                let lang = inline::unescape(word);
                let indent = self.indent;
                self.close_unmatched();
                self.add_child(Kind::Code {
                    fence: c,
                    len,
                    indent,
                    lang,
                });
                self.line_done = true;
                return Start::Leaf;
            }
        }
        if in_paragraph
            && matches!(c, b'|' | b':' | b'-')
            && let Some(aligns) = delimiter_row(rest)
            && self.try_table(container, aligns)
        {
            self.line_done = true;
            return Start::Leaf;
        }
        if in_paragraph && (c == b'=' || c == b'-') {
            let run = rest.bytes().take_while(|&b| b == c).count();
            if rest[run..].trim_matches([' ', '\t']).is_empty() {
                self.close_unmatched();
                let text = std::mem::take(&mut self.nodes[container].text);
                let text = self.take_defs(text);
                if !text.trim().is_empty() {
                    let node = &mut self.nodes[container];
                    node.kind = Kind::Heading(if c == b'=' { 1 } else { 2 });
                    node.text = text;
                    self.line_done = true;
                    return Start::Leaf;
                }
                self.nodes[container].text = text;
            }
        }
        if matches!(c, b'*' | b'-' | b'_') && is_rule(rest, c) {
            self.close_unmatched();
            self.add_child(Kind::Rule);
            self.line_done = true;
            return Start::Leaf;
        }
        if !deep && let Some(item) = self.list_marker(container, rest) {
            self.close_unmatched();
            let same_list = match self.nodes[self.tip].kind {
                Kind::List { marker, start, .. } => {
                    marker == item.marker && start.is_some() == item.start.is_some()
                }
                _ => false,
            };
            if !same_list {
                self.add_child(Kind::List {
                    marker: item.marker,
                    start: item.start,
                    tight: true,
                });
            }
            self.add_child(Kind::Item { width: item.width });
            return Start::Container;
        }
        Start::None
    }

    /// Turns the paragraph's last line into the header of a table whose delimiter row is the
    /// current line, when their cells agree in number.
    fn try_table(&mut self, paragraph: usize, aligns: Vec<Align>) -> bool {
        let text = &self.nodes[paragraph].text;
        let body = text.strip_suffix('\n').unwrap_or(text);
        let split_at = body.rfind('\n').map_or(0, |i| i + 1);
        let header_line = &body[split_at..];
        let header = split_row(header_line);
        // As pulldown-cmark: the delimiter row has a pipe, the header a cell with text, and
        // a table interrupts a paragraph only when its header starts with a pipe.
        if !self.ln.contains('|')
            || header.len() != aligns.len()
            || header.iter().all(String::is_empty)
            || (split_at > 0 && !header_line.trim_start().starts_with('|'))
        {
            return false;
        }
        let before = body[..split_at].to_owned();
        self.close_unmatched();
        if before.trim().is_empty() {
            self.nodes[paragraph].kind = Kind::Table {
                aligns,
                rows: vec![header],
            };
            self.nodes[paragraph].text.clear();
        } else {
            self.nodes[paragraph].text = before;
            self.add_child(Kind::Table {
                aligns,
                rows: vec![header],
            });
        }
        true
    }

    fn list_marker(&mut self, container: usize, rest: &str) -> Option<ItemStart> {
        let in_paragraph = matches!(self.nodes[container].kind, Kind::Paragraph);
        let b = rest.as_bytes();
        let (marker, start, len) = match b.first()? {
            c @ (b'*' | b'+' | b'-') => (*c, None, 1),
            _ => {
                let digits = b.iter().take(10).take_while(|c| c.is_ascii_digit()).count();
                let delim = *b.get(digits)?;
                if !(1..=9).contains(&digits) || !matches!(delim, b'.' | b')') {
                    return None;
                }
                let n: u32 = rest[..digits].parse().ok()?;
                if in_paragraph && n != 1 {
                    return None;
                }
                (delim, Some(n), digits + 1)
            }
        };
        if !matches!(b.get(len), None | Some(b' ' | b'\t')) {
            return None;
        }
        if in_paragraph && rest[len..].trim_matches([' ', '\t']).is_empty() {
            return None;
        }
        let marker_offset = self.indent;
        self.advance_next_nonspace();
        self.advance(len, true);
        let (spaces_col, spaces_off) = (self.column, self.offset);
        loop {
            self.advance(1, true);
            if !(self.column - spaces_col < 5 && space_or_tab(self.peek(self.offset))) {
                break;
            }
        }
        let blank_item = self.offset >= self.ln.len();
        let spaces = self.column - spaces_col;
        let padding = if !(1..5).contains(&spaces) || blank_item {
            self.column = spaces_col;
            self.offset = spaces_off;
            self.partial_tab = false;
            if space_or_tab(self.peek(self.offset)) {
                self.advance(1, true);
            }
            len + 1
        } else {
            len + spaces
        };
        Some(ItemStart {
            marker,
            start,
            width: marker_offset + padding,
        })
    }

    fn can_contain(&self, parent: usize, child: &Kind) -> bool {
        match self.nodes[parent].kind {
            Kind::Document | Kind::Quote | Kind::Item { .. } => !matches!(child, Kind::Item { .. }),
            Kind::List { .. } => matches!(child, Kind::Item { .. }),
            _ => false,
        }
    }

    fn add_child(&mut self, kind: Kind) {
        while !self.can_contain(self.tip, &kind) {
            self.finalize(self.tip, self.line_no - 1);
        }
        let id = self.nodes.len();
        let parent = self.tip;
        self.nodes.push(Node {
            kind,
            children: Vec::new(),
            text: String::new(),
            parent,
            open: true,
            depth: self.nodes[parent].depth + 1,
            first_line: self.line_no,
            last_line: self.line_no,
        });
        self.nodes[parent].children.push(id);
        self.tip = id;
    }

    fn close_unmatched(&mut self) {
        if !self.all_closed {
            while self.old_tip != self.last_matched {
                let parent = self.nodes[self.old_tip].parent;
                self.finalize(self.old_tip, self.line_no - 1);
                self.old_tip = parent;
            }
            self.all_closed = true;
        }
    }

    fn finalize(&mut self, id: usize, line: usize) {
        let parent = self.nodes[id].parent;
        self.nodes[id].open = false;
        self.nodes[id].last_line = line;
        match self.nodes[id].kind {
            Kind::Paragraph => {
                let text = std::mem::take(&mut self.nodes[id].text);
                let text = self.take_defs(text);
                if text.trim().is_empty() {
                    self.nodes[parent].children.retain(|&c| c != id);
                }
                self.nodes[id].text = text;
            }
            Kind::Code { fence: 0, .. } => {
                // Trailing blank lines are not part of an indented code block.
                let node = &mut self.nodes[id];
                let kept = node.text.trim_end_matches([' ', '\t', '\n']).len();
                let end = node.text[kept..]
                    .find('\n')
                    .map_or(node.text.len(), |i| kept + i + 1);
                let blank_lines = node.text[end..].matches('\n').count();
                node.text.truncate(end);
                node.last_line = node.last_line.saturating_sub(blank_lines);
            }
            Kind::Item { .. } | Kind::List { .. } => {
                if let Some(&last) = self.nodes[id].children.last() {
                    self.nodes[id].last_line = self.nodes[last].last_line;
                } else {
                    self.nodes[id].last_line = self.nodes[id].first_line;
                }
                if matches!(self.nodes[id].kind, Kind::List { .. }) {
                    let loose = self.is_loose(id);
                    if let Kind::List { tight, .. } = &mut self.nodes[id].kind {
                        *tight = !loose;
                    }
                }
            }
            _ => {}
        }
        self.tip = parent;
    }

    /// A list is loose when a blank line separates two of its items, or two blocks of an item.
    fn is_loose(&self, list: usize) -> bool {
        let gap = |siblings: &[usize]| {
            siblings
                .windows(2)
                .any(|w| self.nodes[w[0]].last_line + 1 < self.nodes[w[1]].first_line)
        };
        let items = &self.nodes[list].children;
        gap(items) || items.iter().any(|&i| gap(&self.nodes[i].children))
    }

    /// Takes the link reference definitions at the start of a paragraph's text.
    fn take_defs(&mut self, text: String) -> String {
        let mut rest = text.as_str();
        while rest.starts_with('[') {
            let Some((label, dest, title, used)) = inline::link_definition(rest) else {
                break;
            };
            self.defs.entry(label).or_insert((dest, title));
            rest = &rest[used..];
        }
        if rest.len() == text.len() {
            text
        } else {
            rest.to_owned()
        }
    }
}

enum Continue {
    Yes,
    No,
    /// The line closed the block (a closing code fence).
    LineDone,
}

enum Start {
    None,
    Container,
    Leaf,
}

struct ItemStart {
    marker: u8,
    start: Option<u32>,
    width: usize,
}

/// `# Title #` → (1, "Title").
fn atx_heading(rest: &str) -> Option<(u8, &str)> {
    let level = rest.bytes().take_while(|&b| b == b'#').count();
    let after = &rest[level..];
    if !(1..=6).contains(&level) || !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let mut text = after.trim_matches([' ', '\t']);
    let without = text.trim_end_matches('#');
    if without.is_empty() {
        text = without;
    } else if without.ends_with([' ', '\t']) {
        text = without.trim_end_matches([' ', '\t']);
    }
    Some((level as u8, text))
}

/// Three or more `*`, `-` or `_`, with only spaces or tabs between.
fn is_rule(rest: &str, c: u8) -> bool {
    let mut count = 0;
    for b in rest.bytes() {
        match b {
            b' ' | b'\t' => {}
            _ if b == c => count += 1,
            _ => return false,
        }
    }
    count >= 3
}

/// A table's delimiter row (`| :--- | :---: | ---: |`) → the columns' alignments.
fn delimiter_row(line: &str) -> Option<Vec<Align>> {
    let line = line.trim_matches([' ', '\t']);
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut aligns = Vec::new();
    for cell in inner.split('|') {
        let cell = cell.trim_matches([' ', '\t']);
        let left = cell.starts_with(':');
        let right = cell.ends_with(':') && cell.len() > 1;
        let dashes = cell.trim_start_matches(':').trim_end_matches(':');
        if dashes.is_empty() || dashes.bytes().any(|b| b != b'-') {
            return None;
        }
        aligns.push(match (left, right) {
            (true, true) => Align::Center,
            (true, false) => Align::Left,
            (false, true) => Align::Right,
            (false, false) => Align::None,
        });
    }
    Some(aligns)
}

/// A table row's cells: split on `|` (an escaped `\|` is part of the cell), trimmed.
fn split_row(line: &str) -> Vec<String> {
    let line = line.trim_matches([' ', '\t']);
    let line = line.strip_prefix('|').unwrap_or(line);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // `\|` is a pipe inside the cell, whatever precedes it, even in a code span
            // (as GitHub and pulldown-cmark).
            '\\' if chars.clone().next() == Some('|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    if !cell.trim_matches([' ', '\t']).is_empty() || cells.is_empty() {
        cells.push(cell);
    }
    cells
        .into_iter()
        .map(|c| c.trim_matches([' ', '\t']).to_owned())
        .collect()
}
