//! sk_lookup programs (`BPF_PROG_TYPE_SK_LOOKUP`, section `sk_lookup`): attached to a network
//! namespace, the program runs when a TCP connection request or a UDP datagram looks for its
//! local socket, before the kernel's own lookup by address and port. It may select any
//! listening TCP socket or unconnected UDP socket (`bpf_sk_assign`), typically one it took from
//! a `SOCKMAP` by the destination port, so that one socket serves many addresses or ports; it
//! returns `SK_PASS` (the selected socket, or the kernel's own lookup when none is selected) or
//! `SK_DROP` (the connection is refused, the datagram dropped).
//!
//! The context is the kernel's `struct bpf_sk_lookup` with the rules of Linux 6.18 (checked by
//! loading one-field programs: [`sk_lookup_layout`]); bpfx's struct is the UAPI's own layout
//! ([`SK_LOOKUP_CTX_SIZE`] bytes), nothing follows it.
//!
//! ```text
//! bpf_sk_lookup (the program's view = bpfx's struct)
//!   0  u64 sk              (the socket selected so far: address of its `struct bpf_sock`, or 0)
//!   8  u32 family          (AF_INET 2, AF_INET6 10)
//!  12  u32 protocol        (IPPROTO_TCP 6, IPPROTO_UDP 17)
//!  16  u32 remote_ip4, 20 u32 remote_ip6[4]   (network order)
//!  36  u16 remote_port     (network order), 38 u16 zero padding
//!  40  u32 local_ip4, 44 u32 local_ip6[4]     (network order)
//!  60  u32 local_port      (host order)
//!  64  u32 ingress_ifindex
//!  68  4 bytes of padding
//! ```
//!
//! `bpf_sk_assign` (124) has the lookup's own semantics here ([`sk_lookup_assign`]); the sockets
//! a program selects are those of [`crate::Vm::sockets`], which the socket map lookup
//! (`map_lookup_elem` on a `SOCKMAP` or `SOCKHASH`) finds by the cookie the entry holds.

use crate::context::Context;
use crate::error::RunError;
use crate::program::Program;
use crate::sock_table::{IPPROTO_TCP, IPPROTO_UDP, SocketId, TCP_ESTABLISHED, TCP_LISTEN};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};
use std::fmt;
use std::net::IpAddr;

/// Size of `struct bpf_sk_lookup`, also bpfx's struct.
pub const SK_LOOKUP_CTX_SIZE: usize = 72;

/// `BPF_SK_LOOKUP_F_REPLACE`: `bpf_sk_assign` may override an earlier selection.
pub const BPF_SK_LOOKUP_F_REPLACE: u64 = 1;
/// `BPF_SK_LOOKUP_F_NO_REUSEPORT`: the selected socket is used as is, without load-balancing
/// within its reuseport group.
pub const BPF_SK_LOOKUP_F_NO_REUSEPORT: u64 = 2;

/// `bpf_sk_lookup` field offsets (UAPI, also bpfx's).
mod off {
    pub(super) const SK: u16 = 0;
    pub(super) const FAMILY: u16 = 8;
    pub(super) const PROTOCOL: u16 = 12;
    pub(super) const REMOTE_IP4: u16 = 16;
    pub(super) const REMOTE_IP6: u16 = 20;
    pub(super) const REMOTE_PORT: u16 = 36;
    pub(super) const LOCAL_IP4: u16 = 40;
    pub(super) const LOCAL_IP6: u16 = 44;
    pub(super) const LOCAL_PORT: u16 = 60;
    pub(super) const INGRESS_IFINDEX: u16 = 64;
}

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const EINVAL: i64 = 22;
const EEXIST: i64 = 17;
const EPROTOTYPE: i64 = 91;
const ESOCKTNOSUPPORT: i64 = 94;
const EAFNOSUPPORT: i64 = 97;

/// The `bpf_sk_lookup` of an sk_lookup program, as Linux 6.18 allows it (checked by loading
/// one-field programs with `bpftool`): `sk` (8-byte loads only: the socket selected so far, a
/// full `sock` pointer that may be NULL and is no reference, [`FieldKind::SockOrNull`]);
/// `family`, `protocol`, `remote_ip4`, `remote_ip6[0..4]`, `local_ip4`, `local_ip6[0..4]`,
/// `local_port` and `ingress_ifindex` (whole or narrow loads); `remote_port` with its zero
/// padding (4-byte loads, which read the port in the low 2 bytes, or narrow loads of either
/// half). Nothing is writable, nothing past `ingress_ifindex` readable. The program returns
/// `SK_DROP` (0) or `SK_PASS` (1).
pub fn sk_lookup_layout() -> ContextLayout {
    use off::*;
    let word = |at: u16| ContextField::new(at, 4, FieldKind::Scalar, at).with_narrow(true);
    let mut fields = vec![
        ContextField::new(SK, 8, FieldKind::SockOrNull, SK),
        word(FAMILY),
        word(PROTOCOL),
        word(REMOTE_IP4),
        word(REMOTE_PORT),
        word(LOCAL_IP4),
        word(LOCAL_PORT),
        word(INGRESS_IFINDEX),
    ];
    for i in 0..4 {
        fields.push(word(REMOTE_IP6 + 4 * i));
        fields.push(word(LOCAL_IP6 + 4 * i));
    }
    ContextLayout::new(fields).with_return_range(0, 1)
}

/// What a socket lookup is for: a TCP connection request (SYN) or a UDP datagram, from
/// `remote` to `local`, arriving on interface `ingress_ifindex`. Both addresses are of one
/// family ([`SkLookup::new`] checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SkLookup {
    /// `IPPROTO_TCP` (6) or `IPPROTO_UDP` (17).
    pub protocol: u32,
    /// The packet's source: the socket's remote end.
    pub remote: (IpAddr, u16),
    /// The packet's destination: the address and port a socket is looked up for.
    pub local: (IpAddr, u16),
    /// The interface the packet arrived on.
    pub ingress_ifindex: u32,
}

impl SkLookup {
    /// A lookup of `protocol` (TCP or UDP) from `remote` to `local`; `None` for another
    /// protocol or addresses of two families (the kernel runs these programs for TCP and UDP
    /// over IPv4 or IPv6 only).
    pub fn new(protocol: u32, remote: (IpAddr, u16), local: (IpAddr, u16)) -> Option<SkLookup> {
        let ok = matches!(protocol, IPPROTO_TCP | IPPROTO_UDP)
            && remote.0.is_ipv4() == local.0.is_ipv4();
        ok.then_some(SkLookup {
            protocol,
            remote,
            local,
            ingress_ifindex: 0,
        })
    }

    /// The same lookup, arriving on interface `ifindex`.
    pub fn on(self, ifindex: u32) -> SkLookup {
        SkLookup {
            ingress_ifindex: ifindex,
            ..self
        }
    }

    /// The lookup a `struct bpf_sk_lookup` describes, as the kernel's test run takes one
    /// (`ctx_in`): [`SK_LOOKUP_CTX_SIZE`] bytes, `sk` 0, `family` `AF_INET` or `AF_INET6`,
    /// `protocol` TCP or UDP, `local_port` at most 65535, the padding 0; `None` otherwise.
    pub fn from_ctx(b: &[u8]) -> Option<SkLookup> {
        use off::*;
        use std::net::{Ipv4Addr, Ipv6Addr};
        if b.len() != SK_LOOKUP_CTX_SIZE {
            return None;
        }
        let word = |at: u16| {
            let at = usize::from(at);
            u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
        };
        let v4 = |at: u16| Ipv4Addr::from(word(at).to_le_bytes());
        let v6 = |at: u16| {
            let at = usize::from(at);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[at..at + 16]);
            Ipv6Addr::from(o)
        };
        let sk = &b[..8];
        let pad = &b[38..40];
        let (remote, local) = match word(FAMILY) {
            AF_INET => (IpAddr::V4(v4(REMOTE_IP4)), IpAddr::V4(v4(LOCAL_IP4))),
            AF_INET6 => (IpAddr::V6(v6(REMOTE_IP6)), IpAddr::V6(v6(LOCAL_IP6))),
            _ => return None,
        };
        let local_port = u16::try_from(word(LOCAL_PORT)).ok()?;
        if sk.iter().chain(pad).any(|&x| x != 0) {
            return None;
        }
        let remote_port = u16::from_be_bytes([b[36], b[37]]);
        SkLookup::new(word(PROTOCOL), (remote, remote_port), (local, local_port))
            .map(|l| l.on(word(INGRESS_IFINDEX)))
    }

    /// `AF_INET` (2) or `AF_INET6` (10).
    pub fn family(&self) -> u32 {
        if self.local.0.is_ipv4() {
            AF_INET
        } else {
            AF_INET6
        }
    }

    /// bpfx's struct (the UAPI's), with `sk` holding `selected`'s address (0: none).
    fn to_bytes(self, selected: u64) -> [u8; SK_LOOKUP_CTX_SIZE] {
        use off::*;
        let mut b = [0u8; SK_LOOKUP_CTX_SIZE];
        let mut put = |at: u16, bytes: &[u8]| {
            let at = usize::from(at);
            b[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(SK, &selected.to_le_bytes());
        put(FAMILY, &self.family().to_le_bytes());
        put(PROTOCOL, &self.protocol.to_le_bytes());
        for (addr, v4, v6) in [
            (self.remote.0, REMOTE_IP4, REMOTE_IP6),
            (self.local.0, LOCAL_IP4, LOCAL_IP6),
        ] {
            match addr {
                IpAddr::V4(a) => put(v4, &a.octets()),
                IpAddr::V6(a) => put(v6, &a.octets()),
            }
        }
        put(REMOTE_PORT, &self.remote.1.to_be_bytes());
        put(LOCAL_PORT, &u32::from(self.local.1).to_le_bytes());
        put(INGRESS_IFINDEX, &self.ingress_ifindex.to_le_bytes());
        b
    }
}

/// What the run of an sk_lookup program decided, from its return value and its last
/// successful `bpf_sk_assign`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SkLookupOutcome {
    /// The return value, as the kernel reads it (`u32`).
    pub code: u32,
    /// Whether the lookup goes on (`SK_PASS`): to [`SkLookupOutcome::selected`], or when
    /// none, to the kernel's own lookup. `SK_DROP` refuses the connection or drops the datagram.
    pub pass: bool,
    /// The socket selected when the run ends (the one the caller gave, if the program
    /// neither replaced nor cleared it).
    pub selected: Option<SocketId>,
    /// Whether the selection skips reuseport load-balancing (`BPF_SK_LOOKUP_F_NO_REUSEPORT`).
    pub no_reuseport: bool,
    /// The selected socket's cookie ([`crate::Socket::cookie`]; 0: none), what the kernel's
    /// test run writes back into `bpf_sk_lookup.cookie`.
    pub cookie: u64,
}

impl fmt::Display for SkLookupOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.pass, self.selected) {
            (false, _) => f.write_str("SK_DROP"),
            (true, None) => f.write_str("SK_PASS"),
            (true, Some(id)) => write!(f, "SK_PASS (socket {})", id.0),
        }
    }
}

/// The lookup a running sk_lookup program serves, which its `bpf_sk_assign` checks sockets
/// against, and the selection so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LookupRun {
    pub(crate) family: u32,
    pub(crate) protocol: u32,
    /// The selected socket's address (0: none), which `bpf_sk_lookup.sk` reads: written into
    /// the context when the selection changes and when a tail call's target starts.
    pub(crate) selected_addr: u64,
    pub(crate) no_reuseport: bool,
    /// The context's address.
    pub(crate) ctx: u64,
}

impl LookupRun {
    /// Writes the selected socket's address into the context `input` (when it is the run's).
    pub(crate) fn write_into(&self, input: &mut [u8]) {
        if self.ctx == input.as_ptr() as u64
            && let Some(sk) = input.get_mut(..8)
        {
            sk.copy_from_slice(&self.selected_addr.to_le_bytes());
        }
    }
}

/// `sk_assign(ctx, sk, flags)` of an sk_lookup program, as `linux/bpf.h` describes it:
/// `-EINVAL` for a flag other than `BPF_SK_LOOKUP_F_REPLACE` and
/// `BPF_SK_LOOKUP_F_NO_REUSEPORT`; `-EEXIST` when a socket is selected already (by this
/// program, or one before it) and `REPLACE` is not given; then for a socket (NULL clears the
/// selection): `-ESOCKTNOSUPPORT` unless it is a TCP listener or an unconnected UDP socket,
/// `-EPROTOTYPE` for another protocol than the lookup's, `-EAFNOSUPPORT` for an IPv4 socket
/// and an IPv6 lookup (bpfx's IPv6 sockets are dual-stack, not v6-only: they may serve IPv4).
/// On success the socket becomes the selection (`bpf_sk_lookup.sk` reads it) and 0.
pub(crate) fn sk_lookup_assign(
    table: &crate::sock_table::SocketTable,
    st: &mut crate::helpers::RunState,
    sk: Option<SocketId>,
    flags: u64,
) -> i64 {
    let run = &mut st.sockptr.lookup;
    if flags & !(BPF_SK_LOOKUP_F_REPLACE | BPF_SK_LOOKUP_F_NO_REUSEPORT) != 0 {
        return -EINVAL;
    }
    if run.selected_addr != 0 && flags & BPF_SK_LOOKUP_F_REPLACE == 0 {
        return -EEXIST;
    }
    if let Some(s) = sk.and_then(|id| table.get(id)) {
        let b = &s.sock;
        let open = match b.protocol {
            IPPROTO_TCP => b.state == TCP_LISTEN,
            IPPROTO_UDP => b.state != TCP_ESTABLISHED,
            _ => false,
        };
        if !open {
            return -ESOCKTNOSUPPORT;
        }
        if b.protocol != run.protocol {
            return -EPROTOTYPE;
        }
        if b.family != run.family && b.family == AF_INET {
            return -EAFNOSUPPORT;
        }
    }
    run.selected_addr = sk.and_then(|id| table.address(id)).unwrap_or(0);
    run.no_reuseport = flags & BPF_SK_LOOKUP_F_NO_REUSEPORT != 0;
    st.sockptr.assigned = sk;
    0
}

impl Program {
    /// Runs an sk_lookup program ([`Context::SkLookup`]) for `lookup`, with `selected` the
    /// socket an earlier program of the namespace selected (`None`: none), from the sockets of
    /// its `Vm` ([`crate::Vm::sockets`]; an id the table does not hold counts as none).
    pub fn run_sk_lookup(
        &mut self,
        lookup: &SkLookup,
        selected: Option<SocketId>,
    ) -> Result<SkLookupOutcome, RunError> {
        if self.context() != Context::SkLookup {
            return Err(RunError::WrongContext {
                program: self.name().to_string(),
                expected: self.context().name(),
                got: "sk_lookup",
            });
        }
        let addr = selected.and_then(|id| crate::sock_table::address_of(self.cx(), id));
        let selected = addr.and(selected);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&lookup.to_bytes(addr.unwrap_or(0)));
        let run = LookupRun {
            family: lookup.family(),
            protocol: lookup.protocol,
            selected_addr: addr.unwrap_or(0),
            no_reuseport: false,
            ctx: buf.as_ptr() as u64,
        };
        let (res, (assigned, run)) = self.exec_with(
            &mut buf,
            |st| {
                st.sockptr.lookup = run;
                st.sockptr.assigned = selected;
            },
            |st| (st.sockptr.assigned, std::mem::take(&mut st.sockptr.lookup)),
        );
        self.buf = buf;
        let code = res? as u32;
        Ok(SkLookupOutcome {
            code,
            pass: code == crate::SK_PASS,
            selected: assigned,
            no_reuseport: run.no_reuseport,
            cookie: assigned
                .and_then(|id| crate::sock_table::cookie_of(self.cx(), id))
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn the_struct_is_the_uapi_layout() {
        let l = SkLookup::new(
            IPPROTO_UDP,
            (IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 0x1234),
            (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 7),
        )
        .unwrap()
        .on(3);
        let b = l.to_bytes(0xdead);
        assert_eq!(b[0..8], 0xdeadu64.to_le_bytes());
        assert_eq!(b[8..16], [2, 0, 0, 0, 17, 0, 0, 0]);
        assert_eq!(b[16..20], [10, 1, 2, 3]);
        assert_eq!(b[36..40], [0x12, 0x34, 0, 0]);
        assert_eq!(b[40..44], [127, 0, 0, 1]);
        assert_eq!(b[60..68], [7, 0, 0, 0, 3, 0, 0, 0]);
        let v6 = SkLookup::new(
            IPPROTO_TCP,
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 1),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 2),
        )
        .unwrap();
        assert_eq!(v6.family(), 10);
        assert_eq!(v6.to_bytes(0)[59], 1);
        assert!(SkLookup::new(1, v6.remote, v6.local).is_none());
        assert!(SkLookup::new(6, l.remote, v6.local).is_none());
    }

    #[test]
    fn the_layout_reads_everything_up_to_the_ifindex_and_writes_nothing() {
        let l = sk_lookup_layout();
        assert_eq!(l.fields.len(), 16);
        assert!(l.fields.iter().all(|f| !f.writable));
        let end = l.fields.iter().map(|f| f.off + f.size).max();
        assert_eq!(end, Some(68));
        assert_eq!(l.return_range, Some((0, 1)));
    }
}
