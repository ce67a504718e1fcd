//! Program contexts: what r1 points to, and the XDP rewrite that lets objects built for the
//! kernel's `struct xdp_md` run on bpfx's real layout.
//!
//! The kernel's `xdp_md` has 32-bit `data`/`data_end` fields that its verifier rewrites into
//! loads of real pointers. bpfx does the same: the context is one input buffer
//! `[ctx struct | packet bytes]` whose struct holds 64-bit pointers ([`XDP_CTX_SIZE`] bytes,
//! layout below), and every 32-bit load of an `xdp_md` field is rewritten to a load of bpfx's
//! field. Which loads read the context is found by a forward dataflow ([`rewrite_xdp`]).
//!
//! ```text
//! xdp_md (what the program was compiled for)   bpfx's XDP context (what r1 points to)
//!   0  u32 data                                  0  u64 data        (address of the packet)
//!   4  u32 data_end                              8  u64 data_end    (data + packet length)
//!   8  u32 data_meta                            16  u64 data_meta   (= data: no metadata)
//!  12  u32 ingress_ifindex                      24  u32 ingress_ifindex
//!  16  u32 rx_queue_index                       28  u32 rx_queue_index
//!  20  u32 egress_ifindex                       32  u32 egress_ifindex
//!                                               40  packet bytes
//! ```

use bpfx_bytecode::{AluOp, CallTarget, Op, Operand, Pc, Program, Reg, Size, Width};
use std::collections::BTreeMap;
use std::fmt;

/// Size of bpfx's XDP context struct; the packet starts right after it.
pub const XDP_CTX_SIZE: usize = 40;

/// What a program's r1 points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    /// Plain memory: r1 = pointer to a buffer, r2 = its length.
    Memory,
    /// XDP: r1 = the context (`struct xdp_md` as the program sees it), over a packet.
    Xdp,
    /// An embedder-defined struct of `size` bytes; with `packet`, its 64-bit fields at those
    /// offsets hold the packet's `data` and `data_end` pointers (filled in by bpfx).
    Struct(StructLayout),
}

/// The layout of an embedder-defined context struct.
///
/// # Invariants
/// A layout bpfx runs with has passed [`StructLayout::check`] (the fields are public, so every
/// entry point checks: [`StructLayout::new`], verification, and each run): `size > 0`, and the
/// `data` and `data_end` fields are 8 bytes each, 8-aligned, inside the struct and disjoint.
/// Overlapping fields would let the run's second write clobber half of the first, handing the
/// program a `data` pointer nothing proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StructLayout {
    /// Size of the struct in bytes (the packet, if any, follows it).
    pub size: u16,
    /// Offsets of the 64-bit `data` and `data_end` fields, if the context carries a packet.
    pub packet: Option<(u16, u16)>,
}

/// Size in bytes of the `data` and `data_end` fields of a struct context (64-bit pointers),
/// which is also the alignment they need.
pub const PACKET_FIELD_SIZE: u16 = 8;

/// Why a struct context layout is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A struct of 0 bytes.
    #[error("a struct context needs a size above 0")]
    Empty,
    /// A packet field at an offset that is not a multiple of 8.
    #[error("the {field} field at offset {off} is not 8-byte aligned")]
    Misaligned {
        /// `data` or `data_end`.
        field: &'static str,
        /// Its offset.
        off: u16,
    },
    /// A packet field that does not fit in the struct.
    #[error("the 8-byte {field} field at offset {off} does not lie inside the {size}-byte struct")]
    OutsideStruct {
        /// `data` or `data_end`.
        field: &'static str,
        /// Its offset.
        off: u16,
        /// The struct's size.
        size: u16,
    },
    /// The two packet fields share bytes.
    #[error("the 8-byte data (offset {data}) and data_end (offset {data_end}) fields overlap")]
    Overlap {
        /// Offset of `data`.
        data: u16,
        /// Offset of `data_end`.
        data_end: u16,
    },
    /// What the run wrote into the struct does not read back as the packet's bounds (the
    /// last line of defence behind [`StructLayout::check`]: the run is refused, never started).
    #[error(
        "the context's data ({data:#x}) and data_end ({data_end:#x}) do not bound the packet \
         [{start:#x}, {end:#x})"
    )]
    PacketBounds {
        /// `data` as read back.
        data: u64,
        /// `data_end` as read back.
        data_end: u64,
        /// The packet's first byte.
        start: u64,
        /// One past its last byte.
        end: u64,
    },
}

impl StructLayout {
    /// A checked layout ([`StructLayout::check`]).
    pub fn new(size: u16, packet: Option<(u16, u16)>) -> Result<StructLayout, LayoutError> {
        let layout = StructLayout { size, packet };
        layout.check()?;
        Ok(layout)
    }

    /// The one layout rule, applied wherever a layout enters bpfx (the C API, the Rust
    /// builder, verification, each run): a non-empty struct whose `data` and `data_end`
    /// fields, if any, are [`PACKET_FIELD_SIZE`] bytes, 8-aligned, inside the struct and
    /// pairwise disjoint.
    pub fn check(&self) -> Result<(), LayoutError> {
        if self.size == 0 {
            return Err(LayoutError::Empty);
        }
        let Some((data, data_end)) = self.packet else {
            return Ok(());
        };
        let n = PACKET_FIELD_SIZE;
        for (field, off) in [("data", data), ("data_end", data_end)] {
            if off % n != 0 {
                return Err(LayoutError::Misaligned { field, off });
            }
            if u32::from(off) + u32::from(n) > u32::from(self.size) {
                return Err(LayoutError::OutsideStruct {
                    field,
                    off,
                    size: self.size,
                });
            }
        }
        if data < data_end + n && data_end < data + n {
            return Err(LayoutError::Overlap { data, data_end });
        }
        Ok(())
    }
}

/// Writes the packet's bounds into the `data` / `data_end` fields of the context at the start
/// of `buf` (`[struct of size bytes | packet]`), then reads them back and refuses the run
/// unless `data <= data_end` bound exactly the packet inside `buf`: whatever got past
/// [`StructLayout::check`], no engine starts with a `data` pointer nothing proved.
pub(crate) fn fill_packet_fields(
    buf: &mut [u8],
    size: usize,
    data: u16,
    data_end: u16,
) -> Result<(), LayoutError> {
    let base = buf.as_ptr() as u64;
    // `size <= buf.len()` is checked below before either bound is used.
    let start = base.wrapping_add(size as u64);
    let end = base + buf.len() as u64;
    let (d, e) = (usize::from(data), usize::from(data_end));
    let field = |buf: &[u8], off: usize| {
        buf.get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let bad = |data, data_end| LayoutError::PacketBounds {
        data,
        data_end,
        start,
        end,
    };
    if size > buf.len() || d + 8 > size || e + 8 > size {
        return Err(bad(0, 0));
    }
    buf[d..d + 8].copy_from_slice(&start.to_le_bytes());
    buf[e..e + 8].copy_from_slice(&end.to_le_bytes());
    let (got_d, got_e) = (field(buf, d).unwrap_or(0), field(buf, e).unwrap_or(0));
    if got_d != start || got_e != end || got_d > got_e {
        return Err(bad(got_d, got_e));
    }
    Ok(())
}

impl Context {
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Context::Memory => "memory",
            Context::Xdp => "xdp",
            Context::Struct(_) => "struct",
        }
    }

    /// The context a section name implies, as libbpf decides the program type: `xdp` and
    /// `xdp/...` (and `xdp.frags`...) are XDP; everything else plain memory.
    pub fn for_section(section: &str) -> Context {
        if section == "xdp" || section.starts_with("xdp/") || section.starts_with("xdp.") {
            Context::Xdp
        } else {
            Context::Memory
        }
    }
}

/// An XDP verdict: the program's return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0).
    Aborted,
    /// `XDP_DROP` (1).
    Drop,
    /// `XDP_PASS` (2).
    Pass,
    /// `XDP_TX` (3).
    Tx,
    /// `XDP_REDIRECT` (4).
    Redirect,
    /// Any other value (the kernel treats it as `XDP_ABORTED`).
    Unknown(u64),
}

impl XdpAction {
    /// The action a return value means.
    pub fn from_code(r0: u64) -> XdpAction {
        match r0 {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            v => XdpAction::Unknown(v),
        }
    }

    /// The return value.
    pub fn code(self) -> u64 {
        match self {
            XdpAction::Aborted => 0,
            XdpAction::Drop => 1,
            XdpAction::Pass => 2,
            XdpAction::Tx => 3,
            XdpAction::Redirect => 4,
            XdpAction::Unknown(v) => v,
        }
    }

    /// The kernel's name (`XDP_PASS`, …; `XDP_UNKNOWN` for other values).
    pub fn name(self) -> &'static str {
        match self {
            XdpAction::Aborted => "XDP_ABORTED",
            XdpAction::Drop => "XDP_DROP",
            XdpAction::Pass => "XDP_PASS",
            XdpAction::Tx => "XDP_TX",
            XdpAction::Redirect => "XDP_REDIRECT",
            XdpAction::Unknown(_) => "XDP_UNKNOWN",
        }
    }
}

impl fmt::Display for XdpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XdpAction::Unknown(v) => write!(f, "XDP_UNKNOWN({v})"),
            a => f.write_str(a.name()),
        }
    }
}

/// The receive-side metadata of an XDP run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XdpMeta {
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `rx_queue_index`.
    pub rx_queue_index: u32,
    /// `egress_ifindex`.
    pub egress_ifindex: u32,
}

/// Fills bpfx's XDP context at the start of `buf` (whose packet starts at [`XDP_CTX_SIZE`]).
pub(crate) fn fill_xdp_ctx(buf: &mut [u8], meta: &XdpMeta) {
    let data = buf.as_ptr() as u64 + XDP_CTX_SIZE as u64;
    let end = buf.as_ptr() as u64 + buf.len() as u64;
    buf[0..8].copy_from_slice(&data.to_le_bytes());
    buf[8..16].copy_from_slice(&end.to_le_bytes());
    buf[16..24].copy_from_slice(&data.to_le_bytes());
    buf[24..28].copy_from_slice(&meta.ingress_ifindex.to_le_bytes());
    buf[28..32].copy_from_slice(&meta.rx_queue_index.to_le_bytes());
    buf[32..36].copy_from_slice(&meta.egress_ifindex.to_le_bytes());
    buf[36..40].fill(0);
}

/// Why the XDP rewrite refused a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pc}: {insn}: {reason}")]
pub struct ContextError {
    /// The instruction.
    pub pc: Pc,
    /// It, in assembly.
    pub insn: String,
    /// Why.
    pub reason: String,
}

/// What a register or spilled stack slot holds, as far as the context is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V {
    /// Certainly not the context pointer.
    Not,
    /// Certainly the context pointer (offset 0).
    Ctx,
    /// Possibly derived from the context (arithmetic on it, or different on different paths).
    Mixed,
}

impl V {
    fn join(self, o: V) -> V {
        if self == o { self } else { V::Mixed }
    }

    fn derived(self) -> V {
        if self == V::Not { V::Not } else { V::Mixed }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    regs: [V; Reg::COUNT],
    /// 8-byte slots below r10 that hold a spilled context pointer (absent = `Not`).
    slots: BTreeMap<i16, V>,
}

impl State {
    fn entry(args: [V; 5]) -> State {
        let mut regs = [V::Not; Reg::COUNT];
        regs[1..=5].copy_from_slice(&args);
        State {
            regs,
            slots: BTreeMap::new(),
        }
    }

    fn join(&mut self, o: &State) -> bool {
        let before = self.clone();
        for (a, b) in self.regs.iter_mut().zip(o.regs) {
            *a = a.join(b);
        }
        let keys: Vec<i16> = self.slots.keys().chain(o.slots.keys()).copied().collect();
        for k in keys {
            let a = self.slots.get(&k).copied().unwrap_or(V::Not);
            let b = o.slots.get(&k).copied().unwrap_or(V::Not);
            let j = a.join(b);
            if j == V::Not {
                self.slots.remove(&k);
            } else {
                self.slots.insert(k, j);
            }
        }
        *self != before
    }

    /// Forgets spills overlapping `[off, off + size)` below r10.
    fn kill(&mut self, off: i16, size: i16) {
        self.slots
            .retain(|&s, _| s.saturating_add(8) <= off || off.saturating_add(size) <= s);
    }

    fn get(&self, r: Reg) -> V {
        self.regs[r.index()]
    }

    fn set(&mut self, r: Reg, v: V) {
        self.regs[r.index()] = v;
    }
}

/// The bpfx load replacing a 4-byte load of the `xdp_md` field at `off`.
fn xdp_field(off: i16) -> Option<(Size, i16)> {
    Some(match off {
        0 => (Size::Dw, 0),
        4 => (Size::Dw, 8),
        8 => (Size::Dw, 16),
        12 => (Size::W, 24),
        16 => (Size::W, 28),
        20 => (Size::W, 32),
        _ => return None,
    })
}

/// Rewrites every load of an `xdp_md` field into a load of bpfx's XDP context, refusing
/// programs that store to the context or access it in a way the dataflow cannot resolve.
pub fn rewrite_xdp(prog: &Program) -> Result<Program, ContextError> {
    let fail = |pc: Pc, op: &Op, reason: String| ContextError {
        pc,
        insn: op.to_string(),
        reason,
    };
    let n = prog.len();
    let mut states: Vec<Option<State>> = vec![None; n];
    let mut work: Vec<usize> = vec![0];
    states[0] = Some(State::entry([V::Ctx, V::Not, V::Not, V::Not, V::Not]));
    let mut rewrites: BTreeMap<usize, (Size, i16)> = BTreeMap::new();
    let push = |states: &mut Vec<Option<State>>, work: &mut Vec<usize>, pc: Pc, st: &State| {
        let Some(slot) = states.get_mut(pc.index()) else {
            return;
        };
        let changed = match slot {
            Some(old) => old.join(st),
            None => {
                *slot = Some(st.clone());
                true
            }
        };
        if changed {
            work.push(pc.index());
        }
    };
    while let Some(i) = work.pop() {
        let pc = Pc(i as u32);
        let (Some(op), Some(st)) = (prog.get(pc), states[i].clone()) else {
            continue;
        };
        let mut st = st;
        let mut next = vec![];
        match *op {
            Op::Alu {
                width,
                op: alu,
                dst,
                src,
            } => {
                let s = match src {
                    Operand::Reg(r) => st.get(r),
                    Operand::Imm(_) => V::Not,
                };
                let v = match (alu, width) {
                    (AluOp::Mov, Width::W64) => s,
                    (AluOp::Mov, Width::W32) => s.derived(),
                    _ if st.get(dst) == V::Not && s == V::Not => V::Not,
                    _ => V::Mixed,
                };
                st.set(dst, v);
            }
            Op::Neg { dst, .. } | Op::Endian { dst, .. } => {
                let v = st.get(dst).derived();
                st.set(dst, v);
            }
            Op::Movsx { dst, src, .. } => {
                let v = st.get(src).derived();
                st.set(dst, v);
            }
            Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            } => {
                let v = if base == Reg::R10 {
                    match size {
                        Size::Dw => st.slots.get(&off).copied().unwrap_or(V::Not),
                        _ => V::Not,
                    }
                } else {
                    match st.get(base) {
                        V::Not => V::Not,
                        V::Mixed => {
                            return Err(fail(
                                pc,
                                op,
                                format!("{base} may or may not point into the xdp_md context here"),
                            ));
                        }
                        V::Ctx => {
                            let Some(new) = xdp_field(off).filter(|_| size == Size::W && !signed)
                            else {
                                return Err(fail(
                                    pc,
                                    op,
                                    format!(
                                        "only 4-byte loads of the xdp_md fields (offsets 0, 4, \
                                         ..., 20) read the context, not {}-byte loads at {off}",
                                        size.bytes()
                                    ),
                                ));
                            };
                            rewrites.insert(i, new);
                            V::Not
                        }
                    }
                };
                st.set(dst, v);
            }
            Op::Store {
                size,
                base,
                off,
                src,
            } => {
                if base == Reg::R10 {
                    let v = match src {
                        Operand::Reg(r) if size == Size::Dw => st.get(r),
                        _ => V::Not,
                    };
                    st.kill(off, size.bytes() as i16);
                    if v != V::Not {
                        st.slots.insert(off, v);
                    }
                } else if st.get(base) != V::Not {
                    return Err(fail(pc, op, "the xdp_md context is read-only".into()));
                }
            }
            Op::Atomic {
                width,
                op: aop,
                fetch,
                base,
                off,
                src,
            } => {
                if base == Reg::R10 {
                    let bytes = if width == Width::W64 { 8 } else { 4 };
                    st.kill(off, bytes);
                } else if st.get(base) != V::Not {
                    return Err(fail(pc, op, "the xdp_md context is read-only".into()));
                }
                if aop == bpfx_bytecode::AtomicOp::Cmpxchg {
                    st.set(Reg::R0, V::Not);
                } else if fetch {
                    st.set(src, V::Not);
                }
            }
            Op::LoadImm64 { dst, .. } => st.set(dst, V::Not),
            Op::LoadPacket { .. } => st.set(Reg::R0, V::Not),
            Op::Call(CallTarget::Local { off }) => {
                let args = [1, 2, 3, 4, 5].map(|r| st.regs[r]);
                if let Some(t) = pc.offset(off) {
                    push(&mut states, &mut work, t, &State::entry(args));
                }
                for r in &mut st.regs[0..=5] {
                    *r = V::Not;
                }
            }
            Op::Call(_) => {
                for r in &mut st.regs[0..=5] {
                    *r = V::Not;
                }
            }
            Op::Ja { .. } | Op::Branch { .. } | Op::Exit => {}
        }
        if let Some(t) = op.jump_target(pc) {
            if let Op::LoadImm64 { .. } = op {
                // A function whose address is taken (a callback) starts with nothing known.
                push(&mut states, &mut work, t, &State::entry([V::Not; 5]));
            } else if !matches!(op, Op::Call(_)) {
                next.push(t);
            }
        }
        if op.falls_through() {
            next.push(Pc(pc.0 + op.slots()));
        }
        for t in next {
            push(&mut states, &mut work, t, &st);
        }
    }
    if rewrites.is_empty() {
        return Ok(prog.clone());
    }
    let ops: Vec<Op> = prog
        .iter()
        .map(|(pc, op)| match (*op, rewrites.get(&pc.index())) {
            (
                Op::Load {
                    signed, dst, base, ..
                },
                Some(&(size, off)),
            ) => Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            },
            (op, _) => op,
        })
        .collect();
    Program::from_ops(&ops).map_err(|e| ContextError {
        pc: Pc(e.pc),
        insn: String::new(),
        reason: format!("rewritten program does not decode: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx_bytecode::assemble;

    /// The run's last line of defence: whatever layout reaches it, the fields must read back
    /// as the packet's exact bounds.
    #[test]
    fn packet_fields_that_do_not_read_back_refuse_the_run() {
        let mut buf = vec![0u8; 16 + 4];
        let base = buf.as_ptr() as u64;
        fill_packet_fields(&mut buf, 16, 8, 0).unwrap();
        assert_eq!(buf[8..16], (base + 16).to_le_bytes());
        assert_eq!(buf[0..8], (base + 20).to_le_bytes());
        // Overlapping fields: data_end's write clobbers half of data.
        let e = fill_packet_fields(&mut buf, 16, 4, 0).unwrap_err();
        assert!(
            matches!(e, LayoutError::PacketBounds { data, start, .. } if data != start),
            "{e}"
        );
        assert!(matches!(
            fill_packet_fields(&mut buf, 16, 0, 0),
            Err(LayoutError::PacketBounds { .. })
        ));
        // Fields or struct that do not fit: refused, not a panic.
        for (size, d, e) in [(16, 12, 0), (16, 0, 9), (21, 0, 8), (usize::MAX, 0, 8)] {
            assert!(
                fill_packet_fields(&mut buf, size, d, e).is_err(),
                "{size} {d} {e}"
            );
        }
    }

    fn prog(text: &str) -> Program {
        Program::decode(assemble(text).unwrap()).unwrap()
    }

    fn loads(p: &Program) -> Vec<String> {
        p.iter()
            .filter(|(_, op)| matches!(op, Op::Load { .. }))
            .map(|(_, op)| op.to_string())
            .collect()
    }

    #[test]
    fn loads_through_the_context_are_rewritten_through_moves_and_spills() {
        let p = prog(
            "mov r6, r1\n\
             stxdw [r10-8], r6\n\
             ldxw r2, [r1+0]\n\
             ldxdw r7, [r10-8]\n\
             ldxw r3, [r7+4]\n\
             ldxw r4, [r6+12]\n\
             ldxw r5, [r2+4]\n\
             mov r0, 2\n\
             exit",
        );
        let out = rewrite_xdp(&p).unwrap();
        let want = [
            "ldxdw r2, [r1+0]",
            "ldxdw r7, [r10-8]",
            "ldxdw r3, [r7+8]",
            "ldxw r4, [r6+24]",
            "ldxw r5, [r2+4]",
        ];
        assert_eq!(
            loads(&out),
            want.map(|s| prog(s).get(Pc(0)).unwrap().to_string())
        );
    }

    #[test]
    fn context_passed_to_a_subprogram_is_followed() {
        let p = prog("call local +2\nmov r0, 2\nexit\nldxw r0, [r1+4]\nexit");
        let out = rewrite_xdp(&p).unwrap();
        assert_eq!(
            out.get(Pc(3)).unwrap().to_string(),
            prog("ldxdw r0, [r1+8]").get(Pc(0)).unwrap().to_string()
        );
    }

    #[test]
    fn unresolvable_and_writing_accesses_are_errors_naming_the_pc() {
        let e = rewrite_xdp(&prog("stw [r1+0], 1\nmov r0, 0\nexit")).unwrap_err();
        assert_eq!(e.pc, Pc(0));
        assert!(e.reason.contains("read-only"), "{e}");
        let e =
            rewrite_xdp(&prog("jeq r2, 0, +1\nmov r1, r10\nldxw r0, [r1-4]\nexit")).unwrap_err();
        assert_eq!(e.pc, Pc(2));
        let e = rewrite_xdp(&prog("add r1, 4\nldxw r0, [r1+0]\nexit")).unwrap_err();
        assert_eq!(e.pc, Pc(1));
        let e = rewrite_xdp(&prog("ldxh r0, [r1+2]\nexit")).unwrap_err();
        assert!(e.reason.contains("4-byte"), "{e}");
        // A spill overwritten by a scalar no longer holds the context.
        let p = prog("stxdw [r10-8], r1\nstw [r10-8], 0\nldxdw r2, [r10-8]\nldxw r0, [r2+0]\nexit");
        assert_eq!(rewrite_xdp(&p).unwrap(), p);
    }
}
