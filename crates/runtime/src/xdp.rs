//! XDP runs on packet buffers ([`Packet`]) and their outcome ([`XdpOutcome`]): the verdict,
//! where the frame ended up, and where a redirect sends it.
//!
//! [`Program::run_xdp`] (a plain `&mut [u8]`) runs through the same path: the frame is copied
//! into a packet buffer with the kernel's headroom and tailroom, and copied back when the
//! program left its start and length as they were; a program that moved its head or tail
//! (`xdp_adjust_head`, `xdp_adjust_tail`) gets [`RunError::FrameMoved`] naming the helper, since
//! a slice cannot change its length: such programs run with [`Program::run_xdp_packet`].

use crate::context::{Context, LayoutError, XDP_CTX_SIZE, XdpAction, XdpMeta};
use crate::error::RunError;
use crate::helpers::RedirectTarget;
use crate::packet::{Packet, XDP_PACKET_HEADROOM};
use crate::program::Program;
use crate::xdp_helpers::XdpFrame;

/// What an XDP run gave: the verdict, the frame's final place in the packet buffer, and the
/// redirect target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XdpOutcome {
    /// The verdict (the program's return value).
    pub action: XdpAction,
    /// Offset of the frame's first byte in the packet buffer ([`Packet::start`]): the
    /// packet's headroom before the run, less what `xdp_adjust_head` grew the head by.
    pub start: usize,
    /// The frame's length after the run.
    pub len: usize,
    /// Bytes of metadata before the frame (`xdp_adjust_meta`).
    pub meta_len: usize,
    /// Where the run's last successful `redirect` or `redirect_map` sent the frame (what
    /// [`XdpAction::Redirect`] means; kept, as the kernel keeps it, whatever the verdict).
    pub redirect: Option<RedirectTarget>,
}

impl Program {
    /// Runs an XDP program on `packet`, which it may rewrite and whose head, tail and
    /// metadata it may move (`xdp_adjust_head`, `xdp_adjust_tail`, `xdp_adjust_meta`); the
    /// packet holds the final frame afterwards, also when the run traps (as far as the program
    /// got).
    pub fn run_xdp_packet(&mut self, packet: &mut Packet) -> Result<XdpOutcome, RunError> {
        self.run_xdp_packet_with(packet, &XdpMeta::default())
    }

    /// [`Program::run_xdp_packet`] with receive-side metadata.
    pub fn run_xdp_packet_with(
        &mut self,
        packet: &mut Packet,
        meta: &XdpMeta,
    ) -> Result<XdpOutcome, RunError> {
        self.expect(Context::Xdp)?;
        let r0 = self.run_xdp_frame(packet, meta).map_err(|e| *e)?;
        Ok(XdpOutcome {
            action: XdpAction::from_code(r0),
            start: packet.start(),
            len: packet.len(),
            meta_len: packet.meta().len(),
            redirect: self.last_redirect(),
        })
    }

    /// [`Program::run_xdp_packet_with`]'s run, for an XDP program: the frame record and the
    /// context filled, the run, and the frame's final bounds set in `packet`; r0. The slice
    /// entry ([`Program::run_xdp_slice`]) calls it directly: it needs neither the outcome nor
    /// the redirect target's copy (which [`Program::last_redirect`] gives on demand). The
    /// error is boxed ([`Program::exec_boxed`]): the result comes back in two registers.
    fn run_xdp_frame(&mut self, packet: &mut Packet, meta: &XdpMeta) -> Result<u64, Box<RunError>> {
        let (buf, start, len, metalen) = packet.parts_mut();
        let base = buf.as_ptr() as u64;
        let hard_start = base + XDP_CTX_SIZE as u64;
        let data = hard_start + start as u64;
        let frame = XdpFrame {
            active: true,
            ctx: base,
            hard_start,
            hard_end: base + buf.len() as u64,
            meta: data - metalen as u64,
            data,
            data_end: data + len as u64,
            moved_by: None,
        };
        fill_ctx(buf, &frame, meta);
        // The frame set and what the run left of it read under the locks the run takes anyway.
        let (res, f) = self.exec_boxed(
            buf,
            |st| st.frame = frame,
            |st| {
                st.frame.active = false;
                st.frame
            },
        );
        // The frame's bounds come from the host's record, which only the adjust helpers move
        // (within the buffer), never from the guest-writable context.
        let placed = f.data >= hard_start
            && f.meta <= f.data
            && f.data <= f.data_end
            && packet.set_bounds(
                (f.data - hard_start) as usize,
                (f.data_end - f.data) as usize,
                (f.data - f.meta) as usize,
            );
        if !placed {
            return Err(Box::new(RunError::Layout {
                program: self.name().to_string(),
                source: LayoutError::PacketBounds {
                    data: f.data,
                    data_end: f.data_end,
                    start: hard_start,
                    end: f.hard_end,
                },
            }));
        }
        res
    }

    /// Whether this is an XDP program no run of which can move its frame's start or end: it
    /// calls neither `xdp_adjust_head` nor `xdp_adjust_tail`, nor a tail call, a helper by
    /// register or a kfunc (which could reach one). Its runs through [`Program::run_xdp`]
    /// then never fail with [`RunError::FrameMoved`], and give the verdict, maps, redirect
    /// target and frame bytes a run through [`Program::run_xdp_packet`] on
    /// [`Packet::new`] of the same frame gives, without a packet buffer of the caller's:
    /// the slice entry reuses the program's run buffer and zeroes only what the last run may
    /// have left in it (what `bpfx replay` takes it for).
    pub fn xdp_frame_fixed(&self) -> bool {
        use crate::xdp_helpers::{XDP_ADJUST_HEAD, XDP_ADJUST_TAIL};
        use bpfx_bytecode::{CallTarget, Op};
        self.context() == Context::Xdp
            && !self.verified().program().iter().any(|(_, op)| {
                hands_off(op)
                    || matches!(
                        op,
                        Op::Call(CallTarget::Helper(XDP_ADJUST_HEAD | XDP_ADJUST_TAIL))
                    )
            })
    }

    /// [`Program::run_xdp_with`]'s body: the frame copied into a packet buffer (reusing this
    /// program's run buffer), run, and copied back when its start and length did not change.
    pub(crate) fn run_xdp_slice(
        &mut self,
        frame: &mut [u8],
        meta: &XdpMeta,
    ) -> Result<XdpAction, RunError> {
        self.expect(Context::Xdp)?;
        let tail = crate::packet::page_tailroom(frame.len());
        let buf = std::mem::take(&mut self.buf);
        // After the run of a program with a write reach the buffer is zero but for the context
        // struct and the bytes before `xdp_dirty_end` (the frame, and what its stores may have
        // reached past it): the next build zeroes only what the new frame does not cover of it.
        let dirty_end = std::mem::replace(&mut self.xdp_dirty_end, usize::MAX);
        let mut packet = if self.xdp_reach.is_some() && dirty_end != usize::MAX {
            Packet::build_clean(buf, frame, XDP_PACKET_HEADROOM, tail, dirty_end)
        } else if self.xdp_tail_unread {
            Packet::build_keeping_tail(buf, frame, XDP_PACKET_HEADROOM, tail)
        } else {
            Packet::build(buf, frame, XDP_PACKET_HEADROOM, tail)
        };
        let data = XDP_CTX_SIZE + usize::from(XDP_PACKET_HEADROOM);
        let frame_end = data + frame.len();
        let res = self.run_xdp_frame(&mut packet, meta);
        if let Some(reach) = self.xdp_reach {
            // The run wrote nothing outside its frame but what its reach admits (`write_reach`):
            // the rest of the tailroom is still zero, whatever it returned.
            self.xdp_dirty_end = frame_end.max(data.saturating_add(reach));
        }
        let (start, len) = (packet.start(), packet.len());
        let kept = start == usize::from(XDP_PACKET_HEADROOM) && len == frame.len();
        // A program that writes no packet byte left the frame as it was copied in.
        if kept && !self.xdp_frame_unwritten {
            frame.copy_from_slice(packet.frame());
        }
        self.buf = packet.into_buf();
        let out = res.map_err(|e| *e)?;
        if !kept {
            let moved_by = self.state().frame.moved_by;
            return Err(RunError::FrameMoved {
                program: self.name().to_string(),
                helper: moved_by.unwrap_or("an adjust helper"),
                len: frame.len(),
                new_start: start as i64 - i64::from(XDP_PACKET_HEADROOM),
                new_len: len,
            });
        }
        Ok(XdpAction::from_code(out))
    }
}

/// Whether no run of `prog` through [`Program::run_xdp`] reads its run buffer's tailroom, so
/// the buffer may keep there what the last run left ([`Packet::build_keeping_tail`]): a Strict
/// program reads no packet byte at or past `data_end` (its packet accesses, helpers' included,
/// are proven below it; `xdp_adjust_tail` zeroes what it grows the frame into), and one that
/// calls no `tail_call` (nor a helper by register, which could be `tail_call`, nor a kfunc) hands the buffer
/// to no other program. A Checked program may read the tailroom through a guarded access: its
/// runs zero it.
pub(crate) fn tail_unread(prog: &bpfx_verifier::VerifiedProgram) -> bool {
    prog.mode() == bpfx_verifier::Mode::Strict
        && !prog.program().iter().any(|(_, op)| hands_off(op))
}

/// Whether `op` may run code other than the program's own and the helpers it names: a
/// `tail_call`, a helper called by register (which could be `tail_call`) or a kfunc.
fn hands_off(op: &bpfx_bytecode::Op) -> bool {
    use bpfx_bytecode::{CallTarget, Op};
    matches!(
        op,
        Op::Call(
            CallTarget::Helper(crate::helpers::TAIL_CALL)
                | CallTarget::Register(_)
                | CallTarget::Kfunc(_)
        )
    )
}

/// Whether no run of `prog` writes a byte of its run buffer past the frame it was given, so
/// that [`Program::run_xdp`] needs to zero only the part of the next run's tailroom the last
/// frame covered (the rest is still zero). It holds when every store and atomic is proven by
/// the verifier to hit the stack or a map value (a Checked program's packet stores are never
/// proven: they disqualify it), and every call is one of the helpers below, which write no
/// guest memory and move no frame bounds, and which the embedder has not replaced; no tail
/// call, call by register, kfunc or callback-taking helper. With `packet_stores` false, no
/// store or atomic may hit the packet either: no run writes any byte of its input.
pub(crate) fn confined(
    prog: &bpfx_verifier::VerifiedProgram,
    replaced: &[u32],
    packet_stores: bool,
) -> bool {
    use bpfx_bytecode::Op;
    use bpfx_verifier::RegionKind;
    prog.program().iter().all(|(pc, op)| match op {
        Op::Store { .. } | Op::Atomic { .. } => prog.access(pc).is_some_and(|a| {
            a.proven
                && match a.region {
                    RegionKind::Stack | RegionKind::MapValue => true,
                    RegionKind::Packet => packet_stores,
                    _ => false,
                }
        }),
        _ => call_confined(op, replaced),
    })
}

/// The helpers [`confined`] and [`write_reach`] admit: they write no guest memory and move
/// no frame bounds.
const NO_WRITES: [u32; 9] = [
    crate::helpers::MAP_LOOKUP_ELEM,
    crate::helpers::MAP_UPDATE_ELEM,
    crate::helpers::MAP_DELETE_ELEM,
    crate::helpers::MAP_LOOKUP_PERCPU_ELEM,
    crate::helpers::KTIME_GET_NS,
    crate::helpers::GET_PRANDOM_U32,
    crate::helpers::GET_SMP_PROCESSOR_ID,
    crate::helpers::REDIRECT_MAP,
    crate::xdp_helpers::REDIRECT,
];

/// Whether `op`, not a store or an atomic, keeps a run [`confined`]: any instruction but a
/// call, a call of a subprogram, or of one of [`NO_WRITES`] the embedder has not replaced.
fn call_confined(op: &bpfx_bytecode::Op, replaced: &[u32]) -> bool {
    use bpfx_bytecode::{CallTarget, Op};
    match op {
        Op::Call(CallTarget::Helper(id)) => NO_WRITES.contains(id) && !replaced.contains(id),
        Op::Call(CallTarget::Local { .. }) => true,
        Op::Call(_) => false,
        _ => true,
    }
}

/// How far past the frame's first byte (`data`) a run of `prog` may write its run buffer,
/// when it writes nothing before `data` (neither the headroom nor the context struct) and
/// nothing past `data` plus that many bytes but its own frame: `Some(0)` for a [`confined`]
/// program, which writes at most its frame. A Checked program's packet stores are never
/// proven, and their guard admits the whole run buffer; the verifier's reach of each
/// ([`bpfx_verifier::VerifiedProgram::packet_write`]) bounds them instead. The reach counts
/// from `data` as the context gave it: it holds because nothing else in such a run can move
/// the frame or write the context's `data` field, by induction over the run's writes: every
/// other store and atomic is proven to hit the stack or a map value, every call is one
/// [`confined`] admits (no helper writes guest memory or moves the frame), and each packet
/// store lands at or past `data`, so past the context struct, while every earlier one did.
/// `None` when some store or atomic is neither (one with an unknown region, a variable
/// offset the analysis does not bound, an offset that may be negative, or one relative to
/// `data_meta`), or for a call `confined` refuses.
pub(crate) fn write_reach(prog: &bpfx_verifier::VerifiedProgram, replaced: &[u32]) -> Option<u64> {
    use bpfx_bytecode::Op;
    use bpfx_verifier::{PacketReach, RegionKind};
    let mut reach = 0;
    for (pc, op) in prog.program().iter() {
        match op {
            Op::Store { .. } | Op::Atomic { .. } => {
                let a = prog.access(pc)?;
                match (a.region, a.proven) {
                    (RegionKind::Stack | RegionKind::MapValue | RegionKind::Packet, true) => {}
                    (RegionKind::Packet, false) => match prog.packet_write(pc)? {
                        PacketReach::Within { end, .. } => reach = reach.max(end),
                        PacketReach::Unbounded => return None,
                    },
                    _ => return None,
                }
            }
            _ if !call_confined(op, replaced) => return None,
            _ => {}
        }
    }
    Some(reach)
}

/// Fills bpfx's XDP context at the start of `buf` from `f` and `meta`.
fn fill_ctx(buf: &mut [u8], f: &XdpFrame, meta: &XdpMeta) {
    write_frame_pointers(buf, f);
    buf[24..28].copy_from_slice(&meta.ingress_ifindex.to_le_bytes());
    buf[28..32].copy_from_slice(&meta.rx_queue_index.to_le_bytes());
    buf[32..36].copy_from_slice(&meta.egress_ifindex.to_le_bytes());
    buf[36..40].fill(0);
}

/// Writes the frame's `data`, `data_end` and `data_meta` from the host's record `f` into the
/// XDP context at the start of `buf` (a run's input: at least [`XDP_CTX_SIZE`] bytes; a
/// shorter one is left alone).
pub(crate) fn write_frame_pointers(buf: &mut [u8], f: &XdpFrame) {
    let Some(ctx) = buf.get_mut(..24) else {
        return;
    };
    ctx[0..8].copy_from_slice(&f.data.to_le_bytes());
    ctx[8..16].copy_from_slice(&f.data_end.to_le_bytes());
    ctx[16..24].copy_from_slice(&f.meta.to_le_bytes());
}
