//! The `.data` test format of the BPF conformance suite (and uBPF before it).
//!
//! A file is read line by line, the way the suite's runner reads it: CR characters are dropped,
//! everything from the first `#` is a comment, and a line containing `--` switches the section.
//! Directives match by substring, in the runner's order: `-- asm`, `-- result`, `-- mem`,
//! `-- raw`, `-- error`, then the ignored `-- no register offset` and `-- c`. Any other `--` line
//! is an unknown directive (the runner skips such a file; here it is an error, so a typo in one
//! of our own files cannot silently drop a test). Empty lines are ignored.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// One parsed `.data` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataFile {
    /// The file name (`add.data`).
    pub name: String,
    /// The `-- asm` section, one instruction or label per line, comments removed.
    pub asm: Option<String>,
    /// The `-- raw` section: one 64-bit instruction slot per token. When present, it replaces
    /// the assembly.
    pub raw: Option<Vec<u64>>,
    /// The `-- mem` bytes (empty when there is no section).
    pub mem: Vec<u8>,
    /// The expected `r0` (`-- result`; the last line wins).
    pub result: Option<u64>,
    /// The expected failure text (`-- error`; the last line wins).
    pub error: Option<String>,
}

impl DataFile {
    /// The raw section as little-endian bytecode, if the file has one.
    pub fn raw_bytes(&self) -> Option<Vec<u8>> {
        self.raw
            .as_ref()
            .map(|words| words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

/// Why a `.data` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The directory or a file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line does not follow the format.
    #[error("{file}:{line}: {kind}")]
    Syntax {
        /// The file name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        kind: SyntaxError,
    },
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// A `--` line naming no known section.
    #[error("unknown directive `{0}`")]
    UnknownDirective(String),
    /// A `-- mem` token that is not a hex byte.
    #[error("`{0}` is not a hex byte")]
    BadByte(String),
    /// A `-- raw` or `-- result` value that is not a u64.
    #[error("`{0}` is not a 64-bit number (0x… hex or decimal)")]
    BadNumber(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    None,
    Asm,
    Result,
    Mem,
    Raw,
    Error,
    Ignored,
}

/// The runner's directives, in the order it tries them (the first substring match wins).
const DIRECTIVES: [(&str, Section); 7] = [
    ("-- asm", Section::Asm),
    ("-- result", Section::Result),
    ("-- mem", Section::Mem),
    ("-- raw", Section::Raw),
    ("-- error", Section::Error),
    ("-- no register offset", Section::Ignored),
    ("-- c", Section::Ignored),
];

/// Parses a number the way the runner does: `0x` hex, anything else decimal.
pub fn parse_u64(token: &str) -> Option<u64> {
    match token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => token.parse().ok(),
    }
}

/// Decodes a string of hex digits (`"b4000000"`) into bytes; `None` if it has an odd length or
/// a non-hex character.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses the text of one `.data` file named `name`.
pub fn parse(name: &str, text: &str) -> Result<DataFile, DataError> {
    let mut file = DataFile {
        name: name.to_string(),
        ..DataFile::default()
    };
    let mut section = Section::None;
    for (i, line) in text.split('\n').enumerate() {
        let err = |kind| DataError::Syntax {
            file: name.to_string(),
            line: i + 1,
            kind,
        };
        let line = line.replace('\r', "");
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.contains("--") {
            section = DIRECTIVES
                .iter()
                .find(|(d, _)| line.contains(d))
                .map(|&(_, s)| s)
                .ok_or_else(|| err(SyntaxError::UnknownDirective(line.to_string())))?;
            match section {
                Section::Asm => {
                    file.asm.get_or_insert_with(String::new);
                }
                Section::Raw => {
                    file.raw.get_or_insert_with(Vec::new);
                }
                _ => {}
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        match section {
            Section::None | Section::Ignored => {}
            Section::Asm => {
                let asm = file.asm.get_or_insert_with(String::new);
                asm.push_str(line);
                asm.push('\n');
            }
            Section::Raw => {
                let raw = file.raw.get_or_insert_with(Vec::new);
                for tok in line.split_whitespace() {
                    raw.push(
                        parse_u64(tok).ok_or_else(|| err(SyntaxError::BadNumber(tok.into())))?,
                    );
                }
            }
            Section::Mem => {
                for tok in line.split_whitespace() {
                    let byte = u8::from_str_radix(tok, 16)
                        .ok()
                        .filter(|_| tok.len() <= 2)
                        .ok_or_else(|| err(SyntaxError::BadByte(tok.into())))?;
                    file.mem.push(byte);
                }
            }
            Section::Result => {
                file.result =
                    Some(parse_u64(line).ok_or_else(|| err(SyntaxError::BadNumber(line.into())))?);
            }
            Section::Error => file.error = Some(line.to_string()),
        }
    }
    Ok(file)
}

/// Reads every `*.data` file of `dir`, sorted by name.
///
/// Returns an error rather than an empty list when the directory is missing, so a suite that
/// is not where it should be fails loudly instead of passing with nothing checked.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<DataFile>, DataError> {
    let dir = dir.as_ref();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "data") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).map_err(io(path))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            parse(&name, &text)
        })
        .collect()
}

impl fmt::Display for DataFile {
    /// Prints the file back in `.data` syntax (comments and ignored sections dropped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(asm) = &self.asm {
            writeln!(f, "-- asm")?;
            write!(f, "{asm}")?;
        }
        if let Some(raw) = &self.raw {
            writeln!(f, "-- raw")?;
            for w in raw {
                writeln!(f, "{w:#018x}")?;
            }
        }
        if !self.mem.is_empty() {
            writeln!(f, "-- mem")?;
            let hex: Vec<String> = self.mem.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(f, "{}", hex.join(" "))?;
        }
        if let Some(r) = self.result {
            writeln!(f, "-- result")?;
            writeln!(f, "{r:#x}")?;
        }
        if let Some(e) = &self.error {
            writeln!(f, "-- error")?;
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let text = "# header\r\n-- asm\r\nmov %r0, 1 # set\r\n\r\nexit\r\n-- mem\r\n00 ff\n  1a\n\
                    -- result\n5\n0x2a\n-- c\nint x; -- nothing\n-- error\nfirst\nlast one\n";
        // `int x; -- nothing` is itself a directive line; the runner would reject it, so must we.
        let err = parse("t.data", text).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Syntax {
                    line: 13,
                    kind: SyntaxError::UnknownDirective(_),
                    ..
                }
            ),
            "{err}"
        );
        let text = text.replace("int x; -- nothing", "int x;");
        let f = parse("t.data", &text).unwrap();
        assert_eq!(f.name, "t.data");
        assert_eq!(f.asm.as_deref(), Some("mov %r0, 1\nexit\n"));
        assert_eq!(f.mem, vec![0x00, 0xff, 0x1a]);
        assert_eq!(f.result, Some(0x2a), "last result wins");
        assert_eq!(f.error.as_deref(), Some("last one"), "last error wins");
        assert_eq!(f.raw, None);
    }

    #[test]
    fn raw_tokens_are_whole_slots() {
        let f = parse("r.data", "-- raw\n0x5566778800000018 149\n-- result\n0\n").unwrap();
        assert_eq!(f.raw, Some(vec![0x5566_7788_0000_0018, 149]));
        let bytes = f.raw_bytes().unwrap();
        assert_eq!(&bytes[..8], &[0x18, 0, 0, 0, 0x88, 0x77, 0x66, 0x55]);
        assert_eq!(bytes[8], 149);
    }

    #[test]
    fn directives_match_by_substring_in_runner_order() {
        // `-- no register offset` contains no earlier directive; `-- call` matches `-- c`.
        let f = parse("s.data", "-- call instructions\nxyz\n-- result\n1\n").unwrap();
        assert_eq!(f.result, Some(1));
        assert_eq!(f.asm, None);
    }

    #[test]
    fn bad_tokens_name_the_line() {
        let e = parse("m.data", "-- mem\n0g\n").unwrap_err();
        assert!(matches!(
            e,
            DataError::Syntax {
                line: 2,
                kind: SyntaxError::BadByte(_),
                ..
            }
        ));
        let e = parse("m.data", "-- mem\n100\n").unwrap_err();
        assert!(matches!(
            e,
            DataError::Syntax {
                kind: SyntaxError::BadByte(_),
                ..
            }
        ));
        let e = parse("r.data", "\n-- result\n-1\n").unwrap_err();
        assert!(matches!(
            e,
            DataError::Syntax {
                line: 3,
                kind: SyntaxError::BadNumber(_),
                ..
            }
        ));
    }

    #[test]
    fn hex_and_numbers() {
        assert_eq!(decode_hex("00ff1A"), Some(vec![0, 0xff, 0x1a]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(parse_u64("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0x"), None);
    }

    #[test]
    fn display_roundtrips() {
        let f = parse("d.data", "-- asm\nexit\n-- mem\n01 02\n-- result\n0x7\n").unwrap();
        let again = parse("d.data", &f.to_string()).unwrap();
        assert_eq!(f, again);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let e = load_dir("/nonexistent/bpfx/suite").unwrap_err();
        assert!(matches!(e, DataError::Io { .. }));
    }
}
