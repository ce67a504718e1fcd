//! `bpf_setsockopt` (49) and `bpf_getsockopt` (57): the subset of `setsockopt(2)` and
//! `getsockopt(2)` the kernel lets sock_ops programs and the IP cgroup socket-address hooks
//! call on their socket, over an option table ([`SockOptions`]) the embedder gives the program
//! and reads back after the run ([`crate::Program::set_sock_options`],
//! [`crate::Program::sock_options`]).
//!
//! The options, their checks and their return codes are the kernel's (`linux/bpf.h`'s helper
//! documentation and `setsockopt(2)`, `socket(7)`, `tcp(7)`, `ip(7)`, `ipv6(7)`):
//!
//! ```text
//! level             optname                       set                          get
//! SOL_SOCKET (1)    SO_REUSEADDR 2, SO_KEEPALIVE 9, SO_REUSEPORT 15           as set (0/1)
//!                   SO_SNDBUF 7 / SO_RCVBUF 8      2 × min(v, wmem/rmem_max),  the doubled size
//!                                                  at least 4608 / 2304
//!                   SO_PRIORITY 12, SO_MARK 36     any value (a program is privileged)
//!                   SO_RCVLOWAT 18                 v < 0: INT_MAX; capped; 0: 1
//!                   SO_MAX_PACING_RATE 47          0xffffffff: unlimited       min(rate, u32::MAX)
//!                   SO_TXREHASH 74                 -1..=1 (-1: the default, 1)
//!                   SO_BINDTOIFINDEX 62            v >= 0                      the index
//!                   SO_BINDTODEVICE 25             a name of SockOptions::interfaces ("" unbinds),
//!                                                  -ENODEV otherwise; any optlen   -EINVAL
//! IPPROTO_TCP (6)   TCP_NODELAY 1, TCP_MAXSEG 2 (0 or 88..=32767), TCP_KEEPIDLE 4 /
//! (TCP sockets)     TCP_KEEPINTVL 5 (1..=32767), TCP_KEEPCNT 6 / TCP_SYNCNT 7 (1..=127),
//!                   TCP_WINDOW_CLAMP 10, TCP_THIN_LINEAR_TIMEOUTS 16 (0/1), TCP_USER_TIMEOUT 18
//!                   (>= 0), TCP_NOTSENT_LOWAT 25, TCP_SAVE_SYN 27 (0..=2): set and get
//!                   TCP_CONGESTION 13              an available algorithm,     the name, NUL at
//!                                                  -ENOENT otherwise           optval[optlen-1]
//!                   TCP_BPF_IW 1001 (> 0, before data is sent), TCP_BPF_SNDCWND_CLAMP 1002 (> 0),
//!                   TCP_BPF_DELACK_MAX 1003 / TCP_BPF_RTO_MIN 1004 (usecs, 2 jiffies..HZ/5 at
//!                   HZ 1000): set only (get: -EINVAL)
//! IPPROTO_IP (0)    IP_TOS 1 (AF_INET sockets; a stream socket keeps its ECN bits)
//! IPPROTO_IPV6 (41) IPV6_TCLASS 67 (AF_INET6; -1..=255, -1 is 0; ECN bits kept as IP_TOS),
//!                   IPV6_AUTOFLOWLABEL 70
//! ```
//!
//! Every integer option takes exactly 4 bytes (`-EINVAL` otherwise); any other level or name
//! is `-EINVAL`, so is a socket that is not a full socket (sock_ops `is_fullsock` 0), and
//! sock_ops events past `BPF_SOCK_OPS_WRITE_HDR_OPT_CB` (the timestamping callbacks, which do
//! not hold the socket's lock) get `-EOPNOTSUPP`. `bpf_getsockopt` zeroes `optval` when it
//! fails. Not modelled: the saved SYN (`TCP_SAVED_SYN`, `TCP_BPF_SYN*`: `-EINVAL`) and the
//! receive buffer growth `SO_RCVLOWAT` may cause.

use crate::helpers::Cx;
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_setsockopt`.
pub const SETSOCKOPT: u32 = 49;
/// `bpf_getsockopt`.
pub const GETSOCKOPT: u32 = 57;

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `IPPROTO_TCP` (`SOL_TCP`).
pub const SOL_TCP: i32 = 6;
/// `IPPROTO_IP` (`SOL_IP`).
pub const SOL_IP: i32 = 0;
/// `IPPROTO_IPV6` (`SOL_IPV6`).
pub const SOL_IPV6: i32 = 41;

#[allow(missing_docs)]
pub mod optname {
    //! The option names `bpf_setsockopt` and `bpf_getsockopt` know (`asm-generic/socket.h`,
    //! `linux/tcp.h`, `linux/in.h`, `linux/in6.h`, `linux/bpf.h`).
    pub const SO_REUSEADDR: i32 = 2;
    pub const SO_SNDBUF: i32 = 7;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_KEEPALIVE: i32 = 9;
    pub const SO_PRIORITY: i32 = 12;
    pub const SO_REUSEPORT: i32 = 15;
    pub const SO_RCVLOWAT: i32 = 18;
    pub const SO_BINDTODEVICE: i32 = 25;
    pub const SO_MARK: i32 = 36;
    pub const SO_MAX_PACING_RATE: i32 = 47;
    pub const SO_BINDTOIFINDEX: i32 = 62;
    pub const SO_TXREHASH: i32 = 74;
    pub const TCP_NODELAY: i32 = 1;
    pub const TCP_MAXSEG: i32 = 2;
    pub const TCP_KEEPIDLE: i32 = 4;
    pub const TCP_KEEPINTVL: i32 = 5;
    pub const TCP_KEEPCNT: i32 = 6;
    pub const TCP_SYNCNT: i32 = 7;
    pub const TCP_WINDOW_CLAMP: i32 = 10;
    pub const TCP_CONGESTION: i32 = 13;
    pub const TCP_THIN_LINEAR_TIMEOUTS: i32 = 16;
    pub const TCP_USER_TIMEOUT: i32 = 18;
    pub const TCP_NOTSENT_LOWAT: i32 = 25;
    pub const TCP_SAVE_SYN: i32 = 27;
    pub const TCP_BPF_IW: i32 = 1001;
    pub const TCP_BPF_SNDCWND_CLAMP: i32 = 1002;
    pub const TCP_BPF_DELACK_MAX: i32 = 1003;
    pub const TCP_BPF_RTO_MIN: i32 = 1004;
    pub const IP_TOS: i32 = 1;
    pub const IPV6_TCLASS: i32 = 67;
    pub const IPV6_AUTOFLOWLABEL: i32 = 70;
}
use optname::*;

const EINVAL: i64 = -22;
const ENOENT: i64 = -2;
const ENODEV: i64 = -19;
const EOPNOTSUPP: i64 = -95;

/// `net.core.rmem_max` and `net.core.wmem_max` as current kernels default them (4 MiB): the
/// most `SO_RCVBUF` and `SO_SNDBUF` take (before doubling).
pub const SOCK_BUF_MAX: u32 = 4 << 20;
/// `SOCK_MIN_SNDBUF`: the least send buffer (`2 × (2048 + the aligned sk_buff)`).
pub const SOCK_MIN_SNDBUF: i32 = 4608;
/// `SOCK_MIN_RCVBUF`: the least receive buffer.
pub const SOCK_MIN_RCVBUF: i32 = 2304;
/// `net.ipv4.tcp_rmem[2]` as current kernels default it: the receive buffer `SO_RCVLOWAT`
/// is capped by (half of it) while `SO_RCVBUF` was never set.
pub const TCP_RMEM_MAX: i32 = 32 << 20;
/// `TCP_MSS_DEFAULT`: a TCP socket's `mss_cache` before it connects.
pub const TCP_MSS_DEFAULT: u32 = 536;
/// TCP's states (`BPF_TCP_*`) bpfx's rules look at.
const TCP_ESTABLISHED: u32 = 1;
pub(crate) const TCP_CLOSE: u32 = 7;
const TCP_LISTEN: u32 = 10;
/// `BPF_SOCK_OPS_WRITE_HDR_OPT_CB`: the last sock_ops event that holds the socket's lock.
const SOCK_OPS_LAST_LOCKED: u32 = 15;

/// The options of the socket a sock_ops or cgroup socket-address program runs for: what
/// `bpf_getsockopt` reads and `bpf_setsockopt` changes. [`SockOptions::default`] is a new TCP
/// socket as current kernels make it (default sysctls); the embedder describes its socket by
/// changing fields before the run, and reads the program's changes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockOptions {
    /// `SO_RCVBUF` (`sk_rcvbuf`, the doubled size).
    pub rcvbuf: i32,
    /// `SO_SNDBUF` (`sk_sndbuf`, the doubled size).
    pub sndbuf: i32,
    /// Whether `SO_RCVBUF` was set (`SOCK_RCVBUF_LOCK`: `SO_RCVLOWAT` is capped by half the
    /// receive buffer then, by half of [`TCP_RMEM_MAX`] otherwise).
    pub rcvbuf_locked: bool,
    /// `SO_MARK`.
    pub mark: u32,
    /// `SO_PRIORITY`.
    pub priority: u32,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
    /// `SO_REUSEADDR`.
    pub reuseaddr: bool,
    /// `SO_REUSEPORT`.
    pub reuseport: bool,
    /// `SO_MAX_PACING_RATE` (bytes per second; `u64::MAX` unlimited).
    pub max_pacing_rate: u64,
    /// `SO_RCVLOWAT`.
    pub rcvlowat: i32,
    /// `SO_TXREHASH` (0 or 1).
    pub txrehash: u8,
    /// The device the socket is bound to (`SO_BINDTODEVICE`, `SO_BINDTOIFINDEX`; 0 none).
    pub bound_dev_if: u32,
    /// The network devices `SO_BINDTODEVICE` finds by name: (name, ifindex).
    pub interfaces: Vec<(String, u32)>,
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `TCP_MAXSEG` as set (`user_mss`, 0 none).
    pub user_mss: u32,
    /// `TCP_KEEPIDLE` (seconds).
    pub keepidle: u32,
    /// `TCP_KEEPINTVL` (seconds).
    pub keepintvl: u32,
    /// `TCP_KEEPCNT`.
    pub keepcnt: u32,
    /// `TCP_SYNCNT`.
    pub syncnt: u32,
    /// `TCP_WINDOW_CLAMP`.
    pub window_clamp: u32,
    /// `TCP_THIN_LINEAR_TIMEOUTS`.
    pub thin_linear_timeouts: bool,
    /// `TCP_USER_TIMEOUT` (milliseconds).
    pub user_timeout: u32,
    /// `TCP_NOTSENT_LOWAT` (0: the sysctl's).
    pub notsent_lowat: u32,
    /// `TCP_SAVE_SYN` (0 to 2).
    pub save_syn: u8,
    /// `TCP_CONGESTION`: the socket's congestion control algorithm.
    pub congestion: String,
    /// The congestion control algorithms the kernel has registered (`TCP_CONGESTION` names
    /// one of them or fails with `-ENOENT`: a program cannot load a module).
    pub congestion_available: Vec<String>,
    /// The congestion window `TCP_BPF_IW` set (`snd_cwnd`), if it did.
    pub snd_cwnd: Option<u32>,
    /// `TCP_BPF_SNDCWND_CLAMP` (`snd_cwnd_clamp`, which also became `snd_ssthresh`), if set.
    pub snd_cwnd_clamp: Option<u32>,
    /// `TCP_BPF_DELACK_MAX` (microseconds), if set.
    pub delack_max_us: Option<u32>,
    /// `TCP_BPF_RTO_MIN` (microseconds), if set.
    pub rto_min_us: Option<u32>,
    /// `IP_TOS`.
    pub tos: u8,
    /// `IPV6_TCLASS`.
    pub tclass: u8,
    /// `IPV6_AUTOFLOWLABEL`.
    pub autoflowlabel: bool,
}

impl Default for SockOptions {
    fn default() -> SockOptions {
        SockOptions {
            rcvbuf: 131_072,
            sndbuf: 16_384,
            rcvbuf_locked: false,
            mark: 0,
            priority: 0,
            keepalive: false,
            reuseaddr: false,
            reuseport: false,
            max_pacing_rate: u64::MAX,
            rcvlowat: 1,
            txrehash: 1,
            bound_dev_if: 0,
            interfaces: vec![("lo".to_string(), 1)],
            nodelay: false,
            user_mss: 0,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            syncnt: 6,
            window_clamp: 0,
            thin_linear_timeouts: false,
            user_timeout: 0,
            notsent_lowat: 0,
            save_syn: 0,
            congestion: "cubic".to_string(),
            congestion_available: vec!["reno".to_string(), "cubic".to_string()],
            snd_cwnd: None,
            snd_cwnd_clamp: None,
            delack_max_us: None,
            rto_min_us: None,
            tos: 0,
            tclass: 0,
            autoflowlabel: true,
        }
    }
}

/// The socket the helpers of one run act on: its options, and what the context says of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SockOptRun {
    /// The options (kept across runs: the next run's socket unless the embedder sets them).
    pub(crate) opts: SockOptions,
    /// `AF_INET` 2 or `AF_INET6` 10 (others refuse the IP levels).
    pub(crate) family: u32,
    /// `SOCK_STREAM` 1, `SOCK_DGRAM` 2, …
    pub(crate) sock_type: u32,
    /// `IPPROTO_TCP` 6, …
    pub(crate) protocol: u32,
    /// TCP's state (`BPF_TCP_*`).
    pub(crate) state: u32,
    /// `mss_cache` (what `TCP_MAXSEG` reads once connected).
    pub(crate) mss_cache: u32,
    /// Segments with data sent so far (`TCP_BPF_IW` fails after the first).
    pub(crate) data_segs_out: u32,
    /// Whether the socket is a full socket (the helpers fail with `-EINVAL` otherwise).
    pub(crate) fullsock: bool,
    /// The sock_ops event, for sock_ops runs (`None` otherwise).
    pub(crate) op: Option<u32>,
}

impl SockOptRun {
    /// The socket of a cgroup socket-address run at `hook` (a full socket before its call,
    /// closed for every hook but `getpeername`, which has a peer: established).
    pub(crate) fn for_sock_addr(hook: crate::SockAddrHook, addr: &[u8], opts: SockOptions) -> Self {
        let word = |off: usize| {
            u32::from_le_bytes([addr[off], addr[off + 1], addr[off + 2], addr[off + 3]])
        };
        let peer = matches!(
            hook,
            crate::SockAddrHook::GetPeerName4 | crate::SockAddrHook::GetPeerName6
        );
        SockOptRun {
            opts,
            family: word(28),
            sock_type: word(32),
            protocol: word(36),
            state: if peer { TCP_ESTABLISHED } else { TCP_CLOSE },
            mss_cache: TCP_MSS_DEFAULT,
            data_segs_out: 0,
            fullsock: true,
            op: None,
        }
    }

    /// The socket of a sock_ops run on `ops`: a TCP stream socket.
    pub(crate) fn for_sock_ops(ops: &crate::SockOps, opts: SockOptions) -> Self {
        SockOptRun {
            opts,
            family: ops.family,
            sock_type: 1,
            protocol: 6,
            state: ops.tcp[3],
            mss_cache: ops.tcp[9],
            data_segs_out: ops.tcp[19],
            fullsock: ops.is_fullsock,
            op: Some(ops.op),
        }
    }
}

/// The context argument (`ArgKind::Ctx`): the verifier refuses any other pointer, and a
/// value Checked mode could not tell fails here.
fn ctx_arg(mem: &GuestMemory<'_>, a: u64, what: &str) -> Result<(), HelperError> {
    let size = if crate::helpers::run_state_ref(mem)?.sock.opt.op.is_some() {
        crate::sock::SOCK_OPS_SIZE
    } else {
        crate::sock::SOCK_ADDR_SIZE
    };
    if mem.input.offset_of(a, size) != Some(0) {
        return Err(HelperError(format!(
            "{what}: the first argument is not the context"
        )));
    }
    Ok(())
}

/// `setsockopt(ctx, level, optname, optval, optlen)`.
pub(crate) fn setsockopt(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    ctx_arg(mem, a[0], "setsockopt")?;
    let optlen = a[4] as i32;
    let len = usize::try_from(optlen).unwrap_or(0);
    let val = mem
        .read(a[3], len)
        .ok_or_else(|| HelperError("setsockopt: cannot read optval".into()))?;
    let st = crate::helpers::run_state(mem)?;
    let ret = set(&mut st.sock.opt, a[1] as i32, a[2] as i32, &val, optlen);
    let (cwnd, clamp) = (st.sock.opt.opts.snd_cwnd, st.sock.opt.opts.snd_cwnd_clamp);
    // sock_ops reads `snd_cwnd` and `snd_ssthresh` from the socket: the program sees what
    // `TCP_BPF_IW` and `TCP_BPF_SNDCWND_CLAMP` set from then on.
    if ret == 0 && st.sock.opt.op.is_some() {
        let (off, v) = match a[2] as i32 {
            TCP_BPF_IW => (76, cwnd),
            TCP_BPF_SNDCWND_CLAMP => (96, clamp),
            _ => (0, None),
        };
        if let Some(v) = v {
            mem.write(a[0] + off, &v.to_le_bytes())
                .ok_or_else(|| HelperError("setsockopt: cannot write the context".into()))?;
        }
    }
    Ok(ret as u64)
}

/// `getsockopt(ctx, level, optname, optval, optlen)`: `optval` zeroed on failure.
pub(crate) fn getsockopt(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    ctx_arg(mem, a[0], "getsockopt")?;
    let optlen = a[4] as i32;
    let len = usize::try_from(optlen).unwrap_or(0);
    // The bytes past what the option fills are the program's, as they were.
    let mut out = mem
        .read(a[3], len)
        .ok_or_else(|| HelperError("getsockopt: cannot read optval".into()))?;
    let st = crate::helpers::run_state_ref(mem)?;
    let ret = get(&st.sock.opt, a[1] as i32, a[2] as i32, &mut out);
    if ret != 0 {
        out.fill(0);
    }
    mem.write(a[3], &out)
        .ok_or_else(|| HelperError("getsockopt: cannot write optval".into()))?;
    Ok(ret as u64)
}

/// The checks both helpers make before the level's: `Err(code)` to return.
fn common(s: &SockOptRun) -> Result<(), i64> {
    if s.op.is_some_and(|op| op > SOCK_OPS_LAST_LOCKED) {
        return Err(EOPNOTSUPP);
    }
    if !s.fullsock {
        return Err(EINVAL);
    }
    Ok(())
}

fn int_of(val: &[u8]) -> i32 {
    i32::from_le_bytes([val[0], val[1], val[2], val[3]])
}

/// `bpf_setsockopt`'s answer (0 or a negative errno) and its change to `s`.
fn set(s: &mut SockOptRun, level: i32, name: i32, val: &[u8], optlen: i32) -> i64 {
    if let Err(e) = common(s) {
        return e;
    }
    match level {
        SOL_SOCKET => set_socket(s, name, val, optlen),
        SOL_TCP => set_tcp(s, name, val, optlen),
        SOL_IP | SOL_IPV6 => {
            let ok = match (level, name) {
                (SOL_IP, IP_TOS) => s.family == 2,
                (SOL_IPV6, IPV6_TCLASS | IPV6_AUTOFLOWLABEL) => s.family == 10,
                _ => false,
            };
            if !ok || optlen != 4 {
                return EINVAL;
            }
            let v = int_of(val);
            let stream = s.sock_type == 1;
            let o = &mut s.opts;
            match name {
                IP_TOS if level == SOL_IP => o.tos = keep_ecn(v as u8, o.tos, stream),
                IPV6_TCLASS => {
                    if !(-1..=0xff).contains(&v) {
                        return EINVAL;
                    }
                    o.tclass = keep_ecn(v.max(0) as u8, o.tclass, stream);
                }
                _ => o.autoflowlabel = v != 0,
            }
            0
        }
        _ => EINVAL,
    }
}

/// A stream socket's ECN bits are TCP's: the new TOS keeps the old ones.
fn keep_ecn(new: u8, old: u8, stream: bool) -> u8 {
    if stream { (new & !3) | (old & 3) } else { new }
}

fn set_socket(s: &mut SockOptRun, name: i32, val: &[u8], optlen: i32) -> i64 {
    let o = &mut s.opts;
    if name == SO_BINDTODEVICE {
        if optlen < 0 {
            return EINVAL;
        }
        let n = usize::try_from(optlen).unwrap_or(0).min(15);
        let raw = &val[..n.min(val.len())];
        let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        if name.is_empty() {
            o.bound_dev_if = 0;
            return 0;
        }
        return match o.interfaces.iter().find(|(n, _)| n.as_bytes() == name) {
            Some(&(_, ifindex)) => {
                o.bound_dev_if = ifindex;
                0
            }
            None => ENODEV,
        };
    }
    if !is_socket_int(name) || optlen != 4 {
        return EINVAL;
    }
    let v = int_of(val);
    match name {
        SO_REUSEADDR => o.reuseaddr = v != 0,
        SO_KEEPALIVE => o.keepalive = v != 0,
        SO_REUSEPORT => o.reuseport = v != 0,
        SO_SNDBUF => {
            let v = (v as u32).min(SOCK_BUF_MAX) as i32;
            o.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
        }
        SO_RCVBUF => {
            let v = (v as u32).min(SOCK_BUF_MAX) as i32;
            o.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
            o.rcvbuf_locked = true;
        }
        SO_PRIORITY => o.priority = v as u32,
        SO_MARK => o.mark = v as u32,
        SO_RCVLOWAT => {
            let v = if v < 0 { i32::MAX } else { v };
            let v = if s.protocol == 6 {
                let cap = if o.rcvbuf_locked {
                    o.rcvbuf >> 1
                } else {
                    TCP_RMEM_MAX >> 1
                };
                v.min(cap)
            } else {
                v
            };
            o.rcvlowat = v.max(1);
        }
        SO_MAX_PACING_RATE => {
            o.max_pacing_rate = if v == -1 {
                u64::MAX
            } else {
                u64::from(v as u32)
            }
        }
        SO_TXREHASH => {
            if !(-1..=1).contains(&v) {
                return EINVAL;
            }
            // -1 is the namespace's default (`net.core.txrehash`, 1).
            o.txrehash = if v == -1 { 1 } else { v as u8 };
        }
        SO_BINDTOIFINDEX => {
            if v < 0 {
                return EINVAL;
            }
            o.bound_dev_if = v as u32;
        }
        _ => return EINVAL,
    }
    0
}

fn is_socket_int(name: i32) -> bool {
    matches!(
        name,
        SO_REUSEADDR
            | SO_SNDBUF
            | SO_RCVBUF
            | SO_KEEPALIVE
            | SO_PRIORITY
            | SO_REUSEPORT
            | SO_RCVLOWAT
            | SO_MARK
            | SO_MAX_PACING_RATE
            | SO_BINDTOIFINDEX
            | SO_TXREHASH
    )
}

fn is_tcp_int(name: i32) -> bool {
    matches!(
        name,
        TCP_NODELAY
            | TCP_MAXSEG
            | TCP_KEEPIDLE
            | TCP_KEEPINTVL
            | TCP_KEEPCNT
            | TCP_SYNCNT
            | TCP_WINDOW_CLAMP
            | TCP_THIN_LINEAR_TIMEOUTS
            | TCP_USER_TIMEOUT
            | TCP_NOTSENT_LOWAT
            | TCP_SAVE_SYN
    )
}

fn set_tcp(s: &mut SockOptRun, name: i32, val: &[u8], optlen: i32) -> i64 {
    if s.protocol != 6 {
        return EINVAL;
    }
    let o = &mut s.opts;
    if name == TCP_CONGESTION {
        if optlen < 1 {
            return EINVAL;
        }
        // At most TCP_CA_NAME_MAX - 1 bytes, up to a NUL.
        let raw = &val[..(optlen as usize).min(15).min(val.len())];
        let want = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        return match o.congestion_available.iter().find(|n| n.as_bytes() == want) {
            Some(n) => {
                o.congestion = n.clone();
                0
            }
            None => ENOENT,
        };
    }
    if optlen != 4 {
        return EINVAL;
    }
    let v = int_of(val);
    let in_range = |lo: i32, hi: i32| (lo..=hi).contains(&v);
    match name {
        TCP_NODELAY => o.nodelay = v != 0,
        TCP_MAXSEG => {
            if v != 0 && !in_range(88, 32767) {
                return EINVAL;
            }
            o.user_mss = v as u32;
        }
        TCP_KEEPIDLE | TCP_KEEPINTVL => {
            if !in_range(1, 32767) {
                return EINVAL;
            }
            if name == TCP_KEEPIDLE {
                o.keepidle = v as u32;
            } else {
                o.keepintvl = v as u32;
            }
        }
        TCP_KEEPCNT | TCP_SYNCNT => {
            if !in_range(1, 127) {
                return EINVAL;
            }
            if name == TCP_KEEPCNT {
                o.keepcnt = v as u32;
            } else {
                o.syncnt = v as u32;
            }
        }
        TCP_WINDOW_CLAMP => {
            if v == 0 {
                if s.state != TCP_CLOSE {
                    return EINVAL;
                }
                o.window_clamp = 0;
            } else {
                // Compared unsigned, as the kernel's size constant makes it.
                o.window_clamp = (v as u32).max(SOCK_MIN_RCVBUF as u32 / 2);
            }
        }
        TCP_THIN_LINEAR_TIMEOUTS => {
            if !in_range(0, 1) {
                return EINVAL;
            }
            o.thin_linear_timeouts = v == 1;
        }
        TCP_USER_TIMEOUT => {
            if v < 0 {
                return EINVAL;
            }
            o.user_timeout = v as u32;
        }
        TCP_NOTSENT_LOWAT => o.notsent_lowat = v as u32,
        TCP_SAVE_SYN => {
            if !in_range(0, 2) {
                return EINVAL;
            }
            o.save_syn = v as u8;
        }
        TCP_BPF_IW => {
            if v <= 0 || s.data_segs_out > 0 {
                return EINVAL;
            }
            o.snd_cwnd = Some(v as u32);
        }
        TCP_BPF_SNDCWND_CLAMP => {
            if v <= 0 {
                return EINVAL;
            }
            o.snd_cwnd_clamp = Some(v as u32);
        }
        TCP_BPF_DELACK_MAX | TCP_BPF_RTO_MIN => {
            // usecs_to_jiffies at HZ 1000 (rounded up) must lie in [TCP_TIMEOUT_MIN (2),
            // HZ / 5]: the usecs are taken unsigned.
            let jiffies = (v as u32).div_ceil(1000);
            if !(2..=200).contains(&jiffies) {
                return EINVAL;
            }
            if name == TCP_BPF_DELACK_MAX {
                o.delack_max_us = Some(v as u32);
            } else {
                o.rto_min_us = Some(v as u32);
            }
        }
        _ => return EINVAL,
    }
    0
}

/// `bpf_getsockopt`'s answer, `out` (`optlen` bytes, the program's) filled on success.
fn get(s: &SockOptRun, level: i32, name: i32, out: &mut [u8]) -> i64 {
    if let Err(e) = common(s) {
        return e;
    }
    let o = &s.opts;
    let optlen = out.len();
    let v: i32 = match level {
        SOL_SOCKET => {
            if !is_socket_int(name) || optlen != 4 {
                return EINVAL;
            }
            match name {
                SO_REUSEADDR => i32::from(o.reuseaddr),
                SO_KEEPALIVE => i32::from(o.keepalive),
                SO_REUSEPORT => i32::from(o.reuseport),
                SO_SNDBUF => o.sndbuf,
                SO_RCVBUF => o.rcvbuf,
                SO_PRIORITY => o.priority as i32,
                SO_MARK => o.mark as i32,
                SO_RCVLOWAT => o.rcvlowat,
                SO_MAX_PACING_RATE => o.max_pacing_rate.min(u64::from(u32::MAX)) as u32 as i32,
                SO_TXREHASH => i32::from(o.txrehash),
                _ => o.bound_dev_if as i32,
            }
        }
        SOL_TCP => {
            if s.protocol != 6 {
                return EINVAL;
            }
            if name == TCP_CONGESTION {
                if optlen < 1 {
                    return EINVAL;
                }
                // The name's TCP_CA_NAME_MAX (16) bytes, NUL-padded, cut to optlen - 1; the
                // last byte a NUL.
                let mut name16 = [0u8; 16];
                let n = o.congestion.len().min(16);
                name16[..n].copy_from_slice(&o.congestion.as_bytes()[..n]);
                let k = (optlen - 1).min(16);
                out[..k].copy_from_slice(&name16[..k]);
                out[optlen - 1] = 0;
                return 0;
            }
            if !is_tcp_int(name) || optlen != 4 {
                return EINVAL;
            }
            match name {
                TCP_NODELAY => i32::from(o.nodelay),
                TCP_MAXSEG => {
                    if o.user_mss != 0 && matches!(s.state, TCP_CLOSE | TCP_LISTEN) {
                        o.user_mss as i32
                    } else {
                        s.mss_cache as i32
                    }
                }
                TCP_KEEPIDLE => o.keepidle as i32,
                TCP_KEEPINTVL => o.keepintvl as i32,
                TCP_KEEPCNT => o.keepcnt as i32,
                TCP_SYNCNT => o.syncnt as i32,
                TCP_WINDOW_CLAMP => o.window_clamp as i32,
                TCP_THIN_LINEAR_TIMEOUTS => i32::from(o.thin_linear_timeouts),
                TCP_USER_TIMEOUT => o.user_timeout as i32,
                TCP_NOTSENT_LOWAT => o.notsent_lowat as i32,
                _ => i32::from(o.save_syn),
            }
        }
        SOL_IP if name == IP_TOS && s.family == 2 && optlen == 4 => i32::from(o.tos),
        SOL_IPV6 if s.family == 10 && optlen == 4 => match name {
            IPV6_TCLASS => i32::from(o.tclass),
            IPV6_AUTOFLOWLABEL => i32::from(o.autoflowlabel),
            _ => return EINVAL,
        },
        _ => return EINVAL,
    };
    out.copy_from_slice(&v.to_le_bytes());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4() -> SockOptRun {
        SockOptRun {
            opts: SockOptions::default(),
            family: 2,
            sock_type: 1,
            protocol: 6,
            state: TCP_CLOSE,
            mss_cache: TCP_MSS_DEFAULT,
            data_segs_out: 0,
            fullsock: true,
            op: None,
        }
    }

    fn set_int(s: &mut SockOptRun, level: i32, name: i32, v: i32) -> i64 {
        set(s, level, name, &v.to_le_bytes(), 4)
    }

    fn get_int(s: &SockOptRun, level: i32, name: i32) -> (i64, i32) {
        let mut out = [0xaau8; 4];
        let r = get(s, level, name, &mut out);
        (r, i32::from_le_bytes(out))
    }

    #[test]
    fn buffers_double_clamp_and_floor() {
        let mut s = tcp4();
        assert_eq!(set_int(&mut s, SOL_SOCKET, SO_SNDBUF, 1000), 0);
        assert_eq!(get_int(&s, SOL_SOCKET, SO_SNDBUF), (0, SOCK_MIN_SNDBUF));
        assert_eq!(set_int(&mut s, SOL_SOCKET, SO_RCVBUF, -1), 0);
        assert_eq!(get_int(&s, SOL_SOCKET, SO_RCVBUF), (0, 8 << 20));
        assert_eq!(set_int(&mut s, SOL_SOCKET, SO_RCVLOWAT, -5), 0);
        assert_eq!(s.opts.rcvlowat, 4 << 20);
        assert_eq!(set(&mut s, SOL_SOCKET, SO_MARK, &[1, 2], 2), EINVAL);
    }

    #[test]
    fn tcp_ranges_and_congestion() {
        let mut s = tcp4();
        assert_eq!(set_int(&mut s, SOL_TCP, TCP_KEEPCNT, 128), EINVAL);
        assert_eq!(set_int(&mut s, SOL_TCP, TCP_MAXSEG, 87), EINVAL);
        assert_eq!(set_int(&mut s, SOL_TCP, TCP_MAXSEG, 1400), 0);
        assert_eq!(get_int(&s, SOL_TCP, TCP_MAXSEG), (0, 1400));
        s.state = TCP_ESTABLISHED;
        assert_eq!(get_int(&s, SOL_TCP, TCP_MAXSEG), (0, 536));
        assert_eq!(set(&mut s, SOL_TCP, TCP_CONGESTION, b"reno\0xx", 7), 0);
        assert_eq!(s.opts.congestion, "reno");
        assert_eq!(set(&mut s, SOL_TCP, TCP_CONGESTION, b"bbr", 3), ENOENT);
        let mut out = [0xffu8; 4];
        assert_eq!(get(&s, SOL_TCP, TCP_CONGESTION, &mut out), 0);
        assert_eq!(&out, b"ren\0");
        assert_eq!(get_int(&s, SOL_TCP, TCP_BPF_IW).0, EINVAL);
        s.data_segs_out = 1;
        assert_eq!(set_int(&mut s, SOL_TCP, TCP_BPF_IW, 10), EINVAL);
        s.protocol = 17;
        assert_eq!(set_int(&mut s, SOL_TCP, TCP_NODELAY, 1), EINVAL);
    }

    #[test]
    fn ip_levels_follow_the_family_and_keep_ecn() {
        let mut s = tcp4();
        s.opts.tos = 2;
        assert_eq!(set_int(&mut s, SOL_IP, IP_TOS, 0x11), 0);
        assert_eq!(s.opts.tos, 0x12);
        assert_eq!(set_int(&mut s, SOL_IPV6, IPV6_TCLASS, 1), EINVAL);
        s.family = 10;
        assert_eq!(set_int(&mut s, SOL_IPV6, IPV6_TCLASS, 256), EINVAL);
        assert_eq!(set_int(&mut s, SOL_IPV6, IPV6_TCLASS, -1), 0);
        assert_eq!(get_int(&s, SOL_IP, IP_TOS).0, EINVAL);
        s.op = Some(16);
        assert_eq!(set_int(&mut s, SOL_SOCKET, SO_MARK, 1), EOPNOTSUPP);
        s.op = Some(4);
        s.fullsock = false;
        assert_eq!(get_int(&s, SOL_SOCKET, SO_MARK).0, EINVAL);
    }
}
