//! The line syntax the three installation files share: Windows setup's INI dialect.
//!
//! As documented for INF files (learn.microsoft.com "General Syntax Rules for INF
//! Files") and for `txtsetup.oem` ("TxtSetup.oem File Format"):
//!
//! * `[name]` starts a section; names are compared ignoring ASCII case, and sections
//!   with the same name are merged (their lines appended in file order).
//! * Other lines are `key = value, value, ...` or bare `value, value, ...`.
//! * A `"`-quoted string may hold spaces, commas, `=` and `;`; `""` inside it is one `"`.
//!   Unquoted blanks around a value are dropped, quoted ones kept.
//! * `;` outside quotes starts a comment to the end of the line; with
//!   [`Dialect::hash_comments`] a line whose first non-blank character is `#` is a
//!   comment too (`txtsetup.oem`).
//! * With [`Dialect::continuation`] (INF files only), a `\` as the last character
//!   before the end of the line or its comment joins the next line to this one.
//!   `txtsetup.oem` and `boot.ini` have none: there a trailing `\` is a path (`\`,
//!   the disk's root).
//!
//! Every error names its 1-based line. The parser takes any `&str` and never panics.

use std::fmt;

/// Which variant of the syntax a file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// A trailing `\` continues the line (INF).
    pub continuation: bool,
    /// A line starting with `#` is a comment (`txtsetup.oem`).
    pub hash_comments: bool,
}

impl Dialect {
    /// INF files.
    pub const INF: Dialect = Dialect {
        continuation: true,
        hash_comments: false,
    };
    /// `txtsetup.oem`.
    pub const TXTSETUP: Dialect = Dialect {
        continuation: false,
        hash_comments: true,
    };
    /// `boot.ini`.
    pub const BOOT_INI: Dialect = Dialect {
        continuation: false,
        hash_comments: false,
    };
}

/// Why a file's text is not in the syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyntaxError {
    /// A `"` opened a string the line does not close.
    UnterminatedQuote { line: usize },
    /// `[` without `]`.
    UnterminatedSection { line: usize },
    /// `[]`.
    EmptySectionName { line: usize },
    /// Something other than a comment after a section's `]`.
    TextAfterSection { line: usize },
    /// A line with content before the first section.
    OutsideSection { line: usize },
    /// The last line ends with a continuation `\`.
    ContinuationAtEnd { line: usize },
}

impl SyntaxError {
    /// The 1-based line the error is on.
    pub fn line(&self) -> usize {
        match *self {
            SyntaxError::UnterminatedQuote { line }
            | SyntaxError::UnterminatedSection { line }
            | SyntaxError::EmptySectionName { line }
            | SyntaxError::TextAfterSection { line }
            | SyntaxError::OutsideSection { line }
            | SyntaxError::ContinuationAtEnd { line } => line,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            SyntaxError::UnterminatedQuote { .. } => "a quoted string is not closed",
            SyntaxError::UnterminatedSection { .. } => "a section name has no closing ']'",
            SyntaxError::EmptySectionName { .. } => "a section has no name",
            SyntaxError::TextAfterSection { .. } => "text after a section name",
            SyntaxError::OutsideSection { .. } => "a line before the first section",
            SyntaxError::ContinuationAtEnd { .. } => "the last line ends with a '\\'",
        };
        write!(f, "line {}: {what}", self.line())
    }
}

impl std::error::Error for SyntaxError {}

/// One logical line of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based number of its first physical line.
    pub number: usize,
    /// The text before an unquoted `=`, unquoted and trimmed; `None` for a bare line.
    pub key: Option<String>,
    /// The comma-separated values, each unquoted and trimmed (`""` escapes resolved).
    pub values: Vec<String>,
    /// Everything after the `=` (or the whole line, when bare), trimmed, quotes kept,
    /// comment removed: for formats whose values are not comma lists (`boot.ini`).
    pub raw_value: String,
}

impl Line {
    /// Whether the key is `name`, ignoring ASCII case.
    pub fn key_is(&self, name: &str) -> bool {
        self.key
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(name))
    }

    /// The `i`-th value, if present.
    pub fn value(&self, i: usize) -> Option<&str> {
        self.values.get(i).map(String::as_str)
    }
}

/// A section and its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The name as first written.
    pub name: String,
    /// 1-based line of its first header.
    pub number: usize,
    /// Its lines, in file order.
    pub lines: Vec<Line>,
}

impl Section {
    /// Lines with key `name` (ignoring case).
    pub fn keyed<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines.iter().filter(move |l| l.key_is(name))
    }

    /// The first line with key `name`.
    pub fn first(&self, name: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.key_is(name))
    }
}

/// A parsed file: its sections in the order they first appear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ini {
    pub sections: Vec<Section>,
}

impl Ini {
    /// Parses `text` in `dialect`. A leading byte-order mark is skipped; `\n` and `\r\n`
    /// line ends are both accepted.
    pub fn parse(text: &str, dialect: Dialect) -> Result<Ini, SyntaxError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ini = Ini::default();
        let mut current: Option<usize> = None;
        // A logical line being joined by continuations: first line number and text.
        let mut pending: Option<(usize, String)> = None;
        let mut last = 0;
        for (index, raw) in text.lines().enumerate() {
            let number = index.saturating_add(1);
            last = number;
            if dialect.hash_comments && raw.trim_start().starts_with('#') && pending.is_none() {
                continue;
            }
            let code = code_part(raw).ok_or(SyntaxError::UnterminatedQuote { line: number })?;
            let trimmed = code.trim_end();
            if dialect.continuation
                && let Some(head) = trimmed.strip_suffix('\\')
            {
                let joined = pending.get_or_insert_with(|| (number, String::new()));
                joined.1.push_str(head);
                continue;
            }
            let (first, logical) = match pending.take() {
                Some((first, mut joined)) => {
                    joined.push_str(code);
                    (first, joined)
                }
                None => (number, code.to_string()),
            };
            ini.take_line(first, &logical, &mut current)?;
        }
        if pending.is_some() {
            return Err(SyntaxError::ContinuationAtEnd { line: last });
        }
        Ok(ini)
    }

    /// Adds one logical line (comment already removed).
    fn take_line(
        &mut self,
        number: usize,
        code: &str,
        current: &mut Option<usize>,
    ) -> Result<(), SyntaxError> {
        let code = code.trim();
        if code.is_empty() {
            return Ok(());
        }
        if let Some(rest) = code.strip_prefix('[') {
            let (name, after) = rest
                .split_once(']')
                .ok_or(SyntaxError::UnterminatedSection { line: number })?;
            if !after.trim().is_empty() {
                return Err(SyntaxError::TextAfterSection { line: number });
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(SyntaxError::EmptySectionName { line: number });
            }
            *current = Some(match self.position(name) {
                Some(at) => at,
                None => {
                    self.sections.push(Section {
                        name: name.to_string(),
                        number,
                        lines: Vec::new(),
                    });
                    self.sections.len().saturating_sub(1)
                }
            });
            return Ok(());
        }
        let section = current
            .and_then(|at| self.sections.get_mut(at))
            .ok_or(SyntaxError::OutsideSection { line: number })?;
        let line = split(number, code).ok_or(SyntaxError::UnterminatedQuote { line: number })?;
        section.lines.push(line);
        Ok(())
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.sections
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The section called `name` (ignoring ASCII case).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.position(name).and_then(|at| self.sections.get(at))
    }
}

/// The part of `raw` before an unquoted `;`; `None` if a quote is left open.
fn code_part(raw: &str) -> Option<&str> {
    let mut quoted = false;
    for (at, c) in raw.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return raw.get(..at),
            _ => {}
        }
    }
    (!quoted).then_some(raw)
}

/// A value being read: its text and how much of it is kept if the rest is unquoted blank.
#[derive(Default)]
struct Value {
    text: String,
    /// Bytes up to and including the last quoted or non-blank character.
    keep: usize,
}

impl Value {
    fn push(&mut self, c: char, quoted: bool) {
        if !quoted && self.keep == 0 && c.is_whitespace() {
            return; // leading blank
        }
        self.text.push(c);
        if quoted || !c.is_whitespace() {
            self.keep = self.text.len();
        }
    }

    /// Marks a quote (even `""`, an empty string) as significant.
    fn quote_seen(&mut self) {
        self.keep = self.text.len();
    }

    fn finish(mut self) -> String {
        self.text.truncate(self.keep);
        self.text
    }
}

/// Splits a comment-free line into key and values; `None` if a quote is left open.
fn split(number: usize, code: &str) -> Option<Line> {
    let mut key = None;
    let mut values = Vec::new();
    let mut value = Value::default();
    let mut raw_start = 0;
    let mut quoted = false;
    let mut chars = code.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek().is_some_and(|&(_, n)| n == '"') {
                    chars.next();
                    value.push('"', true);
                } else {
                    quoted = false;
                    value.quote_seen();
                }
            }
            '"' => {
                quoted = true;
                value.quote_seen();
            }
            '=' if !quoted && key.is_none() && values.is_empty() => {
                key = Some(std::mem::take(&mut value).finish());
                raw_start = at.saturating_add(1);
            }
            ',' if !quoted => values.push(std::mem::take(&mut value).finish()),
            c => value.push(c, quoted),
        }
    }
    if quoted {
        return None;
    }
    values.push(value.finish());
    // A bare line that is one empty value (cannot happen after trimming) or a key with
    // nothing after `=`: no values.
    if values.len() == 1 && values.first().is_some_and(String::is_empty) {
        values.clear();
    }
    Some(Line {
        number,
        key,
        values,
        raw_value: code.get(raw_start..).unwrap_or("").trim().to_string(),
    })
}

/// An INF number: decimal, or hexadecimal with `0x` (as INF flags and DWORDs are written).
pub fn number(text: &str) -> Option<u32> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse().ok(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_quotes_and_comments() {
        let ini = Ini::parse(
            "; head\n[A]\nk = \"a, b\" , c ; note\n\"x\"\"y\",, \" z \"\nbare\n",
            Dialect::INF,
        )
        .unwrap();
        let s = ini.section("a").unwrap();
        assert_eq!(s.lines[0].key.as_deref(), Some("k"));
        assert_eq!(s.lines[0].values, ["a, b", "c"]);
        assert_eq!(s.lines[0].raw_value, "\"a, b\" , c");
        assert_eq!(s.lines[1].values, ["x\"y", "", " z "]);
        assert_eq!(s.lines[2].values, ["bare"]);
        assert_eq!(s.lines[2].number, 5);
    }

    #[test]
    fn continuation_only_where_the_dialect_has_it() {
        let joined = "[A]\nk = a, \\ ; the rest is on the next line\n  b\n";
        let ini = Ini::parse(joined, Dialect::INF).unwrap();
        let l = &ini.section("A").unwrap().lines[0];
        assert_eq!(
            (l.number, l.values.clone()),
            (2, vec!["a".into(), "b".into()])
        );
        assert_eq!(
            Ini::parse("[A]\nk = a\nd = \\\n", Dialect::INF),
            Err(SyntaxError::ContinuationAtEnd { line: 3 })
        );
        let ini = Ini::parse("[Disks]\nd1 = \"x\", \\t, \\\n", Dialect::TXTSETUP).unwrap();
        assert_eq!(
            ini.section("disks").unwrap().lines[0].values,
            ["x", "\\t", "\\"]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number("0x00010001"), Some(0x10001));
        assert_eq!(number(" 12 "), Some(12));
        assert_eq!(number("0x"), None);
        assert_eq!(number("-1"), None);
        assert_eq!(number("4294967296"), None);
    }
}
