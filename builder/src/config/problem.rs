//! One thing wrong with an image config, and the error that carries
//! them: `FILE:LINE:COLUMN: field PATH: MESSAGE`.

use std::fmt;
use std::path::PathBuf;

/// A place in the YAML text; both numbers count from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem found in an image config: which file, which field
/// (`images[2].from.ociArchive.path`), where in the text, and what is
/// wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config file, as the user named it.
    pub file: PathBuf,
    /// The field path, or `None` for errors of the YAML text itself.
    pub field: Option<String>,
    /// Where the field (or the syntax error) is, when known.
    pub position: Option<Position>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{p}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// The error of `parse`, `normalise`, `load` and `load_and_validate`:
/// every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// An error holding one problem.
    pub fn one(problem: Problem) -> Self {
        ConfigError {
            problems: vec![problem],
        }
    }
}

impl From<Vec<Problem>> for ConfigError {
    fn from(problems: Vec<Problem>) -> Self {
        ConfigError { problems }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.len() > 1 {
            writeln!(f, "{} problems in the image config:", self.problems.len())?;
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_position_field_message() {
        let p = Problem {
            file: "a/demo.yaml".into(),
            field: Some("images[2].from.ociArchive.path".into()),
            position: Some(Position { line: 7, column: 9 }),
            message: "no such file".into(),
        };
        assert_eq!(
            p.to_string(),
            "a/demo.yaml:7:9: field images[2].from.ociArchive.path: no such file"
        );
        let bare = Problem {
            field: None,
            position: None,
            ..p.clone()
        };
        assert_eq!(bare.to_string(), "a/demo.yaml: no such file");
        let e = ConfigError::from(vec![p.clone(), bare]);
        assert_eq!(e.to_string().lines().count(), 3);
        assert_eq!(ConfigError::one(p.clone()).to_string(), p.to_string());
    }
}
