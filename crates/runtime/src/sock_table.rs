//! Socket pointers: the sockets the embedder gives a [`crate::Vm`] ([`SocketTable`],
//! [`crate::Vm::sockets`]), the lookups that find them by a packet's tuple (`sk_lookup_tcp`,
//! `sk_lookup_udp`, `skc_lookup_tcp`), what a program does with one (`sk_release`,
//! `sk_fullsock`, `tcp_sock`, `get_listener_sock`, `sk_assign`), and the packet's own socket
//! (`__sk_buff.sk`, [`crate::Program::set_packet_socket`]).
//!
//! Each socket lives in a read-only block of guest memory, its `struct bpf_sock` (80 bytes,
//! [`BpfSock`]) followed by its `struct bpf_tcp_sock` (112 bytes, [`BpfTcpSock`]), in the UAPI
//! layout: a `sock` or `sock_common` pointer is the block's address, a `tcp_sock` pointer the
//! address 80 bytes in. The programs of TC, XDP and cgroup skb contexts are lent every
//! socket's block, so both engines read the fields the verifier allows (`docs/verifier.md`,
//! "Socket pointers") as any other memory.
//!
//! The kernel counts references to sockets; bpfx's sockets live as long as the `Vm`'s table,
//! so a release only checks that the pointer is one of the table's sockets (the verifier has
//! made sure, in both modes, that every path releases each lookup's result exactly once).

use crate::Program;
use crate::helpers::{Cx, run_state};
use crate::sock::{BPF_SOCK_SIZE, BpfSock, INIT_NETNS_COOKIE};
use bpfx_exec::SharedMem;
use bpfx_exec::{GuestMemory, HelperError};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// `bpf_sk_lookup_tcp`'s id.
pub const SK_LOOKUP_TCP: u32 = 84;
/// `bpf_sk_lookup_udp`'s id.
pub const SK_LOOKUP_UDP: u32 = 85;
/// `bpf_sk_release`'s id.
pub const SK_RELEASE: u32 = 86;
/// `bpf_sk_fullsock`'s id.
pub const SK_FULLSOCK: u32 = 95;
/// `bpf_tcp_sock`'s id.
pub const TCP_SOCK: u32 = 96;
/// `bpf_get_listener_sock`'s id.
pub const GET_LISTENER_SOCK: u32 = 98;
/// `bpf_skc_lookup_tcp`'s id.
pub const SKC_LOOKUP_TCP: u32 = 99;
/// `bpf_sk_assign`'s id.
pub const SK_ASSIGN: u32 = 124;

/// Size of `struct bpf_tcp_sock`.
pub const BPF_TCP_SOCK_SIZE: usize = 112;
/// Size of a socket's block: its `bpf_sock`, then its `bpf_tcp_sock`.
const BLOCK_SIZE: usize = BPF_SOCK_SIZE + BPF_TCP_SOCK_SIZE;

/// `sizeof(bpf_sock_tuple.ipv4)` and `.ipv6`: the only tuple sizes a lookup takes.
pub const TUPLE_IPV4_SIZE: u32 = 12;
/// See [`TUPLE_IPV4_SIZE`].
pub const TUPLE_IPV6_SIZE: u32 = 36;

/// `BPF_F_CURRENT_NETNS`: a lookup in the namespace of the program's context.
pub const BPF_F_CURRENT_NETNS: i64 = -1;

/// `AF_INET`, `AF_INET6`.
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
/// `IPPROTO_TCP`, `IPPROTO_UDP`.
pub const IPPROTO_TCP: u32 = 6;
/// See [`IPPROTO_TCP`].
pub const IPPROTO_UDP: u32 = 17;

/// TCP states (`bpf_sock.state`, the UAPI's `BPF_TCP_*`).
pub const TCP_ESTABLISHED: u32 = 1;
/// See [`TCP_ESTABLISHED`].
pub const TCP_TIME_WAIT: u32 = 6;
/// See [`TCP_ESTABLISHED`].
pub const TCP_LISTEN: u32 = 10;
/// A request socket (a SYN received, the handshake not done: `BPF_TCP_NEW_SYN_RECV`).
pub const TCP_NEW_SYN_RECV: u32 = 12;

const EINVAL: i64 = 22;
const EOPNOTSUPP: i64 = 95;
const ENETUNREACH: i64 = 101;

/// `struct bpf_tcp_sock`: a TCP socket's counters, as `bpf_tcp_sock` exposes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct BpfTcpSock {
    pub snd_cwnd: u32,
    pub srtt_us: u32,
    pub rtt_min: u32,
    pub snd_ssthresh: u32,
    pub rcv_nxt: u32,
    pub snd_nxt: u32,
    pub snd_una: u32,
    pub mss_cache: u32,
    pub ecn_flags: u32,
    pub rate_delivered: u32,
    pub rate_interval_us: u32,
    pub packets_out: u32,
    pub retrans_out: u32,
    pub total_retrans: u32,
    pub segs_in: u32,
    pub data_segs_in: u32,
    pub segs_out: u32,
    pub data_segs_out: u32,
    pub lost_out: u32,
    pub sacked_out: u32,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    pub dsack_dups: u32,
    pub delivered: u32,
    pub delivered_ce: u32,
    pub icsk_retransmits: u32,
}

impl BpfTcpSock {
    /// The struct's bytes ([`BPF_TCP_SOCK_SIZE`]).
    pub fn to_bytes(&self) -> [u8; BPF_TCP_SOCK_SIZE] {
        let mut b = [0u8; BPF_TCP_SOCK_SIZE];
        let words = [
            self.snd_cwnd,
            self.srtt_us,
            self.rtt_min,
            self.snd_ssthresh,
            self.rcv_nxt,
            self.snd_nxt,
            self.snd_una,
            self.mss_cache,
            self.ecn_flags,
            self.rate_delivered,
            self.rate_interval_us,
            self.packets_out,
            self.retrans_out,
            self.total_retrans,
            self.segs_in,
            self.data_segs_in,
            self.segs_out,
            self.data_segs_out,
            self.lost_out,
            self.sacked_out,
        ];
        for (i, w) in words.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        b[80..88].copy_from_slice(&self.bytes_received.to_le_bytes());
        b[88..96].copy_from_slice(&self.bytes_acked.to_le_bytes());
        let tail = [
            self.dsack_dups,
            self.delivered,
            self.delivered_ce,
            self.icsk_retransmits,
        ];
        for (i, w) in tail.iter().enumerate() {
            b[96 + 4 * i..100 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// One socket of a [`SocketTable`]: its `struct bpf_sock` (`src_*` is the local end,
/// `dst_*` the remote one, as the kernel fills them; `state` one of the `TCP_*` states, which
/// UDP sockets use too: a connected one is [`TCP_ESTABLISHED`]), its TCP counters, its network
/// namespace (by cookie), its cookie, and, for a request socket ([`TCP_NEW_SYN_RECV`]), the
/// listener it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    /// What `struct bpf_sock` shows.
    pub sock: BpfSock,
    /// What `struct bpf_tcp_sock` shows (TCP sockets).
    pub tcp: BpfTcpSock,
    /// The cookie of its network namespace (default: [`INIT_NETNS_COOKIE`]).
    pub netns: u64,
    /// Its cookie.
    pub cookie: u64,
    /// The listener a request socket belongs to (the kernel's `sk_to_full_sk`).
    pub listener: Option<SocketId>,
}

impl Socket {
    /// A TCP socket of `family` bound to `local`, in state `state` (for [`TCP_LISTEN`], the
    /// remote end is unspecified), in the initial namespace.
    pub fn tcp(
        local: (std::net::IpAddr, u16),
        remote: (std::net::IpAddr, u16),
        state: u32,
    ) -> Socket {
        Socket::new(IPPROTO_TCP, 1, local, remote, state)
    }

    /// A UDP socket bound to `local`: connected to `remote` ([`TCP_ESTABLISHED`]) or not
    /// (`remote` unspecified, state 7, `TCP_CLOSE`, as the kernel reports an unconnected UDP
    /// socket).
    pub fn udp(local: (std::net::IpAddr, u16), remote: (std::net::IpAddr, u16)) -> Socket {
        let connected = !remote.0.is_unspecified() || remote.1 != 0;
        let state = if connected { TCP_ESTABLISHED } else { 7 };
        Socket::new(IPPROTO_UDP, 2, local, remote, state)
    }

    fn new(
        protocol: u32,
        sock_type: u32,
        local: (std::net::IpAddr, u16),
        remote: (std::net::IpAddr, u16),
        state: u32,
    ) -> Socket {
        use std::net::IpAddr;
        let mut sock = BpfSock {
            protocol,
            sock_type,
            state,
            src_port: local.1,
            dst_port: remote.1,
            ..BpfSock::default()
        };
        sock.family = match local.0 {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        };
        match local.0 {
            IpAddr::V4(a) => sock.src_ip4 = a,
            IpAddr::V6(a) => sock.src_ip6 = a,
        }
        match remote.0 {
            IpAddr::V4(a) => sock.dst_ip4 = a,
            IpAddr::V6(a) => sock.dst_ip6 = a,
        }
        Socket {
            sock,
            tcp: BpfTcpSock::default(),
            netns: INIT_NETNS_COOKIE,
            cookie: 0,
            listener: None,
        }
    }

    /// Whether it is a full socket (neither a time-wait nor a request socket: the kernel's
    /// `sk_fullsock`).
    pub fn is_full(&self) -> bool {
        !matches!(self.sock.state, TCP_TIME_WAIT | TCP_NEW_SYN_RECV)
    }
}

/// A socket's place in its [`SocketTable`] (the order of [`SocketTable::add`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketId(pub usize);

/// The sockets socket lookups find, and the network namespaces a lookup may name.
///
/// A lookup (`bpf_sk_lookup_tcp`, …) with a negative 32-bit `netns` searches the namespace
/// of the program's context, [`SocketTable::current_netns`]; with `netns` in `0..=i32::MAX`,
/// the namespace that id names as seen from there ([`SocketTable::netns_id`]), or nothing
/// when no namespace has that id; larger values find nothing (reserved).
#[derive(Clone, Debug)]
pub struct SocketTable {
    sockets: Vec<(Socket, Arc<SharedMem>)>,
    current: u64,
    ids: Vec<(u32, u64)>,
}

impl Default for SocketTable {
    fn default() -> SocketTable {
        SocketTable::new()
    }
}

impl SocketTable {
    /// An empty table whose programs run in the initial namespace ([`INIT_NETNS_COOKIE`]).
    pub fn new() -> SocketTable {
        SocketTable {
            sockets: Vec::new(),
            current: INIT_NETNS_COOKIE,
            ids: Vec::new(),
        }
    }

    /// Adds `socket`, giving its id.
    pub fn add(&mut self, socket: Socket) -> SocketId {
        let mut bytes = [0u8; BLOCK_SIZE];
        bytes[..BPF_SOCK_SIZE].copy_from_slice(&socket.sock.to_bytes());
        bytes[BPF_SOCK_SIZE..].copy_from_slice(&socket.tcp.to_bytes());
        self.sockets
            .push((socket, SharedMem::from_bytes(&bytes, false)));
        SocketId(self.sockets.len() - 1)
    }

    /// The namespace of the programs' contexts, by cookie.
    pub fn with_current_netns(mut self, netns: u64) -> SocketTable {
        self.current = netns;
        self
    }

    /// The namespace whose cookie is `netns` gets the id `id` as seen from
    /// [`SocketTable::current_netns`] (the kernel's `peernet2id`).
    pub fn netns_id(mut self, id: u32, netns: u64) -> SocketTable {
        self.ids.retain(|&(i, _)| i != id);
        self.ids.push((id, netns));
        self
    }

    /// The namespace of the programs' contexts.
    pub fn current_netns(&self) -> u64 {
        self.current
    }

    /// The socket `id`.
    pub fn get(&self, id: SocketId) -> Option<&Socket> {
        self.sockets.get(id.0).map(|(s, _)| s)
    }

    /// The guest address of socket `id`'s `struct bpf_sock`.
    pub fn address(&self, id: SocketId) -> Option<u64> {
        self.sockets.get(id.0).map(|(_, b)| b.addr())
    }

    /// The blocks lent to programs.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Arc<SharedMem>> {
        self.sockets.iter().map(|(_, b)| b)
    }

    /// The socket whose `bpf_sock` (or, with `tcp`, whose `bpf_tcp_sock`) is at `addr`.
    fn at(&self, addr: u64) -> Option<SocketId> {
        self.sockets
            .iter()
            .position(|(_, b)| addr == b.addr() || addr == b.addr() + BPF_SOCK_SIZE as u64)
            .map(SocketId)
    }

    /// The kernel's `sk_to_full_sk`: a request socket's listener, any other socket itself.
    fn to_full(&self, id: SocketId) -> SocketId {
        match self.get(id) {
            Some(s) if s.sock.state == TCP_NEW_SYN_RECV => s.listener.unwrap_or(id),
            _ => id,
        }
    }

    /// The socket of `protocol` in namespace `netns` a packet of `tuple` reaches: the one
    /// connected to its source on its destination (any state but listening), else the one
    /// listening (TCP) or bound (UDP, unconnected) on its destination port, at its
    /// destination address or the wildcard one (the first added wins a tie).
    fn find(&self, netns: u64, protocol: u32, t: &Tuple) -> Option<SocketId> {
        let family = if t.v6 { AF_INET6 } else { AF_INET };
        let local = |s: &BpfSock| {
            if t.v6 {
                s.src_ip6 == Ipv6Addr::from(t.daddr)
            } else {
                s.src_ip4 == Ipv4Addr::from(<[u8; 4]>::try_from(&t.daddr[..4]).unwrap_or_default())
            }
        };
        let any = |s: &BpfSock| {
            if t.v6 {
                s.src_ip6.is_unspecified()
            } else {
                s.src_ip4.is_unspecified()
            }
        };
        let remote = |s: &BpfSock| {
            if t.v6 {
                s.dst_ip6 == Ipv6Addr::from(t.saddr)
            } else {
                s.dst_ip4 == Ipv4Addr::from(<[u8; 4]>::try_from(&t.saddr[..4]).unwrap_or_default())
            }
        };
        let ours = |s: &Socket| {
            s.netns == netns
                && s.sock.protocol == protocol
                && s.sock.family == family
                && s.sock.src_port == t.dport
        };
        let connected = self.sockets.iter().position(|(s, _)| {
            ours(s)
                && s.sock.state != TCP_LISTEN
                && s.sock.dst_port == t.sport
                && local(&s.sock)
                && remote(&s.sock)
        });
        let waiting = |exact: bool| {
            self.sockets.iter().position(|(s, _)| {
                let open = if protocol == IPPROTO_TCP {
                    s.sock.state == TCP_LISTEN
                } else {
                    s.sock.dst_port == 0 && s.sock.state != TCP_ESTABLISHED
                };
                ours(s) && open && if exact { local(&s.sock) } else { any(&s.sock) }
            })
        };
        connected
            .or_else(|| waiting(true))
            .or_else(|| waiting(false))
            .map(SocketId)
    }
}

/// A `struct bpf_sock_tuple` as a lookup reads it: addresses and ports in network order.
struct Tuple {
    v6: bool,
    saddr: [u8; 16],
    daddr: [u8; 16],
    sport: u16,
    dport: u16,
}

impl Tuple {
    fn parse(b: &[u8]) -> Option<Tuple> {
        let mut t = Tuple {
            v6: false,
            saddr: [0; 16],
            daddr: [0; 16],
            sport: 0,
            dport: 0,
        };
        let port = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        match b.len() as u32 {
            TUPLE_IPV4_SIZE => {
                t.saddr[..4].copy_from_slice(&b[0..4]);
                t.daddr[..4].copy_from_slice(&b[4..8]);
                t.sport = port(8);
                t.dport = port(10);
            }
            TUPLE_IPV6_SIZE => {
                t.v6 = true;
                t.saddr.copy_from_slice(&b[0..16]);
                t.daddr.copy_from_slice(&b[16..32]);
                t.sport = port(32);
                t.dport = port(34);
            }
            _ => return None,
        }
        Some(t)
    }
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// The table of the running program's `Vm` (an empty one when it has none).
fn table(cx: &Cx) -> &SocketTable {
    static EMPTY: std::sync::OnceLock<SocketTable> = std::sync::OnceLock::new();
    cx.hooks
        .sockets
        .as_deref()
        .unwrap_or_else(|| EMPTY.get_or_init(SocketTable::new))
}

/// What the socket helpers keep of a run: the packet's socket and whether the packet is at
/// TC ingress (the embedder's, kept from run to run), and what `sk_assign` chose this run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SockPtrRun {
    pub(crate) packet: Option<SocketId>,
    pub(crate) ingress: bool,
    pub(crate) assigned: Option<SocketId>,
    /// An sk_lookup run's lookup and selection (`sk_lookup.rs`).
    pub(crate) lookup: crate::sk_lookup::LookupRun,
}

/// The lookups: `(ctx, tuple, tuple_size, netns, flags)`. NULL for a tuple size other than
/// the two UAPI ones, any flag, a `netns` beyond the 32-bit ids, an id that names no
/// namespace, or no socket; `full`: a request socket gives its listener and a time-wait
/// socket nothing (`sk_lookup_*`), otherwise any socket (`skc_lookup_tcp`).
fn lookup(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    protocol: u32,
    full: bool,
) -> Result<u64, HelperError> {
    let (tuple, size, netns, flags) = (a[1], a[2] as u32, a[3], a[4]);
    let t = table(cx);
    if flags != 0 || (size != TUPLE_IPV4_SIZE && size != TUPLE_IPV6_SIZE) {
        return Ok(0);
    }
    let ns = if (netns as u32 as i32) < 0 {
        t.current
    } else if netns <= i32::MAX as u64 {
        match t.ids.iter().find(|&&(id, _)| u64::from(id) == netns) {
            Some(&(_, ns)) => ns,
            None => return Ok(0),
        }
    } else {
        return Ok(0);
    };
    let bytes = mem.read(tuple, size as usize).ok_or_else(|| {
        err(format!(
            "socket lookup: the tuple at {tuple:#x} ({size} bytes) is not readable"
        ))
    })?;
    let Some(tuple) = Tuple::parse(&bytes) else {
        return Ok(0);
    };
    let Some(mut id) = t.find(ns, protocol, &tuple) else {
        return Ok(0);
    };
    if full {
        id = t.to_full(id);
        if !t.get(id).is_some_and(Socket::is_full) {
            return Ok(0);
        }
    }
    Ok(t.address(id).unwrap_or(0))
}

pub(crate) fn sk_lookup_tcp(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    lookup(cx, mem, a, IPPROTO_TCP, true)
}

pub(crate) fn sk_lookup_udp(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    lookup(cx, mem, a, IPPROTO_UDP, true)
}

pub(crate) fn skc_lookup_tcp(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    lookup(cx, mem, a, IPPROTO_TCP, false)
}

/// The socket a helper's socket argument points to: one of the table's (the verifier only
/// lets socket pointers through; Checked mode keeps spilled ones across stores it cannot
/// place, so the helper checks).
fn arg(cx: &Cx, name: &str, addr: u64) -> Result<SocketId, HelperError> {
    table(cx)
        .at(addr)
        .ok_or_else(|| err(format!("{name}: r1 ({addr:#x}) is not a socket")))
}

/// The full socket at `addr` (r2 of helper `name`), `None` for a time-wait or request socket
/// (the kernel's `sk_fullsock` test of the socket-storage helpers).
pub(crate) fn full_socket_at(
    cx: &Cx,
    addr: u64,
    name: &str,
) -> Result<Option<SocketId>, HelperError> {
    let id = table(cx)
        .at(addr)
        .ok_or_else(|| err(format!("{name}: r2 ({addr:#x}) is not a socket")))?;
    Ok(table(cx).get(id).filter(|s| s.is_full()).map(|_| id))
}

/// `sk_release(sk)`: 0.
pub(crate) fn sk_release(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    arg(cx, "sk_release", a[0]).map(|_| 0)
}

/// `sk_fullsock(sk)`: the socket itself when it is a full socket, else NULL.
pub(crate) fn sk_fullsock(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let id = arg(cx, "sk_fullsock", a[0])?;
    let t = table(cx);
    Ok(match t.get(id) {
        Some(s) if s.is_full() => t.address(id).unwrap_or(0),
        _ => 0,
    })
}

/// `tcp_sock(sk)`: the `bpf_tcp_sock` of the full socket of `sk` (a request socket's
/// listener), when it is a TCP socket, else NULL.
pub(crate) fn tcp_sock(cx: &Cx, _: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let t = table(cx);
    let id = t.to_full(arg(cx, "tcp_sock", a[0])?);
    Ok(match t.get(id) {
        Some(s) if s.is_full() && s.sock.protocol == IPPROTO_TCP => {
            t.address(id).map_or(0, |x| x + BPF_SOCK_SIZE as u64)
        }
        _ => 0,
    })
}

/// `get_listener_sock(sk)`: the full socket of `sk` when it is listening, else NULL.
pub(crate) fn get_listener_sock(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let t = table(cx);
    let id = t.to_full(arg(cx, "get_listener_sock", a[0])?);
    Ok(match t.get(id) {
        Some(s) if s.sock.state == TCP_LISTEN => t.address(id).unwrap_or(0),
        _ => 0,
    })
}

/// `sk_assign(skb, sk, flags)` (TC): `-EINVAL` for any flag, `-EOPNOTSUPP` off TC ingress
/// ([`Program::set_tc_ingress`]), `-ENETUNREACH` for a socket of another namespace than the
/// packet's; otherwise the packet is assigned to `sk` (it becomes the packet's socket, and
/// [`crate::TcOutcome::assigned`]) and 0.
pub(crate) fn sk_assign(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    if cx.context == crate::Context::SkLookup {
        // The lookup's own helper: r2 may be NULL (clearing the selection).
        let sk = match a[1] {
            0 => None,
            addr => Some(arg(cx, "sk_assign", addr)?),
        };
        let st = run_state(mem)?;
        let r = crate::sk_lookup::sk_lookup_assign(table(cx), st, sk, a[2]);
        let run = st.sockptr.lookup;
        let sk = run.selected_addr.to_le_bytes();
        if r == 0 && mem.write(run.ctx, &sk).is_none() {
            return Err(err("sk_assign: the context is not writable"));
        }
        return Ok(r as u64);
    }
    let id = arg(cx, "sk_assign", a[1])?;
    let t = table(cx);
    let st = run_state(mem)?;
    let r = if a[2] != 0 {
        -EINVAL
    } else if !st.sockptr.ingress {
        -EOPNOTSUPP
    } else if t.get(id).is_none_or(|s| s.netns != t.current) {
        -ENETUNREACH
    } else {
        st.sockptr.assigned = Some(id);
        0
    };
    Ok(r as u64)
}

/// The guest address of socket `id` of the running program's table.
pub(crate) fn address_of(cx: &Cx, id: SocketId) -> Option<u64> {
    table(cx).address(id)
}

/// The cookie of socket `id` of the running program's table.
pub(crate) fn cookie_of(cx: &Cx, id: SocketId) -> Option<u64> {
    table(cx).get(id).map(|s| s.cookie)
}

/// A program's `map_lookup_elem` on a socket map or socket hash: the address of the socket of
/// the table whose cookie the entry holds (its 8-byte value, or 4-byte value zero-extended),
/// or NULL when the entry is empty or no socket has that cookie.
pub(crate) fn socket_of_entry(cx: &Cx, value: Option<&[u8]>) -> u64 {
    let Some(v) = value else {
        return 0;
    };
    let mut c = [0u8; 8];
    let n = v.len().min(8);
    c[..n].copy_from_slice(&v[..n]);
    let cookie = u64::from_le_bytes(c);
    let t = table(cx);
    t.sockets
        .iter()
        .position(|(s, _)| s.cookie == cookie)
        .and_then(|i| t.address(SocketId(i)))
        .unwrap_or(0)
}

/// Where bpfx keeps `__sk_buff.sk`: the UAPI slot itself (offset 168), 8 bytes.
pub(crate) const SKB_SK: u16 = 168;

/// Writes the packet's socket (its address, or 0) into the socket-buffer struct `buf`.
pub(crate) fn fill_packet_sk(cx: &Cx, packet: Option<SocketId>, buf: &mut [u8]) {
    let addr = packet.and_then(|id| table(cx).address(id)).unwrap_or(0);
    let at = usize::from(SKB_SK);
    if let Some(slot) = buf.get_mut(at..at + 8) {
        slot.copy_from_slice(&addr.to_le_bytes());
    }
}

impl Program {
    /// The socket the packets of this program's next runs belong to: what `__sk_buff.sk`
    /// reads in TC, socket filter, cgroup skb and sk_skb programs (other contexts have no such
    /// field). `None` (the
    /// default), or an id its `Vm`'s table ([`crate::Vm::sockets`]) does not hold, reads
    /// NULL.
    pub fn set_packet_socket(&mut self, socket: Option<SocketId>) {
        self.state().sockptr.packet = socket;
    }

    /// Whether this TC program's next runs see their packets at TC ingress (`true`) or
    /// egress (`false`, the default): `sk_assign` fails with `-EOPNOTSUPP` at egress, as in
    /// the kernel.
    pub fn set_tc_ingress(&mut self, ingress: bool) {
        self.state().sockptr.ingress = ingress;
    }
}
