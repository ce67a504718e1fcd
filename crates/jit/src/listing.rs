//! Human-readable listings: the x86-64 code decoded by iced-x86 (an independent decoder, so the
//! listing shows what the CPU will run, not what the emitter meant), interleaved with the eBPF
//! source it came from.
//!
//! ```text
//!    3: ldxb r0, [r1+2]
//!   000041  4C 8D 57 02        lea r10,[rdi+2]
//! ```
//! Offsets are from the start of the code (branch targets too), so a listing does not depend on
//! where the code was mapped.

use crate::emit::{CopyKind, Layout};
use bpfx_bytecode::{Pc, Program};
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
use std::fmt::Write;

/// Renders `code` with a header line before each part `layout` names.
pub(crate) fn render(prog: &Program, code: &[u8], layout: &Layout) -> String {
    let mut headers: Vec<(usize, String)> = vec![(0, "; entry: prologue and epilogue".into())];
    let source = |pc: Pc| prog.get(pc).map(ToString::to_string).unwrap_or_default();
    // Each copy's instructions are headed by the copy's kind; the kinds come in this order
    // (headers at the same offset keep it).
    for (_, insns) in layout.copies_of(CopyKind::Main) {
        headers.extend(
            insns
                .iter()
                .map(|&(pc, at)| (at, format!("{:>4}: {}", pc.0, source(pc)))),
        );
    }
    if let Some(at) = layout.fell_off {
        headers.push((at, "; falls off the end".into()));
    }
    if layout
        .copies_of(CopyKind::Slow)
        .any(|(_, insns)| !insns.is_empty())
    {
        headers.push((layout.slow, "; budget slow paths".into()));
    }
    for kind in [CopyKind::Slow, CopyKind::Fallback, CopyKind::Fast(0)] {
        if kind == CopyKind::Fast(0) {
            // A versioned loop's checks, then its copies.
            headers.extend(layout.loop_checks.iter().map(|&(pc, at)| {
                let h = format!(
                    "; loop at insn #{}: entry check for its unguarded copy",
                    pc.0
                );
                (at, h)
            }));
        }
        headers.extend(layout.copies_of(kind).map(|(c, _)| {
            let pc = c.first.0;
            let h = match kind {
                CopyKind::Slow => format!("; slow path of the block at insn #{pc}"),
                CopyKind::Fallback => {
                    format!("; merged guard failed: the run from insn #{pc}, guard by guard")
                }
                _ => format!("; loop at insn #{pc}: copy run after a passed check"),
            };
            (c.at, h)
        }));
        let prefix = match kind {
            CopyKind::Slow => "slow",
            CopyKind::Fallback => "guarded",
            _ => "checked",
        };
        for (_, insns) in layout.copies_of(kind) {
            headers.extend(
                insns
                    .iter()
                    .map(|&(pc, at)| (at, format!("; {prefix} {:>4}: {}", pc.0, source(pc)))),
            );
        }
    }
    headers.push((layout.cold, "; cold code".into()));
    headers.extend(
        layout
            .cold_blocks
            .iter()
            .map(|&(pc, at)| (at, format!("; cold: insn #{}", pc.0))),
    );
    headers.push((layout.stubs, "; stubs: trap kinds, halt, unwind".into()));
    // Stable: headers at the same offset (a block that emitted nothing) keep their order.
    headers.sort_by_key(|&(at, _)| at);

    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_branch_leading_zeros(false);
    formatter.options_mut().set_uppercase_hex(false);
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut text = String::new();
    let mut out = String::new();
    let mut next = headers.iter().peekable();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        let at = insn.ip() as usize;
        while let Some((_, h)) = next.next_if(|(o, _)| *o <= at) {
            let _ = writeln!(out, "{h}");
        }
        text.clear();
        formatter.format(&insn, &mut text);
        let bytes: Vec<String> = code[at..at + insn.len()]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(out, "  {at:06x}  {:<30} {text}", bytes.join(" "));
    }
    for (_, h) in next {
        let _ = writeln!(out, "{h}");
    }
    out
}
