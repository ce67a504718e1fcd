//! Callbacks (`bpf_loop`, `for_each_map_elem`): the callback argument checked as one function
//! of the program, entered from the helper's `call` with the arguments the helper passes, any
//! number of times (`docs/verifier.md`, "Callbacks"). `call.rs`'s `check_exit` hands a
//! callback's return to [`Analysis::callback_return`].

use super::state::stack_byte;
use super::{Analysis, CallbackSite, Flow, R};
use crate::config::{ArgKind, CallbackKind};
use crate::domain::{Frame, Off, PtrKind, Slot, State, Value};
use crate::error::VerifyErrorKind as K;
use bpfx_bytecode::{CallTarget, Op, Pc, Reg};
use bpfx_exec::STACK_FRAME_SIZE;

use super::CtxId;
use super::ctx::{CtxKind, CtxTag};

const FRAME: i64 = STACK_FRAME_SIZE as i64;

impl Analysis<'_> {
    /// What helper `id` passes to a callback, if it takes one.
    pub(super) fn callback_kind(&self, id: u32) -> Option<CallbackKind> {
        self.cfg.helpers.get(id)?.args.iter().find_map(|k| match k {
            ArgKind::Callback(kind) => Some(*kind),
            _ => None,
        })
    }

    pub(super) fn callback_err(&self, pc: Pc, id: u32, reason: String) -> crate::VerifyError {
        let helper = self
            .cfg
            .helpers
            .get(id)
            .map_or_else(|| format!("#{id}"), |s| s.name.clone());
        self.err(pc, K::Callback { helper, reason })
    }

    /// A `call` of a callback-taking helper (`bpf_loop`, `for_each_map_elem`), as the kernel
    /// checks it: the callback argument must be one function of the program (`lddw rX, func`,
    /// the same on every path to this `call`), which is then analysed as called from here
    /// with the arguments the helper passes (`enter_callback`), any number of times: each of
    /// its returns flows both back into it (widened, so the repetition reaches a fixpoint)
    /// and past the `call` (`callback_return`). The path on which the helper calls nothing
    /// (no iteration, an error result) goes straight past the `call`.
    pub(super) fn check_callback_call(
        &mut self,
        ctx: CtxId,
        pc: Pc,
        mut st: State,
        id: u32,
        kind: CallbackKind,
    ) -> R<Flow> {
        let Some(sig) = self.cfg.helpers.get(id) else {
            return Err(self.internal(pc, "a callback helper has no signature"));
        };
        let regs = st.cur().regs;
        let Some(arg) = sig
            .args
            .iter()
            .position(|k| matches!(k, ArgKind::Callback(_)))
        else {
            return Err(self.internal(pc, "a callback helper has no callback argument"));
        };
        let v = regs[arg + 1];
        let target = match v {
            Value::Scalar(x)
                if let Some(t) = x.konst().and_then(|t| u32::try_from(t).ok())
                    && self.func_ptrs.binary_search(&Pc(t)).is_ok() =>
            {
                Pc(t)
            }
            _ => {
                let reason = format!(
                    "r{} must hold a function of the program (lddw r{}, func), the same on \
                     every path to the call, but it is {}",
                    arg + 1,
                    arg + 1,
                    v.describe()
                );
                return Err(self.callback_err(pc, id, reason));
            }
        };
        let trips = match kind {
            // `nr_loops` above BPF_MAX_LOOPS makes the helper fail before any call.
            CallbackKind::Loop => match regs[1] {
                Value::Scalar(x) => x.umax.min(BPF_MAX_LOOPS),
                _ => BPF_MAX_LOOPS,
            },
            // Every element once, at most; an unknown size bounds nothing the proof can use.
            // The handle may stand for any map of its definition (`unify_maps`): the largest.
            CallbackKind::MapElem => match regs[1] {
                Value::MapHandle(m) => self.cfg.maps.most_entries_like(m).unwrap_or(u64::MAX),
                _ => u64::MAX,
            },
            // A timer's callback never runs within the run that arms it
            // (`enter_timer_callback`): each firing is a run of its own.
            CallbackKind::Timer => 0,
        };
        match self.callbacks.get_mut(&pc) {
            Some(site) if site.target != target => {
                let reason = format!(
                    "the call passes different functions on different paths ({} and {target})",
                    site.target
                );
                return Err(self.callback_err(pc, id, reason));
            }
            Some(site) => site.trips = site.trips.max(trips),
            None => {
                let site = CallbackSite {
                    target,
                    kind,
                    trips,
                };
                self.callbacks.insert(pc, site);
            }
        }
        let before = st.clone();
        if !self.call_helper(pc, &mut st, id)? {
            return Ok(Flow::Stop);
        }
        if kind == CallbackKind::Timer {
            // An async callback: verified as a function of its own, from a state of its own.
            self.enter_timer_callback(pc, &before)?;
        } else {
            self.enter_callback(ctx, pc, before)?;
        }
        Ok(Flow::Next(Pc(pc.0 + 1), st))
    }

    /// The callback of the `bpf_timer_set_callback` call at `site`, as the kernel verifies an
    /// async callback: not as a call from the arming program (it runs later, when the timer
    /// fires, in a run of its own) but as a function of its own, entered in frame 0 of a
    /// fresh state with nothing of the arming program's (no frame, no reference, no lock):
    /// r1 the handle of the timer's map, r2 a pointer to the element's key (a copy of its
    /// `key_size` bytes at the bottom of its frame, initialised; read-only in `Strict` mode:
    /// `check_key_unwritten`), r3 a pointer to the element's
    /// value; r0 and r4–r9 uninitialised in `Strict` mode, unknown in `Checked` mode. Its
    /// `exit` must return 0 ([`Analysis::check_callback_result`]). `caller` is the arming
    /// program's state at the `call`.
    fn enter_timer_callback(&mut self, site: Pc, caller: &State) -> R<()> {
        let Some(cb) = self.callbacks.get(&site).copied() else {
            return Err(self.internal(site, "a callback call has no recorded callback"));
        };
        let args = caller.cur().regs;
        let mut regs = [if self.strict {
            Value::NotInit
        } else {
            Value::UNKNOWN_SCALAR
        }; 11];
        let mut key = None;
        // The callback gets the map and value of the timer it is set on: known only for a
        // pointer at exactly the timer of a map's value (all Strict mode accepts). A Checked
        // mode pointer into a map's value at another or an unknown offset may reach another
        // map's value at run time (the helper finds the timer by its address), and a callback
        // checked against the first map's value size would run unguarded past the second's.
        let timer_map = match self.timer_field(args[1]) {
            Some((map, Some(off), at)) if i64::from(off) == at => Some(map),
            _ => None,
        };
        match timer_map {
            Some(map) => {
                let Some(def) = self.cfg.maps.get(map) else {
                    return Err(self.err(site, K::UnknownMap(map)));
                };
                if def.key_size == 0 || i64::from(def.key_size) > FRAME {
                    return Err(self.err(
                        site,
                        K::Callback {
                            helper: "timer_set_callback".into(),
                            reason: format!("a key of {} bytes does not fit a frame", def.key_size),
                        },
                    ));
                }
                regs[1] = Value::MapHandle(map);
                regs[2] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(-FRAME));
                regs[3] = Value::Ptr(
                    PtrKind::MapValue {
                        map,
                        nullable: false,
                        id: 0,
                        record: None,
                    },
                    Off::known(0),
                );
                key = Some((-FRAME, i64::from(def.key_size)));
            }
            // Checked mode: the map is not known; the callback is checked with unknown
            // arguments, each access guarded at run time.
            _ if !self.strict => {}
            _ => return Err(self.internal(site, "a timer callback without its map")),
        }
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(0));
        let mut frame = Frame::new(regs);
        if let Some((at, len)) = key {
            for b in at..at + len {
                let (i, p) = stack_byte(b);
                let s = &mut frame.stack[i];
                *s = Slot::Bytes(s.init_mask() | 1 << p);
            }
        }
        let root = self.intern(
            None,
            CtxTag::Call(cb.target),
            CtxKind::Call { call_site: site },
        );
        self.async_roots.insert(root, key.map_or(0, |(_, len)| len));
        self.merge(root, cb.target, State::new(frame), false)
    }

    /// Enters the callback of the helper `call` at `site` (in context `ctx`) from the caller
    /// state `st` (its registers as at the `call`): a new frame, as a local call would push,
    /// whose r1–r5 are what the helper passes; r0 and r6–r9 are uninitialised in `Strict`
    /// mode (the kernel's callback state), unknown in `Checked` mode.
    fn enter_callback(&mut self, ctx: CtxId, site: Pc, st: State) -> R<()> {
        let Some(cb) = self.callbacks.get(&site).copied() else {
            return Err(self.internal(site, "a callback call has no recorded callback"));
        };
        let frames = st.frame_count() + 1;
        if frames > self.cfg.max_frames as usize {
            if self.strict {
                return Err(self.err(
                    site,
                    K::CallTooDeep {
                        frames,
                        max: self.cfg.max_frames,
                    },
                ));
            }
            // The run traps with CallDepthExceeded at the call.
            return Ok(());
        }
        let caller = st.cur().regs;
        let mut regs = [if self.strict {
            Value::NotInit
        } else {
            Value::UNKNOWN_SCALAR
        }; 11];
        let mut key = None;
        match cb.kind {
            CallbackKind::Loop => {
                regs[1] = Value::Scalar(crate::scalar::Scalar::below(cb.trips.saturating_sub(1)));
                regs[2] = caller[3];
            }
            CallbackKind::MapElem | CallbackKind::Timer => {
                // for_each_map_elem's signature made r1 a map handle; bpf_timer_set_callback's
                // made it a pointer into the value of the timer's map (Strict mode). Its map
                // must hold plain values.
                let m = match (cb.kind, caller[1]) {
                    (CallbackKind::MapElem, Value::MapHandle(m)) => m,
                    (CallbackKind::Timer, Value::Ptr(PtrKind::MapValue { map, .. }, _)) => map,
                    (CallbackKind::Timer, _) if !self.strict => {
                        // Checked mode: the map is not known; the callback is checked with
                        // unknown arguments, each access guarded at run time.
                        regs[1] = Value::UNKNOWN_SCALAR;
                        regs[2] = Value::UNKNOWN_SCALAR;
                        regs[3] = Value::UNKNOWN_SCALAR;
                        return self.push_callback(ctx, site, st, frames, regs, None, cb.target);
                    }
                    _ => {
                        return Err(self.internal(site, "a map callback without its map"));
                    }
                };
                let Some(def) = self.cfg.maps.get(m) else {
                    return Err(self.err(site, K::UnknownMap(m)));
                };
                // The kernel's verifier refuses maps whose type it does not iterate.
                if cb.kind == CallbackKind::MapElem
                    && def.map_type != 0
                    && !crate::config::iterable_map_type(def.map_type)
                {
                    let name = self
                        .cfg
                        .maps
                        .name(m)
                        .map_or_else(|| format!("map {m}"), |n| format!("map `{n}`"));
                    let ty = crate::config::map_type_name(def.map_type)
                        .map_or_else(|| format!("type {}", def.map_type), str::to_string);
                    return Err(self.err(
                        site,
                        K::Callback {
                            helper: "for_each_map_elem".into(),
                            reason: format!(
                                "{name} ({ty}) cannot be iterated: the kernel iterates only \
                                 hash, array, per-CPU hash, per-CPU array, LRU hash and LRU \
                                 per-CPU hash maps"
                            ),
                        },
                    ));
                }
                if def.inner.is_some() || def.prog_array {
                    return Err(self.err(
                        site,
                        K::Callback {
                            helper: "for_each_map_elem".into(),
                            reason: "the map must hold values, not programs or maps".into(),
                        },
                    ));
                }
                // The key: a copy at the bottom of the callback's own frame, initialised
                // (`bpfx_exec::frame_bytes_at`).
                if def.key_size == 0 || i64::from(def.key_size) > FRAME {
                    return Err(self.err(
                        site,
                        K::Callback {
                            helper: "for_each_map_elem".into(),
                            reason: format!("a key of {} bytes does not fit a frame", def.key_size),
                        },
                    ));
                }
                let n = FRAME;
                regs[1] = Value::MapHandle(m);
                regs[2] = Value::Ptr(
                    PtrKind::Stack {
                        frame: (frames - 1) as u32,
                    },
                    Off::known(-n),
                );
                regs[3] = Value::Ptr(
                    PtrKind::MapValue {
                        map: m,
                        nullable: false,
                        id: 0,
                        record: None,
                    },
                    Off::known(0),
                );
                if cb.kind == CallbackKind::MapElem {
                    regs[4] = caller[3];
                }
                key = Some((-n, i64::from(def.key_size)));
            }
        }
        self.push_callback(ctx, site, st, frames, regs, key, cb.target)
    }

    /// Pushes the callback's frame (registers `regs`, the key copy at `key` initialised) on
    /// `st` and merges it into the callback's entry.
    #[allow(clippy::too_many_arguments)]
    fn push_callback(
        &mut self,
        ctx: CtxId,
        site: Pc,
        mut st: State,
        frames: usize,
        mut regs: [Value; 11],
        key: Option<(i64, i64)>,
        target: Pc,
    ) -> R<()> {
        regs[10] = Value::Ptr(
            PtrKind::Stack {
                frame: (frames - 1) as u32,
            },
            Off::known(0),
        );
        let callee = self.intern(
            Some(ctx),
            CtxTag::Call(site),
            CtxKind::Call { call_site: site },
        );
        let mut frame = Frame::new(regs);
        if let Some((at, len)) = key {
            for b in at..at + len {
                let (i, p) = stack_byte(b);
                let s = &mut frame.stack[i];
                *s = Slot::Bytes(s.init_mask() | 1 << p);
            }
        }
        st.push_frame(frame);
        // Every entry after the first comes back from an earlier run of the callback: a
        // loop, widened at its head in both modes.
        self.merge(callee, target, st, true)
    }

    /// Strict mode: a store or atomic in a timer callback (a context under one of
    /// `async_roots`) that may touch the key copy at the bottom of frame 0 is refused, as the
    /// kernel refuses writes through its read-only `PTR_TO_MAP_KEY`.
    pub(super) fn check_key_unwritten(&self, ctx: CtxId, pc: Pc, op: &Op, st: &State) -> R<()> {
        let (base, off, size) = match *op {
            Op::Store {
                size, base, off, ..
            } => (base, off, i64::from(size.bytes())),
            Op::Atomic {
                width, base, off, ..
            } => (base, off, i64::from(width.bits() / 8)),
            _ => return Ok(()),
        };
        let mut root = ctx;
        while let Some(p) = self.parent(root) {
            root = p;
        }
        let Some(&key) = self.async_roots.get(&root) else {
            return Ok(());
        };
        let Value::Ptr(PtrKind::Stack { frame: 0 }, o) = st.cur().regs[base.index()] else {
            return Ok(());
        };
        let hits = match o.add_const(i64::from(off)) {
            Off::Range(lo, hi) => lo < -FRAME + key && hi + size > -FRAME,
            Off::Unknown => true,
        };
        if hits {
            return Err(self.err(
                pc,
                K::Callback {
                    helper: "timer_set_callback".into(),
                    reason: "the callback writes the key it is given, which is read-only".into(),
                },
            ));
        }
        Ok(())
    }

    /// The kernel's range check of a callback's result (`r0` at the callback's `exit` at
    /// `pc`, for the helper `call` at `site`), in both modes: a scalar in `[0, 1]`.
    pub(super) fn check_callback_result(&self, pc: Pc, site: Pc, r0: Value) -> R<()> {
        // A timer's callback must return 0 (the kernel's `tnum_const(0)` range).
        let timer = self
            .callbacks
            .get(&site)
            .is_some_and(|c| c.kind == CallbackKind::Timer);
        let max = if timer { 0 } else { 1 };
        if matches!(r0, Value::Scalar(x) if x.umax <= max) {
            return Ok(());
        }
        let id = match self.prog.get(site) {
            Some(Op::Call(CallTarget::Helper(id))) => *id,
            _ => 0,
        };
        let found = match r0 {
            Value::Scalar(x) => format!("r0 = {x}"),
            v => format!("r0 is {}", v.describe()),
        };
        let reason = if timer {
            format!("a timer callback must return 0, but {found}")
        } else {
            format!("it must return 0 or 1, but {found}")
        };
        Err(self.callback_err(pc, id, reason))
    }

    /// A return from the callback of the helper `call` at `site` (in context `parent`), `st`
    /// being the caller's state with its registers as at the `call`: the helper may call the
    /// callback again (entered anew, widened), or return, with an unknown scalar in r0 (an
    /// iteration count, or a negative error) and r1–r5 clobbered.
    pub(super) fn callback_return(&mut self, parent: CtxId, site: Pc, mut st: State) -> R<Flow> {
        self.enter_callback(parent, site, st.clone())?;
        self.clobber_after_helper(&mut st);
        Self::set(&mut st, Reg::R0, Value::UNKNOWN_SCALAR);
        Ok(Flow::Enter(parent, Pc(site.0 + 1), st))
    }
}

/// `BPF_MAX_LOOPS`: the most iterations `bpf_loop` runs; a larger `nr_loops` fails with
/// `-E2BIG` before any call.
pub(crate) const BPF_MAX_LOOPS: u64 = 1 << 23;
