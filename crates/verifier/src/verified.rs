//! The verifier's output: a program together with the facts engines may rely on.

use crate::config::{Config, ContextKind, MapRef, MapTable, Mode};
use crate::context::ContextAccess;
use bpfx_bytecode::{Cfg, DecodeError, Imm64, Op, Pc, Program};
use bpfx_exec::TrapKind;

/// The kind of region a load, store or atomic targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// A stack frame.
    Stack,
    /// The input memory (or context struct).
    Input,
    /// A map value.
    MapValue,
    /// Packet data.
    Packet,
    /// Not known (a scalar used as an address, or different regions on different paths).
    Unknown,
}

/// What the verifier established about one memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccessFact {
    /// The region the access targets on every path that reaches it.
    pub region: RegionKind,
    /// Whether the access is proven in bounds on every path: an engine may omit its run-time
    /// guard exactly when this is true.
    pub proven: bool,
}

/// How far from the packet's start a store or atomic through a packet pointer may write
/// ([`VerifiedProgram::packet_write`]), joined over every path reaching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketReach {
    /// Every byte it writes lies in `[data + start, data + end)`, with `data` the packet's
    /// first byte as the context's `data` field gave it (the offsets are the pointer's offset
    /// range, the instruction's offset and its size; the end is not checked against
    /// `data_end`: an unproven store keeps its guard, which admits the whole run buffer).
    Within {
        /// The lowest offset from `data` it may write.
        start: u64,
        /// One past the highest offset from `data` it may write.
        end: u64,
    },
    /// No bound from `data` is known on some path: a variable offset the analysis does not
    /// bound, an offset that may be negative, or a pointer relative to `data_meta`.
    Unbounded,
}

impl PacketReach {
    /// The hull of two reaches (what holds on the paths of both).
    pub(crate) fn join(self, other: PacketReach) -> PacketReach {
        match (self, other) {
            (
                PacketReach::Within { start: a, end: b },
                PacketReach::Within { start: c, end: d },
            ) => PacketReach::Within {
                start: a.min(c),
                end: b.max(d),
            },
            _ => PacketReach::Unbounded,
        }
    }
}

/// Per-pc fact storage, one byte per slot: 0 = no memory access visited here, otherwise the
/// region code (1..=5) with [`PROVEN_BIT`] set when proven.
pub(crate) const PROVEN_BIT: u8 = 0x80;

pub(crate) fn region_code(r: RegionKind) -> u8 {
    match r {
        RegionKind::Stack => 1,
        RegionKind::Input => 2,
        RegionKind::MapValue => 3,
        RegionKind::Packet => 4,
        RegionKind::Unknown => 5,
    }
}

fn region_of(code: u8) -> Option<RegionKind> {
    Some(match code & !PROVEN_BIT {
        1 => RegionKind::Stack,
        2 => RegionKind::Input,
        3 => RegionKind::MapValue,
        4 => RegionKind::Packet,
        5 => RegionKind::Unknown,
        _ => return None,
    })
}

/// Records one visit of an access into the per-pc byte, joining with earlier visits: the
/// region becomes `Unknown` when visits disagree, and `proven` holds only if every visit proved.
pub(crate) fn record(cell: &mut u8, region: RegionKind, proven: bool) {
    let new = region_code(region) | if proven { PROVEN_BIT } else { 0 };
    if *cell == 0 {
        *cell = new;
        return;
    }
    let r = if *cell & !PROVEN_BIT == new & !PROVEN_BIT {
        new & !PROVEN_BIT
    } else {
        region_code(RegionKind::Unknown)
    };
    *cell = r | (*cell & new & PROVEN_BIT);
}

/// A helper call that takes a map handle, as the verifier found it on every path reaching it
/// ([`VerifiedProgram::map_call`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapCall {
    /// The map whose handle the call's map argument holds on every path.
    pub map: MapRef,
    /// Whether the key argument (for helpers that take one) points, on every path, to the
    /// map's `key_size` bytes wholly inside a stack frame at an offset known exactly: an
    /// engine may read the key there without a bounds check.
    pub key_on_stack: bool,
}

/// What the verifier assumed about the run: every limit and choice its proofs rest on. It
/// travels inside [`VerifiedProgram`], so engines and the runtime read it from the proof they
/// run, never from a second setting; a run whose environment breaks one of these is refused
/// before anything executes (`docs/safety.md`, "Assumptions", says where each is enforced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assumptions {
    /// Strict or checked.
    pub mode: Mode,
    /// Frames allowed at once, counting the outermost ([`Config::max_frames`]): the analysis
    /// stops exploring at the call that would need one more, because the run traps there. A
    /// run allowing more frames would execute code no proof covers (engines refuse it with
    /// `TrapKind::EnvMismatch`); fewer is sound (the run traps earlier).
    pub max_frames: u32,
    /// Bytes of stack per frame: [`bpfx_exec::STACK_FRAME_SIZE`], a constant of the engine
    /// contract, recorded so the proof says what it assumed.
    pub frame_size: usize,
    /// The input size accesses were proven against ([`Config::mem_size`]): engines refuse a
    /// shorter input (`TrapKind::InputTooSmall`).
    pub mem_size: Option<u64>,
    /// Whether the proof holds only for an input of exactly [`Self::mem_size`] bytes: the
    /// program reads the input length the engines pass in r2 at entry (or, with `mem_size`
    /// 0, r1 or r2), which the analysis takes for the constant `mem_size` in `Mode::Strict`
    /// (`Mode::Checked` takes any length of at least `mem_size`) (`docs/verifier.md`,
    /// "Entry state"). Engines then refuse a longer input too (`TrapKind::EnvMismatch`), as
    /// the program could compute, from the larger length, an offset no proof covers.
    pub exact_len: bool,
    /// What r1 points to at entry ([`Config::context`]).
    pub context: ContextKind,
    /// The maps the program may name, with the shapes and the read-only flags the proofs of
    /// map-value accesses rest on: a store is never proven into a map declared read-only, so
    /// a map must be lent read-only exactly when it was declared so.
    pub maps: MapTable,
    /// Whether every run ends: proven in `Strict` mode (each loop explored until it exits,
    /// calls no deeper than [`Self::max_frames`]), or, in `Checked` mode, because the proof of
    /// `termination.rs` bounds the instructions any run executes by `DEFAULT_BUDGET` (every
    /// loop a counted loop with a bounded trip count, no recursion; for inputs up to 64 KiB:
    /// `docs/verifier.md`, "Termination"). When false the engines run
    /// it under [`bpfx_exec::DEFAULT_BUDGET`] unless the embedder sets a budget or opts out.
    pub terminates: bool,
}

impl Assumptions {
    /// Whether a run on `input_len` bytes of input under `env` keeps every assumption the
    /// proofs rest on that a run can break; otherwise the kind both engines trap with at pc 0,
    /// before anything runs: `InputTooSmall` for an input shorter than [`Self::mem_size`],
    /// `EnvMismatch` for a longer one when the proof assumed exactly that length
    /// ([`Self::exact_len`]), and for an `env.max_frames` above [`Self::max_frames`] (the
    /// analysis stopped at the call that needs one frame more, so a deeper run would execute
    /// code no proof covers). The one place these limits are compared.
    pub fn check_run(&self, input_len: usize, env: &bpfx_exec::Env) -> Result<(), TrapKind> {
        if self.mem_size.is_some_and(|n| (input_len as u64) < n) {
            return Err(TrapKind::InputTooSmall);
        }
        if self.exact_len && self.mem_size.is_some_and(|n| input_len as u64 != n) {
            return Err(TrapKind::EnvMismatch);
        }
        if env.max_frames > self.max_frames {
            return Err(TrapKind::EnvMismatch);
        }
        Ok(())
    }

    /// What verifying the program of `graph` under `cfg` assumes; `callbacks` are the
    /// callback-taking helper calls the analysis found: `(call, callback, most runs of the
    /// callback per call)`; `exact_len`, whether the analysis read the input length as the
    /// constant `mem_size` ([`Self::exact_len`]).
    pub(crate) fn new(
        graph: &Cfg,
        cfg: &Config,
        callbacks: &[(Pc, Pc, u64)],
        exact_len: bool,
    ) -> Assumptions {
        Assumptions {
            mode: cfg.mode,
            max_frames: cfg.max_frames.max(1),
            frame_size: bpfx_exec::STACK_FRAME_SIZE,
            mem_size: cfg.mem_size,
            exact_len: exact_len && cfg.mem_size.is_some(),
            context: cfg.context.clone(),
            maps: cfg.maps.clone(),
            terminates: cfg.mode == Mode::Strict || crate::termination::proves(graph, callbacks),
        }
    }
}

/// A program the verifier accepted, with what it proved. Only [`crate::verify`] makes one, so
/// an engine that takes `&VerifiedProgram` cannot be handed an unchecked program.
///
/// # Invariants
/// - The program passed every structural check (see `docs/verifier.md`) in [`Self::mode`].
/// - Every fact holds only under [`Self::assumptions`]; an engine refuses a run that breaks
///   one.
/// - `access(pc)` is `Some` only for loads, stores and atomics the analysis reached; an access
///   it never reached (dead on every path) reports `None` and must keep its guard.
/// - `proven: true` means: on every path, the whole access lies inside its region: a stack
///   frame that is active when the instruction runs, the first [`Self::mem_size`] bytes of the
///   input, a map value of the map's `value_size`, or the packet below `data_end`.
#[derive(Clone, Debug)]
pub struct VerifiedProgram {
    /// The program with its structure.
    cfg: Cfg,
    facts: Vec<u8>,
    /// The function entries of `cfg`, for [`Self::functions`].
    funcs: Vec<Pc>,
    assumed: Assumptions,
    processed: u64,
    /// The converted context accesses, by pc, increasing.
    ctx: Vec<(Pc, ContextAccess)>,
    /// Where in the input legacy packet loads read from.
    packet_base: u64,
    /// Per callback-taking helper call (`bpf_loop`), increasing: the callback it runs.
    callbacks: Vec<(Pc, Pc)>,
    /// The entries of the timer callbacks (`bpf_timer_set_callback`'s), increasing: each
    /// verified as a function of its own ([`Self::timer_callbacks`]).
    timer_callbacks: Vec<Pc>,
    /// Per pc: whether the analysis reached it on some path (see [`Self::reached`]).
    reached: Vec<bool>,
    /// The map-taking helper calls whose map is known, by increasing pc ([`Self::map_call`]).
    map_calls: Vec<(Pc, MapCall)>,
    /// The stores and atomics through packet pointers, by increasing pc, with how far from
    /// the packet's start each may write ([`Self::packet_write`]).
    packet_writes: Vec<(Pc, PacketReach)>,
}

impl VerifiedProgram {
    pub(crate) fn new(cfg: Cfg, facts: Vec<u8>, assumed: Assumptions, processed: u64) -> Self {
        let funcs = cfg.functions().iter().map(|f| f.entry).collect();
        let reached = vec![true; cfg.program().len()];
        VerifiedProgram {
            reached,
            cfg,
            facts,
            funcs,
            assumed,
            processed,
            ctx: Vec::new(),
            packet_base: 0,
            callbacks: Vec::new(),
            timer_callbacks: Vec::new(),
            map_calls: Vec::new(),
            packet_writes: Vec::new(),
        }
    }

    /// The same program, with the entries of its timer callbacks.
    pub(crate) fn with_timer_callbacks(self, timer_callbacks: Vec<Pc>) -> Self {
        VerifiedProgram {
            timer_callbacks,
            ..self
        }
    }

    /// The entries of the functions the program passes to `bpf_timer_set_callback`, by
    /// increasing pc. Each was verified as the kernel verifies an async callback: as a
    /// function of its own, entered in frame 0 of a state of its own with r1 the timer's map
    /// handle, r2 a pointer to the element's key (a copy at the bottom of that frame), r3 a
    /// pointer to its value, and returning 0. An engine runs one only from its own entry
    /// (`bpfx_interp::run_callback`, `bpfx_jit::JitProgram::run_callback`), never from a
    /// run of the program.
    pub fn timer_callbacks(&self) -> &[Pc] {
        &self.timer_callbacks
    }

    /// The same program, with the maps of its map-taking helper calls.
    pub(crate) fn with_map_calls(self, map_calls: Vec<(Pc, MapCall)>) -> Self {
        VerifiedProgram { map_calls, ..self }
    }

    /// The map the helper `call` at `pc` is given (its [`crate::ArgKind::MapHandle`]
    /// argument), when the analysis found the same map on every path reaching it, and where
    /// its key lies. `None` for any other instruction, a call the analysis never reached, or
    /// one reached with different maps.
    pub fn map_call(&self, pc: Pc) -> Option<&MapCall> {
        let i = self.map_calls.binary_search_by_key(&pc, |&(p, _)| p).ok()?;
        Some(&self.map_calls[i].1)
    }

    /// The same program, with the reaches of its packet stores and atomics.
    pub(crate) fn with_packet_writes(self, packet_writes: Vec<(Pc, PacketReach)>) -> Self {
        VerifiedProgram {
            packet_writes,
            ..self
        }
    }

    /// For a store or atomic the analysis reached through a packet pointer (or a packet
    /// metadata pointer) on some path: how far from the packet's start it may write, joined
    /// over those paths. `None` for any other instruction. Like every fact it holds under the
    /// program's assumptions, and it counts from the `data` the context gave the program: a
    /// run in which something else moved the frame (`xdp_adjust_head`) or overwrote the
    /// context's `data` field (a guarded store into the context) is not covered; a caller
    /// relying on it must rule those out. In `Mode::Checked` a packet access is never proven,
    /// so its guard admits the whole run buffer: this is what bounds such a store instead.
    pub fn packet_write(&self, pc: Pc) -> Option<PacketReach> {
        let i = self
            .packet_writes
            .binary_search_by_key(&pc, |&(p, _)| p)
            .ok()?;
        Some(self.packet_writes[i].1)
    }

    /// The same program, with the callbacks of its callback-taking helper calls.
    pub(crate) fn with_callbacks(self, callbacks: Vec<(Pc, Pc)>) -> Self {
        VerifiedProgram { callbacks, ..self }
    }

    /// The callback the callback-taking helper `call` at `pc` (`bpf_loop`) runs: the function
    /// the verifier proved its callback argument holds on every path. Engines call this
    /// function when the helper asks them to ([`bpfx_exec::Callbacks`]), and trap with
    /// `Unsupported` at a `call` that has none.
    pub fn callback(&self, pc: Pc) -> Option<Pc> {
        let i = self.callbacks.binary_search_by_key(&pc, |&(p, _)| p).ok()?;
        Some(self.callbacks[i].1)
    }

    /// Every callback-taking helper call with its callback, by increasing `call` pc.
    pub fn callbacks(&self) -> &[(Pc, Pc)] {
        &self.callbacks
    }

    /// The same program, its legacy packet loads reading the input from `base`.
    pub(crate) fn with_packet_base(self, packet_base: u64) -> Self {
        VerifiedProgram {
            packet_base,
            ..self
        }
    }

    /// Where in the input the packet that legacy packet loads (`ldabs*`/`ldind*`) read
    /// begins: 0 for plain memory (the whole input is the packet), the context struct's size
    /// ([`crate::Config::mem_size`]) in a field context, whose packet follows the struct.
    /// Both engines read `input[packet_base + index + imm ..]`, and end the run with 0 when
    /// any byte lies outside `input[packet_base..]`.
    pub fn packet_base(&self) -> u64 {
        self.packet_base
    }

    /// The same program, with the pcs the analysis reached.
    pub(crate) fn with_reached(self, reached: Vec<bool>) -> Self {
        VerifiedProgram { reached, ..self }
    }

    /// Whether the analysis reached the instruction at `pc` on some path. One it never reached
    /// is dead: no run of the verified program executes it (the kernel's dead-code rule), so
    /// an engine need not compile it, and the JIT compiles it as a trap.
    pub fn reached(&self, pc: Pc) -> bool {
        self.reached.get(pc.index()).copied().unwrap_or(false)
    }

    /// The same program, recording the context accesses it was converted at.
    pub(crate) fn with_context_accesses(self, ctx: Vec<(Pc, ContextAccess)>) -> Self {
        VerifiedProgram { ctx, ..self }
    }

    /// The context access at `pc`, if the instruction there accesses the context: which field,
    /// and how it was converted to bpfx's layout (the program already holds the converted
    /// instruction).
    pub fn context_access(&self, pc: Pc) -> Option<ContextAccess> {
        let i = self.ctx.binary_search_by_key(&pc, |&(p, _)| p).ok()?;
        Some(self.ctx[i].1)
    }

    /// Every limit and choice the proofs rest on.
    pub fn assumptions(&self) -> &Assumptions {
        &self.assumed
    }

    /// Whether every run ends ([`Assumptions::terminates`]).
    pub fn terminates(&self) -> bool {
        self.assumed.terminates
    }

    /// Whether a run on `input_len` bytes under `env` keeps the assumptions
    /// ([`Assumptions::check_run`]).
    pub fn check_run(&self, input_len: usize, env: &bpfx_exec::Env) -> Result<(), TrapKind> {
        self.assumed.check_run(input_len, env)
    }

    /// The frame limit the program was verified with ([`Assumptions::max_frames`]).
    pub fn max_frames(&self) -> u32 {
        self.assumed.max_frames
    }

    /// Instructions the analysis processed (each visit in each context and loop iteration
    /// counts one, as against [`crate::Config::insn_budget`]).
    pub fn insns_processed(&self) -> u64 {
        self.processed
    }

    /// The program.
    pub fn program(&self) -> &Program {
        self.cfg.program()
    }

    /// The program's structure: successors, block leaders, back edges, functions and call
    /// graph, computed once by the verifier for engines to plan from.
    pub fn cfg(&self) -> &Cfg {
        &self.cfg
    }

    /// Gives the program back.
    pub fn into_program(self) -> Program {
        self.cfg.program().clone()
    }

    /// The mode it was verified in.
    pub fn mode(&self) -> Mode {
        self.assumed.mode
    }

    /// What is known of the memory access at `pc`, if `pc` is a load, store or atomic the
    /// analysis reached.
    pub fn access(&self, pc: Pc) -> Option<AccessFact> {
        let cell = *self.facts.get(pc.index())?;
        Some(AccessFact {
            region: region_of(cell)?,
            proven: cell & PROVEN_BIT != 0,
        })
    }

    /// The input size the program was verified against ([`crate::Config::mem_size`]). Input
    /// accesses are proven against it, so an engine must refuse to run the program on an input
    /// shorter than this many bytes (a longer input is fine: every proof still holds).
    pub fn mem_size(&self) -> Option<u64> {
        self.assumed.mem_size
    }

    /// Start pcs of the functions (pc 0 first, then every local-call and `lddw func` target),
    /// increasing: the entries of [`Cfg::functions`].
    pub fn functions(&self) -> &[Pc] {
        &self.funcs
    }

    /// Binds the `lddw` pseudo forms (map handles, map values, BTF ids) to plain 64-bit values,
    /// keeping every fact: `f(pc, imm)` returns the value to load at `pc`, or `None` to leave the
    /// instruction as it is (engines then trap on it as unbound). `lddw` of a plain value or of a
    /// function address is never offered to `f`.
    ///
    /// This is how an embedder links a program after verifying it against the maps' shapes: the
    /// verifier typed each pseudo form (a map handle, a pointer into a map value), and the
    /// embedder promises that the value it substitutes is exactly that object (its handle, or the
    /// address of that map value plus the offset, lent to the run as shared memory). The
    /// instruction keeps its two slots, so every pc and fact stays where it was.
    pub fn bind_imm64(
        self,
        f: impl Fn(Pc, Imm64) -> Option<u64>,
    ) -> Result<VerifiedProgram, DecodeError> {
        let mut changed = false;
        let ops: Vec<Op> = self
            .program()
            .iter()
            .map(|(pc, op)| match *op {
                Op::LoadImm64 { dst, value }
                    if !matches!(value, Imm64::Value(_) | Imm64::Func { .. }) =>
                {
                    match f(pc, value) {
                        Some(v) => {
                            changed = true;
                            Op::LoadImm64 {
                                dst,
                                value: Imm64::Value(v),
                            }
                        }
                        None => *op,
                    }
                }
                _ => *op,
            })
            .collect();
        if !changed {
            return Ok(self);
        }
        // The same structure (only `lddw` values changed), on the bound program.
        let cfg = Cfg::new(&Program::from_ops(&ops)?);
        Ok(VerifiedProgram { cfg, ..self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_imm64_replaces_pseudo_forms_and_keeps_pcs_and_facts() {
        let text = "lddw r1, map_idx(0)\nlddw r2, map_idx_value(1, 4)\nlddw r3, 7\nldxdw r0, [r10-8]\nexit";
        let slots = bpfx_bytecode::assemble(text).unwrap();
        let prog = Program::decode(slots).unwrap();
        let facts = vec![
            0,
            0,
            0,
            0,
            0,
            0,
            region_code(RegionKind::Stack) | PROVEN_BIT,
            0,
        ];
        let cfg = Cfg::new(&prog);
        let assumed = Assumptions::new(&cfg, &Config::default(), &[], false);
        let v = VerifiedProgram::new(cfg, facts, assumed, 0);
        let bound = v
            .bind_imm64(|pc, imm| match imm {
                Imm64::MapIdx(0) => Some(0x100 + u64::from(pc.0)),
                Imm64::MapIdxValue { idx: 1, off } => Some(0x200 + u64::from(off)),
                _ => None,
            })
            .unwrap();
        let values: Vec<_> = bound
            .program()
            .iter()
            .filter_map(|(_, op)| match op {
                Op::LoadImm64 { value, .. } => Some(*value),
                _ => None,
            })
            .collect();
        assert_eq!(
            values,
            [Imm64::Value(0x100), Imm64::Value(0x204), Imm64::Value(7)]
        );
        assert_eq!(bound.program().len(), 8);
        assert_eq!(
            bound.cfg().program(),
            bound.program(),
            "the Cfg follows the binding"
        );
        assert_eq!(bound.access(Pc(6)).map(|f| f.proven), Some(true));
    }

    #[test]
    fn record_joins_region_and_proof() {
        let mut c = 0;
        record(&mut c, RegionKind::Stack, true);
        assert_eq!(region_of(c), Some(RegionKind::Stack));
        assert_ne!(c & PROVEN_BIT, 0);
        record(&mut c, RegionKind::Stack, false);
        assert_eq!(c & PROVEN_BIT, 0, "one unproven visit makes it unproven");
        record(&mut c, RegionKind::Stack, true);
        assert_eq!(c & PROVEN_BIT, 0, "and it stays so");
        record(&mut c, RegionKind::Input, false);
        assert_eq!(region_of(c), Some(RegionKind::Unknown));
    }
}
