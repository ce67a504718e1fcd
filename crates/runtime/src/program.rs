//! Objects, programs and the [`Vm`] that configures them: open → verify → compile or interpret
//! → run, each step a type of its own so the steps cannot be skipped or reordered.
//!
//! ```text
//! Vm ──open/load──► Object ──program(name)──► ProgramRef ──verify(mode)──► Verified
//!  (helpers, hooks)  (maps created)            (context, input size)       │ (bound to the maps)
//!                                                          compile() / interpret()
//!                                                                          ▼
//!                                           Program::run / run_xdp / run_ctx (tail calls here)
//! ```

use crate::context::{self, Context, StructLayout, XDP_CTX_SIZE, XdpAction, XdpMeta};
use crate::error::Error;
use crate::helpers::{self, CustomHelper, Hooks, RunCell, RunState};
use crate::map::{Map, MapKind, MapSpec};
use bpfx_bytecode::{Imm64, Op, Pc};
use bpfx_exec::{Budget, Env, GuestMemory, HelperError, SharedMem, TrapKind};
use bpfx_verifier::{
    Config, ContextKind, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, VerifiedProgram,
    VerifierLog,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The engine a program runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The reference interpreter.
    Interpreter,
    /// The x86-64 JIT.
    Jit,
}

impl Engine {
    /// Both engines, interpreter first.
    pub const ALL: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

    /// Lower-case name (`interp`, `jit`), as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Interpreter => "interp",
            Engine::Jit => "jit",
        }
    }
}

/// Configuration shared by every object it opens: embedder helpers, the hooks behind the
/// clock, random-number and CPU-id helpers, and the `trace_printk` sink.
///
/// ```no_run
/// # use bpfx::{Vm, HelperSig, ArgKind, RetKind};
/// let vm = Vm::new()
///     .seed(42)
///     .register_helper(0x1000, HelperSig::new("double", vec![ArgKind::Scalar], RetKind::Scalar),
///         |_, args| Ok(args[0] * 2));
/// let obj = vm.open("examples/counter.o")?;
/// # Ok::<(), bpfx::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Vm {
    hooks: Hooks,
    custom: Vec<CustomHelper>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.custom.iter().map(|c| c.id).collect();
        f.debug_struct("Vm").field("custom_helpers", &ids).finish()
    }
}

impl Vm {
    /// Standard helpers only, real clock, random seed, stderr for `trace_printk`.
    pub fn new() -> Vm {
        Vm::default()
    }

    /// Adds (or replaces, including a standard one) helper `id` with its signature, which the
    /// verifier enforces at every call site.
    pub fn register_helper<F>(mut self, id: u32, sig: HelperSig, f: F) -> Vm
    where
        F: Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.custom.retain(|c| c.id != id);
        self.custom.push(CustomHelper {
            id,
            sig,
            f: Arc::new(f),
        });
        self
    }

    /// The source of `ktime_get_ns` (nanoseconds).
    pub fn clock(mut self, f: impl Fn() -> u64 + Send + Sync + 'static) -> Vm {
        self.hooks.clock = Arc::new(f);
        self
    }

    /// Seeds `get_prandom_u32`: the same seed gives the same sequence.
    pub fn seed(mut self, seed: u64) -> Vm {
        self.hooks.prng = Arc::new(AtomicU64::new(seed));
        self
    }

    /// The source of `get_smp_processor_id`.
    pub fn cpu_id(mut self, f: impl Fn() -> u32 + Send + Sync + 'static) -> Vm {
        self.hooks.cpu = Arc::new(f);
        self
    }

    /// Where `trace_printk` messages go (each call gets one formatted message).
    pub fn trace_sink(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Vm {
        self.hooks.trace = Arc::new(f);
        self
    }

    /// Opens an ELF object file and creates its maps.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Object, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_named(&bytes, &path.display().to_string())
    }

    /// Loads an ELF object from memory and creates its maps.
    pub fn load(&self, bytes: &[u8]) -> Result<Object, Error> {
        self.load_named(bytes, "<bytes>")
    }

    fn load_named(&self, bytes: &[u8], what: &str) -> Result<Object, Error> {
        let obj = bpfx_elf::parse(bytes).map_err(|source| Error::Elf {
            what: what.to_string(),
            source: Box::new(source),
        })?;
        let mut maps = Vec::with_capacity(obj.maps.len());
        for m in obj.maps {
            let kind = MapKind::from_kernel(m.kind.raw()).ok_or_else(|| Error::MapSpec {
                map: m.name.clone(),
                reason: format!("map type {} ({:?}) is not supported", m.kind.raw(), m.kind),
            })?;
            maps.push(MapSpec {
                name: m.name,
                kind,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                flags: m.flags,
                initial_data: m.initial_data,
                read_only: m.read_only,
            });
        }
        let programs = obj
            .programs
            .into_iter()
            .map(|p| ProgramDef::new(p.name, p.section, p.program))
            .collect();
        let mut o = self.object(programs, maps)?;
        o.license = obj.license;
        Ok(o)
    }

    /// An object from programs and maps built by hand (for example assembled bytecode whose
    /// `lddw map_idx(i)` names `maps[i]`).
    pub fn object(&self, programs: Vec<ProgramDef>, maps: Vec<MapSpec>) -> Result<Object, Error> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let maps: Vec<Arc<Map>> = maps
            .into_iter()
            .map(|spec| {
                let name = spec.name.clone();
                Map::new(spec)
                    .map(Arc::new)
                    .map_err(|reason| Error::MapSpec { map: name, reason })
            })
            .collect::<Result<_, _>>()?;
        let mut sigs = helpers::standard_sigs();
        for c in &self.custom {
            sigs.insert(c.id, c.sig.clone());
        }
        Ok(Object {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                maps: maps.into(),
                hooks: self.hooks.clone(),
                custom: self.custom.clone(),
                sigs,
            }),
            programs,
            license: None,
        })
    }
}

/// A program as an object holds it, before verification.
#[derive(Clone, Debug)]
pub struct ProgramDef {
    /// Name (the function symbol).
    pub name: String,
    /// Section.
    pub section: String,
    /// The linked bytecode.
    pub program: bpfx_bytecode::Program,
}

impl ProgramDef {
    /// A program definition.
    pub fn new(
        name: impl Into<String>,
        section: impl Into<String>,
        program: bpfx_bytecode::Program,
    ) -> ProgramDef {
        ProgramDef {
            name: name.into(),
            section: section.into(),
            program,
        }
    }
}

/// What every program of one object shares.
pub(crate) struct Shared {
    id: u64,
    pub(crate) maps: Arc<[Arc<Map>]>,
    hooks: Hooks,
    custom: Vec<CustomHelper>,
    sigs: HelperTable,
}

/// A loaded object: its programs (not yet verified) and its maps (created, shared by every
/// program prepared from it).
pub struct Object {
    shared: Arc<Shared>,
    programs: Vec<ProgramDef>,
    license: Option<String>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field(
                "programs",
                &self.programs.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field("maps", &self.shared.maps)
            .finish()
    }
}

/// A program of an object, as listed by [`Object::programs`].
#[derive(Clone, Copy, Debug)]
pub struct ProgramInfo<'a> {
    /// Name (the function symbol).
    pub name: &'a str,
    /// Section.
    pub section: &'a str,
    /// The linked bytecode (entry function and its subprograms).
    pub program: &'a bpfx_bytecode::Program,
}

impl ProgramInfo<'_> {
    /// Number of instructions (an `lddw` counts once).
    pub fn insn_count(&self) -> usize {
        self.program.iter().count()
    }

    /// The context its section implies.
    pub fn context(&self) -> Context {
        Context::for_section(self.section)
    }
}

impl Object {
    /// Opens an ELF object with the default [`Vm`].
    pub fn open(path: impl AsRef<Path>) -> Result<Object, Error> {
        Vm::new().open(path)
    }

    /// Its programs, in the object's order.
    pub fn programs(&self) -> impl Iterator<Item = ProgramInfo<'_>> + '_ {
        self.programs.iter().map(|p| ProgramInfo {
            name: &p.name,
            section: &p.section,
            program: &p.program,
        })
    }

    /// Its maps, in index order.
    pub fn maps(&self) -> impl Iterator<Item = &Arc<Map>> + '_ {
        self.shared.maps.iter()
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Result<Arc<Map>, Error> {
        self.shared
            .maps
            .iter()
            .find(|m| m.name() == name)
            .cloned()
            .ok_or_else(|| Error::NoMap {
                name: name.to_string(),
                available: self.maps().map(|m| m.name().to_string()).collect(),
            })
    }

    /// The `license` string, if the object has one.
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }

    /// The program whose name is `name`, or else the first one in section `name`; its context
    /// defaults to the one the section implies ([`Context::for_section`]).
    pub fn program(&self, name: &str) -> Result<ProgramRef<'_>, Error> {
        let def = self
            .programs
            .iter()
            .find(|p| p.name == name)
            .or_else(|| self.programs.iter().find(|p| p.section == name))
            .ok_or_else(|| Error::NoProgram {
                name: name.to_string(),
                available: self.programs.iter().map(|p| p.name.clone()).collect(),
            })?;
        Ok(ProgramRef {
            obj: self,
            def,
            context: Context::for_section(&def.section),
            input_size: None,
        })
    }
}

/// A program chosen from an object, not yet verified.
#[derive(Debug)]
pub struct ProgramRef<'o> {
    obj: &'o Object,
    def: &'o ProgramDef,
    context: Context,
    input_size: Option<u64>,
}

impl<'o> ProgramRef<'o> {
    /// Sets the context (default: what the section implies).
    pub fn context(mut self, context: Context) -> ProgramRef<'o> {
        self.context = context;
        self
    }

    /// For a plain-memory program: the size of the input it will get, so the verifier can
    /// prove accesses against it (runs on shorter inputs are then refused).
    pub fn input_size(mut self, bytes: u64) -> ProgramRef<'o> {
        self.input_size = Some(bytes);
        self
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Verifies the program against the object's maps and helpers, and binds it to the maps.
    pub fn verify(self, mode: Mode) -> Result<Verified, Error> {
        self.verify_with_log(mode).0
    }

    /// [`ProgramRef::verify`], also returning the verifier's log.
    pub fn verify_with_log(self, mode: Mode) -> (Result<Verified, Error>, VerifierLog) {
        match self.prepare(mode) {
            Ok((prog, cfg, used)) => {
                let (res, log) = bpfx_verifier::verify_with_log(prog, &cfg);
                let res = res
                    .map_err(|source| Error::Verify {
                        program: self.def.name.clone(),
                        source: Box::new(source),
                    })
                    .and_then(|v| self.bind(v, used));
                (res, log)
            }
            Err(e) => (Err(e), VerifierLog::default()),
        }
    }

    /// The program to verify (context-adapted), the verifier's configuration, and the maps
    /// the program names.
    fn prepare(&self, mode: Mode) -> Result<(bpfx_bytecode::Program, Config, Vec<usize>), Error> {
        let name = &self.def.name;
        let prog = match self.context {
            Context::Xdp => {
                context::rewrite_xdp(&self.def.program).map_err(|source| Error::Context {
                    program: name.clone(),
                    source,
                })?
            }
            _ => self.def.program.clone(),
        };
        let maps = &self.obj.shared.maps;
        let mut used = BTreeSet::new();
        for (pc, op) in prog.iter() {
            let Op::LoadImm64 { value, .. } = *op else {
                continue;
            };
            let link_err = |reason: String| Error::Link {
                program: name.clone(),
                pc,
                insn: op.to_string(),
                reason,
            };
            let (idx, value_off) = match value {
                Imm64::Value(_) | Imm64::Func { .. } => continue,
                Imm64::MapIdx(i) => (i, None),
                Imm64::MapIdxValue { idx, off } => (idx, Some(off)),
                Imm64::MapFd(_) | Imm64::MapValue { .. } => {
                    return Err(link_err(
                        "maps are named by index (map_idx), not by file descriptor".into(),
                    ));
                }
                Imm64::BtfId(_) => {
                    return Err(link_err("BTF variables (ksyms) are not supported".into()));
                }
            };
            let map = usize::try_from(idx)
                .ok()
                .and_then(|i| maps.get(i).map(|m| (i, m)));
            let Some((i, map)) = map else {
                return Err(link_err(format!(
                    "no map with index {idx} (the object has {})",
                    maps.len()
                )));
            };
            if let Some(off) = value_off
                && (map.kind() != MapKind::Array || off >= map.value_size())
            {
                return Err(link_err(format!(
                    "offset {off} is not inside the value of {} map `{}`",
                    map.kind(),
                    map.name()
                )));
            }
            used.insert(i);
        }
        let mut table = MapTable::new();
        for (i, m) in maps.iter().enumerate() {
            table.insert(
                MapRef::Idx(i as i32),
                MapDef {
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    read_only: m.read_only(),
                },
            );
        }
        let (kind, mem_size) = match self.context {
            Context::Memory => (ContextKind::Memory, self.input_size),
            Context::Xdp => (
                ContextKind::Packet {
                    data: 0,
                    data_end: 8,
                },
                Some(XDP_CTX_SIZE as u64),
            ),
            Context::Struct(StructLayout { size, packet }) => (
                match packet {
                    Some((data, data_end)) => ContextKind::Packet { data, data_end },
                    None => ContextKind::Memory,
                },
                Some(u64::from(size)),
            ),
        };
        let cfg = Config {
            mode,
            mem_size,
            helpers: self.obj.shared.sigs.clone(),
            maps: table,
            context: kind,
            ..Config::default()
        };
        Ok((prog, cfg, used.into_iter().collect()))
    }

    fn bind(&self, v: VerifiedProgram, used: Vec<usize>) -> Result<Verified, Error> {
        let maps = &self.obj.shared.maps;
        let bound = v
            .bind_imm64(|_, imm| match imm {
                Imm64::MapIdx(i) => Some(helpers::map_handle(usize::try_from(i).ok()?)),
                Imm64::MapIdxValue { idx, off } => {
                    let block = maps.get(usize::try_from(idx).ok()?)?.block()?;
                    Some(block.addr() + u64::from(off))
                }
                _ => None,
            })
            .map_err(|e| Error::Link {
                program: self.def.name.clone(),
                pc: Pc(e.pc),
                insn: String::new(),
                reason: format!("the bound program does not decode: {e}"),
            })?;
        // The proofs of map-value stores rest on the read-only flags the verifier was given:
        // each block must be lent exactly as writable as its map was declared.
        for &i in &used {
            let declared = bound.assumptions().maps.get(MapRef::Idx(i as i32));
            if let (Some(def), Some(block)) = (declared, maps[i].block())
                && def.read_only == block.writable()
            {
                return Err(Error::Link {
                    program: self.def.name.clone(),
                    pc: Pc(0),
                    insn: String::new(),
                    reason: format!(
                        "map {} was verified as {} but its memory is {}",
                        maps[i].name(),
                        if def.read_only {
                            "read-only"
                        } else {
                            "writable"
                        },
                        if block.writable() {
                            "writable"
                        } else {
                            "read-only"
                        },
                    ),
                });
            }
        }
        let blocks = used
            .iter()
            .filter_map(|&i| maps[i].block().cloned())
            .collect();
        Ok(Verified {
            shared: self.obj.shared.clone(),
            name: self.def.name.clone(),
            context: self.context,
            prog: bound,
            blocks,
        })
    }
}

/// A verified program, bound to its object's maps, ready to be compiled or interpreted.
#[derive(Clone)]
pub struct Verified {
    shared: Arc<Shared>,
    name: String,
    context: Context,
    prog: VerifiedProgram,
    blocks: Vec<Arc<SharedMem>>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("name", &self.name)
            .field("context", &self.context)
            .finish()
    }
}

impl Verified {
    /// The verified (and bound) program, with the verifier's facts.
    pub fn program(&self) -> &VerifiedProgram {
        &self.prog
    }

    /// Runs it on the reference interpreter.
    pub fn interpret(self) -> Program {
        self.finish(Code::Interp)
    }

    /// Compiles it to x86-64 code; accesses the verifier proved in bounds lose their guards
    /// (it never proves a store into a read-only map, so those keep the guard that refuses them).
    pub fn compile(self) -> Result<Program, Error> {
        self.compile_with(&bpfx_jit::JitOptions::default())
    }

    /// Compiles it with options (for example the instruction budget, or dual-mapped code
    /// memory: `bpfx_jit::CodeMemory`).
    pub fn compile_with(self, opts: &bpfx_jit::JitOptions) -> Result<Program, Error> {
        let jit = bpfx_jit::compile(&self.prog, opts).map_err(|source| Error::Jit {
            program: self.name.clone(),
            source,
        })?;
        Ok(self.finish(Code::Jit(Box::new(jit))))
    }

    /// [`Verified::interpret`] or [`Verified::compile`] (with the budget charge when `budget`).
    pub fn engine(self, engine: Engine, budget: bool) -> Result<Program, Error> {
        match engine {
            Engine::Interpreter => Ok(self.interpret()),
            Engine::Jit => self.compile_with(&bpfx_jit::JitOptions {
                budget,
                ..Default::default()
            }),
        }
    }

    fn finish(self, code: Code) -> Program {
        let linked = Arc::new(Linked {
            object_id: self.shared.id,
            name: self.name,
            context: self.context,
            prog: self.prog,
            code,
            blocks: self.blocks,
        });
        Program::new(linked, self.shared)
    }
}

pub(crate) enum Code {
    Interp,
    Jit(Box<bpfx_jit::JitProgram>),
}

/// A program ready to run: what a program array slot holds.
pub(crate) struct Linked {
    object_id: u64,
    pub(crate) name: String,
    context: Context,
    prog: VerifiedProgram,
    code: Code,
    /// The shared memory of the maps it names: exactly what the engines let it touch.
    blocks: Vec<Arc<SharedMem>>,
}

/// A runnable program. Each `Program` value runs on one thread at a time (`run` takes
/// `&mut self`); clone it to run the same code on several threads at once; every clone
/// shares the code and the maps and has its own stack.
pub struct Program {
    linked: Arc<Linked>,
    shared: Arc<Shared>,
    env: Env,
    run: RunCell,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.linked.name)
            .field("engine", &self.engine())
            .field("context", &self.linked.context)
            .finish()
    }
}

impl Clone for Program {
    fn clone(&self) -> Program {
        let mut p = Program::new(self.linked.clone(), self.shared.clone());
        p.env.budget = self.env.budget;
        p.env.unbounded = self.env.unbounded;
        p
    }
}

impl Program {
    fn new(linked: Arc<Linked>, shared: Arc<Shared>) -> Program {
        let run: RunCell = Arc::new(Mutex::new(RunState::default()));
        let mut h = helpers::standard(&shared.maps, &shared.hooks, &run);
        for c in &shared.custom {
            let f = c.f.clone();
            h.register(c.id, move |m, a| f(m, a));
        }
        let mut env = Env::with_helpers(h);
        // The frame limit is the one the program was verified with: no second setting.
        env.set_max_frames(linked.prog.max_frames());
        Program {
            linked,
            shared,
            env,
            run,
            buf: Vec::new(),
        }
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.linked.name
    }

    /// Its context.
    pub fn context(&self) -> Context {
        self.linked.context
    }

    /// The engine it runs on.
    pub fn engine(&self) -> Engine {
        match self.linked.code {
            Code::Interp => Engine::Interpreter,
            Code::Jit(_) => Engine::Jit,
        }
    }

    /// The verified program it runs.
    pub fn verified(&self) -> &VerifiedProgram {
        &self.linked.prog
    }

    /// The x86-64 listing, when compiled.
    pub fn listing(&self) -> Option<String> {
        match &self.linked.code {
            Code::Jit(j) => Some(j.listing()),
            Code::Interp => None,
        }
    }

    /// Sets the instruction budget: [`Budget::Limit`] (or `Some(n)`) limits the runs to `n`
    /// instructions in all (shared by tail calls; each run leaves the rest to the next), and
    /// on the JIT needs code compiled with the budget charge ([`Verified::engine`] with
    /// `budget`); [`Budget::Default`] (or `None`, what a new program has) runs a program that
    /// may not terminate under [`bpfx_exec::DEFAULT_BUDGET`] per run and one proven to
    /// terminate without limit; [`Budget::Unlimited`] lets any program run forever.
    pub fn set_budget(&mut self, budget: impl Into<Budget>) {
        self.env.set_budget(budget.into());
    }

    /// What the last run left of a [`Budget::Limit`] (`None` without one).
    pub fn budget(&self) -> Option<u64> {
        self.env.budget
    }

    fn expect(&self, got: Context) -> Result<(), Error> {
        if std::mem::discriminant(&self.linked.context) != std::mem::discriminant(&got) {
            return Err(Error::WrongContext {
                program: self.linked.name.clone(),
                expected: self.linked.context.name(),
                got: got.name(),
            });
        }
        Ok(())
    }

    /// Runs a plain-memory program on `mem` (r1 = its address, r2 = its length); the program
    /// may change it.
    pub fn run(&mut self, mem: &mut [u8]) -> Result<u64, Error> {
        self.expect(Context::Memory)?;
        self.exec(mem)
    }

    /// Runs an XDP program on a packet (which it may rewrite in place) and returns its verdict.
    pub fn run_xdp(&mut self, packet: &mut [u8]) -> Result<XdpAction, Error> {
        self.run_xdp_with(packet, &XdpMeta::default())
    }

    /// [`Program::run_xdp`] with receive-side metadata.
    pub fn run_xdp_with(&mut self, packet: &mut [u8], meta: &XdpMeta) -> Result<XdpAction, Error> {
        self.expect(Context::Xdp)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(XDP_CTX_SIZE + packet.len(), 0);
        buf[XDP_CTX_SIZE..].copy_from_slice(packet);
        context::fill_xdp_ctx(&mut buf, meta);
        let res = self.exec(&mut buf);
        packet.copy_from_slice(&buf[XDP_CTX_SIZE..]);
        self.buf = buf;
        res.map(XdpAction::from_code)
    }

    /// Runs a program with an embedder-defined context: `ctx` is the struct (at least its
    /// declared size), `packet` the packet whose bounds bpfx writes into the struct's
    /// `data`/`data_end` fields, when the layout has them. Both may be changed by the program.
    pub fn run_ctx(&mut self, ctx: &mut [u8], packet: &mut [u8]) -> Result<u64, Error> {
        let Context::Struct(layout) = self.linked.context else {
            return Err(Error::WrongContext {
                program: self.linked.name.clone(),
                expected: self.linked.context.name(),
                got: "struct",
            });
        };
        let size = usize::from(layout.size);
        if ctx.len() < size {
            return Err(Error::InputTooShort {
                program: self.linked.name.clone(),
                need: size as u64,
                got: ctx.len(),
            });
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&ctx[..size]);
        buf.extend_from_slice(packet);
        if let Some((data, end)) = layout.packet {
            let base = buf.as_ptr() as u64;
            let (d, e) = (usize::from(data), usize::from(end));
            let start = (base + size as u64).to_le_bytes();
            let stop = (base + buf.len() as u64).to_le_bytes();
            // The verifier accepted the layout with these fields inside the struct; a layout
            // whose fields do not fit is caught here rather than by a slice panic.
            if d + 8 > size || e + 8 > size {
                self.buf = buf;
                return Err(Error::InputTooShort {
                    program: self.linked.name.clone(),
                    need: (d.max(e) + 8) as u64,
                    got: size,
                });
            }
            buf[d..d + 8].copy_from_slice(&start);
            buf[e..e + 8].copy_from_slice(&stop);
        }
        let res = self.exec(&mut buf);
        ctx[..size].copy_from_slice(&buf[..size]);
        packet.copy_from_slice(&buf[size..]);
        self.buf = buf;
        res
    }

    /// One run, following tail calls.
    fn exec(&mut self, input: &mut [u8]) -> Result<u64, Error> {
        {
            let mut st = helpers::lock(&self.run);
            st.tail = None;
            st.tail_calls = 0;
            st.reserved.clear();
        }
        let mut cur = self.linked.clone();
        let result = loop {
            if let Some(need) = cur.prog.mem_size()
                && (input.len() as u64) < need
            {
                break Err(Error::InputTooShort {
                    program: cur.name.clone(),
                    need,
                    got: input.len(),
                });
            }
            self.env.shared.clone_from(&cur.blocks);
            self.env.set_max_frames(cur.prog.max_frames());
            let r = match &cur.code {
                Code::Interp => bpfx_interp::run(&cur.prog, input, &mut self.env),
                Code::Jit(j) => j.run(input, &mut self.env),
            };
            match r {
                Ok(r0) => break Ok(r0),
                Err(trap) => {
                    let tail = if trap.kind == TrapKind::HelperError {
                        helpers::lock(&self.run).tail.take()
                    } else {
                        None
                    };
                    match tail {
                        Some(next) if next.context != cur.context => {
                            break Err(Error::WrongContext {
                                program: next.name.clone(),
                                expected: next.context.name(),
                                got: cur.context.name(),
                            });
                        }
                        Some(next) => cur = next,
                        None => {
                            break Err(Error::Trap {
                                program: cur.name.clone(),
                                reason: self.env.helper_error.take().map(|e| e.0),
                                trap,
                                insn: cur
                                    .prog
                                    .program()
                                    .get(trap.pc)
                                    .map_or_else(|| "?".to_string(), |op| op.to_string()),
                            });
                        }
                    }
                }
            }
        };
        // Records reserved and never submitted would block the ring forever: the kernel's
        // verifier forbids that, bpfx discards them when the run ends.
        let left = std::mem::take(&mut helpers::lock(&self.run).reserved);
        for (i, addr) in left {
            self.shared.maps[i].ring_commit(addr, true);
        }
        result
    }
}

impl Map {
    /// Puts `prog` into slot `index` of this program array, for `bpf_tail_call`. The program
    /// must come from the same object and take the same context as its callers.
    pub fn set_program(&self, index: u32, prog: &Program) -> Result<(), Error> {
        let reject = |reason: &str| Error::ProgArray {
            map: self.name().to_string(),
            program: prog.name().to_string(),
            reason: reason.to_string(),
        };
        if self.kind() != MapKind::ProgArray {
            return Err(reject("not a program array"));
        }
        let owner = prog.shared.maps.iter().any(|m| std::ptr::eq(&**m, self));
        if !owner || prog.linked.object_id != prog.shared.id {
            return Err(reject("the program belongs to another object"));
        }
        self.set_slot(index, Some(prog.linked.clone()))
            .map_err(|source| Error::Map {
                map: self.name().to_string(),
                source,
            })
    }

    /// Empties slot `index` of this program array.
    pub fn clear_program(&self, index: u32) -> Result<(), Error> {
        self.set_slot(index, None).map_err(|source| Error::Map {
            map: self.name().to_string(),
            source,
        })
    }
}
