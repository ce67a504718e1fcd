//! Lightweight tunnel programs (`BPF_PROG_TYPE_LWT_IN`, `LWT_OUT`, `LWT_XMIT`,
//! `LWT_SEG6LOCAL`; sections `lwt_in`, `lwt_out`, `lwt_xmit`, `lwt_seg6local`): attached to a
//! route (`ip route add … encap bpf in|out|xmit obj …`), the program sees every IP packet the
//! route carries on input, on output, or as it is transmitted, and lets it go on (`BPF_OK`),
//! drops it (`BPF_DROP`), redirects it (`BPF_REDIRECT`, xmit) or has it routed again
//! (`BPF_LWT_REROUTE`, after an encapsulation).
//!
//! The context is the kernel's `struct __sk_buff` with the rules Linux 6.18 applies to these
//! types (checked by loading one-field programs: [`lwt_layout`]), in bpfx's socket-buffer struct
//! ([`crate::SKB_CTX_SIZE`] bytes, as TC's) followed by the packet, which starts at the network
//! header (a route carries IP packets; the kernel's test run strips the Ethernet header its
//! input starts with the same way) and is writable for `lwt_xmit` only.

use crate::context::Context;
use crate::error::RunError;
use crate::helpers::RedirectTarget;
use crate::program::Program;
use crate::skb::{self, SKB_CTX_SIZE, SkbMeta};
use crate::sock::{BpfSock, SockIds};
use bpfx_verifier::ContextLayout;
use std::fmt;

/// Where on its route a lightweight tunnel program runs: its program type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LwtHook {
    /// `BPF_PROG_TYPE_LWT_IN` (`lwt_in`): packets the route delivers locally or forwards, on
    /// input.
    In,
    /// `BPF_PROG_TYPE_LWT_OUT` (`lwt_out`): locally generated packets, on output.
    Out,
    /// `BPF_PROG_TYPE_LWT_XMIT` (`lwt_xmit`): packets about to be transmitted; the program may
    /// rewrite them and redirect them.
    Xmit,
    /// `BPF_PROG_TYPE_LWT_SEG6LOCAL` (`lwt_seg6local`): the `End.BPF` action of an IPv6
    /// segment routing route.
    Seg6Local,
}

impl LwtHook {
    /// Every hook.
    pub const ALL: [LwtHook; 4] = [LwtHook::In, LwtHook::Out, LwtHook::Xmit, LwtHook::Seg6Local];

    /// libbpf's section, also the kernel's program type name (`lwt_in`, …).
    pub const fn name(self) -> &'static str {
        match self {
            LwtHook::In => "lwt_in",
            LwtHook::Out => "lwt_out",
            LwtHook::Xmit => "lwt_xmit",
            LwtHook::Seg6Local => "lwt_seg6local",
        }
    }

    /// The hook a section or `--ctx` name gives.
    pub fn from_name(name: &str) -> Option<LwtHook> {
        LwtHook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Whether the program may write the packet (direct stores, `skb_store_bytes`).
    pub const fn writes_packet(self) -> bool {
        matches!(self, LwtHook::Xmit)
    }
}

/// The `__sk_buff` of a lightweight tunnel program at `hook`, as Linux 6.18 allows it
/// (checked by loading one-field programs with `bpftool`, the same for the four types): the
/// fields of [`crate::socket_layout`] (`len` … `gso_size`, whole or narrow loads, `cb[0..5]`
/// read and written), writable `mark` and `priority` besides `cb`; `sk` (8 bytes: a
/// `sock_common` pointer or NULL); and direct packet access through `data` and `data_end`,
/// writable at `lwt_xmit` only. `tc_classid`, `data_meta`, the socket's address fields,
/// `tstamp`, `wire_len`, `hwtstamp` and `tstamp_type` are refused, and so are legacy packet
/// loads. Any return value is accepted.
pub fn lwt_layout(hook: LwtHook) -> ContextLayout {
    skb::lwt_layout(!hook.writes_packet())
}

/// What a lightweight tunnel program asked for: its return value (`enum bpf_ret_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LwtAction {
    /// `BPF_OK` (0): the packet goes on.
    Ok,
    /// `BPF_DROP` (2).
    Drop,
    /// `BPF_REDIRECT` (7): to the device `bpf_redirect` chose (`lwt_xmit`; the kernel treats
    /// it as `BPF_OK` elsewhere).
    Redirect,
    /// `BPF_LWT_REROUTE` (128): routed again (after `bpf_lwt_push_encap` at input or xmit).
    Reroute,
    /// Any other value (the kernel warns and drops the packet).
    Unknown(i32),
}

impl LwtAction {
    /// The action a return value means (its low 32 bits, as the kernel's `int`).
    pub fn from_code(r0: u64) -> LwtAction {
        match r0 as u32 as i32 {
            0 => LwtAction::Ok,
            2 => LwtAction::Drop,
            7 => LwtAction::Redirect,
            128 => LwtAction::Reroute,
            v => LwtAction::Unknown(v),
        }
    }

    /// The value, as `int`.
    pub fn code(self) -> i32 {
        match self {
            LwtAction::Ok => 0,
            LwtAction::Drop => 2,
            LwtAction::Redirect => 7,
            LwtAction::Reroute => 128,
            LwtAction::Unknown(v) => v,
        }
    }
}

impl fmt::Display for LwtAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LwtAction::Ok => f.write_str("BPF_OK"),
            LwtAction::Drop => f.write_str("BPF_DROP"),
            LwtAction::Redirect => f.write_str("BPF_REDIRECT"),
            LwtAction::Reroute => f.write_str("BPF_LWT_REROUTE"),
            LwtAction::Unknown(v) => write!(f, "BPF_UNKNOWN({v})"),
        }
    }
}

/// What a lightweight tunnel run gave.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LwtOutcome {
    /// The return value's reading.
    pub action: LwtAction,
    /// The target of the run's last `bpf_redirect` (`lwt_xmit`).
    pub redirect: Option<RedirectTarget>,
}

impl Program {
    /// Runs a lightweight tunnel program ([`Context::Lwt`]) on `packet`, an IP packet (from
    /// its network header), with the socket buffer's metadata `meta`. At `lwt_xmit` the program
    /// may rewrite the packet, which holds the final bytes afterwards (also when the run traps);
    /// the fields it may write (`mark`, `priority`, `cb`) come back in `meta`.
    pub fn run_lwt(
        &mut self,
        packet: &mut [u8],
        meta: &mut SkbMeta,
    ) -> Result<LwtOutcome, RunError> {
        let Context::Lwt(_) = self.context() else {
            return Err(RunError::WrongContext {
                program: self.name().to_string(),
                expected: self.context().name(),
                got: "lwt",
            });
        };
        let res = self.run_skb_on_sock(
            packet,
            meta,
            &BpfSock::default(),
            &SockIds::default(),
            skb::read_back_cgroup,
        );
        packet.copy_from_slice(&self.buf[SKB_CTX_SIZE..SKB_CTX_SIZE + packet.len()]);
        let r0 = res?;
        Ok(LwtOutcome {
            action: LwtAction::from_code(r0),
            redirect: self.last_redirect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_codes_read_as_the_kernel_reads_them() {
        for (r0, a) in [
            (0, LwtAction::Ok),
            (2, LwtAction::Drop),
            (7, LwtAction::Redirect),
            (128, LwtAction::Reroute),
            (1, LwtAction::Unknown(1)),
            (u64::MAX, LwtAction::Unknown(-1)),
            (0x1_0000_0000, LwtAction::Ok),
        ] {
            assert_eq!(LwtAction::from_code(r0), a, "{r0:#x}");
            assert_eq!(LwtAction::from_code(a.code() as u32 as u64), a);
        }
        assert_eq!(LwtAction::Reroute.to_string(), "BPF_LWT_REROUTE");
        assert_eq!(LwtHook::from_name("lwt_xmit"), Some(LwtHook::Xmit));
        assert_eq!(LwtHook::from_name("lwt"), None);
    }

    #[test]
    fn only_xmit_writes_the_packet() {
        for h in LwtHook::ALL {
            assert_eq!(lwt_layout(h).packet_read_only, !h.writes_packet(), "{h:?}");
            assert!(!lwt_layout(h).packet_loads);
        }
    }
}
