//! The disassembler: a program back to assembler text, one instruction per line.
//!
//! The text is `Display for Op`, which the assembler reads back, so
//! `assemble(disassemble(p))` gives back the slots of `p`. Jump targets stay relative
//! (`+N`/`-N`), as in the wire format.

use crate::program::Program;
use std::fmt::Write;

/// The program as assembler text, one instruction per line.
pub fn disassemble(prog: &Program) -> String {
    let mut out = String::new();
    for (_, op) in prog.iter() {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{op}");
    }
    out
}

/// A listing: each line prefixed by its pc, right-aligned, and jumps annotated with their
/// absolute target as a comment (`  3: ja +2  # -> 6`), so the listing minus its pc column
/// still assembles.
pub fn disassemble_with_pcs(prog: &Program) -> String {
    let last = prog.len().saturating_sub(1);
    let width = last.to_string().len();
    let mut out = String::new();
    for (pc, op) in prog.iter() {
        let _ = write!(out, "{:>width$}: {op}", pc.0);
        if let Some(target) = op.jump_target(pc) {
            let _ = write!(out, "  # -> {}", target.0);
        }
        out.push('\n');
    }
    out
}
