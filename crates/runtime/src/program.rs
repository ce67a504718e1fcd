//! Objects, programs and the [`Vm`] that configures them: open → verify → compile or interpret
//! → run, each step a type of its own so the steps cannot be skipped or reordered.
//!
//! ```text
//! Vm ──open/load──► Object ──program(name)──► ProgramRef ──verify(mode)──► Verified
//!  (helpers, hooks,  (maps declared,           (context, input size)       │ (its maps created,
//!   memory limit)     none created)                                        │  bound to them)
//!                                                          compile() / interpret()
//!                                                                          ▼
//!                                           Program::run / run_xdp / run_ctx (tail calls here)
//! ```

use crate::context::{self, Context, XDP_CTX_SIZE, XdpAction, XdpMeta};
use crate::error::Error;
use crate::helpers::{self, CustomHelper, Hooks, RunCell, RunState};
use crate::map::{Map, MapKind, MapSpec};
use crate::maps::MapConfig;
use crate::memory::{Charge, DEFAULT_MEM_LIMIT, Pool};
use crate::object_map::ObjectMap;
use crate::skb::{self, SKB_CTX_SIZE, SkbMeta, SocketVerdict, TcAction};
use bpfx_bytecode::{Imm64, Op, Pc};
use bpfx_exec::{Budget, End, Env, GuestMemory, HelperError, HelperRet, SharedMem, Trap, TrapKind};
use bpfx_verifier::{
    Config, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, VerifiedProgram, VerifierLog,
};
use std::collections::{BTreeMap, BTreeSet};
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
/// clock, random-number and CPU-id helpers, the `trace_printk` sink, and the memory limit
/// ([`Vm::mem_limit`]).
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
#[derive(Clone)]
pub struct Vm {
    hooks: Hooks,
    custom: Vec<CustomHelper>,
    pool: Arc<Pool>,
    kconfig: BTreeMap<String, String>,
    perf_buffer_size: Option<u32>,
}

impl Default for Vm {
    fn default() -> Vm {
        Vm {
            hooks: Hooks::default(),
            custom: Vec::new(),
            pool: Pool::new(DEFAULT_MEM_LIMIT),
            kconfig: BTreeMap::new(),
            perf_buffer_size: None,
        }
    }
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.custom.iter().map(|c| c.id).collect();
        f.debug_struct("Vm")
            .field("custom_helpers", &ids)
            .field("mem_limit", &self.pool.limit())
            .finish()
    }
}

impl Vm {
    /// Standard helpers only, real clock, random seed, stderr for `trace_printk`, a memory
    /// limit of [`crate::DEFAULT_MEM_LIMIT`].
    pub fn new() -> Vm {
        Vm::default()
    }

    /// Limits the memory of everything opened from this `Vm` (and its clones) to `bytes`
    /// together: the storage of every map, host-side structures included
    /// ([`MapSpec::memory_bytes`]), global data, and JIT code. Each is charged when it is
    /// created, before anything is allocated, and refused with [`Error::MemoryLimit`] when it
    /// does not fit; the bytes come back when the map or the code holding them is dropped.
    /// Objects opened before keep the limit they were opened with.
    pub fn mem_limit(mut self, bytes: u64) -> Vm {
        self.pool = Pool::new(bytes);
        self
    }

    /// The bytes held now against the memory limit, by every object opened from this `Vm`.
    pub fn mem_used(&self) -> u64 {
        self.pool.used()
    }

    /// Adds (or replaces, including a standard one) helper `id` with its signature, which the
    /// verifier enforces at every call site.
    pub fn register_helper<F>(self, id: u32, sig: HelperSig, f: F) -> Vm
    where
        F: Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.register_ending_helper(id, sig, move |m, a| f(m, a).map(HelperRet::Value))
    }

    /// [`Vm::register_helper`] for a helper that may also end the program: with
    /// [`HelperRet::Return`] the run ends at the `call` with that result, however deep in
    /// local calls (uBPF's unwind function). A [`HelperRet::TailCall`] is `bpf_tail_call`'s
    /// alone: from an embedder's helper, the run ends with an `Unsupported` trap at the call.
    pub fn register_ending_helper<F>(mut self, id: u32, sig: HelperSig, f: F) -> Vm
    where
        F: Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<HelperRet, HelperError>
            + Send
            + Sync
            + 'static,
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

    /// The source of the CPU a program runs on (default: a small id per host thread, in the
    /// order threads first run a program), taken modulo [`Vm::cpus`]: what
    /// `get_smp_processor_id` returns and the slot of every per-CPU map access.
    pub fn cpu_id(mut self, f: impl Fn() -> u32 + Send + Sync + 'static) -> Vm {
        self.hooks.cpu = Arc::new(f);
        self
    }

    /// The number of CPUs (default: the host's available parallelism; at least 1): per-CPU
    /// maps of the objects this `Vm` opens hold that many values per entry and perf event
    /// arrays that many buffers.
    pub fn cpus(mut self, n: u32) -> Vm {
        self.hooks.cpus = n.max(1);
        self
    }

    /// The size in bytes of each CPU's buffer of a perf event array (default
    /// [`crate::DEFAULT_PERF_BUFFER_SIZE`], at least [`crate::MIN_PERF_BUFFER_SIZE`]); records
    /// that do not fit are counted as lost until the host drains the buffer.
    pub fn perf_buffer_size(mut self, bytes: u32) -> Vm {
        self.perf_buffer_size = Some(bytes);
        self
    }

    /// What this `Vm` creates maps with.
    pub fn map_config(&self) -> MapConfig {
        MapConfig {
            cpus: self.hooks.cpus,
            perf_buffer_size: self
                .perf_buffer_size
                .unwrap_or(crate::maps::DEFAULT_PERF_BUFFER_SIZE),
        }
    }

    /// Where `trace_printk` messages go (each call gets one formatted message).
    pub fn trace_sink(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Vm {
        self.hooks.trace = Arc::new(f);
        self
    }

    /// Gives the `__kconfig` extern `name` (`CONFIG_*`, or `LINUX_KERNEL_VERSION` to replace
    /// its default [`bpfx_elf::DEFAULT_KERNEL_VERSION`]) a value, written as in a kernel
    /// `.config`: `y`, `n` or `m`, a number in C syntax, or a quoted string. A strong extern
    /// without a value makes the programs that read it fail to load; a weak one reads 0.
    pub fn kconfig(mut self, name: impl Into<String>, value: impl Into<String>) -> Vm {
        self.kconfig.insert(name.into(), value.into());
        self
    }

    /// Opens an ELF object file (its maps are created when a program is prepared to run, see
    /// [`ProgramRef::verify`]).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Object, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_named(&bytes, &path.display().to_string())
    }

    /// Loads an ELF object from memory (its maps are created later, as [`Vm::open`] says).
    pub fn load(&self, bytes: &[u8]) -> Result<Object, Error> {
        self.load_named(bytes, "<bytes>")
    }

    fn load_named(&self, bytes: &[u8], what: &str) -> Result<Object, Error> {
        let mut obj = bpfx_elf::parse(bytes).map_err(|source| Error::Elf {
            what: what.to_string(),
            source: Box::new(source),
        })?;
        let kconfig = obj
            .kconfig_value(|name| self.kconfig.get(name).cloned())
            .map_err(|e| Error::MapSpec {
                map: bpfx_elf::KCONFIG_MAP.into(),
                reason: e.to_string(),
            })?;
        let unset = match (kconfig, obj.kconfig_map()) {
            (Some(k), Some(i)) => {
                obj.maps[i].initial_data = Some(k.bytes);
                k.unset
            }
            _ => Vec::new(),
        };
        let mut prog_inits = Vec::new();
        for (i, m) in obj.maps.iter().enumerate() {
            for (slot, init) in &m.init {
                if let bpfx_elf::MapInit::Program(p) = init {
                    prog_inits.push((i, *slot, p.clone()));
                }
            }
        }
        let externs = std::mem::take(&mut obj.externs);
        let cfg = self.map_config();
        let maps = obj
            .maps
            .into_iter()
            .map(|m| ObjectMap::from_elf(m, &cfg))
            .collect();
        let programs = obj
            .programs
            .into_iter()
            .map(|p| {
                let blocked = p.externs.iter().find_map(|u| {
                    crate::externs::refusal(&externs, &unset, u).map(|why| (u.pc, why))
                });
                let mut def = ProgramDef::new(p.name, p.section, p.program);
                def.blocked = blocked;
                def
            })
            .collect();
        let mut o = self.build(programs, maps);
        o.license = obj.license;
        o.prog_inits = prog_inits;
        Ok(o)
    }

    /// An object from programs and maps built by hand (for example assembled bytecode whose
    /// `lddw map_idx(i)` names `maps[i]`). As with a loaded object, no map is created yet, and
    /// a map whose shape the kernel would refuse fails only the programs that name it (and
    /// host access to it), so this does not fail any more; it keeps its `Result` so callers
    /// written when map creation happened here need no change.
    pub fn object(&self, programs: Vec<ProgramDef>, maps: Vec<MapSpec>) -> Result<Object, Error> {
        let cfg = self.map_config();
        Ok(self.build(
            programs,
            maps.into_iter().map(|m| ObjectMap::new(m, &cfg)).collect(),
        ))
    }

    fn build(&self, programs: Vec<ProgramDef>, maps: Vec<ObjectMap>) -> Object {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let mut sigs = helpers::standard_sigs();
        for c in &self.custom {
            sigs.insert(c.id, c.sig.clone());
        }
        Object {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                maps: maps.into(),
                hooks: self.hooks.clone(),
                custom: self.custom.clone(),
                sigs,
                pool: self.pool.clone(),
            }),
            programs,
            license: None,
            prog_inits: Vec::new(),
        }
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
    /// Why it cannot load although the object does, and at which pc (an extern it needs).
    blocked: Option<(Pc, String)>,
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
            blocked: None,
        }
    }
}

/// What every program of one object shares.
pub(crate) struct Shared {
    id: u64,
    pub(crate) maps: Arc<[ObjectMap]>,
    hooks: Hooks,
    custom: Vec<CustomHelper>,
    sigs: HelperTable,
    pool: Arc<Pool>,
}

/// A loaded object: its programs (not yet verified) and its maps (declared; each created when
/// a program that names it is prepared to run, or on host access, and then shared by every
/// program prepared from the object).
pub struct Object {
    shared: Arc<Shared>,
    programs: Vec<ProgramDef>,
    license: Option<String>,
    /// The object's static program-array slots: (map index, key, program name).
    prog_inits: Vec<(usize, u32, String)>,
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

    /// Its maps as declared, in index order, each with its status and, once created, its
    /// storage ([`ObjectMap::created`]). Listing them creates nothing.
    pub fn maps(&self) -> impl Iterator<Item = &ObjectMap> + '_ {
        self.shared.maps.iter()
    }

    /// The map called `name`, its storage created now if no program created it yet (charged
    /// to the [`Vm`]'s memory limit): [`Error::MapSpec`] when bpfx cannot create it,
    /// [`Error::MemoryLimit`] when it does not fit.
    pub fn map(&self, name: &str) -> Result<Arc<Map>, Error> {
        let m = self
            .shared
            .maps
            .iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| Error::NoMap {
                name: name.to_string(),
                available: self.maps().map(|m| m.name().to_string()).collect(),
            })?;
        let i = self
            .shared
            .maps
            .iter()
            .position(|o| std::ptr::eq(o, m))
            .unwrap_or_default();
        create_map(&self.shared.maps, &self.shared.pool, i).cloned()
    }

    /// The bytes held now against the memory limit of the [`Vm`] this object was opened from
    /// (by all its objects).
    pub fn mem_used(&self) -> u64 {
        self.shared.pool.used()
    }

    /// Whether program `name` can be prepared as far as its type and maps go: bpfx models the
    /// type its section implies ([`Error::UnsupportedProgramType`] otherwise), every map its
    /// `lddw` instructions name exists and bpfx can create it ([`Error::MapUnsupported`] otherwise),
    /// and those not created yet fit the memory limit together now ([`Error::MemoryLimit`]).
    /// Says nothing of what the verifier will decide; creates nothing.
    pub fn program_status(&self, name: &str) -> Result<(), Error> {
        let p = self.program(name)?;
        if let Context::Unsupported(prog_type) = p.context {
            return Err(Error::UnsupportedProgramType {
                program: p.def.name.clone(),
                section: p.def.section.clone(),
                prog_type,
            });
        }
        let used = used_maps(&p.def.name, &p.def.program, &self.shared.maps)?;
        p.fits(&used)
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

/// The indices of the maps the `lddw` instructions of `prog` name, in order, each checked to
/// exist and to be one bpfx can create.
fn used_maps(
    name: &str,
    prog: &bpfx_bytecode::Program,
    maps: &[ObjectMap],
) -> Result<Vec<usize>, Error> {
    let mut used = BTreeSet::new();
    for (pc, op) in prog.iter() {
        let Op::LoadImm64 { value, .. } = *op else {
            continue;
        };
        let link_err = |reason: String| Error::Link {
            program: name.to_string(),
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
        if let Err(reason) = map.status() {
            return Err(Error::MapUnsupported {
                program: name.to_string(),
                map: map.name().to_string(),
                reason: reason.to_string(),
            });
        }
        if let Some(off) = value_off
            && (map.kind() != Some(MapKind::Array) || off >= map.value_size())
        {
            return Err(link_err(format!(
                "offset {off} is not inside the value of {} map `{}`",
                map.type_name(),
                map.name()
            )));
        }
        used.insert(i);
        // A map of maps' statically initialised inner maps are created with it.
        for &(_, j) in &map.map_inits {
            let inner = maps
                .get(j)
                .ok_or_else(|| link_err(format!("map `{}`: no map with index {j}", map.name())))?;
            if let Err(reason) = inner.status() {
                return Err(Error::MapUnsupported {
                    program: name.to_string(),
                    map: inner.name().to_string(),
                    reason: reason.to_string(),
                });
            }
            used.insert(j);
        }
    }
    Ok(used.into_iter().collect())
}

/// Creates map `i` of `maps` (charged to `pool`); a map of maps gets its static inner maps
/// (created too) in their slots before anyone sees it.
pub(crate) fn create_map<'m>(
    maps: &'m [ObjectMap],
    pool: &Arc<Pool>,
    i: usize,
) -> Result<&'m Arc<Map>, Error> {
    let m = &maps[i];
    m.create_init(pool, |outer| {
        for &(key, j) in &m.map_inits {
            let inner = maps
                .get(j)
                .filter(|_| j != i)
                .ok_or_else(|| Error::MapSpec {
                    map: m.name().to_string(),
                    reason: format!("slot {key}: no inner map with index {j}"),
                })?;
            let created = inner.create(pool)?;
            outer
                .set_inner(&key.to_le_bytes(), created)
                .map_err(|e| Error::MapSpec {
                    map: m.name().to_string(),
                    reason: format!("slot {key}: map `{}`: {e}", inner.name()),
                })?;
        }
        Ok(())
    })
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

    /// Verifies the program against the object's maps and helpers; once the verifier accepts
    /// it, creates the storage of the maps it names that no program created yet (each charged
    /// to the [`Vm`]'s memory limit before it is allocated: [`Error::MemoryLimit`]) and binds
    /// the program to them. A program naming a map bpfx cannot create fails here with
    /// [`Error::MapUnsupported`], before the verifier runs.
    pub fn verify(self, mode: Mode) -> Result<Verified, Error> {
        self.verify_with_log(mode).0
    }

    /// [`ProgramRef::verify`], also returning the verifier's log.
    ///
    /// When the program uses a program array that the object fills statically (`values`
    /// initialisers), the programs of its still-empty slots are verified too (in the same
    /// mode, each with its section's context), and so on through the arrays those use; they
    /// are put in their slots when this program is compiled or interpreted, on the same
    /// engine. One that does not verify fails this program.
    pub fn verify_with_log(self, mode: Mode) -> (Result<Verified, Error>, VerifierLog) {
        let (res, log) = self.verify_alone(mode);
        let res = res.and_then(|(mut v, used)| {
            v.static_slots = self.static_targets(mode, used)?;
            Ok(v)
        });
        (res, log)
    }

    /// Verifies and binds this program alone; also returns the maps it uses.
    fn verify_alone(&self, mode: Mode) -> (Result<(Verified, Vec<usize>), Error>, VerifierLog) {
        let (res, log) = self.verify_prepared(mode);
        let res = res.and_then(|(v, used)| Ok((self.bind(v, used.clone())?, used)));
        (res, log)
    }

    /// The program prepared for its context and maps, and verified: the proof and the maps it
    /// names, with the verifier's log.
    fn verify_prepared(
        &self,
        mode: Mode,
    ) -> (Result<(VerifiedProgram, Vec<usize>), Error>, VerifierLog) {
        match self.prepare(mode) {
            Ok((prog, cfg, used)) => {
                let (res, log) = bpfx_verifier::verify_with_log(prog, &cfg);
                let res = res.map(|v| (v, used)).map_err(|source| Error::Verify {
                    program: self.def.name.clone(),
                    source: Box::new(source),
                });
                (res, log)
            }
            Err(e) => (Err(e), VerifierLog::default()),
        }
    }

    /// Verification alone: what [`ProgramRef::verify`] decides, without creating or binding
    /// any map (the program's map references stay `map_idx` pseudo values). It also checks
    /// that the maps the program names, those not created yet, would fit the memory limit
    /// now ([`Error::MemoryLimit`]), and allocates nothing.
    pub fn check(self, mode: Mode) -> Result<VerifiedProgram, Error> {
        self.check_with_log(mode).0
    }

    /// [`ProgramRef::check`], also returning the verifier's log.
    pub fn check_with_log(self, mode: Mode) -> (Result<VerifiedProgram, Error>, VerifierLog) {
        let (res, log) = self.verify_prepared(mode);
        (res.and_then(|(v, used)| self.fits(&used).map(|()| v)), log)
    }

    /// Whether the maps in `used` not created yet fit the memory limit together.
    fn fits(&self, used: &[usize]) -> Result<(), Error> {
        let shared = &self.obj.shared;
        let mut pending = 0u64;
        for &i in used {
            let m = &shared.maps[i];
            if m.created().is_some() {
                continue;
            }
            let need = m.status().unwrap_or(0);
            shared
                .pool
                .check(|| format!("map `{}`", m.name()), need, pending)?;
            pending = pending.saturating_add(need);
        }
        Ok(())
    }

    /// The programs of the empty statically-initialised slots of the program arrays in
    /// `used`, transitively, verified: (map index, key, program).
    fn static_targets(
        &self,
        mode: Mode,
        mut used: Vec<usize>,
    ) -> Result<Vec<(usize, u32, Verified)>, Error> {
        let maps = &self.obj.shared.maps;
        let mut done = BTreeSet::new();
        let mut out = Vec::new();
        let mut next = 0;
        while let Some(&m) = used.get(next) {
            next += 1;
            for (map, slot, name) in self.obj.prog_inits.iter().filter(|i| i.0 == m) {
                if !done.insert((*map, *slot))
                    || maps[*map]
                        .created()
                        .is_some_and(|a| a.slot(u64::from(*slot)).is_ok())
                {
                    continue;
                }
                let refuse = |e: Error| Error::ProgArray {
                    map: maps[*map].name().to_string(),
                    program: name.clone(),
                    reason: format!("the program of its `values` slot {slot} does not load: {e}"),
                };
                let target = self.obj.program(name).map_err(refuse)?;
                let (v, target_used) = target.verify_alone(mode).0.map_err(refuse)?;
                for u in target_used {
                    if !used.contains(&u) {
                        used.push(u);
                    }
                }
                out.push((*map, *slot, v));
            }
        }
        Ok(out)
    }

    /// The program to verify (context-adapted), the verifier's configuration, and the maps
    /// the program names.
    fn prepare(&self, mode: Mode) -> Result<(bpfx_bytecode::Program, Config, Vec<usize>), Error> {
        let name = &self.def.name;
        if let Context::Unsupported(prog_type) = self.context {
            return Err(Error::UnsupportedProgramType {
                program: name.clone(),
                section: self.def.section.clone(),
                prog_type,
            });
        }
        if let Context::Struct(layout) = self.context {
            layout.check().map_err(|source| Error::Layout {
                program: name.clone(),
                source,
            })?;
        }
        if let Some((pc, reason)) = &self.def.blocked {
            return Err(Error::Link {
                program: name.clone(),
                pc: *pc,
                insn: self
                    .def
                    .program
                    .get(*pc)
                    .map_or_else(|| "?".to_string(), |op| op.to_string()),
                reason: reason.clone(),
            });
        }
        let prog = self.def.program.clone();
        let maps = &self.obj.shared.maps;
        let used = used_maps(name, &prog, maps)?;
        let mut table = MapTable::new();
        for (i, m) in maps.iter().enumerate() {
            // A map of maps' inner maps are declared under `Inner(i)`, from its template.
            let template = m.spec().and_then(|s| s.inner.as_deref());
            // Programs only read device maps (the kernel forces BPF_F_RDONLY_PROG on them), and
            // never get a pointer into CPU or XSK maps (lookups give NULL): all four are lent
            // to runs read-only, and declared so, since the proofs rest on that flag.
            let read_only = |kind: MapKind, ro: bool| {
                ro || matches!(
                    kind,
                    MapKind::DevMap | MapKind::DevMapHash | MapKind::CpuMap | MapKind::XskMap
                )
            };
            table.insert(
                MapRef::Idx(i as i32),
                MapDef {
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    read_only: m.kind().is_some_and(|k| read_only(k, m.read_only())),
                    prog_array: m.kind() == Some(MapKind::ProgArray),
                    inner: template.map(|_| MapRef::Inner(i as i32)),
                },
            );
            if let Some(t) = template {
                table.insert(
                    MapRef::Inner(i as i32),
                    MapDef::new(t.key_size, t.value_size)
                        .with_read_only(read_only(t.kind, t.read_only)),
                );
            }
        }
        // Context accesses are checked against the context's fields and converted to bpfx's
        // layout by the verifier.
        let (kind, mem_size) = self.context.verifier_view(self.input_size);
        let cfg = Config {
            mode,
            mem_size,
            helpers: self.obj.shared.sigs.clone(),
            maps: table,
            context: kind,
            ..Config::default()
        };
        Ok((prog, cfg, used))
    }

    /// Creates the maps in `used` (charging the memory limit) and binds the program to them.
    /// They are checked to fit together first, so a program whose maps do not fit allocates
    /// none of them (and each creation is still charged before it allocates).
    fn bind(&self, v: VerifiedProgram, used: Vec<usize>) -> Result<Verified, Error> {
        self.fits(&used)?;
        let shared = &self.obj.shared;
        let mut created = Vec::with_capacity(used.len());
        for &i in &used {
            created.push(create_map(&shared.maps, &shared.pool, i)?.clone());
        }
        let outers = used
            .iter()
            .copied()
            .filter(|&i| {
                matches!(
                    shared.maps[i].kind(),
                    Some(MapKind::ArrayOfMaps | MapKind::HashOfMaps)
                )
            })
            .collect();
        let bound = v
            .bind_imm64(|_, imm| match imm {
                Imm64::MapIdx(i) => Some(helpers::map_handle(usize::try_from(i).ok()?)),
                Imm64::MapIdxValue { idx, off } => {
                    let block = shared
                        .maps
                        .get(usize::try_from(idx).ok()?)?
                        .created()?
                        .block()?;
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
        for (&i, map) in used.iter().zip(&created) {
            let declared = bound.assumptions().maps.get(MapRef::Idx(i as i32));
            if let (Some(def), Some(block)) = (declared, map.block())
                && def.read_only == block.writable()
            {
                return Err(Error::Link {
                    program: self.def.name.clone(),
                    pc: Pc(0),
                    insn: String::new(),
                    reason: format!(
                        "map {} was verified as {} but its memory is {}",
                        map.name(),
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
        let blocks = created.iter().filter_map(|m| m.block().cloned()).collect();
        Ok(Verified {
            shared: self.obj.shared.clone(),
            name: self.def.name.clone(),
            context: self.context,
            prog: bound,
            blocks,
            outers,
            static_slots: Vec::new(),
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
    outers: Vec<usize>,
    /// Programs for the empty statically-initialised program-array slots this program
    /// reaches: (map index, key, program), filled when this one gets its engine.
    static_slots: Vec<(usize, u32, Verified)>,
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
    pub fn interpret(mut self) -> Program {
        for (map, slot, target) in std::mem::take(&mut self.static_slots) {
            let p = target.interpret();
            self.fill_static_slot(map, slot, &p);
        }
        self.finish(Code::Interp)
    }

    /// Puts `p` in slot `slot` of map `map` unless something got there first.
    fn fill_static_slot(&self, map: usize, slot: u32, p: &Program) {
        // Verification created every map the program names, this one included.
        let Some(m) = self.shared.maps[map].created() else {
            return;
        };
        if m.slot(u64::from(slot)).is_err() {
            // In range (the loader checked the key against max_entries) and a program of
            // this object: it cannot fail.
            let _ = m.set_slot(slot, Some(p.linked.clone()));
        }
    }

    /// Compiles it to x86-64 code; accesses the verifier proved in bounds lose their guards
    /// (it never proves a store into a read-only map, so those keep the guard that refuses them).
    pub fn compile(self) -> Result<Program, Error> {
        self.compile_with(&bpfx_jit::JitOptions::default())
    }

    /// Compiles it with options (for example the instruction budget, or dual-mapped code
    /// memory: `bpfx_jit::CodeMemory`).
    ///
    /// The code is charged to the [`Vm`]'s memory limit: an estimate before compiling
    /// ([`jit_code_estimate`]), then its real size in whole pages ([`Error::MemoryLimit`] if
    /// even the estimate does not fit, or the real size turns out larger and does not).
    pub fn compile_with(mut self, opts: &bpfx_jit::JitOptions) -> Result<Program, Error> {
        for (map, slot, target) in std::mem::take(&mut self.static_slots) {
            let p = target.compile_with(opts)?;
            self.fill_static_slot(map, slot, &p);
        }
        let what = || format!("program `{}`: JIT code", self.name);
        let estimate = jit_code_estimate(self.prog.program().len());
        let mut charge = self.shared.pool.charge(what, estimate)?;
        let jit = bpfx_jit::compile(&self.prog, opts).map_err(|source| Error::Jit {
            program: self.name.clone(),
            source,
        })?;
        let real = (jit.code_len() as u64).next_multiple_of(PAGE_BYTES);
        if real > estimate {
            charge = self.shared.pool.charge(what, real)?;
        } else {
            charge.shrink_to(real);
        }
        Ok(self.finish_with(Code::Jit(Box::new(jit)), Some(charge)))
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
        self.finish_with(code, None)
    }

    fn finish_with(self, code: Code, charge: Option<Charge>) -> Program {
        let linked = Arc::new(Linked {
            object_id: self.shared.id,
            name: self.name,
            context: self.context,
            prog: self.prog,
            code,
            blocks: self.blocks,
            outers: self.outers,
            _charge: charge,
        });
        Program::new(linked, self.shared)
    }
}

/// Page size the JIT's code memory comes in, in bytes.
const PAGE_BYTES: u64 = 4096;

/// What JIT code is charged before it exists, in bytes, for a program of `slots` instruction
/// slots: each instruction's worst case hot and cold code ([`bpfx_jit::MAX_INSN_BYTES`],
/// [`bpfx_jit::MAX_COLD_BYTES`]) plus a page for the prologue, epilogue and trap stubs. An
/// estimate, not a bound (versioned loops are emitted twice): the real size is charged once
/// known.
pub fn jit_code_estimate(slots: usize) -> u64 {
    let per_insn = (bpfx_jit::MAX_INSN_BYTES + bpfx_jit::MAX_COLD_BYTES) as u64;
    (slots as u64)
        .saturating_mul(per_insn)
        .saturating_add(PAGE_BYTES)
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
    /// The shared memory of the maps it names: exactly what the engines let it touch (with
    /// the blocks of the inner maps of `outers` at the start of each run).
    blocks: Vec<Arc<SharedMem>>,
    /// The indices of the maps of maps it names.
    outers: Vec<usize>,
    /// The memory limit's charge for the JIT code, given back with the code.
    _charge: Option<Charge>,
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
    /// Whether the run state holds inner maps of a previous snapshot (so a program naming no
    /// map of maps takes no lock to clear them).
    inner_live: bool,
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
        let packet = match linked.context {
            Context::Xdp => Some((0, 8)),
            Context::Tc | Context::Socket => Some((skb::SKB_DATA, skb::SKB_DATA_END)),
            Context::Struct(crate::StructLayout { packet, .. }) => packet,
            Context::Memory | Context::Unsupported(_) => None,
        };
        let run: RunCell = Arc::new(Mutex::new(RunState {
            packet,
            ..RunState::default()
        }));
        let cx = Arc::new(helpers::Cx {
            maps: shared.maps.clone(),
            hooks: shared.hooks.clone(),
            run: run.clone(),
            context: linked.context,
        });
        let mut h = helpers::standard(&cx);
        for c in &shared.custom {
            h.insert(c.id, Vec::new(), c.f.clone());
        }
        // Every helper, standard or the embedder's (Rust or C), gets the memory arguments its
        // signature sizes checked at each call, on both engines and in every mode.
        for (id, sig) in shared.sigs.iter() {
            h.set_mem_args(id, helpers::mem_args(sig, &cx));
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
            inner_live: false,
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

    /// Where the last run's last successful `bpf_redirect_map` sent the frame (`None` when it
    /// called none, or none found its key): what an `XDP_REDIRECT` verdict means. The target
    /// is recorded even if the program then returned another verdict, as the kernel keeps
    /// it.
    pub fn last_redirect(&self) -> Option<helpers::RedirectTarget> {
        helpers::lock(&self.run).redirect.clone()
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

    /// Runs a TC program (`sched_cls`/`sched_act`) on a packet, which it may rewrite in place
    /// (its length is fixed), with the socket buffer's metadata; returns its verdict. The
    /// fields a TC program may write (`mark`, `priority`, `tc_index`, `tc_classid`,
    /// `queue_mapping`, `cb`, `tstamp`) are written back into `meta` after the run, even when
    /// the run traps (as far as the program got), with the kernel's widths ([`SkbMeta`]).
    pub fn run_tc(&mut self, packet: &mut [u8], meta: &mut SkbMeta) -> Result<TcAction, Error> {
        self.expect(Context::Tc)?;
        let mut buf = self.skb_buf(packet, meta, false);
        let res = self.exec(&mut buf);
        packet.copy_from_slice(&buf[SKB_CTX_SIZE..]);
        skb::read_back_tc(&buf, meta);
        self.buf = buf;
        res.map(TcAction::from_code)
    }

    /// Runs a socket filter on a packet with the socket buffer's metadata (its `cb` starts
    /// zeroed and what the filter writes there is dropped, as in the kernel); returns how
    /// many bytes of the packet the socket keeps.
    pub fn run_socket(&mut self, packet: &[u8], meta: &SkbMeta) -> Result<SocketVerdict, Error> {
        self.expect(Context::Socket)?;
        let mut buf = self.skb_buf(packet, meta, true);
        let res = self.exec(&mut buf);
        self.buf = buf;
        res.map(|r0| SocketVerdict::new(r0, packet.len()))
    }

    /// The run buffer `[socket-buffer struct | packet]`, filled.
    fn skb_buf(&mut self, packet: &[u8], meta: &SkbMeta, socket: bool) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(SKB_CTX_SIZE, 0);
        buf.extend_from_slice(packet);
        skb::fill_skb_ctx(&mut buf, meta, socket);
        buf
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
        // The layout was checked when the program was verified; the fields are public, so
        // this run checks it again, and then what it wrote into the struct.
        let filled = layout.check().and_then(|()| match layout.packet {
            Some((data, end)) => context::fill_packet_fields(&mut buf, size, data, end),
            None => Ok(()),
        });
        if let Err(source) = filled {
            self.buf = buf;
            return Err(Error::Layout {
                program: self.linked.name.clone(),
                source,
            });
        }
        let res = self.exec(&mut buf);
        ctx[..size].copy_from_slice(&buf[..size]);
        packet.copy_from_slice(&buf[size..]);
        self.buf = buf;
        res
    }

    /// Takes the entries of the maps of maps `cur` names, as they are now, for the run: the
    /// inner maps' handles index them, and their blocks join the memory the engines admit.
    fn snapshot_inner(&mut self, cur: &Linked) {
        if cur.outers.is_empty() && !self.inner_live {
            return;
        }
        let mut st = helpers::lock(&self.run);
        st.inner.clear();
        st.outers.clear();
        for &i in &cur.outers {
            let Some(slots) = self.shared.maps[i]
                .created()
                .and_then(|m| m.of_maps_snapshot())
            else {
                continue;
            };
            let base = st.inner.len();
            for m in &slots.maps {
                if let Some(b) = m.block() {
                    self.env.shared.push(b.clone());
                }
                st.inner.push(m.clone());
            }
            st.outers.push((i, base, slots));
        }
        self.inner_live = !st.outers.is_empty();
    }

    /// One run, following tail calls.
    fn exec(&mut self, input: &mut [u8]) -> Result<u64, Error> {
        {
            let mut st = helpers::lock(&self.run);
            st.tail_calls = 0;
            st.redirect = None;
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
            self.snapshot_inner(&cur);
            let r = match &cur.code {
                Code::Interp => bpfx_interp::run_to_end(&cur.prog, input, &mut self.env),
                Code::Jit(j) => j.run_to_end(input, &mut self.env),
            };
            let trap = match r {
                Ok(End::Return(r0)) => break Ok(r0),
                Ok(End::TailCall { pc, target }) => match target.0.downcast::<Linked>() {
                    Ok(next) if next.context != cur.context => {
                        break Err(Error::WrongContext {
                            program: next.name.clone(),
                            expected: next.context.name(),
                            got: cur.context.name(),
                        });
                    }
                    Ok(next) => {
                        cur = next;
                        continue;
                    }
                    // Only `tail_call` names programs; an embedder's helper cannot.
                    Err(_) => {
                        self.env.helper_error = Some(HelperError(
                            "a tail call to something that is not a program".into(),
                        ));
                        Trap {
                            kind: TrapKind::Unsupported,
                            pc,
                        }
                    }
                },
                Err(trap) => trap,
            };
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
        };
        // Records reserved and never submitted would block the ring forever: the kernel's
        // verifier forbids that, bpfx discards them when the run ends.
        let left = {
            let mut st = helpers::lock(&self.run);
            // The run's hold on inner maps ends with it.
            st.inner.clear();
            st.outers.clear();
            std::mem::take(&mut st.reserved)
        };
        for (i, addr) in left {
            if let Some(m) = self.shared.maps[i].created() {
                m.ring_commit(addr, true);
            }
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
        let owner = prog
            .shared
            .maps
            .iter()
            .filter_map(ObjectMap::created)
            .any(|m| std::ptr::eq(&**m, self));
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
