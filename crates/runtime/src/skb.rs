//! The socket-buffer context of TC (`sched_cls`, `sched_act`) programs and socket filters:
//! the kernel's `struct __sk_buff` as the program sees it, bpfx's real struct, what the
//! embedder supplies ([`SkbMeta`]) and what the run gives back ([`TcAction`],
//! [`SocketVerdict`]).
//!
//! bpfx's struct keeps every scalar field of `__sk_buff` (`/usr/include/linux/bpf.h`) at its
//! UAPI offset and width, and adds the three packet pointers as 64-bit fields after it; the
//! UAPI's 32-bit `data`, `data_end` and `data_meta` slots are never read (the verifier
//! converts their loads into loads of the real pointers). The packet follows the struct.
//!
//! ```text
//! __sk_buff (the program's view)           bpfx's struct (what r1 points to)
//!   0 .. 192  u32 len, pkt_type, mark, …     0 .. 192  the same scalars at the same offsets
//!  76  u32 data                            192  u64 data      (address of the packet)
//!  80  u32 data_end                        200  u64 data_end  (data + packet length)
//! 140  u32 data_meta                       208  u64 data_meta (= data: no metadata)
//!                                          216  packet bytes
//! ```
//!
//! Which fields each program type may read and write is the kernel's (`net/core/filter.c`,
//! `tc_cls_act_is_valid_access` and `sk_filter_is_valid_access`): see [`tc_layout`],
//! [`socket_layout`] and `docs/runtime.md`, "The `__sk_buff` context".

use bpfx_verifier::{ContextField, ContextLayout, FieldKind};
use std::fmt;

/// Size of bpfx's socket-buffer struct; the packet starts right after it.
pub const SKB_CTX_SIZE: usize = 216;

/// Size of the kernel's `struct __sk_buff` (the program's view).
pub const SK_BUFF_SIZE: u16 = 192;

/// Offsets of bpfx's packet pointers (`data`, `data_end`, `data_meta`).
pub(crate) const SKB_DATA: u16 = 192;
pub(crate) const SKB_DATA_END: u16 = 200;
const SKB_DATA_META: u16 = 208;

/// `__sk_buff` field offsets (UAPI), also their offsets in bpfx's struct.
mod off {
    pub(super) const LEN: u16 = 0;
    pub(super) const PKT_TYPE: u16 = 4;
    pub(super) const MARK: u16 = 8;
    pub(super) const QUEUE_MAPPING: u16 = 12;
    pub(super) const PROTOCOL: u16 = 16;
    pub(super) const VLAN_PRESENT: u16 = 20;
    pub(super) const VLAN_TCI: u16 = 24;
    pub(super) const VLAN_PROTO: u16 = 28;
    pub(super) const PRIORITY: u16 = 32;
    pub(super) const INGRESS_IFINDEX: u16 = 36;
    pub(super) const IFINDEX: u16 = 40;
    pub(super) const TC_INDEX: u16 = 44;
    pub(super) const CB: u16 = 48;
    pub(super) const HASH: u16 = 68;
    pub(super) const TC_CLASSID: u16 = 72;
    pub(super) const DATA: u16 = 76;
    pub(super) const DATA_END: u16 = 80;
    pub(super) const NAPI_ID: u16 = 84;
    pub(super) const FAMILY: u16 = 88;
    pub(super) const REMOTE_IP4: u16 = 92;
    pub(super) const LOCAL_IP4: u16 = 96;
    pub(super) const REMOTE_IP6: u16 = 100;
    pub(super) const LOCAL_IP6: u16 = 116;
    pub(super) const REMOTE_PORT: u16 = 132;
    pub(super) const LOCAL_PORT: u16 = 136;
    pub(super) const DATA_META: u16 = 140;
    pub(super) const TSTAMP: u16 = 152;
    pub(super) const WIRE_LEN: u16 = 160;
    pub(super) const GSO_SEGS: u16 = 164;
    pub(super) const GSO_SIZE: u16 = 176;
    pub(super) const TSTAMP_TYPE: u16 = 180;
    pub(super) const HWTSTAMP: u16 = 184;
}

/// Size of `__sk_buff.cb` in bytes (five `u32`).
const CB_SIZE: u16 = 20;

/// `__sk_buff.sk`: the packet's socket, a `sock_common` pointer or NULL, read whole (8 bytes)
/// at its UAPI offset, which bpfx's struct keeps for the socket's address
/// (`sock_table.rs`).
fn sk_field() -> ContextField {
    let at = crate::sock_table::SKB_SK;
    ContextField::new(at, 8, FieldKind::SockCommonOrNull, at)
}

/// A u32 field read whole or by a narrow load, at the same offset in both layouts.
const fn u32_field(at: u16, writable: bool) -> ContextField {
    ContextField::new(at, 4, FieldKind::Scalar, at)
        .with_narrow(true)
        .with_writable(writable)
}

/// The fields both program types read, with the TC-only write permission where `tc`.
fn common_fields(tc: bool) -> Vec<ContextField> {
    use off::*;
    vec![
        u32_field(LEN, false),
        u32_field(PKT_TYPE, false),
        u32_field(MARK, tc),
        u32_field(QUEUE_MAPPING, tc),
        u32_field(PROTOCOL, false),
        u32_field(VLAN_PRESENT, false),
        u32_field(VLAN_TCI, false),
        u32_field(VLAN_PROTO, false),
        u32_field(PRIORITY, tc),
        u32_field(INGRESS_IFINDEX, false),
        u32_field(IFINDEX, false),
        u32_field(TC_INDEX, tc),
        ContextField::new(CB, CB_SIZE, FieldKind::Scratch, CB).with_writable(true),
        u32_field(HASH, false),
        u32_field(NAPI_ID, false),
        u32_field(GSO_SEGS, false),
        u32_field(GSO_SIZE, false),
    ]
}

/// The `__sk_buff` of a TC program (`sched_cls`, `sched_act`), as the kernel allows it:
/// every field of [`socket_layout`], plus `tc_classid` and `wire_len`, direct packet access
/// (`data`, `data_end`, `data_meta`: whole 4-byte loads giving packet pointers), `tstamp`
/// (8 bytes, read and write), `hwtstamp` (8 bytes, read) and `tstamp_type` (1 byte, read).
/// Writable: `mark`, `priority`, `tc_index`, `tc_classid`, `queue_mapping`, `cb[0..5]`,
/// `tstamp`. Scalar u32 fields take narrow loads (1, 2 or 4 bytes aligned to their size);
/// stores are whole. `cb` takes aligned loads and stores of 1, 2, 4 and 8 bytes. `sk` (8
/// bytes, read) gives the packet's socket, a `sock_common` pointer that may be NULL. The
/// socket fields (`family` … `local_port`) and `flow_keys` are refused. Legacy packet loads
/// (`ldabs`/`ldind`) read the packet.
pub fn tc_layout() -> ContextLayout {
    use off::*;
    let mut fields = common_fields(true);
    fields.extend([
        u32_field(TC_CLASSID, true),
        u32_field(WIRE_LEN, false),
        ContextField::new(DATA, 4, FieldKind::PacketStart, SKB_DATA),
        ContextField::new(DATA_END, 4, FieldKind::PacketEnd, SKB_DATA_END),
        ContextField::new(DATA_META, 4, FieldKind::PacketMeta, SKB_DATA_META),
        ContextField::new(TSTAMP, 8, FieldKind::Scalar, TSTAMP).with_writable(true),
        ContextField::new(HWTSTAMP, 8, FieldKind::Scalar, HWTSTAMP),
        ContextField::new(TSTAMP_TYPE, 1, FieldKind::Scalar, TSTAMP_TYPE),
        sk_field(),
    ]);
    ContextLayout::new(fields).with_packet_loads(true)
}

/// The `__sk_buff` of a socket filter, as the kernel allows it: `len`, `pkt_type`, `mark`,
/// `queue_mapping`, `protocol`, the three `vlan_*` fields, `priority`, `ingress_ifindex`,
/// `ifindex`, `tc_index`, `hash`, `napi_id`, `gso_segs` and `gso_size` read-only (whole or by
/// narrow loads), `cb[0..5]` read and written (aligned 1-, 2-, 4- and 8-byte accesses), `sk`
/// (8 bytes, read: the packet's socket, a `sock_common` pointer or NULL). No direct packet
/// access, no `tc_classid`, `wire_len`, time stamps or the socket's address fields: the
/// packet is read with legacy packet loads (`ldabs`/`ldind`).
pub fn socket_layout() -> ContextLayout {
    let mut fields = common_fields(false);
    fields.push(sk_field());
    ContextLayout::new(fields).with_packet_loads(true)
}

/// The `__sk_buff` of a cgroup skb program (`cgroup_skb/ingress`, `cgroup_skb/egress`,
/// `cgroup/skb`) at `hook`, as the kernel allows it (`cg_skb_is_valid_access`): every field of
/// [`socket_layout`], read-only but for `mark`, `priority` and `cb[0..5]`; `tstamp` (8 bytes,
/// read and write) and `hwtstamp` (8 bytes, read); the socket's fields `family`,
/// `remote_ip4`, `local_ip4`, `remote_ip6[0..4]`, `local_ip6[0..4]`, `remote_port` and
/// `local_port` (read-only, whole or narrow loads); and direct packet access through `data`
/// and `data_end`, **read-only**: a store to the packet, or a helper writing into it, is
/// refused in both modes ("cannot write into packet"). `sk` (8 bytes, read) gives the
/// packet's socket, a `sock_common` pointer that may be NULL. `tc_classid`, `data_meta`,
/// `wire_len`, `tstamp_type` and `flow_keys` are refused, and so are legacy packet loads. The program
/// returns 0 or 1 (ingress), 0 to 3 (egress: bit 1 asks for congestion notification), which
/// Strict mode checks.
pub fn cgroup_skb_layout(hook: crate::CgroupSkbHook) -> ContextLayout {
    use off::*;
    let mut fields: Vec<ContextField> = common_fields(false)
        .into_iter()
        .map(|f| f.with_writable(f.writable || matches!(f.off, MARK | PRIORITY)))
        .collect();
    fields.extend([
        ContextField::new(DATA, 4, FieldKind::PacketStart, SKB_DATA),
        ContextField::new(DATA_END, 4, FieldKind::PacketEnd, SKB_DATA_END),
        u32_field(FAMILY, false),
        u32_field(REMOTE_IP4, false),
        u32_field(LOCAL_IP4, false),
        u32_field(REMOTE_PORT, false),
        u32_field(LOCAL_PORT, false),
        ContextField::new(TSTAMP, 8, FieldKind::Scalar, TSTAMP).with_writable(true),
        ContextField::new(HWTSTAMP, 8, FieldKind::Scalar, HWTSTAMP),
        sk_field(),
    ]);
    for i in 0..4 {
        fields.push(u32_field(REMOTE_IP6 + 4 * i, false));
        fields.push(u32_field(LOCAL_IP6 + 4 * i, false));
    }
    let (lo, hi) = hook.return_range();
    ContextLayout::new(fields)
        .with_packet_read_only(true)
        .with_return_range(lo, hi)
}

/// The `__sk_buff` of an sk_skb program (`sk_skb`, `sk_skb/stream_parser`,
/// `sk_skb/stream_verdict`), as the kernel allows it (`sk_skb_is_valid_access`): the fields of
/// [`socket_layout`] but `mark`, read-only but for `priority` and `tc_index` (`cb[0..5]` is
/// read, not written); `napi_id`, `gso_segs`, `gso_size`; the socket's fields `family`,
/// `remote_ip4`, `local_ip4`, `remote_ip6[0..4]`, `local_ip6[0..4]`, `remote_port` and
/// `local_port` (read-only, whole or narrow loads); and direct packet access through `data`
/// and `data_end`, read and write. `mark`, `tc_classid`, `data_meta`, `tstamp`, `wire_len`,
/// `hwtstamp`, `tstamp_type` and `flow_keys` are refused, and so are legacy packet loads.
/// `sk` (8 bytes, read) is the packet's socket, a `sock_common` pointer or NULL. Any return value
/// is accepted: a verdict reads `SK_PASS` (1) as pass, anything else as drop, and a stream
/// parser returns a message length.
pub fn sk_skb_layout() -> ContextLayout {
    use off::*;
    let mut fields: Vec<ContextField> = common_fields(false)
        .into_iter()
        .filter(|f| f.off != MARK)
        .map(|f| {
            let w = matches!(f.off, PRIORITY | TC_INDEX);
            f.with_writable(w)
        })
        .collect();
    fields.extend([
        ContextField::new(DATA, 4, FieldKind::PacketStart, SKB_DATA),
        ContextField::new(DATA_END, 4, FieldKind::PacketEnd, SKB_DATA_END),
        u32_field(FAMILY, false),
        u32_field(REMOTE_IP4, false),
        u32_field(LOCAL_IP4, false),
        u32_field(REMOTE_PORT, false),
        u32_field(LOCAL_PORT, false),
        sk_field(),
    ]);
    for i in 0..4 {
        fields.push(u32_field(REMOTE_IP6 + 4 * i, false));
        fields.push(u32_field(LOCAL_IP6 + 4 * i, false));
    }
    ContextLayout::new(fields)
}

/// The `__sk_buff` of a lightweight tunnel program (`lwt.rs`, [`crate::lwt_layout`]): the
/// fields of [`socket_layout`], `mark` and `priority` writable besides `cb[0..5]`, `data` and
/// `data_end` (read-only packet where `packet_read_only`), `sk`; no legacy packet loads.
pub(crate) fn lwt_layout(packet_read_only: bool) -> ContextLayout {
    use off::*;
    let mut fields: Vec<ContextField> = common_fields(false)
        .into_iter()
        .map(|f| f.with_writable(f.writable || matches!(f.off, MARK | PRIORITY)))
        .collect();
    fields.extend([
        ContextField::new(DATA, 4, FieldKind::PacketStart, SKB_DATA),
        ContextField::new(DATA_END, 4, FieldKind::PacketEnd, SKB_DATA_END),
        sk_field(),
    ]);
    ContextLayout::new(fields).with_packet_read_only(packet_read_only)
}

/// Copies what an sk_skb program may have written in the struct at the start of `buf`
/// (`priority`, `tc_index`, the kernel keeping its low 16 bits) back into `meta`.
pub(crate) fn read_back_sk_skb(buf: &[u8], meta: &mut SkbMeta) {
    use off::*;
    meta.priority = get32(buf, PRIORITY);
    meta.tc_index = get32(buf, TC_INDEX) as u16;
}

/// Writes the socket fields of `__sk_buff` (`family` … `local_port`) into bpfx's struct at the
/// start of `buf` from the packet's socket `sock`, as the kernel reads them from `skb->sk`:
/// the addresses in network byte order, `remote_port` the destination port in network byte
/// order in the field's upper 2 bytes, `local_port` the source port as a host-order number.
pub(crate) fn fill_skb_sock(buf: &mut [u8], sock: &crate::BpfSock) {
    use off::*;
    let put = |buf: &mut [u8], at: u16, bytes: &[u8]| {
        let at = usize::from(at);
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put32(buf, FAMILY, sock.family);
    put(buf, REMOTE_IP4, &sock.dst_ip4.octets());
    put(buf, LOCAL_IP4, &sock.src_ip4.octets());
    put(buf, REMOTE_IP6, &sock.dst_ip6.octets());
    put(buf, LOCAL_IP6, &sock.src_ip6.octets());
    let [hi, lo] = sock.dst_port.to_be_bytes();
    put(buf, REMOTE_PORT, &[0, 0, hi, lo]);
    put32(buf, LOCAL_PORT, u32::from(sock.src_port));
}

/// Copies what a cgroup skb program may have written in the struct at the start of `buf`
/// (`mark`, `priority`, `cb`, `tstamp`) back into `meta`.
pub(crate) fn read_back_cgroup(buf: &[u8], meta: &mut SkbMeta) {
    use off::*;
    meta.mark = get32(buf, MARK);
    meta.priority = get32(buf, PRIORITY);
    for (i, c) in meta.cb.iter_mut().enumerate() {
        *c = get32(buf, CB + 4 * i as u16);
    }
    meta.tstamp = get64(buf, TSTAMP);
}

/// What the embedder tells a TC program or socket filter about the packet (the kernel's
/// `sk_buff` fields behind `__sk_buff`). `len` is always the packet's length and `data`,
/// `data_end` and `data_meta` its bounds; everything else comes from here.
///
/// [`crate::Program::run_tc`] writes back the fields a TC program may write (`mark`,
/// `priority`, `tc_index`, `tc_classid`, `queue_mapping`, `cb`, `tstamp`), with the widths
/// the kernel stores them in: `tc_index` and `tc_classid` keep their low 16 bits, and a
/// `queue_mapping` of `0xffff` or more is ignored (the kernel's `NO_QUEUE_MAPPING` rule);
/// and the host-owned fields helpers change: `hash`, `protocol` and the `vlan_*` fields
/// (`skb_vlan_push`/`_pop`, `skb_change_proto`, `skb_adjust_room`), `pkt_type`
/// (`skb_change_type`) and `tunnel` (`skb_set_tunnel_key`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SkbMeta {
    /// `pkt_type` (`PACKET_HOST` 0, `PACKET_BROADCAST` 1, …); after a TC run, as
    /// `skb_change_type` left it.
    pub pkt_type: u32,
    /// `mark`.
    pub mark: u32,
    /// `queue_mapping`.
    pub queue_mapping: u16,
    /// The EtherType (for example `0x0800` for IPv4), as a number: the program reads it in
    /// network byte order, as the kernel's `skb->protocol`.
    pub protocol: u16,
    /// `vlan_present` (0 or 1).
    pub vlan_present: u32,
    /// `vlan_tci`.
    pub vlan_tci: u16,
    /// The VLAN protocol (`0x8100`…), as a number: read in network byte order.
    pub vlan_proto: u16,
    /// `priority`.
    pub priority: u32,
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `ifindex`.
    pub ifindex: u32,
    /// `tc_index`.
    pub tc_index: u16,
    /// `cb[0..5]` (a socket filter always starts with them zeroed, as the kernel clears them
    /// for it).
    pub cb: [u32; 5],
    /// `hash`.
    pub hash: u32,
    /// `tc_classid`.
    pub tc_classid: u16,
    /// `napi_id`.
    pub napi_id: u32,
    /// `tstamp` (nanoseconds).
    pub tstamp: u64,
    /// `wire_len`.
    pub wire_len: u32,
    /// `gso_segs`.
    pub gso_segs: u32,
    /// `gso_size`.
    pub gso_size: u32,
    /// `tstamp_type`.
    pub tstamp_type: u8,
    /// `hwtstamp`.
    pub hwtstamp: u64,
    /// The tunnel key the packet came with (TC only, what `skb_get_tunnel_key` reads; `None`
    /// for a packet not received through a collect-metadata tunnel); after a TC run, the key
    /// `skb_set_tunnel_key` gave it.
    pub tunnel: Option<crate::tunnel::TunnelKey>,
}

fn put32(buf: &mut [u8], at: u16, v: u32) {
    let at = usize::from(at);
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(buf: &mut [u8], at: u16, v: u64) {
    let at = usize::from(at);
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get32(buf: &[u8], at: u16) -> u32 {
    let at = usize::from(at);
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn get64(buf: &[u8], at: u16) -> u64 {
    u64::from(get32(buf, at)) | u64::from(get32(buf, at + 4)) << 32
}

/// A 16-bit value in network byte order, as the kernel's `__be16` fields read.
fn be16(v: u16) -> u32 {
    u32::from(u16::from_ne_bytes(v.to_be_bytes()))
}

/// Fills bpfx's socket-buffer struct at the start of `buf` (`[struct | packet]`, at least
/// [`SKB_CTX_SIZE`] bytes) from `meta`; `socket` clears `cb`, as the kernel does for socket
/// filters.
pub(crate) fn fill_skb_ctx(buf: &mut [u8], meta: &SkbMeta, socket: bool) {
    use off::*;
    let base = buf.as_ptr() as u64;
    let data = base + SKB_CTX_SIZE as u64;
    let end = base + buf.len() as u64;
    let len = u32::try_from(buf.len() - SKB_CTX_SIZE).unwrap_or(u32::MAX);
    buf[..SKB_CTX_SIZE].fill(0);
    put32(buf, LEN, len);
    put32(buf, PKT_TYPE, meta.pkt_type);
    put32(buf, MARK, meta.mark);
    put32(buf, QUEUE_MAPPING, u32::from(meta.queue_mapping));
    put32(buf, PROTOCOL, be16(meta.protocol));
    put32(buf, VLAN_PRESENT, meta.vlan_present);
    put32(buf, VLAN_TCI, u32::from(meta.vlan_tci));
    put32(buf, VLAN_PROTO, be16(meta.vlan_proto));
    put32(buf, PRIORITY, meta.priority);
    put32(buf, INGRESS_IFINDEX, meta.ingress_ifindex);
    put32(buf, IFINDEX, meta.ifindex);
    put32(buf, TC_INDEX, u32::from(meta.tc_index));
    if !socket {
        for (i, c) in meta.cb.iter().enumerate() {
            put32(buf, CB + 4 * i as u16, *c);
        }
    }
    put32(buf, HASH, meta.hash);
    put32(buf, TC_CLASSID, u32::from(meta.tc_classid));
    put32(buf, NAPI_ID, meta.napi_id);
    put64(buf, TSTAMP, meta.tstamp);
    put32(buf, WIRE_LEN, meta.wire_len);
    put32(buf, GSO_SEGS, meta.gso_segs);
    put32(buf, GSO_SIZE, meta.gso_size);
    buf[usize::from(TSTAMP_TYPE)] = meta.tstamp_type;
    put64(buf, HWTSTAMP, meta.hwtstamp);
    put64(buf, SKB_DATA, data);
    put64(buf, SKB_DATA_END, end);
    put64(buf, SKB_DATA_META, data);
}

/// Copies what a TC program may have written in the struct at the start of `buf` back into
/// `meta`, with the kernel's storage widths (see [`SkbMeta`]), and what the helpers changed
/// (`hash`, `protocol`, the `vlan_*` fields, `pkt_type`).
pub(crate) fn read_back_tc(buf: &[u8], meta: &mut SkbMeta) {
    use off::*;
    meta.mark = get32(buf, MARK);
    meta.priority = get32(buf, PRIORITY);
    meta.tc_index = get32(buf, TC_INDEX) as u16;
    meta.tc_classid = get32(buf, TC_CLASSID) as u16;
    if let Ok(q @ 0..=0xfffe) = u16::try_from(get32(buf, QUEUE_MAPPING)) {
        meta.queue_mapping = q;
    }
    for (i, c) in meta.cb.iter_mut().enumerate() {
        *c = get32(buf, CB + 4 * i as u16);
    }
    meta.tstamp = get64(buf, TSTAMP);
    // Host-owned, but the VLAN and protocol helpers change them (through the run's record,
    // which restoring the context writes back here).
    let from_be16 = |v: u32| u16::from_be_bytes((v as u16).to_ne_bytes());
    meta.protocol = from_be16(get32(buf, PROTOCOL));
    meta.vlan_present = get32(buf, VLAN_PRESENT);
    meta.vlan_tci = get32(buf, VLAN_TCI) as u16;
    meta.vlan_proto = from_be16(get32(buf, VLAN_PROTO));
    // Not the program's to store, but `set_hash`, `get_hash_recalc` and
    // `skb_store_bytes(BPF_F_INVALIDATE_HASH)` change it.
    meta.hash = get32(buf, HASH);
    // And `skb_change_type` this one.
    meta.pkt_type = get32(buf, PKT_TYPE);
}

/// A TC verdict: the program's return value, as `int` (`TC_ACT_*` of
/// `/usr/include/linux/pkt_cls.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcAction {
    /// `TC_ACT_UNSPEC` (-1): the qdisc's default action.
    Unspec,
    /// `TC_ACT_OK` (0).
    Ok,
    /// `TC_ACT_RECLASSIFY` (1).
    Reclassify,
    /// `TC_ACT_SHOT` (2): drop.
    Shot,
    /// `TC_ACT_PIPE` (3).
    Pipe,
    /// `TC_ACT_STOLEN` (4).
    Stolen,
    /// `TC_ACT_QUEUED` (5).
    Queued,
    /// `TC_ACT_REPEAT` (6).
    Repeat,
    /// `TC_ACT_REDIRECT` (7).
    Redirect,
    /// Any other value.
    Unknown(i32),
}

impl TcAction {
    /// The action a return value means (its low 32 bits, as the kernel's `int`).
    pub fn from_code(r0: u64) -> TcAction {
        match r0 as u32 as i32 {
            -1 => TcAction::Unspec,
            0 => TcAction::Ok,
            1 => TcAction::Reclassify,
            2 => TcAction::Shot,
            3 => TcAction::Pipe,
            4 => TcAction::Stolen,
            5 => TcAction::Queued,
            6 => TcAction::Repeat,
            7 => TcAction::Redirect,
            v => TcAction::Unknown(v),
        }
    }

    /// The value, as `int`.
    pub fn code(self) -> i32 {
        match self {
            TcAction::Unspec => -1,
            TcAction::Ok => 0,
            TcAction::Reclassify => 1,
            TcAction::Shot => 2,
            TcAction::Pipe => 3,
            TcAction::Stolen => 4,
            TcAction::Queued => 5,
            TcAction::Repeat => 6,
            TcAction::Redirect => 7,
            TcAction::Unknown(v) => v,
        }
    }

    /// The kernel's name (`TC_ACT_OK`, …; `TC_ACT_UNKNOWN` for other values).
    pub fn name(self) -> &'static str {
        match self {
            TcAction::Unspec => "TC_ACT_UNSPEC",
            TcAction::Ok => "TC_ACT_OK",
            TcAction::Reclassify => "TC_ACT_RECLASSIFY",
            TcAction::Shot => "TC_ACT_SHOT",
            TcAction::Pipe => "TC_ACT_PIPE",
            TcAction::Stolen => "TC_ACT_STOLEN",
            TcAction::Queued => "TC_ACT_QUEUED",
            TcAction::Repeat => "TC_ACT_REPEAT",
            TcAction::Redirect => "TC_ACT_REDIRECT",
            TcAction::Unknown(_) => "TC_ACT_UNKNOWN",
        }
    }
}

impl fmt::Display for TcAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcAction::Unknown(v) => write!(f, "TC_ACT_UNKNOWN({v})"),
            a => f.write_str(a.name()),
        }
    }
}

/// What a socket filter decided: the kernel keeps the first `kept` bytes of the packet (its
/// return value as `unsigned int`, capped at the packet's length) and drops the packet when
/// that is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketVerdict {
    /// The return value, as the kernel's `unsigned int`.
    pub code: u32,
    /// Bytes kept: `min(code, packet length)`.
    pub kept: usize,
}

impl SocketVerdict {
    /// The verdict of return value `r0` on a packet of `len` bytes.
    pub fn new(r0: u64, len: usize) -> SocketVerdict {
        let code = r0 as u32;
        SocketVerdict {
            code,
            kept: usize::try_from(code).map_or(len, |c| c.min(len)),
        }
    }

    /// Whether the packet is dropped (nothing kept).
    pub fn dropped(&self) -> bool {
        self.kept == 0
    }
}

impl fmt::Display for SocketVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dropped() {
            write!(f, "DROP")
        } else {
            write!(f, "KEEP {} bytes", self.kept)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_keeps_uapi_offsets_and_puts_pointers_after_it() {
        let mut buf = vec![0u8; SKB_CTX_SIZE + 3];
        let meta = SkbMeta {
            mark: 0x1122_3344,
            protocol: 0x0800,
            tc_index: 7,
            cb: [1, 2, 3, 4, 5],
            tstamp: 0x0102_0304_0506_0708,
            ..SkbMeta::default()
        };
        fill_skb_ctx(&mut buf, &meta, false);
        assert_eq!(get32(&buf, off::LEN), 3);
        assert_eq!(get32(&buf, off::MARK), 0x1122_3344);
        // Network byte order: the bytes 08 00.
        assert_eq!(buf[16..20], [0x08, 0x00, 0, 0]);
        assert_eq!(get32(&buf, off::CB + 16), 5);
        assert_eq!(get64(&buf, off::TSTAMP), 0x0102_0304_0506_0708);
        let base = buf.as_ptr() as u64;
        assert_eq!(get64(&buf, SKB_DATA), base + 216);
        assert_eq!(get64(&buf, SKB_DATA_END), base + 219);
        fill_skb_ctx(&mut buf, &meta, true);
        assert_eq!(get32(&buf, off::CB + 16), 0);
    }

    #[test]
    fn write_back_keeps_the_kernel_widths() {
        let mut buf = vec![0u8; SKB_CTX_SIZE];
        let mut meta = SkbMeta {
            queue_mapping: 3,
            ..SkbMeta::default()
        };
        put32(&mut buf, off::TC_INDEX, 0x1_0005);
        put32(&mut buf, off::TC_CLASSID, 0x2_0006);
        put32(&mut buf, off::QUEUE_MAPPING, 0xffff);
        read_back_tc(&buf, &mut meta);
        assert_eq!((meta.tc_index, meta.tc_classid), (5, 6));
        assert_eq!(meta.queue_mapping, 3);
        put32(&mut buf, off::QUEUE_MAPPING, 9);
        read_back_tc(&buf, &mut meta);
        assert_eq!(meta.queue_mapping, 9);
    }

    #[test]
    fn verdicts() {
        assert_eq!(TcAction::from_code(u64::MAX), TcAction::Unspec);
        assert_eq!(TcAction::from_code(0xffff_ffff), TcAction::Unspec);
        assert_eq!(TcAction::from_code(2).name(), "TC_ACT_SHOT");
        assert_eq!(TcAction::from_code(9).to_string(), "TC_ACT_UNKNOWN(9)");
        assert_eq!(SocketVerdict::new(u64::MAX, 60).kept, 60);
        assert_eq!(SocketVerdict::new(0x1_0000_0000, 60).kept, 0);
        assert_eq!(SocketVerdict::new(14, 60).kept, 14);
    }
}
