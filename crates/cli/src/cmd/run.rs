//! `bpfx run FILE`: run a program once and print r0 (for XDP and TC, the action by name; for
//! a socket filter, the bytes kept), and optionally the maps afterwards.

use crate::engine::{CodeMemoryArg, EngineKind, Prepared, insn_at};
use crate::error::CliError;
use crate::load::{self, Loaded};
use bpfx::{Context, Engine, ProgramDef};
use bpfx_exec::{Env, Helpers};
use std::path::PathBuf;

/// What r1 points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CtxKind {
    /// Plain memory: r1 = the --mem bytes, r2 = their length.
    Memory,
    /// XDP: r1 = a `struct xdp_md` over the --packet bytes.
    Xdp,
    /// TC (sched_cls/sched_act): r1 = a `struct __sk_buff` over the --packet bytes.
    Tc,
    /// Socket filter: r1 = a `struct __sk_buff` over the --packet bytes.
    Socket,
    /// kprobe/uprobe: r1 = x86-64's `struct pt_regs` (--args fill di, si, dx, cx, r8, r9; or
    /// the 168 --mem bytes).
    Kprobe,
    /// Tracepoint: r1 = the event's record (the --mem bytes, its 8-byte common header first).
    Tracepoint,
    /// Raw tracepoint: r1 = the u64 --args (or the --mem bytes as little-endian u64s).
    #[value(alias = "raw_tp")]
    RawTracepoint,
    /// fentry/fexit/fmod_ret/tp_btf: r1 = the u64 --args then, with --ret, the return value.
    #[value(alias = "fentry", alias = "fexit")]
    Tracing,
    /// sock_ops: r1 = a `struct bpf_sock_ops` (the 216 --mem bytes).
    #[value(name = "sock_ops", alias = "sockops", alias = "sock-ops")]
    SockOps,
    /// Perf event: r1 = a `struct bpf_perf_event_data` (the 184 --mem bytes).
    #[value(name = "perf_event", alias = "perf-event")]
    PerfEvent,
    /// cgroup skb at ingress: r1 = a `struct __sk_buff` over the --packet bytes, an IP packet
    /// (from its network header), read-only.
    #[value(name = "cgroup_skb", alias = "cgroup_skb_ingress")]
    CgroupSkb,
    /// cgroup skb at egress (returns 0 to 3: bit 1 asks for congestion notification).
    #[value(name = "cgroup_skb_egress")]
    CgroupSkbEgress,
    /// sk_skb (stream parser or verdict): r1 = a `struct __sk_buff` over the --packet bytes,
    /// the stream data, which the program may rewrite; no socket (its fields read 0).
    #[value(name = "sk_skb")]
    SkSkb,
    /// sk_msg: r1 = a `struct sk_msg_md` over the --packet bytes, the message (one
    /// scatterlist element), which the program may rewrite, pull, push and pop; no socket.
    #[value(name = "sk_msg")]
    SkMsg,
    /// sk_lookup: r1 = a `struct bpf_sk_lookup` (the 72 --mem bytes, as the kernel's test run
    /// takes them: sk 0, family, protocol, addresses and ports); no sockets to select.
    #[value(name = "sk_lookup")]
    SkLookup,
    /// lwt_in: r1 = a `struct __sk_buff` over the --packet bytes, an IP packet (from its
    /// network header), read-only.
    #[value(name = "lwt_in")]
    LwtIn,
    /// lwt_out: as lwt_in.
    #[value(name = "lwt_out")]
    LwtOut,
    /// lwt_xmit: as lwt_in, the packet writable (--out writes it).
    #[value(name = "lwt_xmit")]
    LwtXmit,
    /// lwt_seg6local: as lwt_in.
    #[value(name = "lwt_seg6local")]
    LwtSeg6local,
    /// cgroup device: r1 = a `struct bpf_cgroup_dev_ctx` (the 12 --mem bytes: access_type,
    /// major, minor), read-only; returns 1 (allow) or 0 (refuse).
    #[value(name = "cgroup_device", alias = "cgroup_dev")]
    CgroupDevice,
    /// cgroup getsockopt: r1 = a `struct bpf_sockopt` over the option's bytes (--mem: the
    /// 40-byte struct, then the bytes); returns 1 or 0 (EPERM).
    #[value(name = "getsockopt", alias = "cgroup_getsockopt")]
    Getsockopt,
    /// cgroup setsockopt: as getsockopt, before the kernel's handler.
    #[value(name = "setsockopt", alias = "cgroup_setsockopt")]
    Setsockopt,
    /// cgroup sysctl: r1 = a `struct bpf_sysctl` (the 8 --mem bytes: write, file_pos) of a
    /// sysctl with no name and no value; returns 1 (allow) or 0 (refuse).
    #[value(name = "cgroup_sysctl", alias = "sysctl")]
    CgroupSysctl,
}

impl CtxKind {
    fn context(self) -> Context {
        match self {
            CtxKind::Memory => Context::Memory,
            CtxKind::Xdp => Context::Xdp,
            CtxKind::Tc => Context::Tc,
            CtxKind::Socket => Context::Socket,
            CtxKind::Kprobe => Context::Kprobe,
            CtxKind::Tracepoint => Context::TRACEPOINT,
            CtxKind::RawTracepoint => Context::RAW_TRACEPOINT,
            CtxKind::Tracing => Context::TRACING,
            CtxKind::SockOps => Context::SockOps,
            CtxKind::PerfEvent => Context::PerfEvent,
            CtxKind::CgroupSkb => Context::CgroupSkb(bpfx::CgroupSkbHook::Ingress),
            CtxKind::CgroupSkbEgress => Context::CgroupSkb(bpfx::CgroupSkbHook::Egress),
            CtxKind::SkSkb => Context::SkSkb,
            CtxKind::SkMsg => Context::SkMsg,
            CtxKind::SkLookup => Context::SkLookup,
            CtxKind::LwtIn => Context::Lwt(bpfx::LwtHook::In),
            CtxKind::LwtOut => Context::Lwt(bpfx::LwtHook::Out),
            CtxKind::LwtXmit => Context::Lwt(bpfx::LwtHook::Xmit),
            CtxKind::LwtSeg6local => Context::Lwt(bpfx::LwtHook::Seg6Local),
            CtxKind::CgroupDevice => Context::CgroupDevice,
            CtxKind::Getsockopt => Context::CgroupSockopt(bpfx::SockoptHook::Get),
            CtxKind::Setsockopt => Context::CgroupSockopt(bpfx::SockoptHook::Set),
            CtxKind::CgroupSysctl => Context::CgroupSysctl,
        }
    }

    /// The section a bare program gets to run with this context.
    fn section(self) -> &'static str {
        match self {
            CtxKind::Memory => "mem",
            CtxKind::Xdp => "xdp",
            CtxKind::Tc => "tc",
            CtxKind::Socket => "socket",
            CtxKind::Kprobe => "kprobe",
            CtxKind::Tracepoint => "tracepoint",
            CtxKind::RawTracepoint => "raw_tracepoint",
            CtxKind::Tracing => "fentry",
            CtxKind::SockOps => "sockops",
            CtxKind::PerfEvent => "perf_event",
            CtxKind::CgroupSkb => "cgroup_skb/ingress",
            CtxKind::CgroupSkbEgress => "cgroup_skb/egress",
            CtxKind::SkSkb => "sk_skb",
            CtxKind::SkMsg => "sk_msg",
            CtxKind::SkLookup => "sk_lookup",
            CtxKind::LwtIn => "lwt_in",
            CtxKind::LwtOut => "lwt_out",
            CtxKind::LwtXmit => "lwt_xmit",
            CtxKind::LwtSeg6local => "lwt_seg6local",
            CtxKind::CgroupDevice => "cgroup/dev",
            CtxKind::Getsockopt => "cgroup/getsockopt",
            CtxKind::Setsockopt => "cgroup/setsockopt",
            CtxKind::CgroupSysctl => "cgroup/sysctl",
        }
    }
}

/// Run a program once on an input memory and print its result (r0).
///
/// The program is verified first (checked mode unless --strict), then run. With a memory
/// context it gets r1 = a pointer to a writable copy of the --mem file's bytes (0 when there is
/// none) and r2 = its length; with an XDP context, r1 = an `xdp_md` over the --packet bytes, and
/// the action is printed by name; with a TC context, r1 = a `__sk_buff` over the --packet bytes
/// (empty without one), the TC_ACT_* verdict is printed by name and the skb fields the program
/// changed after it; with a socket filter, the bytes the socket keeps. An XDP packet gets the
/// kernel's 256 bytes of headroom and a page's tailroom, so the program may move its head and
/// tail (xdp_adjust_head/tail/meta); a TC packet gets the same room, so the program may grow
/// and shrink it (skb_change_tail/head, skb_adjust_room, skb_change_proto, VLAN tags). --out
/// writes the packet after the run (XDP and TC: the final frame; a socket filter: the bytes
/// kept). Tracing programs (kprobe/uprobe, tracepoint, raw tracepoint, fentry/fexit) read
/// their context from --mem (a kprobe's `struct pt_regs`, a tracepoint's record, the u64
/// arguments of the others) or from --args (and --ret for fexit). Cgroup socket-address,
/// cgroup socket, sock_ops and perf event programs read their context struct from --mem
/// (`struct bpf_sock_addr`, `bpf_sock`, `bpf_sock_ops`, `bpf_perf_event_data`, exactly its
/// size), and the fields the program may write are printed after the run, with, for sock_ops
/// and the IP socket-address hooks, the socket options `bpf_setsockopt` changed (a new TCP
/// socket's before the run). A cgroup skb program runs on the --packet bytes as an IP packet
/// (no Ethernet header), which it may only read; its socket is the packet's, as the kernel's
/// test run makes it (family from the IP version, local address the source, remote the
/// destination, ports 0); the verdict and the skb fields it changed are printed. An sk_skb
/// program runs on the --packet bytes as stream data, which it may rewrite (--out writes it),
/// with no socket; its verdict (`SK_PASS`, `SK_DROP`, a redirect to a socket map's entry) and
/// the skb fields it changed are printed. An sk_msg program runs on the --packet bytes as a
/// message in one scatterlist element, which it may rewrite, grow and shrink (--out writes the
/// final message), with no socket; its verdict, redirect and apply/cork bytes are printed. An
/// sk_lookup program reads its `struct bpf_sk_lookup` from --mem (72 bytes, the kernel's test
/// run's `ctx_in`), with no socket to select; its verdict (`SK_PASS`, `SK_DROP`) is printed. A
/// lightweight tunnel program (lwt_in, lwt_out, lwt_xmit, lwt_seg6local) runs on the --packet
/// bytes as an IP packet (no Ethernet header), which only lwt_xmit may rewrite (--out writes
/// it); its return code (`BPF_OK`, `BPF_DROP`, `BPF_REDIRECT`, `BPF_LWT_REROUTE`) and the skb
/// fields it changed are printed. A cgroup device program reads its `struct
/// bpf_cgroup_dev_ctx` from --mem (12 bytes); its verdict (allow 1, deny 0) is printed. A
/// cgroup getsockopt or setsockopt program reads its `struct bpf_sockopt` from --mem (40
/// bytes, then the option's bytes), with no socket; what the kernel makes of the call
/// (`EPERM`, `EFAULT`, `bypass`, `set`, `get`) is printed with the fields after the run, and
/// --out writes the struct and bytes as the program left them. A
/// program whose section names a type bpfx does not model (LSM, ...) is refused unless
/// --ctx says how to run it. ELF objects get their maps, global data and the standard helpers.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: an ELF object, assembler text (.asm, .s) or raw bytecode; `-` reads it
    /// from standard input.
    file: PathBuf,
    /// ELF section (or program name) holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// The ELF object's program (function) name: needed when a section holds several.
    #[arg(long, value_name = "NAME")]
    program: Option<String>,
    /// File whose bytes are the program's input memory.
    #[arg(long, value_name = "PATH", conflicts_with = "packet")]
    mem: Option<PathBuf>,
    /// The program's context [default: the program type its section implies, as libbpf
    /// maps section names; memory for other sections].
    #[arg(long, value_enum, alias = "type")]
    ctx: Option<CtxKind>,
    /// File holding the packet of an XDP, TC, socket-filter or cgroup skb run (cgroup skb: an
    /// IP packet, from its network header).
    #[arg(long, value_name = "PATH")]
    packet: Option<PathBuf>,
    /// Where to write the packet after the run (XDP, TC; for a socket filter, the bytes kept).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// TC and socket filters: the skb's `ifindex`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    ifindex: u32,
    /// XDP, TC and socket filters: the `ingress_ifindex`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    ingress_ifindex: u32,
    /// TC and socket filters: the skb's `mark`.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_u32)]
    mark: u32,
    /// TC and socket filters: the skb's `priority`.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_u32)]
    priority: u32,
    /// TC and socket filters: the skb's `hash`.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_u32)]
    hash: u32,
    /// TC and socket filters: the skb's `protocol`, an EtherType (0x0800 for IPv4) [default:
    /// the packet's EtherType, bytes 12 and 13].
    #[arg(long, value_name = "N", value_parser = parse_u16)]
    protocol: Option<u16>,
    /// XDP and TC: the forwarding table `bpf_fib_lookup` asks, from a JSON file of routes
    /// (docs/cli.md, "Forwarding table") [default: none, nothing is forwarded].
    #[arg(long, value_name = "PATH")]
    fib: Option<PathBuf>,
    /// Tracing programs: the traced function's (or raw tracepoint's) arguments, comma-separated
    /// numbers (a kprobe's go into di, si, dx, cx, r8, r9, as the x86-64 calling convention
    /// passes them).
    #[arg(
        long,
        value_name = "N,..",
        value_delimiter = ',',
        value_parser = parse_signed,
        allow_hyphen_values = true,
        conflicts_with = "mem"
    )]
    args: Option<Vec<u64>>,
    /// fexit and fmod_ret: the traced function's return value (after the arguments).
    #[arg(long, value_name = "N", value_parser = parse_signed, allow_hyphen_values = true)]
    ret: Option<u64>,
    /// Tracing programs: the traced function's address (`bpf_get_func_ip`).
    #[arg(long, value_name = "ADDR", value_parser = parse_num, default_value_t = 0)]
    func_ip: u64,
    /// Tracing programs: the attachment's cookie (`bpf_get_attach_cookie`).
    #[arg(long, value_name = "N", value_parser = parse_num, default_value_t = 0)]
    cookie: u64,
    /// Cgroup socket and sock_ops programs: the socket's cookie (`bpf_get_socket_cookie`).
    #[arg(long, value_name = "N", value_parser = parse_num, default_value_t = 0)]
    socket_cookie: u64,
    /// Cgroup socket and sock_ops programs: the socket's network namespace cookie
    /// (`bpf_get_netns_cookie`).
    #[arg(long, value_name = "N", value_parser = parse_num, default_value_t = 0)]
    netns_cookie: u64,
    /// Print the contents of every map after the run.
    #[arg(long)]
    dump_maps: bool,
    /// Fill maps before the first run from a JSON file: `{"MAP": [{"key": K, "value": V}, ...]}`
    /// (docs/cli.md, "Initial map contents").
    #[arg(long = "maps", value_name = "PATH")]
    maps: Option<PathBuf>,
    /// Seed `get_prandom_u32`: runs with the same seed draw the same numbers (each CPU slot,
    /// so each replay worker, from its own sequence).
    #[arg(long, value_name = "N", value_parser = parse_num)]
    seed: Option<u64>,
    /// After the run, print array MAP of log2 buckets (entry k counts [2^k, 2^(k+1)), entry 0
    /// [0, 2)) as bpftrace's `hist()` does; repeatable.
    #[arg(long, value_name = "MAP")]
    hist: Vec<String>,
    /// Engine to run on.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    engine: EngineKind,
    /// Verify in strict mode: reject any program whose memory accesses cannot be proven safe.
    #[arg(long)]
    strict: bool,
    /// Stop after N executed instructions with a budget-exhausted trap [default: no limit for
    /// a program proven to terminate, 2^28 instructions for any other].
    #[arg(long, value_name = "N")]
    budget: Option<u64>,
    /// Run a program whose termination is not proven without the default budget: it may
    /// never end.
    #[arg(long, conflicts_with = "budget")]
    no_budget: bool,
    /// Compile with the JIT's hardening: constant blinding and Spectre v1 masking (see
    /// docs/safety.md). The interpreter needs none: refused with --engine interp.
    #[arg(long)]
    hardened: bool,
    /// Where the JIT's code lives: sealed mappings, or the dual-mapped arena (see
    /// docs/safety.md) [default: sealed]. Refused with --engine interp.
    #[arg(long, value_enum)]
    code_memory: Option<CodeMemoryArg>,
    /// Memory limit for the object's maps (values and bookkeeping), global data and JIT code,
    /// in bytes (suffixes K, M, G: powers of 1024) [default: 1G]. What does not fit is refused
    /// before it is allocated.
    #[arg(long, value_name = "BYTES", value_parser = load::parse_bytes)]
    mem_limit: Option<u64>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The program's file.
    pub(crate) fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// Whether --json was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Whether --dump-maps was given.
    pub(crate) fn dump_maps(&self) -> bool {
        self.dump_maps
    }

    /// The --hist maps.
    pub(crate) fn hist(&self) -> &[String] {
        &self.hist
    }

    /// The engine --engine names.
    pub(crate) fn engine(&self) -> EngineKind {
        self.engine
    }

    /// Whether --strict was given.
    pub(crate) fn strict(&self) -> bool {
        self.strict
    }

    /// Whether --hardened was given.
    pub(crate) fn hardened(&self) -> bool {
        self.hardened
    }

    /// The JIT code memory --code-memory names.
    pub(crate) fn code_memory(&self) -> CodeMemoryArg {
        self.code_memory.unwrap_or_default()
    }

    /// The --out path.
    pub(crate) fn out(&self) -> Option<&std::path::Path> {
        self.out.as_deref()
    }

    /// The --ingress-ifindex value.
    pub(crate) fn ingress_ifindex(&self) -> u32 {
        self.ingress_ifindex
    }

    /// The context --ctx names, if given.
    pub(crate) fn ctx(&self) -> Option<CtxKind> {
        self.ctx
    }

    /// Whether an input file was given (--mem or --packet).
    pub(crate) fn has_input(&self) -> bool {
        self.mem.is_some() || self.packet.is_some()
    }

    /// Refuses the JIT's options on the interpreter (a usage error).
    pub(crate) fn check(&self) -> Result<(), CliError> {
        if self.engine == EngineKind::Interp {
            let jit_only = [
                ("--hardened", self.hardened),
                ("--code-memory", self.code_memory.is_some()),
            ];
            if let Some((flag, _)) = jit_only.iter().find(|(_, on)| *on) {
                return Err(CliError::Usage(format!(
                    "{flag} is an option of the JIT, not of --engine interp"
                )));
            }
        }
        Ok(())
    }
}

/// A number, decimal or 0x-prefixed hexadecimal.
fn parse_num(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not a number"))
}

/// A number as [`parse_num`] reads it, or a negative decimal (two's complement).
fn parse_signed(s: &str) -> Result<u64, String> {
    match s.trim().strip_prefix('-') {
        Some(n) => parse_num(n).map(|v| v.wrapping_neg()),
        None => parse_num(s.trim()),
    }
}

fn parse_u32(s: &str) -> Result<u32, String> {
    u32::try_from(parse_num(s)?).map_err(|_| format!("`{s}` does not fit in 32 bits"))
}

fn parse_u16(s: &str) -> Result<u16, String> {
    u16::try_from(parse_num(s)?).map_err(|_| format!("`{s}` does not fit in 16 bits"))
}

fn read_opt(path: Option<&PathBuf>) -> Result<Vec<u8>, CliError> {
    match path {
        Some(p) => load::read(p),
        None => Ok(Vec::new()),
    }
}

/// The runtime the options ask for: the memory limit, the `get_prandom_u32` seed and the
/// forwarding table.
fn base_vm(args: &Args) -> Result<bpfx::Vm, CliError> {
    let vm = load::vm(args.mem_limit);
    let vm = match args.seed {
        Some(seed) => vm.seed(seed),
        None => vm,
    };
    Ok(match &args.fib {
        Some(path) => vm.fib_table(crate::fib::load(path)?),
        None => vm,
    })
}

/// Fills the maps of `obj` from the --maps file, if one was given, and checks that every
/// --hist map is a histogram. A program array's programs are verified and prepared as the
/// run's program `name` is, in its context (`input_size`: the size of its --mem input).
pub(crate) fn init_maps(
    args: &Args,
    obj: &bpfx::Object,
    name: &str,
    input_size: u64,
) -> Result<(), CliError> {
    if let Some(path) = &args.maps {
        let ctx = context(obj, name, args.ctx);
        crate::maps_init::apply(path, obj, &mut |target| {
            let pref = program_ref(&args.file, obj, target, ctx, input_size)?;
            prepare(args, verify(args, pref)?)
        })?;
    }
    crate::maps_init::hists(obj, &args.hist)?;
    Ok(())
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    args.check()?;
    let vm = base_vm(args)?;
    let loaded = load::load_with(
        &vm,
        &args.file,
        load::Select::new(args.section.as_ref(), args.program.as_ref()),
    )?;
    match loaded {
        Loaded::Object { obj, program } => run_object(args, &obj, &program),
        Loaded::Plain(prog)
            if args.ctx.is_some_and(|c| c != CtxKind::Memory)
                || args.dump_maps
                || args.maps.is_some()
                || args.seed.is_some()
                || !args.hist.is_empty() =>
        {
            // A bare program runs through the same path as an object's, with no maps.
            run_object(args, &wrap(args, &vm, prog)?, "prog")
        }
        Loaded::Plain(prog) => run_plain(args, prog),
    }
}

fn mode(strict: bool) -> bpfx::Mode {
    if strict {
        bpfx::Mode::Strict
    } else {
        bpfx::Mode::Checked
    }
}

/// Converts a facade error, keeping the CLI's wording for verifier rejections and traps.
pub(crate) fn facade_error(path: &std::path::Path, e: bpfx::Error) -> CliError {
    match e {
        bpfx::Error::Verify { source, .. } => CliError::Verify(*source),
        bpfx::Error::Run(bpfx::RunError::Trap {
            trap,
            insn,
            reason,
            access,
            ..
        }) => CliError::Trap {
            trap,
            insn,
            reason,
            access,
        },
        source => CliError::Object {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The context of program `name` of `obj`: what `--ctx` asks for, or what its section (failing
/// that, its BTF) implies.
pub(crate) fn context(obj: &bpfx::Object, name: &str, ctx: Option<CtxKind>) -> Context {
    match ctx {
        Some(c) => c.context(),
        None => obj
            .programs()
            .find(|p| p.name == name)
            .map_or(Context::Memory, |p| p.context()),
    }
}

/// The program `name` of `obj` in context `ctx`, told the input size for a plain-memory
/// context: what `run`, `bench` and `jit-dump` verify.
pub(crate) fn program_ref<'o>(
    path: &std::path::Path,
    obj: &'o bpfx::Object,
    name: &str,
    ctx: Context,
    input_size: u64,
) -> Result<bpfx::ProgramRef<'o>, CliError> {
    let pref = obj
        .program(name)
        .map_err(|e| facade_error(path, e))?
        .context(ctx);
    Ok(if ctx == Context::Memory {
        pref.input_size(input_size)
    } else {
        pref
    })
}

/// The input of a run: the `--mem` bytes, and for XDP, TC and socket filters the `--packet`
/// bytes with the metadata the flags give.
pub(crate) struct Input {
    /// The program's context.
    pub(crate) ctx: Context,
    /// The --mem bytes (plain memory context).
    pub(crate) mem: Vec<u8>,
    /// The --packet bytes (XDP, TC, socket filter).
    pub(crate) packet: Vec<u8>,
    /// XDP metadata from the flags.
    pub(crate) xdp: bpfx::XdpMeta,
    /// The socket buffer's metadata from the flags (TC, socket filter), before a run.
    pub(crate) meta: bpfx::SkbMeta,
    /// The metadata after the last TC run (the fields the program may write).
    pub(crate) after: bpfx::SkbMeta,
    /// The bytes of the packet the last run kept (a socket filter's verdict; else all).
    pub(crate) kept: usize,
    /// Where the last XDP run left the frame's start, from where it was (negative: the head
    /// grew), and the bytes of metadata before it.
    pub(crate) moved: i64,
    pub(crate) meta_len: usize,
    /// Where the last XDP or TC run redirected the packet.
    pub(crate) redirect: Option<bpfx::RedirectTarget>,
    /// The copies of the packet the last TC run sent with `clone_redirect`.
    pub(crate) clones: Vec<bpfx::ClonedPacket>,
    /// The last sk_msg run's `msg_apply_bytes` and `msg_cork_bytes` numbers (0: not set).
    pub(crate) apply_cork: (u32, u32),
    /// A tracing run's arguments (--args) and return value (--ret).
    pub(crate) args: Option<Vec<u64>>,
    pub(crate) ret: Option<u64>,
    /// The socket a cgroup socket or sock_ops run is for (--socket-cookie, --netns-cookie).
    pub(crate) ids: bpfx::SockIds,
    /// The packet's socket in a cgroup skb run (from the packet: `BpfSock::of_ip_packet`).
    pub(crate) sock: bpfx::BpfSock,
}

/// Opens `--file` as `run` does, with the runtime `configure` returns: an ELF object with its
/// maps and the chosen program, or a bare program as an object without maps (on the standard
/// helpers), in section `xdp` for `--ctx xdp`.
pub(crate) fn open_with(
    args: &Args,
    configure: impl FnOnce(bpfx::Vm) -> bpfx::Vm,
) -> Result<(bpfx::Object, String), CliError> {
    args.check()?;
    let vm = configure(base_vm(args)?);
    match load::load_with(
        &vm,
        &args.file,
        load::Select::new(args.section.as_ref(), args.program.as_ref()),
    )? {
        Loaded::Object { obj, program } => Ok((obj, program)),
        Loaded::Plain(prog) => Ok((wrap(args, &vm, prog)?, "prog".to_string())),
    }
}

fn wrap(
    args: &Args,
    vm: &bpfx::Vm,
    prog: bpfx_bytecode::Program,
) -> Result<bpfx::Object, CliError> {
    let section = args.ctx.map_or("mem", CtxKind::section);
    vm.object(vec![ProgramDef::new("prog", section, prog)], vec![])
        .map_err(|source| CliError::Object {
            path: args.file.clone(),
            source,
        })
}

/// The chosen program of `obj` with its context and input, not yet verified.
pub(crate) fn setup<'o>(
    args: &Args,
    obj: &'o bpfx::Object,
    name: &str,
) -> Result<(bpfx::ProgramRef<'o>, Input), CliError> {
    let mem = read_opt(args.mem.as_ref())?;
    let ctx = context(obj, name, args.ctx);
    let pref = program_ref(&args.file, obj, name, ctx, mem.len() as u64)?;
    let packet = match (ctx, &args.packet) {
        (
            Context::Xdp
            | Context::Tc
            | Context::Socket
            | Context::CgroupSkb(_)
            | Context::SkSkb
            | Context::SkMsg
            | Context::Lwt(_),
            Some(p),
        ) => load::read(p)?,
        (Context::Xdp, None) => {
            return Err(CliError::Usage(
                "an XDP program needs its packet: --packet FILE".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(CliError::Usage(
                "--packet is for XDP, TC, socket-filter, cgroup skb, sk_skb, sk_msg and lwt \
                 programs (--ctx xdp|tc|socket|cgroup_skb|sk_skb|sk_msg|lwt_*)"
                    .into(),
            ));
        }
        _ => Vec::new(),
    };
    let tracing_args = matches!(
        ctx,
        Context::Kprobe | Context::RawTracepoint { .. } | Context::Tracing { .. }
    );
    if args.args.is_some() && !tracing_args {
        return Err(CliError::Usage(
            "--args is for kprobe, raw tracepoint and tracing programs".into(),
        ));
    }
    if args.ret.is_some() && !matches!(ctx, Context::Tracing { .. }) {
        return Err(CliError::Usage(
            "--ret is for fexit and fmod_ret programs (--ctx tracing)".into(),
        ));
    }
    if matches!(ctx, Context::Kprobe) && args.args.is_none() && mem.len() != bpfx::PT_REGS_SIZE {
        return Err(CliError::Usage(format!(
            "a kprobe program runs on a struct pt_regs: --mem of {} bytes ({} given), or --args",
            bpfx::PT_REGS_SIZE,
            mem.len()
        )));
    }
    if let Some(size) = struct_size(ctx)
        && mem.len() != size
    {
        return Err(CliError::Usage(format!(
            "a {} program runs on its context struct: --mem of {size} bytes ({} given)",
            ctx.name(),
            mem.len()
        )));
    }
    if ctx == Context::SkLookup && bpfx::SkLookup::from_ctx(&mem).is_none() {
        return Err(CliError::Usage(
            "an sk_lookup program's --mem is a struct bpf_sk_lookup with sk 0, family AF_INET \
             (2) or AF_INET6 (10), protocol TCP (6) or UDP (17) and a local port below 65536"
                .into(),
        ));
    }
    if matches!(ctx, Context::RawTracepoint { .. } | Context::Tracing { .. })
        && !mem.len().is_multiple_of(8)
    {
        return Err(CliError::Usage(format!(
            "a {} program runs on u64 arguments: --mem of {} bytes is not a whole number of them",
            ctx.name(),
            mem.len()
        )));
    }
    if matches!(ctx, Context::CgroupSockopt(_)) && mem.len() < bpfx::SOCKOPT_CTX_SIZE {
        return Err(CliError::Usage(format!(
            "a cgroup_sockopt program runs on a struct bpf_sockopt: --mem of at least {} bytes \
             (the struct, then the option's bytes; {} given)",
            bpfx::SOCKOPT_CTX_SIZE,
            mem.len()
        )));
    }
    if args.out.is_some() && matches!(ctx, Context::Memory | Context::Struct(_)) {
        return Err(CliError::Usage(
            "--out writes the packet of an XDP, TC or socket-filter run".into(),
        ));
    }
    let mut meta = skb_meta(args, &packet);
    if matches!(ctx, Context::CgroupSkb(_) | Context::Lwt(_)) && args.protocol.is_none() {
        meta.protocol = bpfx::ip_ethertype(&packet);
    }
    let xdp = bpfx::XdpMeta {
        ingress_ifindex: args.ingress_ifindex,
        ..Default::default()
    };
    let kept = packet.len();
    // An sk_skb program's data is a stream's, an sk_msg program's a message, not an IP
    // packet: no socket to read from it.
    let sock = if matches!(ctx, Context::SkSkb | Context::SkMsg) {
        bpfx::BpfSock::default()
    } else {
        bpfx::BpfSock::of_ip_packet(&packet)
    };
    Ok((
        pref,
        Input {
            ctx,
            mem,
            packet,
            xdp,
            meta,
            after: meta,
            kept,
            moved: 0,
            meta_len: 0,
            redirect: None,
            clones: Vec::new(),
            apply_cork: (0, 0),
            args: args.args.clone(),
            ret: args.ret,
            ids: bpfx::SockIds {
                cookie: args.socket_cookie,
                netns_cookie: args.netns_cookie,
            },
            sock,
        },
    ))
}

/// Verifies the program (in the mode --strict asks for).
pub(crate) fn verify(args: &Args, pref: bpfx::ProgramRef<'_>) -> Result<bpfx::Verified, CliError> {
    pref.verify(mode(args.strict))
        .map_err(|e| facade_error(&args.file, e))
}

/// Prepares a verified program for the engine, with the JIT options and the budget asked for.
pub(crate) fn prepare(args: &Args, v: bpfx::Verified) -> Result<bpfx::Program, CliError> {
    let mut prog = match args.engine {
        EngineKind::Jit => v.compile_with(&jit_options(args)),
        EngineKind::Interp => v.engine(Engine::Interpreter, args.budget.is_some()),
    }
    .map_err(|e| facade_error(&args.file, e))?;
    rearm(args, &mut prog);
    prog.set_attach(bpfx::Attach {
        func_ip: args.func_ip,
        cookie: args.cookie,
    });
    Ok(prog)
}

/// Gives the program its whole budget again, for one more run.
pub(crate) fn rearm(args: &Args, prog: &mut bpfx::Program) {
    prog.set_budget(budget(args.budget, args.no_budget));
}

/// Runs once: r0, and for XDP, TC and socket filters the verdict by name (a TC run leaves
/// the skb fields it wrote in `input.after`, a socket filter the bytes kept in `input.kept`).
pub(crate) fn exec(
    prog: &mut bpfx::Program,
    input: &mut Input,
) -> Result<(u64, Option<String>), bpfx::RunError> {
    input.kept = input.packet.len();
    (input.moved, input.meta_len, input.redirect) = (0, 0, None);
    input.apply_cork = (0, 0);
    input.clones.clear();
    match input.ctx {
        Context::Xdp => {
            // A packet buffer with the kernel's headroom and tailroom: the program may move
            // the frame's head and tail; the packet becomes the final frame (after a trap too).
            let mut p = bpfx::Packet::new(&input.packet);
            let start = p.start() as i64;
            let res = prog.run_xdp_packet_with(&mut p, &input.xdp);
            input.packet = p.to_vec();
            input.kept = input.packet.len();
            input.moved = p.start() as i64 - start;
            input.meta_len = p.meta().len();
            res.map(|o| {
                input.redirect = o.redirect;
                (o.action.code(), Some(o.action.to_string()))
            })
        }
        Context::Tc => {
            // A packet buffer as for XDP: the program may grow and shrink the packet
            // (skb_change_tail, skb_adjust_room, VLAN tags, ...); the packet becomes the
            // final one, after a trap too.
            input.after = input.meta;
            let mut p = bpfx::Packet::new(&input.packet);
            let start = p.start() as i64;
            let res = prog.run_tc_packet(&mut p, &input.meta);
            input.packet = p.to_vec();
            input.kept = input.packet.len();
            input.moved = p.start() as i64 - start;
            input.redirect = prog.last_redirect();
            res.map(|o| {
                input.after = o.meta;
                input.clones = o.clones;
                let a = o.action;
                (u64::from(a.code() as u32), Some(a.to_string()))
            })
        }
        Context::Socket => prog.run_socket(&input.packet, &input.meta).map(|v| {
            input.kept = v.kept;
            (u64::from(v.code), Some(v.to_string()))
        }),
        Context::CgroupSkb(_) => {
            let mut after = input.meta;
            let res = prog.run_cgroup_skb(&input.packet, &mut after, &input.sock, &input.ids);
            input.after = after;
            res.map(|v| (u64::from(v.code), Some(v.to_string())))
        }
        Context::SkSkb => {
            let mut after = input.meta;
            let res = prog.run_sk_skb(&mut input.packet, &mut after, &input.sock, &input.ids);
            input.after = after;
            res.map(|o| {
                input.redirect = o.redirect;
                (u64::from(o.code as u32), Some(o.action.to_string()))
            })
        }
        Context::SkMsg => {
            // The message may grow and shrink: it becomes what the program left (after a trap
            // too).
            let mut msg = bpfx::SkMsg::new(std::mem::take(&mut input.packet));
            let res = prog.run_sk_msg(&mut msg, &input.sock, &input.ids);
            input.packet = msg.bytes().to_vec();
            input.kept = input.packet.len();
            res.map(|o| {
                input.redirect = o.redirect;
                input.apply_cork = (o.apply_bytes, o.cork_bytes);
                (u64::from(o.code as u32), Some(o.action.to_string()))
            })
        }
        Context::Kprobe => {
            let regs = match &input.args {
                Some(a) => bpfx::PtRegs::with_args(a),
                // setup() checked the size.
                None => bpfx::PtRegs::from_bytes(&input.mem).unwrap_or_default(),
            };
            prog.run_kprobe(&regs).map(|r0| (r0, None))
        }
        Context::Tracepoint { .. } => prog.run_tracepoint(&input.mem).map(|r0| (r0, None)),
        Context::RawTracepoint { .. } | Context::Tracing { .. } => {
            let words = match &input.args {
                Some(a) => a.clone(),
                None => input
                    .mem
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            };
            if matches!(input.ctx, Context::Tracing { .. }) {
                prog.run_tracing(&words, input.ret)
            } else {
                prog.run_raw_tp(&words)
            }
            .map(|r0| (r0, None))
        }
        // setup() checked the sizes; the struct comes back with the program's writes.
        Context::SockAddr(_) => {
            let mut a = bpfx::SockAddr::from_bytes(&input.mem).unwrap_or_default();
            let res = prog.run_sock_addr(&mut a, &input.ids);
            input.mem = a.to_bytes().to_vec();
            res.map(|r0| (r0, None))
        }
        Context::Sock(_) => {
            let mut sk = bpfx::BpfSock::from_bytes(&input.mem).unwrap_or_default();
            let res = prog.run_sock(&mut sk, &input.ids);
            input.mem = sk.to_bytes().to_vec();
            res.map(|r0| (r0, None))
        }
        Context::SockOps => {
            let mut o = bpfx::SockOps::from_bytes(&input.mem).unwrap_or_default();
            let res = prog.run_sock_ops(&mut o, &input.ids);
            input.mem = o.to_bytes().to_vec();
            res.map(|r0| (r0, None))
        }
        Context::Lwt(_) => {
            let mut after = input.meta;
            let res = prog.run_lwt(&mut input.packet, &mut after);
            input.after = after;
            res.map(|o| {
                input.redirect = o.redirect;
                (
                    u64::from(o.action.code() as u32),
                    Some(o.action.to_string()),
                )
            })
        }
        // setup() checked the struct; `cookie` comes back as the selected socket's (0).
        Context::SkLookup => {
            let Some(l) = bpfx::SkLookup::from_ctx(&input.mem) else {
                return prog.run(&mut input.mem).map(|r0| (r0, None));
            };
            let res = prog.run_sk_lookup(&l, None);
            res.map(|o| {
                input.mem[..8].copy_from_slice(&o.cookie.to_le_bytes());
                (u64::from(o.code), Some(o.to_string()))
            })
        }
        // setup() checked the size; the struct and bytes come back as the program left them.
        Context::CgroupSockopt(_) => {
            let call = bpfx::SockoptCall::from_bytes(&input.mem).unwrap_or_default();
            let res = prog.run_sockopt(&call, &input.sock, &input.ids);
            res.map(|o| {
                input.mem = o.call.to_bytes();
                input.packet = input.mem.clone();
                input.kept = input.packet.len();
                (u64::from(o.code), Some(o.result.to_string()))
            })
        }
        // setup() checked the size; `file_pos` comes back as the program left it.
        Context::CgroupSysctl => {
            let sysctl = bpfx::Sysctl::from_ctx(&input.mem).unwrap_or_default();
            prog.run_sysctl(&sysctl).map(|o| {
                if let Some(pos) = input.mem.get_mut(4..8) {
                    pos.copy_from_slice(&o.file_pos.to_le_bytes());
                }
                let verdict = if bpfx::dev_allowed(u64::from(o.code)) {
                    "allow"
                } else {
                    "deny"
                };
                (u64::from(o.code), Some(verdict.to_string()))
            })
        }
        // setup() checked the size.
        Context::CgroupDevice => {
            let a = bpfx::DevAccess::from_bytes(&input.mem).unwrap_or_default();
            prog.run_cgroup_dev(&a).map(|r0| {
                let verdict = if bpfx::dev_allowed(r0) {
                    "allow"
                } else {
                    "deny"
                };
                (r0, Some(verdict.to_string()))
            })
        }
        Context::PerfEvent => {
            let d = bpfx::PerfEventData::from_bytes(&input.mem).unwrap_or_default();
            prog.run_perf_event(&d, &bpfx::PerfEventValue::default())
                .map(|r0| (r0, None))
        }
        _ => prog.run(&mut input.mem).map(|r0| (r0, None)),
    }
}

/// The size of the UAPI struct a socket or perf event context is, which --mem must hold.
fn struct_size(ctx: Context) -> Option<usize> {
    match ctx {
        Context::SockAddr(_) => Some(bpfx::SOCK_ADDR_SIZE),
        Context::Sock(_) => Some(bpfx::BPF_SOCK_SIZE),
        Context::SockOps => Some(bpfx::SOCK_OPS_SIZE),
        Context::PerfEvent => Some(bpfx::PERF_EVENT_DATA_SIZE),
        Context::SkLookup => Some(bpfx::SK_LOOKUP_CTX_SIZE),
        Context::CgroupDevice => Some(bpfx::CGROUP_DEV_CTX_SIZE),
        Context::CgroupSysctl => Some(bpfx::SYSCTL_CTX_SIZE),
        _ => None,
    }
}

/// The fields a socket program may write, as the run left them: JSON and text lines.
fn sock_fields(ctx: Context, mem: &[u8]) -> Option<(serde_json::Value, String)> {
    let fields: Vec<(&str, serde_json::Value)> = match ctx {
        Context::SockAddr(_) => {
            let a = bpfx::SockAddr::from_bytes(mem)?;
            vec![
                ("user_ip4", a.user_ip4.to_string().into()),
                ("user_ip6", a.user_ip6.to_string().into()),
                ("user_port", a.user_port.into()),
                ("msg_src_ip4", a.msg_src_ip4.to_string().into()),
                ("msg_src_ip6", a.msg_src_ip6.to_string().into()),
            ]
        }
        Context::Sock(_) => {
            let sk = bpfx::BpfSock::from_bytes(mem)?;
            vec![
                ("bound_dev_if", sk.bound_dev_if.into()),
                ("mark", sk.mark.into()),
                ("priority", sk.priority.into()),
            ]
        }
        Context::SockOps => {
            let o = bpfx::SockOps::from_bytes(mem)?;
            vec![
                ("reply", o.reply().into()),
                ("sk_txhash", o.tcp[bpfx::SOCK_OPS_TXHASH].into()),
                ("bpf_sock_ops_cb_flags", o.cb_flags().into()),
            ]
        }
        Context::CgroupSockopt(_) => {
            let c = bpfx::SockoptCall::from_bytes(mem)?;
            vec![
                ("level", c.level.into()),
                ("optname", c.optname.into()),
                ("optlen", c.optlen.into()),
                ("retval", c.retval.into()),
            ]
        }
        _ => return None,
    };
    let text = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {}\n",
                v.as_str().map_or(v.to_string(), str::to_string)
            )
        })
        .collect();
    let json = serde_json::Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    Some((json, text))
}

/// The socket's options after a run of a program that may call `bpf_setsockopt` (sock_ops,
/// the IP socket-address hooks): every option in JSON, those the run changed from a new
/// socket's as text lines (`sockopt NAME: VALUE`).
fn sock_options_out(ctx: Context, o: &bpfx::SockOptions) -> Option<(serde_json::Value, String)> {
    match ctx {
        Context::SockOps => {}
        Context::SockAddr(h) if h.ip() => {}
        _ => return None,
    }
    let opt = |v: Option<u32>| v.map_or(serde_json::Value::Null, Into::into);
    let fields = |o: &bpfx::SockOptions| -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("rcvbuf", o.rcvbuf.into()),
            ("sndbuf", o.sndbuf.into()),
            ("mark", o.mark.into()),
            ("priority", o.priority.into()),
            ("keepalive", o.keepalive.into()),
            ("reuseaddr", o.reuseaddr.into()),
            ("reuseport", o.reuseport.into()),
            ("max_pacing_rate", o.max_pacing_rate.into()),
            ("rcvlowat", o.rcvlowat.into()),
            ("txrehash", o.txrehash.into()),
            ("bound_dev_if", o.bound_dev_if.into()),
            ("nodelay", o.nodelay.into()),
            ("user_mss", o.user_mss.into()),
            ("keepidle", o.keepidle.into()),
            ("keepintvl", o.keepintvl.into()),
            ("keepcnt", o.keepcnt.into()),
            ("syncnt", o.syncnt.into()),
            ("window_clamp", o.window_clamp.into()),
            ("thin_linear_timeouts", o.thin_linear_timeouts.into()),
            ("user_timeout", o.user_timeout.into()),
            ("notsent_lowat", o.notsent_lowat.into()),
            ("save_syn", o.save_syn.into()),
            ("congestion", o.congestion.clone().into()),
            ("snd_cwnd", opt(o.snd_cwnd)),
            ("snd_cwnd_clamp", opt(o.snd_cwnd_clamp)),
            ("delack_max_us", opt(o.delack_max_us)),
            ("rto_min_us", opt(o.rto_min_us)),
            ("tos", o.tos.into()),
            ("tclass", o.tclass.into()),
            ("autoflowlabel", o.autoflowlabel.into()),
        ]
    };
    let now = fields(o);
    let text = now
        .iter()
        .zip(fields(&bpfx::SockOptions::default()))
        .filter(|((_, v), (_, d))| v != d)
        .map(|((k, v), _)| {
            format!(
                "sockopt {k}: {}\n",
                v.as_str().map_or(v.to_string(), str::to_string)
            )
        })
        .collect();
    let json = serde_json::Value::Object(now.into_iter().map(|(k, v)| (k.into(), v)).collect());
    Some((json, text))
}

fn run_object(args: &Args, obj: &bpfx::Object, name: &str) -> Result<(), CliError> {
    let err = |e: bpfx::RunError| facade_error(&args.file, e.into());
    let (pref, mut input) = setup(args, obj, name)?;
    init_maps(args, obj, name, input.mem.len() as u64)?;
    let mut prog = prepare(args, verify(args, pref)?)?;
    let len_before = input.packet.len();
    let outcome = exec(&mut prog, &mut input);
    if let (Ok(_), Some(path)) = (&outcome, &args.out) {
        std::fs::write(path, &input.packet[..input.kept]).map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let (ctx, kept, meta, after) = (input.ctx, input.kept, input.meta, input.after);
    let redirect = input.redirect.take();
    // A stream parser returns a length, not a verdict: printed as a number.
    let parser = ctx == Context::SkSkb
        && obj
            .programs()
            .any(|p| p.name == name && p.section == "sk_skb/stream_parser");
    let outcome = outcome.map(|(r0, action)| (r0, if parser { None } else { action }));
    let mut obj_json = serde_json::json!({ "engine": args.engine.name() });
    let text = match &outcome {
        Ok((r0, action)) => {
            crate::error::set_u64(&mut obj_json, "result", *r0);
            if let Some(a) = action {
                obj_json["action"] = a.clone().into();
            }
            if let Some(left) = prog.budget() {
                obj_json["budget_left"] = left.into();
            }
            if matches!(
                ctx,
                Context::Xdp
                    | Context::Tc
                    | Context::Socket
                    | Context::CgroupSkb(_)
                    | Context::SkSkb
                    | Context::SkMsg
                    | Context::Lwt(_)
            ) {
                obj_json["packet_len"] = kept.into();
            }
            if ctx == Context::Socket {
                obj_json["kept"] = kept.into();
            }
            if matches!(ctx, Context::Xdp | Context::Tc) {
                obj_json["packet_start"] = input.moved.into();
            }
            if ctx == Context::Xdp {
                obj_json["meta_len"] = input.meta_len.into();
            }
            if matches!(
                ctx,
                Context::Xdp | Context::Tc | Context::SkSkb | Context::SkMsg | Context::Lwt(_)
            ) {
                obj_json["redirect"] = redirect
                    .as_ref()
                    .map_or(serde_json::Value::Null, redirect_json);
            }
            let mut text = match action {
                Some(a) => format!("{a} ({r0})\n"),
                None => format!("{r0} ({r0:#x})\n"),
            };
            if matches!(ctx, Context::Xdp | Context::Tc) && (input.moved != 0 || kept != len_before)
            {
                text.push_str(&format!(
                    "frame: {} bytes (was {}), start {:+}\n",
                    kept, len_before, input.moved
                ));
            }
            if ctx == Context::SkMsg {
                let (apply, cork) = input.apply_cork;
                obj_json["apply_bytes"] = apply.into();
                obj_json["cork_bytes"] = cork.into();
                if kept != len_before {
                    text.push_str(&format!("message: {kept} bytes (was {len_before})\n"));
                }
                if apply != 0 {
                    text.push_str(&format!("apply_bytes: {apply}\n"));
                }
                if cork != 0 {
                    text.push_str(&format!("cork_bytes: {cork}\n"));
                }
            }
            if let Some(r) = &redirect {
                text.push_str(&format!("redirect: {}\n", redirect_text(r)));
            }
            if let Some(rc) = prog.override_return() {
                crate::error::set_u64(&mut obj_json, "override_return", rc);
                text.push_str(&format!("override_return: {}\n", rc as i64));
            }
            if let Some((json, lines)) = sock_fields(ctx, &input.mem) {
                obj_json["context"] = json;
                text.push_str(&lines);
            }
            if let Some((json, lines)) = sock_options_out(ctx, prog.sock_options()) {
                obj_json["socket_options"] = json;
                text.push_str(&lines);
            }
            if matches!(
                ctx,
                Context::CgroupSkb(_) | Context::SkSkb | Context::Lwt(_)
            ) {
                obj_json["skb"] = skb_json(&after);
                text.push_str(&skb_changes(&meta, &after));
            }
            if ctx == Context::Tc {
                obj_json["skb"] = skb_json(&after);
                text.push_str(&skb_changes(&meta, &after));
                obj_json["clones"] = input
                    .clones
                    .iter()
                    .map(|c| serde_json::json!({ "target": redirect_json(&c.target), "len": c.packet.len() }))
                    .collect::<Vec<_>>()
                    .into();
                for c in &input.clones {
                    text.push_str(&format!(
                        "clone: {} bytes to {}\n",
                        c.packet.len(),
                        redirect_text(&c.target)
                    ));
                }
            }
            text
        }
        Err(bpfx::RunError::Trap {
            trap,
            insn,
            reason,
            access,
            ..
        }) => {
            obj_json["trap"] = crate::error::trap_json(trap, insn, reason, access);
            String::new()
        }
        Err(_) => String::new(),
    };
    let is_trap = matches!(outcome, Err(bpfx::RunError::Trap { .. }));
    if outcome.is_ok() || is_trap {
        if args.json {
            if args.dump_maps {
                obj_json["maps"] = crate::dump::maps_json(obj);
            }
            if !args.hist.is_empty() {
                obj_json["hist"] = crate::maps_init::hists(obj, &args.hist)?.1.into();
            }
            return match outcome {
                Ok(_) => {
                    crate::cmd::write_line(crate::error::json_ok(obj_json))?;
                    Ok(())
                }
                // The trap's JSON carries the engine and the maps as they were left.
                Err(e) => Err(err(e).detailed(obj_json)),
            };
        } else {
            let mut out = text;
            if args.dump_maps {
                out.push_str(&crate::dump::maps_text(obj));
            }
            out.push_str(&crate::maps_init::hists(obj, &args.hist)?.0);
            crate::cmd::write_stdout(&out)?;
        }
    }
    outcome.map(|_| ()).map_err(err)
}

/// The socket buffer's metadata from the flags; the protocol defaults to the packet's
/// EtherType.
pub(crate) fn skb_meta(args: &Args, packet: &[u8]) -> bpfx::SkbMeta {
    let ethertype = packet
        .get(12..14)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    bpfx::SkbMeta {
        ifindex: args.ifindex,
        ingress_ifindex: args.ingress_ifindex,
        mark: args.mark,
        priority: args.priority,
        hash: args.hash,
        protocol: args.protocol.unwrap_or(ethertype),
        ..bpfx::SkbMeta::default()
    }
}

/// A redirect target, as JSON: `kind` (`ifindex`, `map`, `broadcast`, `socket`) and its
/// fields (a socket's key as hex bytes).
pub(crate) fn redirect_json(r: &bpfx::RedirectTarget) -> serde_json::Value {
    match r {
        bpfx::RedirectTarget::Ifindex { ifindex, ingress } => serde_json::json!({
            "kind": "ifindex", "ifindex": ifindex, "ingress": ingress,
        }),
        bpfx::RedirectTarget::Peer { ifindex } => serde_json::json!({
            "kind": "peer", "ifindex": ifindex,
        }),
        bpfx::RedirectTarget::Map { map, kind, key } => serde_json::json!({
            "kind": "map", "map": map, "map_kind": kind.to_string(), "key": key,
        }),
        bpfx::RedirectTarget::Broadcast {
            map,
            kind,
            exclude_ingress,
        } => serde_json::json!({
            "kind": "broadcast", "map": map, "map_kind": kind.to_string(),
            "exclude_ingress": exclude_ingress,
        }),
        bpfx::RedirectTarget::Socket {
            map,
            kind,
            key,
            ingress,
        } => serde_json::json!({
            "kind": "socket", "map": map, "map_kind": kind.to_string(),
            "key": key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ingress": ingress,
        }),
    }
}

/// A redirect target, as text.
pub(crate) fn redirect_text(r: &bpfx::RedirectTarget) -> String {
    match r {
        bpfx::RedirectTarget::Ifindex { ifindex, ingress } => format!(
            "ifindex {ifindex} ({})",
            if *ingress { "ingress" } else { "egress" }
        ),
        bpfx::RedirectTarget::Peer { ifindex } => {
            format!("the peer of ifindex {ifindex} (ingress)")
        }
        bpfx::RedirectTarget::Map { map, kind, key } => format!("{kind} map `{map}` key {key}"),
        bpfx::RedirectTarget::Broadcast {
            map,
            kind,
            exclude_ingress,
        } => format!(
            "every entry of {kind} map `{map}`{}",
            if *exclude_ingress {
                " but the ingress device"
            } else {
                ""
            }
        ),
        bpfx::RedirectTarget::Socket {
            map,
            kind,
            key,
            ingress,
        } => format!(
            "the socket of {kind} map `{map}` key {} ({})",
            key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            if *ingress { "ingress" } else { "egress" }
        ),
    }
}

/// The skb fields a TC program may write, as JSON.
fn skb_json(m: &bpfx::SkbMeta) -> serde_json::Value {
    serde_json::json!({
        "mark": m.mark,
        "priority": m.priority,
        "tc_index": m.tc_index,
        "tc_classid": m.tc_classid,
        "queue_mapping": m.queue_mapping,
        "cb": m.cb,
        "tstamp": m.tstamp,
        "protocol": m.protocol,
        "vlan_present": m.vlan_present,
        "vlan_proto": m.vlan_proto,
        "vlan_tci": m.vlan_tci,
    })
}

/// One line per skb field the TC program changed: `mark 0x0 -> 0x50`.
fn skb_changes(before: &bpfx::SkbMeta, after: &bpfx::SkbMeta) -> String {
    let mut out = String::new();
    let mut line = |name: &str, a: u64, b: u64| {
        if a != b {
            out.push_str(&format!("{name} {a:#x} -> {b:#x}\n"));
        }
    };
    line("mark", before.mark.into(), after.mark.into());
    line("priority", before.priority.into(), after.priority.into());
    line("tc_index", before.tc_index.into(), after.tc_index.into());
    line(
        "tc_classid",
        before.tc_classid.into(),
        after.tc_classid.into(),
    );
    line(
        "queue_mapping",
        before.queue_mapping.into(),
        after.queue_mapping.into(),
    );
    for (i, (a, b)) in before.cb.iter().zip(after.cb).enumerate() {
        line(&format!("cb[{i}]"), (*a).into(), b.into());
    }
    line("tstamp", before.tstamp, after.tstamp);
    line("protocol", before.protocol.into(), after.protocol.into());
    line(
        "vlan_present",
        before.vlan_present.into(),
        after.vlan_present.into(),
    );
    line(
        "vlan_proto",
        before.vlan_proto.into(),
        after.vlan_proto.into(),
    );
    line("vlan_tci", before.vlan_tci.into(), after.vlan_tci.into());
    out
}

/// The budget `--budget N` or `--no-budget` asks for (the default budget without either).
pub(crate) fn budget(budget: Option<u64>, no_budget: bool) -> bpfx_exec::Budget {
    match (budget, no_budget) {
        (Some(n), _) => bpfx_exec::Budget::Limit(n),
        (None, true) => bpfx_exec::Budget::Unlimited,
        (None, false) => bpfx_exec::Budget::Default,
    }
}

/// The JIT options `--hardened`, `--budget`, `--no-budget` and `--code-memory` ask for.
fn jit_options(args: &Args) -> bpfx_jit::JitOptions {
    let base = if args.hardened {
        bpfx_jit::JitOptions::hardened()
    } else {
        bpfx_jit::JitOptions::default()
    };
    bpfx_jit::JitOptions {
        budget: args.budget.is_some(),
        unbounded: args.no_budget,
        code_memory: args.code_memory().jit(),
        ..base
    }
}

fn run_plain(args: &Args, prog: bpfx_bytecode::Program) -> Result<(), CliError> {
    if args.packet.is_some() || args.out.is_some() {
        return Err(CliError::Usage(
            "--packet and --out are for XDP, TC and socket-filter programs (--ctx xdp|tc|socket)"
                .into(),
        ));
    }
    let mut input = read_opt(args.mem.as_ref())?;
    let verified = crate::cmd::verify::verify_for_run(prog, args.strict, input.len() as u64)?;
    let prog = verified.program();
    let prepared = Prepared::with_options(&verified, args.engine, &jit_options(args))
        .map_err(|e| CliError::Jit(e.to_string()))?;
    let mut env = Env::with_helpers(Helpers::new());
    env.set_budget(budget(args.budget, args.no_budget));
    let outcome = prepared.run(&mut input, &mut env);
    match outcome {
        Ok(r0) => {
            if args.json {
                let mut obj = serde_json::json!({ "engine": args.engine.name() });
                crate::error::set_u64(&mut obj, "result", r0);
                if let Some(left) = env.budget {
                    obj["budget_left"] = left.into();
                }
                crate::cmd::write_line(crate::error::json_ok(obj))?;
            } else {
                crate::cmd::write_line(format_args!("{r0} ({r0:#x})"))?;
            }
            Ok(())
        }
        Err(trap) => {
            let insn = insn_at(prog, trap.pc);
            let access = env.fault.take().map(Box::new);
            let reason = env
                .helper_error
                .take()
                .map(|e| e.0)
                .or_else(|| access.as_ref().map(|f| f.to_string()));
            let obj = serde_json::json!({
                "engine": args.engine.name(),
                "trap": crate::error::trap_json(&trap, &insn, &reason, &access),
            });
            Err(CliError::Trap {
                trap,
                insn,
                reason,
                access,
            }
            .detailed(obj))
        }
    }
}
