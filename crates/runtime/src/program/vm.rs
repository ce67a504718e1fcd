//! The [`Vm`]: the configuration every object it opens shares, and the builder that sets it.

use super::{ConfigError, Engine, Object, ProgramDef, Shared, VmConfig};
use crate::error::Error;
use crate::fib::{FibAnswer, FibRequest, FibTable};
use crate::helpers::{self, CustomHelper, Hooks};
use crate::map::MapSpec;
use crate::maps::MapConfig;
use crate::memory::{DEFAULT_MEM_LIMIT, Pool};
use crate::object_map::ObjectMap;
use crate::task::Task;
use bpfx_exec::{Budget, GuestMemory, HelperError, HelperRet};
use bpfx_jit::JitOptions;
use bpfx_verifier::{HelperSig, Mode};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Configuration shared by every object it opens: embedder helpers, the hooks behind the
/// clock, random-number and CPU-id helpers, the `trace_printk` sink, the memory limit
/// ([`Vm::mem_limit`]), and how its programs are prepared ([`VmConfig`]: the engine, the
/// verifier mode, the instruction budget and the JIT options, set once here and used by
/// [`ProgramRef::load`](crate::ProgramRef::load)).
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
    pub(super) kconfig: BTreeMap<String, String>,
    pub(super) max_entries: BTreeMap<String, u32>,
    pub(super) inner_maps: BTreeMap<String, MapSpec>,
    perf_buffer_size: Option<u32>,
    config: VmConfig,
}

impl Default for Vm {
    fn default() -> Vm {
        Vm {
            hooks: Hooks::default(),
            custom: Vec::new(),
            pool: Pool::new(DEFAULT_MEM_LIMIT),
            kconfig: BTreeMap::new(),
            max_entries: BTreeMap::new(),
            inner_maps: BTreeMap::new(),
            perf_buffer_size: None,
            config: VmConfig::default(),
        }
    }
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.custom.iter().map(|c| c.id).collect();
        f.debug_struct("Vm")
            .field("custom_helpers", &ids)
            .field("mem_limit", &self.pool.limit())
            .field("config", &self.config)
            .finish()
    }
}

impl Vm {
    /// Standard helpers only, real clock, random seed, stderr for `trace_printk`, a memory
    /// limit of [`crate::DEFAULT_MEM_LIMIT`].
    pub fn new() -> Vm {
        Vm::default()
    }

    /// The engine [`ProgramRef::load`](crate::ProgramRef::load) prepares programs for (default
    /// [`Engine::Jit`]). Refused with [`ConfigError::JitOptionsForInterpreter`] for the
    /// interpreter once JIT options are set.
    ///
    /// ```
    /// use bpfx::{ConfigError, Engine, JitOptions, Vm};
    /// let vm = Vm::new().engine(Engine::Interpreter)?;
    /// assert!(matches!(
    ///     vm.jit_options(JitOptions::hardened()),
    ///     Err(ConfigError::JitOptionsForInterpreter { .. })
    /// ));
    /// # Ok::<(), bpfx::Error>(())
    /// ```
    pub fn engine(mut self, engine: Engine) -> Result<Vm, ConfigError> {
        self.config.set_engine(engine)?;
        Ok(self)
    }

    /// The verifier mode [`ProgramRef::load`](crate::ProgramRef::load) verifies with (default
    /// [`Mode::Checked`]).
    pub fn mode(mut self, mode: Mode) -> Vm {
        self.config.set_mode(mode);
        self
    }

    /// The instruction budget every program prepared from this `Vm` starts with (default
    /// [`Budget::Default`]; `Some(n)` is [`Budget::Limit`]), as
    /// [`Program::set_budget`](crate::Program::set_budget) describes. The JIT's code follows
    /// it: a limit compiles the budget charge in whatever the JIT options say, so the limit
    /// never meets code that cannot count it; [`Budget::Unlimited`] leaves the charge out
    /// ([`JitOptions::unbounded`]). Refused with [`ConfigError::UnboundedWithBudget`] when
    /// the JIT options set [`JitOptions::unbounded`] and the budget is not unlimited.
    ///
    /// ```
    /// use bpfx::{Budget, Context, ProgramDef, RunError, TrapKind, Vm};
    /// let vm = Vm::new().budget(Budget::Limit(100))?;
    /// // A loop that never ends (r0 is never 1).
    /// let code = bpfx::bytecode::assemble("mov r0, 0\njeq r0, 1, +1\nja -2\nexit").unwrap();
    /// let def = ProgramDef::new("spin", "test", bpfx::Bytecode::decode(code).unwrap());
    /// let obj = vm.object(vec![def], vec![])?;
    /// let mut prog = obj.program("spin")?.context(Context::Memory).load()?;
    /// let Err(RunError::Trap { trap, .. }) = prog.run(&mut []) else { panic!() };
    /// assert_eq!(trap.kind, TrapKind::BudgetExhausted);
    /// # Ok::<(), bpfx::Error>(())
    /// ```
    pub fn budget(mut self, budget: impl Into<Budget>) -> Result<Vm, ConfigError> {
        self.config.set_budget(budget.into())?;
        Ok(self)
    }

    /// The JIT options code is compiled with (default [`JitOptions::default`]): by
    /// [`ProgramRef::load`](crate::ProgramRef::load) and
    /// [`Verified::compile`](crate::Verified::compile). Refused with
    /// [`ConfigError::JitOptionsForInterpreter`] when the engine is the interpreter, and with
    /// [`ConfigError::UnboundedWithBudget`] for [`JitOptions::unbounded`] unless the budget is
    /// [`Budget::Unlimited`]. The budget charge need not be asked for: it follows
    /// [`Vm::budget`].
    ///
    /// ```
    /// use bpfx::{Budget, Engine, JitOptions, Mode, Vm};
    /// let vm = Vm::new()
    ///     .engine(Engine::Jit)?
    ///     .mode(Mode::Checked)
    ///     .budget(Budget::Limit(1_000_000))?
    ///     .jit_options(JitOptions::hardened())?;
    /// // Hardened code with the budget charge the limit needs.
    /// let opts = vm.config().jit_options();
    /// assert!(opts.blinding && opts.spectre && opts.budget);
    /// # Ok::<(), bpfx::Error>(())
    /// ```
    pub fn jit_options(mut self, opts: JitOptions) -> Result<Vm, ConfigError> {
        self.config.set_jit_options(opts)?;
        Ok(self)
    }

    /// The engine, mode, budget and JIT options set on this `Vm`.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// Limits the memory of everything opened from this `Vm` (and its clones) to `bytes`
    /// together: the storage of every map, host-side structures included
    /// ([`crate::MapSpecExt::memory_bytes`]), global data, and JIT code. Each is charged when it is
    /// created, before anything is allocated, and refused with [`Error::MemoryLimit`] when it
    /// does not fit; the bytes come back when the map or the code holding them is dropped.
    /// Hash-family maps are charged their fixed part at creation and then a chunk of slots at
    /// a time as entries are first inserted: an insert past the limit fails with `ENOMEM`
    /// ([`crate::MapError::NoMemory`]; an LRU map evicts instead). Objects opened before keep
    /// the limit they were opened with.
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

    /// Seeds `get_prandom_u32`: each CPU slot (see [`Vm::cpu_id`]) draws from its own
    /// sequence, derived from the seed and the CPU's index, so the same seed gives the same
    /// numbers on each CPU whatever the interleaving of programs running on other CPUs.
    pub fn seed(mut self, seed: u64) -> Vm {
        self.hooks.prng = Arc::new(crate::helpers::Prng::new(seed));
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

    /// The source of `jiffies64` (default: the [`Vm::clock`] nanoseconds in ticks of
    /// [`crate::HZ`]).
    pub fn jiffies(mut self, f: impl Fn() -> u64 + Send + Sync + 'static) -> Vm {
        self.hooks.jiffies = Some(Arc::new(f));
        self
    }

    /// The source of `ktime_get_boot_ns` (default: the [`Vm::clock`], as a process that never
    /// sees the host suspend would find the two equal).
    pub fn boot_clock(mut self, f: impl Fn() -> u64 + Send + Sync + 'static) -> Vm {
        self.hooks.boot_clock = Some(Arc::new(f));
        self
    }

    /// The source of `ktime_get_coarse_ns` (default: the [`Vm::clock`] rounded down to the
    /// last tick of [`crate::HZ`], the coarse clock's resolution).
    pub fn coarse_clock(mut self, f: impl Fn() -> u64 + Send + Sync + 'static) -> Vm {
        self.hooks.coarse_clock = Some(Arc::new(f));
        self
    }

    /// The source of `ktime_get_tai_ns` (default: the host's wall clock, in nanoseconds since
    /// 1970).
    pub fn tai_clock(mut self, f: impl Fn() -> u64 + Send + Sync + 'static) -> Vm {
        self.hooks.tai_clock = Some(Arc::new(f));
        self
    }

    /// The task `get_current_pid_tgid`, `get_current_uid_gid` and `get_current_comm` describe,
    /// asked at each call (default: [`Task::default`], the kernel's idle task: ids 0,
    /// `swapper/0`).
    pub fn current_task(mut self, f: impl Fn() -> Task + Send + Sync + 'static) -> Vm {
        self.hooks.task = Arc::new(f);
        self
    }

    /// Lends `bytes` at guest address `addr` to `probe_read_kernel` and
    /// `probe_read_kernel_str`: the only memory they read (a later range covering the same
    /// address wins; one read must lie wholly inside one range). Anything else they are asked
    /// for is `-EFAULT`, never the host's memory.
    pub fn lend_kernel(mut self, addr: u64, bytes: impl Into<Arc<[u8]>>) -> Vm {
        Arc::make_mut(&mut self.hooks.lent_kernel).push(addr, bytes.into());
        self
    }

    /// [`Vm::lend_kernel`] for `probe_read_user` and `probe_read_user_str`.
    pub fn lend_user(mut self, addr: u64, bytes: impl Into<Arc<[u8]>>) -> Vm {
        Arc::make_mut(&mut self.hooks.lent_user).push(addr, bytes.into());
        self
    }

    /// The forwarding table `fib_lookup` asks (default: none, every lookup is
    /// `BPF_FIB_LKUP_RET_NOT_FWDED`): `f` gets the program's request and answers with a route
    /// or the reason not to forward; the helper applies the kernel's flags, MTU check and
    /// error codes around the answer (see [`crate::FibRequest`]).
    pub fn fib(mut self, f: impl Fn(&FibRequest) -> FibAnswer + Send + Sync + 'static) -> Vm {
        self.hooks.fib = Some(Arc::new(f));
        self
    }

    /// The sockets the socket lookups of its TC and XDP programs find (`sk_lookup_tcp`,
    /// `sk_lookup_udp`, `skc_lookup_tcp`), and which TC and cgroup skb programs see as their
    /// packet's socket ([`crate::Program::set_packet_socket`]); default: none, every lookup
    /// gives NULL. Fixed for the programs it loads from then on (each is lent every socket's
    /// struct).
    pub fn sockets(mut self, table: crate::SocketTable) -> Vm {
        self.hooks.sockets = Some(Arc::new(table));
        self
    }

    /// [`Vm::fib`] answered by `table` (longest-prefix match).
    pub fn fib_table(self, table: FibTable) -> Vm {
        self.fib(move |req| table.lookup(req))
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

    /// Gives the map `name` of the objects opened from now on `max_entries` entries instead of
    /// what the object declares, as libbpf's `bpf_map__set_max_entries` does between opening
    /// an object and loading it. Loaders commonly size their maps at load time: an object may
    /// declare a hash of 16,777,216 flows that its agent shrinks from its configuration, and
    /// that would otherwise not fit the memory limit ([`crate::Vm::mem_limit`]). The new size
    /// is checked as a declared one is (a ring buffer's must be a power of two, and so on).
    ///
    /// ```
    /// use bpfx::Vm;
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/counter.o");
    /// let obj = Vm::new().max_entries("counters", 4).open(path)?;
    /// assert_eq!(obj.maps().find(|m| m.name() == "counters").unwrap().max_entries(), 4);
    /// # Ok::<(), bpfx::Error>(())
    /// ```
    pub fn max_entries(mut self, name: impl Into<String>, max_entries: u32) -> Vm {
        self.max_entries.insert(name.into(), max_entries);
        self
    }

    /// Gives the map of maps `outer` of the objects opened from now on the inner map template
    /// `template`, as libbpf's `bpf_map__set_inner_map_fd` does between opening an object and
    /// loading it. A map of maps declared the legacy way (`struct bpf_map_def` in `maps`) has
    /// no template in the object: its loader gives the kernel one at creation (an inner map
    /// it created first, often of another object), and without one the kernel refuses the
    /// map. The inner maps it holds must match the template, and the verifier types lookups
    /// through it by the template. A map that declares its own template (a BTF definition's
    /// `values` or `__array`, iproute2's `inner_idx`) keeps it, as libbpf refuses to set
    /// another; so does a map that is not a map of maps.
    ///
    /// ```
    /// use bpfx::{MapKind, MapSpec, Vm};
    /// let vm = Vm::new().inner_map("flows_ref", MapSpec::new("flows", MapKind::Hash, 8, 16, 1024));
    /// # let _ = vm;
    /// ```
    pub fn inner_map(mut self, outer: impl Into<String>, template: MapSpec) -> Vm {
        self.inner_maps.insert(outer.into(), template);
        self
    }

    /// Opens an ELF object file (its maps are created when a program is prepared to run, see
    /// [`ProgramRef::verify`](crate::ProgramRef::verify)).
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

    pub(super) fn build(&self, programs: Vec<ProgramDef>, maps: Vec<ObjectMap>) -> Object {
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
                config: self.config.clone(),
            }),
            programs,
            license: None,
            prog_inits: Vec::new(),
            globals: Vec::new(),
            map_layouts: Vec::new(),
        }
    }
}
