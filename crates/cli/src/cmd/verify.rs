//! `bpfx verify FILE`: run the verifier and report its verdict.

use crate::error::CliError;
use crate::load::{self, Loaded};
use bpfx_bytecode::Program;
use bpfx_verifier::{
    Config, ContextKind, ContextLayout, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode,
    VerifiedProgram,
};
use std::path::PathBuf;

/// What r1 points to, for verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VerifyCtx {
    /// Plain memory: r1 = the input memory (--mem-size bytes), r2 = its length.
    Memory,
    /// XDP: r1 = a `struct xdp_md` (the runtime's XDP context, 32-bit packet fields).
    Xdp,
    /// TC (sched_cls/sched_act): r1 = a `struct __sk_buff` with TC's access rules.
    Tc,
    /// Socket filter: r1 = a `struct __sk_buff` with the socket filter's access rules.
    Socket,
    /// cgroup skb at ingress: r1 = a `struct __sk_buff` with the cgroup skb rules (a
    /// read-only packet, the socket's fields; returns 0 or 1).
    #[value(name = "cgroup_skb", alias = "cgroup_skb_ingress")]
    CgroupSkb,
    /// cgroup skb at egress (returns 0 to 3).
    #[value(name = "cgroup_skb_egress")]
    CgroupSkbEgress,
    /// sk_skb: r1 = a `struct __sk_buff` with the sk_skb rules (writable stream data, the
    /// socket's fields).
    #[value(name = "sk_skb")]
    SkSkb,
    /// sk_msg: r1 = a `struct sk_msg_md` (writable message, the socket's fields).
    #[value(name = "sk_msg")]
    SkMsg,
    /// sk_lookup: r1 = a `struct bpf_sk_lookup` (read-only; returns 0 or 1).
    #[value(name = "sk_lookup")]
    SkLookup,
    /// lwt_in: r1 = a `struct __sk_buff` with the lightweight tunnel rules (read-only packet).
    #[value(name = "lwt_in")]
    LwtIn,
    /// lwt_out: as lwt_in.
    #[value(name = "lwt_out")]
    LwtOut,
    /// lwt_xmit: as lwt_in, with a writable packet.
    #[value(name = "lwt_xmit")]
    LwtXmit,
    /// lwt_seg6local: as lwt_in.
    #[value(name = "lwt_seg6local")]
    LwtSeg6local,
    /// cgroup device: r1 = a `struct bpf_cgroup_dev_ctx` (read-only; returns 0 or 1).
    #[value(name = "cgroup_device", alias = "cgroup_dev")]
    CgroupDevice,
    /// cgroup getsockopt: r1 = a `struct bpf_sockopt` (optval a writable packet; optlen and
    /// retval writable; returns 0 or 1).
    #[value(name = "getsockopt", alias = "cgroup_getsockopt")]
    Getsockopt,
    /// cgroup setsockopt: as getsockopt, level, optname and optlen writable, no retval.
    #[value(name = "setsockopt", alias = "cgroup_setsockopt")]
    Setsockopt,
    /// cgroup sysctl: r1 = a `struct bpf_sysctl` (file_pos writable; returns 0 or 1).
    #[value(name = "cgroup_sysctl", alias = "sysctl")]
    CgroupSysctl,
    /// A context struct in the input memory whose 8-byte fields at offsets 0 and 8 hold the
    /// packet's `data` and `data_end` pointers (plain programs only; the verifier's raw packet
    /// context).
    Packet,
}

/// Verify a program: accept it, or reject it naming the instruction and the reason.
///
/// Checked mode (the default) rejects only what no run-time guard can make safe; strict mode
/// rejects every program whose memory accesses it cannot prove in bounds.
///
/// A plain program (raw bytecode or assembler text) sees only the helpers and maps given with
/// --helper and --map; an ELF object brings its own maps and the runtime's standard helpers,
/// to which --helper adds (or replaces) signatures.
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
    /// The program's context [default: the program type its section implies, as libbpf
    /// maps section names; memory for other sections].
    #[arg(long, value_enum, alias = "type")]
    ctx: Option<VerifyCtx>,
    /// Reject what cannot be proven safe, instead of leaving run-time guards.
    #[arg(long)]
    strict: bool,
    /// Size in bytes of the input memory the program will be given (r2); unknown when absent.
    /// With --strict, a program that reads r2 is then proven for exactly that size.
    #[arg(long, value_name = "N")]
    mem_size: Option<u64>,
    /// A helper the program may call, as ID:NAME(ARG,...)->RET; repeatable. Arguments: scalar,
    /// any, mem[:rN] (memory the helper may write, size in rN), ro_mem[:rN] (memory it only
    /// reads), ro_mem_or_null[:rN] (the same, or NULL with size 0), stack_or_mem, map,
    /// prog_array, key, value; results: scalar, map_value_or_null, void.
    /// Example: --helper "6:fill(mem:r2,scalar)->scalar".
    #[arg(long = "helper", value_name = "SPEC", value_parser = helper_spec)]
    helpers: Vec<(u32, HelperSig)>,
    /// A map the program may name (plain programs), as idx:N,key=K,value=V[,ro][,prog_array]
    /// or fd:N,... (sizes in bytes; ro: read-only for programs; prog_array: a program array,
    /// what tail_call takes); repeatable.
    #[arg(long = "map", value_name = "SPEC", value_parser = map_spec)]
    maps: Vec<(MapRef, MapDef)>,
    /// Frames allowed at once, counting the outermost (plain programs).
    #[arg(long, value_name = "N")]
    max_frames: Option<u32>,
    /// Instructions the analysis may process before it gives up (plain programs).
    #[arg(long, value_name = "N")]
    insn_budget: Option<u64>,
    /// Print the abstract state at every instruction the analysis processed.
    #[arg(long)]
    log: bool,
    /// Memory limit the maps an object's program names must fit, in bytes (suffixes K, M, G:
    /// powers of 1024) [default: 1G]. Verification creates no map: this checks their need.
    #[arg(long, value_name = "BYTES", value_parser = crate::load::parse_bytes)]
    mem_limit: Option<u64>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn helper_spec(s: &str) -> Result<(u32, HelperSig), String> {
    bpfx_verifier::parse_helper(s).map_err(|e| e.to_string())
}

fn map_spec(s: &str) -> Result<(MapRef, MapDef), String> {
    bpfx_verifier::parse_map(s).map_err(|e| e.to_string())
}

fn mode(strict: bool) -> Mode {
    if strict { Mode::Strict } else { Mode::Checked }
}

/// Verifies a program about to run on `mem_size` bytes of input, with no helpers.
pub(crate) fn verify_for_run(
    prog: Program,
    strict: bool,
    mem_size: u64,
) -> Result<VerifiedProgram, CliError> {
    let cfg = Config {
        mode: mode(strict),
        mem_size: Some(mem_size),
        ..Config::default()
    };
    bpfx_verifier::verify(prog, &cfg).map_err(CliError::Verify)
}

impl Args {
    /// Whether --json was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let loaded = load::load_with(
        &vm(args),
        &args.file,
        load::Select::new(args.section.as_ref(), args.program.as_ref()),
    )?;
    let (result, log, insns) = match loaded {
        Loaded::Plain(prog) => {
            let section = match args.ctx {
                Some(VerifyCtx::Xdp) => Some("xdp"),
                Some(VerifyCtx::Tc) => Some("tc"),
                Some(VerifyCtx::Socket) => Some("socket"),
                Some(VerifyCtx::CgroupSkb) => Some("cgroup_skb/ingress"),
                Some(VerifyCtx::CgroupSkbEgress) => Some("cgroup_skb/egress"),
                Some(VerifyCtx::SkSkb) => Some("sk_skb"),
                Some(VerifyCtx::SkMsg) => Some("sk_msg"),
                Some(VerifyCtx::SkLookup) => Some("sk_lookup"),
                Some(VerifyCtx::LwtIn) => Some("lwt_in"),
                Some(VerifyCtx::LwtOut) => Some("lwt_out"),
                Some(VerifyCtx::LwtXmit) => Some("lwt_xmit"),
                Some(VerifyCtx::LwtSeg6local) => Some("lwt_seg6local"),
                Some(VerifyCtx::CgroupDevice) => Some("cgroup/dev"),
                Some(VerifyCtx::Getsockopt) => Some("cgroup/getsockopt"),
                Some(VerifyCtx::Setsockopt) => Some("cgroup/setsockopt"),
                Some(VerifyCtx::CgroupSysctl) => Some("cgroup/sysctl"),
                _ => None,
            };
            if let Some(section) = section {
                object_only_flags(args, &format!("--ctx {section}"))?;
                let obj = vm(args)
                    .object(vec![bpfx::ProgramDef::new("prog", section, prog)], vec![])
                    .map_err(|source| CliError::Object {
                        path: args.file.clone(),
                        source,
                    })?;
                verify_object(args, &obj, "prog")
            } else {
                let mut helpers = HelperTable::new();
                for (id, sig) in &args.helpers {
                    helpers.insert(*id, sig.clone());
                }
                let mut maps = MapTable::new();
                for (map, def) in &args.maps {
                    maps.insert(*map, *def);
                }
                let defaults = Config::default();
                let cfg = Config {
                    mode: mode(args.strict),
                    mem_size: args.mem_size,
                    helpers,
                    maps,
                    max_frames: args.max_frames.unwrap_or(defaults.max_frames),
                    context: match args.ctx {
                        // `{u64 data; u64 data_end;}` then plain bytes up to the memory's
                        // size (16 bytes when it is not given).
                        Some(VerifyCtx::Packet) => {
                            ContextKind::Fields(ContextLayout::packet_struct(
                                args.mem_size
                                    .map_or(16, |n| u16::try_from(n).unwrap_or(u16::MAX)),
                                0,
                                8,
                            ))
                        }
                        _ => ContextKind::Memory,
                    },
                    insn_budget: args.insn_budget.unwrap_or(defaults.insn_budget),
                };
                let insns = prog.iter().count();
                // A log costs a formatted state per processed instruction: only on request.
                let (result, log) = if args.log {
                    bpfx_verifier::verify_with_log(prog, &cfg)
                } else {
                    (bpfx_verifier::verify(prog, &cfg), Default::default())
                };
                (result.map_err(CliError::Verify), log, insns)
            }
        }
        Loaded::Object { .. } if args.ctx == Some(VerifyCtx::Packet) => {
            return Err(CliError::Usage(
                "--ctx packet applies to plain programs; an object's section or --ctx xdp \
                 gives its context"
                    .into(),
            ));
        }
        Loaded::Object { obj, program } => {
            object_only_flags(args, "an ELF object")?;
            verify_object(args, &obj, &program)
        }
    };
    if args.log {
        let mut text = log.lines().join("\n");
        text.push('\n');
        if log.truncated() {
            text.push_str("... (log truncated)\n");
        }
        if args.json {
            eprint!("{text}");
        } else {
            crate::cmd::write_stdout(&text)?;
        }
    }
    let mode = if args.strict { "strict" } else { "checked" };
    match result {
        Ok(verified) => {
            let proven = verified
                .program()
                .iter()
                .filter(|(pc, _)| verified.access(*pc).is_some_and(|f| f.proven))
                .count();
            let accesses = verified
                .program()
                .iter()
                .filter(|(pc, _)| verified.access(*pc).is_some())
                .count();
            if args.json {
                let obj = serde_json::json!({
                    "verdict": "accepted",
                    "mode": mode,
                    "instructions": insns,
                    "memory_accesses": accesses,
                    "proven_accesses": proven,
                });
                crate::cmd::write_line(crate::error::json_ok(obj))?;
            } else {
                crate::cmd::write_line(format_args!(
                    "accepted ({mode} mode): {insns} instructions, {proven} of {accesses} memory accesses proven in bounds"
                ))?;
            }
            Ok(())
        }
        Err(CliError::Verify(e)) => {
            let pc = e.pc.0;
            Err(CliError::Verify(e).detailed(serde_json::json!({
                "verdict": "rejected",
                "mode": mode,
                "pc": pc,
            })))
        }
        Err(e) => Err(e),
    }
}

/// Refuses the flags that only plain programs take, for `what`: the runtime gives objects
/// their maps and limits.
fn object_only_flags(args: &Args, what: &str) -> Result<(), CliError> {
    let given = [
        ("--map", !args.maps.is_empty()),
        ("--max-frames", args.max_frames.is_some()),
        ("--insn-budget", args.insn_budget.is_some()),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(CliError::Usage(format!(
            "{flag} applies to plain programs, not to {what}"
        ))),
        None => Ok(()),
    }
}

/// The runtime with the --helper signatures added and the --mem-limit. Verification never runs
/// a helper, so each one is registered with its signature and a body that refuses to run.
fn vm(args: &Args) -> bpfx::Vm {
    let mut vm = crate::load::vm(args.mem_limit);
    for (id, sig) in &args.helpers {
        let name = sig.name.clone();
        vm = vm.register_helper(*id, sig.clone(), move |_, _| {
            Err(bpfx::HelperError(format!(
                "helper {name} was declared for verification only"
            )))
        });
    }
    vm
}

/// Verifies program `name` of `obj` with its maps and helpers, in the context `--ctx` or its
/// section implies, creating no map (`ProgramRef::check`).
fn verify_object(
    args: &Args,
    obj: &bpfx::Object,
    name: &str,
) -> (
    Result<VerifiedProgram, CliError>,
    bpfx_verifier::VerifierLog,
    usize,
) {
    let err = |e| crate::cmd::run::facade_error(&args.file, e);
    let pref = match obj.program(name) {
        Ok(p) => p,
        Err(e) => return (Err(err(e)), Default::default(), 0),
    };
    let found = obj
        .programs()
        .find(|p| p.name == name)
        .map(|p| (p.insn_count(), p.context()));
    let (insns, implied) = found.unwrap_or((0, bpfx::Context::Memory));
    let ctx = match args.ctx {
        Some(VerifyCtx::Memory) => bpfx::Context::Memory,
        Some(VerifyCtx::Xdp) => bpfx::Context::Xdp,
        Some(VerifyCtx::Tc) => bpfx::Context::Tc,
        Some(VerifyCtx::Socket) => bpfx::Context::Socket,
        Some(VerifyCtx::CgroupSkb) => bpfx::Context::CgroupSkb(bpfx::CgroupSkbHook::Ingress),
        Some(VerifyCtx::CgroupSkbEgress) => bpfx::Context::CgroupSkb(bpfx::CgroupSkbHook::Egress),
        Some(VerifyCtx::SkSkb) => bpfx::Context::SkSkb,
        Some(VerifyCtx::SkMsg) => bpfx::Context::SkMsg,
        Some(VerifyCtx::SkLookup) => bpfx::Context::SkLookup,
        Some(VerifyCtx::LwtIn) => bpfx::Context::Lwt(bpfx::LwtHook::In),
        Some(VerifyCtx::LwtOut) => bpfx::Context::Lwt(bpfx::LwtHook::Out),
        Some(VerifyCtx::LwtXmit) => bpfx::Context::Lwt(bpfx::LwtHook::Xmit),
        Some(VerifyCtx::LwtSeg6local) => bpfx::Context::Lwt(bpfx::LwtHook::Seg6Local),
        Some(VerifyCtx::CgroupDevice) => bpfx::Context::CgroupDevice,
        Some(VerifyCtx::Getsockopt) => bpfx::Context::CgroupSockopt(bpfx::SockoptHook::Get),
        Some(VerifyCtx::Setsockopt) => bpfx::Context::CgroupSockopt(bpfx::SockoptHook::Set),
        Some(VerifyCtx::CgroupSysctl) => bpfx::Context::CgroupSysctl,
        Some(VerifyCtx::Packet) | None => implied,
    };
    let mut pref = pref.context(ctx);
    if let Some(n) = args.mem_size {
        pref = pref.input_size(n);
    }
    let (res, log) = if args.log {
        pref.check_with_log(mode(args.strict))
    } else {
        (pref.check(mode(args.strict)), Default::default())
    };
    (res.map_err(err), log, insns)
}
