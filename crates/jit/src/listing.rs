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

use crate::emit::Layout;
use bpfx_bytecode::Program;
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
use std::fmt::Write;

/// Renders `code` with a header line before each part `layout` names.
pub(crate) fn render(prog: &Program, code: &[u8], layout: &Layout) -> String {
    let mut headers: Vec<(usize, String)> = vec![(0, "; entry: prologue and epilogue".into())];
    headers.extend(layout.insns.iter().map(|&(pc, at)| {
        let op = prog.get(pc).map(ToString::to_string).unwrap_or_default();
        (at, format!("{:>4}: {op}", pc.0))
    }));
    if let Some(at) = layout.fell_off {
        headers.push((at, "; falls off the end".into()));
    }
    if !layout.slow_insns.is_empty() {
        headers.push((layout.slow, "; budget slow paths".into()));
    }
    headers.extend(
        layout
            .slow_blocks
            .iter()
            .map(|&(pc, at)| (at, format!("; slow path of the block at insn #{}", pc.0))),
    );
    headers.extend(layout.slow_insns.iter().map(|&(pc, at)| {
        let op = prog.get(pc).map(ToString::to_string).unwrap_or_default();
        (at, format!("; slow {:>4}: {op}", pc.0))
    }));
    headers.extend(layout.fallbacks.iter().map(|&(pc, at)| {
        (
            at,
            format!(
                "; merged guard failed: the run from insn #{}, guard by guard",
                pc.0
            ),
        )
    }));
    headers.extend(layout.fallback_insns.iter().map(|&(pc, at)| {
        let op = prog.get(pc).map(ToString::to_string).unwrap_or_default();
        (at, format!("; guarded {:>4}: {op}", pc.0))
    }));
    headers.extend(layout.loop_checks.iter().map(|&(pc, at)| {
        (
            at,
            format!(
                "; loop at insn #{}: entry check for its unguarded copy",
                pc.0
            ),
        )
    }));
    headers.extend(layout.loop_copies.iter().map(|&(pc, at)| {
        (
            at,
            format!("; loop at insn #{}: copy run after a passed check", pc.0),
        )
    }));
    headers.extend(layout.loop_insns.iter().map(|&(pc, at)| {
        let op = prog.get(pc).map(ToString::to_string).unwrap_or_default();
        (at, format!("; checked {:>4}: {op}", pc.0))
    }));
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
