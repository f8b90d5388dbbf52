//! Finding the line and column of a key path in the TOML text.

use super::Seg;
use toml_edit::{ImDocument, Item, Value};

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

/// The dotted key a TOML-layer error points at (`span`): the key itself
/// when the span covers a value (`conversion.scheduler` for a bad variant),
/// qualified by the table it sits in (`port[1].mtu`, `workers.bogus`).
pub fn key_at(text: &str, span: std::ops::Range<usize>) -> String {
    let start = span.start.min(text.len());
    let line_start = text
        .get(..start)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let before = text.get(line_start..start).unwrap_or("");
    let raw = match before.split_once('=') {
        // the span is (inside) a value: the key is left of `=`
        Some((k, _)) => k,
        None => text
            .get(span)
            .and_then(|k| k.split(['=', '\n']).next())
            .unwrap_or(""),
    };
    let key = raw.trim().trim_matches(['[', ']', '"']).trim();
    if raw.trim_start().starts_with('[') {
        return key.to_string(); // the error is about a table header itself
    }
    // the table header above the key, `[name]` or the n-th `[[name]]`
    let head = text.get(..line_start).unwrap_or("");
    let table = head
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    let table = match table {
        Some(h) if h.starts_with("[[") => {
            let name = h.trim_matches(['[', ']']).trim();
            let n = head.lines().filter(|l| l.trim() == h).count();
            format!("{name}[{}]", n.saturating_sub(1))
        }
        Some(h) => h.trim_matches(['[', ']']).trim().to_string(),
        None => String::new(),
    };
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// `port[1].addresses[0]`
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A span-preserving view of the document.
pub struct Doc<'a> {
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Doc<'a> {
    pub fn new(text: &'a str) -> Self {
        Doc {
            text,
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// Line and column of the deepest part of `path` that exists in the
    /// document (the key itself when present, else its table).
    pub fn find(&self, path: &[Seg]) -> (usize, usize) {
        let Some(doc) = &self.doc else { return (0, 0) };
        let mut best: Option<usize> = None;
        let mut item: Option<&Item> = None;
        let mut table = Some(doc.as_table());
        let mut value: Option<&Value> = None;
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    if let Some(t) = table.take() {
                        let Some((key, it)) = t.get_key_value(k) else {
                            break;
                        };
                        best = key.span().or(it.span()).map(|s| s.start).or(best);
                        item = Some(it);
                        value = it.as_value();
                        table = it.as_table();
                    } else if let Some(t) = value.and_then(|v| v.as_inline_table()) {
                        let Some((key, v)) = t.get_key_value(k) else {
                            break;
                        };
                        best = key.span().or(v.span()).map(|s| s.start).or(best);
                        value = v.as_value();
                        item = None;
                    } else {
                        break;
                    }
                }
                Seg::Index(i) => {
                    if let Some(arr) = item.and_then(|it| it.as_array_of_tables()) {
                        let Some(t) = arr.get(*i) else { break };
                        best = t.span().map(|s| s.start).or(best);
                        table = Some(t);
                        item = None;
                        value = None;
                    } else if let Some(arr) = value.and_then(|v| v.as_array()) {
                        let Some(v) = arr.get(*i) else { break };
                        best = v.span().map(|s| s.start).or(best);
                        value = Some(v);
                        item = None;
                        table = None;
                    } else {
                        break;
                    }
                }
            }
        }
        best.map_or((0, 0), |o| line_col(self.text, o))
    }
}
