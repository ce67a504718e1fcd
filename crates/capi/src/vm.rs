//! The `bpfx_vm` behind the handle: a safe state machine over the facade.
//!
//! ```text
//! empty ──register_helper*──► empty ──load──► loaded ──verify──► verified ──compile──► ready
//!                                               ▲ (set_context,     │ (re-verify)       │
//!                                               │  set_input_size)  └───────────────────┤
//!                                               └─────────── load again ────────────────┘
//! ```
//!
//! Each step keeps what the next needs (the object, the verified program), so a program can be
//! re-verified in another mode or compiled for the other engine without loading it again. Maps
//! live in the loaded object and survive re-verification and recompilation.

use crate::error::{Fail, Status, c_string};
use runtime::{
    ArgKind, Context, Engine, HelperError, HelperSig, Mode, Object, Program, ProgramDef, RetKind,
    StructLayout, UpdateFlag, Verified,
};
use std::cell::RefCell;
use std::ffi::CString;
use std::sync::Arc;

/// The most arguments a helper takes (r1 to r5).
pub(crate) const MAX_HELPER_ARGS: usize = 5;

/// `BPFX_INPUT_SIZE_UNKNOWN`: the input size passed to clear a previous one.
pub(crate) const INPUT_SIZE_UNKNOWN: u64 = u64::MAX;

/// `BPFX_BUDGET_DEFAULT`: the budget passed to go back to the default.
pub(crate) const BUDGET_DEFAULT: u64 = u64::MAX;

/// `BPFX_BUDGET_UNLIMITED`: the budget passed to let any program run forever.
pub(crate) const BUDGET_UNLIMITED: u64 = u64::MAX - 1;

/// A host function behind a helper: five arguments in, one value out.
pub(crate) type HostFn = Arc<dyn Fn([u64; 5]) -> u64 + Send + Sync>;

thread_local! {
    /// A failure a helper running on this thread reported (`bpfx_helper_fail`); taken when the
    /// helper returns. Helpers run on the thread that called `bpfx_run`, under both engines.
    static HELPER_FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records a failure of the helper running on this thread.
pub(crate) fn helper_fail(message: String) {
    HELPER_FAILURE.with(|f| *f.borrow_mut() = Some(message));
}

/// `enum bpfx_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ModeCode {
    Checked = 0,
    Strict = 1,
}

impl ModeCode {
    #[cfg(test)]
    pub(crate) const ALL: [ModeCode; 2] = [ModeCode::Checked, ModeCode::Strict];

    #[cfg(test)]
    pub(crate) const fn c_name(self) -> &'static str {
        match self {
            ModeCode::Checked => "BPFX_MODE_CHECKED",
            ModeCode::Strict => "BPFX_MODE_STRICT",
        }
    }

    pub(crate) fn from_code(code: u32) -> Result<Mode, Fail> {
        match code {
            c if c == ModeCode::Checked as u32 => Ok(Mode::Checked),
            c if c == ModeCode::Strict as u32 => Ok(Mode::Strict),
            c => Err(Fail::arg(format!("{c} is not a bpfx_mode"))),
        }
    }
}

/// `enum bpfx_engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum EngineCode {
    Interpreter = 0,
    Jit = 1,
}

impl EngineCode {
    #[cfg(test)]
    pub(crate) const ALL: [EngineCode; 2] = [EngineCode::Interpreter, EngineCode::Jit];

    #[cfg(test)]
    pub(crate) const fn c_name(self) -> &'static str {
        match self {
            EngineCode::Interpreter => "BPFX_ENGINE_INTERPRETER",
            EngineCode::Jit => "BPFX_ENGINE_JIT",
        }
    }

    pub(crate) fn from_code(code: u32) -> Result<Engine, Fail> {
        match code {
            c if c == EngineCode::Interpreter as u32 => Ok(Engine::Interpreter),
            c if c == EngineCode::Jit as u32 => Ok(Engine::Jit),
            c => Err(Fail::arg(format!("{c} is not a bpfx_engine"))),
        }
    }
}

/// `enum bpfx_context`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ContextCode {
    /// What the program's section implies, as libbpf maps section names.
    Section = 0,
    Memory = 1,
    Xdp = 2,
    /// An embedder struct of `size` bytes.
    Struct = 3,
    /// An embedder struct whose 64-bit fields at `data`/`data_end` bound a packet.
    StructPacket = 4,
    /// TC: a `struct __sk_buff` over a packet.
    Tc = 5,
    /// A socket filter: a `struct __sk_buff` over a packet.
    Socket = 6,
}

impl ContextCode {
    #[cfg(test)]
    pub(crate) const ALL: [ContextCode; 7] = [
        ContextCode::Section,
        ContextCode::Memory,
        ContextCode::Xdp,
        ContextCode::Struct,
        ContextCode::StructPacket,
        ContextCode::Tc,
        ContextCode::Socket,
    ];

    #[cfg(test)]
    pub(crate) const fn c_name(self) -> &'static str {
        match self {
            ContextCode::Section => "BPFX_CONTEXT_SECTION",
            ContextCode::Memory => "BPFX_CONTEXT_MEMORY",
            ContextCode::Xdp => "BPFX_CONTEXT_XDP",
            ContextCode::Struct => "BPFX_CONTEXT_STRUCT",
            ContextCode::StructPacket => "BPFX_CONTEXT_STRUCT_PACKET",
            ContextCode::Tc => "BPFX_CONTEXT_TC",
            ContextCode::Socket => "BPFX_CONTEXT_SOCKET",
        }
    }
}

/// `enum bpfx_arg`: what a C helper expects in one argument register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ArgCode {
    /// A scalar (a pointer would leak an address; `Strict` rejects it).
    Scalar = 1,
    /// Any value, never dereferenced by the helper.
    Anything = 2,
    /// A pointer the helper may read and write, of a size the verifier does not know: after the
    /// call the verifier forgets what the memory held.
    Mem = 3,
    /// A pointer to memory whose size in bytes is the next argument; the verifier checks the
    /// range.
    MemSized = 4,
}

impl ArgCode {
    #[cfg(test)]
    pub(crate) const ALL: [ArgCode; 4] = [
        ArgCode::Scalar,
        ArgCode::Anything,
        ArgCode::Mem,
        ArgCode::MemSized,
    ];

    #[cfg(test)]
    pub(crate) const fn c_name(self) -> &'static str {
        match self {
            ArgCode::Scalar => "BPFX_ARG_SCALAR",
            ArgCode::Anything => "BPFX_ARG_ANYTHING",
            ArgCode::Mem => "BPFX_ARG_MEM",
            ArgCode::MemSized => "BPFX_ARG_MEM_SIZED",
        }
    }
}

/// The verifier signature of a C helper from its `bpfx_arg` codes. No codes means "unknown":
/// five arguments that may each be a pointer the helper reads and writes, which `Checked`
/// accepts for any values (forgetting what memory held after the call) — the only sound
/// reading of a C function the verifier knows nothing about.
pub(crate) fn helper_args(codes: Option<&[u32]>) -> Result<Vec<ArgKind>, Fail> {
    let Some(codes) = codes else {
        return Ok(vec![ArgKind::PtrToMem { size_arg: None }; MAX_HELPER_ARGS]);
    };
    if codes.len() > MAX_HELPER_ARGS {
        return Err(Fail::arg(format!(
            "a helper takes at most 5 arguments, not {}",
            codes.len()
        )));
    }
    codes
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            c if c == ArgCode::Scalar as u32 => Ok(ArgKind::Scalar),
            c if c == ArgCode::Anything as u32 => Ok(ArgKind::Anything),
            c if c == ArgCode::Mem as u32 => Ok(ArgKind::PtrToMem { size_arg: None }),
            c if c == ArgCode::MemSized as u32 => {
                if i + 1 >= codes.len() {
                    Err(Fail::arg(format!(
                        "argument {} is BPFX_ARG_MEM_SIZED but no argument follows it for the size",
                        i + 1
                    )))
                } else {
                    Ok(ArgKind::PtrToMem {
                        size_arg: Some(i + 1),
                    })
                }
            }
            c => Err(Fail::arg(format!(
                "argument {}: {c} is not a bpfx_arg",
                i + 1
            ))),
        })
        .collect()
}

/// A trap of the last run.
#[derive(Debug)]
pub(crate) struct TrapInfo {
    pub(crate) kind: u8,
    pub(crate) pc: u32,
    pub(crate) message: CString,
}

struct Loaded {
    obj: Object,
    program: String,
}

/// One `bpfx_vm`.
pub(crate) struct Vm {
    builder: runtime::Vm,
    loaded: Option<Loaded>,
    context: Option<Context>,
    input_size: Option<u64>,
    verified: Option<Verified>,
    prog: Option<Program>,
    /// What each run may execute (`bpfx_set_budget`).
    budget: runtime::Budget,
    trap: Option<TrapInfo>,
    /// Where the last run redirected its packet, with the map's name as a C string.
    redirect: Option<(runtime::RedirectTarget, CString)>,
    /// The message of the last call on this VM (empty after a success).
    pub(crate) error: CString,
}

impl Vm {
    pub(crate) fn new() -> Vm {
        Vm {
            builder: runtime::Vm::new(),
            loaded: None,
            context: None,
            input_size: None,
            verified: None,
            prog: None,
            budget: runtime::Budget::Default,
            trap: None,
            redirect: None,
            error: CString::default(),
        }
    }

    /// The forwarding table `fib_lookup` asks (part of the object's environment, so before
    /// the load, as helpers are).
    pub(crate) fn set_fib(
        &mut self,
        f: impl Fn(&runtime::FibRequest) -> runtime::FibAnswer + Send + Sync + 'static,
    ) -> Result<(), Fail> {
        if self.loaded.is_some() {
            return Err(Fail::state(
                "the forwarding table must be set before a program is loaded",
            ));
        }
        let builder = std::mem::take(&mut self.builder);
        self.builder = builder.fib(f);
        Ok(())
    }

    /// Registers helper `id`; helpers are part of the object's environment, so they must come
    /// before the load (as in uBPF).
    pub(crate) fn register_helper(
        &mut self,
        id: u32,
        name: &str,
        args: Vec<ArgKind>,
        f: HostFn,
    ) -> Result<(), Fail> {
        if self.loaded.is_some() {
            return Err(Fail::state(
                "helpers must be registered before a program is loaded",
            ));
        }
        let sig = HelperSig::new(name, args, RetKind::Scalar);
        let name = name.to_string();
        let builder = std::mem::take(&mut self.builder);
        self.builder = builder.register_helper(id, sig, move |_, a| {
            HELPER_FAILURE.with(|f| f.borrow_mut().take());
            let r = f(a);
            match HELPER_FAILURE.with(|f| f.borrow_mut().take()) {
                // The facade's trap carries the message on to the caller.
                Some(msg) => Err(HelperError(format!("helper `{name}`: {msg}"))),
                None => Ok(r),
            }
        });
        Ok(())
    }

    /// The runtime VM with what was registered on this one (helpers, memory limit, forwarding
    /// table), for objects opened with it (`bpfx_object_open_mem_vm`).
    pub(crate) fn builder(&self) -> &runtime::Vm {
        &self.builder
    }

    /// Sets the memory limit of what the VM creates; part of the environment, so before the
    /// load (as helpers).
    pub(crate) fn set_mem_limit(&mut self, bytes: u64) -> Result<(), Fail> {
        if self.loaded.is_some() {
            return Err(Fail::state(
                "the memory limit must be set before a program is loaded",
            ));
        }
        let builder = std::mem::take(&mut self.builder);
        self.builder = builder.mem_limit(bytes);
        Ok(())
    }

    fn install(&mut self, obj: Object, program: Option<&str>) -> Result<(), Fail> {
        let name = match program {
            Some(name) => obj.program(name)?.name().to_string(),
            None => obj
                .programs()
                .next()
                .map(|p| p.name.to_string())
                .ok_or_else(|| Fail::new(Status::NoProgram, "the object has no program"))?,
        };
        self.loaded = Some(Loaded { obj, program: name });
        self.verified = None;
        self.prog = None;
        self.trap = None;
        Ok(())
    }

    /// Loads raw bytecode (8-byte slots) as the program `main`.
    pub(crate) fn load_bytecode(&mut self, code: &[u8]) -> Result<(), Fail> {
        if code.is_empty() {
            return Err(Fail::arg("the bytecode is empty (length 0)"));
        }
        let prog = bpfx_bytecode::Program::from_bytes(code)
            .map_err(|e| Fail::new(Status::Decode, e.to_string()))?;
        let obj = self
            .builder
            .object(vec![ProgramDef::new("main", "", prog)], Vec::new())?;
        self.install(obj, None)
    }

    /// Loads an ELF object and chooses `program` (by name, else by section), or its first.
    pub(crate) fn load_elf(&mut self, elf: &[u8], program: Option<&str>) -> Result<(), Fail> {
        if elf.is_empty() {
            return Err(Fail::arg("the ELF object is empty (length 0)"));
        }
        let obj = self.builder.load(elf)?;
        self.install(obj, program)
    }

    /// Sets the context for the next verification.
    pub(crate) fn set_context(
        &mut self,
        kind: u32,
        size: u16,
        data: u16,
        data_end: u16,
    ) -> Result<(), Fail> {
        let ctx = context_from_code(kind, size, data, data_end)?;
        self.context = ctx;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the input size the next verification proves against.
    pub(crate) fn set_input_size(&mut self, size: Option<u64>) {
        self.input_size = size;
    }

    pub(crate) fn verify(&mut self, mode: u32) -> Result<(), Fail> {
        let mode = ModeCode::from_code(mode)?;
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| Fail::state("no program is loaded: call bpfx_load_* first"))?;
        let mut r = loaded.obj.program(&loaded.program)?;
        if let Some(ctx) = self.context {
            r = r.context(ctx);
        }
        if let Some(n) = self.input_size {
            r = r.input_size(n);
        }
        // A failed verification leaves nothing runnable: what ran before belonged to another
        // verification.
        self.verified = None;
        self.prog = None;
        self.verified = Some(r.verify(mode)?);
        Ok(())
    }

    pub(crate) fn compile(&mut self, engine: u32) -> Result<(), Fail> {
        let engine = EngineCode::from_code(engine)?;
        let v = self
            .verified
            .clone()
            .ok_or_else(|| Fail::state("the program is not verified: call bpfx_verify first"))?;
        self.prog = None;
        // A limit needs the JIT's budget charge; the default budget brings its own.
        let charge = matches!(self.budget, runtime::Budget::Limit(_));
        self.prog = Some(v.engine(engine, charge)?);
        Ok(())
    }

    /// Sets what each run may execute: `BPFX_BUDGET_DEFAULT`, `BPFX_BUDGET_UNLIMITED` or a
    /// number of instructions (for the JIT, before `bpfx_compile`).
    pub(crate) fn set_budget(&mut self, code: u64) {
        self.budget = match code {
            BUDGET_DEFAULT => runtime::Budget::Default,
            BUDGET_UNLIMITED => runtime::Budget::Unlimited,
            n => runtime::Budget::Limit(n),
        };
    }

    /// The compiled program, with this VM's budget whole for the next run.
    fn ready(&mut self) -> Result<&mut Program, Fail> {
        let prog = self
            .prog
            .as_mut()
            .ok_or_else(|| Fail::state("the program is not compiled: call bpfx_compile first"))?;
        prog.set_budget(self.budget);
        Ok(prog)
    }

    /// Runs on plain memory (or, for an XDP program, on a packet: the result is the action;
    /// for a TC program, on a packet with default socket-buffer metadata: the `TC_ACT_*`
    /// value as an unsigned 32-bit number; for a socket filter, the bytes kept).
    pub(crate) fn run(&mut self, mem: &mut [u8]) -> Result<u64, Fail> {
        let r = run_memory(self.ready()?, mem)?;
        self.redirect = self
            .prog
            .as_ref()
            .and_then(Program::last_redirect)
            .map(with_name);
        self.finish(r)
    }

    /// Runs an XDP program on the packet buffer `buf`: `start` bytes of headroom, the frame of
    /// `len` bytes, the rest tailroom (each room at most 65535 bytes). The buffer gets the
    /// final frame back (after a trap too); the result is (r0, start, len, metadata length).
    pub(crate) fn run_xdp(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
    ) -> Result<(u64, usize, usize, usize), Fail> {
        let rooms = xdp_rooms(buf, start, len)?;
        let (r, frame) = run_xdp_buffer(self.ready()?, buf, start, len, rooms)?;
        self.redirect = self
            .prog
            .as_ref()
            .and_then(Program::last_redirect)
            .map(with_name);
        let out = self.finish(r)?;
        Ok((out, frame.0, frame.1, frame.2))
    }

    /// Runs a TC program on the packet buffer `buf` (rooms as [`Vm::run_xdp`]) with the
    /// socket-buffer metadata `meta`, which gets the metadata after the run. The buffer gets
    /// the final packet back (after a trap too); the result is (the `TC_ACT_*` verdict,
    /// start, len).
    pub(crate) fn run_tc(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        meta: &mut runtime::SkbMeta,
    ) -> Result<(i32, usize, usize), Fail> {
        let rooms = xdp_rooms(buf, start, len)?;
        let (r, frame) = run_tc_buffer(self.ready()?, buf, start, len, rooms, meta)?;
        self.redirect = self
            .prog
            .as_ref()
            .and_then(Program::last_redirect)
            .map(with_name);
        let action = self.finish(r)?;
        Ok((tc_code(action), frame.0, frame.1))
    }

    /// The last run's redirect target.
    pub(crate) fn redirect(&self) -> Option<&(runtime::RedirectTarget, CString)> {
        self.redirect.as_ref()
    }

    /// Runs with an embedder-defined context struct and a packet.
    pub(crate) fn run_ctx(&mut self, ctx: &mut [u8], packet: &mut [u8]) -> Result<u64, Fail> {
        let r = self.ready()?.run_ctx(ctx, packet);
        self.finish(r)
    }

    fn finish(&mut self, r: Result<u64, runtime::RunError>) -> Result<u64, Fail> {
        finish_run(r, &mut self.trap)
    }

    /// The trap of the last run, if it trapped.
    pub(crate) fn trap(&self) -> Result<&TrapInfo, Fail> {
        self.trap
            .as_ref()
            .ok_or_else(|| Fail::state("the last run did not trap"))
    }

    fn map(&self, name: &str) -> Result<Arc<runtime::Map>, Fail> {
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| Fail::state("no object is loaded, so there are no maps"))?;
        Ok(loaded.obj.map(name)?)
    }

    /// The value under `key` in map `name`, copied into `out` (which must be the value size
    /// as the host sees it: for per-CPU maps every CPU's value, as libbpf lays them out).
    pub(crate) fn map_lookup(&self, name: &str, key: &[u8], out: &mut [u8]) -> Result<(), Fail> {
        let map = self.map(name)?;
        if out.len() != map.host_value_size() {
            return Err(Fail::arg(format!(
                "map `{name}`: the value buffer is {} bytes, the map's values are {}",
                out.len(),
                map.host_value_size()
            )));
        }
        let found = map.lookup(key).map_err(|e| map_fail(name, e))?;
        let value = found.ok_or_else(|| {
            Fail::new(
                Status::NotFound,
                format!("map `{name}`: no entry with this key"),
            )
        })?;
        out.copy_from_slice(&value);
        Ok(())
    }

    pub(crate) fn map_update(
        &self,
        name: &str,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), Fail> {
        let map = self.map(name)?;
        let flag = UpdateFlag::from_raw(flags)
            .ok_or_else(|| Fail::arg(format!("map `{name}`: invalid update flags {flags:#x}")))?;
        map.update(key, value, flag).map_err(|e| map_fail(name, e))
    }

    pub(crate) fn map_delete(&self, name: &str, key: &[u8]) -> Result<(), Fail> {
        let map = self.map(name)?;
        map.delete(key).map_err(|e| map_fail(name, e))
    }

    /// The next record of perf event array `name`, if one waits.
    pub(crate) fn perf_read(&self, name: &str) -> Result<Option<runtime::PerfEvent>, Fail> {
        let map = self.map(name)?;
        map.perf_next().map_err(|e| map_fail(name, e))
    }

    /// The x86-64 listing of the compiled program.
    pub(crate) fn listing(&self) -> Result<String, Fail> {
        let prog = self
            .prog
            .as_ref()
            .ok_or_else(|| Fail::state("the program is not compiled: call bpfx_compile first"))?;
        prog.listing().ok_or_else(|| {
            Fail::state("the program runs on the interpreter: compile it with BPFX_ENGINE_JIT for a listing")
        })
    }
}

/// The context a `bpfx_context` code names (`None`: the section's); `size` and the offsets for
/// struct contexts only.
pub(crate) fn context_from_code(
    kind: u32,
    size: u16,
    data: u16,
    data_end: u16,
) -> Result<Option<Context>, Fail> {
    Ok(match kind {
        k if k == ContextCode::Section as u32 => None,
        k if k == ContextCode::Memory as u32 => Some(Context::Memory),
        k if k == ContextCode::Xdp as u32 => Some(Context::Xdp),
        k if k == ContextCode::Tc as u32 => Some(Context::Tc),
        k if k == ContextCode::Socket as u32 => Some(Context::Socket),
        k if k == ContextCode::Struct as u32 || k == ContextCode::StructPacket as u32 => {
            let packet = (k == ContextCode::StructPacket as u32).then_some((data, data_end));
            let layout = StructLayout::new(size, packet)
                .map_err(|e| Fail::arg(format!("context layout: {e}")))?;
            Some(Context::Struct(layout))
        }
        k => return Err(Fail::arg(format!("{k} is not a bpfx_context"))),
    })
}

/// Runs `prog` on plain memory (or, for an XDP program, on a packet: the result is the action;
/// for a TC program, on a packet with default socket-buffer metadata: the `TC_ACT_*` value as
/// an unsigned 32-bit number; for a socket filter, the bytes kept; for a cgroup skb program, on
/// an IP packet with its socket (`BpfSock::of_ip_packet`): the return value; for sk_skb and
/// sk_msg programs, on the stream data or message: the return value; for sk_lookup programs, on
/// a `struct bpf_sk_lookup`, whose cookie becomes the selected socket's: the return value; for
/// cgroup device programs, on a `struct bpf_cgroup_dev_ctx`: the return value; for cgroup
/// socket-option programs, on a `struct bpf_sockopt` and the option's bytes: the return
/// value; for tracing,
/// socket and perf
/// event programs, on their context's bytes). The outer error: the
/// program takes a context `mem` cannot be.
pub(crate) fn run_memory(
    prog: &mut Program,
    mem: &mut [u8],
) -> Result<Result<u64, runtime::RunError>, Fail> {
    Ok(match prog.context() {
        Context::Memory => prog.run(mem),
        Context::Xdp => prog.run_xdp(mem).map(|a| a.code()),
        Context::Tc => prog
            .run_tc(mem, &mut runtime::SkbMeta::default())
            .map(|a| u64::from(a.code() as u32)),
        Context::Socket => prog
            .run_socket(mem, &runtime::SkbMeta::default())
            .map(|v| v.kept as u64),
        // `mem` is an IP packet, with the socket the kernel's test run gives it; the result
        // is the return value (the verdict's code).
        Context::CgroupSkb(_) => {
            let mut meta = runtime::SkbMeta {
                protocol: runtime::ip_ethertype(mem),
                ..runtime::SkbMeta::default()
            };
            let sock = runtime::BpfSock::of_ip_packet(mem);
            prog.run_cgroup_skb(mem, &mut meta, &sock, &runtime::SockIds::default())
                .map(|v| u64::from(v.code))
        }
        // `mem` is the stream data, which the program may rewrite, with no socket (its fields
        // read 0); the result is the return value.
        Context::SkSkb => prog
            .run_sk_skb(
                mem,
                &mut runtime::SkbMeta::default(),
                &runtime::BpfSock::default(),
                &runtime::SockIds::default(),
            )
            .map(|o| u64::from(o.code as u32)),
        // `mem` is the message (one scatterlist element), which the program may rewrite, with
        // no socket; the result is the return value. A slice cannot change its length: a
        // program that pushed or popped bytes fails with `BPFX_ERR_CONTEXT`, `mem` unchanged.
        Context::SkMsg => {
            let mut msg = runtime::SkMsg::new(mem.to_vec());
            let out = prog.run_sk_msg(
                &mut msg,
                &runtime::BpfSock::default(),
                &runtime::SockIds::default(),
            );
            if msg.len() != mem.len() {
                return Err(Fail::new(
                    Status::Context,
                    format!(
                        "program `{}` changed the {}-byte message to {} bytes \
                         (msg_push_data, msg_pop_data): bpfx_run cannot resize the buffer",
                        prog.name(),
                        mem.len(),
                        msg.len()
                    ),
                ));
            }
            mem.copy_from_slice(msg.bytes());
            out.map(|o| u64::from(o.code as u32))
        }
        // `mem` is an IP packet (from its network header), which an `lwt_xmit` program may
        // rewrite; the result is the return value as a `u32`.
        Context::Lwt(_) => prog
            .run_lwt(mem, &mut runtime::SkbMeta::default())
            .map(|o| u64::from(o.action.code() as u32)),
        // `mem` is the `struct bpf_sk_lookup` (72 bytes), as the kernel's test run takes it
        // (`SkLookup::from_ctx`); the sockets are the Vm's. As the kernel's test run writes
        // back `ctx_out`, `cookie` (the struct's first 8 bytes) becomes the selected socket's
        // cookie (0: none). The result is the return value.
        Context::SkLookup => {
            let lookup = runtime::SkLookup::from_ctx(mem).ok_or_else(|| {
                Fail::arg(format!(
                    "an sk_lookup program runs on a struct bpf_sk_lookup of {} bytes with sk 0, \
                     an AF_INET or AF_INET6 family, a TCP or UDP protocol and a local port \
                     below 65536",
                    runtime::SK_LOOKUP_CTX_SIZE
                ))
            })?;
            let out = prog.run_sk_lookup(&lookup, None);
            if let Ok(o) = &out {
                mem[..8].copy_from_slice(&o.cookie.to_le_bytes());
            }
            out.map(|o| u64::from(o.code))
        }
        // `mem` is the `struct bpf_cgroup_dev_ctx` (12 bytes), read-only; the result is the
        // return value (1 allows the access, 0 refuses it).
        Context::CgroupDevice => {
            let access = runtime::DevAccess::from_bytes(mem).ok_or_else(|| {
                Fail::arg(format!(
                    "a cgroup_device program runs on a struct bpf_cgroup_dev_ctx of {} bytes, \
                     got {}",
                    runtime::CGROUP_DEV_CTX_SIZE,
                    mem.len()
                ))
            })?;
            prog.run_cgroup_dev(&access)
        }
        // `mem` is the `struct bpf_sysctl` (8 bytes: write, file_pos): a read (`write` 0) or a
        // write of an empty value of a sysctl without a name or value, which the C API gives
        // no way to name; `file_pos` comes back as the program left it.
        Context::CgroupSysctl => {
            let sysctl = runtime::Sysctl::from_ctx(mem).ok_or_else(|| {
                Fail::arg(format!(
                    "a cgroup_sysctl program runs on a struct bpf_sysctl of {} bytes, got {}",
                    runtime::SYSCTL_CTX_SIZE,
                    mem.len()
                ))
            })?;
            let out = prog.run_sysctl(&sysctl);
            if let Ok(o) = &out {
                mem[4..8].copy_from_slice(&o.file_pos.to_le_bytes());
            }
            out.map(|o| u64::from(o.code))
        }
        // `mem` is a `struct bpf_sockopt` (40 bytes) followed by the option's bytes, which
        // come back as the program left them (the struct's pointers 0); no socket (its fields
        // read 0). The result is the return value.
        Context::CgroupSockopt(_) => {
            let call = runtime::SockoptCall::from_bytes(mem).ok_or_else(|| {
                Fail::arg(format!(
                    "a cgroup_sockopt program runs on a struct bpf_sockopt of {} bytes followed \
                     by the option's bytes, got {} bytes",
                    runtime::SOCKOPT_CTX_SIZE,
                    mem.len()
                ))
            })?;
            let out = prog.run_sockopt(
                &call,
                &runtime::BpfSock::default(),
                &runtime::SockIds::default(),
            );
            if let Ok(o) = &out {
                let b = o.call.to_bytes();
                let n = b.len().min(mem.len());
                mem[..n].copy_from_slice(&b[..n]);
            }
            out.map(|o| u64::from(o.code))
        }
        // The tracing contexts: `mem` is the context's bytes (little-endian words).
        Context::Kprobe => {
            let regs = runtime::PtRegs::from_bytes(mem).ok_or_else(|| {
                Fail::arg(format!(
                    "a kprobe program runs on a struct pt_regs of {} bytes, got {}",
                    runtime::PT_REGS_SIZE,
                    mem.len()
                ))
            })?;
            prog.run_kprobe(&regs)
        }
        Context::Tracepoint { .. } => prog.run_tracepoint(mem),
        Context::RawTracepoint { .. } | Context::Tracing { .. } => {
            if !mem.len().is_multiple_of(8) {
                return Err(Fail::arg(format!(
                    "a {} program runs on u64 arguments: {} bytes is not a whole number of them",
                    prog.context().name(),
                    mem.len()
                )));
            }
            let args: Vec<u64> = mem
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            if matches!(prog.context(), Context::Tracing { .. }) {
                prog.run_tracing(&args, None)
            } else {
                prog.run_raw_tp(&args)
            }
        }
        // The socket and perf event contexts: `mem` is the UAPI struct, which comes back
        // with the program's writes (socket and namespace cookies 0).
        Context::SockAddr(_) | Context::Sock(_) | Context::SockOps | Context::PerfEvent => {
            let name = prog.context().name();
            let short = |size: usize| {
                Fail::arg(format!(
                    "a {name} program runs on its context struct of {size} bytes, got {}",
                    mem.len()
                ))
            };
            let ids = runtime::SockIds::default();
            match prog.context() {
                Context::SockAddr(_) => {
                    let mut a = runtime::SockAddr::from_bytes(mem)
                        .ok_or_else(|| short(runtime::SOCK_ADDR_SIZE))?;
                    let r = prog.run_sock_addr(&mut a, &ids);
                    mem[..runtime::SOCK_ADDR_SIZE].copy_from_slice(&a.to_bytes());
                    r
                }
                Context::Sock(_) => {
                    let mut sk = runtime::BpfSock::from_bytes(mem)
                        .ok_or_else(|| short(runtime::BPF_SOCK_SIZE))?;
                    let r = prog.run_sock(&mut sk, &ids);
                    mem[..runtime::BPF_SOCK_SIZE].copy_from_slice(&sk.to_bytes());
                    r
                }
                Context::SockOps => {
                    let mut o = runtime::SockOps::from_bytes(mem)
                        .ok_or_else(|| short(runtime::SOCK_OPS_SIZE))?;
                    let r = prog.run_sock_ops(&mut o, &ids);
                    mem[..runtime::SOCK_OPS_SIZE].copy_from_slice(&o.to_bytes());
                    r
                }
                _ => {
                    let d = runtime::PerfEventData::from_bytes(mem)
                        .ok_or_else(|| short(runtime::PERF_EVENT_DATA_SIZE))?;
                    prog.run_perf_event(&d, &runtime::PerfEventValue::default())
                }
            }
        }
        // Refused at verification: nothing of that type gets here.
        Context::Unsupported(t) => {
            return Err(Fail::new(
                Status::Context,
                format!("bpfx does not run {t} programs"),
            ));
        }
        Context::Struct(_) => {
            return Err(Fail::new(
                Status::Context,
                "the program takes a struct context: run it with bpfx_run_ctx",
            ));
        }
    })
}

/// The headroom and tailroom of the frame [`start`, +`len`) of `buf` (each at most 65535
/// bytes).
pub(crate) fn xdp_rooms(buf: &[u8], start: usize, len: usize) -> Result<(u16, u16), Fail> {
    let end = start
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| {
            Fail::arg(format!(
                "the frame [{start}, +{len}) does not lie inside the {}-byte buffer",
                buf.len()
            ))
        })?;
    let room = |n: usize, what: &str| {
        u16::try_from(n).map_err(|_| Fail::arg(format!("{what} of {n} bytes: at most 65535")))
    };
    Ok((
        room(start, "a headroom")?,
        room(buf.len() - end, "a tailroom")?,
    ))
}

/// Where an XDP run left its frame in the buffer: start, length, metadata length.
pub(crate) type Frame = (usize, usize, usize);

/// Runs XDP program `prog` on the packet buffer `buf` (the frame at `start`, `len` bytes long,
/// with the `rooms` of [`xdp_rooms`]); the buffer gets the final frame back (after a trap
/// too). The run's action, and the final frame's start, length and metadata length.
pub(crate) fn run_xdp_buffer(
    prog: &mut Program,
    buf: &mut [u8],
    start: usize,
    len: usize,
    (head, tail): (u16, u16),
) -> Result<(Result<u64, runtime::RunError>, Frame), Fail> {
    if prog.context() != Context::Xdp {
        return Err(Fail::new(
            Status::Context,
            format!(
                "bpfx_run_xdp runs XDP programs, not {}",
                prog.context().name()
            ),
        ));
    }
    let mut packet = runtime::Packet::with_room(&buf[start..start + len], head, tail);
    // What lies in the rooms (earlier metadata, say) is the embedder's, kept for the run.
    packet.buffer_mut().copy_from_slice(buf);
    let r = prog.run_xdp_packet(&mut packet);
    buf.copy_from_slice(packet.buffer());
    Ok((
        r.map(|o| o.action.code()),
        (packet.start(), packet.len(), packet.meta().len()),
    ))
}

/// Runs TC program `prog` on the packet buffer `buf` (the packet at `start`, `len` bytes
/// long, with the `rooms` of [`xdp_rooms`]) with the metadata `meta`, which gets the metadata
/// after the run when it succeeds; the buffer gets the final packet back (after a trap too).
/// The run's `TC_ACT_*` code (as r0's low 32 bits), and the final packet's start and length
/// (its metadata length is always 0).
pub(crate) fn run_tc_buffer(
    prog: &mut Program,
    buf: &mut [u8],
    start: usize,
    len: usize,
    (head, tail): (u16, u16),
    meta: &mut runtime::SkbMeta,
) -> Result<(Result<u64, runtime::RunError>, Frame), Fail> {
    if prog.context() != Context::Tc {
        return Err(Fail::new(
            Status::Context,
            format!(
                "bpfx_run_tc runs TC programs, not {}",
                prog.context().name()
            ),
        ));
    }
    let mut packet = runtime::Packet::with_room(&buf[start..start + len], head, tail);
    // What lies in the rooms is the embedder's, kept for the run.
    packet.buffer_mut().copy_from_slice(buf);
    let r = prog.run_tc_packet(&mut packet, meta);
    buf.copy_from_slice(packet.buffer());
    let r = r.map(|o| {
        *meta = o.meta;
        u64::from(o.action.code() as u32)
    });
    Ok((r, (packet.start(), packet.len(), 0)))
}

/// The `TC_ACT_*` code of a TC run's r0 (its low 32 bits, as [`run_tc_buffer`] gives them).
pub(crate) fn tc_code(r0: u64) -> i32 {
    r0 as u32 as i32
}

/// The outcome of a run as the C API reports it, with its trap (if any) kept in `trap`.
pub(crate) fn finish_run(
    r: Result<u64, runtime::RunError>,
    trap: &mut Option<TrapInfo>,
) -> Result<u64, Fail> {
    *trap = None;
    r.map_err(|e| {
        let t = match &e {
            runtime::RunError::Trap { trap, .. } => Some(*trap),
            _ => None,
        };
        let fail = Fail::from(runtime::Error::from(e));
        if let Some(t) = t {
            *trap = Some(TrapInfo {
                kind: t.kind as u8,
                pc: t.pc.0,
                message: c_string(&fail.message),
            });
        }
        fail
    })
}

pub(crate) fn map_fail(name: &str, e: runtime::MapError) -> Fail {
    Fail::from(runtime::Error::Map {
        map: name.to_string(),
        source: e,
    })
}

/// A redirect target with its map's name as a C string (empty for an ifindex).
pub(crate) fn with_name(r: runtime::RedirectTarget) -> (runtime::RedirectTarget, CString) {
    let name = match &r {
        runtime::RedirectTarget::Map { map, .. }
        | runtime::RedirectTarget::Broadcast { map, .. }
        | runtime::RedirectTarget::Socket { map, .. } => c_string(map),
        runtime::RedirectTarget::Ifindex { .. } | runtime::RedirectTarget::Peer { .. } => {
            CString::default()
        }
    };
    (r, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_lookups_take_every_cpus_value() {
        let elf = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/percpu_count.o"
        ))
        .unwrap();
        let mut vm = Vm::new();
        vm.load_elf(&elf, None).unwrap();
        let per_cpu = 16 * runtime::default_cpus() as usize;
        let key = 0u32.to_le_bytes();
        assert!(vm.map_lookup("counts", &key, &mut [0; 16]).is_err() || per_cpu == 16);
        let mut all = vec![1u8; per_cpu];
        vm.map_lookup("counts", &key, &mut all).unwrap();
        assert_eq!(all, vec![0; per_cpu]);
    }

    /// `bpfx_run`'s path on the tracing sections: the memory is the context's bytes.
    #[test]
    fn tracing_sections_run_on_their_context_bytes() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/tracing.o"
            ))
            .unwrap();
        let load = |name: &str| obj.program(name).unwrap().load().unwrap();
        let stat = |i: u32| {
            let v = obj.map("stats").unwrap().lookup(&i.to_le_bytes()).unwrap();
            u64::from_le_bytes(v.unwrap()[..8].try_into().unwrap())
        };
        // A kretprobe on pt_regs bytes: ax (offset 80) = -2.
        let mut regs = [0u8; runtime::PT_REGS_SIZE];
        regs[80..88].copy_from_slice(&(-2i64).to_le_bytes());
        let mut p = load("trace_openat2_ret");
        assert_eq!(run_memory(&mut p, &mut regs).unwrap().unwrap(), 0);
        assert_eq!((stat(0), stat(1)), (1, 2));
        let e = run_memory(&mut p, &mut regs[..100]).unwrap_err();
        assert_eq!(e.status, Status::Argument);
        // A tracepoint record: returns its syscall number.
        let mut rec = [0u8; 48];
        rec[8..12].copy_from_slice(&257i32.to_le_bytes());
        let mut p = load("tp_enter_openat");
        assert_eq!(run_memory(&mut p, &mut rec).unwrap().unwrap(), 257);
        // A raw tracepoint's u64 arguments; a length that is no whole number of them.
        let mut p = load("raw_sched_switch");
        let mut args: Vec<u8> = [1u64, 2, 3].iter().flat_map(|a| a.to_le_bytes()).collect();
        assert_eq!(run_memory(&mut p, &mut args).unwrap().unwrap(), 0);
        assert_eq!(
            run_memory(&mut p, &mut args[..20]).unwrap_err().status,
            Status::Argument
        );
        // An fexit given too few slots for its return value: the run's error.
        let mut p = load("unlink_exit");
        let r = run_memory(&mut p, &mut args[..8]).unwrap();
        assert!(matches!(r, Err(runtime::RunError::InputTooShort { .. })));
    }

    /// `bpfx_run`'s path on the socket sections: the memory is the UAPI struct, which comes
    /// back with the program's writes.
    #[test]
    fn socket_sections_run_on_their_struct_bytes() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/sock_cgroup.o"
            ))
            .unwrap();
        let load = |name: &str| obj.program(name).unwrap().load().unwrap();
        // connect4 to 10.96.0.10:80 over TCP becomes 192.168.1.20:8080.
        let mut ctx = [0u8; runtime::SOCK_ADDR_SIZE];
        ctx[4..8].copy_from_slice(&[10, 96, 0, 10]);
        ctx[24..26].copy_from_slice(&80u16.to_be_bytes());
        ctx[36] = 6;
        let mut p = load("connect4");
        assert_eq!(run_memory(&mut p, &mut ctx).unwrap().unwrap(), 1);
        assert_eq!(ctx[4..8], [192, 168, 1, 20]);
        assert_eq!(ctx[24..26], 8080u16.to_be_bytes());
        let e = run_memory(&mut p, &mut ctx[..64]).unwrap_err();
        assert_eq!(e.status, Status::Argument);
        // sock_create marks a UDP socket.
        let mut sk = [0u8; runtime::BPF_SOCK_SIZE];
        sk[12] = 17;
        let mut p = load("sock_create");
        assert_eq!(run_memory(&mut p, &mut sk).unwrap().unwrap(), 1);
        assert_eq!(sk[16], 0x77);
        // A perf event sample.
        let mut d = [0u8; runtime::PERF_EVENT_DATA_SIZE];
        let mut p = load("perf_sample");
        assert_eq!(run_memory(&mut p, &mut d).unwrap().unwrap(), 0);
    }

    /// `bpfx_run`'s path on the cgroup skb sections: the memory is an IP packet, left as it
    /// was, with the packet's socket; the result is the return value.
    #[test]
    fn cgroup_skb_sections_run_on_an_ip_packet() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/cgskb.o"
            ))
            .unwrap();
        let mut p = obj.program("egress_account").unwrap().load().unwrap();
        // UDP 10.0.0.1 -> 10.0.0.2:5201: allowed with congestion notified (3).
        let mut packet = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0x14, 0x51,
            0, 8, 0, 0,
        ];
        let before = packet.clone();
        assert_eq!(run_memory(&mut p, &mut packet).unwrap().unwrap(), 3);
        assert_eq!(packet, before);
        // To 10.9.9.9: dropped.
        packet[16..20].copy_from_slice(&[10, 9, 9, 9]);
        assert_eq!(run_memory(&mut p, &mut packet).unwrap().unwrap(), 0);
    }

    #[test]
    fn run_takes_sk_skb_stream_data_and_gives_the_return_value() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/skskb.o"
            ))
            .unwrap();
        let mut parser = obj.program("parser").unwrap().load().unwrap();
        assert_eq!(run_memory(&mut parser, &mut [1; 9]).unwrap().unwrap(), 9);
        // The verdict rewrites the data in place; no socket, so no redirect: SK_PASS.
        let mut verdict = obj.program("verdict").unwrap().load().unwrap();
        let mut data = *b"xq";
        assert_eq!(run_memory(&mut verdict, &mut data).unwrap().unwrap(), 1);
        assert_eq!(&data, b"Xq");
        let flows = obj.map("flows").unwrap();
        // The tuple of the default socket: all zero but the protocol, TCP.
        let mut key = [0u8; 16];
        key[12] = 6;
        flows
            .update(&key, &7u64.to_le_bytes(), runtime::UpdateFlag::Any)
            .unwrap();
        assert_eq!(run_memory(&mut verdict, &mut data).unwrap().unwrap(), 1);
        let (r, name) = with_name(verdict.last_redirect().unwrap());
        assert_eq!(name.to_str().unwrap(), "flows");
        assert!(matches!(
            r,
            runtime::RedirectTarget::Socket { ingress: true, .. }
        ));
    }

    #[test]
    fn run_takes_an_sk_msg_message_and_refuses_to_resize_it() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/skmsg.o"
            ))
            .unwrap();
        // by_slot: the first byte names a socket map slot; slot 1 holds a socket.
        obj.map("slots")
            .unwrap()
            .update(
                &1u32.to_le_bytes(),
                &9u64.to_le_bytes(),
                runtime::UpdateFlag::Any,
            )
            .unwrap();
        let mut by_slot = obj.program("by_slot").unwrap().load().unwrap();
        let mut msg = *b"1ab";
        assert_eq!(run_memory(&mut by_slot, &mut msg).unwrap().unwrap(), 1);
        let (r, name) = with_name(by_slot.last_redirect().unwrap());
        assert_eq!(name.to_str().unwrap(), "slots");
        assert!(matches!(
            r,
            runtime::RedirectTarget::Socket { ingress: false, .. }
        ));
        // frame pushes a length prefix: the buffer cannot grow, so the run fails, unchanged.
        let mut frame = obj.program("frame").unwrap().load().unwrap();
        let mut msg = *b"hello";
        let Err(e) = run_memory(&mut frame, &mut msg) else {
            panic!("a resized message came back in a slice");
        };
        assert!(e.message.contains("9 bytes"), "{}", e.message);
        assert_eq!(&msg, b"hello");
        // A short message is corked and passed as it is.
        let mut msg = *b"ab";
        assert_eq!(run_memory(&mut frame, &mut msg).unwrap().unwrap(), 1);
    }

    /// `bpfx_run` on sk_lookup: the memory is the kernel's test-run struct, its cookie comes
    /// back as the selected socket's (none: 0); a struct the kernel refuses is an argument error.
    #[test]
    fn run_takes_an_sk_lookup_struct() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/sk_lookup.o"
            ))
            .unwrap();
        let mut p = obj.program("echo_v4").unwrap().load().unwrap();
        let mut ctx = [0u8; runtime::SK_LOOKUP_CTX_SIZE];
        ctx[8] = 2;
        ctx[12] = 17;
        ctx[16..20].copy_from_slice(&[10, 1, 2, 3]);
        ctx[60] = 7;
        assert_eq!(run_memory(&mut p, &mut ctx).unwrap().unwrap(), 1);
        assert_eq!(ctx[..8], [0; 8]);
        ctx[12] = 1;
        assert!(run_memory(&mut p, &mut ctx).is_err());
        assert!(run_memory(&mut p, &mut [0u8; 16]).is_err());
    }

    /// `bpfx_run` on lwt: the memory is an IP packet, rewritten in place at lwt_xmit; the
    /// result is the return code.
    #[test]
    fn run_takes_an_lwt_packet() {
        let obj = runtime::Vm::new()
            .open(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/objects/lwt.o"
            ))
            .unwrap();
        let mut xmit = obj.program("xmit_dscp").unwrap().load().unwrap();
        let mut sip = [
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0x66, 0xca, 10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2,
            0x13, 0xc4, 0, 12, 0, 0, b'a', b'b', b'c', b'd',
        ];
        assert_eq!(run_memory(&mut xmit, &mut sip).unwrap().unwrap(), 0);
        assert_eq!((sip[1], sip[10], sip[11]), (0xb8, 0x66, 0x12));
        // Telnet is dropped at input: BPF_DROP.
        let mut filter = obj.program("in_filter").unwrap().load().unwrap();
        let mut telnet = [0u8; 40];
        telnet[..20].copy_from_slice(&[
            0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        telnet[22..24].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(run_memory(&mut filter, &mut telnet).unwrap().unwrap(), 2);
    }
}
