//! cgroup skb programs (`BPF_PROG_TYPE_CGROUP_SKB`): a program attached to a cgroup sees every
//! packet its sockets send (`cgroup_skb/egress`) or receive (`cgroup_skb/ingress`) and allows
//! or drops it.
//!
//! The context is the kernel's `struct __sk_buff` with the rules of `cg_skb_is_valid_access`
//! ([`crate::cgroup_skb_layout`]), in bpfx's socket-buffer struct ([`crate::SKB_CTX_SIZE`]
//! bytes, as TC's) followed by the packet, which starts at the network header (the kernel
//! runs these programs on the IP packet, and its test run strips the Ethernet header the
//! same way) and is read-only. The packet always has a socket: its `family`, addresses and
//! ports come from a [`BpfSock`] the embedder gives, its cookie from [`SockIds`].

use crate::context::Context;
use crate::error::RunError;
use crate::program::Program;
use crate::skb::{self, SKB_CTX_SIZE, SkbMeta};
use crate::sock::{BpfSock, SockIds};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Where a cgroup skb program is attached: its expected attach type, which sets the return
/// values it may give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CgroupSkbHook {
    /// `BPF_CGROUP_INET_INGRESS` (`cgroup_skb/ingress`, and `cgroup/skb`, which gives no
    /// attach type: the kernel checks it as ingress's 0): returns 0 (drop) or 1 (allow).
    Ingress,
    /// `BPF_CGROUP_INET_EGRESS` (`cgroup_skb/egress`): returns 0 to 3, bit 0 allowing the
    /// packet and bit 1 asking for congestion notification.
    Egress,
}

impl CgroupSkbHook {
    /// libbpf's section for the hook, after `cgroup_skb/`.
    pub const fn name(self) -> &'static str {
        match self {
            CgroupSkbHook::Ingress => "ingress",
            CgroupSkbHook::Egress => "egress",
        }
    }

    /// The range of return values the kernel's verifier allows at the hook.
    pub const fn return_range(self) -> (i64, i64) {
        match self {
            CgroupSkbHook::Ingress => (0, 1),
            CgroupSkbHook::Egress => (0, 3),
        }
    }
}

/// What a cgroup skb program decided, from its return value as the kernel reads it (`u32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CgroupSkbVerdict {
    /// The return value.
    pub code: u32,
    /// Whether the packet goes on: at egress bit 0 of the value, at ingress any value but 0.
    pub allow: bool,
    /// Whether the program asked for congestion notification (egress, bit 1: the kernel's
    /// `NET_XMIT_CN` for an allowed packet, `NET_XMIT_DROP` for a dropped one).
    pub congestion: bool,
}

impl CgroupSkbVerdict {
    /// The verdict of return value `r0` at `hook`.
    pub fn new(r0: u64, hook: CgroupSkbHook) -> CgroupSkbVerdict {
        let code = r0 as u32;
        match hook {
            CgroupSkbHook::Ingress => CgroupSkbVerdict {
                code,
                allow: code != 0,
                congestion: false,
            },
            CgroupSkbHook::Egress => CgroupSkbVerdict {
                code,
                allow: code & 1 != 0,
                congestion: code & 2 != 0,
            },
        }
    }
}

impl fmt::Display for CgroupSkbVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.allow { "ALLOW" } else { "DROP" })?;
        if self.congestion {
            f.write_str(" (congestion notified)")?;
        }
        Ok(())
    }
}

/// The EtherType of an IP packet without its link-layer header, from its version: `0x0800`
/// for IPv4, `0x86dd` for IPv6, 0 for anything else (what `__sk_buff.protocol` reads for it).
pub fn ip_ethertype(packet: &[u8]) -> u16 {
    match packet.first().map(|b| b >> 4) {
        Some(4) => 0x0800,
        Some(6) => 0x86dd,
        _ => 0,
    }
}

impl BpfSock {
    /// The socket of an IP packet `packet` (from its network header), as the kernel's test run
    /// of a cgroup skb program makes it: the family from the IP version (`AF_INET` 2,
    /// `AF_INET6` 10), the local address the packet's source, the remote one its destination
    /// (left unspecified when the packet is too short to hold them), no ports.
    pub fn of_ip_packet(packet: &[u8]) -> BpfSock {
        let mut sk = BpfSock::default();
        let v4 =
            |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
        let v6 = |at: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&packet[at..at + 16]);
            Ipv6Addr::from(o)
        };
        match ip_ethertype(packet) {
            0x0800 => {
                sk.family = 2;
                if packet.len() >= 20 {
                    sk.src_ip4 = v4(12);
                    sk.dst_ip4 = v4(16);
                }
            }
            0x86dd => {
                sk.family = 10;
                if packet.len() >= 40 {
                    sk.src_ip6 = v6(8);
                    sk.dst_ip6 = v6(24);
                }
            }
            _ => {}
        }
        sk
    }
}

impl Program {
    /// Runs a cgroup skb program ([`Context::CgroupSkb`]) on `packet`, an IP packet (from its
    /// network header; the program may only read it), with the socket buffer's metadata
    /// `meta` and the packet's socket `sock` (`family`, the addresses and ports the program
    /// reads; `ids.cookie` is what `bpf_get_socket_cookie` answers). The fields a cgroup skb
    /// program may write (`mark`, `priority`, `cb`, `tstamp`) come back in `meta`, also when
    /// the run traps (as far as the program got).
    pub fn run_cgroup_skb(
        &mut self,
        packet: &[u8],
        meta: &mut SkbMeta,
        sock: &BpfSock,
        ids: &SockIds,
    ) -> Result<CgroupSkbVerdict, RunError> {
        let Context::CgroupSkb(hook) = self.context() else {
            return Err(RunError::WrongContext {
                program: self.name().to_string(),
                expected: self.context().name(),
                got: "cgroup_skb",
            });
        };
        let res = self.run_skb_on_sock(packet, meta, sock, ids, |buf, meta| {
            skb::read_back_cgroup(buf, meta)
        });
        res.map(|r0| CgroupSkbVerdict::new(r0, hook))
    }

    /// Runs on an `__sk_buff` context over `data` with `meta`'s fields and `sock`'s socket
    /// fields filled in (the socket's cookies from `ids`), then `read_back` on the run buffer
    /// (the context, then the data) for what the program may have written; also when the run
    /// traps. The shared body of the cgroup skb and sk_skb runs.
    pub(crate) fn run_skb_on_sock(
        &mut self,
        data: &[u8],
        meta: &mut SkbMeta,
        sock: &BpfSock,
        ids: &SockIds,
        read_back: impl FnOnce(&[u8], &mut SkbMeta),
    ) -> Result<u64, RunError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(SKB_CTX_SIZE, 0);
        buf.extend_from_slice(data);
        skb::fill_skb_ctx(&mut buf, meta, false);
        skb::fill_skb_sock(&mut buf, sock);
        let packet_sk = self.state().sockptr.packet;
        crate::sock_table::fill_packet_sk(self.cx(), packet_sk, &mut buf);
        let (res, ()) = self.exec_with(
            &mut buf,
            |st| {
                st.sock.cookie = ids.cookie;
                st.sock.netns_cookie = ids.netns_cookie;
            },
            |_| (),
        );
        read_back(&buf, meta);
        self.buf = buf;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_read_the_return_value_as_the_hook_does() {
        let v = |r0, hook| {
            let v = CgroupSkbVerdict::new(r0, hook);
            (v.allow, v.congestion)
        };
        use CgroupSkbHook::{Egress, Ingress};
        assert_eq!(v(0, Ingress), (false, false));
        assert_eq!(v(1, Ingress), (true, false));
        assert_eq!(v(2, Ingress), (true, false));
        assert_eq!(v(0x1_0000_0000, Ingress), (false, false));
        assert_eq!(v(0, Egress), (false, false));
        assert_eq!(v(1, Egress), (true, false));
        assert_eq!(v(2, Egress), (false, true));
        assert_eq!(v(3, Egress), (true, true));
        assert_eq!(
            CgroupSkbVerdict::new(3, Egress).to_string(),
            "ALLOW (congestion notified)"
        );
        assert_eq!(CgroupSkbVerdict::new(0, Ingress).to_string(), "DROP");
    }

    #[test]
    fn an_ip_packet_gives_its_socket_as_the_kernels_test_run_does() {
        let mut v4 = vec![0x45u8; 20];
        v4[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let sk = BpfSock::of_ip_packet(&v4);
        assert_eq!(
            (sk.family, sk.src_ip4, sk.dst_ip4),
            (2, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        );
        let short = BpfSock::of_ip_packet(&v4[..19]);
        assert_eq!((short.family, short.src_ip4), (2, Ipv4Addr::UNSPECIFIED));
        assert_eq!(BpfSock::of_ip_packet(&[0x10]), BpfSock::default());
        let mut v6 = vec![0x60u8; 40];
        v6[8..24].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6[24..40].copy_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
        let sk = BpfSock::of_ip_packet(&v6);
        assert_eq!((sk.family, sk.src_ip6), (10, Ipv6Addr::LOCALHOST));
        assert_eq!(sk.dst_ip6, "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            (ip_ethertype(&v4), ip_ethertype(&v6), ip_ethertype(&[])),
            (0x0800, 0x86dd, 0)
        );
    }
}
