//! [`Program`]: the run loop (each context's entry, the run state, tail calls).

use super::{Code, Engine, Linked, Shared};
use crate::context::{self, Context, XdpAction, XdpMeta};
use crate::error::RunError;
use crate::helpers::{self, RunState};
use crate::skb::{self, SKB_CTX_SIZE, SkbMeta, SocketVerdict, TcAction};
use bpfx_exec::{Budget, End, Env, HelperError, Trap, TrapKind};
use bpfx_verifier::VerifiedProgram;
use std::sync::Arc;

/// A runnable program. Each `Program` value runs on one thread at a time (`run` takes
/// `&mut self`); clone it to run the same code on several threads at once; every clone
/// shares the code and the maps and has its own stack.
pub struct Program {
    pub(super) linked: Arc<Linked>,
    pub(super) shared: Arc<Shared>,
    pub(super) env: Env,
    /// The run state, owned here: for each engine call of a run it moves into the
    /// environment's [`Env::host`], where the engines lend it to every helper call (so helpers
    /// reach it without a lock), and comes back when the engine returns. `None` only while
    /// an engine runs.
    pub(crate) st: Option<Box<RunState>>,
    /// What its helpers work with (the run's CPU is set here).
    pub(super) cx: Arc<helpers::Cx>,
    pub(crate) buf: Vec<u8>,
    /// A second buffer, for the packet of a TC run on a slice (reused from run to run).
    pub(crate) spare: Vec<u8>,
    /// Whether the run state holds inner maps of a previous snapshot (so a program naming no
    /// map of maps takes no lock to clear them).
    inner_live: bool,
    /// The host-owned bytes of the context struct ([`context::host_owned`]), and their
    /// values as the host filled them for the current run: written back before every tail
    /// call's target starts and when the run ends.
    host_owned: Arc<[std::ops::Range<usize>]>,
    host_ctx: Vec<u8>,
    /// Whether `run_xdp` may keep the run buffer's tailroom between runs
    /// ([`crate::xdp::tail_unread`]).
    pub(crate) xdp_tail_unread: bool,
    /// For an XDP program: how far past the frame's start its runs may write, when they write
    /// nothing before it and nothing past that but the frame ([`crate::xdp::write_reach`];
    /// `Some(0)` when no run writes past its frame, [`crate::xdp::confined`]).
    pub(crate) xdp_reach: Option<usize>,
    /// Whether no run writes its frame either ([`crate::xdp::confined`] without packet
    /// stores): `run_xdp` then need not copy the frame back.
    pub(crate) xdp_frame_unwritten: bool,
    /// Whether no run can change the context struct: every store is proven to hit the stack,
    /// a map value or the packet, every helper called writes no guest memory and moves no
    /// frame, and no tail call hands the context to another program
    /// ([`crate::xdp::confined`], which holds for any context); or, for XDP, the same with
    /// packet stores bounded from the frame's start ([`crate::xdp::write_reach`]: the
    /// context struct lies before the frame). The run then neither keeps
    /// nor restores the host-owned bytes: they are as the host filled them.
    ctx_untouched: bool,
    /// For a confined program: the end of what the last `run_xdp` may have left nonzero in
    /// the run buffer (every byte from there on is zero); `usize::MAX` when not known.
    pub(crate) xdp_dirty_end: usize,
    /// For a tracing context: the end of the program's furthest context read (a run on less
    /// is refused, as the kernel refuses to attach it).
    pub(crate) trace_need: u64,
    /// For an sk_msg or cgroup socket-address program: the read-only block `sk_msg_md.sk`
    /// and `bpf_sock_addr.sk` point to, the run's socket's `struct bpf_sock` (written by
    /// [`Program::run_sk_msg`] and [`Program::run_sock_addr`] before each run; each clone has
    /// its own, so runs on several threads do not share it).
    pub(crate) sock_block: Option<Arc<bpfx_exec::SharedMem>>,
    /// Where a tracing program is attached (`get_func_ip`, `get_attach_cookie`).
    pub(crate) attach: crate::Attach,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.linked.name)
            .field("engine", &self.engine())
            .field("context", &self.linked.context)
            .finish()
    }
}

impl Clone for Program {
    fn clone(&self) -> Program {
        let mut p = Program::new(self.linked.clone(), self.shared.clone());
        p.env.budget = self.env.budget;
        p.env.unbounded = self.env.unbounded;
        p.attach = self.attach;
        p
    }
}

impl Program {
    pub(super) fn new(linked: Arc<Linked>, shared: Arc<Shared>) -> Program {
        let cx = Arc::new(helpers::Cx {
            maps: shared.maps.clone(),
            hooks: shared.hooks.clone(),
            context: linked.context,
            cpu: helpers::NO_CPU.into(),
        });
        let mut h = helpers::standard(&cx);
        for c in &shared.custom {
            h.insert(c.id, Vec::new(), c.f.clone());
        }
        // Every helper, standard or the embedder's (Rust or C), gets the memory arguments its
        // signature sizes checked at each call, on both engines and in every mode.
        // The standard map helpers read their key and value first, through their
        // `GuestMemory`, and change nothing before: their map-sized arguments are checked only
        // when they fail (with the same trap and message), so a call locates each range once.
        for (id, sig) in shared.sigs.iter() {
            let args = helpers::mem_args(sig, &cx);
            if helpers::reads_args_first(id) && !shared.custom.iter().any(|c| c.id == id) {
                h.set_mem_args_after_failure(id, args);
            } else {
                h.set_mem_args(id, args);
            }
        }
        let host_owned = context::host_owned(linked.context).into();
        let trace_need = if linked.context.is_tracing() {
            crate::trace::context_need(&linked.prog)
        } else {
            0
        };
        let xdp_tail_unread = crate::xdp::tail_unread(&linked.prog);
        let replaced: Vec<u32> = shared.custom.iter().map(|c| c.id).collect();
        let xdp_confined = crate::xdp::confined(&linked.prog, &replaced, true);
        let xdp_reach = match linked.context {
            Context::Xdp => crate::xdp::write_reach(&linked.prog, &replaced)
                .map(|r| usize::try_from(r).unwrap_or(usize::MAX)),
            _ => None,
        };
        let xdp_frame_unwritten = crate::xdp::confined(&linked.prog, &replaced, false);
        let mut env = Env::with_helpers(h);
        // The frame limit is the one the program was verified with: no second setting.
        env.set_max_frames(linked.prog.max_frames());
        let st = Some(Box::new(RunState::new(linked.context)));
        let sock_block = matches!(
            linked.context,
            Context::SkMsg | Context::SockAddr(_) | Context::CgroupSockopt(_)
        )
        .then(|| bpfx_exec::SharedMem::new(crate::sock::BPF_SOCK_SIZE, false));
        Program {
            linked,
            shared,
            env,
            st,
            cx,
            buf: Vec::new(),
            spare: Vec::new(),
            inner_live: false,
            host_owned,
            host_ctx: Vec::new(),
            xdp_tail_unread,
            xdp_reach,
            xdp_frame_unwritten,
            ctx_untouched: xdp_confined || xdp_reach.is_some(),
            xdp_dirty_end: usize::MAX,
            trace_need,
            sock_block,
            attach: crate::Attach::default(),
        }
    }

    /// Writes `sock` into the program's socket block for the next run; returns the block's
    /// guest address, what `sk_msg_md.sk` and `bpf_sock_addr.sk` hold (0 for a program without
    /// a block).
    pub(crate) fn place_sock(&self, sock: &crate::BpfSock) -> u64 {
        self.sock_block.as_ref().map_or(0, |b| {
            b.write(0, &sock.to_bytes());
            b.addr()
        })
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.linked.name
    }

    /// Its context.
    pub fn context(&self) -> Context {
        self.linked.context
    }

    /// Whether it has legacy packet loads (`ldabs`/`ldind`).
    pub(crate) fn packet_loads(&self) -> bool {
        self.linked.packet_loads
    }

    /// The engine it runs on.
    pub fn engine(&self) -> Engine {
        match self.linked.code {
            Code::Interp => Engine::Interpreter,
            Code::Jit(_) => Engine::Jit,
        }
    }

    /// The verified program it runs.
    pub fn verified(&self) -> &VerifiedProgram {
        &self.linked.prog
    }

    /// The x86-64 listing, when compiled.
    pub fn listing(&self) -> Option<String> {
        match &self.linked.code {
            Code::Jit(j) => Some(j.listing()),
            Code::Interp => None,
        }
    }

    /// Sets the instruction budget: [`Budget::Limit`] (or `Some(n)`) limits the runs to `n`
    /// instructions in all (shared by tail calls; each run leaves the rest to the next), and
    /// on the JIT needs code compiled with the budget charge
    /// ([`Verified::engine`](crate::Verified::engine) with `budget`); [`Budget::Default`] (or `None`, what a new program has) runs a program that
    /// may not terminate under [`bpfx_exec::DEFAULT_BUDGET`] per run and one proven to
    /// terminate without limit; [`Budget::Unlimited`] lets any program run forever.
    pub fn set_budget(&mut self, budget: impl Into<Budget>) {
        self.env.set_budget(budget.into());
    }

    /// Where the last run's last successful `bpf_redirect_map` or `bpf_redirect` sent the
    /// frame (`None` when it called none, or none found its key): what an `XDP_REDIRECT` (or
    /// `TC_ACT_REDIRECT`) verdict means. The target is recorded even if the program then
    /// returned another verdict, as the kernel keeps it.
    pub fn last_redirect(&self) -> Option<helpers::RedirectTarget> {
        self.st.as_ref().and_then(|st| st.redirect.clone())
    }

    /// The helpers' view of this program instance.
    pub(crate) fn cx(&self) -> &helpers::Cx {
        &self.cx
    }

    /// The run state.
    #[inline]
    pub(crate) fn state(&mut self) -> &mut RunState {
        state_of(&mut self.st, self.linked.context)
    }

    /// What the last run left of a [`Budget::Limit`] (`None` without one).
    pub fn budget(&self) -> Option<u64> {
        self.env.budget
    }

    /// `WrongContext` unless this program's context is of `got`'s kind. Inlined into every
    /// run entry (`got` is a constant there, so the check is one compare), the error built out
    /// of the run's line.
    #[inline]
    pub(crate) fn expect(&self, got: Context) -> Result<(), RunError> {
        if std::mem::discriminant(&self.linked.context) != std::mem::discriminant(&got) {
            return Err(self.wrong_context(got));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn wrong_context(&self, got: Context) -> RunError {
        RunError::WrongContext {
            program: self.linked.name.clone(),
            expected: self.linked.context.name(),
            got: got.name(),
        }
    }

    /// Runs a plain-memory program on `mem` (r1 = its address, r2 = its length); the program
    /// may change it.
    pub fn run(&mut self, mem: &mut [u8]) -> Result<u64, RunError> {
        self.expect(Context::Memory)?;
        self.exec(mem)
    }

    /// Runs an XDP program on a packet (which it may rewrite in place) and returns its verdict.
    /// The packet gets the kernel's headroom and tailroom for the run; a program that moves
    /// its head or tail fails with [`RunError::FrameMoved`] (run it with
    /// [`Program::run_xdp_packet`]).
    pub fn run_xdp(&mut self, packet: &mut [u8]) -> Result<XdpAction, RunError> {
        self.run_xdp_with(packet, &XdpMeta::default())
    }

    /// [`Program::run_xdp`] with receive-side metadata.
    pub fn run_xdp_with(
        &mut self,
        packet: &mut [u8],
        meta: &XdpMeta,
    ) -> Result<XdpAction, RunError> {
        self.run_xdp_slice(packet, meta)
    }

    /// Runs a TC program (`sched_cls`/`sched_act`) on a packet, which it may rewrite in place,
    /// with the socket buffer's metadata; returns its verdict. The fields a TC program may
    /// write (`mark`, `priority`, `tc_index`, `tc_classid`, `queue_mapping`, `cb`, `tstamp`)
    /// are written back into `meta` after the run, even when the run traps (as far as the
    /// program got), with the kernel's widths ([`SkbMeta`]), and so are `hash`, `protocol`
    /// and the `vlan_*` fields, which helpers may change. A slice cannot change its length: a
    /// program that grew or shrank the packet (`skb_change_tail`, `skb_adjust_room`, a VLAN
    /// tag pushed into it, …) fails with [`RunError::FrameMoved`] and the slice is left as it
    /// was; run such programs with [`Program::run_tc_packet`].
    pub fn run_tc(&mut self, packet: &mut [u8], meta: &mut SkbMeta) -> Result<TcAction, RunError> {
        self.run_tc_slice(packet, meta).0.map(TcAction::from_code)
    }

    /// Runs a socket filter on a packet with the socket buffer's metadata (its `cb` starts
    /// zeroed and what the filter writes there is dropped, as in the kernel); returns how
    /// many bytes of the packet the socket keeps.
    pub fn run_socket(&mut self, packet: &[u8], meta: &SkbMeta) -> Result<SocketVerdict, RunError> {
        self.expect(Context::Socket)?;
        let mut buf = self.skb_buf(packet, meta, true);
        let res = self.exec(&mut buf);
        self.buf = buf;
        res.map(|r0| SocketVerdict::new(r0, packet.len()))
    }

    /// The run buffer `[socket-buffer struct | packet]`, filled.
    fn skb_buf(&mut self, packet: &[u8], meta: &SkbMeta, socket: bool) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(SKB_CTX_SIZE, 0);
        buf.extend_from_slice(packet);
        skb::fill_skb_ctx(&mut buf, meta, socket);
        let packet_sk = self.state().sockptr.packet;
        crate::sock_table::fill_packet_sk(self.cx(), packet_sk, &mut buf);
        buf
    }

    /// Runs a program with an embedder-defined context: `ctx` is the struct (at least its
    /// declared size), `packet` the packet whose bounds bpfx writes into the struct's
    /// `data`/`data_end` fields, when the layout has them. Both may be changed by the program;
    /// the struct comes back with the program's writes to its plain bytes and bpfx's `data` and
    /// `data_end` (whatever a program wrote over them).
    pub fn run_ctx(&mut self, ctx: &mut [u8], packet: &mut [u8]) -> Result<u64, RunError> {
        let Context::Struct(layout) = self.linked.context else {
            return Err(RunError::WrongContext {
                program: self.linked.name.clone(),
                expected: self.linked.context.name(),
                got: "struct",
            });
        };
        let size = usize::from(layout.size);
        if ctx.len() < size {
            return Err(RunError::InputTooShort {
                program: self.linked.name.clone(),
                need: size as u64,
                got: ctx.len(),
            });
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&ctx[..size]);
        buf.extend_from_slice(packet);
        // The layout was checked when the program was verified; the fields are public, so
        // this run checks it again, and then what it wrote into the struct.
        let filled = layout.check().and_then(|()| match layout.packet {
            Some((data, end)) => context::fill_packet_fields(&mut buf, size, data, end),
            None => Ok(()),
        });
        if let Err(source) = filled {
            self.buf = buf;
            return Err(RunError::Layout {
                program: self.linked.name.clone(),
                source,
            });
        }
        let res = self.exec(&mut buf);
        ctx[..size].copy_from_slice(&buf[..size]);
        packet.copy_from_slice(&buf[size..]);
        self.buf = buf;
        res
    }

    /// Takes the entries of the maps of maps `cur` names, as they are now, for the run: the
    /// inner maps' handles index them, and their blocks join the memory the engines admit.
    /// Out of the run's line (`exec_with` calls it only when `cur` names a map of maps or a
    /// previous run left inner maps): most programs name none.
    fn take_inner(&mut self, cur: &Linked) {
        let st = state_of(&mut self.st, cur.context);
        st.inner.clear();
        st.outers.clear();
        let mut blocks = Vec::new();
        for &i in &cur.outers {
            let Some(slots) = self.shared.maps[i]
                .created()
                .and_then(|m| m.of_maps_snapshot())
            else {
                continue;
            };
            let base = st.inner.len();
            for m in &slots.maps {
                if let Some(b) = m.block() {
                    blocks.push(b.clone());
                }
                st.inner.push(m.clone());
            }
            st.outers.push((i, base, slots));
        }
        self.inner_live = !st.outers.is_empty();
        self.env.shared.append(&mut blocks);
    }

    /// Keeps the host-owned bytes of the context struct at the start of `input`, as the
    /// host just filled them for a run.
    fn keep_host_context(&mut self, input: &[u8]) {
        let len = self.host_owned.last().map_or(0, |r| r.end);
        self.host_ctx.clear();
        if let Some(ctx) = input.get(..len) {
            self.host_ctx.extend_from_slice(ctx);
        }
    }

    /// Writes the host-owned bytes of the context struct back as the host filled them (and
    /// an XDP frame's pointers from the host's record, which only the adjust helpers move):
    /// whatever a Checked program wrote there through a guarded store, the next program
    /// starts, and the host reads the run's outcome, on the context the host made.
    fn restore_host_context(&mut self, input: &mut [u8]) {
        let st = state_of(&mut self.st, self.linked.context);
        for r in self.host_owned.iter() {
            if let (Some(dst), Some(src)) = (input.get_mut(r.clone()), self.host_ctx.get(r.clone()))
            {
                dst.copy_from_slice(src);
            }
        }
        if matches!(self.linked.context, Context::Tc | Context::Socket)
            && let Some(h) = st.skb_hash
        {
            let at = crate::skb_helpers::HASH as usize;
            if let Some(dst) = input.get_mut(at..at + 4) {
                dst.copy_from_slice(&h.to_le_bytes());
            }
        }
        if self.linked.context == Context::Tc
            && let Some(t) = st.skb_pkt_type
        {
            let at = crate::skb_helpers::PKT_TYPE as usize;
            if let Some(dst) = input.get_mut(at..at + 4) {
                dst.copy_from_slice(&t.to_le_bytes());
            }
        }
        if self.linked.context == Context::Tc {
            let f = st.tc;
            if f.active && f.ctx == input.as_ptr() as u64 {
                f.write_into(input);
            }
        }
        if self.linked.context == Context::SkLookup {
            st.sockptr.lookup.write_into(input);
        }
        if self.linked.context == Context::SkMsg
            && st.msg.active
            && st.msg.ctx == input.as_ptr() as u64
        {
            st.msg.write_into(input);
        }
        if self.linked.context == Context::Xdp {
            let f = st.frame;
            if f.active && f.ctx == input.as_ptr() as u64 {
                crate::xdp::write_frame_pointers(input, &f);
            }
        }
    }

    /// One run, following tail calls. Every program of the run starts on the context the
    /// host made: the first as the caller filled it, each tail call's target after
    /// [`Program::restore_host_context`], since the Strict proofs of a program rest on the
    /// context's packet pointers and a Checked program before it may have overwritten them.
    pub(crate) fn exec(&mut self, input: &mut [u8]) -> Result<u64, RunError> {
        self.exec_with(input, |_| {}, |_| ()).0
    }

    /// [`Program::exec_boxed`] with the error unboxed.
    pub(crate) fn exec_with<T>(
        &mut self,
        input: &mut [u8],
        before: impl FnOnce(&mut RunState),
        after: impl FnOnce(&mut RunState) -> T,
    ) -> (Result<u64, RunError>, T) {
        let (res, out) = self.exec_boxed(input, before, after);
        (res.map_err(|e| *e), out)
    }

    /// [`Program::exec`], with `before` run on the run state as the run begins and `after`
    /// as it ends (after the context's restore), under the lock the run takes then anyway:
    /// a context's entry sets and reads its part of the state without locking it again.
    /// The error is boxed, so that a run's result is two words an entry passes in registers
    /// (a [`RunError`] is ten): what the per-packet entries ([`Program::run_xdp`]) take.
    pub(crate) fn exec_boxed<T>(
        &mut self,
        input: &mut [u8],
        before: impl FnOnce(&mut RunState),
        after: impl FnOnce(&mut RunState) -> T,
    ) -> (Result<u64, Box<RunError>>, T) {
        {
            let st = self.state();
            st.tail_calls = 0;
            st.redirect = None;
            st.skb_hash = None;
            st.skb_pkt_type = None;
            st.clones.clear();
            st.reserved.clear();
            st.sockptr.assigned = None;
            before(st);
        }
        // A program that cannot change the context leaves the host's bytes as they are.
        let untouched = self.ctx_untouched;
        if !untouched {
            self.keep_host_context(input);
        }
        // One CPU for the run and its tail calls, the helpers' and the inlined lookups',
        // asked of the hook when first needed.
        self.cx
            .cpu
            .store(helpers::NO_CPU, std::sync::atomic::Ordering::Relaxed);
        // The program running: this one's, or the last tail call's target. A macro rather than
        // a local, so that the usual run takes no reference count of its program (a count
        // every clone of it, on every thread, would contend for) and each use borrows only
        // these two fields.
        let mut tail: Option<Arc<Linked>> = None;
        macro_rules! cur {
            () => {
                match &tail {
                    Some(t) => &**t,
                    None => &*self.linked,
                }
            };
        }
        let result = loop {
            if let Some(need) = cur!().prog.mem_size()
                && (input.len() as u64) < need
            {
                break Err(Box::new(RunError::InputTooShort {
                    program: cur!().name.clone(),
                    need,
                    got: input.len(),
                }));
            }
            // The same blocks as the last run's (the common case): no reference counts touched.
            // An sk_msg or socket-address program's socket block (`sock_block`) follows the
            // program's blocks.
            let blocks = &cur!().blocks;
            let extra = self.sock_block.as_ref();
            let same = self.env.shared.len() == blocks.len() + usize::from(extra.is_some())
                && self
                    .env
                    .shared
                    .iter()
                    .zip(blocks.iter().chain(extra))
                    .all(|(a, b)| Arc::ptr_eq(a, b));
            if !same {
                self.env.shared.clone_from(blocks);
                self.env.shared.extend(extra.cloned());
            }
            self.env.set_max_frames(cur!().prog.max_frames());
            // The program `bpf_timer_set_callback` records its callbacks against.
            let timers = !cur!().prog.timer_callbacks().is_empty();
            if timers || self.st.as_ref().is_some_and(|st| st.timer_prog.is_some()) {
                let running = timers.then(|| tail.clone().unwrap_or_else(|| self.linked.clone()));
                self.state().timer_prog = running;
            }
            if !cur!().outers.is_empty() || self.inner_live {
                let c = tail.clone().unwrap_or_else(|| self.linked.clone());
                self.take_inner(&c);
            }
            // The run state goes with the engine, for the helpers (no allocation: the box
            // moves), and comes back with what they left in it.
            self.env.host = self
                .st
                .take()
                .map(|st| st as Box<dyn std::any::Any + Send + Sync>);
            let r = match &cur!().code {
                Code::Interp => bpfx_interp::run_to_end(&cur!().prog, input, &mut self.env),
                Code::Jit(j) => {
                    let cpu = if j.per_cpu_inlined() {
                        self.cx.cpu()
                    } else {
                        0
                    };
                    j.run_to_end_on(input, &mut self.env, cpu)
                }
            };
            self.st = self.env.host.take().and_then(|h| h.downcast().ok());
            let trap = match r {
                Ok(End::Return(r0)) => break Ok(r0),
                Ok(End::TailCall { pc, target }) => match target.0.downcast::<Linked>() {
                    Ok(next) if next.context != cur!().context => {
                        break Err(Box::new(RunError::WrongContext {
                            program: next.name.clone(),
                            expected: next.context.name(),
                            got: cur!().context.name(),
                        }));
                    }
                    Ok(next)
                        if next.packet_loads && next.context == Context::Tc && {
                            let f = self.state().tc;
                            f.active && !f.fixed
                        } =>
                    {
                        // Its legacy loads would read the packet buffer from its start.
                        self.env.helper_error = Some(HelperError(format!(
                            "a tail call to `{}`, which has legacy packet loads (ldabs/ldind), \
                             from a TC program without them: bpfx cannot bound its loads by a \
                             packet with headroom",
                            next.name
                        )));
                        Trap {
                            kind: TrapKind::Unsupported,
                            pc,
                        }
                    }
                    Ok(next) => {
                        self.restore_host_context(input);
                        tail = Some(next);
                        continue;
                    }
                    // Only `tail_call` names programs; an embedder's helper cannot.
                    Err(_) => {
                        self.env.helper_error = Some(HelperError(
                            "a tail call to something that is not a program".into(),
                        ));
                        Trap {
                            kind: TrapKind::Unsupported,
                            pc,
                        }
                    }
                },
                Err(trap) => trap,
            };
            let access = self.env.fault.take().map(Box::new);
            break Err(Box::new(RunError::Trap {
                program: cur!().name.clone(),
                reason: self
                    .env
                    .helper_error
                    .take()
                    .map(|e| e.0)
                    .or_else(|| access.as_ref().map(|f| f.to_string())),
                access,
                trap,
                insn: cur!()
                    .prog
                    .program()
                    .get(trap.pc)
                    .map_or_else(|| "?".to_string(), |op| op.to_string()),
            }));
        };
        // Records reserved and never submitted would block the ring forever: the kernel's
        // verifier forbids that, bpfx discards them when the run ends.
        if !untouched {
            self.restore_host_context(input);
        }
        let (left, out) = {
            let st = self.state();
            // The run's hold on inner maps ends with it, and so does its spin lock.
            st.inner.clear();
            st.outers.clear();
            st.held_lock = None;
            let left = std::mem::take(&mut st.reserved);
            (left, after(st))
        };
        for (i, addr) in left {
            if let Some(m) = self.shared.maps[i].created() {
                m.ring_commit(addr, true);
            }
        }
        (result, out)
    }
}

/// The run state `st` holds: a [`Program`]'s always holds one but while an engine runs (it
/// is made with one, and every engine call gives it back); a fresh one otherwise.
#[inline]
fn state_of(st: &mut Option<Box<RunState>>, context: Context) -> &mut RunState {
    st.get_or_insert_with(|| fresh_state(context))
}

/// [`state_of`]'s fallback, out of the run's way.
#[cold]
#[inline(never)]
fn fresh_state(context: Context) -> Box<RunState> {
    Box::new(RunState::new(context))
}
