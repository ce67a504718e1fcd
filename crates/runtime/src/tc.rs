//! TC runs on packet buffers ([`Packet`]) and their outcome as one value ([`TcOutcome`]): the
//! verdict, the socket buffer's metadata as the program left it, where a redirect sends the
//! packet, and the copies `clone_redirect` sent.
//!
//! A TC program may move the packet's head and tail (`skb_vlan_push`, `skb_vlan_pop`,
//! `skb_change_proto`, `skb_adjust_room`, `skb_change_head`, `skb_change_tail`): run on a
//! [`Packet`] ([`Program::run_tc_packet`]), it grows into the packet's headroom and tailroom,
//! and the packet holds the final frame afterwards. [`Program::run_tc`] (a plain `&mut [u8]`)
//! runs through the same path with the kernel's XDP headroom and a page's tailroom, and
//! copies the frame back when its length did not change; a program that changed it gets
//! [`RunError::FrameMoved`] naming the helper, and the slice is left as it was.

use crate::context::Context;
use crate::context::LayoutError;
use crate::error::RunError;
use crate::helpers::RedirectTarget;
use crate::packet::{ETH_HLEN, Packet, XDP_PACKET_HEADROOM};
use crate::program::Program;
use crate::skb::{self, SKB_CTX_SIZE, SkbMeta, TcAction};
use crate::skb_packet::{ClonedPacket, TcFrame};

/// What a TC run gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcOutcome {
    /// The verdict (`TC_ACT_*`).
    pub action: TcAction,
    /// The metadata after the run: what the run started with, and the fields a TC program
    /// may write (`mark`, `priority`, `tc_index`, `tc_classid`, `queue_mapping`, `cb`,
    /// `tstamp`) as it left them, with the kernel's widths; `hash` as the hash helpers
    /// left it (`set_hash`, `get_hash_recalc`, `skb_store_bytes` with `BPF_F_INVALIDATE_HASH`,
    /// `skb_change_proto`); `protocol` and the `vlan_*` fields as the VLAN, protocol and
    /// room helpers left them; `tunnel` as `skb_set_tunnel_key` left it.
    pub meta: SkbMeta,
    /// Where the run's last successful `redirect` (or `redirect_map`) sent the packet; what
    /// [`TcAction::Redirect`] means.
    pub redirect: Option<RedirectTarget>,
    /// The copies of the packet `clone_redirect` sent, in call order (the packet itself is
    /// the run's [`Packet`] or slice).
    pub clones: Vec<ClonedPacket>,
    /// The socket the run's last successful `sk_assign` assigned the packet to.
    pub assigned: Option<crate::SocketId>,
}

impl Program {
    /// [`Program::run_tc`] with the whole outcome: the packet may be rewritten in place (its
    /// length is fixed, see [`Program::run_tc`]), and `meta` is left as it was (the outcome
    /// carries the metadata after the run).
    pub fn run_tc_outcome(
        &mut self,
        packet: &mut [u8],
        meta: &SkbMeta,
    ) -> Result<TcOutcome, RunError> {
        let mut after = *meta;
        let (res, clones) = self.run_tc_slice(packet, &mut after);
        Ok(TcOutcome {
            action: TcAction::from_code(res?),
            meta: after,
            redirect: self.last_redirect(),
            clones,
            assigned: self.state().sockptr.assigned,
        })
    }

    /// Runs a TC program (`sched_cls`/`sched_act`) on `packet`, which it may rewrite, grow and
    /// shrink at both ends within the packet's headroom and tailroom (the VLAN, protocol and
    /// room helpers), with the socket buffer's metadata `meta`. `len`, `data` and `data_end`
    /// in the program's context follow the packet after every helper that moves it. The
    /// packet holds the final frame afterwards ([`Packet::start`], [`Packet::len`]), also when
    /// the run traps (as far as the program got); a TC packet has no metadata area
    /// (`data_meta` is `data`), so any the packet had is dropped.
    pub fn run_tc_packet(
        &mut self,
        packet: &mut Packet,
        meta: &SkbMeta,
    ) -> Result<TcOutcome, RunError> {
        let mut after = *meta;
        let (res, clones) = self.run_tc_on(packet, &mut after);
        Ok(TcOutcome {
            action: TcAction::from_code(res?),
            meta: after,
            redirect: self.last_redirect(),
            clones,
            assigned: self.state().sockptr.assigned,
        })
    }

    /// [`Program::run_tc`]'s body: the frame copied into a packet buffer, run, and copied
    /// back when its length did not change.
    pub(crate) fn run_tc_slice(
        &mut self,
        frame: &mut [u8],
        meta: &mut SkbMeta,
    ) -> (Result<u64, RunError>, Vec<ClonedPacket>) {
        let tail = crate::packet::page_tailroom(frame.len());
        let spare = std::mem::take(&mut self.spare);
        let mut packet = Packet::build(spare, frame, XDP_PACKET_HEADROOM, tail);
        let (res, clones) = self.run_tc_on(&mut packet, meta);
        let (start, len) = (packet.start(), packet.len());
        if len == frame.len() {
            frame.copy_from_slice(packet.frame());
        }
        self.spare = packet.into_buf();
        if len == frame.len() {
            return (res, clones);
        }
        let moved_by = self.state().tc.moved_by;
        let res = res.and_then(|_| {
            Err(RunError::FrameMoved {
                program: self.name().to_string(),
                helper: moved_by.unwrap_or("a resizing helper"),
                len: frame.len(),
                new_start: start as i64 - i64::from(XDP_PACKET_HEADROOM),
                new_len: len,
            })
        });
        (res, clones)
    }

    /// One TC run on `packet`: the run buffer `[socket-buffer struct | packet buffer]` filled,
    /// run, and the packet and `meta` updated from it.
    fn run_tc_on(
        &mut self,
        packet: &mut Packet,
        meta: &mut SkbMeta,
    ) -> (Result<u64, RunError>, Vec<ClonedPacket>) {
        if let Err(e) = self.expect(Context::Tc) {
            return (Err(e), Vec::new());
        }
        // A program with legacy packet loads reads the packet from the end of the struct to
        // the end of the run's input: its packet gets neither headroom nor tailroom.
        let fixed = self.packet_loads();
        let (from, to) = if fixed {
            (packet.start(), packet.start() + packet.len())
        } else {
            (0, packet.capacity())
        };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(SKB_CTX_SIZE, 0);
        buf.extend_from_slice(&packet.buffer()[from..to]);
        let base = buf.as_ptr() as u64;
        let hard_start = base + SKB_CTX_SIZE as u64;
        let data = hard_start + (packet.start() - from) as u64;
        let len = packet.len() as u64;
        let frame = TcFrame {
            fixed,
            active: true,
            ctx: base,
            hard_start,
            hard_end: base + buf.len() as u64,
            data,
            data_end: data + len,
            net_off: (ETH_HLEN as u64).min(len),
            protocol: meta.protocol,
            vlan_proto: meta.vlan_proto,
            vlan_tci: meta.vlan_tci,
            vlan_present: meta.vlan_present != 0,
            encapsulation: false,
            moved_by: None,
        };
        skb::fill_skb_ctx(&mut buf, meta, false);
        let packet_sk = self.state().sockptr.packet;
        crate::sock_table::fill_packet_sk(self.cx(), packet_sk, &mut buf);
        frame.write_into(&mut buf);
        // The frame set and what the run left read under the locks the run takes anyway.
        let (res, (f, clones, tunnel)) = self.exec_with(
            &mut buf,
            |st| {
                st.tc = frame;
                st.tunnel = meta.tunnel;
            },
            |st| {
                st.tc.active = false;
                (st.tc, std::mem::take(&mut st.clones), st.tunnel.take())
            },
        );
        meta.tunnel = tunnel;
        skb::read_back_tc(&buf, meta);
        // The packet's bounds come from the host's record, which only the helpers move
        // (within the buffer), never from the guest-writable context.
        packet.buffer_mut()[from..to].copy_from_slice(&buf[SKB_CTX_SIZE..]);
        let placed = f.data >= hard_start
            && f.data <= f.data_end
            && packet.set_bounds(
                from + (f.data - hard_start) as usize,
                (f.data_end - f.data) as usize,
                0,
            );
        self.buf = buf;
        if !placed {
            let e = RunError::Layout {
                program: self.name().to_string(),
                source: LayoutError::PacketBounds {
                    data: f.data,
                    data_end: f.data_end,
                    start: hard_start,
                    end: f.hard_end,
                },
            };
            return (Err(e), clones);
        }
        (res, clones)
    }
}
