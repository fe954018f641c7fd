//! Maps field paths (`images[2].from.ociArchive.path`) to where they are
//! in the YAML text, so problems found after parsing can still name a
//! line and column.
//!
//! The text is read once with a span-aware event parser; every mapping
//! key and every sequence item gets its path recorded with the position
//! where it starts. A mapping entry is located at its key, the way serde
//! reports unknown fields.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::problem::Position;

/// Field path → position in one YAML document.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    positions: HashMap<String, Position>,
}

impl Locator {
    /// Read `text` (the first YAML document in it). Text that does not
    /// parse gives a locator that knows only what came before the error.
    pub fn new(text: &str) -> Locator {
        let mut walker = Walker::default();
        // A syntax error is reported by the serde parse; keep what we have.
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Locator {
            positions: walker.positions,
        }
    }

    /// Where `path` is; `None` if neither it nor any parent is in the text.
    pub fn exact(&self, path: &str) -> Option<Position> {
        self.positions.get(path).copied()
    }

    /// Where `path` is, or else its nearest parent that is in the text
    /// (a defaulted field is reported at the section that lacks it).
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
fn parent(path: &str) -> &str {
    if path.ends_with(']') {
        if let Some(i) = path.rfind('[') {
            return &path[..i];
        }
    }
    match path.rfind('.') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// `parent` + mapping key.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent` + sequence index.
pub fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

enum Frame {
    Map {
        path: String,
        /// The key whose value comes next, or `None` when a key comes next.
        key: Option<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
    /// Collections begun but not yet placed: a block collection's start
    /// event is marked after its first key, so it takes the position of
    /// the first scalar inside it (or its own mark when it is empty).
    pending: Vec<(String, Marker)>,
    done: bool,
}

fn position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl Walker {
    /// A node starts: its path (relative to the innermost collection).
    fn node_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map { path, key: Some(k) }) => join_key(path, k),
            // A complex (non-scalar) key: nothing to name it by.
            Some(Frame::Map { path, key: None }) => join_key(path, "?"),
            Some(Frame::Seq { path, index }) => join_index(path, *index),
        }
    }

    fn record(&mut self, path: String, mark: Marker) {
        self.positions.entry(path).or_insert(position(mark));
    }

    /// A scalar is at `mark`: it places itself and every pending collection.
    fn place(&mut self, path: String, mark: Marker) {
        for (p, _) in std::mem::take(&mut self.pending) {
            self.record(p, mark);
        }
        self.record(path, mark);
    }

    /// The node begun last (scalar or collection) has ended.
    fn end_node(&mut self) {
        match self.stack.last_mut() {
            None => self.done = true,
            Some(Frame::Map { key, .. }) => match key {
                Some(_) => *key = None,
                None => *key = Some("?".to_string()),
            },
            Some(Frame::Seq { index, .. }) => *index += 1,
        }
    }

    fn scalar(&mut self, value: String, mark: Marker) {
        if let Some(Frame::Map { path, key: None }) = self.stack.last() {
            let full = join_key(path, &value);
            self.place(full, mark);
            if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                *key = Some(value);
            }
            return;
        }
        let path = self.node_path();
        self.place(path, mark);
        self.end_node();
    }

    fn start(&mut self, mark: Marker, seq: bool) {
        let path = self.node_path();
        self.pending.push((path.clone(), mark));
        self.stack.push(if seq {
            Frame::Seq { path, index: 0 }
        } else {
            Frame::Map { path, key: None }
        });
    }

    fn end(&mut self) {
        // Still pending: an empty collection, placed at its own mark.
        if let Some(Frame::Map { path, .. } | Frame::Seq { path, .. }) = self.stack.pop() {
            if let Some(i) = self.pending.iter().position(|(p, _)| *p == path) {
                for (p, mark) in self.pending.split_off(i) {
                    self.record(p, mark);
                }
            }
        }
        self.end_node();
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(value, ..) => self.scalar(value, mark),
            Event::Alias(_) => self.scalar("*alias".to_string(), mark),
            Event::MappingStart(..) => self.start(mark, false),
            Event::SequenceStart(..) => self.start(mark, true),
            Event::MappingEnd | Event::SequenceEnd => self.end(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
apiVersion: airlift/v1alpha1
metadata:
  name: demo
images:
  - ref: a:1
  - ref: b:2
    from:
      ociArchive: { path: x.tar, ref: \"1\" }
    platforms: [linux/amd64, linux/arm64]
output:
  extraFiles:
    docs/README: files/readme
";

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn finds_keys_and_items() {
        let l = Locator::new(TEXT);
        assert_eq!(l.exact("apiVersion"), at(1, 1));
        assert_eq!(l.exact("metadata.name"), at(3, 3));
        assert_eq!(l.exact("images"), at(4, 1));
        assert_eq!(l.exact("images[0]"), at(5, 5));
        assert_eq!(l.exact("images[0].ref"), at(5, 5));
        assert_eq!(l.exact("images[1].from"), at(7, 5));
        assert_eq!(l.exact("images[1].from.ociArchive"), at(8, 7));
        assert_eq!(l.exact("images[1].from.ociArchive.path"), at(8, 21));
        assert_eq!(l.exact("images[1].from.ociArchive.ref"), at(8, 34));
        assert_eq!(l.exact("images[1].platforms[1]"), at(9, 30));
        assert_eq!(l.exact("output.extraFiles.docs/README"), at(12, 5));
        assert_eq!(l.exact("images[2]"), None);
        assert_eq!(l.exact(""), at(1, 1));
    }

    #[test]
    fn falls_back_to_the_nearest_parent() {
        let l = Locator::new(TEXT);
        assert_eq!(l.find("images[1].from.ociArchive.nothing"), at(8, 7));
        assert_eq!(l.find("metadata.version"), at(2, 1));
        assert_eq!(l.find("base.kernel"), at(1, 1)); // the document
        assert_eq!(Locator::new("").find("x"), None);
    }

    #[test]
    fn survives_syntax_errors_and_multiple_documents() {
        let l = Locator::new("a: 1\nb: [\n");
        assert_eq!(l.exact("a"), at(1, 1));
        let l = Locator::new("a: 1\n---\nb: 2\n");
        assert_eq!(l.exact("b"), None);
    }

    #[test]
    fn empty_collections_and_flow_style() {
        let l = Locator::new("a: {}\nb: []\nc: [x, {d: 1}]\n");
        assert_eq!(l.exact("a"), at(1, 1));
        assert_eq!(l.exact("b"), at(2, 1));
        assert_eq!(l.exact("c[1]"), at(3, 9));
        assert_eq!(l.exact("c[1].d"), at(3, 9));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent("a.b[2]"), "a.b");
        assert_eq!(parent("a.b"), "a");
        assert_eq!(parent("a"), "");
    }
}
