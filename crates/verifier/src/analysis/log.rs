//! The verification log: every processed instruction with the state before it.

/// The lines of a verification log: every processed instruction with the state before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierLog {
    lines: Vec<String>,
    truncated: bool,
}

/// Log lines kept at most; a log longer than this keeps its first lines and says so.
pub const LOG_LIMIT: usize = 100_000;

impl VerifierLog {
    /// The lines, in processing order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Whether lines were dropped after [`LOG_LIMIT`].
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub(super) fn push(&mut self, line: String) {
        if self.has_room() {
            self.lines.push(line);
        }
    }

    /// Whether another line fits; once one does not, the log is marked truncated (callers
    /// check first, so a full log costs no formatting).
    pub(super) fn has_room(&mut self) -> bool {
        self.truncated |= self.lines.len() >= LOG_LIMIT;
        !self.truncated
    }
}

impl std::fmt::Display for VerifierLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        if self.truncated {
            writeln!(f, "(log truncated after {LOG_LIMIT} lines)")?;
        }
        Ok(())
    }
}
