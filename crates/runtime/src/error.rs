//! The facade's error types: [`Error`] for opening, preparing and host access, [`RunError`]
//! for what a run of a [`crate::Program`] returns. Every failure names the file, program or
//! map it is about.

use crate::context::LayoutError;
use crate::map::MapError;
use bpfx_exec::Trap;
use std::path::PathBuf;

/// Why opening, preparing or accessing something failed (and, through [`Error::Run`], a run:
/// functions returning `Result<_, Error>` take a [`RunError`] with `?`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the object file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The object does not load.
    #[error("{what}: {source}")]
    Elf {
        /// The file (or `<bytes>`).
        what: String,
        /// Why.
        source: Box<bpfx_elf::ElfError>,
    },
    /// A map the object declares cannot be created.
    #[error("map `{map}`: {reason}")]
    MapSpec {
        /// The map.
        map: String,
        /// Why.
        reason: String,
    },
    /// A program names a map bpfx cannot create: a type it does not implement, or a shape
    /// the kernel refuses. The object loads; only the programs that name the map fail.
    #[error("program `{program}`: map `{map}`: {reason}")]
    MapUnsupported {
        /// The program.
        program: String,
        /// The map.
        map: String,
        /// Why (the feature missing).
        reason: String,
    },
    /// Creating a map's storage or a program's code would take the [`crate::Vm`] past its
    /// memory limit; nothing was allocated.
    #[error(
        "{what}: needs {need} bytes, but only {} of the {limit}-byte memory limit are left",
        limit.saturating_sub(*used)
    )]
    MemoryLimit {
        /// What needs the memory (`map `name``, or a program's JIT code).
        what: String,
        /// The bytes it needs.
        need: u64,
        /// The bytes already held when it asked (for a program's maps checked together, with
        /// those of its maps counted before this one).
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// No program of that name (or section).
    #[error("no program `{name}`; programs: {}", list(available))]
    NoProgram {
        /// The name asked for.
        name: String,
        /// The programs there are.
        available: Vec<String>,
    },
    /// No map of that name.
    #[error("no map `{name}`; maps: {}", list(available))]
    NoMap {
        /// The name asked for.
        name: String,
        /// The maps there are.
        available: Vec<String>,
    },
    /// A struct context whose layout bpfx refuses, at verification (at a run, the same is
    /// [`RunError::Layout`]).
    #[error("program `{program}`: context layout: {source}")]
    Layout {
        /// The program.
        program: String,
        /// Why.
        source: LayoutError,
    },
    /// An `lddw` pseudo form that names no usable map.
    #[error("program `{program}`: {pc}: {insn}: {reason}")]
    Link {
        /// The program.
        program: String,
        /// The instruction.
        pc: bpfx_bytecode::Pc,
        /// It, in assembly.
        insn: String,
        /// Why.
        reason: String,
    },
    /// The verifier rejected the program.
    #[error("program `{program}`: verifier rejected it: {source}")]
    Verify {
        /// The program.
        program: String,
        /// The verifier's error (pc, instruction, reason).
        source: Box<bpfx_verifier::VerifyError>,
    },
    /// The JIT could not compile the program.
    #[error("program `{program}`: JIT compilation failed: {source}")]
    Jit {
        /// The program.
        program: String,
        /// Why.
        source: bpfx_jit::JitError,
    },
    /// A program whose type (from its section, or set by the embedder) bpfx does not model:
    /// refused rather than run on a context it was not written for.
    #[error(
        "program `{program}` (section `{section}`) is a {prog_type} program, a type bpfx does not run; set its context explicitly to run it as another type"
    )]
    UnsupportedProgramType {
        /// The program.
        program: String,
        /// Its section.
        section: String,
        /// The program type, as the kernel's `enum bpf_prog_type` names it (lower case).
        prog_type: &'static str,
    },
    /// A [`crate::Vm`] setting refused with one made before ([`crate::Vm::engine`],
    /// [`crate::Vm::budget`], [`crate::Vm::jit_options`]).
    #[error(transparent)]
    Config(#[from] crate::program::ConfigError),
    /// A run failed ([`crate::Program::run`] and the other run methods): the program trapped,
    /// or the run did not start or could not be given back. `?` turns a [`RunError`] into this.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A host-side map operation failed.
    #[error("map `{map}`: {source}")]
    Map {
        /// The map.
        map: String,
        /// Why.
        source: MapError,
    },
    /// A program that cannot go into a program array slot.
    #[error("map `{map}`: cannot hold program `{program}`: {reason}")]
    ProgArray {
        /// The map.
        map: String,
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// A typed map view of a map of another kind.
    #[error("map `{map}` is of type {}; the view needs {view}", actual.name())]
    MapType {
        /// The map.
        map: String,
        /// The kinds the view covers (`a hash`, `an array`).
        view: &'static str,
        /// The map's kind.
        actual: crate::map::MapKind,
    },
    /// A typed map view whose key or value type is not the map's size.
    #[error(
        "map `{map}`: the {what} type {ty} is {ty_size} bytes, the map's {what}s are {map_size}"
    )]
    MapSize {
        /// The map.
        map: String,
        /// `key`, `value` (or `record`, for a ring buffer record read as a type).
        what: &'static str,
        /// The Rust type.
        ty: &'static str,
        /// Its size in bytes.
        ty_size: usize,
        /// The map's size in bytes.
        map_size: u32,
    },
    /// A per-CPU write with other than one value per CPU.
    #[error("map `{map}`: {got} values given, the map holds one for each of {cpus} CPUs")]
    PerCpuValues {
        /// The map.
        map: String,
        /// The map's number of CPUs.
        cpus: usize,
        /// The number of values given.
        got: usize,
    },
    /// No global variable of that name.
    #[error("no global variable `{name}`; globals: {}", list(available))]
    NoGlobal {
        /// The name asked for.
        name: String,
        /// The object's global variables.
        available: Vec<String>,
    },
    /// A global variable set or read as a type of another size.
    #[error("global `{name}` is {size} bytes, the type {ty} is {ty_size}")]
    GlobalSize {
        /// The variable.
        name: String,
        /// Its size in bytes.
        size: u32,
        /// The Rust type.
        ty: &'static str,
        /// The type's size in bytes.
        ty_size: usize,
    },
    /// A read-only global set after a program using it was prepared to run.
    #[error(
        "global `{name}` is in read-only section `{section}`, fixed once a program using it was prepared; set it before verifying"
    )]
    GlobalFrozen {
        /// The variable.
        name: String,
        /// Its section.
        section: String,
    },
}

/// Why a run of a [`crate::Program`] failed: it trapped (an invalid access, a helper's error,
/// the instruction budget exhausted, …: [`RunError::Trap`] with the trap's kind and pc), or the
/// run was refused before it started (wrong context, input too short, a struct context whose
/// packet fields do not read back), or its frame could not be given back in the caller's slice.
/// Load-time failures stay in [`Error`], which takes a `RunError` with `?`
/// ([`Error::Run`]); the messages are the same either way.
///
/// ```
/// use bpfx::{Context, ProgramDef, RunError, TrapKind, Vm};
/// // Reads 8 bytes at offset 8 of its input: Checked mode guards the load at run time.
/// let code = bpfx::bytecode::assemble("ldxdw r0, [r1+8]\nexit").unwrap();
/// let def = ProgramDef::new("bad", "test", bpfx::Bytecode::decode(code).unwrap());
/// let obj = Vm::new().object(vec![def], vec![])?;
/// let mut prog = obj.program("bad")?.context(Context::Memory).verify(bpfx::Mode::Checked)?.interpret();
/// let err: RunError = prog.run(&mut [0; 4]).unwrap_err();
/// assert_eq!(err.trap().map(|t| t.kind), Some(TrapKind::OutOfBounds));
/// assert_eq!(err.program(), "bad");
/// # Ok::<(), bpfx::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program ran and faulted.
    #[error("program `{program}`: trap at {}: {insn}: {}{}", trap.pc, trap.kind, because(reason))]
    Trap {
        /// The program that faulted (after tail calls, the one running).
        program: String,
        /// The trap.
        trap: Trap,
        /// The instruction at the trap, in assembly.
        insn: String,
        /// For [`bpfx_exec::TrapKind::HelperError`], the failing helper's own message; for an
        /// out-of-bounds helper argument, which; for an out-of-bounds load, store or atomic,
        /// `access` as text (the address, the size and the regions).
        reason: Option<String>,
        /// For an out-of-bounds load, store or atomic: what it tried to touch and the regions
        /// it was checked against (the same on every engine).
        access: Option<Box<bpfx_exec::AccessFault>>,
    },
    /// A run method for another context than the program was prepared for.
    #[error("program `{program}` takes a {expected} context, not {got}")]
    WrongContext {
        /// The program.
        program: String,
        /// Its context.
        expected: &'static str,
        /// What the call supplies.
        got: &'static str,
    },
    /// An XDP or TC program run on a slice ([`crate::Program::run_xdp`],
    /// [`crate::Program::run_tc`]) moved its frame's head or tail so that the frame no longer
    /// fits the slice: run it on a [`crate::Packet`] ([`crate::Program::run_xdp_packet`],
    /// [`crate::Program::run_tc_packet`]). The slice is left as it was.
    #[error(
        "program `{program}`: {helper} moved the {len}-byte frame (start {new_start:+}, length \
         {new_len}): run it on a packet buffer (Program::run_xdp_packet, run_tc_packet)"
    )]
    FrameMoved {
        /// The program.
        program: String,
        /// The last helper that moved the frame (`xdp_adjust_head`, `skb_change_tail`, …).
        helper: &'static str,
        /// The frame's length before the run.
        len: usize,
        /// How far the frame's start moved (negative: the head grew).
        new_start: i64,
        /// The frame's length after the run.
        new_len: usize,
    },
    /// An input shorter than the size the program was verified for.
    #[error("program `{program}` was verified for at least {need} bytes of input, got {got}")]
    InputTooShort {
        /// The program.
        program: String,
        /// The verified size.
        need: u64,
        /// The size given.
        got: usize,
    },
    /// A struct context whose packet bounds did not read back from the struct (or whose
    /// public layout fields were changed to a layout bpfx refuses): the run does not start.
    #[error("program `{program}`: context layout: {source}")]
    Layout {
        /// The program.
        program: String,
        /// Why.
        source: LayoutError,
    },
}

impl RunError {
    /// The program the error is about (for a trap, the one running when it faulted).
    pub fn program(&self) -> &str {
        match self {
            RunError::Trap { program, .. }
            | RunError::WrongContext { program, .. }
            | RunError::FrameMoved { program, .. }
            | RunError::InputTooShort { program, .. }
            | RunError::Layout { program, .. } => program,
        }
    }

    /// The trap, when the program faulted.
    pub fn trap(&self) -> Option<&Trap> {
        match self {
            RunError::Trap { trap, .. } => Some(trap),
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// ` (why)`, or nothing.
fn because(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map_or_else(String::new, |r| format!(" ({r})"))
}
