//! cgroup socket-option programs (`BPF_PROG_TYPE_CGROUP_SOCKOPT`, sections
//! `cgroup/getsockopt` and `cgroup/setsockopt`): attached to a cgroup, the program runs on
//! every `setsockopt(2)` of its tasks before the kernel's handler (and may change the level,
//! the name and the value the handler gets, answer the call itself, or refuse it), and on
//! every `getsockopt(2)` after the handler (and may change the value, its length and the
//! call's result, or refuse it). It returns 1 (go on) or 0 (the call fails with `-EPERM`).
//!
//! The context is the kernel's `struct bpf_sockopt` with the rules of Linux 6.18 (checked by
//! loading one-field programs with `bpftool`: [`sockopt_layout`]); bpfx's struct is the UAPI's
//! own layout ([`SOCKOPT_CTX_SIZE`] bytes), and the option's bytes follow it, which `optval`
//! and `optval_end` bound as a packet.
//!
//! ```text
//! bpf_sockopt (the program's view = bpfx's struct)     then the option's bytes (at most a page)
//!   0  u64 sk          (struct bpf_sock *, read-only, never NULL)
//!   8  u64 optval      (packet start: the option's bytes, writable)
//!  16  u64 optval_end  (packet end)
//!  24  s32 level       (writable at setsockopt)
//!  28  s32 optname     (writable at setsockopt)
//!  32  s32 optlen      (writable)
//!  36  s32 retval      (getsockopt only: read and written)
//! ```
//!
//! What the kernel makes of a run ([`SockoptResult`]) follows `Documentation/bpf/
//! prog_cgroup_sockopt.rst`: a verdict with bit 0 clear refuses the call (`-EPERM`); at
//! setsockopt an `optlen` of -1 answers the call with 0 without the kernel's handler, an
//! `optlen` above the buffer or below -1 is `-EFAULT`, 0 hands the handler the caller's own
//! value, anything else the program's bytes; at getsockopt an `optlen` above the buffer or
//! below 0 is `-EFAULT`, 0 leaves the caller's buffer as the handler wrote it, anything else
//! copies the program's bytes out, and the call returns `retval`. A value longer than a page
//! reaches the program cut to its first page; a program that then sets an `optlen` past the
//! page (and not negative) is ignored, as the kernel ignores it.

use crate::context::Context;
use crate::error::RunError;
use crate::program::Program;
use crate::sock::{BpfSock, SockIds};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};
use std::fmt;

/// Size of `struct bpf_sockopt`, also bpfx's struct (the option's bytes follow it).
pub const SOCKOPT_CTX_SIZE: usize = 40;
/// The most bytes of the option a program sees (`PAGE_SIZE` on x86-64).
pub const SOCKOPT_MAX_BUF: usize = 4096;

/// `bpf_sockopt` field offsets (UAPI, also bpfx's).
mod off {
    pub(super) const SK: u16 = 0;
    pub(super) const OPTVAL: u16 = 8;
    pub(super) const OPTVAL_END: u16 = 16;
    pub(super) const LEVEL: u16 = 24;
    pub(super) const OPTNAME: u16 = 28;
    pub(super) const OPTLEN: u16 = 32;
    pub(super) const RETVAL: u16 = 36;
}

const EPERM: i32 = 1;
const EFAULT: i32 = 14;

/// The socket call a cgroup socket-option program runs at (its expected attach type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockoptHook {
    /// `BPF_CGROUP_GETSOCKOPT`: after the kernel's `getsockopt` handler.
    Get,
    /// `BPF_CGROUP_SETSOCKOPT`: before the kernel's `setsockopt` handler.
    Set,
}

impl SockoptHook {
    /// libbpf's section name: `cgroup/getsockopt` or `cgroup/setsockopt`.
    pub const fn section(self) -> &'static str {
        match self {
            SockoptHook::Get => "cgroup/getsockopt",
            SockoptHook::Set => "cgroup/setsockopt",
        }
    }

    /// The hook of a libbpf section name.
    pub fn from_section(section: &str) -> Option<SockoptHook> {
        [SockoptHook::Get, SockoptHook::Set]
            .into_iter()
            .find(|h| h.section() == section)
    }
}

/// The `bpf_sockopt` of a cgroup socket-option program at `hook`, as Linux 6.18 allows it
/// (checked by loading one-field programs with `bpftool`): `sk` (8-byte loads: the socket, a
/// full `sock` pointer never NULL, [`FieldKind::Sock`]), `optval` and `optval_end` (8-byte
/// loads: packet pointers over the option's bytes, which the program may read and write),
/// `level`, `optname` and `optlen` (4-byte loads only, no narrow ones), `retval` at
/// getsockopt only. Writable: `optlen` at both hooks; `level` and `optname` at setsockopt;
/// `retval` at getsockopt (4-byte stores); nothing else, nothing past `retval`. The program
/// returns 0 or 1.
pub fn sockopt_layout(hook: SockoptHook) -> ContextLayout {
    use off::*;
    let word = |at: u16, writable: bool| {
        ContextField::new(at, 4, FieldKind::Scalar, at).with_writable(writable)
    };
    let set = hook == SockoptHook::Set;
    let mut fields = vec![
        ContextField::new(SK, 8, FieldKind::Sock, SK),
        ContextField::new(OPTVAL, 8, FieldKind::PacketStart, OPTVAL),
        ContextField::new(OPTVAL_END, 8, FieldKind::PacketEnd, OPTVAL_END),
        word(LEVEL, set),
        word(OPTNAME, set),
        word(OPTLEN, true),
    ];
    if !set {
        fields.push(word(RETVAL, true));
    }
    ContextLayout::new(fields).with_return_range(0, 1)
}

/// One socket-option call as a program sees it, and as the run leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockoptCall {
    /// `level` (`SOL_SOCKET` 1, `IPPROTO_TCP` 6, …).
    pub level: i32,
    /// `optname`.
    pub optname: i32,
    /// The option's bytes the program sees and may rewrite (`optval`..`optval_end`): at
    /// setsockopt the caller's value, at getsockopt the caller's buffer as the kernel's
    /// handler filled it. Only the first [`SOCKOPT_MAX_BUF`] bytes reach the program.
    pub optval: Vec<u8>,
    /// `optlen`: at setsockopt the caller's length, at getsockopt the length the handler
    /// gave back.
    pub optlen: i32,
    /// `retval` (getsockopt): the handler's result, 0 or a negative errno.
    pub retval: i32,
}

impl SockoptCall {
    /// A `setsockopt(level, optname, value)`, `optlen` the value's length.
    pub fn set(level: i32, optname: i32, value: &[u8]) -> SockoptCall {
        SockoptCall {
            level,
            optname,
            optval: value.to_vec(),
            optlen: i32::try_from(value.len()).unwrap_or(i32::MAX),
            retval: 0,
        }
    }

    /// A `getsockopt(level, optname)` whose handler returned `retval` and wrote `value` into
    /// a caller's buffer of `buf_len` bytes (the value cut to it), `optlen` the value's length.
    pub fn get(level: i32, optname: i32, value: &[u8], buf_len: usize, retval: i32) -> SockoptCall {
        let mut optval = value.to_vec();
        optval.resize(buf_len, 0);
        SockoptCall {
            level,
            optname,
            optval,
            optlen: i32::try_from(value.len().min(buf_len)).unwrap_or(i32::MAX),
            retval,
        }
    }

    /// The call a `struct bpf_sockopt` followed by the option's bytes describes (at least
    /// [`SOCKOPT_CTX_SIZE`] bytes; the struct's pointers are not read): the embedder's and the
    /// command line's form of a call.
    pub fn from_bytes(b: &[u8]) -> Option<SockoptCall> {
        let optval = b.get(SOCKOPT_CTX_SIZE..)?.to_vec();
        let mut call = SockoptCall {
            optval,
            ..SockoptCall::default()
        };
        call.read_back(b);
        Some(call)
    }

    /// The `struct bpf_sockopt` (its pointers 0) followed by the option's bytes the program
    /// sees (the first [`SOCKOPT_MAX_BUF`]): [`SockoptCall::from_bytes`]'s form.
    pub fn to_bytes(&self) -> Vec<u8> {
        use off::*;
        let window = self.optval.len().min(SOCKOPT_MAX_BUF);
        let mut b = vec![0u8; SOCKOPT_CTX_SIZE + window];
        for (at, v) in [
            (LEVEL, self.level),
            (OPTNAME, self.optname),
            (OPTLEN, self.optlen),
            (RETVAL, self.retval),
        ] {
            let at = usize::from(at);
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        b[SOCKOPT_CTX_SIZE..].copy_from_slice(&self.optval[..window]);
        b
    }

    /// The call as the run left the struct `b` ([`SockoptCall::to_bytes`]'s layout).
    fn read_back(&mut self, b: &[u8]) {
        use off::*;
        let word = |at: u16| {
            let at = usize::from(at);
            b.get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .map_or(0, i32::from_le_bytes)
        };
        self.level = word(LEVEL);
        self.optname = word(OPTNAME);
        self.optlen = word(OPTLEN);
        self.retval = word(RETVAL);
        let window = b.get(SOCKOPT_CTX_SIZE..).unwrap_or(&[]);
        let n = window.len().min(self.optval.len());
        self.optval[..n].copy_from_slice(&window[..n]);
    }
}

/// What the kernel does with a call after the program ran.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SockoptResult {
    /// The verdict's bit 0 is clear: the call fails with `-EPERM`.
    Refused,
    /// `optlen` out of bounds (above the program's buffer, or below -1 at setsockopt and 0 at
    /// getsockopt): the call fails with `-EFAULT`.
    Fault,
    /// setsockopt, `optlen` -1: the call returns 0 and the kernel's handler is skipped.
    Bypass,
    /// setsockopt: the kernel's handler runs with this level and name, and the program's bytes
    /// (`optval[..optlen]`), or the caller's own value when `optval` is `None` (`optlen` 0, or
    /// a value longer than a page the program left alone).
    Set {
        /// The level the handler gets.
        level: i32,
        /// The name the handler gets.
        optname: i32,
        /// The value it gets, when the program gave one.
        optval: Option<Vec<u8>>,
    },
    /// getsockopt: the call returns `retval`; the caller's buffer and length become the
    /// program's bytes, or stay as the handler left them when `optval` is `None`.
    Get {
        /// The call's result (0, or a negative errno).
        retval: i32,
        /// What the caller reads, when the program changed it.
        optval: Option<Vec<u8>>,
    },
}

impl SockoptResult {
    /// The value the socket call returns (0, or a negative errno).
    pub fn errno(&self) -> i32 {
        match self {
            SockoptResult::Refused => -EPERM,
            SockoptResult::Fault => -EFAULT,
            SockoptResult::Bypass | SockoptResult::Set { .. } => 0,
            SockoptResult::Get { retval, .. } => *retval,
        }
    }
}

impl fmt::Display for SockoptResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockoptResult::Refused => f.write_str("EPERM"),
            SockoptResult::Fault => f.write_str("EFAULT"),
            SockoptResult::Bypass => f.write_str("bypass"),
            SockoptResult::Set { .. } => f.write_str("set"),
            SockoptResult::Get { retval, .. } => write!(f, "get (retval {retval})"),
        }
    }
}

/// The run of a cgroup socket-option program: its verdict, the call as it left it, and what
/// the kernel does with the call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SockoptOutcome {
    /// The return value, as the kernel reads it (`u32`).
    pub code: u32,
    /// The call after the run (its level, name, length, result and bytes).
    pub call: SockoptCall,
    /// What the kernel makes of it.
    pub result: SockoptResult,
}

/// The kernel's reading of a run at `hook`: `given` the call as it was, `after` as the program
/// left it, `code` the verdict.
fn result(hook: SockoptHook, given: &SockoptCall, after: &SockoptCall, code: u32) -> SockoptResult {
    if code & 1 == 0 {
        return SockoptResult::Refused;
    }
    let max = given.optval.len().min(SOCKOPT_MAX_BUF) as i64;
    let len = i64::from(after.optlen);
    let long = given.optval.len() > SOCKOPT_MAX_BUF;
    let bytes = || after.optval[..len as usize].to_vec();
    match hook {
        SockoptHook::Set => {
            if len == -1 {
                return SockoptResult::Bypass;
            }
            if len > max || len < -1 {
                if long && len >= 0 {
                    return SockoptResult::Set {
                        level: given.level,
                        optname: given.optname,
                        optval: None,
                    };
                }
                return SockoptResult::Fault;
            }
            SockoptResult::Set {
                level: after.level,
                optname: after.optname,
                optval: (len != 0).then(bytes),
            }
        }
        SockoptHook::Get => {
            if len > max || len < 0 {
                if long && len >= 0 {
                    return SockoptResult::Get {
                        retval: given.retval,
                        optval: None,
                    };
                }
                return SockoptResult::Fault;
            }
            SockoptResult::Get {
                retval: after.retval,
                optval: (len != 0).then(bytes),
            }
        }
    }
}

impl Program {
    /// Runs a cgroup socket-option program ([`Context::CgroupSockopt`]) on `call`, made on the
    /// socket `sock` (which `bpf_sockopt.sk` points to, read-only; `ids.netns_cookie` is what
    /// `bpf_get_netns_cookie` answers). The outcome holds the call as the program left it and
    /// what the kernel does with it.
    pub fn run_sockopt(
        &mut self,
        call: &SockoptCall,
        sock: &BpfSock,
        ids: &SockIds,
    ) -> Result<SockoptOutcome, RunError> {
        let Context::CgroupSockopt(hook) = self.context() else {
            return Err(RunError::WrongContext {
                program: self.name().to_string(),
                expected: self.context().name(),
                got: "cgroup_sockopt",
            });
        };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&call.to_bytes());
        let sk = self.place_sock(sock);
        buf[..8].copy_from_slice(&sk.to_le_bytes());
        let filled = crate::context::fill_packet_fields(
            &mut buf,
            SOCKOPT_CTX_SIZE,
            off::OPTVAL,
            off::OPTVAL_END,
        );
        if let Err(source) = filled {
            self.buf = buf;
            return Err(RunError::Layout {
                program: self.name().to_string(),
                source,
            });
        }
        let (res, ()) = self.exec_with(
            &mut buf,
            |st| {
                st.sock.cookie = ids.cookie;
                st.sock.netns_cookie = ids.netns_cookie;
            },
            |_| (),
        );
        let mut after = call.clone();
        after.read_back(&buf);
        self.buf = buf;
        let code = res? as u32;
        Ok(SockoptOutcome {
            code,
            result: result(hook, call, &after, code),
            call: after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_writes_by_hook() {
        let writable = |h| -> Vec<u16> {
            sockopt_layout(h)
                .fields
                .iter()
                .filter(|f| f.writable)
                .map(|f| f.off)
                .collect()
        };
        assert_eq!(writable(SockoptHook::Set), [24, 28, 32]);
        assert_eq!(writable(SockoptHook::Get), [32, 36]);
        assert_eq!(sockopt_layout(SockoptHook::Set).fields.len(), 6);
        assert_eq!(sockopt_layout(SockoptHook::Get).return_range, Some((0, 1)));
    }

    #[test]
    fn the_kernel_reads_optlen_as_the_documentation_says() {
        let given = SockoptCall::set(6, 13, b"cubic\0");
        let with = |optlen: i32| SockoptCall {
            optlen,
            optval: b"reno\0\0".to_vec(),
            ..given.clone()
        };
        let set = SockoptHook::Set;
        assert_eq!(result(set, &given, &with(6), 0), SockoptResult::Refused);
        assert_eq!(result(set, &given, &with(-1), 1), SockoptResult::Bypass);
        assert_eq!(result(set, &given, &with(7), 1), SockoptResult::Fault);
        assert_eq!(result(set, &given, &with(-2), 1), SockoptResult::Fault);
        assert_eq!(
            result(set, &given, &with(5), 1),
            SockoptResult::Set {
                level: 6,
                optname: 13,
                optval: Some(b"reno\0".to_vec())
            }
        );
        assert!(matches!(
            result(set, &given, &with(0), 1),
            SockoptResult::Set { optval: None, .. }
        ));
        // A value past a page: an optlen past the page is ignored, not a fault.
        let long = SockoptCall::set(1, 2, &[0; 5000]);
        let mut after = long.clone();
        assert!(matches!(
            result(set, &long, &after, 1),
            SockoptResult::Set { optval: None, .. }
        ));
        after.optlen = -5;
        assert_eq!(result(set, &long, &after, 1), SockoptResult::Fault);
        let get = SockoptHook::Get;
        let g = SockoptCall::get(1, 7, &[1, 0, 0, 0], 8, 0);
        assert_eq!((g.optval.len(), g.optlen), (8, 4));
        let mut a = g.clone();
        a.optlen = -1;
        assert_eq!(result(get, &g, &a, 1), SockoptResult::Fault);
        a.optlen = 0;
        a.retval = -22;
        assert_eq!(
            result(get, &g, &a, 1),
            SockoptResult::Get {
                retval: -22,
                optval: None
            }
        );
        assert_eq!(result(get, &g, &a, 1).errno(), -22);
    }
}
