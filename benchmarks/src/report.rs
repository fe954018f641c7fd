//! The results as Markdown tables: printed and written to
//! `benchmarks/RESULTS.md`.

/// One table of figures.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table: what was measured, and verdicts.
    pub notes: Vec<String>,
}

impl Table {
    /// A table with these column names.
    pub fn new(title: &str, header: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            header: header.iter().map(|s| s.to_string()).collect(),
            ..Table::default()
        }
    }

    /// Add a row (short rows are padded with empty cells).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Add a note under the table.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The table as Markdown, title as a `###` heading.
    pub fn markdown(&self) -> String {
        let mut s = format!("### {}\n\n", self.title);
        let cols = self.header.len();
        let line = |cells: &[String]| -> String {
            let mut out = String::from("|");
            for i in 0..cols {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                out.push_str(&format!(" {} |", c.replace('|', "\\|")));
            }
            out.push('\n');
            out
        };
        s.push_str(&line(&self.header));
        s.push('|');
        s.push_str(&"---|".repeat(cols));
        s.push('\n');
        for r in &self.rows {
            s.push_str(&line(r));
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

/// The whole results document.
pub fn document(preamble: &str, tables: &[Table]) -> String {
    let mut s = String::from(preamble);
    for t in tables {
        s.push('\n');
        s.push_str(&t.markdown());
    }
    s
}

/// What marks a section of the results file as measured by hand (a
/// `just` recipe run and copied in, such as `just measure-root`): `just
/// bench` does not produce it, so it must not drop it.
pub const BY_HAND: &str = "Written by hand from";

/// `document` with every by-hand section of `previous` (the results file
/// as it was) appended: a `### ` heading up to the next one, holding
/// [`BY_HAND`].
pub fn keep_by_hand(document: String, previous: &str) -> String {
    let mut out = document;
    for section in previous.split("\n### ").skip(1) {
        if section.contains(BY_HAND) {
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str("### ");
            out.push_str(section.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand_sections_survive_a_rewrite() {
        let previous = "# r\n\n### 1. Bench\nold figures\n\n### 5. Root\n\n\
                        Written by hand from `just measure-root`.\n| a |\n";
        let new = "# r\n\n### 1. Bench\nnew figures\n".to_string();
        let kept = keep_by_hand(new, previous);
        assert_eq!(
            kept,
            "# r\n\n### 1. Bench\nnew figures\n\n### 5. Root\n\n\
             Written by hand from `just measure-root`.\n| a |\n"
        );
        assert!(!kept.contains("old figures"));
        let none = keep_by_hand("# r\n".to_string(), "# r\n\n### 1. Bench\nx\n");
        assert_eq!(none, "# r\n");
    }

    #[test]
    fn markdown_table() {
        let mut t = Table::new("Serving", &["what", "a|b"]);
        t.row(vec!["x".into(), "1".into()]);
        t.row(vec!["short".into()]);
        t.note("airlift wins");
        assert_eq!(
            t.markdown(),
            "### Serving\n\n| what | a\\|b |\n|---|---|\n| x | 1 |\n| short |  |\n\n- airlift wins\n"
        );
        assert!(document("# R\n", &[t]).starts_with("# R\n\n### Serving"));
    }
}
