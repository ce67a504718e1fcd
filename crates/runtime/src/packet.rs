//! Packet buffers as the kernel's XDP gives them to programs: the frame sits between a
//! headroom (256 bytes by default, the kernel's `XDP_PACKET_HEADROOM`) and a tailroom, so
//! `xdp_adjust_head`, `xdp_adjust_tail` and `xdp_adjust_meta` move the frame's bounds and the
//! metadata area in place, without reallocating. TC programs run on the same buffers
//! ([`crate::Program::run_tc_packet`]): the helpers that move or resize a socket buffer's
//! packet (`skb_adjust_room`, `skb_change_tail`, `skb_vlan_push`, …) grow it into the same
//! rooms (a TC packet has no metadata area, and no reserved head: the kernel keeps no
//! `struct xdp_frame` in an skb's headroom).
//!
//! ```text
//!  buffer (Packet::capacity bytes)
//!  ├─ headroom ──────────────────────┬────────────┬──────── frame ────────┬── tailroom ──┤
//!  │ 40 reserved │ free              │ metadata   │ data … data_end       │              │
//!  0             XDP_FRAME_RESERVED  start-meta   start                   start+len      capacity
//! ```
//!
//! The first [`XDP_FRAME_RESERVED`] bytes of the headroom are never handed to the program: the
//! kernel keeps its `struct xdp_frame` there, so neither the head nor the metadata may grow into
//! them. A run ([`crate::Program::run_xdp_packet`]) leaves the frame's new start, length and
//! metadata in the `Packet`.
//!
//! The engines see one input buffer `[XDP context struct | buffer]` (the context, of
//! [`crate::XDP_CTX_SIZE`] bytes, holds the `data`, `data_end` and `data_meta` pointers into the
//! buffer): the `Packet` owns that whole run buffer, so a run copies nothing.

use crate::context::XDP_CTX_SIZE;

/// The kernel's `XDP_PACKET_HEADROOM`: the headroom of [`Packet::new`].
pub const XDP_PACKET_HEADROOM: u16 = 256;
/// Bytes at the start of the headroom the program never gets: the kernel keeps its
/// `struct xdp_frame` (40 bytes on 64-bit hosts) there, and refuses to grow the head or the
/// metadata into it.
pub const XDP_FRAME_RESERVED: usize = 40;
/// The buffer a kernel driver gives each frame: one page ([`Packet::new`]'s tailroom leaves
/// room for the kernel's `struct skb_shared_info` at its end).
pub const XDP_FRAME_SIZE: usize = 4096;
/// The kernel's `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64: the end of each
/// frame buffer the program's tail may not grow into.
pub const SKB_SHARED_INFO_SIZE: usize = 320;
/// The kernel's `ETH_HLEN`: the shortest frame the adjust helpers leave.
pub const ETH_HLEN: usize = 14;
/// The most metadata `xdp_adjust_meta` gives a frame, in bytes (a multiple of 4).
pub const XDP_META_MAX: usize = 32;

/// The tailroom a kernel driver's page leaves a frame of `len` bytes after the kernel's
/// headroom: [`XDP_FRAME_SIZE`] less the headroom, the frame and [`SKB_SHARED_INFO_SIZE`] (none
/// for a frame too long for a page).
pub(crate) fn page_tailroom(len: usize) -> usize {
    XDP_FRAME_SIZE
        .saturating_sub(usize::from(XDP_PACKET_HEADROOM) + SKB_SHARED_INFO_SIZE)
        .saturating_sub(len)
}

/// A frame with headroom, tailroom and a metadata area, for XDP and TC runs.
///
/// # Invariants
/// `XDP_CTX_SIZE + XDP_FRAME_RESERVED + meta <= XDP_CTX_SIZE + start` (or `meta == 0`),
/// `start + len <= capacity`, `meta <= XDP_META_MAX`; offsets count from the buffer's first
/// byte (the context struct in front of it is not part of them).
#[derive(Clone)]
pub struct Packet {
    /// `[context struct | headroom | frame | tailroom]`.
    buf: Vec<u8>,
    /// Offset of the frame's first byte in the buffer.
    start: usize,
    /// The frame's length.
    len: usize,
    /// Bytes of metadata just before the frame.
    meta: usize,
}

/// Two packets are equal when their buffers (headroom, frame, tailroom), frames and metadata
/// are: the context struct in front, which a run fills with addresses, is not part of them.
impl PartialEq for Packet {
    fn eq(&self, other: &Packet) -> bool {
        (self.start, self.len, self.meta) == (other.start, other.len, other.meta)
            && self.buf[XDP_CTX_SIZE..] == other.buf[XDP_CTX_SIZE..]
    }
}

impl Eq for Packet {}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("tailroom", &self.tailroom())
            .field("meta", &self.meta())
            .field("frame", &self.frame())
            .finish()
    }
}

impl Packet {
    /// `frame` with the kernel's headroom ([`XDP_PACKET_HEADROOM`]) and the tailroom a kernel
    /// driver's page leaves it: [`XDP_FRAME_SIZE`] less the headroom, the frame and
    /// [`SKB_SHARED_INFO_SIZE`] (none for a frame too long for a page).
    pub fn new(frame: &[u8]) -> Packet {
        Packet::build(
            Vec::new(),
            frame,
            XDP_PACKET_HEADROOM,
            page_tailroom(frame.len()),
        )
    }

    /// Makes this packet what [`Packet::new`] of `frame` makes, in the buffer it already has:
    /// the kernel's headroom and tailroom, every byte around the frame zero (whatever a run
    /// left there: its metadata, a grown head or tail, what it wrote past the frame) and no
    /// metadata. For replaying packets one after another through programs that may move their
    /// frame ([`crate::Program::run_xdp_packet`], [`crate::Program::run_tc_packet`]) without an
    /// allocation per packet.
    pub fn refill(&mut self, frame: &[u8]) {
        let buf = std::mem::take(&mut self.buf);
        *self = Packet::build(buf, frame, XDP_PACKET_HEADROOM, page_tailroom(frame.len()));
    }

    /// `frame` with `headroom` bytes before it (of which the first [`XDP_FRAME_RESERVED`] are
    /// never the program's) and `tailroom` after it.
    pub fn with_room(frame: &[u8], headroom: u16, tailroom: u16) -> Packet {
        Packet::build(Vec::new(), frame, headroom, usize::from(tailroom))
    }

    /// A packet in `buf` (its allocation reused; its contents replaced).
    pub(crate) fn build(mut buf: Vec<u8>, frame: &[u8], headroom: u16, tailroom: usize) -> Packet {
        let start = usize::from(headroom);
        buf.clear();
        buf.resize(XDP_CTX_SIZE + start, 0);
        buf.extend_from_slice(frame);
        buf.resize(buf.len() + tailroom, 0);
        Packet {
            buf,
            start,
            len: frame.len(),
            meta: 0,
        }
    }

    /// [`Packet::build`] for a run none of whose programs reads past the frame: the tailroom
    /// keeps what `buf` held there (zeroed only where the buffer grows), so the run does not
    /// zero-fill most of a page; the context struct, the headroom and the frame are as `build`
    /// makes them.
    pub(crate) fn build_keeping_tail(
        mut buf: Vec<u8>,
        frame: &[u8],
        headroom: u16,
        tailroom: usize,
    ) -> Packet {
        let start = usize::from(headroom);
        let at = XDP_CTX_SIZE + start;
        let total = at + frame.len() + tailroom;
        buf.truncate(total);
        buf.resize(total, 0);
        buf[..at].fill(0);
        buf[at..at + frame.len()].copy_from_slice(frame);
        Packet {
            buf,
            start,
            len: frame.len(),
            meta: 0,
        }
    }

    /// [`Packet::build`] for a buffer built with the same headroom whose bytes are all zero
    /// but for the context struct and those before `dirty_end` (the last frame's end: the
    /// last run wrote nothing else): zeroes only the context struct and what of
    /// `[frame end, dirty_end)` the new frame leaves; the result is the same as `build`'s.
    pub(crate) fn build_clean(
        mut buf: Vec<u8>,
        frame: &[u8],
        headroom: u16,
        tailroom: usize,
        dirty_end: usize,
    ) -> Packet {
        let start = usize::from(headroom);
        let at = XDP_CTX_SIZE + start;
        let end = at + frame.len();
        let total = end + tailroom;
        buf.truncate(total);
        let dirty = dirty_end.min(buf.len());
        buf.resize(total, 0);
        buf[..XDP_CTX_SIZE].fill(0);
        buf[at..end].copy_from_slice(frame);
        if dirty > end {
            buf[end..dirty].fill(0);
        }
        Packet {
            buf,
            start,
            len: frame.len(),
            meta: 0,
        }
    }

    /// The frame: from `data` to `data_end`.
    pub fn frame(&self) -> &[u8] {
        let at = XDP_CTX_SIZE + self.start;
        &self.buf[at..at + self.len]
    }

    /// The frame, to change before a run.
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let at = XDP_CTX_SIZE + self.start;
        &mut self.buf[at..at + self.len]
    }

    /// The metadata (from `data_meta` to `data`): empty unless a program grew it with
    /// `xdp_adjust_meta`.
    pub fn meta(&self) -> &[u8] {
        let at = XDP_CTX_SIZE + self.start;
        &self.buf[at - self.meta..at]
    }

    /// Offset of the frame's first byte in the buffer: the headroom before it, metadata
    /// included (a new packet's headroom; less after a program grew the head, more after it
    /// shrank it).
    pub fn start(&self) -> usize {
        self.start
    }

    /// The frame's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer's size: headroom, frame and tailroom.
    pub fn capacity(&self) -> usize {
        self.buf.len() - XDP_CTX_SIZE
    }

    /// The bytes after the frame that `xdp_adjust_tail` may grow it into.
    pub fn tailroom(&self) -> usize {
        self.capacity() - self.start - self.len
    }

    /// The whole buffer: headroom, metadata, frame and tailroom (the frame at
    /// [`Packet::start`]).
    pub fn buffer(&self) -> &[u8] {
        &self.buf[XDP_CTX_SIZE..]
    }

    /// The whole buffer, to change before a run (what lies around the frame is the
    /// embedder's: the program may grow the frame or the metadata over it).
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        &mut self.buf[XDP_CTX_SIZE..]
    }

    /// The frame, copied out.
    pub fn to_vec(&self) -> Vec<u8> {
        self.frame().to_vec()
    }

    /// The run buffer and where the frame is in it: (buffer, start, len, meta).
    pub(crate) fn parts_mut(&mut self) -> (&mut [u8], usize, usize, usize) {
        (&mut self.buf, self.start, self.len, self.meta)
    }

    /// Sets where the frame is after a run (offsets from the buffer's first byte), checked
    /// against the invariants; `false` (and nothing changed) when they do not hold.
    pub(crate) fn set_bounds(&mut self, start: usize, len: usize, meta: usize) -> bool {
        let fits = start
            .checked_add(len)
            .is_some_and(|end| end <= self.capacity())
            && meta <= XDP_META_MAX
            && (meta == 0 || start >= XDP_FRAME_RESERVED + meta);
        if fits {
            (self.start, self.len, self.meta) = (start, len, meta);
        }
        fits
    }

    /// Gives the run buffer back (for reuse).
    pub(crate) fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_packet_has_the_kernels_headroom_and_a_pages_tailroom() {
        let p = Packet::new(&[1, 2, 3]);
        assert_eq!(p.frame(), [1, 2, 3]);
        assert_eq!(p.start(), 256);
        assert_eq!(p.capacity(), 4096 - 320);
        assert_eq!(p.tailroom(), 4096 - 320 - 256 - 3);
        assert!(p.meta().is_empty());
        // A frame longer than the page: no tailroom.
        let big = Packet::new(&[0; 5000]);
        assert_eq!((big.start(), big.len(), big.tailroom()), (256, 5000, 0));
        let q = Packet::with_room(&[9; 20], 64, 8);
        assert_eq!(
            (q.start(), q.len(), q.tailroom(), q.capacity()),
            (64, 20, 8, 92)
        );
    }

    #[test]
    fn bounds_outside_the_buffer_are_refused() {
        let mut p = Packet::with_room(&[7; 20], 64, 8);
        assert!(p.set_bounds(50, 30, 8));
        assert_eq!((p.start(), p.len(), p.meta().len()), (50, 30, 8));
        assert!(!p.set_bounds(50, 43, 0), "past the tailroom");
        assert!(!p.set_bounds(44, 10, 8), "metadata in the reserved head");
        assert!(!p.set_bounds(usize::MAX, 2, 0));
        assert!(!p.set_bounds(60, 2, 36), "too much metadata");
        assert_eq!((p.start(), p.len(), p.meta().len()), (50, 30, 8));
    }
}
