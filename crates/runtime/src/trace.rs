//! Tracing contexts (kprobe/uprobe, tracepoint, raw tracepoint, fentry/fexit/tp_btf) and the
//! helpers only tracing programs call.
//!
//! Each context is a read-only struct the program reads through r1, described to the verifier
//! field by field in the same layout for the program and for bpfx (nothing is converted, every
//! store is refused as the kernel refuses it):
//!
//! ```text
//! kprobe (struct pt_regs, x86-64)     tracepoint (the record)        raw_tp / tracing (u64 args[])
//!   0 r15   8 r14  16 r13  24 r12       0 common header (8 bytes,     0 args[0]
//!  32 bp   40 bx   48 r11  56 r10         not readable)               8 args[1]
//!  64 r9   72 r8   80 ax   88 cx        8 the event's fields …       …
//!  96 dx  104 si  112 di  120 orig_ax                                 fexit: args[n] = return value
//! 128 ip  136 cs  144 flags 152 sp  160 ss   (168 bytes)
//! ```
//!
//! The kernel's access rules, kept by the verifier's field table: kprobe, any read of 1, 2, 4
//! or 8 bytes aligned to its size inside `pt_regs`; tracepoint, the same inside the record past
//! its 8-byte common header; raw tracepoint and tracing, the same inside the argument slots.
//! The size the verifier proves against is the context's bound (`Context::Tracepoint::size`,
//! the slot count); a run on a shorter record or fewer arguments than the program reads is
//! refused, as the kernel refuses to attach such a program (`-EACCES` for a tracepoint whose
//! record is shorter than the program's furthest read, `-EINVAL` for a raw tracepoint with
//! fewer arguments).

use crate::helpers::Cx;
use crate::{Context, Program, RunError};
use bpfx_exec::{GuestMemory, HelperError};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind, VerifiedProgram};

/// Size of x86-64's `struct pt_regs` (21 registers of 8 bytes, `asm/ptrace.h`).
pub const PT_REGS_SIZE: usize = 168;
/// The kernel's `MAX_BPF_FUNC_ARGS`: the most arguments a traced function or raw tracepoint
/// passes, and the raw tracepoint context's default slot count.
pub const MAX_TRACE_ARGS: u8 = 12;
/// The tracing context's default slot count: [`MAX_TRACE_ARGS`] arguments and, for fexit and
/// fmod_ret, the return value after them.
pub const MAX_TRACING_SLOTS: u8 = MAX_TRACE_ARGS + 1;
/// The kernel's `PERF_MAX_TRACE_SIZE`: the largest tracepoint record, and the tracepoint
/// context's default bound.
pub const PERF_MAX_TRACE_SIZE: u16 = 8192;
/// Size of a tracepoint record's common header (`common_type`, `common_flags`,
/// `common_preempt_count`, `common_pid`), which the kernel's verifier does not let a program
/// read.
pub const TRACE_HEADER_SIZE: u16 = 8;

/// `bpf_probe_read` (the legacy read of kernel or user memory).
pub const PROBE_READ: u32 = 4;
/// `bpf_probe_read_str`.
pub const PROBE_READ_STR: u32 = 45;
/// `bpf_get_stackid`.
pub const GET_STACKID: u32 = 27;
/// `bpf_get_func_ip`.
pub const GET_FUNC_IP: u32 = 173;
/// `bpf_get_attach_cookie`.
pub const GET_ATTACH_COOKIE: u32 = 174;
/// `bpf_get_func_arg`.
pub const GET_FUNC_ARG: u32 = 183;
/// `bpf_get_func_ret`.
pub const GET_FUNC_RET: u32 = 184;
/// `bpf_get_func_arg_cnt`.
pub const GET_FUNC_ARG_CNT: u32 = 185;
/// `bpf_override_return`.
pub const OVERRIDE_RETURN: u32 = 58;

const EINVAL: u64 = (-22i64) as u64;
const EOPNOTSUPP: u64 = (-95i64) as u64;

/// x86-64's `struct pt_regs` (`asm/ptrace.h`), what a kprobe or uprobe program's r1 points
/// to. libbpf's `PT_REGS_PARM1`..`PARM5` read `di`, `si`, `dx`, `cx`, `r8`; `PT_REGS_RC`
/// reads `ax`, `PT_REGS_IP` `ip`, `PT_REGS_SP` `sp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct PtRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub bp: u64,
    pub bx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub ax: u64,
    pub cx: u64,
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    pub ip: u64,
    pub cs: u64,
    pub flags: u64,
    pub sp: u64,
    pub ss: u64,
}

impl PtRegs {
    /// Registers holding a function's first arguments in the x86-64 calling convention
    /// (`di`, `si`, `dx`, `cx`, `r8`, `r9`; at most six, the rest are ignored), all others 0.
    pub fn with_args(args: &[u64]) -> PtRegs {
        let mut r = PtRegs::default();
        let slots = [
            &mut r.di, &mut r.si, &mut r.dx, &mut r.cx, &mut r.r8, &mut r.r9,
        ];
        for (slot, &a) in slots.into_iter().zip(args) {
            *slot = a;
        }
        r
    }

    /// The registers in the kernel's order.
    pub fn to_array(&self) -> [u64; 21] {
        [
            self.r15,
            self.r14,
            self.r13,
            self.r12,
            self.bp,
            self.bx,
            self.r11,
            self.r10,
            self.r9,
            self.r8,
            self.ax,
            self.cx,
            self.dx,
            self.si,
            self.di,
            self.orig_ax,
            self.ip,
            self.cs,
            self.flags,
            self.sp,
            self.ss,
        ]
    }

    /// The registers from the kernel's order.
    pub fn from_array(a: [u64; 21]) -> PtRegs {
        let [
            r15,
            r14,
            r13,
            r12,
            bp,
            bx,
            r11,
            r10,
            r9,
            r8,
            ax,
            cx,
            dx,
            si,
            di,
            orig_ax,
            ip,
            cs,
            flags,
            sp,
            ss,
        ] = a;
        PtRegs {
            r15,
            r14,
            r13,
            r12,
            bp,
            bx,
            r11,
            r10,
            r9,
            r8,
            ax,
            cx,
            dx,
            si,
            di,
            orig_ax,
            ip,
            cs,
            flags,
            sp,
            ss,
        }
    }

    /// The struct's bytes ([`PT_REGS_SIZE`], little-endian).
    pub fn to_bytes(&self) -> [u8; PT_REGS_SIZE] {
        let mut out = [0u8; PT_REGS_SIZE];
        for (chunk, v) in out.chunks_exact_mut(8).zip(self.to_array()) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// The registers from the struct's bytes (at least [`PT_REGS_SIZE`]; `None` if shorter).
    pub fn from_bytes(bytes: &[u8]) -> Option<PtRegs> {
        let bytes = bytes.get(..PT_REGS_SIZE)?;
        let mut a = [0u64; 21];
        for (v, chunk) in a.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(PtRegs::from_array(a))
    }
}

/// Where a tracing program is attached, for `bpf_get_func_ip` and `bpf_get_attach_cookie`
/// (set with [`crate::Program::set_attach`]; both 0 until then).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attach {
    /// The traced function's address (`bpf_get_func_ip`; 0 for a probe inside a function).
    pub func_ip: u64,
    /// The `bpf_cookie` given at attachment (`bpf_get_attach_cookie`).
    pub cookie: u64,
}

/// What the tracing helpers of a run read: where the program is attached, and for a tracing
/// (fentry/fexit) run the function's arguments and return value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TraceRun {
    pub(crate) attach: Attach,
    pub(crate) args: Vec<u64>,
    pub(crate) ret: Option<u64>,
    /// The return value a kprobe's `bpf_override_return` set this run (the last call's).
    pub(crate) override_ret: Option<u64>,
}

/// Read-only fields covering `[start, end)`: 8-byte fields while 8 bytes are left, then 4, 2
/// and 1 (each aligned to its size when `start` is 8-aligned), every one allowing the narrow
/// aligned loads inside it. An aligned load of 1, 2, 4 or 8 bytes inside the range lies
/// inside exactly one of them, so the kernel's rule (any aligned read in range) is kept.
fn read_only_words(start: u16, end: u16) -> Vec<ContextField> {
    let mut fields = Vec::new();
    let mut off = start;
    for size in [8u16, 4, 2, 1] {
        while end.saturating_sub(off) >= size {
            fields.push(ContextField::new(off, size, FieldKind::Scalar, off).with_narrow(true));
            off += size;
        }
    }
    fields
}

/// The kprobe context: x86-64's `struct pt_regs`, 21 read-only registers, any aligned read.
pub fn kprobe_layout() -> ContextLayout {
    ContextLayout::new(read_only_words(0, PT_REGS_SIZE as u16))
}

/// The tracepoint context: a record of `size` bytes, read-only, any aligned read past the
/// [`TRACE_HEADER_SIZE`]-byte common header.
pub fn tracepoint_layout(size: u16) -> ContextLayout {
    ContextLayout::new(read_only_words(TRACE_HEADER_SIZE, size))
}

/// The raw tracepoint and tracing context: `slots` read-only `u64` arguments, any aligned
/// read inside them.
pub fn args_layout(slots: u8) -> ContextLayout {
    ContextLayout::new(read_only_words(0, u16::from(slots) * 8))
}

fn err(msg: &str) -> HelperError {
    HelperError(msg.to_string())
}

/// `probe_read(dst, size, unsafe_ptr)` and `probe_read_str` (`str`), the legacy reads: on
/// x86-64, whose user and kernel address spaces do not overlap, the kernel reads user memory
/// below `TASK_SIZE` and kernel memory from there on, with the same results and error codes
/// as `probe_read_user`/`probe_read_kernel` (and their `_str` forms).
pub(crate) fn probe_read_compat(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    str: bool,
) -> Result<u64, HelperError> {
    let kernel = a[2] >= crate::task::TASK_SIZE_MAX;
    if str {
        crate::task::probe_read_str(cx, mem, a, kernel)
    } else {
        crate::task::probe_read(cx, mem, a, kernel)
    }
}

fn trace(mem: &GuestMemory<'_>) -> Result<TraceRun, HelperError> {
    Ok(crate::helpers::run_state_ref(mem)?.trace.clone())
}

/// `get_func_ip(ctx)`: the traced function's address as attached ([`Attach::func_ip`]).
pub(crate) fn get_func_ip(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(crate::helpers::run_state_ref(mem)?.trace.attach.func_ip)
}

/// `get_stackid(ctx, map, flags)`: the id of the stack the context gives, stored in the stack
/// trace map. bpfx has no kernel stack to walk: a kprobe's or perf event's stack is its one
/// frame `regs->ip` (read from the context the program was given); every other context gives an empty stack,
/// which is `-EFAULT` as the kernel's answer when it gets no trace. The flags and errors are
/// those of [`crate::maps::stacktrace`].
pub(crate) fn get_stackid(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let frames = match cx.context {
        // A perf event's `regs` are a `pt_regs` at the context's start too.
        Context::Kprobe | Context::PerfEvent => {
            let ip = mem
                .load(a[0].wrapping_add(128), 8)
                .ok_or_else(|| err("get_stackid: cannot read regs->ip from the context"))?;
            vec![ip]
        }
        _ => Vec::new(),
    };
    let map = crate::helpers::map_by_handle(cx, mem, a[1])?;
    Ok(match map.get_stackid(&frames, a[2]) {
        Ok(r) => r as u64,
        Err(e) => e.ret(),
    })
}

/// `override_return(regs, rc)`: the probed function returns `rc` without running (the kernel
/// sets `regs->ax` and points `regs->ip` at a bare return); returns 0. bpfx records `rc` for
/// the host ([`Program::override_return`]) and writes it into the context's `ax`, which the
/// program reads back for the rest of its run. `regs` must be the context (the kernel's
/// `ARG_PTR_TO_CTX`, which bpfx's signature does not type): anything else is a helper error.
pub(crate) fn override_return(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    // `ArgKind::Ctx`: a value Checked mode's verifier could not tell fails here.
    if mem.input.offset_of(a[0], PT_REGS_SIZE) != Some(0) {
        return Err(err(
            "override_return: the first argument is not the context",
        ));
    }
    mem.write(a[0] + 80, &a[1].to_le_bytes())
        .ok_or_else(|| err("override_return: cannot write regs->ax"))?;
    crate::helpers::run_state(mem)?.trace.override_ret = Some(a[1]);
    Ok(0)
}

/// `get_attach_cookie(ctx)`: the attachment's cookie ([`Attach::cookie`], 0 when none).
pub(crate) fn get_attach_cookie(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(crate::helpers::run_state_ref(mem)?.trace.attach.cookie)
}

/// `get_func_arg(ctx, n, *value)`: argument `n` into `*value` (8 bytes), 0; `-EINVAL` when
/// the function has no argument `n` (`*value` zeroed, as the kernel's inlined code does).
pub(crate) fn get_func_arg(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let t = trace(mem)?;
    let n = a[1] & 0xffff_ffff;
    let (v, r) = match usize::try_from(n).ok().and_then(|n| t.args.get(n)) {
        Some(&v) => (v, 0),
        None => (0, EINVAL),
    };
    mem.write(a[2], &v.to_le_bytes())
        .ok_or_else(|| err("get_func_arg: cannot write the value"))?;
    Ok(r)
}

/// `get_func_ret(ctx, *value)`: the return value into `*value`, 0, for a run that has one
/// (fexit, fmod_ret); `-EOPNOTSUPP` otherwise (the value left as it was).
pub(crate) fn get_func_ret(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let Some(v) = trace(mem)?.ret else {
        return Ok(EOPNOTSUPP);
    };
    mem.write(a[1], &v.to_le_bytes())
        .ok_or_else(|| err("get_func_ret: cannot write the value"))?;
    Ok(0)
}

/// `get_func_arg_cnt(ctx)`: how many arguments the traced function has.
pub(crate) fn get_func_arg_cnt(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(crate::helpers::run_state_ref(mem)?.trace.args.len() as u64)
}

/// The end of the furthest context read of a verified program: the least record or argument
/// bytes a run must supply (0 when it reads none).
pub(crate) fn context_need(prog: &VerifiedProgram) -> u64 {
    prog.program()
        .iter()
        .filter_map(|(pc, _)| prog.context_access(pc))
        .map(|a| u64::try_from(a.off).unwrap_or(0) + u64::from(a.new_size))
        .max()
        .unwrap_or(0)
}

impl Program {
    /// Where the program is attached: what `bpf_get_func_ip` and `bpf_get_attach_cookie`
    /// return in its runs (both 0 until set; clones keep it).
    pub fn set_attach(&mut self, attach: Attach) {
        self.attach = attach;
    }

    /// Where the program is attached ([`Program::set_attach`]).
    pub fn attach(&self) -> Attach {
        self.attach
    }

    /// The return value the last run's `bpf_override_return` set (the probed function would
    /// return it without running), `None` when it did not call it.
    pub fn override_return(&self) -> Option<u64> {
        self.st.as_ref().and_then(|st| st.trace.override_ret)
    }

    /// Runs a kprobe/uprobe program ([`Context::Kprobe`]) on the probed registers; returns
    /// r0 (the kernel ignores a kprobe's return value; `bpf_override_return`'s value is
    /// [`Program::override_return`]).
    pub fn run_kprobe(&mut self, regs: &PtRegs) -> Result<u64, RunError> {
        self.expect(Context::Kprobe)?;
        self.run_trace(&regs.to_bytes(), PT_REGS_SIZE, Vec::new(), None)
    }

    /// Runs a tracepoint program ([`Context::Tracepoint`]) on an event's record (its 8-byte
    /// common header, then the event's fields, as the tracepoint's `format` file lays them
    /// out); returns r0. A record past the context's `size` is cut to it; one shorter than
    /// the program's furthest read is refused ([`RunError::InputTooShort`]).
    pub fn run_tracepoint(&mut self, record: &[u8]) -> Result<u64, RunError> {
        let Context::Tracepoint { size } = self.context() else {
            return Err(self.wrong(Context::TRACEPOINT));
        };
        self.run_trace(record, usize::from(size), Vec::new(), None)
    }

    /// Runs a raw tracepoint program ([`Context::RawTracepoint`]) on the tracepoint's
    /// arguments; returns r0. Arguments past the context's slot count are dropped; fewer
    /// than the program reads are refused ([`RunError::InputTooShort`], in bytes).
    pub fn run_raw_tp(&mut self, args: &[u64]) -> Result<u64, RunError> {
        let Context::RawTracepoint { args: slots } = self.context() else {
            return Err(self.wrong(Context::RAW_TRACEPOINT));
        };
        let bytes: Vec<u8> = args.iter().flat_map(|a| a.to_le_bytes()).collect();
        self.run_trace(&bytes, usize::from(slots) * 8, Vec::new(), None)
    }

    /// Runs a tracing program ([`Context::Tracing`]: fentry, tp_btf with `ret` `None`; fexit
    /// and fmod_ret with the function's return value) on the traced function's arguments;
    /// returns r0. The context is the arguments then the return value, each a `u64` slot (as
    /// libbpf's `BPF_PROG` reads them); `get_func_arg`, `get_func_arg_cnt` and
    /// `get_func_ret` answer from them. Slots past the context's count are not readable
    /// through the context; fewer than the program reads are refused
    /// ([`RunError::InputTooShort`], in bytes).
    pub fn run_tracing(&mut self, args: &[u64], ret: Option<u64>) -> Result<u64, RunError> {
        let Context::Tracing { args: slots } = self.context() else {
            return Err(self.wrong(Context::TRACING));
        };
        let bytes: Vec<u8> = args
            .iter()
            .chain(&ret)
            .flat_map(|a| a.to_le_bytes())
            .collect();
        self.run_trace(&bytes, usize::from(slots) * 8, args.to_vec(), ret)
    }

    fn wrong(&self, got: Context) -> RunError {
        RunError::WrongContext {
            program: self.name().to_string(),
            expected: self.context().name(),
            got: got.name(),
        }
    }

    /// One run on a read-only context of `size` bytes holding `data` (cut to `size`, zeroes
    /// after it).
    fn run_trace(
        &mut self,
        data: &[u8],
        size: usize,
        args: Vec<u64>,
        ret: Option<u64>,
    ) -> Result<u64, RunError> {
        if (data.len() as u64) < self.trace_need {
            return Err(RunError::InputTooShort {
                program: self.name().to_string(),
                need: self.trace_need,
                got: data.len(),
            });
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(size, 0);
        let n = data.len().min(size);
        buf[..n].copy_from_slice(&data[..n]);
        let attach = self.attach;
        let res = self
            .exec_with(
                &mut buf,
                |st| {
                    st.trace = TraceRun {
                        attach,
                        args,
                        ret,
                        override_ret: None,
                    };
                },
                |_| (),
            )
            .0;
        self.buf = buf;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pt_regs_bytes_follow_the_kernel_order() {
        let r = PtRegs::from_array(std::array::from_fn(|i| i as u64 + 1));
        let b = r.to_bytes();
        // di is register 14 (offset 112), ip 16 (128), sp 19 (152).
        assert_eq!(b[112..120], 15u64.to_le_bytes());
        assert_eq!(r.di, 15);
        assert_eq!(r.ip, 17);
        assert_eq!(r.sp, 20);
        assert_eq!(PtRegs::from_bytes(&b), Some(r));
        assert_eq!(PtRegs::from_bytes(&b[..167]), None);
        let p = PtRegs::with_args(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!((p.di, p.si, p.dx, p.cx, p.r8, p.r9), (1, 2, 3, 4, 5, 6));
        assert_eq!(p.ax, 0);
    }

    #[test]
    fn word_fields_tile_the_range_aligned() {
        let f = read_only_words(8, 23);
        let spans: Vec<(u16, u16)> = f.iter().map(|f| (f.off, f.size)).collect();
        assert_eq!(spans, [(8, 8), (16, 4), (20, 2), (22, 1)]);
        assert!(f.iter().all(|f| !f.writable && f.narrow));
        assert_eq!(read_only_words(8, 8), []);
        assert_eq!(kprobe_layout().fields.len(), 21);
        assert_eq!(args_layout(3).fields.len(), 3);
        assert_eq!(tracepoint_layout(4).fields, []);
    }
}
