//! Socket contexts of cgroup and TCP programs: `struct bpf_sock_addr` (cgroup socket-address
//! hooks: `connect4`, `sendmsg6`, `bind4`, …), `struct bpf_sock` (cgroup socket hooks:
//! `sock_create`, `sock_release`, `post_bind4/6`) and `struct bpf_sock_ops` (`sockops`), with
//! the helpers only socket programs call.
//!
//! Each context is the UAPI struct itself (`linux/bpf.h`), in the same layout for the program
//! and for bpfx: nothing is converted, and the verifier's field table keeps the kernel's
//! per-field rules (which fields exist for the hook, which are writable, which loads may be
//! narrower than the field). Fields the kernel turns into pointers (`sk`, and `sock_ops`'s
//! `skb_data`/`skb_data_end`) are not modelled: no field covers them, so a program reading
//! them is refused ("invalid access to context").
//!
//! ```text
//! bpf_sock_addr (72)          bpf_sock (80)               bpf_sock_ops (216)
//!   0 user_family  ro           0 bound_dev_if  rw¹         0 op            ro
//!   4 user_ip4     rw  ip4²     4 family        ro          4 args[4]       ro (reply rw)
//!   8 user_ip6[4]  rw  ip6²     8 type          ro         20 family …     ro (4-byte reads)
//!  24 user_port    rw          12 protocol      ro         84 bpf_sock_ops_cb_flags ro
//!  28 family       ro          16 mark          rw¹       164 sk_txhash     rw
//!  32 type         ro          20 priority      rw¹       168 bytes_received, 176 bytes_acked
//!  36 protocol     ro          24 src_ip4       ro post_bind4         (8-byte reads)
//!  40 msg_src_ip4  rw sendmsg4 28 src_ip6[4]    ro post_bind6   184 sk, 192 skb_data,
//!  44 msg_src_ip6  rw sendmsg6 44 src_port      ro post_bind    200 skb_data_end: refused
//!  64 sk           ro ptr³     48 dst_port (be16), 52 dst_ip4, 208 skb_len, 212 skb_tcp_flags
//!                              56 dst_ip6, 72 state, 76 rx_queue_mapping: ro
//! ¹ sock_create and sock_release only   ² the hooks of that family only
//! ³ 8-byte reads: a pointer to the hook's socket, a `bpf_sock` (`PTR_TO_SOCKET`)
//! ```

use crate::helpers::Cx;
use crate::sockopt::{SockOptions, TCP_CLOSE};
use crate::{Context, Program, RunError};
use bpfx_exec::{GuestMemory, HelperError};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Size of `struct bpf_sock_addr`.
pub const SOCK_ADDR_SIZE: usize = 72;
/// The offset of `bpf_sock_addr.sk`, the socket pointer.
const SOCK_ADDR_SK: u16 = 64;
/// Size of `struct bpf_sock`.
pub const BPF_SOCK_SIZE: usize = 80;
/// Size of `struct bpf_sock_ops`.
pub const SOCK_OPS_SIZE: usize = 216;

/// `bpf_get_socket_cookie`.
pub const GET_SOCKET_COOKIE: u32 = 46;
/// `bpf_sock_ops_cb_flags_set`.
pub const SOCK_OPS_CB_FLAGS_SET: u32 = 59;
/// `bpf_get_netns_cookie`.
pub const GET_NETNS_COOKIE: u32 = 122;

/// `BPF_SOCK_OPS_ALL_CB_FLAGS`: every callback flag `bpf_sock_ops_cb_flags_set` can set.
pub const SOCK_OPS_ALL_CB_FLAGS: u32 = 0x7f;
/// The cookie of the initial network namespace, what `bpf_get_netns_cookie(NULL)` returns:
/// the kernel numbers namespace cookies from 1 in creation order, and the initial namespace
/// is the first.
pub const INIT_NETNS_COOKIE: u64 = 1;

const EINVAL: u64 = (-22i64) as u64;

/// The hook a cgroup socket-address program (`BPF_PROG_TYPE_CGROUP_SOCK_ADDR`) is attached
/// at: the program's expected attach type, which decides the fields it may access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum SockAddrHook {
    Bind4,
    Bind6,
    Connect4,
    Connect6,
    ConnectUnix,
    SendMsg4,
    SendMsg6,
    SendMsgUnix,
    RecvMsg4,
    RecvMsg6,
    RecvMsgUnix,
    GetPeerName4,
    GetPeerName6,
    GetPeerNameUnix,
    GetSockName4,
    GetSockName6,
    GetSockNameUnix,
}

impl SockAddrHook {
    /// Every hook, in libbpf's order.
    pub const ALL: [SockAddrHook; 17] = [
        SockAddrHook::Bind4,
        SockAddrHook::Bind6,
        SockAddrHook::Connect4,
        SockAddrHook::Connect6,
        SockAddrHook::ConnectUnix,
        SockAddrHook::SendMsg4,
        SockAddrHook::SendMsg6,
        SockAddrHook::SendMsgUnix,
        SockAddrHook::RecvMsg4,
        SockAddrHook::RecvMsg6,
        SockAddrHook::RecvMsgUnix,
        SockAddrHook::GetPeerName4,
        SockAddrHook::GetPeerName6,
        SockAddrHook::GetPeerNameUnix,
        SockAddrHook::GetSockName4,
        SockAddrHook::GetSockName6,
        SockAddrHook::GetSockNameUnix,
    ];

    /// libbpf's section for the hook, after `cgroup/` (`connect4`, `sendmsg_unix`, …).
    pub const fn name(self) -> &'static str {
        match self {
            SockAddrHook::Bind4 => "bind4",
            SockAddrHook::Bind6 => "bind6",
            SockAddrHook::Connect4 => "connect4",
            SockAddrHook::Connect6 => "connect6",
            SockAddrHook::ConnectUnix => "connect_unix",
            SockAddrHook::SendMsg4 => "sendmsg4",
            SockAddrHook::SendMsg6 => "sendmsg6",
            SockAddrHook::SendMsgUnix => "sendmsg_unix",
            SockAddrHook::RecvMsg4 => "recvmsg4",
            SockAddrHook::RecvMsg6 => "recvmsg6",
            SockAddrHook::RecvMsgUnix => "recvmsg_unix",
            SockAddrHook::GetPeerName4 => "getpeername4",
            SockAddrHook::GetPeerName6 => "getpeername6",
            SockAddrHook::GetPeerNameUnix => "getpeername_unix",
            SockAddrHook::GetSockName4 => "getsockname4",
            SockAddrHook::GetSockName6 => "getsockname6",
            SockAddrHook::GetSockNameUnix => "getsockname_unix",
        }
    }

    /// The hook libbpf names `name` (after `cgroup/`).
    pub fn from_name(name: &str) -> Option<SockAddrHook> {
        SockAddrHook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The values a program at the hook may return, as the kernel's verifier requires: 1
    /// only where the call cannot be refused (`recvmsg`, `getpeername`, `getsockname`), 0 to 3
    /// for `bind` (bit 1 lifts the `CAP_NET_BIND_SERVICE` check), 0 or 1 elsewhere.
    pub const fn return_range(self) -> (i64, i64) {
        match self {
            SockAddrHook::RecvMsg4
            | SockAddrHook::RecvMsg6
            | SockAddrHook::RecvMsgUnix
            | SockAddrHook::GetPeerName4
            | SockAddrHook::GetPeerName6
            | SockAddrHook::GetPeerNameUnix
            | SockAddrHook::GetSockName4
            | SockAddrHook::GetSockName6
            | SockAddrHook::GetSockNameUnix => (1, 1),
            SockAddrHook::Bind4 | SockAddrHook::Bind6 => (0, 3),
            _ => (0, 1),
        }
    }

    /// Whether the hook is an IP one (not `*_unix`): the kernel offers `bpf_setsockopt` and
    /// `bpf_getsockopt` there.
    pub fn ip(self) -> bool {
        self.ipv4() || self.ipv6()
    }

    fn ipv4(self) -> bool {
        self.name().ends_with('4')
    }

    fn ipv6(self) -> bool {
        self.name().ends_with('6')
    }
}

/// The hook a cgroup socket program (`BPF_PROG_TYPE_CGROUP_SOCK`) is attached at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockHook {
    /// `BPF_CGROUP_INET_SOCK_CREATE` (`cgroup/sock_create`, `cgroup/sock`).
    Create,
    /// `BPF_CGROUP_INET_SOCK_RELEASE` (`cgroup/sock_release`).
    Release,
    /// `BPF_CGROUP_INET4_POST_BIND` (`cgroup/post_bind4`).
    PostBind4,
    /// `BPF_CGROUP_INET6_POST_BIND` (`cgroup/post_bind6`).
    PostBind6,
}

impl SockHook {
    /// libbpf's section for the hook, after `cgroup/`.
    pub const fn name(self) -> &'static str {
        match self {
            SockHook::Create => "sock_create",
            SockHook::Release => "sock_release",
            SockHook::PostBind4 => "post_bind4",
            SockHook::PostBind6 => "post_bind6",
        }
    }

    /// The hook libbpf names `name` (after `cgroup/`; `sock` is `sock_create`).
    pub fn from_name(name: &str) -> Option<SockHook> {
        Some(match name {
            "sock_create" | "sock" => SockHook::Create,
            "sock_release" => SockHook::Release,
            "post_bind4" => SockHook::PostBind4,
            "post_bind6" => SockHook::PostBind6,
            _ => return None,
        })
    }
}

/// A 4-byte field the program reads whole only.
const fn ro(off: u16) -> ContextField {
    ContextField::new(off, 4, FieldKind::Scalar, off)
}

/// A field the program reads with loads of its size or narrower (aligned).
const fn ro_narrow(off: u16, size: u16) -> ContextField {
    ContextField::new(off, size, FieldKind::Scalar, off).with_narrow(true)
}

/// A 4-byte field read narrow or whole, written whole.
const fn rw_narrow(off: u16) -> ContextField {
    ro_narrow(off, 4).with_writable(true)
}

/// A 16-byte address array at `off`: four 4-byte words read narrow or whole (written whole
/// when `writable`), and the 8-byte-aligned 8-byte halves inside it read and written whole
/// (the kernel's "wide" access). The words come first, so a 4-byte access finds its word.
fn ip6(fields: &mut Vec<ContextField>, off: u16, writable: bool) {
    for w in 0..4 {
        fields.push(ro_narrow(off + 4 * w, 4).with_writable(writable));
    }
    for half in (off..off + 9).filter(|o| o % 8 == 0) {
        fields.push(ContextField::new(half, 8, FieldKind::Scalar, half).with_writable(writable));
    }
}

/// The cgroup socket-address context for `hook`: `struct bpf_sock_addr` with the kernel's
/// rules. `user_family`, `family`, `type` and `protocol` are read whole and never written;
/// `user_port`, and the addresses the hook has (`user_ip4` for the IPv4 hooks, `user_ip6`
/// for the IPv6 ones, `msg_src_ip4`/`msg_src_ip6` for `sendmsg4`/`sendmsg6`), are read
/// narrow or whole and written whole (the IPv6 arrays also 8 bytes at a time, 8-aligned);
/// `sk` is read whole (8 bytes), never written: a full socket pointer that is never null
/// ([`FieldKind::Sock`], the kernel's `PTR_TO_SOCKET`), the socket the hook runs for.
/// The program returns a value in [`SockAddrHook::return_range`] (checked in Strict mode).
pub fn sock_addr_layout(hook: SockAddrHook) -> ContextLayout {
    let mut f = vec![ro(0)];
    if hook.ipv4() {
        f.push(rw_narrow(4));
    }
    if hook.ipv6() {
        ip6(&mut f, 8, true);
    }
    f.extend([rw_narrow(24), ro(28), ro(32), ro(36)]);
    if hook == SockAddrHook::SendMsg4 {
        f.push(rw_narrow(40));
    }
    if hook == SockAddrHook::SendMsg6 {
        ip6(&mut f, 44, true);
    }
    f.push(ContextField::new(
        SOCK_ADDR_SK,
        8,
        FieldKind::Sock,
        SOCK_ADDR_SK,
    ));
    let (lo, hi) = hook.return_range();
    ContextLayout::new(f).with_return_range(lo, hi)
}

/// The cgroup socket context for `hook`: `struct bpf_sock` with the kernel's rules.
/// `bound_dev_if`, `mark` and `priority` exist for `sock_create` and `sock_release` only,
/// read and written whole; `src_ip4` for `post_bind4`, `src_ip6` for `post_bind6`, `src_port`
/// for both; every other field read-only, the addresses, `family`, `type`, `protocol`,
/// `state`, `src_port` and `rx_queue_mapping` narrow or whole, `dst_port` (a 2-byte field
/// before 2 bytes of padding) 1 or 2 bytes inside it, or 4 bytes at its offset. The program
/// returns 0 or 1 (checked in Strict mode).
pub fn sock_layout(hook: SockHook) -> ContextLayout {
    let mut f = Vec::new();
    if matches!(hook, SockHook::Create | SockHook::Release) {
        for off in [0, 16, 20] {
            f.push(ro(off).with_writable(true));
        }
    }
    f.extend([ro_narrow(4, 4), ro_narrow(8, 4), ro_narrow(12, 4)]);
    if hook == SockHook::PostBind4 {
        f.push(ro_narrow(24, 4));
    }
    if hook == SockHook::PostBind6 {
        ip6(&mut f, 28, false);
    }
    if matches!(hook, SockHook::PostBind4 | SockHook::PostBind6) {
        f.push(ro_narrow(44, 4));
    }
    f.extend([ro_narrow(48, 2), ro(48), ro_narrow(52, 4)]);
    ip6(&mut f, 56, false);
    f.extend([ro_narrow(72, 4), ro_narrow(76, 4)]);
    ContextLayout::new(f).with_return_range(0, 1)
}

/// The sock_ops context: `struct bpf_sock_ops` with the kernel's rules. Every 4-byte field is
/// read whole (`skb_tcp_flags` also narrow), `bytes_received` and `bytes_acked` 8 bytes whole;
/// only `reply` (the first word of `args`) and `sk_txhash` are written, whole. The program
/// returns 0 or 1 (checked in Strict mode).
pub fn sock_ops_layout() -> ContextLayout {
    let mut f = vec![ro(0), ro(4).with_writable(true)];
    f.extend(
        (8..168)
            .step_by(4)
            .map(|off: u16| ro(off).with_writable(off == 164)),
    );
    f.extend([
        ContextField::new(168, 8, FieldKind::Scalar, 168),
        ContextField::new(176, 8, FieldKind::Scalar, 176),
        ro(208),
        ro_narrow(212, 4),
    ]);
    ContextLayout::new(f).with_return_range(0, 1)
}

/// What the socket helpers of a run answer, and what they changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SockRun {
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub(crate) cookie: u64,
    /// Its network namespace's cookie (`bpf_get_netns_cookie`).
    pub(crate) netns_cookie: u64,
    /// `sock_ops`: whether the socket is a full socket (`bpf_sock_ops_cb_flags_set` fails on
    /// others), and its callback flags as the run leaves them.
    pub(crate) fullsock: bool,
    pub(crate) cb_flags: u32,
    /// The socket `bpf_setsockopt` and `bpf_getsockopt` act on (its options kept from one
    /// run to the next).
    pub(crate) opt: crate::sockopt::SockOptRun,
}

fn sock_run<'m>(mem: &'m GuestMemory<'_>) -> Result<&'m SockRun, HelperError> {
    Ok(&crate::helpers::run_state_ref(mem)?.sock)
}

/// `get_socket_cookie(ctx)`: the cookie of the socket the context belongs to.
pub(crate) fn get_socket_cookie(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(sock_run(mem)?.cookie)
}

/// `get_netns_cookie(ctx)`: the cookie of the socket's network namespace; with a NULL `ctx`,
/// the initial namespace's ([`INIT_NETNS_COOKIE`]).
pub(crate) fn get_netns_cookie(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(if a[0] == 0 {
        INIT_NETNS_COOKIE
    } else {
        sock_run(mem)?.netns_cookie
    })
}

/// `sock_ops_cb_flags_set(ctx, flags)`: `-EINVAL` unless the socket is a full socket;
/// otherwise the socket's callback flags become `flags & BPF_SOCK_OPS_ALL_CB_FLAGS` (the
/// context's `bpf_sock_ops_cb_flags` reads them from then on) and the bits that could not be
/// set are returned.
pub(crate) fn sock_ops_cb_flags_set(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    // The argument is the context (`ArgKind::Ctx`): the verifier refuses any other pointer,
    // and Checked mode lets through values it cannot tell, which fail here.
    if mem.input.offset_of(a[0], SOCK_OPS_SIZE) != Some(0) {
        return Err(HelperError(
            "sock_ops_cb_flags_set: the first argument is not the context".into(),
        ));
    }
    let st = crate::helpers::run_state(mem)?;
    if !st.sock.fullsock {
        return Ok(EINVAL);
    }
    let flags = a[1] as u32;
    st.sock.cb_flags = flags & SOCK_OPS_ALL_CB_FLAGS;
    let cb_flags = st.sock.cb_flags;
    // The field is host-owned: the program sees the new flags through it for the rest of
    // this program; the host's record (`SockRun::cb_flags`) is what the run hands back.
    mem.write(a[0] + 84, &cb_flags.to_le_bytes())
        .ok_or_else(|| HelperError("sock_ops_cb_flags_set: cannot write the flags".into()))?;
    Ok(u64::from(flags & !SOCK_OPS_ALL_CB_FLAGS))
}

fn put4(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get4(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn put_ip4(b: &mut [u8], off: usize, ip: Ipv4Addr) {
    b[off..off + 4].copy_from_slice(&ip.octets());
}

fn get_ip4(b: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])
}

fn put_ip6(b: &mut [u8], off: usize, ip: Ipv6Addr) {
    b[off..off + 16].copy_from_slice(&ip.octets());
}

fn get_ip6(b: &[u8], off: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[off..off + 16]);
    Ipv6Addr::from(o)
}

/// A port stored as the kernel's `sin_port`: network byte order in the field's first 2 bytes.
fn put_be16(b: &mut [u8], off: usize, port: u16) {
    b[off..off + 2].copy_from_slice(&port.to_be_bytes());
}

fn get_be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// The socket a cgroup or sock_ops program runs for, as its helpers see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockIds {
    /// The socket's cookie (`bpf_get_socket_cookie`).
    pub cookie: u64,
    /// Its network namespace's cookie (`bpf_get_netns_cookie` on the context).
    pub netns_cookie: u64,
}

/// `struct bpf_sock_addr`: the address a socket call (connect, bind, sendmsg, …) is about,
/// which a cgroup socket-address program may rewrite. Ports and addresses are given in their
/// natural form; bpfx stores them in network byte order as the kernel does (`user_port` as
/// `sin_port`, in the field's first 2 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockAddr {
    /// `user_family` (`AF_INET` 2, `AF_INET6` 10).
    pub user_family: u32,
    /// `user_ip4`.
    pub user_ip4: Ipv4Addr,
    /// `user_ip6`.
    pub user_ip6: Ipv6Addr,
    /// `user_port`.
    pub user_port: u16,
    /// `family` (of the socket).
    pub family: u32,
    /// `type` (`SOCK_STREAM` 1, `SOCK_DGRAM` 2).
    pub sock_type: u32,
    /// `protocol` (`IPPROTO_TCP` 6, `IPPROTO_UDP` 17).
    pub protocol: u32,
    /// `msg_src_ip4` (sendmsg4).
    pub msg_src_ip4: Ipv4Addr,
    /// `msg_src_ip6` (sendmsg6).
    pub msg_src_ip6: Ipv6Addr,
}

impl Default for SockAddr {
    fn default() -> SockAddr {
        SockAddr {
            user_family: 0,
            user_ip4: Ipv4Addr::UNSPECIFIED,
            user_ip6: Ipv6Addr::UNSPECIFIED,
            user_port: 0,
            family: 0,
            sock_type: 0,
            protocol: 0,
            msg_src_ip4: Ipv4Addr::UNSPECIFIED,
            msg_src_ip6: Ipv6Addr::UNSPECIFIED,
        }
    }
}

impl SockAddr {
    /// The struct's bytes ([`SOCK_ADDR_SIZE`]; `sk` 0).
    pub fn to_bytes(&self) -> [u8; SOCK_ADDR_SIZE] {
        let mut b = [0u8; SOCK_ADDR_SIZE];
        put4(&mut b, 0, self.user_family);
        put_ip4(&mut b, 4, self.user_ip4);
        put_ip6(&mut b, 8, self.user_ip6);
        put_be16(&mut b, 24, self.user_port);
        put4(&mut b, 28, self.family);
        put4(&mut b, 32, self.sock_type);
        put4(&mut b, 36, self.protocol);
        put_ip4(&mut b, 40, self.msg_src_ip4);
        put_ip6(&mut b, 44, self.msg_src_ip6);
        b
    }

    /// The struct from its bytes (at least [`SOCK_ADDR_SIZE`]; `None` if shorter).
    pub fn from_bytes(b: &[u8]) -> Option<SockAddr> {
        let b = b.get(..SOCK_ADDR_SIZE)?;
        Some(SockAddr {
            user_family: get4(b, 0),
            user_ip4: get_ip4(b, 4),
            user_ip6: get_ip6(b, 8),
            user_port: get_be16(b, 24),
            family: get4(b, 28),
            sock_type: get4(b, 32),
            protocol: get4(b, 36),
            msg_src_ip4: get_ip4(b, 40),
            msg_src_ip6: get_ip6(b, 44),
        })
    }
}

/// `struct bpf_sock`: the socket a cgroup socket program sees. Ports in their natural form:
/// `src_port` is a host-order `u32` field, `dst_port` a network-order 2-byte one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct BpfSock {
    pub bound_dev_if: u32,
    pub family: u32,
    /// `type`.
    pub sock_type: u32,
    pub protocol: u32,
    pub mark: u32,
    pub priority: u32,
    pub src_ip4: Ipv4Addr,
    pub src_ip6: Ipv6Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub dst_ip4: Ipv4Addr,
    pub dst_ip6: Ipv6Addr,
    pub state: u32,
    pub rx_queue_mapping: i32,
}

impl Default for BpfSock {
    fn default() -> BpfSock {
        BpfSock {
            bound_dev_if: 0,
            family: 0,
            sock_type: 0,
            protocol: 0,
            mark: 0,
            priority: 0,
            src_ip4: Ipv4Addr::UNSPECIFIED,
            src_ip6: Ipv6Addr::UNSPECIFIED,
            src_port: 0,
            dst_port: 0,
            dst_ip4: Ipv4Addr::UNSPECIFIED,
            dst_ip6: Ipv6Addr::UNSPECIFIED,
            state: 0,
            rx_queue_mapping: -1,
        }
    }
}

impl BpfSock {
    /// The struct's bytes ([`BPF_SOCK_SIZE`]).
    pub fn to_bytes(&self) -> [u8; BPF_SOCK_SIZE] {
        let mut b = [0u8; BPF_SOCK_SIZE];
        put4(&mut b, 0, self.bound_dev_if);
        put4(&mut b, 4, self.family);
        put4(&mut b, 8, self.sock_type);
        put4(&mut b, 12, self.protocol);
        put4(&mut b, 16, self.mark);
        put4(&mut b, 20, self.priority);
        put_ip4(&mut b, 24, self.src_ip4);
        put_ip6(&mut b, 28, self.src_ip6);
        put4(&mut b, 44, u32::from(self.src_port));
        put_be16(&mut b, 48, self.dst_port);
        put_ip4(&mut b, 52, self.dst_ip4);
        put_ip6(&mut b, 56, self.dst_ip6);
        put4(&mut b, 72, self.state);
        put4(&mut b, 76, self.rx_queue_mapping as u32);
        b
    }

    /// The struct from its bytes (at least [`BPF_SOCK_SIZE`]; `None` if shorter).
    pub fn from_bytes(b: &[u8]) -> Option<BpfSock> {
        let b = b.get(..BPF_SOCK_SIZE)?;
        Some(BpfSock {
            bound_dev_if: get4(b, 0),
            family: get4(b, 4),
            sock_type: get4(b, 8),
            protocol: get4(b, 12),
            mark: get4(b, 16),
            priority: get4(b, 20),
            src_ip4: get_ip4(b, 24),
            src_ip6: get_ip6(b, 28),
            src_port: get4(b, 44) as u16,
            dst_port: get_be16(b, 48),
            dst_ip4: get_ip4(b, 52),
            dst_ip6: get_ip6(b, 56),
            state: get4(b, 72),
            rx_queue_mapping: get4(b, 76) as i32,
        })
    }
}

/// `struct bpf_sock_ops`: a TCP event (`op`, `BPF_SOCK_OPS_*`) with its arguments and the
/// connection's state, as a sock_ops program sees them. The TCP counters from `snd_cwnd`
/// (offset 76) to `sk_txhash` (164) are [`SockOps::tcp`], in the struct's order;
/// `remote_port` is given in host order and stored as the kernel does (network order in the
/// field's upper 2 bytes, so that `bpf_ntohl` gives the port), `local_port` in host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockOps {
    /// `op`.
    pub op: u32,
    /// `args` (its first word is `reply`, the program's answer).
    pub args: [u32; 4],
    /// `family`.
    pub family: u32,
    /// `remote_ip4`.
    pub remote_ip4: Ipv4Addr,
    /// `local_ip4`.
    pub local_ip4: Ipv4Addr,
    /// `remote_ip6`.
    pub remote_ip6: Ipv6Addr,
    /// `local_ip6`.
    pub local_ip6: Ipv6Addr,
    /// `remote_port`.
    pub remote_port: u16,
    /// `local_port`.
    pub local_port: u16,
    /// `is_fullsock` (`bpf_sock_ops_cb_flags_set` fails with `-EINVAL` unless set).
    pub is_fullsock: bool,
    /// `snd_cwnd`, `srtt_us`, `bpf_sock_ops_cb_flags`, `state`, `rtt_min`, `snd_ssthresh`,
    /// `rcv_nxt`, `snd_nxt`, `snd_una`, `mss_cache`, `ecn_flags`, `rate_delivered`,
    /// `rate_interval_us`, `packets_out`, `retrans_out`, `total_retrans`, `segs_in`,
    /// `data_segs_in`, `segs_out`, `data_segs_out`, `lost_out`, `sacked_out`, `sk_txhash`.
    pub tcp: [u32; 23],
    /// `bytes_received`.
    pub bytes_received: u64,
    /// `bytes_acked`.
    pub bytes_acked: u64,
    /// `skb_len`.
    pub skb_len: u32,
    /// `skb_tcp_flags`.
    pub skb_tcp_flags: u32,
}

impl Default for SockOps {
    fn default() -> SockOps {
        SockOps {
            op: 0,
            args: [0; 4],
            family: 0,
            remote_ip4: Ipv4Addr::UNSPECIFIED,
            local_ip4: Ipv4Addr::UNSPECIFIED,
            remote_ip6: Ipv6Addr::UNSPECIFIED,
            local_ip6: Ipv6Addr::UNSPECIFIED,
            remote_port: 0,
            local_port: 0,
            is_fullsock: false,
            tcp: [0; 23],
            bytes_received: 0,
            bytes_acked: 0,
            skb_len: 0,
            skb_tcp_flags: 0,
        }
    }
}

/// Index of `bpf_sock_ops_cb_flags` in [`SockOps::tcp`].
pub const SOCK_OPS_CB_FLAGS: usize = 2;
/// Index of `snd_cwnd` in [`SockOps::tcp`].
pub const SOCK_OPS_SND_CWND: usize = 0;
/// Index of `snd_ssthresh` in [`SockOps::tcp`].
pub const SOCK_OPS_SND_SSTHRESH: usize = 5;
/// Index of `sk_txhash` in [`SockOps::tcp`].
pub const SOCK_OPS_TXHASH: usize = 22;

impl SockOps {
    /// `reply` (the first word of `args`).
    pub fn reply(&self) -> u32 {
        self.args[0]
    }

    /// `bpf_sock_ops_cb_flags`.
    pub fn cb_flags(&self) -> u32 {
        self.tcp[SOCK_OPS_CB_FLAGS]
    }

    /// The struct's bytes ([`SOCK_OPS_SIZE`]; `sk`, `skb_data`, `skb_data_end` 0).
    pub fn to_bytes(&self) -> [u8; SOCK_OPS_SIZE] {
        let mut b = [0u8; SOCK_OPS_SIZE];
        put4(&mut b, 0, self.op);
        for (i, a) in self.args.iter().enumerate() {
            put4(&mut b, 4 + 4 * i, *a);
        }
        put4(&mut b, 20, self.family);
        put_ip4(&mut b, 24, self.remote_ip4);
        put_ip4(&mut b, 28, self.local_ip4);
        put_ip6(&mut b, 32, self.remote_ip6);
        put_ip6(&mut b, 48, self.local_ip6);
        b[64..68].copy_from_slice(&u32::from(self.remote_port).to_be_bytes());
        put4(&mut b, 68, u32::from(self.local_port));
        put4(&mut b, 72, u32::from(self.is_fullsock));
        for (i, v) in self.tcp.iter().enumerate() {
            put4(&mut b, 76 + 4 * i, *v);
        }
        b[168..176].copy_from_slice(&self.bytes_received.to_le_bytes());
        b[176..184].copy_from_slice(&self.bytes_acked.to_le_bytes());
        put4(&mut b, 208, self.skb_len);
        put4(&mut b, 212, self.skb_tcp_flags);
        b
    }

    /// The struct from its bytes (at least [`SOCK_OPS_SIZE`]; `None` if shorter).
    pub fn from_bytes(b: &[u8]) -> Option<SockOps> {
        let b = b.get(..SOCK_OPS_SIZE)?;
        let u64_at = |off: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[off..off + 8]);
            u64::from_le_bytes(w)
        };
        Some(SockOps {
            op: get4(b, 0),
            args: std::array::from_fn(|i| get4(b, 4 + 4 * i)),
            family: get4(b, 20),
            remote_ip4: get_ip4(b, 24),
            local_ip4: get_ip4(b, 28),
            remote_ip6: get_ip6(b, 32),
            local_ip6: get_ip6(b, 48),
            remote_port: u32::from_be_bytes([b[64], b[65], b[66], b[67]]) as u16,
            local_port: get4(b, 68) as u16,
            is_fullsock: get4(b, 72) != 0,
            tcp: std::array::from_fn(|i| get4(b, 76 + 4 * i)),
            bytes_received: u64_at(168),
            bytes_acked: u64_at(176),
            skb_len: get4(b, 208),
            skb_tcp_flags: get4(b, 212),
        })
    }
}

impl Program {
    /// Runs a cgroup socket-address program ([`Context::SockAddr`]) on the address of a
    /// socket call; returns r0 (1 lets the call proceed, 0 refuses it with `-EPERM`; `bind`
    /// hooks may also set bit 1, `BPF_RET_BIND_NO_CAP_NET_BIND_SERVICE`). The program's writes
    /// to `user_ip4`, `user_ip6`, `user_port` and `msg_src_ip4/6` come back in `addr`.
    ///
    /// `sk` points to the socket the call is made on, read-only: a `struct bpf_sock` of
    /// `addr`'s `family`, `type` and `protocol`, neither bound nor connected (addresses and
    /// ports 0, `state` `TCP_CLOSE`, 7), as a new socket is at `bind`, `connect` and a first
    /// `sendmsg`.
    pub fn run_sock_addr(&mut self, addr: &mut SockAddr, ids: &SockIds) -> Result<u64, RunError> {
        let Context::SockAddr(hook) = self.context() else {
            return Err(self.wrong_sock(Context::SockAddr(SockAddrHook::Connect4)));
        };
        let mut bytes = addr.to_bytes();
        let sock = BpfSock {
            family: addr.family,
            sock_type: addr.sock_type,
            protocol: addr.protocol,
            state: TCP_CLOSE,
            ..BpfSock::default()
        };
        let sk = self.place_sock(&sock);
        let at = usize::from(SOCK_ADDR_SK);
        bytes[at..at + 8].copy_from_slice(&sk.to_le_bytes());
        let opts = self.state().sock.opt.opts.clone();
        let opt = crate::sockopt::SockOptRun::for_sock_addr(hook, &bytes, opts);
        let (res, _) = self.run_sock_struct(&mut bytes, *ids, false, opt, |_| ());
        if let Some(a) = SockAddr::from_bytes(&bytes) {
            *addr = a;
        }
        res
    }

    /// Runs a cgroup socket program ([`Context::Sock`]) on a socket; returns r0 (1 allows
    /// the operation, 0 refuses it with `-EPERM`). On `sock_create` and `sock_release` the
    /// program's writes to `bound_dev_if`, `mark` and `priority` come back in `sock`.
    pub fn run_sock(&mut self, sock: &mut BpfSock, ids: &SockIds) -> Result<u64, RunError> {
        let Context::Sock(_) = self.context() else {
            return Err(self.wrong_sock(Context::Sock(SockHook::Create)));
        };
        let mut bytes = sock.to_bytes();
        let opt = self.state().sock.opt.clone();
        let (res, _) = self.run_sock_struct(&mut bytes, *ids, false, opt, |_| ());
        if let Some(s) = BpfSock::from_bytes(&bytes) {
            *sock = s;
        }
        res
    }

    /// Runs a sock_ops program ([`Context::SockOps`]) on a TCP event; returns r0. The
    /// program's `reply` and `sk_txhash` come back in `ops`, and the callback flags
    /// `bpf_sock_ops_cb_flags_set` left in `bpf_sock_ops_cb_flags`.
    pub fn run_sock_ops(&mut self, ops: &mut SockOps, ids: &SockIds) -> Result<u64, RunError> {
        self.expect(Context::SockOps)?;
        let mut bytes = ops.to_bytes();
        let opt = crate::sockopt::SockOptRun::for_sock_ops(ops, self.state().sock.opt.opts.clone());
        let (res, (flags, cwnd, clamp)) =
            self.run_sock_struct(&mut bytes, *ids, ops.is_fullsock, opt, |st| {
                let o = &st.sock.opt.opts;
                (st.sock.cb_flags, o.snd_cwnd, o.snd_cwnd_clamp)
            });
        if let Some(o) = SockOps::from_bytes(&bytes) {
            *ops = o;
            ops.tcp[SOCK_OPS_CB_FLAGS] = flags;
            // `TCP_BPF_IW` and `TCP_BPF_SNDCWND_CLAMP` change the socket's window.
            if let Some(c) = cwnd {
                ops.tcp[SOCK_OPS_SND_CWND] = c;
            }
            if let Some(c) = clamp {
                ops.tcp[SOCK_OPS_SND_SSTHRESH] = c;
            }
        }
        res
    }

    /// The options of the socket the next runs of a sock_ops or cgroup socket-address
    /// program act on (`bpf_getsockopt` reads them, `bpf_setsockopt` changes them): until set,
    /// [`SockOptions::default`]. A run's changes stay for the next run (the same socket's
    /// next event) unless this is called again.
    pub fn set_sock_options(&mut self, opts: SockOptions) {
        self.state().sock.opt.opts = opts;
    }

    /// The socket's options as the last run left them (with `bpf_setsockopt`'s changes), or
    /// as [`Program::set_sock_options`] gave them.
    pub fn sock_options(&mut self) -> &SockOptions {
        &self.state().sock.opt.opts
    }

    fn wrong_sock(&self, got: Context) -> RunError {
        RunError::WrongContext {
            program: self.name().to_string(),
            expected: self.context().name(),
            got: got.name(),
        }
    }

    /// One run on the socket struct `bytes` (which comes back with the program's writes; the
    /// host-owned bytes as given).
    fn run_sock_struct<T>(
        &mut self,
        bytes: &mut [u8],
        ids: SockIds,
        fullsock: bool,
        opt: crate::sockopt::SockOptRun,
        after: impl FnOnce(&mut crate::helpers::RunState) -> T,
    ) -> (Result<u64, RunError>, T) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(bytes);
        let cb_flags = if bytes.len() == SOCK_OPS_SIZE {
            get4(bytes, 84)
        } else {
            0
        };
        let out = self.exec_with(
            &mut buf,
            |st| {
                st.sock = SockRun {
                    cookie: ids.cookie,
                    netns_cookie: ids.netns_cookie,
                    fullsock,
                    cb_flags,
                    opt,
                };
            },
            after,
        );
        let n = bytes.len().min(buf.len());
        bytes[..n].copy_from_slice(&buf[..n]);
        self.buf = buf;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_round_trip_through_the_uapi_bytes() {
        let a = SockAddr {
            user_family: 2,
            user_ip4: Ipv4Addr::new(10, 0, 0, 1),
            user_port: 8080,
            msg_src_ip6: "fe80::1".parse().unwrap(),
            ..SockAddr::default()
        };
        let b = a.to_bytes();
        assert_eq!(b[4..8], [10, 0, 0, 1]);
        assert_eq!(b[24..28], [0x1f, 0x90, 0, 0]);
        assert_eq!(SockAddr::from_bytes(&b), Some(a));
        assert_eq!(SockAddr::from_bytes(&b[..71]), None);
        let s = BpfSock {
            dst_port: 443,
            src_port: 53,
            ..BpfSock::default()
        };
        let b = s.to_bytes();
        assert_eq!((b[44], b[48], b[49]), (53, 1, 0xbb));
        assert_eq!(BpfSock::from_bytes(&b), Some(s));
        let mut o = SockOps {
            remote_port: 443,
            local_port: 5000,
            bytes_acked: 1 << 40,
            ..SockOps::default()
        };
        o.tcp[SOCK_OPS_TXHASH] = 7;
        let b = o.to_bytes();
        assert_eq!(
            u32::from_be(u32::from_le_bytes(b[64..68].try_into().unwrap())),
            443
        );
        assert_eq!(b[164], 7);
        assert_eq!(SockOps::from_bytes(&b), Some(o));
    }

    #[test]
    fn hook_names_are_libbpfs() {
        for h in SockAddrHook::ALL {
            assert_eq!(SockAddrHook::from_name(h.name()), Some(h));
        }
        assert!(SockAddrHook::Connect4.ipv4() && !SockAddrHook::Connect4.ipv6());
        assert!(!SockAddrHook::ConnectUnix.ipv4() && !SockAddrHook::ConnectUnix.ipv6());
        assert_eq!(SockHook::from_name("sock"), Some(SockHook::Create));
    }

    #[test]
    fn address_arrays_take_words_and_aligned_halves() {
        let l = sock_addr_layout(SockAddrHook::SendMsg6);
        let spans = |l: &ContextLayout| -> Vec<(u16, u16, bool)> {
            l.fields
                .iter()
                .map(|f| (f.off, f.size, f.writable))
                .collect()
        };
        let s = spans(&l);
        // user_ip6 at 8: words, then halves at 8 and 16; msg_src_ip6 at 44: one half, at 48.
        assert!(s.contains(&(8, 8, true)) && s.contains(&(16, 8, true)));
        assert!(s.contains(&(48, 8, true)) && !s.contains(&(44, 8, true)));
        assert!(!s.iter().any(|&(off, _, _)| off == 4));
        // sk at 64: one read-only 8-byte pointer field, on every hook.
        assert!(s.contains(&(64, 8, false)) && s.iter().filter(|f| f.0 == 64).count() == 1);
        let l = sock_addr_layout(SockAddrHook::Connect4);
        assert!(spans(&l).contains(&(4, 4, true)) && spans(&l).contains(&(64, 8, false)));
        assert!(
            !spans(&l)
                .iter()
                .any(|&(off, _, _)| (8..24).contains(&off) || (40..64).contains(&off) || off > 64)
        );
    }
}
