//! The XDP packet helpers and `redirect`, with the kernel's semantics and errnos (documented in
//! `/usr/include/linux/bpf.h`; limits as `net/core/filter.c` applies them):
//!
//! - `xdp_adjust_head(ctx, delta)` (44) moves `data` by `delta`: down into the headroom as far
//!   as the metadata (which moves with it) and the reserved head ([`XDP_FRAME_RESERVED`])
//!   allow, up as long as [`ETH_HLEN`] bytes stay; `-EINVAL` otherwise.
//! - `xdp_adjust_meta(ctx, delta)` (54) moves `data_meta` by `delta`, between the reserved head
//!   and `data` (`-EINVAL` otherwise), leaving a metadata area of a multiple of 4 bytes, at
//!   most [`XDP_META_MAX`] (`-EACCES` otherwise, the kernel's answer).
//! - `xdp_adjust_tail(ctx, delta)` (65) moves `data_end` by `delta`: up into the tailroom
//!   (the new bytes zeroed), down as long as [`ETH_HLEN`] bytes stay; `-EINVAL` otherwise.
//! - `xdp_get_buff_len(ctx)` (188): the frame's length (`data_end - data`: bpfx's frames
//!   have no fragments).
//! - `xdp_load_bytes(ctx, offset, buf, len)` (189) and `xdp_store_bytes(ctx, offset, buf,
//!   len)` (190) copy `len` bytes between `buf` and the frame at `data + offset`: `-EFAULT`
//!   when `offset` or `len` is past 0xffff, `-EINVAL` when the bytes are not all in the frame
//!   (a failed load leaves `buf` zeroed, where the kernel leaves it as it was: the verifier
//!   lets the program read it either way).
//! - `redirect(ifindex, flags)` (23): from XDP, flags must be 0 (else `XDP_ABORTED`), and it
//!   returns `XDP_REDIRECT`; from TC, flags may hold `BPF_F_INGRESS` only (else
//!   `TC_ACT_SHOT`), and it returns `TC_ACT_REDIRECT`. The target is recorded
//!   ([`RedirectTarget::Ifindex`]), replacing any earlier `redirect` or `redirect_map` of the
//!   run, as the kernel's per-CPU redirect record does.
//! - `redirect_neigh(ifindex, params, plen, flags)` (152, TC only): `flags` must be 0 and
//!   `plen` 0 or at least `sizeof(struct bpf_redir_neigh)` (20), else `TC_ACT_SHOT`; returns
//!   `TC_ACT_REDIRECT` and records an egress redirect to `ifindex`
//!   ([`RedirectTarget::Ifindex`] with `ingress` false). The kernel resolves the neighbour
//!   (through `params`' next hop when given) after the program returns, as it transmits; a
//!   test run shows the frame as the program left it, and so does bpfx, which has no devices.
//! - `redirect_peer(ifindex, flags)` (155, TC only): `flags` must be 0, else `TC_ACT_SHOT`;
//!   returns `TC_ACT_REDIRECT` and records a redirect to the peer of `ifindex`
//!   ([`RedirectTarget::Peer`]). The kernel checks the device (a veth or netkit whose peer is
//!   in another namespace) and the hook (ingress only) after the program returns, dropping
//!   the packet when they do not fit; the helper's answer does not depend on them.
//!
//! The adjust helpers move the packet, so their signatures say so
//! ([`bpfx_verifier::HelperSig::changes_packet`]): the verifier forgets every packet pointer
//! the program held. They work on the run's record of the frame ([`XdpFrame`], kept by the
//! host, never read back from the guest-writable context) and write the new pointers into the
//! context struct through [`GuestMemory`], so both engines share them. Called outside an XDP
//! run (where the kernel refuses the program at load), they fail the run.

use crate::context::Context;
use crate::helpers::{Cx, RedirectTarget, run_state};
use crate::packet::{ETH_HLEN, XDP_FRAME_RESERVED, XDP_META_MAX};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_redirect`.
pub const REDIRECT: u32 = 23;
/// `BPF_FUNC_redirect_neigh`.
pub const REDIRECT_NEIGH: u32 = 152;
/// `BPF_FUNC_redirect_peer`.
pub const REDIRECT_PEER: u32 = 155;
/// `sizeof(struct bpf_redir_neigh)`: `nh_family` and a 16-byte address union.
const REDIR_NEIGH_SIZE: u64 = 20;
/// `bpf_xdp_adjust_head`.
pub const XDP_ADJUST_HEAD: u32 = 44;
/// `bpf_xdp_adjust_meta`.
pub const XDP_ADJUST_META: u32 = 54;
/// `bpf_xdp_adjust_tail`.
pub const XDP_ADJUST_TAIL: u32 = 65;

/// `bpf_xdp_get_buff_len`.
pub const XDP_GET_BUFF_LEN: u32 = 188;
/// `bpf_xdp_load_bytes`.
pub const XDP_LOAD_BYTES: u32 = 189;
/// `bpf_xdp_store_bytes`.
pub const XDP_STORE_BYTES: u32 = 190;

/// `BPF_F_INGRESS` (`redirect` from TC): to the device's ingress instead of its egress.
pub const BPF_F_INGRESS: u64 = 1;

const EINVAL: u64 = (-22i64) as u64;
const EACCES: u64 = (-13i64) as u64;
const EFAULT: u64 = (-14i64) as u64;
const XDP_ABORTED: u64 = 0;
const XDP_REDIRECT: u64 = 4;
const TC_ACT_SHOT: u64 = 2;
const TC_ACT_REDIRECT: u64 = 7;

/// Offsets of the pointers in bpfx's XDP context struct (see `context.rs`).
const CTX_DATA: u64 = 0;
const CTX_DATA_END: u64 = 8;
const CTX_DATA_META: u64 = 16;

/// Where the frame of the running XDP program is, as guest addresses: the host's record,
/// which the adjust helpers check and move and the run reads back at its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct XdpFrame {
    /// Whether an XDP run with a packet buffer is under way.
    pub(crate) active: bool,
    /// The context struct's address (what r1 holds at entry).
    pub(crate) ctx: u64,
    /// The buffer's first byte (the headroom's start).
    pub(crate) hard_start: u64,
    /// One past the buffer's last byte (the tailroom's end).
    pub(crate) hard_end: u64,
    /// `data_meta`, `data`, `data_end`.
    pub(crate) meta: u64,
    pub(crate) data: u64,
    pub(crate) data_end: u64,
    /// The last helper that moved `data` or `data_end`.
    pub(crate) moved_by: Option<&'static str>,
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// The signed delta argument (the kernel's `int`).
fn delta(a: u64) -> i64 {
    i64::from(a as u32 as i32)
}

/// `addr + d` when it stays a plausible address.
fn moved(addr: u64, d: i64) -> Option<u64> {
    addr.checked_add_signed(d)
}

/// The running frame, checked to belong to an XDP run whose context `ctx` is.
fn frame(mem: &mut GuestMemory<'_>, ctx: u64, name: &str) -> Result<XdpFrame, HelperError> {
    let f = run_state(mem)?.frame;
    if !f.active {
        return Err(err(format!(
            "{name} needs an XDP program run on a packet buffer"
        )));
    }
    if ctx != f.ctx {
        return Err(err(format!(
            "{name}: r1 ({ctx:#x}) is not the XDP context ({:#x})",
            f.ctx
        )));
    }
    Ok(f)
}

/// Writes the context pointer at `off` and records `f` as the run's frame.
fn commit(
    mem: &mut GuestMemory<'_>,
    f: XdpFrame,
    fields: &[(u64, u64)],
    name: &str,
) -> Result<u64, HelperError> {
    for &(off, value) in fields {
        mem.store(f.ctx + off, 8, value)
            .ok_or_else(|| err(format!("{name}: cannot write the context")))?;
    }
    run_state(mem)?.frame = f;
    Ok(0)
}

/// `xdp_get_buff_len(ctx)`.
pub(crate) fn xdp_get_buff_len(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let f = frame(mem, a[0], "xdp_get_buff_len")?;
    Ok(f.data_end - f.data)
}

/// The frame address of `len` bytes at `offset` for `xdp_load_bytes`/`xdp_store_bytes`, or
/// the errno the kernel answers.
fn frame_bytes(f: &XdpFrame, offset: u64, len: u64) -> Result<u64, u64> {
    if offset > 0xffff || len > 0xffff {
        return Err(EFAULT);
    }
    if offset + len > f.data_end - f.data {
        return Err(EINVAL);
    }
    Ok(f.data + offset)
}

/// `xdp_load_bytes(ctx, offset, buf, len)`.
pub(crate) fn xdp_load_bytes(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "xdp_load_bytes";
    let f = frame(mem, a[0], NAME)?;
    let len = a[3] & 0xffff_ffff;
    let (bytes, ret) = match frame_bytes(&f, a[1] & 0xffff_ffff, len) {
        Ok(at) => (
            mem.read(at, len as usize)
                .ok_or_else(|| err(format!("{NAME}: cannot read the frame")))?,
            0,
        ),
        Err(errno) => (vec![0; len as usize], errno),
    };
    mem.write(a[2], &bytes)
        .ok_or_else(|| err(format!("{NAME}: cannot write the buffer")))?;
    Ok(ret)
}

/// `xdp_store_bytes(ctx, offset, buf, len)`.
pub(crate) fn xdp_store_bytes(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "xdp_store_bytes";
    let f = frame(mem, a[0], NAME)?;
    let len = a[3] & 0xffff_ffff;
    let at = match frame_bytes(&f, a[1] & 0xffff_ffff, len) {
        Ok(at) => at,
        Err(errno) => return Ok(errno),
    };
    let bytes = mem
        .read(a[2], len as usize)
        .ok_or_else(|| err(format!("{NAME}: cannot read the buffer")))?;
    mem.write(at, &bytes)
        .ok_or_else(|| err(format!("{NAME}: cannot write the frame")))?;
    Ok(0)
}

/// `xdp_adjust_head(ctx, delta)`.
pub(crate) fn xdp_adjust_head(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "xdp_adjust_head";
    let mut f = frame(mem, a[0], NAME)?;
    let metalen = f.data - f.meta;
    let lowest = f.hard_start + XDP_FRAME_RESERVED as u64 + metalen;
    let Some(data) = moved(f.data, delta(a[1])) else {
        return Ok(EINVAL);
    };
    if data < lowest || data.saturating_add(ETH_HLEN as u64) > f.data_end {
        return Ok(EINVAL);
    }
    let meta = f.meta.wrapping_add_signed(delta(a[1]));
    if metalen > 0 {
        let bytes = mem
            .read(f.meta, metalen as usize)
            .ok_or_else(|| err(format!("{NAME}: cannot read the metadata")))?;
        mem.write(meta, &bytes)
            .ok_or_else(|| err(format!("{NAME}: cannot move the metadata")))?;
    }
    (f.data, f.meta, f.moved_by) = (data, meta, Some(NAME));
    commit(mem, f, &[(CTX_DATA, data), (CTX_DATA_META, meta)], NAME)
}

/// `xdp_adjust_meta(ctx, delta)`.
pub(crate) fn xdp_adjust_meta(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "xdp_adjust_meta";
    let mut f = frame(mem, a[0], NAME)?;
    let Some(meta) = moved(f.meta, delta(a[1])) else {
        return Ok(EINVAL);
    };
    if meta < f.hard_start + XDP_FRAME_RESERVED as u64 || meta > f.data {
        return Ok(EINVAL);
    }
    let metalen = f.data - meta;
    if metalen % 4 != 0 || metalen > XDP_META_MAX as u64 {
        return Ok(EACCES);
    }
    f.meta = meta;
    commit(mem, f, &[(CTX_DATA_META, meta)], NAME)
}

/// `xdp_adjust_tail(ctx, delta)`.
pub(crate) fn xdp_adjust_tail(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "xdp_adjust_tail";
    let mut f = frame(mem, a[0], NAME)?;
    let d = delta(a[1]);
    let Some(end) = moved(f.data_end, d) else {
        return Ok(EINVAL);
    };
    if end > f.hard_end || end < f.data + ETH_HLEN as u64 {
        return Ok(EINVAL);
    }
    if end > f.data_end {
        // The kernel zeroes what the tail grows into.
        mem.write(f.data_end, &vec![0; (end - f.data_end) as usize])
            .ok_or_else(|| err(format!("{NAME}: cannot clear the tailroom")))?;
    }
    (f.data_end, f.moved_by) = (end, Some(NAME));
    commit(mem, f, &[(CTX_DATA_END, end)], NAME)
}

/// `redirect(ifindex, flags)`.
pub(crate) fn redirect(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    let (allowed, refused, redirect) = match cx.context {
        Context::Xdp => (0, XDP_ABORTED, XDP_REDIRECT),
        // lwt_xmit shares TC's helper: `TC_ACT_REDIRECT` is `BPF_REDIRECT`, `TC_ACT_SHOT`
        // `BPF_DROP`.
        Context::Tc | Context::Lwt(_) => (BPF_F_INGRESS, TC_ACT_SHOT, TC_ACT_REDIRECT),
        other => {
            return Err(err(format!(
                "redirect needs an XDP, TC or lwt_xmit program, not {}",
                other.name()
            )));
        }
    };
    if flags & !allowed != 0 {
        return Ok(refused);
    }
    run_state(mem)?.redirect = Some(RedirectTarget::Ifindex {
        ifindex,
        ingress: flags & BPF_F_INGRESS != 0,
    });
    Ok(redirect)
}

/// `redirect_neigh(ifindex, params, plen, flags)` (TC only).
pub(crate) fn redirect_neigh(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    if cx.context != Context::Tc {
        return Err(err(format!(
            "redirect_neigh needs a TC program, not {}",
            cx.context.name()
        )));
    }
    // `plen` is an `int` compared with a `size_t`: a negative one converts to a huge size.
    let (ifindex, plen, flags) = (a[0] as u32, a[2] as u32 as i32 as i64 as u64, a[3]);
    if flags != 0 || (plen != 0 && plen < REDIR_NEIGH_SIZE) {
        return Ok(TC_ACT_SHOT);
    }
    run_state(mem)?.redirect = Some(RedirectTarget::Ifindex {
        ifindex,
        ingress: false,
    });
    Ok(TC_ACT_REDIRECT)
}

/// `redirect_peer(ifindex, flags)` (TC only).
pub(crate) fn redirect_peer(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    if cx.context != Context::Tc {
        return Err(err(format!(
            "redirect_peer needs a TC program, not {}",
            cx.context.name()
        )));
    }
    let (ifindex, flags) = (a[0] as u32, a[1]);
    if flags != 0 {
        return Ok(TC_ACT_SHOT);
    }
    run_state(mem)?.redirect = Some(RedirectTarget::Peer { ifindex });
    Ok(TC_ACT_REDIRECT)
}
