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
