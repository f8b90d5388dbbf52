//! The TOML configuration: parsing (serde + toml), validation with
//! file:line:column, key and reason for every error, and the validated form
//! the runtime uses.

mod locate;
mod raw;
mod validate;

pub use raw::*;
pub use validate::{Config, Device, NatSourceKind, PortConfig, RouteConfig};

use std::fmt;
use std::path::Path;

/// One configuration error, located in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: key `{}`: {}",
            self.file, self.line, self.column, self.key, self.reason
        )
    }
}

/// All errors found in a file.
#[derive(Clone, Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            reason: format!("cannot read the file: {e}"),
        }])
    })?;
    parse(&file, &text)
}

/// Parses and validates config text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (line, column) = e.span().map_or((0, 0), |s| locate::line_col(text, s.start));
            let key = e
                .span()
                .map(|s| locate::key_at(text, s))
                .unwrap_or_default();
            return Err(ConfigErrors(vec![ConfigError {
                file: file.to_string(),
                line,
                column,
                key,
                reason: e.message().trim().to_string(),
            }]));
        }
    };
    validate::validate(raw).map_err(|errs| {
        let doc = locate::Doc::new(text);
        ConfigErrors(
            errs.into_iter()
                .map(|(path, reason)| {
                    let (line, column) = doc.find(&path);
                    ConfigError {
                        file: file.to_string(),
                        line,
                        column,
                        key: locate::path_string(&path),
                        reason,
                    }
                })
                .collect(),
        )
    })
}

/// A segment of a key path (`port[1].addresses[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(&'static str),
    Index(usize),
}
