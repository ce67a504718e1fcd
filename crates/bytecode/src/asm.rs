//! The assembler: text to raw slots.
//!
//! The syntax is the conformance suite's (`-- asm` sections of its `.data` files), widened to
//! accept everything `Display for Op` prints, so that a disassembly always reassembles:
//!
//! - one instruction per line; `#` or `;` starts a comment (to the end of the line); a label
//!   `name:` stands on its own line;
//! - registers `r0`..`r10`, with or without `%`; operands separated by commas (the keywords of
//!   `call local|helper|runtime` and `lock [fetch] OP` by spaces);
//! - immediates in signed decimal or hex (`0x`); memory operands `[rN]`, `[rN+off]`, `[rN-off]`;
//! - jump and local-call targets are a label or a signed slot offset `+N`/`-N`; a target without
//!   a sign is a label; the first `exit` also defines the label `exit` unless one is declared;
//! - `lddw` takes a 64-bit value or a pseudo form: `map_fd(fd)`, `map_value(fd, off)`,
//!   `btf_id(id)`, `func(target)`, `map_idx(idx)`, `map_idx_value(idx, off)`.
//!
//! Every instruction is built as an [`Op`] and encoded by [`crate::encode`], so the encoding
//! tables exist once. The result is raw slots, not a validated program: callers that need one
//! pass it to [`crate::Program::decode`], which reports what the text cannot (a jump outside the
//! program, a write to r10).

use crate::encode::encode_into;
use crate::insn::Insn;
use crate::op::*;
use std::collections::HashMap;
use thiserror::Error;

/// Why a line does not assemble.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AsmErrorKind {
    /// No instruction has this mnemonic.
    #[error("unknown mnemonic")]
    UnknownMnemonic,
    /// The instruction takes a different number of operands.
    #[error("expected {expected} operand(s), found {found}")]
    OperandCount {
        /// Operands the instruction takes.
        expected: usize,
        /// Operands on the line.
        found: usize,
    },
    /// A register name outside `r0`..`r10`.
    #[error("invalid register (r0 to r10)")]
    BadRegister,
    /// A register was expected here.
    #[error("expected a register")]
    ExpectedRegister,
    /// Not a decimal or hex number.
    #[error("expected a number")]
    BadNumber,
    /// A number that does not fit the field.
    #[error("value out of range {min}..={max}")]
    OutOfRange {
        /// Smallest accepted value.
        min: i128,
        /// Largest accepted value.
        max: i128,
    },
    /// Not a memory operand.
    #[error("expected a memory operand [rN], [rN+off] or [rN-off]")]
    BadMemory,
    /// Not a jump target.
    #[error("expected a label or a +N/-N slot offset")]
    BadTarget,
    /// A resolved or written jump offset that does not fit its field.
    #[error("jump offset {off} does not fit in {bits} bits")]
    TargetTooFar {
        /// The offset in slots.
        off: i64,
        /// Width of the field (16 or 32).
        bits: u32,
    },
    /// A target names a label that is not declared.
    #[error("unknown label")]
    UnknownLabel,
    /// Two operands with no comma between them (`mov r0 1`).
    #[error("operands are separated by commas (`mov r0, 1`)")]
    MissingComma,
    /// LLVM's BPF assembler syntax (`clang -S` output: `.text` directives, `r0 = 1`), which
    /// this dialect is not.
    #[error(
        "this is LLVM's BPF assembler syntax (clang -S), not bpfx's dialect (`mov r0, 1`, see `bpfx asm --help`); compile the C with `clang -target bpf -c` and run the object instead"
    )]
    LlvmSyntax,
    /// A label declared twice.
    #[error("label already declared at line {first_line}")]
    DuplicateLabel {
        /// Line of the first declaration.
        first_line: usize,
    },
    /// A label name with characters other than letters, digits, `_` and `.`.
    #[error("invalid label name")]
    BadLabel,
    /// Something follows a label on its line.
    #[error("a label must stand on its own line")]
    TextAfterLabel,
    /// An opening `[` or `(` without its closing one, or the reverse.
    #[error("unbalanced brackets")]
    Unbalanced,
    /// An `lddw` operand of the form `name(...)` with an unknown name.
    #[error("unknown lddw form (map_fd, map_value, btf_id, func, map_idx, map_idx_value)")]
    BadPseudo,
    /// `call` with two operands whose first is not `local`, `runtime` or `helper`.
    #[error("unknown call kind (local, runtime, helper)")]
    BadCallKind,
    /// An unknown operation after `lock`.
    #[error("unknown atomic operation (add, or, and, xor, xchg, cmpxchg)")]
    BadAtomic,
}

/// A line that does not assemble: its 1-based number, the offending token and why.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line}: {kind}: `{token}`")]
pub struct AsmError {
    /// 1-based line number.
    pub line: usize,
    /// The token at fault (a mnemonic, an operand, a label).
    pub token: String,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

/// A line-local error: the token and the reason; the caller adds the line number.
#[derive(Debug)]
struct Bad {
    token: String,
    kind: AsmErrorKind,
}

type PResult<T> = Result<T, Bad>;

fn bad<T>(token: &str, kind: AsmErrorKind) -> PResult<T> {
    Err(Bad {
        token: token.to_string(),
        kind,
    })
}

/// An instruction whose target is a label, resolved once every label is known.
#[derive(Debug)]
struct Pending<'a> {
    line: usize,
    pc: i64,
    op: Op,
    label: Option<&'a str>,
}

/// Assembles `text` into raw slots (two per `lddw`).
///
/// Never panics; every malformed line is an [`AsmError`] naming the line and the token.
pub fn assemble(text: &str) -> Result<Vec<Insn>, AsmError> {
    let mut labels: HashMap<&str, (i64, usize)> = HashMap::new();
    let mut pending = Vec::new();
    let mut pc: i64 = 0;
    let mut first_exit = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let at = |b: Bad| AsmError {
            line,
            token: b.token,
            kind: b.kind,
        };
        let code = raw.split(['#', ';']).next().unwrap_or(raw);
        let (tokens, commas) = tokenize(code).map_err(at)?;
        let Some((&first, rest)) = tokens.split_first() else {
            continue;
        };
        if let Some(t) = std::iter::once(first)
            .chain(rest.iter().copied())
            .find(|t| t.starts_with('.') || t.contains('='))
        {
            return Err(at(Bad {
                token: t.to_string(),
                kind: AsmErrorKind::LlvmSyntax,
            }));
        }
        // An operand (a register, a memory operand or a number) is followed by a comma before
        // the next one; keywords (`call local f`, `lock fetch add [r1], r2`) by spaces.
        for i in 1..tokens.len().saturating_sub(1) {
            if !commas[i + 1] && is_operand(tokens[i]) {
                return Err(at(Bad {
                    token: format!("{} {}", tokens[i], tokens[i + 1]),
                    kind: AsmErrorKind::MissingComma,
                }));
            }
        }
        if let Some(name) = first.strip_suffix(':') {
            if let Some(extra) = rest.first() {
                return Err(at(Bad {
                    token: extra.to_string(),
                    kind: AsmErrorKind::TextAfterLabel,
                }));
            }
            if !is_label(name) {
                return Err(at(Bad {
                    token: first.to_string(),
                    kind: AsmErrorKind::BadLabel,
                }));
            }
            if let Some(&(_, first_line)) = labels.get(name) {
                return Err(at(Bad {
                    token: name.to_string(),
                    kind: AsmErrorKind::DuplicateLabel { first_line },
                }));
            }
            labels.insert(name, (pc, line));
            continue;
        }
        let (op, label) = parse_insn(first, rest).map_err(at)?;
        if op == Op::Exit && first_exit.is_none() {
            first_exit = Some(pc);
        }
        pending.push(Pending {
            line,
            pc,
            op,
            label,
        });
        pc += i64::from(op.slots());
    }
    // The conformance suite jumps to `exit` without declaring it: the first `exit` instruction
    // is that label, unless the program declares its own.
    if let Some(exit_pc) = first_exit {
        labels.entry("exit").or_insert((exit_pc, 0));
    }
    let mut out = Vec::with_capacity(pc.max(0) as usize);
    for p in pending {
        let op = match p.label {
            None => p.op,
            Some(name) => {
                let err = |kind| AsmError {
                    line: p.line,
                    token: name.to_string(),
                    kind,
                };
                let &(target, _) = labels
                    .get(name)
                    .ok_or_else(|| err(AsmErrorKind::UnknownLabel))?;
                with_target(p.op, target - p.pc - 1).map_err(err)?
            }
        };
        encode_into(&op, &mut out);
    }
    Ok(out)
}

/// Splits a line into its mnemonic and operands: separators are whitespace and commas outside
/// brackets, so `[r1 + 8]` and `map_value(3, 8)` stay one token each. With each token, whether
/// a comma separated it from the one before.
fn tokenize(line: &str) -> PResult<(Vec<&str>, Vec<bool>)> {
    let mut tokens = Vec::new();
    let mut commas = Vec::new();
    let mut comma = false;
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in line.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => {
                depth = match depth.checked_sub(1) {
                    Some(d) => d,
                    None => return bad(line.trim(), AsmErrorKind::Unbalanced),
                };
            }
            _ => {}
        }
        let sep = depth == 0 && (c.is_whitespace() || c == ',');
        match (sep, start) {
            (true, Some(s)) => {
                tokens.push(&line[s..i]);
                start = None;
                comma = c == ',';
            }
            (true, None) => comma |= c == ',',
            (false, None) => {
                start = Some(i);
                commas.push(comma);
                comma = false;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return bad(line.trim(), AsmErrorKind::Unbalanced);
    }
    if let Some(s) = start {
        tokens.push(&line[s..]);
    }
    Ok((tokens, commas))
}

/// Whether `tok` is an operand (a register, a memory operand, a number or a slot offset) rather
/// than a keyword or label.
fn is_operand(tok: &str) -> bool {
    let t = tok.strip_prefix('%').unwrap_or(tok);
    let reg = t
        .strip_prefix('r')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let num = t
        .strip_prefix(['+', '-'])
        .unwrap_or(t)
        .starts_with(|c: char| c.is_ascii_digit());
    reg || num || t.starts_with('[')
}

fn is_label(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn count(mnemonic: &str, ops: &[&str], expected: usize) -> PResult<()> {
    if ops.len() == expected {
        Ok(())
    } else {
        bad(
            mnemonic,
            AsmErrorKind::OperandCount {
                expected,
                found: ops.len(),
            },
        )
    }
}

/// `add` and `add64` are 64-bit, `add32` 32-bit.
fn split_width(m: &str) -> (&str, Width) {
    if let Some(base) = m.strip_suffix("32") {
        (base, Width::W32)
    } else {
        (m.strip_suffix("64").unwrap_or(m), Width::W64)
    }
}

fn size_suffix(s: &str) -> Option<Size> {
    match s {
        "b" => Some(Size::B),
        "h" => Some(Size::H),
        "w" => Some(Size::W),
        "dw" => Some(Size::Dw),
        _ => None,
    }
}

/// Parses one instruction line; a target given as a label comes back beside the op (whose
/// offset is then 0) for resolution once every label is known.
fn parse_insn<'a>(m: &str, ops: &[&'a str]) -> PResult<(Op, Option<&'a str>)> {
    let plain = |op| Ok((op, None));
    match m {
        "exit" => {
            count(m, ops, 0)?;
            return plain(Op::Exit);
        }
        "lddw" => {
            count(m, ops, 2)?;
            return parse_lddw(reg(ops[0])?, ops[1]);
        }
        "ja" | "ja32" => {
            count(m, ops, 1)?;
            let op = Op::Ja {
                off: 0,
                long: m == "ja32",
            };
            return targeted(op, ops[0]);
        }
        "may_goto" => {
            count(m, ops, 1)?;
            return targeted(Op::MayGoto { off: 0 }, ops[0]);
        }
        "call" => return parse_call(m, ops),
        "lock" => return parse_lock(m, ops).map(|op| (op, None)),
        _ => {}
    }
    if let Some(rest) = m.strip_prefix("movsx") {
        let (width, from) = match rest {
            "832" => (Width::W32, Size::B),
            "864" => (Width::W64, Size::B),
            "1632" => (Width::W32, Size::H),
            "1664" => (Width::W64, Size::H),
            "3264" => (Width::W64, Size::W),
            _ => return bad(m, AsmErrorKind::UnknownMnemonic),
        };
        count(m, ops, 2)?;
        return plain(Op::Movsx {
            width,
            from,
            dst: reg(ops[0])?,
            src: reg(ops[1])?,
        });
    }
    if let Some(op) = parse_endian(m) {
        count(m, ops, 1)?;
        let (order, bits) = op;
        return plain(Op::Endian {
            order,
            bits,
            dst: reg(ops[0])?,
        });
    }
    if let Some(rest) = m.strip_prefix("ldx") {
        let (signed, rest) = match rest.strip_prefix('s') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let size = match size_suffix(rest) {
            Some(Size::Dw) if signed => return bad(m, AsmErrorKind::UnknownMnemonic),
            Some(s) => s,
            None => return bad(m, AsmErrorKind::UnknownMnemonic),
        };
        count(m, ops, 2)?;
        let dst = reg(ops[0])?;
        let (base, off) = mem(ops[1])?;
        return plain(Op::Load {
            size,
            signed,
            dst,
            base,
            off,
        });
    }
    if let Some(rest) = m.strip_prefix("st") {
        let (x, rest) = match rest.strip_prefix('x') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let Some(size) = size_suffix(rest) else {
            return bad(m, AsmErrorKind::UnknownMnemonic);
        };
        count(m, ops, 2)?;
        let (base, off) = mem(ops[0])?;
        let src = if x {
            Operand::Reg(reg(ops[1])?)
        } else {
            Operand::Imm(imm32(ops[1])?)
        };
        return plain(Op::Store {
            size,
            base,
            off,
            src,
        });
    }
    for (prefix, indexed) in [("ldabs", false), ("ldind", true)] {
        let Some(rest) = m.strip_prefix(prefix) else {
            continue;
        };
        let size = match size_suffix(rest) {
            Some(Size::Dw) | None => return bad(m, AsmErrorKind::UnknownMnemonic),
            Some(s) => s,
        };
        count(m, ops, 1 + usize::from(indexed))?;
        let index = if indexed { Some(reg(ops[0])?) } else { None };
        let imm = imm32(ops[ops.len() - 1])?;
        return plain(Op::LoadPacket { size, index, imm });
    }
    let (base, width) = split_width(m);
    if base == "neg" {
        count(m, ops, 1)?;
        return plain(Op::Neg {
            width,
            dst: reg(ops[0])?,
        });
    }
    if let Some(&op) = AluOp::ALL.iter().find(|op| op.mnemonic() == base) {
        count(m, ops, 2)?;
        return plain(Op::Alu {
            width,
            op,
            dst: reg(ops[0])?,
            src: operand(ops[1])?,
        });
    }
    if let Some(&cond) = Cond::ALL.iter().find(|c| c.mnemonic() == base) {
        count(m, ops, 3)?;
        let op = Op::Branch {
            width,
            cond,
            lhs: reg(ops[0])?,
            rhs: operand(ops[1])?,
            off: 0,
        };
        return targeted(op, ops[2]);
    }
    bad(m, AsmErrorKind::UnknownMnemonic)
}

fn parse_endian(m: &str) -> Option<(ByteOrder, u32)> {
    let (order, bits) = if let Some(b) = m.strip_prefix("le") {
        (ByteOrder::Le, b)
    } else if let Some(b) = m.strip_prefix("be") {
        (ByteOrder::Be, b)
    } else if let Some(b) = m.strip_prefix("bswap").or_else(|| m.strip_prefix("swap")) {
        (ByteOrder::Swap, b)
    } else {
        return None;
    };
    let bits = match bits {
        "16" => 16,
        "32" => 32,
        "64" => 64,
        _ => return None,
    };
    Some((order, bits))
}

/// `call N` (helper), `call rN` (callx), `call local T`, `call runtime N`, `call helper N`.
fn parse_call<'a>(m: &str, ops: &[&'a str]) -> PResult<(Op, Option<&'a str>)> {
    let call = |t| Ok((Op::Call(t), None));
    match *ops {
        [t] if looks_like_reg(t) => call(CallTarget::Register(reg(t)?)),
        [t] => call(CallTarget::Helper(imm_u32(t)?)),
        ["local", t] => targeted(Op::Call(CallTarget::Local { off: 0 }), t),
        ["runtime", t] => call(CallTarget::Kfunc(imm32(t)?)),
        ["helper", t] => call(CallTarget::Helper(imm_u32(t)?)),
        [kind, _] => bad(kind, AsmErrorKind::BadCallKind),
        _ => bad(
            m,
            AsmErrorKind::OperandCount {
                expected: if ops.is_empty() { 1 } else { 2 },
                found: ops.len(),
            },
        ),
    }
}

/// `lock [fetch] OP[32] [base+off], src`.
fn parse_lock(m: &str, ops: &[&str]) -> PResult<Op> {
    let (fetch, rest) = match ops.split_first() {
        Some((&"fetch", rest)) => (true, rest),
        _ => (false, ops),
    };
    if rest.len() != 3 {
        return bad(
            m,
            AsmErrorKind::OperandCount {
                expected: 3 + usize::from(fetch),
                found: ops.len(),
            },
        );
    }
    let (name, width) = split_width(rest[0]);
    let op = match name {
        "add" => AtomicOp::Add,
        "or" => AtomicOp::Or,
        "and" => AtomicOp::And,
        "xor" => AtomicOp::Xor,
        "xchg" => AtomicOp::Xchg,
        "cmpxchg" => AtomicOp::Cmpxchg,
        _ => return bad(rest[0], AsmErrorKind::BadAtomic),
    };
    let (base, off) = mem(rest[1])?;
    Ok(Op::Atomic {
        width,
        op,
        // xchg and cmpxchg always return the old value; the encoding has the fetch bit set.
        fetch: fetch || matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg),
        base,
        off,
        src: reg(rest[2])?,
    })
}

fn parse_lddw(dst: Reg, tok: &str) -> PResult<(Op, Option<&str>)> {
    let load = |value| Ok((Op::LoadImm64 { dst, value }, None));
    let Some((name, args)) = tok.split_once('(') else {
        return load(Imm64::Value(imm64(tok)?));
    };
    let Some(args) = args.strip_suffix(')') else {
        return bad(tok, AsmErrorKind::BadPseudo);
    };
    let args: Vec<&str> = match args.trim() {
        "" => Vec::new(),
        args => args.split(',').map(str::trim).collect(),
    };
    let want = |n: usize| count(name, &args, n);
    match name {
        "map_fd" => {
            want(1)?;
            load(Imm64::MapFd(imm32(args[0])?))
        }
        "map_value" => {
            want(2)?;
            load(Imm64::MapValue {
                fd: imm32(args[0])?,
                off: imm_u32(args[1])?,
            })
        }
        "btf_id" => {
            want(1)?;
            load(Imm64::BtfId(imm32(args[0])?))
        }
        "func" => {
            want(1)?;
            let op = Op::LoadImm64 {
                dst,
                value: Imm64::Func { off: 0 },
            };
            targeted(op, args[0])
        }
        "map_idx" => {
            want(1)?;
            load(Imm64::MapIdx(imm32(args[0])?))
        }
        "map_idx_value" => {
            want(2)?;
            load(Imm64::MapIdxValue {
                idx: imm32(args[0])?,
                off: imm_u32(args[1])?,
            })
        }
        _ => bad(tok, AsmErrorKind::BadPseudo),
    }
}

/// Applies a target token to `op`: a signed offset at once, a label later.
fn targeted(op: Op, tok: &str) -> PResult<(Op, Option<&str>)> {
    if tok.starts_with(['+', '-']) {
        let off = int(tok)?;
        let off = i64::try_from(off.value).unwrap_or(i64::MAX);
        match with_target(op, off) {
            Ok(op) => Ok((op, None)),
            Err(kind) => bad(tok, kind),
        }
    } else if is_label(tok) {
        Ok((op, Some(tok)))
    } else {
        bad(tok, AsmErrorKind::BadTarget)
    }
}

/// Sets the relative slot offset of a jump, local call or `lddw` of a function, checking that
/// it fits the field that encodes it.
fn with_target(op: Op, off: i64) -> Result<Op, AsmErrorKind> {
    let narrow = |bits: u32| AsmErrorKind::TargetTooFar { off, bits };
    let off16 = || i16::try_from(off).map_err(|_| narrow(16));
    let off32 = || i32::try_from(off).map_err(|_| narrow(32));
    Ok(match op {
        Op::Ja { long: false, .. } => Op::Ja {
            off: i32::from(off16()?),
            long: false,
        },
        Op::Ja { long: true, .. } => Op::Ja {
            off: off32()?,
            long: true,
        },
        Op::MayGoto { .. } => Op::MayGoto { off: off16()? },
        Op::Branch {
            width,
            cond,
            lhs,
            rhs,
            ..
        } => Op::Branch {
            width,
            cond,
            lhs,
            rhs,
            off: off16()?,
        },
        Op::Call(CallTarget::Local { .. }) => Op::Call(CallTarget::Local { off: off32()? }),
        Op::LoadImm64 {
            dst,
            value: Imm64::Func { .. },
        } => Op::LoadImm64 {
            dst,
            value: Imm64::Func { off: off32()? },
        },
        // Only the forms above carry a target; the parser never passes another.
        other => other,
    })
}

fn looks_like_reg(tok: &str) -> bool {
    tok.starts_with('%')
        || tok
            .strip_prefix('r')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `rN` or `%rN`, N in 0..=10, written without leading zeros.
fn reg(tok: &str) -> PResult<Reg> {
    if !looks_like_reg(tok) {
        return bad(tok, AsmErrorKind::ExpectedRegister);
    }
    let name = tok.strip_prefix('%').unwrap_or(tok);
    Reg::ALL
        .iter()
        .find(|r| name.strip_prefix('r') == Some(&r.num().to_string()))
        .copied()
        .map_or_else(|| bad(tok, AsmErrorKind::BadRegister), Ok)
}

fn operand(tok: &str) -> PResult<Operand> {
    if looks_like_reg(tok) {
        reg(tok).map(Operand::Reg)
    } else {
        imm32(tok).map(Operand::Imm)
    }
}

/// A parsed integer literal: its value (magnitudes above `u64::MAX` are clamped to
/// `u64::MAX + 1`, which is outside every field) and whether it was written in hex.
struct Int {
    value: i128,
    hex: bool,
}

fn int(tok: &str) -> PResult<Int> {
    let (neg, body) = match tok.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let (hex, digits) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(d) => (true, d),
        None => (false, body),
    };
    let radix = if hex { 16 } else { 10 };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return bad(tok, AsmErrorKind::BadNumber);
    }
    let limit = i128::from(u64::MAX) + 1;
    let mut mag: i128 = 0;
    for c in digits.chars() {
        let d = i128::from(c.to_digit(radix).unwrap_or(0));
        mag = (mag * i128::from(radix) + d).min(limit);
    }
    Ok(Int {
        value: if neg { -mag } else { mag },
        hex,
    })
}

fn in_range(tok: &str, v: i128, min: i128, max: i128) -> PResult<i128> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        bad(tok, AsmErrorKind::OutOfRange { min, max })
    }
}

/// A 32-bit immediate: decimal in the i32 range; hex up to `0xffffffff`, whose bit pattern is
/// kept (`0xffffffff` is -1), as the conformance suite's assembler does.
fn imm32(tok: &str) -> PResult<i32> {
    let n = int(tok)?;
    let max = if n.hex {
        i128::from(u32::MAX)
    } else {
        i128::from(i32::MAX)
    };
    let v = in_range(tok, n.value, i128::from(i32::MIN), max)?;
    Ok(v as u32 as i32)
}

/// A 32-bit field shown unsigned (helper ids, `lddw` value offsets): anything from `i32::MIN`
/// to `u32::MAX`, kept as its 32-bit pattern.
fn imm_u32(tok: &str) -> PResult<u32> {
    let n = int(tok)?;
    let v = in_range(tok, n.value, i128::from(i32::MIN), i128::from(u32::MAX))?;
    Ok(v as u32)
}

/// The 64-bit `lddw` value: anything from `i64::MIN` to `u64::MAX`, kept as its bit pattern.
fn imm64(tok: &str) -> PResult<u64> {
    let n = int(tok)?;
    let v = in_range(tok, n.value, i128::from(i64::MIN), i128::from(u64::MAX))?;
    Ok(v as u64)
}

/// `[rN]`, `[rN+off]` or `[rN-off]`; `off` in the i16 range, decimal or hex, spaces allowed.
fn mem(tok: &str) -> PResult<(Reg, i16)> {
    let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
        return bad(tok, AsmErrorKind::BadMemory);
    };
    let inner: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    let (base, off) = match inner.find(['+', '-']) {
        Some(i) => (&inner[..i], &inner[i..]),
        None => (inner.as_str(), ""),
    };
    if base.is_empty() {
        return bad(tok, AsmErrorKind::BadMemory);
    }
    let base = reg(base)?;
    if off.is_empty() {
        return Ok((base, 0));
    }
    let v = in_range(
        off,
        int(off)?.value,
        i128::from(i16::MIN),
        i128::from(i16::MAX),
    )?;
    Ok((base, v as i16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Op {
        let slots = assemble(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        crate::decode_one(&slots).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn hash_and_semicolon_start_comments() {
        let plain = assemble("mov r0, 1\nja +0\nexit").unwrap();
        for text in [
            "mov r0, 1 # one\nja +0\nexit",
            "; a whole-line comment\nmov r0, 1 ; one\nja +0;same\nexit;",
            "# mixed ; both\nmov r0, 1 ; one # two\n   ;\nja +0\nexit",
        ] {
            assert_eq!(assemble(text).unwrap(), plain, "{text}");
        }
    }

    #[test]
    fn immediates_follow_the_conformance_rules() {
        let imm = |t| imm32(t).map_err(|b| b.kind);
        assert_eq!(imm("0xffffffff").unwrap(), -1);
        assert_eq!(imm("-0x80000000").unwrap(), i32::MIN);
        assert_eq!(imm("2147483647").unwrap(), i32::MAX);
        assert!(matches!(
            imm("2147483648"),
            Err(AsmErrorKind::OutOfRange { .. })
        ));
        assert!(matches!(
            imm("0x100000000"),
            Err(AsmErrorKind::OutOfRange { .. })
        ));
        assert!(matches!(imm("0x"), Err(AsmErrorKind::BadNumber)));
        assert!(matches!(imm("0x+5"), Err(AsmErrorKind::BadNumber)));
        assert!(matches!(
            imm("99999999999999999999999999999999999999999999"),
            Err(AsmErrorKind::OutOfRange { .. })
        ));
        assert_eq!(imm64("-1").map_err(|b| b.kind).unwrap(), u64::MAX);
        assert_eq!(
            imm64("18446744073709551615").map_err(|b| b.kind).unwrap(),
            u64::MAX
        );
        assert!(imm64("18446744073709551616").is_err());
    }

    #[test]
    fn registers_with_and_without_percent() {
        assert_eq!(reg("%r10").unwrap(), Reg::R10);
        assert_eq!(reg("r0").unwrap(), Reg::R0);
        assert!(matches!(
            reg("r11").map_err(|b| b.kind),
            Err(AsmErrorKind::BadRegister)
        ));
        assert!(matches!(
            reg("r01").map_err(|b| b.kind),
            Err(AsmErrorKind::BadRegister)
        ));
        assert!(matches!(
            reg("%x").map_err(|b| b.kind),
            Err(AsmErrorKind::BadRegister)
        ));
        assert!(matches!(
            reg("5").map_err(|b| b.kind),
            Err(AsmErrorKind::ExpectedRegister)
        ));
    }

    #[test]
    fn memory_operands() {
        assert_eq!(mem("[r1]").unwrap(), (Reg::R1, 0));
        assert_eq!(mem("[%r1+0x10]").unwrap(), (Reg::R1, 16));
        assert_eq!(mem("[ r2 - 8 ]").unwrap(), (Reg::R2, -8));
        assert_eq!(mem("[r2-32768]").unwrap(), (Reg::R2, i16::MIN));
        assert!(mem("[r2+32768]").is_err());
        assert!(mem("[+8]").is_err());
        assert!(mem("r1").is_err());
    }

    #[test]
    fn labels_resolve_forward_and_backward() {
        let slots = assemble("top:\nja end\nlddw r0, 1\njeq r0, 0, top\nend:\nexit").unwrap();
        assert_eq!(slots[0].off, 3, "ja skips lddw (2 slots) and jeq");
        assert_eq!(slots[3].off, -4);
    }

    #[test]
    fn implicit_exit_label_yields_to_a_declared_one() {
        let implicit = assemble("ja exit\nmov r0, 0\nexit\nexit").unwrap();
        assert_eq!(implicit[0].off, 1);
        let declared = assemble("ja exit\nexit\nexit:\nexit").unwrap();
        assert_eq!(declared[0].off, 1);
    }

    #[test]
    fn both_syntaxes_give_the_same_op() {
        assert_eq!(one("add32 %r1, %r2"), one("add32 r1, r2"));
        assert_eq!(
            one("lock fetch add [%r1+8], %r2"),
            one("lock fetch add [r1+8],r2")
        );
        assert_eq!(one("mov64 r1, 1"), one("mov r1, 1"));
        assert_eq!(one("swap16 r1"), one("bswap16 r1"));
    }

    #[test]
    fn operands_need_commas_and_llvm_syntax_is_named() {
        let kind = |text: &str| assemble(text).unwrap_err().kind;
        for text in [
            "mov %r0 0",
            "mov r0 1",
            "add32 r1 r2",
            "jeq r1, 0 +3",
            "lddw r1 0x10",
            "stxdw [r10-8] r1",
            "lock add [r1+0] r2",
        ] {
            assert_eq!(kind(text), AsmErrorKind::MissingComma, "{text}");
        }
        for text in ["\t.text", "r0 = 1", "f:\n\tr0 = *(u32 *)(r1 + 0)"] {
            assert_eq!(kind(text), AsmErrorKind::LlvmSyntax, "{text}");
        }
        // Keywords take spaces; operands commas, with or without spaces around them.
        assert!(assemble("call local f\nexit\nf:\nexit").is_ok());
        assert!(assemble("lock fetch add [r10-8],r3\njeq r1,0,+0\nexit").is_ok());
    }
}
