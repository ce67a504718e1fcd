//! Verifier rejections, worded like the kernel's log: the pc, the instruction, the reason.

use bpfx_bytecode::{Op, Pc, Reg};
use std::fmt;

/// Why a program was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyErrorKind {
    // ---- structure (both modes) ----
    /// A jump from one function into another.
    #[error("jump to {target} leaves the function starting at {func}")]
    JumpOutOfFunction {
        /// Where the jump goes.
        target: Pc,
        /// The function the jump is in.
        func: Pc,
    },
    /// The last instruction of the program is not `exit` or `ja`.
    #[error("control falls off the end of the program")]
    FallsOffEnd,
    /// The last instruction of a function falls through into the next function.
    #[error("control falls through into the function starting at {0}")]
    FallsIntoFunction(Pc),
    /// No path from the entry (or a function start) reaches the instruction.
    #[error("unreachable instruction")]
    Unreachable,
    /// `call N` with no helper registered under `N`.
    #[error("call to unknown helper {0}")]
    UnknownHelper(u32),
    /// `call N` to a helper the program's type does not offer (the kernel's "program of this
    /// type cannot use helper").
    #[error("program of type {prog_type} cannot use helper {helper}#{id}")]
    HelperNotOffered {
        /// The helper's name.
        helper: String,
        /// Its id.
        id: u32,
        /// The program type, as the kernel names it (`xdp`, `sched_cls`, …).
        prog_type: String,
    },
    /// `call runtime N`: kernel functions do not exist in this runtime.
    #[error("kernel function calls are not supported")]
    Kfunc,
    /// An instruction that writes the frame pointer (decoding already rules this out).
    #[error("r10 is read-only")]
    WritesFramePointer,
    /// The analysis processed more instructions than its budget allows (`Strict` mode only:
    /// `Checked` mode goes on with every loop head widened to a stable state).
    #[error("program too complex: more than {0} instructions processed")]
    TooComplex(u64),
    /// A loop whose state at its head repeats (is covered by the state of an earlier
    /// iteration): as far as the analysis can tell, it may run forever.
    #[error(
        "back-edge to {0} forms a loop whose termination cannot be proven: an iteration reaches its head in a state an earlier iteration already had"
    )]
    Loop(Pc),
    /// The analysis budget ran out while exploring the iterations of a loop.
    #[error(
        "the loop at {head} is not proven to terminate within the budget of {budget} processed instructions"
    )]
    LoopTooComplex {
        /// The head of the innermost loop being explored.
        head: Pc,
        /// The budget.
        budget: u64,
    },
    /// Loops whose bodies overlap without nesting (an irreducible graph). No longer produced:
    /// `Strict` mode explores such loops (`docs/verifier.md`, "Loops that overlap"); kept so that
    /// code matching on it still builds.
    #[error("the loop at {0} overlaps another loop without nesting in it")]
    IrreducibleLoop(Pc),
    /// A helper handed the context as memory it may write (it could forge the packet bounds).
    #[error("through {reg}, a helper may write the context")]
    ContextFieldWrite {
        /// The base register.
        reg: Reg,
    },
    /// A context access that matches no field (wrong offset, size, signedness or kind of
    /// access for the field it falls in), or an atomic on a field that is not plain bytes.
    #[error("invalid access to context at offset {off} size {size}")]
    ContextAccess {
        /// Offset of the access in the program's view of the context.
        off: i64,
        /// Access size in bytes.
        size: u32,
    },
    /// A legacy packet load (`ldabs`/`ldind`) in a context that has no packet for it (the
    /// kernel allows them only in socket filters and TC programs).
    #[error("legacy packet loads (ldabs/ldind) are not allowed with this context")]
    PacketLoadNotAllowed,
    /// A store to a context field programs may only read.
    #[error("write to the read-only context field at offset {off} size {size}")]
    ContextReadOnly {
        /// Offset of the access in the program's view of the context.
        off: i64,
        /// Access size in bytes.
        size: u32,
    },
    /// A context access through a pointer whose offset is not one number.
    #[error(
        "{reg} points into the context at a variable offset ({what}); a context access needs a constant one"
    )]
    ContextVariableOffset {
        /// The base register.
        reg: Reg,
        /// The offset as tracked, for the message.
        what: String,
    },
    /// An access through a value that may be the context pointer on some paths (or derived
    /// from it in a way the verifier does not follow) and something else on others.
    #[error("{reg} may or may not point into the context here")]
    ContextMaybe {
        /// The base register.
        reg: Reg,
    },
    /// One instruction reached as two different context accesses (or as a context access and
    /// an access to other memory): it cannot be converted to bpfx's layout once for all paths.
    #[error("this instruction is {first} on one path and {second} on another")]
    ContextAccessDiffers {
        /// What the first visit was.
        first: String,
        /// What a later visit was.
        second: String,
    },
    /// A converted context access whose offset no longer fits an instruction.
    #[error(
        "the context access converted to bpfx's layout needs offset {off}, outside -32768..=32767"
    )]
    ContextOffsetRange {
        /// The offset the converted instruction would need.
        off: i64,
    },
    /// A converted context access that does not decode (an internal fault: conversions only
    /// change sizes and offsets to values the decoder accepts).
    #[error("the context access converted to bpfx's layout does not decode: {0}")]
    ContextConversion(String),
    /// A variable-offset access that may leave its region.
    #[error("access of {} at offsets {lo}..={hi} through {reg} may fall outside {what}", bytes(*size))]
    RangeOutOfBounds {
        /// The base register.
        reg: Reg,
        /// The region, for the message.
        what: &'static str,
        /// Lowest offset of the access.
        lo: i64,
        /// Highest offset of the access.
        hi: i64,
        /// Access size.
        size: u64,
    },
    /// A local call nested deeper than the frame limit.
    #[error("call nests {frames} frames, more than the limit of {max}")]
    CallTooDeep {
        /// Frames the call would need.
        frames: usize,
        /// The limit.
        max: u32,
    },
    /// `callx` on a register whose value is not a known helper id.
    #[error("{0} does not hold a known helper id")]
    UnknownCallTarget(Reg),

    // ---- types and initialisation ----
    /// A read of a register that some path leaves unwritten.
    #[error("{0} is not initialised")]
    UninitRegister(Reg),
    /// A read of stack bytes that some path leaves unwritten.
    #[error("read of {} at fp{frame}{off:+} reads uninitialised stack", bytes(u64::from(*size)))]
    UninitStack {
        /// Frame level of the slot.
        frame: u8,
        /// Byte offset from that frame's r10.
        off: i64,
        /// Access size in bytes.
        size: u32,
    },
    /// A load, store or atomic whose base is not a pointer to memory.
    #[error("{reg} is {what}, not a pointer to memory")]
    NotAPointer {
        /// The base register.
        reg: Reg,
        /// What it holds.
        what: &'static str,
    },
    /// A dereference of a map value pointer not yet compared with 0.
    #[error("{0} may be null: compare it with 0 before using it")]
    MaybeNull(Reg),
    /// A ring buffer record read after `bpf_ringbuf_submit` or `bpf_ringbuf_discard`
    /// released it, on every path (`on_some_paths: false`) or on some (the kernel makes every
    /// copy of a released record unreadable).
    #[error(
        "{reg} is a ring buffer record already submitted or discarded{}",
        if *on_some_paths { " on some paths to here" } else { "" }
    )]
    RecordReleased {
        /// The register holding it.
        reg: Reg,
        /// Whether only some paths released it.
        on_some_paths: bool,
    },
    /// A ring buffer record whose reservation the analysis lost (two reservations joined
    /// into one register): it cannot tell which one a release would release.
    #[error("{0} is a ring buffer record of two different reservations on different paths")]
    RecordUnknown(Reg),
    /// A record released at another offset than its start (the kernel's "must have zero
    /// offset when passed to release func").
    #[error("{0} must point to the start of a ring buffer record (offset 0) to release it")]
    RecordOffset(Reg),
    /// A ring buffer record not submitted nor discarded on some path to the program's exit
    /// or to a tail call (the kernel's "Unreleased reference").
    #[error(
        "the ring buffer record reserved at {0} is not submitted or discarded on every path to exit"
    )]
    RecordNotReleased(Pc),
    /// A socket reference (from `sk_lookup_tcp`, `sk_lookup_udp`, `skc_lookup_tcp`) not
    /// released with `sk_release` on some path to the program's exit or to a tail call (the
    /// kernel's "Unreleased reference"), in both modes.
    #[error("the socket reference acquired at {0} is not released on every path to exit")]
    SockNotReleased(Pc),
    /// A socket pointer used after `sk_release` released its reference, on every path or on
    /// some, in both modes.
    #[error(
        "{reg} is a socket whose reference, acquired at {at}, is already released{}",
        if *on_some_paths { " on some paths to here" } else { "" }
    )]
    SockReleased {
        /// The register holding it.
        reg: Reg,
        /// The `call` that acquired it.
        at: Pc,
        /// Whether only some paths released it.
        on_some_paths: bool,
    },
    /// A load of a socket field the kernel does not allow (the field, its size or alignment),
    /// or any store or atomic through a socket pointer (the kernel's "invalid sock access",
    /// "cannot write into sock").
    #[error("invalid {kind} access off={off} size={size}{}", if *write { " (socket fields are read-only)" } else { "" })]
    SockAccess {
        /// The pointer's type (`sock`, `sock_common`, `tcp_sock`).
        kind: &'static str,
        /// The offset in the struct.
        off: i64,
        /// The access's size in bytes.
        size: u32,
        /// Whether it writes.
        write: bool,
    },
    /// Something the kernel forbids while a `bpf_spin_lock` is held (`Strict` mode): a call
    /// other than `bpf_spin_unlock` of that lock (a second lock, a tail call and local calls
    /// included), `ld_abs`/`ld_ind`, or `exit`.
    #[error(
        "{what} while the bpf_spin_lock taken at {at} is held{}",
        if *on_some_paths { " on some paths to here" } else { "" }
    )]
    LockHeld {
        /// What the program does.
        what: String,
        /// The `call` that took the lock.
        at: Pc,
        /// Whether only some paths hold it.
        on_some_paths: bool,
    },
    /// `bpf_spin_unlock` of a lock not held on every path to it, or of another lock than
    /// the one held (`Strict` mode).
    #[error("bpf_spin_unlock of {0}")]
    UnlockNotHeld(String),
    /// A stack access outside the 512-byte frame.
    #[error("stack access of {} at offset {off} is outside the {STACK}-byte frame", bytes(u64::from(*size)))]
    StackOutOfBounds {
        /// Offset from r10.
        off: i64,
        /// Access size.
        size: u32,
    },
    /// An access through a pointer whose offset is not known.
    #[error("{reg} is {what} at an unknown offset")]
    VariableOffset {
        /// The base register.
        reg: Reg,
        /// What it points to.
        what: &'static str,
    },
    /// An input-memory access outside the declared size.
    #[error("access of {} at offset {off} is outside the input memory of {}", bytes(*size), bytes(*mem))]
    InputOutOfBounds {
        /// Offset from the start.
        off: i64,
        /// Access size.
        size: u64,
        /// Input size.
        mem: u64,
    },
    /// An input-memory access when the input size is not known.
    #[error("the input memory size is not known, so no access to it can be proven")]
    InputSizeUnknown,
    /// A map-value access outside the value.
    #[error("access of {} at offset {off} is outside the map value of {}", bytes(*size), bytes(u64::from(*value_size)))]
    MapValueOutOfBounds {
        /// Offset from the start of the value.
        off: i64,
        /// Access size.
        size: u64,
        /// Value size.
        value_size: u32,
    },
    /// A map named by `lddw` that the configuration does not declare.
    #[error("map {0:?} is not declared")]
    UnknownMap(crate::MapRef),
    /// A store, atomic or helper write into a value of a read-only map.
    #[error("{reg} points into a value of read-only map {map:?}, which programs may not write")]
    ReadOnlyMapWrite {
        /// The pointer register.
        reg: Reg,
        /// The map.
        map: crate::MapRef,
    },
    /// A store, atomic or helper write through a packet pointer where the context's packet
    /// is read-only ([`crate::ContextLayout::packet_read_only`]).
    #[error("cannot write into packet through {0}: the packet is read-only for this program type")]
    PacketReadOnly(Reg),
    /// A packet access not proven below `data_end` by an earlier comparison.
    #[error("packet access through {0} is not proven in bounds by a check against data_end")]
    PacketUnproven(Reg),
    /// Arithmetic the pointer rules forbid.
    #[error("{op} on {what} in {reg} is prohibited")]
    PointerArith {
        /// The operation (mnemonic).
        op: String,
        /// The pointer register.
        reg: Reg,
        /// What it holds.
        what: &'static str,
    },
    /// Two pointers as the operands of one ALU operation.
    #[error("{op} of two pointers ({dst} and {src}) is prohibited")]
    TwoPointers {
        /// The operation (mnemonic).
        op: String,
        /// Destination register.
        dst: Reg,
        /// Source register.
        src: Reg,
    },
    /// A pointer value written where it would leak an address.
    #[error("{reg} is {what}; storing it into {into} would leak an address")]
    PointerLeak {
        /// The leaked register.
        reg: Reg,
        /// What it holds.
        what: &'static str,
        /// The destination region.
        into: &'static str,
    },
    /// A pointer stored to the stack other than as an aligned 8-byte spill.
    #[error("{reg} is {what}; only aligned 8-byte stores may spill it to the stack")]
    PartialSpill {
        /// The register.
        reg: Reg,
        /// What it holds.
        what: &'static str,
    },
    /// A read of part of a spilled pointer, or an atomic operation on one.
    #[error("access of {} at fp{frame}{off:+} touches part of a spilled pointer", bytes(u64::from(*size)))]
    PartialFill {
        /// Frame level.
        frame: u8,
        /// Offset from r10.
        off: i64,
        /// Access size.
        size: u32,
    },
    /// A helper argument of the wrong type.
    #[error("argument {reg} of helper {helper} must be {expected}, but it is {found}")]
    HelperArg {
        /// Helper name.
        helper: String,
        /// The argument register.
        reg: Reg,
        /// What the signature asks for.
        expected: &'static str,
        /// What the register holds.
        found: &'static str,
    },
    /// A helper size argument with no useful upper bound (a constant or a range is checked at
    /// its maximum).
    #[error("size argument {0} of helper {1} has no upper bound: bound it with a check or a mask")]
    HelperSize(Reg, String),
    /// The size argument of a helper returning memory of that size
    /// ([`crate::RetKind::MemOrNull`]) is not a known constant (Strict mode).
    #[error(
        "size argument {0} of helper {1} is not a known constant: the memory it returns must have a size the verifier knows"
    )]
    HelperSizeNotConst(Reg, String),
    /// r0 at the outermost `exit` is not a scalar.
    #[error("r0 is {0} at exit; the program must return a scalar")]
    ReturnNotScalar(&'static str),
    /// r0 at the outermost `exit` may lie outside the range the program type allows.
    #[error(
        "r0 at exit may be any of {smin}..={smax}; this program type must return a value in [{lo}, {hi}]"
    )]
    ReturnRange {
        /// The least value allowed.
        lo: i64,
        /// The greatest value allowed.
        hi: i64,
        /// The least value r0 may hold.
        smin: i64,
        /// The greatest value r0 may hold.
        smax: i64,
    },
    /// A pointer into a returning function's frame outlives it.
    #[error("{0} points into the stack frame of the function that returns")]
    StackPointerEscapes(String),
    /// An `lddw` form this runtime does not bind.
    #[error("lddw of a BTF variable is not supported")]
    BtfVariable,
    /// A callback-taking helper's callback breaks the kernel's rule for it (not one known
    /// function of the program, a result outside 0 and 1, called through `callx`). It rejects
    /// in both modes: the engines call the function the verifier recorded.
    #[error("callback of helper {helper}: {reason}")]
    Callback {
        /// Helper name.
        helper: String,
        /// What is wrong.
        reason: String,
    },

    // ---- verifier faults ----
    /// An invariant of the verifier itself does not hold: not a fault of the program but a
    /// bug in bpfx, reported instead of a panic. It rejects in both modes.
    #[error(
        "internal verifier error ({what}): this is a bug in the bpfx verifier, please report it"
    )]
    Internal {
        /// The invariant that failed.
        what: &'static str,
    },
}

impl VerifyErrorKind {
    /// Whether this is a fault of the program's structure, which rejects in both modes. Apart
    /// from a forged map handle, these are the only rejections of `Checked` mode. The analysis
    /// budget is not one: only `Strict` mode rejects for it ([`VerifyErrorKind::TooComplex`],
    /// [`VerifyErrorKind::LoopTooComplex`]).
    pub fn is_structural(&self) -> bool {
        use VerifyErrorKind::*;
        matches!(
            self,
            JumpOutOfFunction { .. }
                | FallsOffEnd
                | FallsIntoFunction(_)
                | Unreachable
                | UnknownHelper(_)
                | HelperNotOffered { .. }
                | Kfunc
                | WritesFramePointer
        )
    }

    /// Whether this is a context access the verifier cannot convert to bpfx's layout (see
    /// `docs/verifier.md`, "Contexts"), which rejects in both modes; only a field context
    /// ([`crate::ContextKind::Fields`]) gives one.
    pub fn is_context(&self) -> bool {
        use VerifyErrorKind::*;
        matches!(
            self,
            ContextAccess { .. }
                | ContextReadOnly { .. }
                | PacketLoadNotAllowed
                | PacketReadOnly(_)
                | ContextVariableOffset { .. }
                | ContextMaybe { .. }
                | ContextAccessDiffers { .. }
                | ContextOffsetRange { .. }
                | ContextConversion(_)
        )
    }
}

/// "1 byte", "8 bytes".
fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// Size of one frame, for messages.
const STACK: usize = bpfx_exec::STACK_FRAME_SIZE;

/// A rejection: where, on which instruction, and why.
///
/// `Display` reads like the kernel's log: `insn #12: ldxdw r3, [r2+0]: r2 is a scalar, not a
/// pointer to memory`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The instruction at fault.
    pub pc: Pc,
    /// That instruction, when the pc is an instruction start.
    pub op: Option<Op>,
    /// Why.
    pub kind: VerifyErrorKind,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Some(op) => write!(f, "{}: {op}: {}", self.pc, self.kind),
            None => write!(f, "{}: {}", self.pc, self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_says_it_is_a_verifier_bug_and_no_fault_of_the_program() {
        let kind = VerifyErrorKind::Internal {
            what: "a carried state was taken twice",
        };
        assert!(!kind.is_structural() && !kind.is_context());
        let e = VerifyError {
            pc: Pc(3),
            op: Some(Op::Exit),
            kind,
        };
        assert_eq!(
            e.to_string(),
            "insn #3: exit: internal verifier error (a carried state was taken twice): \
             this is a bug in the bpfx verifier, please report it"
        );
    }
}
