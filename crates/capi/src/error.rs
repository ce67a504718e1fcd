//! Status codes, the error type of the safe layer, and the thread's last error message.
//!
//! Every function of `bpfx.h` that returns a `bpfx_status` also leaves a message: the thread's
//! (`bpfx_last_error`) and, when it was given a VM, the VM's (`bpfx_vm_error`). Success leaves
//! an empty message, so a message always belongs to the call just made.

use runtime::{Error, MapError, RunError};
use std::cell::RefCell;
use std::ffi::CString;

/// `enum bpfx_status`: what a call of `bpfx.h` returns. The values are stable (they are part
/// of the C ABI); `BPFX_OK` is zero so `if (bpfx_...(...))` reads as "if it failed".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A pointer the call needs was NULL.
    Null = 1,
    /// A bad argument: a zero or wrong length, an unknown enum value, text that is not UTF-8.
    Argument = 2,
    /// The call does not fit the VM's state (for example running before compiling).
    State = 3,
    /// The bytecode does not decode.
    Decode = 4,
    /// The ELF object does not load (or its maps cannot be created).
    Elf = 5,
    /// No program of that name.
    NoProgram = 6,
    /// The verifier (or the linking of maps) rejected the program.
    Verify = 7,
    /// The JIT could not compile the program.
    Compile = 8,
    /// The program ran and trapped; `bpfx_trap` tells where and why.
    Trap = 9,
    /// The input does not fit the program's context (wrong kind, or shorter than verified).
    Context = 10,
    /// No map of that name.
    NoMap = 11,
    /// A map operation failed (key or value size, full map, flags, kind).
    Map = 12,
    /// The map has no entry with that key.
    NotFound = 13,
    /// A bug in bpfx (a panic, caught at the boundary).
    Internal = 14,
    /// A map's storage or the program's code would pass the VM's memory limit
    /// (`bpfx_set_mem_limit`); nothing was allocated.
    Memory = 15,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 16] = [
        Status::Ok,
        Status::Null,
        Status::Argument,
        Status::State,
        Status::Decode,
        Status::Elf,
        Status::NoProgram,
        Status::Verify,
        Status::Compile,
        Status::Trap,
        Status::Context,
        Status::NoMap,
        Status::Map,
        Status::NotFound,
        Status::Internal,
        Status::Memory,
    ];

    /// The C name of the constant (`BPFX_OK`, `BPFX_ERR_NULL`, …).
    pub const fn c_name(self) -> &'static str {
        match self {
            Status::Ok => "BPFX_OK",
            Status::Null => "BPFX_ERR_NULL",
            Status::Argument => "BPFX_ERR_ARGUMENT",
            Status::State => "BPFX_ERR_STATE",
            Status::Decode => "BPFX_ERR_DECODE",
            Status::Elf => "BPFX_ERR_ELF",
            Status::NoProgram => "BPFX_ERR_NO_PROGRAM",
            Status::Verify => "BPFX_ERR_VERIFY",
            Status::Compile => "BPFX_ERR_COMPILE",
            Status::Trap => "BPFX_ERR_TRAP",
            Status::Context => "BPFX_ERR_CONTEXT",
            Status::NoMap => "BPFX_ERR_NO_MAP",
            Status::Map => "BPFX_ERR_MAP",
            Status::NotFound => "BPFX_ERR_NOT_FOUND",
            Status::Internal => "BPFX_ERR_INTERNAL",
            Status::Memory => "BPFX_ERR_MEMORY",
        }
    }

    /// The status with this code.
    pub fn from_code(code: i64) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s as i64 == code)
    }

    /// NUL-terminated lower-case name, for `bpfx_status_name`.
    pub(crate) const fn name(self) -> &'static std::ffi::CStr {
        match self {
            Status::Ok => c"ok",
            Status::Null => c"null pointer",
            Status::Argument => c"bad argument",
            Status::State => c"wrong state",
            Status::Decode => c"bytecode does not decode",
            Status::Elf => c"ELF object does not load",
            Status::NoProgram => c"no such program",
            Status::Verify => c"verifier rejected the program",
            Status::Compile => c"compilation failed",
            Status::Trap => c"program trapped",
            Status::Context => c"input does not fit the context",
            Status::NoMap => c"no such map",
            Status::Map => c"map operation failed",
            Status::NotFound => c"no entry with that key",
            Status::Internal => c"internal error",
            Status::Memory => c"memory limit reached",
        }
    }
}

/// The C name of a trap kind's constant (`BPFX_TRAP_OUT_OF_BOUNDS`, …).
#[cfg(test)]
pub(crate) fn trap_c_name(kind: runtime::TrapKind) -> String {
    format!(
        "BPFX_TRAP_{}",
        kind.name().replace('-', "_").to_ascii_uppercase()
    )
}

/// Every integer constant `bpfx.h` must define, with its value, derived from the Rust
/// definitions: what the header check compares the header against.
#[cfg(test)]
pub(crate) fn constants() -> Vec<(String, i128)> {
    use crate::vm::{ArgCode, ContextCode, EngineCode, ModeCode};
    let mut out: Vec<(String, i128)> = Status::ALL
        .iter()
        .map(|s| (s.c_name().to_string(), *s as i128))
        .collect();
    out.push(("BPFX_TRAP_NONE".into(), 0));
    out.extend(
        runtime::TrapKind::ALL
            .iter()
            .map(|k| (trap_c_name(*k), i128::from(*k as u8))),
    );
    out.extend(
        ModeCode::ALL
            .iter()
            .map(|m| (m.c_name().to_string(), *m as i128)),
    );
    out.extend(
        EngineCode::ALL
            .iter()
            .map(|m| (m.c_name().to_string(), *m as i128)),
    );
    out.extend(
        ContextCode::ALL
            .iter()
            .map(|m| (m.c_name().to_string(), *m as i128)),
    );
    out.extend(
        ArgCode::ALL
            .iter()
            .map(|m| (m.c_name().to_string(), *m as i128)),
    );
    out.push((
        "BPFX_MAX_HELPER_ARGS".into(),
        crate::vm::MAX_HELPER_ARGS as i128,
    ));
    out.push((
        "BPFX_INPUT_SIZE_UNKNOWN".into(),
        i128::from(crate::vm::INPUT_SIZE_UNKNOWN),
    ));
    out.push((
        "BPFX_DEFAULT_MEM_LIMIT".into(),
        i128::from(runtime::DEFAULT_MEM_LIMIT),
    ));
    out.push((
        "BPFX_BUDGET_DEFAULT".into(),
        i128::from(crate::vm::BUDGET_DEFAULT),
    ));
    out.push((
        "BPFX_BUDGET_UNLIMITED".into(),
        i128::from(crate::vm::BUDGET_UNLIMITED),
    ));
    out.push((
        "BPFX_DEFAULT_BUDGET".into(),
        i128::from(runtime::DEFAULT_BUDGET),
    ));
    {
        use crate::object::*;
        for (name, v) in [
            ("BPFX_HARDEN_BLINDING", HARDEN_BLINDING),
            ("BPFX_HARDEN_SPECTRE", HARDEN_SPECTRE),
            ("BPFX_CODE_MEMORY_SEALED", CODE_MEMORY_SEALED),
            ("BPFX_CODE_MEMORY_DUAL_MAPPED", CODE_MEMORY_DUAL_MAPPED),
        ] {
            out.push((name.into(), i128::from(v)));
        }
    }
    out.push(("BPFX_UBPF_JIT_SLOTS".into(), crate::ubpf::JIT_SLOTS as i128));
    for (name, v) in [
        ("BPFX_REDIRECT_NONE", crate::ffi::REDIRECT_NONE),
        ("BPFX_REDIRECT_IFINDEX", crate::ffi::REDIRECT_IFINDEX),
        ("BPFX_REDIRECT_MAP", crate::ffi::REDIRECT_MAP),
        ("BPFX_REDIRECT_BROADCAST", crate::ffi::REDIRECT_BROADCAST),
        ("BPFX_REDIRECT_PEER", crate::ffi::REDIRECT_PEER),
    ] {
        out.push((name.into(), i128::from(v)));
    }
    out
}

/// A failed call: its status and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    pub(crate) status: Status,
    pub(crate) message: String,
}

impl Fail {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Fail {
        Fail::new(Status::Null, format!("{what} is NULL"))
    }

    pub(crate) fn arg(message: impl Into<String>) -> Fail {
        Fail::new(Status::Argument, message)
    }

    pub(crate) fn state(message: impl Into<String>) -> Fail {
        Fail::new(Status::State, message)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        let status = match &e {
            Error::Io { .. } | Error::Elf { .. } | Error::MapSpec { .. } => Status::Elf,
            Error::NoProgram { .. } => Status::NoProgram,
            Error::NoMap { .. } => Status::NoMap,
            Error::Link { .. }
            | Error::Verify { .. }
            | Error::MapUnsupported { .. }
            | Error::UnsupportedProgramType { .. } => Status::Verify,
            Error::MemoryLimit { .. } => Status::Memory,
            Error::Jit { .. } => Status::Compile,
            Error::Run(RunError::Trap { .. }) => Status::Trap,
            Error::Run(
                RunError::WrongContext { .. }
                | RunError::InputTooShort { .. }
                | RunError::Layout { .. }
                | RunError::FrameMoved { .. },
            )
            | Error::Layout { .. } => Status::Context,
            Error::Map {
                source: MapError::NotFound,
                ..
            } => Status::NotFound,
            Error::Map { .. }
            | Error::ProgArray { .. }
            | Error::MapType { .. }
            | Error::MapSize { .. }
            | Error::PerCpuValues { .. } => Status::Map,
            Error::NoGlobal { .. } | Error::GlobalSize { .. } | Error::Config(_) => {
                Status::Argument
            }
            Error::GlobalFrozen { .. } => Status::State,
        };
        Fail::new(status, e.to_string())
    }
}

/// Text as a C string: an interior NUL (impossible in bpfx's own messages, possible in a name
/// the caller passed back) is shown as `\0` rather than cutting the message short.
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the outcome of a call as the thread's last error.
pub(crate) fn set_last_error(message: &str) {
    LAST_ERROR.with(|e| *e.borrow_mut() = c_string(message));
}

/// The thread's last error, as a pointer valid until the thread's next call that records one.
pub(crate) fn last_error_ptr() -> *const std::ffi::c_char {
    // The CString's heap buffer does not move when the RefCell is only read; it is replaced
    // (and the old pointer invalidated) by the next `set_last_error`, as documented.
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
