//! The standard helpers, by kernel id, with their verifier signatures; the hooks that make the
//! clock, the random numbers, the CPU id (and so the per-CPU map slot a program uses) and
//! `trace_printk`'s output replaceable; and the
//! per-run state through which `tail_call` and the ring-buffer helpers talk to the runtime.
//!
//! Every helper reads and writes guest memory only through the [`GuestMemory`] it receives, so
//! a helper behaves the same under both engines; before any helper runs, the checked dispatch
//! has checked each memory argument its signature sizes ([`mem_args`]).

use crate::context::Context;
use crate::map::{Map, MapKind};
use crate::maps::of_maps::Slots;
use crate::object_map::ObjectMap;
use crate::task::{Lent, Task};
use bpfx_exec::{
    ArgLen, CallbackIter, CallbackStep, Callbacks, GuestMemory, HelperError, HelperRet, Helpers,
    MemArg, TailCall,
};
use bpfx_verifier::{ArgKind, CallbackKind, HelperSig, HelperTable, RetKind, SockKind, SockRet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// `bpf_map_lookup_elem`.
pub const MAP_LOOKUP_ELEM: u32 = 1;
/// `bpf_map_update_elem`.
pub const MAP_UPDATE_ELEM: u32 = 2;
/// `bpf_map_delete_elem`.
pub const MAP_DELETE_ELEM: u32 = 3;
/// `bpf_ktime_get_ns`.
pub const KTIME_GET_NS: u32 = 5;
/// `bpf_trace_printk`.
pub const TRACE_PRINTK: u32 = 6;
/// `bpf_trace_vprintk`.
pub const TRACE_VPRINTK: u32 = 177;
/// `bpf_get_prandom_u32`.
pub const GET_PRANDOM_U32: u32 = 7;
/// `bpf_get_smp_processor_id`.
pub const GET_SMP_PROCESSOR_ID: u32 = 8;
/// `bpf_tail_call`.
pub const TAIL_CALL: u32 = 12;
/// `bpf_map_push_elem`.
pub const MAP_PUSH_ELEM: u32 = 87;
/// `bpf_map_pop_elem`.
pub const MAP_POP_ELEM: u32 = 88;
/// `bpf_map_peek_elem`.
pub const MAP_PEEK_ELEM: u32 = 89;
/// `bpf_perf_event_output`.
pub const PERF_EVENT_OUTPUT: u32 = 25;
/// `bpf_redirect_map`.
pub const REDIRECT_MAP: u32 = 51;
/// `bpf_map_lookup_percpu_elem`.
pub const MAP_LOOKUP_PERCPU_ELEM: u32 = 195;
/// `bpf_sk_redirect_map`.
pub(crate) const SK_REDIRECT_MAP: u32 = 52;
/// `bpf_sk_redirect_hash`.
pub(crate) const SK_REDIRECT_HASH: u32 = 72;
/// `BPF_F_INGRESS`: redirect to the target's receive side.
const BPF_F_INGRESS: u64 = 1;
/// `SK_DROP` and `SK_PASS`, the verdicts of sk_skb programs and the socket redirects.
const SK_DROP: u64 = 0;
const SK_PASS: u64 = 1;
/// `bpf_for_each_map_elem`.
pub(crate) const FOR_EACH_MAP_ELEM: u32 = 164;
/// `bpf_loop`.
pub(crate) const LOOP: u32 = 181;
/// `BPF_MAX_LOOPS`: the most iterations `bpf_loop` runs; a larger `nr_loops` fails with
/// `-E2BIG`.
pub(crate) const BPF_MAX_LOOPS: u64 = 1 << 23;
/// `bpf_ringbuf_output`.
pub const RINGBUF_OUTPUT: u32 = 130;
/// `bpf_ringbuf_reserve`.
pub const RINGBUF_RESERVE: u32 = 131;
/// `bpf_ringbuf_submit`.
pub const RINGBUF_SUBMIT: u32 = 132;
/// `bpf_ringbuf_discard`.
pub const RINGBUF_DISCARD: u32 = 133;

/// `BPF_F_BROADCAST`: `bpf_redirect_map` to every entry of a device map.
pub const BPF_F_BROADCAST: u64 = 1 << 3;
/// `BPF_F_EXCLUDE_INGRESS`: with [`BPF_F_BROADCAST`], all but the ingress device.
pub const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// The action bits of `bpf_redirect_map`'s flags: what it returns when the key holds no
/// entry (`XDP_ABORTED` … `XDP_TX`).
const ACTION_MASK: u64 = 3;
/// `XDP_REDIRECT`.
const XDP_REDIRECT: u64 = 4;

/// Where the last `bpf_redirect_map` or `bpf_redirect` of a run sent the frame
/// ([`crate::Program::last_redirect`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RedirectTarget {
    /// The entry at `key` of map `map` (a device, CPU or XSK map).
    Map {
        /// The map's name.
        map: String,
        /// Its kind.
        kind: MapKind,
        /// The key.
        key: u32,
    },
    /// Every entry of device map `map` (`BPF_F_BROADCAST`), but the ingress device's with
    /// `exclude_ingress` (`BPF_F_EXCLUDE_INGRESS`).
    Broadcast {
        /// The map's name.
        map: String,
        /// Its kind.
        kind: MapKind,
        /// Whether the ingress device is left out.
        exclude_ingress: bool,
    },
    /// The socket at `key` of socket map or socket hash `map` (`bpf_sk_redirect_map`,
    /// `bpf_sk_redirect_hash`), to its receive queue with `BPF_F_INGRESS` (`ingress`), else
    /// out through it.
    Socket {
        /// The map's name.
        map: String,
        /// Its kind.
        kind: MapKind,
        /// The key's bytes (a socket map's: its 4-byte little-endian index).
        key: Vec<u8>,
        /// Whether to the socket's ingress.
        ingress: bool,
    },
    /// The device with this ifindex (`bpf_redirect`), at its ingress with `BPF_F_INGRESS`
    /// (TC only) or else its egress.
    Ifindex {
        /// The target device.
        ifindex: u32,
        /// Whether to its ingress.
        ingress: bool,
    },
    /// The peer of the device with this ifindex (`bpf_redirect_peer`, TC only): the other end
    /// of a veth or netkit pair, at its ingress, in the peer's network namespace.
    Peer {
        /// The device whose peer receives the packet.
        ifindex: u32,
    },
}

/// The kernel's limit on chained tail calls (`MAX_TAIL_CALL_CNT`).
pub const MAX_TAIL_CALLS: u32 = 33;

/// High 32 bits of a map handle: what `lddw map_idx(i)` loads once bound is `TAG | i`. The tag
/// is not a plausible user-space address, so a handle is never mistaken for a pointer.
pub(crate) const MAP_HANDLE_TAG: u64 = 0xbf4d_a900 << 32;

const EINVAL: i64 = 22;
const EFAULT: i64 = 14;

/// `BPF_F_CTXLEN_MASK`: how many packet bytes `perf_event_output` appends (XDP and packet
/// contexts).
pub const BPF_F_CTXLEN_MASK: u64 = 0xf_ffff << 32;

/// The handle of map `idx`.
pub(crate) fn map_handle(idx: usize) -> u64 {
    MAP_HANDLE_TAG | idx as u64
}

/// Set in the low 32 bits of the handle of an inner map (of a map of maps): the rest is the
/// inner map's position in the run's [`RunState::inner`].
pub(crate) const INNER_HANDLE_BIT: u64 = 0x8000_0000;

/// A clock in nanoseconds.
pub(crate) type ClockFn = Arc<dyn Fn() -> u64 + Send + Sync>;
/// A CPU-id source.
pub(crate) type CpuFn = Arc<dyn Fn() -> u32 + Send + Sync>;
/// Where `trace_printk` lines go.
pub(crate) type TraceFn = Arc<dyn Fn(&str) + Send + Sync>;
/// The current task's source.
pub(crate) type TaskFn = Arc<dyn Fn() -> Task + Send + Sync>;

/// The replaceable sources of the time-, randomness- and CPU-dependent helpers, and the
/// `trace_printk` sink.
#[derive(Clone)]
pub(crate) struct Hooks {
    pub(crate) clock: ClockFn,
    pub(crate) prng: Arc<Prng>,
    pub(crate) cpu: CpuFn,
    /// The number of CPUs: the CPU a program runs on is `cpu() % cpus`.
    pub(crate) cpus: u32,
    pub(crate) trace: TraceFn,
    /// `jiffies64`'s source; `None`: the clock's nanoseconds in ticks of [`crate::task::HZ`].
    pub(crate) jiffies: Option<ClockFn>,
    /// `ktime_get_boot_ns`'s source; `None`: the clock.
    pub(crate) boot_clock: Option<ClockFn>,
    /// `ktime_get_coarse_ns`'s source; `None`: the clock rounded down to a tick.
    pub(crate) coarse_clock: Option<ClockFn>,
    /// `ktime_get_tai_ns`'s source; `None`: the host's wall clock.
    pub(crate) tai_clock: Option<ClockFn>,
    /// The task the `get_current_*` helpers describe.
    pub(crate) task: TaskFn,
    /// The memory `probe_read_kernel` (and `_str`) may read.
    pub(crate) lent_kernel: Arc<Lent>,
    /// The memory `probe_read_user` (and `_str`) may read.
    pub(crate) lent_user: Arc<Lent>,
    /// The forwarding table `fib_lookup` asks; `None`: nothing is forwarded.
    pub(crate) fib: Option<crate::fib::FibFn>,
    /// The sockets socket lookups find; `None`: none.
    pub(crate) sockets: Option<Arc<crate::sock_table::SocketTable>>,
}

impl Hooks {
    /// The CPU the calling thread's program runs on: what `get_smp_processor_id` returns and
    /// the per-CPU slot its map accesses use.
    pub(crate) fn cpu_now(&self) -> u32 {
        // Below `u32::MAX` (so never `NO_CPU`).
        (self.cpu)() % self.cpus.clamp(1, u32::MAX - 1)
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            clock: Arc::new(monotonic_ns),
            prng: Arc::new(Prng::new(random_seed())),
            cpu: Arc::new(thread_cpu),
            cpus: crate::maps::default_cpus(),
            trace: Arc::new(|s| eprint!("{s}")),
            jiffies: None,
            boot_clock: None,
            coarse_clock: None,
            tai_clock: None,
            task: Arc::new(Task::default),
            lent_kernel: Arc::default(),
            lent_user: Arc::default(),
            fib: None,
            sockets: None,
        }
    }
}

/// Nanoseconds since the first call in this process, from the monotonic clock: like the
/// kernel's `ktime_get_ns` (monotonic, unaffected by wall-clock changes) with a process-local
/// epoch instead of boot.
fn monotonic_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(monotonic_ns())
}

/// A stable small id per host thread, in the order threads first ask (the caller takes it
/// modulo the number of CPUs): a program sees the same "CPU" for a whole run, and threads
/// running at once mostly see different ones, which is what per-CPU maps need. (The real CPU
/// number is not available without system calls per invocation.)
fn thread_cpu() -> u32 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static ID: usize = NEXT.fetch_add(1, Ordering::Relaxed));
    ID.with(|id| (id % (u32::MAX as usize + 1)) as u32)
}

/// `get_prandom_u32`'s generator: one splitmix64 stream per CPU slot, as the kernel's
/// prandom state is per CPU. CPU 0 starts from the seed itself and CPU k > 0 from a mix of
/// the seed and k, so the numbers a program draws depend only on the seed, the CPU it runs on
/// and the order of its own calls there, not on how threads on other CPUs interleave.
pub(crate) struct Prng {
    seed: u64,
    /// One state per CPU slot, made on the first draw (when the number of CPUs is final).
    states: OnceLock<Box<[AtomicU64]>>,
}

impl Prng {
    pub(crate) fn new(seed: u64) -> Prng {
        Prng {
            seed,
            states: OnceLock::new(),
        }
    }

    /// The seed the streams start from (the VM's `prng_seed`, or a random one).
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The first state of CPU `cpu`'s stream.
    fn start(seed: u64, cpu: u32) -> u64 {
        if cpu == 0 {
            seed
        } else {
            mix64(seed ^ u64::from(cpu).wrapping_mul(0xd1b5_4a32_d192_ed03))
        }
    }

    /// The next number of the stream of CPU `cpu` (of `cpus`; `cpu < cpus`).
    pub(crate) fn next(&self, cpu: u32, cpus: u32) -> u32 {
        let states = self.states.get_or_init(|| {
            (0..cpus.max(1))
                .map(|c| AtomicU64::new(Prng::start(self.seed, c)))
                .collect()
        });
        match states.get(cpu as usize) {
            Some(state) => next_random(state),
            // Unreachable (cpu < cpus and cpus is fixed per `Vm`), but never panic: fall
            // back to the last slot rather than index out of range.
            None => next_random(&states[states.len() - 1]),
        }
    }
}

/// splitmix64's output function.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step of splitmix64 on a shared state: deterministic for a given seed and call order.
pub(crate) fn next_random(state: &AtomicU64) -> u32 {
    let prev = state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    mix64(prev.wrapping_add(0x9e37_79b9_7f4a_7c15)) as u32
}

/// State of one run (and the tail calls it chains): owned by the program instance (in its
/// [`bpfx_exec::Env::host`]) and lent by the engines to each helper call of the run
/// ([`run_state`]); a program instance runs on one thread at a time, so nothing here is
/// shared or locked.
#[derive(Default)]
pub(crate) struct RunState {
    /// Tail calls taken so far in this run.
    pub(crate) tail_calls: u32,
    /// Ring-buffer records reserved and not yet submitted: (map index, address).
    pub(crate) reserved: Vec<(usize, u64)>,
    /// The offsets of the context's 64-bit `data` and `data_end` fields, when the program's
    /// context carries a packet (`perf_event_output` may append packet bytes).
    pub(crate) packet: Option<(u16, u16)>,
    /// The inner maps of the maps of maps the running program names, as they were when it
    /// started: an inner map's handle is `MAP_HANDLE_TAG | INNER_HANDLE_BIT | position`.
    pub(crate) inner: Vec<Arc<Map>>,
    /// For each map of maps the running program names: (its index, the position of its
    /// first inner map in `inner`, its entries when the program started).
    pub(crate) outers: Vec<(usize, usize, Arc<Slots>)>,
    /// What the run's last successful `bpf_redirect_map` or `bpf_redirect` chose.
    pub(crate) redirect: Option<RedirectTarget>,
    /// Where the frame of the running XDP program is (the adjust helpers move it).
    pub(crate) frame: crate::xdp_helpers::XdpFrame,
    /// The socket buffer's `hash` as a helper set it this run (`set_hash`, `get_hash_recalc`,
    /// `skb_store_bytes` with `BPF_F_INVALIDATE_HASH`): the field is host-owned (programs may
    /// not write it), so this, not the caller's value, is what restoring the context keeps.
    pub(crate) skb_hash: Option<u32>,
    /// The socket buffer's `pkt_type` as `skb_change_type` set it this run (host-owned, as
    /// `skb_hash`).
    pub(crate) skb_pkt_type: Option<u32>,
    /// The packet's tunnel key (`skb_get_tunnel_key`/`skb_set_tunnel_key`): the caller's
    /// [`crate::SkbMeta::tunnel`] as the TC run begins, the program's as it ends.
    pub(crate) tunnel: Option<crate::tunnel::TunnelKey>,
    /// Where the packet of the running TC program is, and the host-owned fields the
    /// resizing helpers change.
    pub(crate) tc: crate::skb_packet::TcFrame,
    /// The copies `clone_redirect` sent this run.
    pub(crate) clones: Vec<crate::skb_packet::ClonedPacket>,
    /// What the tracing helpers read: the attachment, and a tracing run's arguments and
    /// return value.
    pub(crate) trace: crate::trace::TraceRun,
    /// What the socket helpers answer (cgroup and sock_ops programs), and what they changed.
    pub(crate) sock: crate::sock::SockRun,
    /// The message of the running sk_msg program, which its helpers move and resize.
    pub(crate) msg: crate::sk_msg_helpers::MsgRun,
    /// What `bpf_perf_prog_read_value` reads (perf event programs).
    pub(crate) perf_value: crate::perf_event::PerfEventValue,
    /// The sysctl a cgroup sysctl program's helpers serve.
    pub(crate) sysctl: crate::cgroup_sysctl::SysctlRun,
    /// The packet's socket, TC ingress, and what `sk_assign` chose (`sock_table.rs`).
    pub(crate) sockptr: crate::sock_table::SockPtrRun,
    /// The `bpf_spin_lock` the run holds (released when dropped).
    pub(crate) held_lock: Option<crate::spin_lock::HeldLock>,
    /// The running program (the last tail call's target), when it has timer callbacks:
    /// what `bpf_timer_set_callback` records a callback of ([`crate::timer`]).
    pub(crate) timer_prog: Option<Arc<crate::program::Linked>>,
    /// While a timer's callback runs: that timer (its map's id and its element's slot), so
    /// that cancelling it from its own callback is `-EDEADLK`.
    pub(crate) firing: Option<(u32, u32)>,
}

impl RunState {
    /// The run state of a program with this context, before its first run.
    pub(crate) fn new(context: Context) -> RunState {
        let packet = match context {
            Context::Xdp => Some((0, 8)),
            Context::Tc | Context::Socket => Some((crate::skb::SKB_DATA, crate::skb::SKB_DATA_END)),
            Context::Struct(crate::StructLayout { packet, .. }) => packet,
            Context::Memory
            | Context::Kprobe
            | Context::Tracepoint { .. }
            | Context::RawTracepoint { .. }
            | Context::Tracing { .. }
            | Context::SockAddr(_)
            | Context::Sock(_)
            | Context::SockOps
            | Context::PerfEvent
            // `perf_event_output` appends no message bytes: the kernel's sk_msg variant
            // (`bpf_event_output_data`) refuses a context length.
            | Context::SkMsg
            | Context::SkLookup
            | Context::CgroupDevice
            | Context::CgroupSockopt(_)
            | Context::CgroupSysctl
            | Context::Unsupported(_) => None,
            Context::CgroupSkb(_) | Context::SkSkb | Context::Lwt(_) => {
                Some((crate::skb::SKB_DATA, crate::skb::SKB_DATA_END))
            }
        };
        RunState {
            packet,
            ..RunState::default()
        }
    }
}

/// The run state of the running program: the engines lend it to every helper call
/// ([`GuestMemory::host`], the program's [`bpfx_exec::Env::host`]), so a helper reaches it
/// without a lock; a helper called outside a program's run (by an embedder's own dispatch)
/// fails.
pub(crate) fn run_state<'m>(mem: &'m mut GuestMemory<'_>) -> Result<&'m mut RunState, HelperError> {
    mem.host::<RunState>().ok_or_else(no_run_state)
}

/// [`run_state`], read-only.
pub(crate) fn run_state_ref<'m>(mem: &'m GuestMemory<'_>) -> Result<&'m RunState, HelperError> {
    mem.host_ref::<RunState>().ok_or_else(no_run_state)
}

fn no_run_state() -> HelperError {
    err("the helper was called outside a program's run (no run state)")
}

/// An embedder-defined helper: its id, signature and function.
#[derive(Clone)]
pub(crate) struct CustomHelper {
    pub(crate) id: u32,
    pub(crate) sig: HelperSig,
    pub(crate) f: bpfx_exec::HelperFn,
}

/// One helper as the kernel's `bpf_func_proto` describes it: its id, its signature (name,
/// argument and return kinds, which the verifier enforces at every call site) and its
/// implementation, together. [`TABLE`] lists every standard helper; adding a helper is adding
/// its entry there.
pub(crate) struct Proto {
    /// The kernel's id (`BPF_FUNC_*`).
    pub(crate) id: u32,
    /// The kernel's name, without `bpf_`.
    pub(crate) name: &'static str,
    /// What r1, r2, … hold (at most five).
    pub(crate) args: &'static [ArgKind],
    /// What it returns in r0.
    pub(crate) ret: RetKind,
    /// The implementation.
    pub(crate) func: Func,
    /// Whether it may move or resize the packet (the kernel's `changes_pkt_data`): the
    /// verifier then forgets every packet pointer the program holds.
    pub(crate) changes_packet: bool,
    /// The one map type its map argument takes ([`HelperSig::map_type`]), or 0 for any.
    pub(crate) map_type: u32,
    /// Whether it reads its map key and value arguments through its [`GuestMemory`] before
    /// changing anything, failing when it cannot: the dispatch then checks them only when it
    /// fails ([`bpfx_exec::Helpers::set_mem_args_after_failure`]).
    pub(crate) reads_args_first: bool,
}

/// A standard helper's implementation: a function of the program instance's [`Cx`], guest
/// memory (every memory argument its signature sizes already checked, [`mem_args`]) and r1–r5.
#[derive(Clone, Copy)]
pub(crate) enum Func {
    /// Gives r0 (every helper but one).
    Value(fn(&Cx, &mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError>),
    /// May end the program instead (`tail_call`).
    Ret(fn(&Cx, &mut GuestMemory<'_>, [u64; 5]) -> Result<HelperRet, HelperError>),
}

impl Proto {
    /// An entry of [`TABLE`] for a helper that gives r0.
    pub(crate) const fn new(
        id: u32,
        name: &'static str,
        args: &'static [ArgKind],
        ret: RetKind,
        func: fn(&Cx, &mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError>,
    ) -> Proto {
        Proto {
            id,
            name,
            args,
            ret,
            func: Func::Value(func),
            changes_packet: false,
            map_type: 0,
            reads_args_first: false,
        }
    }

    /// An entry of [`TABLE`] for a helper that may end the program.
    pub(crate) const fn ending(
        id: u32,
        name: &'static str,
        args: &'static [ArgKind],
        ret: RetKind,
        func: fn(&Cx, &mut GuestMemory<'_>, [u64; 5]) -> Result<HelperRet, HelperError>,
    ) -> Proto {
        Proto {
            id,
            name,
            args,
            ret,
            func: Func::Ret(func),
            changes_packet: false,
            map_type: 0,
            reads_args_first: false,
        }
    }

    /// This entry, for a helper that may move or resize the packet.
    pub(crate) const fn changing_packet(self) -> Proto {
        Proto {
            changes_packet: true,
            ..self
        }
    }

    /// This entry, for a helper that reads its map key and value arguments first
    /// ([`Proto::reads_args_first`]).
    pub(crate) const fn reading_args_first(self) -> Proto {
        Proto {
            reads_args_first: true,
            ..self
        }
    }

    /// This entry, for a helper whose map argument must be of kernel map type `map_type`.
    pub(crate) const fn taking_map_type(self, map_type: u32) -> Proto {
        Proto { map_type, ..self }
    }

    /// The signature the verifier checks calls against.
    pub(crate) fn sig(&self) -> HelperSig {
        let mut sig = HelperSig::new(self.name, self.args.to_vec(), self.ret);
        if self.changes_packet {
            sig = sig.changing_packet();
        }
        if self.map_type != 0 {
            sig = sig.taking_map_type(self.map_type);
        }
        sig
    }
}

/// What the helpers of one program instance work with.
pub(crate) struct Cx {
    /// The object's maps (what map handles index).
    pub(crate) maps: Arc<[ObjectMap]>,
    /// The clock, random-number, CPU-id and `trace_printk` hooks.
    pub(crate) hooks: Hooks,
    /// The program's context (the socket-buffer helpers refuse any other than TC and socket
    /// filters).
    pub(crate) context: Context,
    /// The CPU the current run is on ([`Hooks::cpu_now`] when it first asked), or
    /// [`NO_CPU`] until something asks: fixed for the run and its tail calls, as the kernel
    /// runs a program with migration disabled, so every helper and the JIT's inlined per-CPU
    /// lookups see one CPU.
    pub(crate) cpu: std::sync::atomic::AtomicU32,
}

/// [`Cx::cpu`] not asked yet this run (`Hooks::cpu_now` is below `u32::MAX`).
pub(crate) const NO_CPU: u32 = u32::MAX;

impl Cx {
    /// The CPU the current run is on, asked of the hook the first time in the run.
    pub(crate) fn cpu(&self) -> u32 {
        match self.cpu.load(Ordering::Relaxed) {
            NO_CPU => {
                let cpu = self.hooks.cpu_now();
                self.cpu.store(cpu, Ordering::Relaxed);
                cpu
            }
            cpu => cpu,
        }
    }
}

/// Every standard helper, by kernel id.
/// The socket lookups' arguments: the context, the tuple (read, of the size in r3), its
/// size, the namespace id and the flags.
const SOCK_LOOKUP_ARGS: &[ArgKind] = &[
    ArgKind::Ctx,
    ArgKind::PtrToReadOnlyMem { size_arg: Some(2) },
    ArgKind::Scalar,
    ArgKind::Scalar,
    ArgKind::Scalar,
];

pub(crate) const TABLE: &[Proto] = {
    use crate::sk_msg_helpers as msg;
    use crate::skb_helpers as skb;
    use crate::skb_packet as room;
    use crate::task;
    use crate::trace;
    use crate::xdp_helpers as xdp;
    use ArgKind::*;
    // A bloom filter's peek reads the value instead of writing it: `MapValueOut` admits both
    // (the helper checks the memory it reads or writes).
    const POP_PEEK: &[ArgKind] = &[MapHandle, MapValueOut];
    const CSUM_REPLACE: &[ArgKind] = &[Anything, Scalar, Scalar, Scalar, Scalar];
    // dst, size, unsafe_ptr: the helper writes `size` bytes at dst whatever it reads.
    const PROBE_READ: &[ArgKind] = &[PtrToMem { size_arg: Some(1) }, Scalar, Anything];
    &[
        Proto::new(
            MAP_LOOKUP_ELEM,
            "map_lookup_elem",
            &[MapHandle, MapKey],
            RetKind::MapValueOrNull,
            map_lookup_elem,
        )
        .reading_args_first(),
        Proto::new(
            MAP_UPDATE_ELEM,
            "map_update_elem",
            &[MapHandle, MapKey, MapValue, Scalar],
            RetKind::Scalar,
            map_update_elem,
        )
        .reading_args_first(),
        Proto::new(
            MAP_DELETE_ELEM,
            "map_delete_elem",
            &[MapHandle, MapKey],
            RetKind::Scalar,
            map_delete_elem,
        )
        .reading_args_first(),
        Proto::new(
            KTIME_GET_NS,
            "ktime_get_ns",
            &[],
            RetKind::Scalar,
            ktime_get_ns,
        ),
        Proto::new(
            TRACE_PRINTK,
            "trace_printk",
            // The kernel declares the format and its size only: r3–r5 are read as the format
            // asks, as raw values (a `%s` argument through guest memory, checked there), so
            // they need not be set.
            &[PtrToReadOnlyMem { size_arg: Some(1) }, Scalar],
            RetKind::Scalar,
            trace_printk,
        ),
        Proto::new(
            GET_PRANDOM_U32,
            "get_prandom_u32",
            &[],
            RetKind::Scalar,
            get_prandom_u32,
        ),
        Proto::new(
            GET_SMP_PROCESSOR_ID,
            "get_smp_processor_id",
            &[],
            RetKind::Scalar,
            get_smp_processor_id,
        ),
        Proto::ending(
            TAIL_CALL,
            "tail_call",
            &[Anything, ProgArray, Scalar],
            RetKind::Scalar,
            tail_call,
        ),
        Proto::new(
            PERF_EVENT_OUTPUT,
            "perf_event_output",
            &[
                Anything,
                MapHandle,
                Scalar,
                PtrToReadOnlyMem { size_arg: Some(4) },
                Scalar,
            ],
            RetKind::Scalar,
            perf_event_output,
        ),
        Proto::new(
            MAP_PUSH_ELEM,
            "map_push_elem",
            &[MapHandle, MapValue, Scalar],
            RetKind::Scalar,
            map_push_elem,
        )
        .reading_args_first(),
        Proto::new(
            MAP_POP_ELEM,
            "map_pop_elem",
            POP_PEEK,
            RetKind::Scalar,
            map_pop_elem,
        )
        .reading_args_first(),
        Proto::new(
            MAP_PEEK_ELEM,
            "map_peek_elem",
            POP_PEEK,
            RetKind::Scalar,
            map_peek_elem,
        )
        .reading_args_first(),
        Proto::new(
            REDIRECT_MAP,
            "redirect_map",
            &[MapHandle, Scalar, Scalar],
            RetKind::Scalar,
            redirect_map,
        ),
        // The kernel's ARG_PTR_TO_CTX, ARG_CONST_MAP_PTR (a socket map), ARG_ANYTHING,
        // ARG_ANYTHING.
        Proto::new(
            SK_REDIRECT_MAP,
            "sk_redirect_map",
            &[ArgKind::Ctx, MapHandle, Scalar, Scalar],
            RetKind::Scalar,
            |cx, mem, a| sk_redirect(cx, mem, a, false),
        )
        .taking_map_type(MapKind::SockMap.kernel_type()),
        // ARG_PTR_TO_MAP_KEY for the socket hash's key.
        Proto::new(
            SK_REDIRECT_HASH,
            "sk_redirect_hash",
            &[ArgKind::Ctx, MapHandle, MapKey, Scalar],
            RetKind::Scalar,
            |cx, mem, a| sk_redirect(cx, mem, a, true),
        )
        .taking_map_type(MapKind::SockHash.kernel_type())
        .reading_args_first(),
        // sock_ops': a socket into a socket map or hash (ARG_PTR_TO_CTX, ARG_CONST_MAP_PTR,
        // ARG_PTR_TO_MAP_KEY, ARG_ANYTHING).
        Proto::new(
            crate::sockmap_helpers::SOCK_MAP_UPDATE,
            "sock_map_update",
            &[ArgKind::Ctx, MapHandle, MapKey, Scalar],
            RetKind::Scalar,
            |cx, mem, a| crate::sockmap_helpers::sock_update(cx, mem, a, false),
        )
        .taking_map_type(MapKind::SockMap.kernel_type())
        .reading_args_first(),
        Proto::new(
            crate::sockmap_helpers::SOCK_HASH_UPDATE,
            "sock_hash_update",
            &[ArgKind::Ctx, MapHandle, MapKey, Scalar],
            RetKind::Scalar,
            |cx, mem, a| crate::sockmap_helpers::sock_update(cx, mem, a, true),
        )
        .taking_map_type(MapKind::SockHash.kernel_type())
        .reading_args_first(),
        // sk_msg's: the redirects as sk_skb's, on the message's context.
        Proto::new(
            msg::MSG_REDIRECT_MAP,
            "msg_redirect_map",
            &[ArgKind::Ctx, MapHandle, Scalar, Scalar],
            RetKind::Scalar,
            |cx, mem, a| sk_redirect(cx, mem, a, false),
        )
        .taking_map_type(MapKind::SockMap.kernel_type()),
        Proto::new(
            msg::MSG_REDIRECT_HASH,
            "msg_redirect_hash",
            &[ArgKind::Ctx, MapHandle, MapKey, Scalar],
            RetKind::Scalar,
            |cx, mem, a| sk_redirect(cx, mem, a, true),
        )
        .taking_map_type(MapKind::SockHash.kernel_type())
        .reading_args_first(),
        Proto::new(
            msg::MSG_APPLY_BYTES,
            "msg_apply_bytes",
            &[ArgKind::Ctx, Scalar],
            RetKind::Scalar,
            msg::msg_apply_bytes,
        ),
        Proto::new(
            msg::MSG_CORK_BYTES,
            "msg_cork_bytes",
            &[ArgKind::Ctx, Scalar],
            RetKind::Scalar,
            msg::msg_cork_bytes,
        ),
        Proto::new(
            msg::MSG_PULL_DATA,
            "msg_pull_data",
            &[ArgKind::Ctx, Scalar, Scalar, Scalar],
            RetKind::Scalar,
            msg::msg_pull_data,
        )
        .changing_packet(),
        Proto::new(
            msg::MSG_PUSH_DATA,
            "msg_push_data",
            &[ArgKind::Ctx, Scalar, Scalar, Scalar],
            RetKind::Scalar,
            msg::msg_push_data,
        )
        .changing_packet(),
        Proto::new(
            msg::MSG_POP_DATA,
            "msg_pop_data",
            &[ArgKind::Ctx, Scalar, Scalar, Scalar],
            RetKind::Scalar,
            msg::msg_pop_data,
        )
        .changing_packet(),
        Proto::ending(
            FOR_EACH_MAP_ELEM,
            "for_each_map_elem",
            &[
                MapHandle,
                Callback(CallbackKind::MapElem),
                CallbackCtx,
                Scalar,
            ],
            RetKind::Scalar,
            for_each_map_elem,
        ),
        Proto::ending(
            LOOP,
            "loop",
            &[Scalar, Callback(CallbackKind::Loop), CallbackCtx, Scalar],
            RetKind::Scalar,
            bpf_loop,
        ),
        Proto::new(
            MAP_LOOKUP_PERCPU_ELEM,
            "map_lookup_percpu_elem",
            &[MapHandle, MapKey, Scalar],
            RetKind::MapValueOrNull,
            map_lookup_percpu_elem,
        )
        .reading_args_first(),
        Proto::new(
            RINGBUF_OUTPUT,
            "ringbuf_output",
            &[
                MapHandle,
                PtrToReadOnlyMem { size_arg: Some(2) },
                Scalar,
                Scalar,
            ],
            RetKind::Scalar,
            ringbuf_output,
        ),
        // The record is memory of the reserved size (r2) inside the ring buffer's block, or
        // null, as the kernel types it: Strict mode requires a constant size and proves the
        // record's accesses against it, and tracks it as a reference that submit or discard
        // (`ReleaseRecord`) must release once on every path.
        Proto::new(
            RINGBUF_RESERVE,
            "ringbuf_reserve",
            &[MapHandle, Scalar, Scalar],
            RetKind::MemOrNull { size_arg: 1 },
            ringbuf_reserve,
        ),
        Proto::new(
            RINGBUF_SUBMIT,
            "ringbuf_submit",
            &[ReleaseRecord, Scalar],
            RetKind::Void,
            ringbuf_submit,
        ),
        Proto::new(
            RINGBUF_DISCARD,
            "ringbuf_discard",
            &[ReleaseRecord, Scalar],
            RetKind::Void,
            ringbuf_discard,
        ),
        Proto::new(
            skb::SKB_STORE_BYTES,
            "skb_store_bytes",
            &[
                Anything,
                Scalar,
                PtrToReadOnlyMem { size_arg: Some(3) },
                Scalar,
                Scalar,
            ],
            RetKind::Scalar,
            skb::skb_store_bytes,
        )
        .changing_packet(),
        Proto::new(
            skb::L3_CSUM_REPLACE,
            "l3_csum_replace",
            CSUM_REPLACE,
            RetKind::Scalar,
            skb::l3_csum_replace,
        )
        .changing_packet(),
        Proto::new(
            skb::L4_CSUM_REPLACE,
            "l4_csum_replace",
            CSUM_REPLACE,
            RetKind::Scalar,
            skb::l4_csum_replace,
        )
        .changing_packet(),
        Proto::new(
            skb::SKB_LOAD_BYTES,
            "skb_load_bytes",
            &[Anything, Scalar, PtrToMem { size_arg: Some(3) }, Scalar],
            RetKind::Scalar,
            skb::skb_load_bytes,
        ),
        Proto::new(
            skb::CSUM_DIFF,
            "csum_diff",
            &[
                PtrToReadOnlyMemOrNull { size_arg: Some(1) },
                Scalar,
                PtrToReadOnlyMemOrNull { size_arg: Some(3) },
                Scalar,
                Scalar,
            ],
            RetKind::Scalar,
            skb::csum_diff,
        ),
        Proto::new(
            xdp::XDP_ADJUST_HEAD,
            "xdp_adjust_head",
            &[Anything, Scalar],
            RetKind::Scalar,
            xdp::xdp_adjust_head,
        )
        .changing_packet(),
        Proto::new(
            xdp::XDP_ADJUST_META,
            "xdp_adjust_meta",
            &[Anything, Scalar],
            RetKind::Scalar,
            xdp::xdp_adjust_meta,
        )
        .changing_packet(),
        Proto::new(
            xdp::XDP_ADJUST_TAIL,
            "xdp_adjust_tail",
            &[Anything, Scalar],
            RetKind::Scalar,
            xdp::xdp_adjust_tail,
        )
        .changing_packet(),
        Proto::new(
            xdp::XDP_GET_BUFF_LEN,
            "xdp_get_buff_len",
            &[Anything],
            RetKind::Scalar,
            xdp::xdp_get_buff_len,
        ),
        Proto::new(
            xdp::XDP_LOAD_BYTES,
            "xdp_load_bytes",
            &[Anything, Scalar, PtrToMem { size_arg: Some(3) }, Scalar],
            RetKind::Scalar,
            xdp::xdp_load_bytes,
        ),
        Proto::new(
            xdp::XDP_STORE_BYTES,
            "xdp_store_bytes",
            &[
                Anything,
                Scalar,
                PtrToReadOnlyMem { size_arg: Some(3) },
                Scalar,
            ],
            RetKind::Scalar,
            xdp::xdp_store_bytes,
        ),
        Proto::new(
            xdp::REDIRECT,
            "redirect",
            &[Scalar, Scalar],
            RetKind::Scalar,
            xdp::redirect,
        ),
        Proto::new(
            xdp::REDIRECT_NEIGH,
            "redirect_neigh",
            &[
                Scalar,
                PtrToReadOnlyMemOrNull { size_arg: Some(2) },
                Scalar,
                Scalar,
            ],
            RetKind::Scalar,
            xdp::redirect_neigh,
        ),
        Proto::new(
            xdp::REDIRECT_PEER,
            "redirect_peer",
            &[Scalar, Scalar],
            RetKind::Scalar,
            xdp::redirect_peer,
        ),
        Proto::new(
            skb::SKB_LOAD_BYTES_RELATIVE,
            "skb_load_bytes_relative",
            &[
                Anything,
                Scalar,
                PtrToMem { size_arg: Some(3) },
                Scalar,
                Scalar,
            ],
            RetKind::Scalar,
            skb::skb_load_bytes_relative,
        ),
        Proto::new(
            skb::GET_HASH_RECALC,
            "get_hash_recalc",
            &[Anything],
            RetKind::Scalar,
            skb::get_hash_recalc,
        ),
        Proto::new(
            skb::SET_HASH,
            "set_hash",
            &[Anything, Scalar],
            RetKind::Scalar,
            skb::set_hash,
        ),
        Proto::new(
            skb::SKB_CHANGE_TYPE,
            "skb_change_type",
            &[Anything, Scalar],
            RetKind::Scalar,
            skb::skb_change_type,
        ),
        Proto::new(
            crate::tunnel::SKB_GET_TUNNEL_KEY,
            "skb_get_tunnel_key",
            &[Anything, PtrToMem { size_arg: Some(2) }, Scalar, Scalar],
            RetKind::Scalar,
            crate::tunnel::get_tunnel_key,
        ),
        Proto::new(
            crate::tunnel::SKB_SET_TUNNEL_KEY,
            "skb_set_tunnel_key",
            &[
                Anything,
                PtrToReadOnlyMem { size_arg: Some(2) },
                Scalar,
                Scalar,
            ],
            RetKind::Scalar,
            crate::tunnel::set_tunnel_key,
        ),
        Proto::new(
            crate::syncookie::TCP_RAW_GEN_SYNCOOKIE_IPV4,
            "tcp_raw_gen_syncookie_ipv4",
            &[
                PtrToReadOnlyFixedMem { size: 20 },
                PtrToReadOnlyMem { size_arg: Some(2) },
                Scalar,
            ],
            RetKind::Scalar,
            crate::syncookie::gen_ipv4,
        ),
        Proto::new(
            crate::syncookie::TCP_RAW_GEN_SYNCOOKIE_IPV6,
            "tcp_raw_gen_syncookie_ipv6",
            &[
                PtrToReadOnlyFixedMem { size: 40 },
                PtrToReadOnlyMem { size_arg: Some(2) },
                Scalar,
            ],
            RetKind::Scalar,
            crate::syncookie::gen_ipv6,
        ),
        Proto::new(
            crate::syncookie::TCP_RAW_CHECK_SYNCOOKIE_IPV4,
            "tcp_raw_check_syncookie_ipv4",
            &[
                PtrToReadOnlyFixedMem { size: 20 },
                PtrToReadOnlyFixedMem { size: 20 },
            ],
            RetKind::Scalar,
            crate::syncookie::check_ipv4,
        ),
        Proto::new(
            crate::syncookie::TCP_RAW_CHECK_SYNCOOKIE_IPV6,
            "tcp_raw_check_syncookie_ipv6",
            &[
                PtrToReadOnlyFixedMem { size: 40 },
                PtrToReadOnlyFixedMem { size: 20 },
            ],
            RetKind::Scalar,
            crate::syncookie::check_ipv6,
        ),
        Proto::new(
            crate::ecn::SKB_ECN_SET_CE,
            "skb_ecn_set_ce",
            &[Anything],
            RetKind::Scalar,
            crate::ecn::skb_ecn_set_ce,
        ),
        Proto::new(
            crate::strncmp::STRNCMP,
            "strncmp",
            &[PtrToReadOnlyMem { size_arg: Some(1) }, Scalar, ConstStr],
            RetKind::Scalar,
            crate::strncmp::strncmp,
        ),
        Proto::new(
            TRACE_VPRINTK,
            "trace_vprintk",
            &[
                PtrToReadOnlyMem { size_arg: Some(1) },
                Scalar,
                PtrToReadOnlyMemOrNull { size_arg: Some(3) },
                Scalar,
            ],
            RetKind::Scalar,
            trace_vprintk,
        ),
        Proto::new(
            skb::CSUM_UPDATE,
            "csum_update",
            &[Anything, Scalar],
            RetKind::Scalar,
            skb::csum_update,
        ),
        Proto::new(
            room::CLONE_REDIRECT,
            "clone_redirect",
            &[Anything, Scalar, Scalar],
            RetKind::Scalar,
            room::clone_redirect,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_VLAN_PUSH,
            "skb_vlan_push",
            &[Anything, Scalar, Scalar],
            RetKind::Scalar,
            room::skb_vlan_push,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_VLAN_POP,
            "skb_vlan_pop",
            &[Anything],
            RetKind::Scalar,
            room::skb_vlan_pop,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_CHANGE_PROTO,
            "skb_change_proto",
            &[Anything, Scalar, Scalar],
            RetKind::Scalar,
            room::skb_change_proto,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_CHANGE_TAIL,
            "skb_change_tail",
            &[Anything, Scalar, Scalar],
            RetKind::Scalar,
            room::skb_change_tail,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_PULL_DATA,
            "skb_pull_data",
            &[Anything, Scalar],
            RetKind::Scalar,
            room::skb_pull_data,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_CHANGE_HEAD,
            "skb_change_head",
            &[Anything, Scalar, Scalar],
            RetKind::Scalar,
            room::skb_change_head,
        )
        .changing_packet(),
        Proto::new(
            room::SKB_ADJUST_ROOM,
            "skb_adjust_room",
            &[Anything, Scalar, Scalar, Scalar],
            RetKind::Scalar,
            room::skb_adjust_room,
        )
        .changing_packet(),
        Proto::new(
            task::JIFFIES64,
            "jiffies64",
            &[],
            RetKind::Scalar,
            task::jiffies64,
        ),
        Proto::new(
            task::KTIME_GET_BOOT_NS,
            "ktime_get_boot_ns",
            &[],
            RetKind::Scalar,
            task::ktime_get_boot_ns,
        ),
        Proto::new(
            task::KTIME_GET_COARSE_NS,
            "ktime_get_coarse_ns",
            &[],
            RetKind::Scalar,
            task::ktime_get_coarse_ns,
        ),
        Proto::new(
            task::KTIME_GET_TAI_NS,
            "ktime_get_tai_ns",
            &[],
            RetKind::Scalar,
            task::ktime_get_tai_ns,
        ),
        Proto::new(
            task::GET_CURRENT_PID_TGID,
            "get_current_pid_tgid",
            &[],
            RetKind::Scalar,
            task::get_current_pid_tgid,
        ),
        Proto::new(
            task::GET_CURRENT_UID_GID,
            "get_current_uid_gid",
            &[],
            RetKind::Scalar,
            task::get_current_uid_gid,
        ),
        Proto::new(
            crate::spin_lock::SPIN_LOCK,
            "spin_lock",
            &[ArgKind::SpinLock],
            RetKind::Scalar,
            crate::spin_lock::spin_lock,
        ),
        Proto::new(
            crate::spin_lock::SPIN_UNLOCK,
            "spin_unlock",
            &[ArgKind::SpinLock],
            RetKind::Scalar,
            crate::spin_lock::spin_unlock,
        ),
        Proto::new(
            crate::timer::TIMER_INIT,
            "timer_init",
            &[ArgKind::Timer, ArgKind::TimerMap, Scalar],
            RetKind::Scalar,
            crate::timer::timer_init,
        ),
        Proto::new(
            crate::timer::TIMER_SET_CALLBACK,
            "timer_set_callback",
            &[ArgKind::Timer, Callback(CallbackKind::Timer)],
            RetKind::Scalar,
            crate::timer::timer_set_callback,
        ),
        Proto::new(
            crate::timer::TIMER_START,
            "timer_start",
            &[ArgKind::Timer, Scalar, Scalar],
            RetKind::Scalar,
            crate::timer::timer_start,
        ),
        Proto::new(
            crate::timer::TIMER_CANCEL,
            "timer_cancel",
            &[ArgKind::Timer],
            RetKind::Scalar,
            crate::timer::timer_cancel,
        ),
        Proto::new(
            task::GET_CURRENT_CGROUP_ID,
            "get_current_cgroup_id",
            &[],
            RetKind::Scalar,
            task::get_current_cgroup_id,
        ),
        Proto::new(
            task::GET_CURRENT_COMM,
            "get_current_comm",
            &[PtrToMem { size_arg: Some(1) }, Scalar],
            RetKind::Scalar,
            task::get_current_comm,
        ),
        Proto::new(
            task::PROBE_READ_USER,
            "probe_read_user",
            PROBE_READ,
            RetKind::Scalar,
            |cx, mem, a| task::probe_read(cx, mem, a, false),
        ),
        Proto::new(
            task::PROBE_READ_KERNEL,
            "probe_read_kernel",
            PROBE_READ,
            RetKind::Scalar,
            |cx, mem, a| task::probe_read(cx, mem, a, true),
        ),
        Proto::new(
            task::PROBE_READ_USER_STR,
            "probe_read_user_str",
            PROBE_READ,
            RetKind::Scalar,
            |cx, mem, a| task::probe_read_str(cx, mem, a, false),
        ),
        Proto::new(
            task::PROBE_READ_KERNEL_STR,
            "probe_read_kernel_str",
            PROBE_READ,
            RetKind::Scalar,
            |cx, mem, a| task::probe_read_str(cx, mem, a, true),
        ),
        Proto::new(
            task::GET_CURRENT_TASK,
            "get_current_task",
            &[],
            RetKind::Scalar,
            task::get_current_task,
        ),
        Proto::new(
            trace::PROBE_READ,
            "probe_read",
            PROBE_READ,
            RetKind::Scalar,
            |cx, mem, a| trace::probe_read_compat(cx, mem, a, false),
        ),
        Proto::new(
            trace::PROBE_READ_STR,
            "probe_read_str",
            PROBE_READ,
            RetKind::Scalar,
            |cx, mem, a| trace::probe_read_compat(cx, mem, a, true),
        ),
        // The kernel's ARG_PTR_TO_CTX, ARG_CONST_MAP_PTR, ARG_ANYTHING.
        Proto::new(
            trace::GET_STACKID,
            "get_stackid",
            &[ArgKind::Ctx, MapHandle, Scalar],
            RetKind::Scalar,
            trace::get_stackid,
        )
        .taking_map_type(MapKind::StackTrace.kernel_type()),
        Proto::new(
            crate::sock::GET_SOCKET_COOKIE,
            "get_socket_cookie",
            &[ArgKind::Ctx],
            RetKind::Scalar,
            crate::sock::get_socket_cookie,
        ),
        Proto::new(
            crate::sock::GET_NETNS_COOKIE,
            "get_netns_cookie",
            &[ArgKind::CtxOrNull],
            RetKind::Scalar,
            crate::sock::get_netns_cookie,
        ),
        Proto::new(
            crate::sock::SOCK_OPS_CB_FLAGS_SET,
            "sock_ops_cb_flags_set",
            &[ArgKind::Ctx, Scalar],
            RetKind::Scalar,
            crate::sock::sock_ops_cb_flags_set,
        ),
        // The kernel's ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_ANYTHING, ARG_PTR_TO_MEM | MEM_RDONLY
        // (ARG_PTR_TO_UNINIT_MEM for getsockopt, which writes it), ARG_CONST_SIZE.
        Proto::new(
            crate::sockopt::SETSOCKOPT,
            "setsockopt",
            &[
                ArgKind::Ctx,
                Scalar,
                Scalar,
                ArgKind::PtrToReadOnlyMem { size_arg: Some(4) },
                Scalar,
            ],
            RetKind::Scalar,
            crate::sockopt::setsockopt,
        ),
        Proto::new(
            crate::sockopt::GETSOCKOPT,
            "getsockopt",
            &[
                Anything,
                Scalar,
                Scalar,
                PtrToMem { size_arg: Some(4) },
                Scalar,
            ],
            RetKind::Scalar,
            crate::sockopt::getsockopt,
        ),
        Proto::new(
            crate::cgroup_sysctl::SYSCTL_GET_NAME,
            "sysctl_get_name",
            &[ArgKind::Ctx, PtrToMem { size_arg: Some(2) }, Scalar, Scalar],
            RetKind::Scalar,
            crate::cgroup_sysctl::sysctl_get_name,
        ),
        Proto::new(
            crate::cgroup_sysctl::SYSCTL_GET_CURRENT_VALUE,
            "sysctl_get_current_value",
            &[ArgKind::Ctx, PtrToMem { size_arg: Some(2) }, Scalar],
            RetKind::Scalar,
            crate::cgroup_sysctl::sysctl_get_current_value,
        ),
        Proto::new(
            crate::cgroup_sysctl::SYSCTL_GET_NEW_VALUE,
            "sysctl_get_new_value",
            &[ArgKind::Ctx, PtrToMem { size_arg: Some(2) }, Scalar],
            RetKind::Scalar,
            crate::cgroup_sysctl::sysctl_get_new_value,
        ),
        Proto::new(
            crate::cgroup_sysctl::SYSCTL_SET_NEW_VALUE,
            "sysctl_set_new_value",
            &[ArgKind::Ctx, PtrToReadOnlyMem { size_arg: Some(2) }, Scalar],
            RetKind::Scalar,
            crate::cgroup_sysctl::sysctl_set_new_value,
        ),
        Proto::new(
            crate::cgroup_sysctl::STRTOL,
            "strtol",
            &[
                PtrToReadOnlyMem { size_arg: Some(1) },
                Scalar,
                Scalar,
                PtrToLongOut,
            ],
            RetKind::Scalar,
            crate::cgroup_sysctl::strtol,
        ),
        Proto::new(
            crate::cgroup_sysctl::STRTOUL,
            "strtoul",
            &[
                PtrToReadOnlyMem { size_arg: Some(1) },
                Scalar,
                Scalar,
                PtrToLongOut,
            ],
            RetKind::Scalar,
            crate::cgroup_sysctl::strtoul,
        ),
        Proto::new(
            crate::perf_event::PERF_PROG_READ_VALUE,
            "perf_prog_read_value",
            &[ArgKind::Ctx, PtrToMem { size_arg: Some(2) }, Scalar],
            RetKind::Scalar,
            crate::perf_event::perf_prog_read_value,
        ),
        Proto::new(
            trace::GET_FUNC_IP,
            "get_func_ip",
            &[ArgKind::Ctx],
            RetKind::Scalar,
            trace::get_func_ip,
        ),
        Proto::new(
            trace::OVERRIDE_RETURN,
            "override_return",
            &[ArgKind::Ctx, Scalar],
            RetKind::Scalar,
            trace::override_return,
        ),
        Proto::new(
            trace::GET_ATTACH_COOKIE,
            "get_attach_cookie",
            &[ArgKind::Ctx],
            RetKind::Scalar,
            trace::get_attach_cookie,
        ),
        // ARG_PTR_TO_CTX, ARG_ANYTHING, an 8-byte ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT (the
        // helper writes it through guest memory; the verifier checks its 8 bytes and marks
        // them initialised on the stack: `PtrToLongOut`).
        Proto::new(
            trace::GET_FUNC_ARG,
            "get_func_arg",
            &[ArgKind::Ctx, Scalar, PtrToLongOut],
            RetKind::Scalar,
            trace::get_func_arg,
        ),
        Proto::new(
            trace::GET_FUNC_RET,
            "get_func_ret",
            &[ArgKind::Ctx, PtrToLongOut],
            RetKind::Scalar,
            trace::get_func_ret,
        ),
        Proto::new(
            trace::GET_FUNC_ARG_CNT,
            "get_func_arg_cnt",
            &[ArgKind::Ctx],
            RetKind::Scalar,
            trace::get_func_arg_cnt,
        ),
        // The socket lookups: ARG_PTR_TO_CTX, ARG_PTR_TO_MEM | MEM_RDONLY, ARG_CONST_SIZE,
        // ARG_ANYTHING, ARG_ANYTHING; an acquired socket or NULL.
        Proto::new(
            crate::sock_table::SK_LOOKUP_TCP,
            "sk_lookup_tcp",
            SOCK_LOOKUP_ARGS,
            RetKind::SockOrNull {
                kind: SockKind::Full,
                how: SockRet::Acquire,
            },
            crate::sock_table::sk_lookup_tcp,
        ),
        Proto::new(
            crate::sock_table::SK_LOOKUP_UDP,
            "sk_lookup_udp",
            SOCK_LOOKUP_ARGS,
            RetKind::SockOrNull {
                kind: SockKind::Full,
                how: SockRet::Acquire,
            },
            crate::sock_table::sk_lookup_udp,
        ),
        Proto::new(
            crate::sock_table::SKC_LOOKUP_TCP,
            "skc_lookup_tcp",
            SOCK_LOOKUP_ARGS,
            RetKind::SockOrNull {
                kind: SockKind::Common,
                how: SockRet::Acquire,
            },
            crate::sock_table::skc_lookup_tcp,
        ),
        // ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE.
        Proto::new(
            crate::sock_table::SK_RELEASE,
            "sk_release",
            &[ArgKind::ReleaseSock],
            RetKind::Scalar,
            crate::sock_table::sk_release,
        ),
        // ARG_PTR_TO_SOCK_COMMON; the casts keep the argument's reference.
        Proto::new(
            crate::sock_table::SK_FULLSOCK,
            "sk_fullsock",
            &[ArgKind::Sock],
            RetKind::SockOrNull {
                kind: SockKind::Full,
                how: SockRet::Cast,
            },
            crate::sock_table::sk_fullsock,
        ),
        Proto::new(
            crate::sock_table::TCP_SOCK,
            "tcp_sock",
            &[ArgKind::Sock],
            RetKind::SockOrNull {
                kind: SockKind::Tcp,
                how: SockRet::Cast,
            },
            crate::sock_table::tcp_sock,
        ),
        Proto::new(
            crate::sock_table::GET_LISTENER_SOCK,
            "get_listener_sock",
            &[ArgKind::Sock],
            RetKind::SockOrNull {
                kind: SockKind::Full,
                how: SockRet::Plain,
            },
            crate::sock_table::get_listener_sock,
        ),
        // ARG_CONST_MAP_PTR (a socket-storage map), ARG_PTR_TO_BTF_ID_SOCK_COMMON,
        // ARG_PTR_TO_MAP_VALUE_OR_NULL, ARG_ANYTHING; a value of the map or NULL.
        Proto::new(
            crate::sk_storage::SK_STORAGE_GET,
            "sk_storage_get",
            &[MapHandle, ArgKind::Sock, ArgKind::MapValueOrNull, Scalar],
            RetKind::MapValueOrNull,
            crate::sk_storage::sk_storage_get,
        )
        .taking_map_type(MapKind::SkStorage.kernel_type()),
        Proto::new(
            crate::sk_storage::SK_STORAGE_DELETE,
            "sk_storage_delete",
            &[MapHandle, ArgKind::Sock],
            RetKind::Scalar,
            crate::sk_storage::sk_storage_delete,
        )
        .taking_map_type(MapKind::SkStorage.kernel_type()),
        // ARG_PTR_TO_CTX, ARG_PTR_TO_BTF_ID_SOCK_COMMON, ARG_ANYTHING.
        Proto::new(
            crate::sock_table::SK_ASSIGN,
            "sk_assign",
            &[ArgKind::Ctx, ArgKind::Sock, ArgKind::Scalar],
            RetKind::Scalar,
            crate::sock_table::sk_assign,
        ),
        // The kernel's ARG_PTR_TO_CTX, ARG_PTR_TO_MEM (written), ARG_CONST_SIZE, ARG_ANYTHING.
        Proto::new(
            crate::fib::FIB_LOOKUP,
            "fib_lookup",
            &[Anything, PtrToMem { size_arg: Some(2) }, Scalar, Scalar],
            RetKind::Scalar,
            crate::fib::fib_lookup,
        ),
    ]
};

/// The standard helpers every program type bpfx models offers, as the kernel's
/// `bpf_base_func_proto` (and `bpf_sk_base_func_proto`) gives them to a loader with
/// `CAP_BPF` and `CAP_PERFMON` (Linux 6.18 checked through `bpftool prog load`,
/// `tests/tc_oracle.rs`): the map helpers, the clocks, random numbers, the CPU id, tail calls,
/// the ring buffer, `trace_printk`, the probe reads and the current task (ids, name, address).
const BASE_HELPERS: &[u32] = &[
    MAP_LOOKUP_ELEM,
    MAP_UPDATE_ELEM,
    MAP_DELETE_ELEM,
    KTIME_GET_NS,
    TRACE_PRINTK,
    GET_PRANDOM_U32,
    GET_SMP_PROCESSOR_ID,
    TAIL_CALL,
    MAP_PUSH_ELEM,
    MAP_POP_ELEM,
    MAP_PEEK_ELEM,
    MAP_LOOKUP_PERCPU_ELEM,
    FOR_EACH_MAP_ELEM,
    LOOP,
    RINGBUF_OUTPUT,
    RINGBUF_RESERVE,
    RINGBUF_SUBMIT,
    RINGBUF_DISCARD,
    crate::task::JIFFIES64,
    crate::task::KTIME_GET_BOOT_NS,
    crate::task::KTIME_GET_COARSE_NS,
    crate::task::KTIME_GET_TAI_NS,
    crate::task::PROBE_READ_USER,
    crate::task::PROBE_READ_KERNEL,
    crate::task::PROBE_READ_USER_STR,
    crate::task::PROBE_READ_KERNEL_STR,
    crate::task::GET_CURRENT_PID_TGID,
    crate::task::GET_CURRENT_UID_GID,
    crate::task::GET_CURRENT_COMM,
    crate::task::GET_CURRENT_TASK,
    crate::task::GET_CURRENT_CGROUP_ID,
    crate::spin_lock::SPIN_LOCK,
    crate::spin_lock::SPIN_UNLOCK,
    crate::timer::TIMER_INIT,
    crate::timer::TIMER_SET_CALLBACK,
    crate::timer::TIMER_START,
    crate::timer::TIMER_CANCEL,
    crate::strncmp::STRNCMP,
    TRACE_VPRINTK,
    crate::cgroup_sysctl::STRTOL,
    crate::cgroup_sysctl::STRTOUL,
];

/// Whether a program of context `context` may call standard helper `id`, as the kernel's
/// per-type helper tables (`xdp_func_proto`, `tc_cls_act_func_proto`, `sk_filter_func_proto`)
/// offer them beyond [`BASE_HELPERS`]. The contexts that model no kernel program type (plain
/// memory, an embedder's struct) offer every helper.
pub(crate) fn offered(context: Context, id: u32) -> bool {
    use crate::skb_helpers as skb;
    use crate::skb_packet as room;
    use crate::trace;
    use crate::xdp_helpers as xdp;
    let extra: &[u32] = match context {
        Context::Memory | Context::Struct(_) => return true,
        Context::Unsupported(_) => return false,
        Context::Xdp => &[
            PERF_EVENT_OUTPUT,
            xdp::REDIRECT,
            REDIRECT_MAP,
            xdp::XDP_ADJUST_HEAD,
            xdp::XDP_ADJUST_META,
            xdp::XDP_ADJUST_TAIL,
            xdp::XDP_GET_BUFF_LEN,
            xdp::XDP_LOAD_BYTES,
            xdp::XDP_STORE_BYTES,
            skb::CSUM_DIFF,
            crate::fib::FIB_LOOKUP,
            crate::syncookie::TCP_RAW_GEN_SYNCOOKIE_IPV4,
            crate::syncookie::TCP_RAW_GEN_SYNCOOKIE_IPV6,
            crate::syncookie::TCP_RAW_CHECK_SYNCOOKIE_IPV4,
            crate::syncookie::TCP_RAW_CHECK_SYNCOOKIE_IPV6,
            crate::sock_table::SK_LOOKUP_TCP,
            crate::sock_table::SK_LOOKUP_UDP,
            crate::sock_table::SKC_LOOKUP_TCP,
            crate::sock_table::SK_RELEASE,
        ],
        Context::Tc => &[
            PERF_EVENT_OUTPUT,
            xdp::REDIRECT,
            xdp::REDIRECT_NEIGH,
            xdp::REDIRECT_PEER,
            skb::SKB_STORE_BYTES,
            skb::L3_CSUM_REPLACE,
            skb::L4_CSUM_REPLACE,
            skb::SKB_LOAD_BYTES,
            skb::CSUM_DIFF,
            skb::GET_HASH_RECALC,
            skb::CSUM_UPDATE,
            skb::SET_HASH,
            skb::SKB_CHANGE_TYPE,
            crate::tunnel::SKB_GET_TUNNEL_KEY,
            crate::tunnel::SKB_SET_TUNNEL_KEY,
            crate::ecn::SKB_ECN_SET_CE,
            skb::SKB_LOAD_BYTES_RELATIVE,
            crate::syncookie::TCP_RAW_GEN_SYNCOOKIE_IPV4,
            crate::syncookie::TCP_RAW_GEN_SYNCOOKIE_IPV6,
            crate::syncookie::TCP_RAW_CHECK_SYNCOOKIE_IPV4,
            crate::syncookie::TCP_RAW_CHECK_SYNCOOKIE_IPV6,
            room::CLONE_REDIRECT,
            room::SKB_VLAN_PUSH,
            room::SKB_VLAN_POP,
            room::SKB_CHANGE_PROTO,
            room::SKB_CHANGE_TAIL,
            room::SKB_PULL_DATA,
            room::SKB_CHANGE_HEAD,
            room::SKB_ADJUST_ROOM,
            crate::fib::FIB_LOOKUP,
            crate::sock::GET_SOCKET_COOKIE,
            crate::sock_table::SK_LOOKUP_TCP,
            crate::sock_table::SK_LOOKUP_UDP,
            crate::sock_table::SKC_LOOKUP_TCP,
            crate::sock_table::SK_RELEASE,
            crate::sock_table::SK_FULLSOCK,
            crate::sock_table::TCP_SOCK,
            crate::sock_table::GET_LISTENER_SOCK,
            crate::sock_table::SK_ASSIGN,
            crate::sk_storage::SK_STORAGE_GET,
            crate::sk_storage::SK_STORAGE_DELETE,
        ],
        // `sk_filter_func_proto`: with the packet's socket cookie, as TC has it.
        Context::Socket => &[
            PERF_EVENT_OUTPUT,
            skb::SKB_LOAD_BYTES,
            skb::SKB_LOAD_BYTES_RELATIVE,
            crate::sock::GET_SOCKET_COOKIE,
        ],
        // `cg_skb_func_proto`: the socket filter's, over the packet's socket, and what a
        // program does with that socket.
        Context::CgroupSkb(_) => &[
            PERF_EVENT_OUTPUT,
            skb::SKB_LOAD_BYTES,
            skb::SKB_LOAD_BYTES_RELATIVE,
            crate::sock::GET_SOCKET_COOKIE,
            crate::sock_table::SK_FULLSOCK,
            crate::sock_table::TCP_SOCK,
            crate::sock_table::GET_LISTENER_SOCK,
            crate::sk_storage::SK_STORAGE_GET,
            crate::sk_storage::SK_STORAGE_DELETE,
        ],
        // `sk_skb_func_proto`: the packet's bytes, the socket's cookie, the socket redirects,
        // perf output.
        Context::SkSkb => &[
            PERF_EVENT_OUTPUT,
            skb::SKB_STORE_BYTES,
            skb::SKB_LOAD_BYTES,
            crate::sock::GET_SOCKET_COOKIE,
            SK_REDIRECT_MAP,
            SK_REDIRECT_HASH,
            room::SKB_PULL_DATA,
        ],
        // `sk_msg_func_proto`: the message helpers, the socket's namespace cookie, perf
        // output (Linux 6.18 checked by loading: no socket cookie, no skb helpers).
        Context::SkMsg => &[
            PERF_EVENT_OUTPUT,
            crate::sk_msg_helpers::MSG_REDIRECT_MAP,
            crate::sk_msg_helpers::MSG_REDIRECT_HASH,
            crate::sk_msg_helpers::MSG_APPLY_BYTES,
            crate::sk_msg_helpers::MSG_CORK_BYTES,
            crate::sk_msg_helpers::MSG_PULL_DATA,
            crate::sk_msg_helpers::MSG_PUSH_DATA,
            crate::sk_msg_helpers::MSG_POP_DATA,
            crate::sock::GET_NETNS_COOKIE,
        ],
        // `lwt_out_func_proto` and, for xmit, `lwt_xmit_func_proto`, as far as bpfx has the
        // helpers (Linux 6.18 checked by loading: the packet's bytes and checksums, perf
        // output; xmit also stores, checksum replacement and `redirect`).
        Context::Lwt(crate::LwtHook::Xmit) => &[
            PERF_EVENT_OUTPUT,
            skb::SKB_LOAD_BYTES,
            skb::CSUM_DIFF,
            skb::SKB_STORE_BYTES,
            skb::L3_CSUM_REPLACE,
            skb::L4_CSUM_REPLACE,
            xdp::REDIRECT,
        ],
        Context::Lwt(_) => &[PERF_EVENT_OUTPUT, skb::SKB_LOAD_BYTES, skb::CSUM_DIFF],
        // `sk_lookup_func_proto`: perf output, the lookup's `sk_assign`, and releasing the
        // socket a socket map lookup gave (Linux 6.18 checked by loading).
        Context::SkLookup => &[
            PERF_EVENT_OUTPUT,
            crate::sock_table::SK_ASSIGN,
            crate::sock_table::SK_RELEASE,
        ],
        // The kernel's `bpf_tracing_func_proto` (the legacy probe reads, perf output) and
        // each type's own: the attach cookie (kprobe, tracepoint, tracing, as `linux/bpf.h`
        // lists it), the function's address (kprobe, tracing), its arguments and return
        // value (tracing).
        Context::Kprobe => &[
            PERF_EVENT_OUTPUT,
            trace::PROBE_READ,
            trace::PROBE_READ_STR,
            trace::GET_FUNC_IP,
            trace::GET_ATTACH_COOKIE,
            trace::GET_STACKID,
            trace::OVERRIDE_RETURN,
        ],
        Context::Tracepoint { .. } => &[
            PERF_EVENT_OUTPUT,
            trace::PROBE_READ,
            trace::PROBE_READ_STR,
            trace::GET_ATTACH_COOKIE,
            trace::GET_STACKID,
        ],
        Context::RawTracepoint { .. } => &[
            PERF_EVENT_OUTPUT,
            trace::PROBE_READ,
            trace::PROBE_READ_STR,
            trace::GET_STACKID,
        ],
        Context::Tracing { .. } => &[
            PERF_EVENT_OUTPUT,
            trace::PROBE_READ,
            trace::PROBE_READ_STR,
            trace::GET_FUNC_IP,
            trace::GET_ATTACH_COOKIE,
            trace::GET_FUNC_ARG,
            trace::GET_FUNC_RET,
            trace::GET_FUNC_ARG_CNT,
            trace::GET_STACKID,
        ],
        // `cgroup_dev_func_proto`: the base helpers (the current task's among them), perf
        // output without the context's bytes (Linux 6.18 checked by loading).
        Context::CgroupDevice => &[PERF_EVENT_OUTPUT],
        // `cg_sockopt_func_proto`, as far as bpfx has the helpers: perf output without the
        // context's bytes, the socket's namespace cookie (Linux 6.18 checked by loading).
        Context::CgroupSockopt(_) => &[PERF_EVENT_OUTPUT, crate::sock::GET_NETNS_COOKIE],
        // `sysctl_func_proto`: the four sysctl helpers, perf output without the context's
        // bytes (Linux 6.18 checked by loading).
        Context::CgroupSysctl => &[
            PERF_EVENT_OUTPUT,
            crate::cgroup_sysctl::SYSCTL_GET_NAME,
            crate::cgroup_sysctl::SYSCTL_GET_CURRENT_VALUE,
            crate::cgroup_sysctl::SYSCTL_GET_NEW_VALUE,
            crate::cgroup_sysctl::SYSCTL_SET_NEW_VALUE,
        ],
        // The kernel's `pe_prog_func_proto` over `bpf_tracing_func_proto`.
        Context::PerfEvent => &[
            PERF_EVENT_OUTPUT,
            trace::PROBE_READ,
            trace::PROBE_READ_STR,
            trace::GET_ATTACH_COOKIE,
            trace::GET_STACKID,
            crate::perf_event::PERF_PROG_READ_VALUE,
        ],
        // `sock_addr_func_proto`, `sock_filter_func_proto` and `sock_ops_func_proto`: the
        // socket's and its namespace's cookies, perf output; sock_ops its callback flags;
        // the socket options for sock_ops and the IP socket-address hooks (not the Unix ones,
        // nor cgroup socket programs).
        Context::SockAddr(hook) if hook.ip() => &[
            PERF_EVENT_OUTPUT,
            crate::sock::GET_SOCKET_COOKIE,
            crate::sock::GET_NETNS_COOKIE,
            crate::sockopt::SETSOCKOPT,
            crate::sockopt::GETSOCKOPT,
            crate::sock_table::SK_LOOKUP_TCP,
            crate::sock_table::SK_LOOKUP_UDP,
            crate::sock_table::SKC_LOOKUP_TCP,
            crate::sock_table::SK_RELEASE,
            crate::sk_storage::SK_STORAGE_GET,
            crate::sk_storage::SK_STORAGE_DELETE,
        ],
        Context::SockAddr(_) => &[
            PERF_EVENT_OUTPUT,
            crate::sock::GET_SOCKET_COOKIE,
            crate::sock::GET_NETNS_COOKIE,
            crate::sock_table::SK_LOOKUP_TCP,
            crate::sock_table::SK_LOOKUP_UDP,
            crate::sock_table::SKC_LOOKUP_TCP,
            crate::sock_table::SK_RELEASE,
        ],
        Context::Sock(_) => &[
            PERF_EVENT_OUTPUT,
            crate::sock::GET_SOCKET_COOKIE,
            crate::sock::GET_NETNS_COOKIE,
        ],
        Context::SockOps => &[
            PERF_EVENT_OUTPUT,
            crate::sock::GET_SOCKET_COOKIE,
            crate::sock::GET_NETNS_COOKIE,
            crate::sock::SOCK_OPS_CB_FLAGS_SET,
            crate::sockopt::SETSOCKOPT,
            crate::sockopt::GETSOCKOPT,
            crate::sockmap_helpers::SOCK_MAP_UPDATE,
            crate::sockmap_helpers::SOCK_HASH_UPDATE,
        ],
    };
    BASE_HELPERS.contains(&id) || extra.contains(&id)
}

/// Whether standard helper `id` reads its map key and value arguments (or, for a value
/// written, checks it writable) before it changes anything, failing when it cannot
/// ([`Proto::reads_args_first`]).
pub(crate) fn reads_args_first(id: u32) -> bool {
    TABLE.iter().any(|p| p.id == id && p.reads_args_first)
}

/// The kernel's name of a standard helper (without `bpf_`), if `id` is one.
pub(crate) fn standard_name(id: u32) -> Option<&'static str> {
    TABLE.iter().find(|p| p.id == id).map(|p| p.name)
}

/// The helper signatures a program of `context` is verified against: `sigs` (the object's),
/// with the kernel's socket map rules (`check_map_func_compatibility`, `may_update_sockmap`;
/// Linux 6.18 checked by loading) for the standard `map_update_elem` and `map_delete_elem`:
/// updating a socket map or hash takes a socket the program holds, which bpfx gives no
/// program, so it is refused everywhere; deleting from one is refused but in TC, XDP, socket
/// filter and sock_ops programs (and the contexts that model no kernel type). An embedder's
/// helper under either id keeps its own signature.
pub(crate) fn context_sigs(
    sigs: &HelperTable,
    context: Context,
    custom: &[CustomHelper],
) -> HelperTable {
    let sockets = [
        MapKind::SockMap.kernel_type(),
        MapKind::SockHash.kernel_type(),
    ];
    let may_delete = matches!(
        context,
        Context::Tc
            | Context::Xdp
            | Context::Socket
            | Context::SockOps
            | Context::Memory
            | Context::Struct(_)
    );
    let mut out = sigs.clone();
    // The lookup's `sk_assign` takes a socket or NULL (the kernel's `ARG_PTR_TO_SOCKET_OR_NULL`),
    // TC's any non-null socket.
    if context == Context::SkLookup
        && !custom.iter().any(|c| c.id == crate::sock_table::SK_ASSIGN)
        && let Some(sig) = sigs.get(crate::sock_table::SK_ASSIGN)
    {
        let mut sig = sig.clone();
        sig.args[1] = ArgKind::SockOrNull;
        out.insert(crate::sock_table::SK_ASSIGN, sig);
    }
    for (id, refuse) in [(MAP_UPDATE_ELEM, true), (MAP_DELETE_ELEM, !may_delete)] {
        if !refuse || custom.iter().any(|c| c.id == id) {
            continue;
        }
        if let Some(sig) = sigs.get(id) {
            let sig = sockets
                .iter()
                .fold(sig.clone(), |s, &t| s.refusing_map_type(t));
            out.insert(id, sig);
        }
    }
    out
}

/// The signatures of the standard helpers, for the verifier.
pub(crate) fn standard_sigs() -> HelperTable {
    let mut t = HelperTable::new();
    for p in TABLE {
        t.insert(p.id, p.sig());
    }
    t
}

/// The standard helpers of one program instance, each bound to `cx`.
pub(crate) fn standard(cx: &Arc<Cx>) -> Helpers {
    let mut h = Helpers::new();
    for p in TABLE {
        let cx = cx.clone();
        // One closure per helper: the dispatch's indirect call lands in the helper itself.
        let f: bpfx_exec::HelperFn = match p.func {
            Func::Value(f) => Arc::new(move |mem, a| f(&cx, mem, a).map(HelperRet::Value)),
            Func::Ret(f) => Arc::new(move |mem, a| f(&cx, mem, a)),
        };
        h.insert(p.id, Vec::new(), f);
    }
    h
}

/// The memory arguments of a helper with signature `sig` whose size is known at the call,
/// for the checked dispatch ([`Helpers::call`]) that runs before every helper on both engines,
/// in every verification mode: `mem:rN` / `ro_mem:rN` (writable for `mem`), and map keys and
/// values (sized by the map the handle argument names). Arguments of unknown size
/// (`PtrToMem { size_arg: None }`, `PtrToStackOrMem`) are left to the helper, which reaches
/// them only through its [`GuestMemory`].
pub(crate) fn mem_args(sig: &HelperSig, cx: &Arc<Cx>) -> Vec<MemArg> {
    let handle = sig.args.iter().position(|k| *k == ArgKind::MapHandle);
    // The object's maps' key and value sizes by index, read at each call without finding the
    // map (each map is created from its declared shape); an inner map's through its handle.
    let sizes: Option<Arc<[(u32, u32)]>> = handle.map(|_| {
        cx.maps
            .iter()
            .map(|m| (m.key_size(), m.value_size()))
            .collect()
    });
    let map_size = |key: bool| -> Option<ArgLen> {
        let (h, cx, sizes) = (handle?, cx.clone(), sizes.clone()?);
        Some(ArgLen::From(Arc::new(
            move |a: &[u64; 5], mem: &GuestMemory<'_>| {
                let handle = *a.get(h)?;
                let (k, v) =
                    if handle & !0xffff_ffff == MAP_HANDLE_TAG && handle & INNER_HANDLE_BIT == 0 {
                        *sizes.get((handle & 0xffff_ffff) as usize)?
                    } else {
                        let m = map_of(&cx.maps, mem, handle).ok()?.1;
                        (m.key_size(), m.value_size())
                    };
                Some(u64::from(if key { k } else { v }))
            },
        )))
    };
    sig.args
        .iter()
        .enumerate()
        .filter_map(|(ptr, kind)| {
            let (len, write) = match *kind {
                ArgKind::PtrToMem { size_arg: Some(j) } => (ArgLen::Arg(j), true),
                ArgKind::PtrToReadOnlyMem { size_arg: Some(j) }
                | ArgKind::PtrToReadOnlyMemOrNull { size_arg: Some(j) } => (ArgLen::Arg(j), false),
                ArgKind::PtrToReadOnlyFixedMem { size } => (
                    ArgLen::From(Arc::new(move |_: &[u64; 5], _: &GuestMemory<'_>| {
                        Some(u64::from(size))
                    })),
                    false,
                ),
                ArgKind::MapKey => (map_size(true)?, false),
                ArgKind::MapValue => (map_size(false)?, false),
                ArgKind::MapValueOut => (map_size(false)?, true),
                ArgKind::Scalar
                | ArgKind::Anything
                | ArgKind::Ctx
                | ArgKind::CtxOrNull
                | ArgKind::MapValueOrNull
                | ArgKind::MapHandle
                | ArgKind::ProgArray
                | ArgKind::Callback(_)
                | ArgKind::CallbackCtx
                | ArgKind::ConstStr
                | ArgKind::ReleaseRecord
                | ArgKind::Sock
                | ArgKind::ReleaseSock
                | ArgKind::SockOrNull
                | ArgKind::SpinLock
                | ArgKind::Timer
                | ArgKind::TimerMap
                | ArgKind::PtrToLongOut
                | ArgKind::PtrToStackOrMem
                | ArgKind::PtrToMem { size_arg: None }
                | ArgKind::PtrToReadOnlyMem { size_arg: None }
                | ArgKind::PtrToReadOnlyMemOrNull { size_arg: None } => return None,
            };
            Some(MemArg { ptr, len, write })
        })
        .collect()
}

/// `bpf_loop(nr_loops, callback_fn, callback_ctx, flags)`: calls `callback_fn(i, ctx)` for
/// `i` in `0..nr_loops` until it returns nonzero; returns the number of calls made (the
/// kernel's `bpf_loop`). `-EINVAL` for nonzero flags and `-E2BIG` for `nr_loops` above
/// [`BPF_MAX_LOOPS`], before any call. The engine runs the callback ([`Callbacks`]).
fn bpf_loop(_: &Cx, _: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<HelperRet, HelperError> {
    const E2BIG: i64 = 7;
    let [nr_loops, callback, ctx, flags, _] = a;
    if flags != 0 {
        return Ok(HelperRet::Value((-EINVAL) as u64));
    }
    // The kernel takes nr_loops as a u32.
    let nr_loops = u64::from(nr_loops as u32);
    if nr_loops > BPF_MAX_LOOPS {
        return Ok(HelperRet::Value((-E2BIG) as u64));
    }
    Ok(HelperRet::Callback(Callbacks {
        target: callback,
        iter: Box::new(LoopIter {
            next: 0,
            nr_loops,
            ctx,
        }),
    }))
}

/// `bpf_loop`'s iteration: the index of the next call.
struct LoopIter {
    next: u64,
    nr_loops: u64,
    ctx: u64,
}

impl CallbackIter for LoopIter {
    fn next(
        &mut self,
        _: &mut GuestMemory<'_>,
        last: Option<u64>,
    ) -> Result<CallbackStep, HelperError> {
        // A nonzero result stops the loop: the calls made so far are the result.
        if last.is_some_and(|r0| r0 != 0) || self.next >= self.nr_loops {
            return Ok(CallbackStep::Done(self.next));
        }
        let i = self.next;
        self.next += 1;
        Ok(CallbackStep::Call([i, self.ctx, 0, 0, 0]))
    }
}

/// `bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags)`: calls
/// `callback_fn(map, &key, value, ctx)` for each element of an array or per-CPU array (every
/// index) or a hash, LRU hash, per-CPU hash or LRU per-CPU hash map (the keys present when the
/// helper is called, in key byte order; one deleted before its turn is skipped), until it
/// returns nonzero; returns the number of calls made (the kernel's helper). The key is a copy
/// at the bottom of the callback's frame; the value pointer points into the map (for a per-CPU
/// map, at the value of the CPU the program runs on, as in the kernel). `-EINVAL` for nonzero
/// flags and for maps of other kinds (which the verifier refuses first), before any call.
fn for_each_map_elem(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<HelperRet, HelperError> {
    let [handle, callback, ctx, flags, _] = a;
    if flags != 0 {
        return Ok(HelperRet::Value((-EINVAL) as u64));
    }
    let (_, held) = map_of(&cx.maps, mem, handle)?;
    let map = match held {
        Held::Object(m) => m.clone(),
        Held::Inner(m) => m,
    };
    let keys = match map.kind() {
        MapKind::Array | MapKind::PerCpuArray => None,
        MapKind::Hash | MapKind::LruHash | MapKind::PerCpuHash | MapKind::LruPerCpuHash => {
            Some(map.iter().map(|(k, _)| k).collect())
        }
        _ => return Ok(HelperRet::Value((-EINVAL) as u64)),
    };
    Ok(HelperRet::Callback(Callbacks {
        target: callback,
        iter: Box::new(ForEachIter {
            map,
            keys,
            next: 0,
            calls: 0,
            cpu: cx.cpu(),
            handle,
            ctx,
        }),
    }))
}

/// `for_each_map_elem`'s iteration.
struct ForEachIter {
    map: Arc<Map>,
    /// A hash map's keys when the helper was called; `None` for an array (every index).
    keys: Option<Vec<Vec<u8>>>,
    /// The next index or key to visit.
    next: usize,
    /// Callback calls made.
    calls: u64,
    /// The CPU the program runs on: a per-CPU map's callback sees that CPU's value.
    cpu: u32,
    handle: u64,
    ctx: u64,
}

impl CallbackIter for ForEachIter {
    fn next(
        &mut self,
        _: &mut GuestMemory<'_>,
        last: Option<u64>,
    ) -> Result<CallbackStep, HelperError> {
        if last.is_some_and(|r0| r0 != 0) {
            return Ok(CallbackStep::Done(self.calls));
        }
        loop {
            let key = match &self.keys {
                None if self.next < self.map.max_entries() as usize => {
                    (self.next as u32).to_le_bytes().to_vec()
                }
                Some(keys) if let Some(k) = keys.get(self.next) => k.clone(),
                _ => return Ok(CallbackStep::Done(self.calls)),
            };
            self.next += 1;
            // A key deleted since the helper was called is skipped.
            if let Some(value) = self.map.prog_lookup(&key, self.cpu) {
                self.calls += 1;
                return Ok(CallbackStep::CallWithFrame {
                    args: [self.handle, 0, value, self.ctx, 0],
                    bytes: key,
                    at: 1,
                });
            }
        }
    }
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// A map a handle names: one of the object's, or an inner map the run holds.
pub(crate) enum Held<'a> {
    Object(&'a Arc<Map>),
    Inner(Arc<Map>),
}

impl std::ops::Deref for Held<'_> {
    type Target = Map;
    fn deref(&self) -> &Map {
        match self {
            Held::Object(m) => m,
            Held::Inner(m) => m,
        }
    }
}

/// The map a handle names, with its index among the object's maps (for an inner map, the
/// handle's low bits). Binding a program creates the maps it names, so a handle a verified
/// program holds always finds its map created; an inner map's handle is valid for the run
/// that looked it up.
fn map_of<'a>(
    maps: &'a [ObjectMap],
    mem: &GuestMemory<'_>,
    handle: u64,
) -> Result<(usize, Held<'a>), HelperError> {
    if handle & !0xffff_ffff != MAP_HANDLE_TAG {
        return Err(err(format!("{handle:#x} is not a map handle")));
    }
    let idx = (handle & 0xffff_ffff) as usize;
    if handle & INNER_HANDLE_BIT != 0 {
        let pos = idx & !(INNER_HANDLE_BIT as usize);
        return run_state_ref(mem)?
            .inner
            .get(pos)
            .map(|m| (idx, Held::Inner(m.clone())))
            .ok_or_else(|| err(format!("{handle:#x} is no inner map of this run")));
    }
    let m = maps
        .get(idx)
        .ok_or_else(|| err(format!("no map with index {idx}")))?;
    m.created()
        .map(|map| (idx, Held::Object(map)))
        .ok_or_else(|| err(format!("map `{}` has no storage", m.name())))
}

/// The map a handle names (see [`map_of`]).
pub(crate) fn map_by_handle<'a>(
    cx: &'a Cx,
    mem: &GuestMemory<'_>,
    handle: u64,
) -> Result<Held<'a>, HelperError> {
    map_of(&cx.maps, mem, handle).map(|(_, m)| m)
}

/// `map_lookup_elem` on map of maps `idx`: the handle of the inner map at `key` in the run's
/// snapshot, or 0.
fn inner_lookup(st: &RunState, idx: usize, key: &[u8]) -> u64 {
    st.outers
        .iter()
        .find(|o| o.0 == idx)
        .and_then(|(_, base, slots)| slots.get(key).map(|(pos, _)| base + pos))
        .map_or(0, |pos| MAP_HANDLE_TAG | INNER_HANDLE_BIT | pos as u64)
}

fn read(
    mem: &mut GuestMemory<'_>,
    addr: u64,
    len: usize,
    what: &str,
) -> Result<Vec<u8>, HelperError> {
    mem.read(addr, len)
        .ok_or_else(|| err(format!("cannot read the {len}-byte {what} at {addr:#x}")))
}

/// Bytes a helper copied out of guest memory: on the stack up to [`SMALL_BYTES`] (map keys
/// and most values), so the common call allocates nothing.
enum Bytes {
    Small([u8; SMALL_BYTES], usize),
    Heap(Vec<u8>),
}

/// The most bytes [`Bytes`] keeps on the stack.
const SMALL_BYTES: usize = 64;

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Small(b, n) => &b[..*n],
            Bytes::Heap(v) => v,
        }
    }
}

/// [`read`] without an allocation for `len` up to [`SMALL_BYTES`].
fn read_bytes(
    mem: &mut GuestMemory<'_>,
    addr: u64,
    len: usize,
    what: &str,
) -> Result<Bytes, HelperError> {
    let mut out = if len <= SMALL_BYTES {
        Bytes::Small([0; SMALL_BYTES], len)
    } else {
        Bytes::Heap(vec![0; len])
    };
    let buf = match &mut out {
        Bytes::Small(b, n) => &mut b[..*n],
        Bytes::Heap(v) => &mut v[..],
    };
    mem.read_into(addr, buf)
        .ok_or_else(|| err(format!("cannot read the {len}-byte {what} at {addr:#x}")))?;
    Ok(out)
}

fn map_lookup_elem(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (idx, map) = map_of(&cx.maps, mem, a[0])?;
    let key = read_bytes(mem, a[1], map.key_size() as usize, "key")?;
    if matches!(map.kind(), MapKind::ArrayOfMaps | MapKind::HashOfMaps) {
        return Ok(inner_lookup(run_state_ref(mem)?, idx, &key));
    }
    if let Some(socks) = map.ext().and_then(|e| e.as_sockmap()) {
        // The entry's socket (a reference the program releases: `sock_table.rs`).
        return Ok(crate::sock_table::socket_of_entry(
            cx,
            socks.value(&key).as_deref(),
        ));
    }
    Ok(map.prog_lookup(&key, cx.cpu()).unwrap_or(0))
}

fn map_update_elem(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    let key = read_bytes(mem, a[1], map.key_size() as usize, "key")?;
    let value = read_bytes(mem, a[2], map.value_size() as usize, "value")?;
    Ok(match map.prog_update(&key, &value, a[3], cx.cpu()) {
        Ok(()) => 0,
        Err(e) => e.ret(),
    })
}

fn map_delete_elem(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    let key = read_bytes(mem, a[1], map.key_size() as usize, "key")?;
    Ok(match map.prog_delete(&key) {
        Ok(()) => 0,
        Err(e) => e.ret(),
    })
}

fn ktime_get_ns(cx: &Cx, _: &mut GuestMemory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok((cx.hooks.clock)())
}

fn trace_printk(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let fmt = read(mem, a[0], a[1].min(1024) as usize, "format string")?;
    Ok(match format_printk(mem, &fmt, &[a[2], a[3], a[4]]) {
        Some(line) => {
            (cx.hooks.trace)(&line);
            line.len() as u64
        }
        None => (-EINVAL) as u64,
    })
}

/// `bpf_trace_vprintk(fmt, fmt_size, data, data_len)`: `trace_printk` with its arguments as
/// `data_len / 8` u64s at `data` (up to twelve). A `data_len` that is not a multiple of 8 or
/// above 96, or a format with no NUL within `fmt_size`, is `-EINVAL`, as is a format
/// `trace_printk` refuses or one with more conversions than arguments.
fn trace_vprintk(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (size, len) = (a[1] & 0xffff_ffff, a[3] & 0xffff_ffff);
    if len % 8 != 0 || len > 8 * MAX_TRACE_PRINTK_VARARGS {
        return Ok((-EINVAL) as u64);
    }
    let fmt = read(mem, a[0], size as usize, "format string")?;
    if !fmt.contains(&0) {
        return Ok((-EINVAL) as u64);
    }
    let data = if len == 0 {
        Vec::new()
    } else {
        read(mem, a[2], len as usize, "arguments")?
    };
    let args: Vec<u64> = data
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok(match format_printk(mem, &fmt, &args) {
        Some(line) => {
            (cx.hooks.trace)(&line);
            line.len() as u64
        }
        None => (-EINVAL) as u64,
    })
}

/// `MAX_TRACE_PRINTK_VARARGS`: the most arguments `trace_vprintk` takes.
const MAX_TRACE_PRINTK_VARARGS: u64 = 12;

fn get_prandom_u32(cx: &Cx, _: &mut GuestMemory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(cx.hooks.prng.next(cx.cpu(), cx.hooks.cpus)))
}

fn get_smp_processor_id(cx: &Cx, _: &mut GuestMemory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(cx.cpu()))
}

fn map_lookup_percpu_elem(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    let key = read_bytes(mem, a[1], map.key_size() as usize, "key")?;
    // The CPU is a u32 in the kernel's prototype: the upper half of r3 is not part of it.
    Ok(map
        .ext()
        .and_then(|e| e.prog_lookup_on(&key, a[2] & 0xffff_ffff))
        .unwrap_or(0))
}

fn map_push_elem(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    let value = read(mem, a[1], map.value_size() as usize, "value")?;
    Ok(match map.prog_push(&value, a[2]) {
        Ok(()) => 0,
        Err(e) => e.ret(),
    })
}

fn map_pop_elem(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    pop_or_peek(cx, mem, a, true)
}

fn map_peek_elem(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    pop_or_peek(cx, mem, a, false)
}

/// `map_pop_elem` (`remove`) or `map_peek_elem`.
fn pop_or_peek(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    remove: bool,
) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    let len = map.value_size() as usize;
    if map.kind() == MapKind::BloomFilter && !remove {
        let value = read(mem, a[1], len, "value")?;
        return Ok(match map.prog_bloom_peek(&value) {
            Ok(()) => 0,
            Err(e) => e.ret(),
        });
    }
    // Checked before a pop, so a value is never taken and then lost.
    if !mem.accessible(a[1], len, true) {
        return Err(err(format!(
            "cannot write the {len}-byte value at {:#x}",
            a[1]
        )));
    }
    Ok(match map.prog_pop(remove) {
        Ok(Some(v)) => {
            mem.write(a[1], &v)
                .ok_or_else(|| err("the value's memory is not writable"))?;
            0
        }
        Ok(None) => crate::map::MapError::NotFound.ret(),
        Err(e) => e.ret(),
    })
}

fn perf_event_output(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[1])?;
    let len = usize::try_from(a[4]).map_err(|_| err("record size too large"))?;
    let mut data = read(mem, a[3], len, "record")?;
    let ctx_len = (a[2] & BPF_F_CTXLEN_MASK) >> 32;
    if ctx_len > 0 {
        // The XDP and packet-struct variants (the kernel's bpf_xdp_event_output and
        // bpf_skb_event_output) append the first `ctx_len` packet bytes to the record.
        let Some((d, e)) = run_state(mem)?.packet else {
            return Ok((-EINVAL) as u64);
        };
        let field = |mem: &mut GuestMemory<'_>, off: u16, what: &str| {
            mem.load(a[0].wrapping_add(u64::from(off)), 8)
                .ok_or_else(|| err(format!("cannot read the context's {what} at {:#x}", a[0])))
        };
        let start = field(mem, d, "data")?;
        let end = field(mem, e, "data_end")?;
        match mem.read(start, ctx_len as usize) {
            Some(bytes) if ctx_len <= end.wrapping_sub(start) => data.extend(bytes),
            _ => return Ok((-EFAULT) as u64),
        }
    }
    Ok(
        match map.perf_output(a[2] & !BPF_F_CTXLEN_MASK, cx.cpu(), &data) {
            Ok(()) => 0,
            Err(e) => e.ret(),
        },
    )
}

fn redirect_map(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    let kind = map.kind();
    let Some(targets) = map.ext().and_then(|e| e.as_redirect()) else {
        return Err(err(format!("redirect_map on {kind} map `{}`", map.name())));
    };
    let flags = a[2];
    let device = matches!(kind, MapKind::DevMap | MapKind::DevMapHash);
    let allowed = ACTION_MASK
        | if device {
            BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
        } else {
            0
        };
    if flags & !allowed != 0 {
        return Ok(0); // XDP_ABORTED, as the kernel answers unknown flags.
    }
    // The kernel's key is a u32 for these maps.
    let key = a[1] as u32;
    let target = if flags & BPF_F_BROADCAST != 0 {
        RedirectTarget::Broadcast {
            map: map.name().to_string(),
            kind,
            exclude_ingress: flags & BPF_F_EXCLUDE_INGRESS != 0,
        }
    } else if targets.present(key) {
        RedirectTarget::Map {
            map: map.name().to_string(),
            kind,
            key,
        }
    } else {
        return Ok(flags & ACTION_MASK);
    };
    run_state(mem)?.redirect = Some(target);
    Ok(XDP_REDIRECT)
}

/// `bpf_sk_redirect_map(skb, map, key, flags)` (`hash` false, a u32 key) and
/// `bpf_sk_redirect_hash(skb, map, &key, flags)`: `SK_PASS` and the socket recorded as the run's
/// redirect target when the entry holds one and the flags are at most `BPF_F_INGRESS`, else
/// `SK_DROP` (the target left as it was).
fn sk_redirect(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    hash: bool,
) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[1])?;
    let kind = map.kind();
    let Some(socks) = map.ext().and_then(|e| e.as_sockmap()) else {
        return Err(err(format!(
            "socket redirect on {kind} map `{}`",
            map.name()
        )));
    };
    let key = if hash {
        read(mem, a[2], map.key_size() as usize, "key")?
    } else {
        // The kernel's key is a u32 for socket maps.
        (a[2] as u32).to_le_bytes().to_vec()
    };
    let flags = a[3];
    if flags & !BPF_F_INGRESS != 0 || !socks.present(&key) {
        return Ok(SK_DROP);
    }
    run_state(mem)?.redirect = Some(RedirectTarget::Socket {
        map: map.name().to_string(),
        kind,
        key,
        ingress: flags & BPF_F_INGRESS != 0,
    });
    Ok(SK_PASS)
}

fn tail_call(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<HelperRet, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[1])?;
    if map.kind() != MapKind::ProgArray {
        return Err(err(format!(
            "tail_call on {} map `{}`",
            map.kind(),
            map.name()
        )));
    }
    let st = run_state(mem)?;
    if st.tail_calls >= MAX_TAIL_CALLS {
        return Ok(HelperRet::Value(crate::map::MapError::Full.ret()));
    }
    // The index is a u32 in the kernel's prototype.
    match map.slot(a[2] & 0xffff_ffff) {
        Ok(target) => {
            st.tail_calls += 1;
            // Ends the program; the runtime runs the target.
            Ok(HelperRet::TailCall(TailCall(target)))
        }
        Err(e) => Ok(HelperRet::Value(e.ret())),
    }
}

fn ringbuf_output(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (_, map) = map_of(&cx.maps, mem, a[0])?;
    if a[3] > 3 {
        return Ok((-EINVAL) as u64);
    }
    let len = usize::try_from(a[2]).map_err(|_| err("record size too large"))?;
    let data = read(mem, a[1], len, "record")?;
    Ok(match map.ring_output(&data) {
        Ok(()) => 0,
        Err(e) => e.ret(),
    })
}

fn ringbuf_reserve(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (idx, map) = map_of(&cx.maps, mem, a[0])?;
    if a[2] != 0 {
        return Ok(0);
    }
    Ok(match map.ring_reserve(a[1]) {
        Some(addr) => {
            run_state(mem)?.reserved.push((idx, addr));
            addr
        }
        None => 0,
    })
}

fn ringbuf_submit(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    ring_commit(cx, mem, a[0], false)
}

fn ringbuf_discard(cx: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    ring_commit(cx, mem, a[0], true)
}

/// `ringbuf_submit`, or `ringbuf_discard` (`discard`), of the record at `addr`.
fn ring_commit(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    addr: u64,
    discard: bool,
) -> Result<u64, HelperError> {
    let m = &cx.maps;
    let ring = |i: usize| m[i].created();
    let found = (0..m.len())
        .find(|&i| ring(i).is_some_and(|map| map.ring_contains(addr)))
        .filter(|&i| ring(i).is_some_and(|map| map.ring_commit(addr, discard)));
    match found {
        Some(i) => {
            run_state(mem)?
                .reserved
                .retain(|&(mi, ad)| (mi, ad) != (i, addr));
            Ok(0)
        }
        None => Err(err(format!(
            "{addr:#x} is not a reserved ring buffer record"
        ))),
    }
}

/// Formats a `trace_printk` message as the kernel does: `%d %i %u %x` take 32 bits, with `l`
/// or `ll` 64 bits; `%s` reads a NUL-terminated string from guest memory; `%%` is a percent
/// sign; flags `0 - + space` and a width are honoured. Anything else, or more conversions
/// than `args` (three for `trace_printk`, up to twelve for `trace_vprintk`), is `None` (the
/// helper then returns `-EINVAL`, as the kernel does).
pub(crate) fn format_printk(mem: &mut GuestMemory<'_>, fmt: &[u8], args: &[u64]) -> Option<String> {
    let end = fmt.iter().position(|&b| b == 0).unwrap_or(fmt.len());
    let fmt = &fmt[..end];
    let mut out = String::new();
    let mut next = 0usize;
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(char::from(c));
            continue;
        }
        if fmt.get(i) == Some(&b'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let (mut zero, mut left, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = fmt.get(i) {
            match f {
                b'0' => zero = true,
                b'-' => left = true,
                b'+' => plus = true,
                b' ' => space = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while let Some(d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
            width = (width * 10 + usize::from(d - b'0')).min(64);
            i += 1;
        }
        let mut longs = 0;
        while fmt.get(i) == Some(&b'l') && longs < 2 {
            longs += 1;
            i += 1;
        }
        let conv = *fmt.get(i)?;
        i += 1;
        let arg = *args.get(next)?;
        next += 1;
        let wide = longs > 0;
        let (body, numeric) = match conv {
            b'd' | b'i' => {
                let v = if wide {
                    arg as i64
                } else {
                    i64::from(arg as u32 as i32)
                };
                let sign = if v < 0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                (format!("{sign}{}", v.unsigned_abs()), true)
            }
            b'u' => (
                if wide { arg } else { u64::from(arg as u32) }.to_string(),
                true,
            ),
            b'x' => (
                format!("{:x}", if wide { arg } else { u64::from(arg as u32) }),
                true,
            ),
            b's' if longs == 0 => (read_cstr(mem, arg), false),
            _ => return None,
        };
        let pad = width.saturating_sub(body.len());
        if left {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && numeric {
            let (sign, digits) = match body.chars().next() {
                Some(s @ ('-' | '+' | ' ')) => (s.to_string(), &body[1..]),
                _ => (String::new(), &body[..]),
            };
            out.push_str(&sign);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    Some(out)
}

/// The longest `%s` argument printed, in bytes.
const MAX_STR: u64 = 256;

/// A NUL-terminated string from guest memory, up to [`MAX_STR`] bytes; `(efault)` when its
/// first byte is unreadable, as the kernel prints it.
fn read_cstr(mem: &mut GuestMemory<'_>, addr: u64) -> String {
    let mut s = Vec::new();
    for k in 0..MAX_STR {
        match mem.load(addr.wrapping_add(k), 1) {
            Some(0) => break,
            Some(b) => s.push(b as u8),
            None if k == 0 => return "(efault)".to_string(),
            None => break,
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_exec::{Region, Stack};

    fn fmt(f: &str, args: [u64; 3]) -> Option<String> {
        let mut input = *b"hi\0xx";
        let mut stack = Stack::new(1);
        let mut mem = GuestMemory {
            input: Region::new(&mut input),
            stack: stack.active_region(0),
            shared: &[],
            host: None,
        };
        let mut bytes = f.as_bytes().to_vec();
        bytes.push(0);
        let a = args.map(|v| if v == u64::MAX - 1 { mem.input.addr } else { v });
        format_printk(&mut mem, &bytes, &a)
    }

    #[test]
    fn printk_formats_like_the_kernel() {
        let s = u64::MAX - 1;
        assert_eq!(
            fmt("%d %u %x\n", [u64::MAX, u64::MAX, 255]).as_deref(),
            Some("-1 4294967295 ff\n")
        );
        assert_eq!(
            fmt("%ld %lu %lx", [u64::MAX, u64::MAX, u64::MAX]).as_deref(),
            Some("-1 18446744073709551615 ffffffffffffffff")
        );
        assert_eq!(
            fmt("%lld %llu %llx", [5, 6, 0xab]).as_deref(),
            Some("5 6 ab")
        );
        assert_eq!(fmt("%s!%%", [s, 0, 0]).as_deref(), Some("hi!%"));
        assert_eq!(fmt("%s", [8, 0, 0]).as_deref(), Some("(efault)"));
        assert_eq!(
            fmt("[%5d|%-4u|%04x|%05d]", [42, 7, 0xa]).as_deref(),
            None,
            "four conversions"
        );
        assert_eq!(
            fmt("[%5d|%-4u|%04x]", [42, 7, 0xa]).as_deref(),
            Some("[   42|7   |000a]")
        );
        assert_eq!(
            fmt("%05d", [(-3i64) as u64, 0, 0]).as_deref(),
            Some("-0003")
        );
        assert_eq!(fmt("%p", [1, 0, 0]), None);
        assert_eq!(fmt("%ls", [1, 0, 0]), None);
        assert_eq!(fmt("trailing %", [0, 0, 0]), None);
    }

    /// The table gives each id one entry, so no helper is silently shadowed by another with
    /// the same id, and the verifier's table holds each with the entry's signature.
    #[test]
    fn each_helper_has_one_entry() {
        let mut ids: Vec<u32> = TABLE.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len(), "an id is listed twice");
        let sigs = standard_sigs();
        for p in TABLE {
            assert_eq!(sigs.get(p.id), Some(&p.sig()), "{}", p.name);
            assert!(p.args.len() <= 5, "{}", p.name);
        }
    }

    #[test]
    fn seeded_random_numbers_repeat() {
        let a = AtomicU64::new(7);
        let b = AtomicU64::new(7);
        let xs: Vec<u32> = (0..4).map(|_| next_random(&a)).collect();
        let ys: Vec<u32> = (0..4).map(|_| next_random(&b)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
    }

    #[test]
    fn each_cpu_draws_its_own_reproducible_stream() {
        let draw = |p: &Prng, cpu| (0..8).map(|_| p.next(cpu, 2)).collect::<Vec<u32>>();
        let a = Prng::new(7);
        let b = Prng::new(7);
        // Interleave the CPUs differently in the two generators: each CPU's stream is the same.
        let a0 = draw(&a, 0);
        let a1 = draw(&a, 1);
        let b1 = draw(&b, 1);
        let b0 = draw(&b, 0);
        assert_eq!(a0, b0);
        assert_eq!(a1, b1);
        assert_ne!(a0, a1);
        // CPU 0's stream is the single shared stream of the seed (what one CPU always drew).
        let one = AtomicU64::new(7);
        let single: Vec<u32> = (0..8).map(|_| next_random(&one)).collect();
        assert_eq!(a0, single);
        // Another seed gives other streams.
        let c = Prng::new(8);
        assert_ne!(draw(&c, 1), a1);
    }
}
