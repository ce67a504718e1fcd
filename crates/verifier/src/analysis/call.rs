//! Calls: a helper call checked against the helper's signature (its arguments, the memory it
//! may read or write, its result), `callx` through a register holding a helper id, a local
//! call entering a new frame in a new context, and `exit` returning from one.

use super::state::stack_byte;
use super::{Analysis, Flow, R};
use crate::config::{ArgKind, ContextKind, MapRef, RetKind, SockKind, SockRet};
use crate::domain::{Frame, MAX_TRACKED_OFF, Off, PtrKind, Slot, State, Value};
use crate::error::VerifyErrorKind as K;
use crate::refs::{Held, Lock, Ref};
use bpfx_bytecode::{CallTarget, Op, Pc, Reg, RegSet};
use bpfx_exec::STACK_FRAME_SIZE;

use super::CtxId;

/// One memory argument of a helper call, as its signature describes it.
#[derive(Clone, Copy)]
struct MemArg {
    reg: Reg,
    v: Value,
    /// `(min, max)` bytes, when known.
    size: Option<(u64, u64)>,
    /// Whether a map value and the packet (in Strict mode, within its proven range) may be
    /// passed, besides the stack and the input memory.
    any_region: bool,
    read_only: bool,
    /// What the signature asks for, for the message when the argument is not it.
    expected: &'static str,
}

/// The memory a helper call may write, gathered over its arguments.
#[derive(Default)]
struct HelperWrites {
    /// Some write the analysis cannot place: every spill is forgotten.
    havoc: bool,
    /// Stack ranges the helper writes.
    stack: Vec<StackWrite>,
}

/// `n` bytes at `at` in the stack of frame `frame`, of which the first `sure` are written
/// and the rest may be.
struct StackWrite {
    frame: u32,
    at: i64,
    sure: u64,
    n: u64,
}
use super::ctx::{CtxKind, CtxTag};

const FRAME: i64 = STACK_FRAME_SIZE as i64;

/// The error for a reference still held where none may be (exit, tail call).
fn leak(r: Ref) -> K {
    if r.sock {
        K::SockNotReleased(r.at)
    } else {
        K::RecordNotReleased(r.at)
    }
}

/// `bpf_spin_lock`'s and `bpf_spin_unlock`'s ids (`enum bpf_func_id`).
const SPIN_LOCK: u32 = 93;
const SPIN_UNLOCK: u32 = 94;

impl Analysis<'_> {
    /// `callx r`: a call of the helper whose id `r` holds. Returns false when the call
    /// certainly traps.
    pub(super) fn check_callx(&mut self, pc: Pc, st: &mut State, r: Reg) -> R<bool> {
        let v = self.read(pc, st, r)?;
        match v {
            Value::Scalar(x) if x.konst().is_some_and(|id| id <= u64::from(u32::MAX)) => {
                let id = x.konst().unwrap_or_default();
                let id = id as u32;
                if self.callback_kind(id).is_some() {
                    return Err(self.callback_err(pc, id, "called through callx".into()));
                }
                if self.cfg.helpers.get(id).is_some() {
                    self.call_helper(pc, st, id)?;
                } else if self.strict {
                    return Err(self.err(pc, K::UnknownHelper(id)));
                } else {
                    // The run traps with UnknownHelper here.
                    return Ok(false);
                }
            }
            _ if self.strict => return Err(self.err(pc, K::UnknownCallTarget(r))),
            _ => {
                // Any helper may run: it may write any memory it is given.
                self.havoc(st);
                self.clobber_after_helper(st);
                Self::set(st, Reg::R0, Value::UNKNOWN_SCALAR);
            }
        }
        Ok(true)
    }

    /// Applies helper `id`'s signature; returns false when the call certainly traps.
    pub(super) fn call_helper(&mut self, pc: Pc, st: &mut State, id: u32) -> R<bool> {
        let Some(sig) = self.cfg.helpers.get(id) else {
            if self.strict {
                return Err(self.err(pc, K::UnknownHelper(id)));
            }
            return Ok(false);
        };
        let regs = st.cur().regs;
        let map_arg = sig
            .args
            .iter()
            .position(|k| *k == ArgKind::MapHandle)
            .map(|i| regs[i + 1]);
        let map = match map_arg {
            Some(Value::MapHandle(m)) => Some(m),
            _ => None,
        };
        let arg_err = |reg: Reg, expected: &'static str, v: Value| {
            self.err(
                pc,
                K::HelperArg {
                    helper: sig.name.clone(),
                    reg,
                    expected,
                    found: v.describe(),
                },
            )
        };
        let mut writes = HelperWrites::default();
        // The reference a `ReleaseRecord` argument gives back (Strict mode).
        let mut release = None;
        // The lock a `SpinLock` argument names (Strict mode).
        let mut lock = None;
        // The socket reference a `ReleaseSock` argument gives back (both modes), and the
        // one a `Sock` argument stands for (which a cast result stands for too).
        let mut release_sock = None;
        let mut sock_arg_ref = 0;
        for (i, (kind, reg)) in sig.args.iter().zip(RegSet::ARGS).enumerate() {
            let v = regs[i + 1];
            if self.strict && v == Value::NotInit {
                return Err(self.err(pc, K::UninitRegister(reg)));
            }
            self.check_held(pc, st, reg, v)?;
            match *kind {
                ArgKind::Scalar => {
                    if self.strict && !matches!(v, Value::Scalar(_)) {
                        return Err(arg_err(reg, "a scalar", v));
                    }
                }
                ArgKind::Anything => {}
                ArgKind::CtxOrNull if v == Value::konst(0) => {}
                ArgKind::Ctx | ArgKind::CtxOrNull => {
                    let ctx = matches!(v, Value::Ptr(PtrKind::Input { .. }, Off::Range(0, 0)));
                    // What Checked mode knows is no context pointer; the rest the helper checks.
                    let other = match v {
                        Value::Ptr(PtrKind::Input { .. }, Off::Range(lo, hi)) => lo > 0 || hi < 0,
                        Value::Ptr(PtrKind::Input { .. }, Off::Unknown) => false,
                        Value::Ptr(..) | Value::MapHandle(_) => !ctx,
                        _ => false,
                    };
                    if (self.strict && !ctx) || other {
                        let expected = if *kind == ArgKind::Ctx {
                            "the context (r1 at entry), at offset 0"
                        } else {
                            "the context (r1 at entry), at offset 0, or NULL"
                        };
                        return Err(arg_err(reg, expected, v));
                    }
                }
                // Checked by `check_callback_call` before this runs.
                ArgKind::Callback(_) => {}
                ArgKind::CallbackCtx => {
                    let ok =
                        matches!(v, Value::Ptr(PtrKind::Stack { .. }, _)) || v == Value::konst(0);
                    if self.strict && !ok {
                        return Err(arg_err(reg, "a pointer to the stack or NULL", v));
                    }
                }
                ArgKind::ConstStr => {
                    let ok = match v {
                        Value::Ptr(
                            PtrKind::MapValue {
                                map,
                                nullable: false,
                                ..
                            },
                            Off::Range(lo, hi),
                        ) => self.cfg.maps.get(map).is_some_and(|d| {
                            d.read_only && lo >= 0 && hi < i64::from(d.value_size)
                        }),
                        _ => false,
                    };
                    if self.strict && !ok {
                        return Err(arg_err(
                            reg,
                            "a pointer into a read-only map value (a constant string)",
                            v,
                        ));
                    }
                }
                ArgKind::MapHandle => {
                    // A map handle is a capability only `lddw` creates: no mode forges one.
                    let Value::MapHandle(m) = v else {
                        return Err(arg_err(reg, "a map handle", v));
                    };
                    // A map of maps is read by `map_lookup_elem` only (the kernel's
                    // map/helper compatibility rule): no mode passes it to another helper.
                    let lookup = sig.args == [ArgKind::MapHandle, ArgKind::MapKey]
                        && sig.ret == RetKind::MapValueOrNull;
                    if !lookup && self.cfg.maps.get(m).is_some_and(|d| d.inner.is_some()) {
                        return Err(self.err(
                            pc,
                            K::HelperArg {
                                helper: sig.name.clone(),
                                reg,
                                expected: "a map handle other than a map of maps",
                                found: "the handle of a map of maps",
                            },
                        ));
                    }
                    // Helper and map types the kernel pairs (`get_stackid` and stack trace
                    // maps) reach each other only: the signature names the type it takes.
                    let ty = self.cfg.maps.get(m).map_or(0, |d| d.map_type);
                    if ty != 0 && sig.refused_map_types.contains(&ty) {
                        return Err(self.err(
                            pc,
                            K::HelperArg {
                                helper: sig.name.clone(),
                                reg,
                                expected: "a map handle of a type this program may pass to it",
                                found: crate::config::map_type_name(ty)
                                    .unwrap_or("the handle of a map of another type"),
                            },
                        ));
                    }
                    let refused = match sig.map_type {
                        Some(want) => ty != 0 && ty != want,
                        None => crate::config::exclusive_map_type(ty),
                    };
                    if refused {
                        // The exclusive types (`exclusive_map_type`): stack trace maps and
                        // socket-storage maps; the helpers that name a type.
                        let (expected, found) = match (sig.map_type, ty) {
                            (Some(24), _) => (
                                "the handle of a socket-storage map",
                                "the handle of a map that is not a socket-storage map",
                            ),
                            (Some(_), _) => (
                                "the handle of a stack trace map",
                                "the handle of a map that is not a stack trace map",
                            ),
                            (None, 24) => (
                                "a map handle other than a socket-storage map (only \
                                 sk_storage_get and sk_storage_delete reach one)",
                                "the handle of a socket-storage map",
                            ),
                            (None, _) => (
                                "a map handle other than a stack trace map (only get_stackid \
                                 reaches one)",
                                "the handle of a stack trace map",
                            ),
                        };
                        return Err(self.err(
                            pc,
                            K::HelperArg {
                                helper: sig.name.clone(),
                                reg,
                                expected,
                                found,
                            },
                        ));
                    }
                }
                ArgKind::ProgArray => {
                    // The map's type decides what the helper does with it: no mode accepts
                    // another kind of map where a program array is due.
                    let Value::MapHandle(m) = v else {
                        return Err(arg_err(reg, "the handle of a program array", v));
                    };
                    if !self.cfg.maps.get(m).is_some_and(|d| d.prog_array) {
                        return Err(self.err(
                            pc,
                            K::HelperArg {
                                helper: sig.name.clone(),
                                reg,
                                expected: "the handle of a program array",
                                found: "the handle of a map that is not a program array",
                            },
                        ));
                    }
                }
                ArgKind::PtrToReadOnlyMemOrNull { size_arg }
                    if v == Value::konst(0)
                        && size_arg
                            .and_then(|j| regs.get(j + 1))
                            .is_some_and(|s| matches!(s, Value::Scalar(x) if x.umax == 0)) => {}
                ArgKind::PtrToMem { size_arg }
                | ArgKind::PtrToReadOnlyMem { size_arg }
                | ArgKind::PtrToReadOnlyMemOrNull { size_arg } => {
                    let reads_only = !matches!(kind, ArgKind::PtrToMem { .. });
                    // A size known as a range is checked at its maximum (and only its minimum
                    // is surely written).
                    let size = match size_arg {
                        Some(j) => match regs.get(j + 1) {
                            Some(Value::Scalar(x)) if x.umax <= MAX_TRACKED_OFF as u64 => {
                                Some((x.umin, x.umax))
                            }
                            _ if self.strict => {
                                let sr = RegSet::ARGS.iter().nth(j).unwrap_or(Reg::R0);
                                return Err(self.err(pc, K::HelperSize(sr, sig.name.clone())));
                            }
                            _ => None,
                        },
                        None => None,
                    };
                    let arg = MemArg {
                        reg,
                        v,
                        size,
                        any_region: true,
                        read_only: reads_only,
                        expected: "a pointer to memory",
                    };
                    self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                }
                ArgKind::PtrToReadOnlyFixedMem { size } => {
                    let n = u64::from(size);
                    let arg = MemArg {
                        reg,
                        v,
                        size: Some((n, n)),
                        any_region: true,
                        read_only: true,
                        expected: "a pointer to memory",
                    };
                    self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                }
                ArgKind::PtrToLongOut => {
                    let arg = MemArg {
                        reg,
                        v,
                        size: Some((8, 8)),
                        any_region: true,
                        read_only: false,
                        expected: "a pointer to 8 writable bytes",
                    };
                    self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                }
                // The helper checks that the timer lies in a map's memory (its state is kept
                // on the host side, by the timer's address).
                ArgKind::Timer => {
                    let at_timer = self.timer_field(v);
                    // Checked mode refuses what it knows is no timer (a map value at another
                    // offset, or of a map without one) and leaves the rest to the helper.
                    let known_other = matches!(
                        v,
                        Value::Ptr(PtrKind::MapValue { .. }, Off::Range(a, b)) if a == b
                    ) || matches!(
                        v,
                        Value::Ptr(PtrKind::Stack { .. } | PtrKind::Input { .. }, _)
                    );
                    match at_timer {
                        Some((_, Some(off), a)) if i64::from(off) == a => {}
                        _ if !self.strict && !known_other => {}
                        Some((_, None, _)) => {
                            return Err(arg_err(
                                reg,
                                "a pointer to the struct bpf_timer of a map value, but the \
                                 map's value type (its BTF) has no bpf_timer field",
                                v,
                            ));
                        }
                        _ => {
                            return Err(arg_err(
                                reg,
                                "a non-null pointer to a map value at exactly the offset of its \
                                 struct bpf_timer field",
                                v,
                            ));
                        }
                    }
                    if self.strict {
                        let arg = MemArg {
                            reg,
                            v,
                            size: Some((16, 16)),
                            any_region: true,
                            read_only: true,
                            expected: "a pointer to a timer in a map value",
                        };
                        self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                    }
                }
                ArgKind::TimerMap => {
                    let Value::MapHandle(m) = v else {
                        return Err(arg_err(reg, "a map handle", v));
                    };
                    let timer_map = match regs[1] {
                        Value::Ptr(PtrKind::MapValue { map, .. }, _) => Some(map),
                        _ => None,
                    };
                    if self.strict && timer_map != Some(m) {
                        return Err(arg_err(reg, "the map whose value holds the timer (r1)", v));
                    }
                }
                // The helper checks that the lock lies in a map's memory (a lock is kept on
                // the host side, by its address, so no value can break a run through it).
                ArgKind::SpinLock if !self.strict => {}
                ArgKind::SpinLock => {
                    let aligned = match v {
                        Value::Ptr(
                            PtrKind::MapValue {
                                map,
                                nullable: false,
                                record: None,
                                id,
                            },
                            Off::Range(a, b),
                        ) if a == b && a % 4 == 0 => Some(Lock {
                            map,
                            id,
                            off: a,
                            at: pc,
                            held: Held::Always,
                        }),
                        _ => None,
                    };
                    lock = aligned;
                    if aligned.is_none() {
                        return Err(arg_err(
                            reg,
                            "a non-null pointer to a 4-byte aligned lock at a known offset of a map value",
                            v,
                        ));
                    }
                    let arg = MemArg {
                        reg,
                        v,
                        size: Some((4, 4)),
                        any_region: true,
                        read_only: true,
                        expected: "a pointer to a lock in a map value",
                    };
                    self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                }
                ArgKind::Sock | ArgKind::ReleaseSock => match v {
                    Value::Ptr(PtrKind::Sock { nullable: true, .. }, _) => {
                        return Err(self.err(pc, K::MaybeNull(reg)));
                    }
                    Value::Ptr(PtrKind::Sock { ref_obj, .. }, _)
                        if *kind == ArgKind::ReleaseSock && ref_obj != 0 =>
                    {
                        release_sock = Some(ref_obj);
                    }
                    Value::Ptr(PtrKind::Sock { ref_obj, .. }, _) if *kind == ArgKind::Sock => {
                        sock_arg_ref = ref_obj;
                    }
                    v => {
                        let expected = if *kind == ArgKind::Sock {
                            "a socket pointer (checked not null)"
                        } else {
                            "a socket reference (from sk_lookup_tcp, sk_lookup_udp or \
                             skc_lookup_tcp, checked not null)"
                        };
                        return Err(arg_err(reg, expected, v));
                    }
                },
                ArgKind::SockOrNull => match v {
                    v if v == Value::konst(0) => {}
                    Value::Ptr(
                        PtrKind::Sock {
                            kind: SockKind::Full,
                            ref_obj,
                            ..
                        },
                        _,
                    ) => sock_arg_ref = ref_obj,
                    v => {
                        return Err(arg_err(reg, "a sock pointer or NULL", v));
                    }
                },
                ArgKind::ReleaseRecord if self.strict => {
                    release = Some(self.release_arg(pc, &sig.name, reg, v)?);
                }
                // The helper finds the record itself (or fails the call).
                ArgKind::ReleaseRecord => {}
                ArgKind::PtrToStackOrMem => {
                    let arg = MemArg {
                        reg,
                        v,
                        size: None,
                        any_region: false,
                        read_only: false,
                        expected: "a pointer to the stack or input memory",
                    };
                    self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                }
                // NULL: no initial value (`sk_storage_get`).
                ArgKind::MapValueOrNull if v == Value::konst(0) => {}
                ArgKind::MapKey
                | ArgKind::MapValue
                | ArgKind::MapValueOut
                | ArgKind::MapValueOrNull => {
                    let def = map.and_then(|m| self.cfg.maps.get(m));
                    let size = def.map(|d| {
                        let n = u64::from(if *kind == ArgKind::MapKey {
                            d.key_size
                        } else {
                            d.value_size
                        });
                        (n, n)
                    });
                    if self.strict && size.is_none() {
                        let m = map.unwrap_or(MapRef::Fd(-1));
                        return Err(self.err(pc, K::UnknownMap(m)));
                    }
                    let expected = if *kind == ArgKind::MapKey {
                        "a pointer to a map key"
                    } else {
                        "a pointer to a map value"
                    };
                    // The key and the value to store are read; a value out is written.
                    let reads_only = *kind != ArgKind::MapValueOut;
                    let arg = MemArg {
                        reg,
                        v,
                        size,
                        any_region: true,
                        read_only: reads_only,
                        expected,
                    };
                    self.helper_mem(pc, st, &sig.name, arg, &mut writes)?;
                }
            }
        }
        // Effects: memory the helper may write, then the registers. The first `sure` bytes
        // are written; the rest up to `n` may be, which still ends any spill there.
        if writes.havoc {
            self.havoc(st);
        }
        if let Some(id) = release {
            st.refs.drop_ref(id);
        }
        if let Some(id) = release_sock {
            st.refs.drop_ref(id);
        }
        if let Some(l) = lock {
            self.take_or_release_lock(pc, st, id, l)?;
        }
        // A tail call that succeeds never comes back: a record held there would never be
        // released (the kernel's "tail_call would lead to reference leak").
        // Only Strict mode tracks records; both modes track sockets.
        if sig.args.contains(&ArgKind::ProgArray)
            && let Some(r) = st.refs.first()
        {
            return Err(self.err(pc, leak(r)));
        }
        for StackWrite {
            frame,
            at: a,
            sure,
            n,
        } in writes.stack
        {
            let Some(fr) = st.frame_mut(frame as usize) else {
                return Err(self.internal(pc, "a stack pointer names a frame the state has not"));
            };
            for b in a..a + n as i64 {
                let (i, p) = stack_byte(b);
                let s = &mut fr.stack[i];
                let written = if b < a + sure as i64 { 1 << p } else { 0 };
                *s = Slot::Bytes(s.init_mask() | written);
            }
        }
        if let RetKind::MemOrNull { size_arg } = sig.ret
            && self.strict
            && !matches!(regs.get(size_arg + 1), Some(Value::Scalar(x)) if x.konst().is_some_and(|n| n <= u64::from(u32::MAX)))
        {
            let sr = RegSet::ARGS.iter().nth(size_arg).unwrap_or(Reg::R0);
            return Err(self.err(pc, K::HelperSizeNotConst(sr, sig.name.clone())));
        }
        // A lookup in a socket map or socket hash (the kernel's types 15 and 18) gives the
        // entry's socket, a reference every path must release (the kernel's
        // `PTR_TO_SOCKET_OR_NULL` from an acquiring `map_lookup_elem`).
        let ret = match (sig.ret, map.and_then(|m| self.cfg.maps.get(m))) {
            (RetKind::MapValueOrNull, Some(d)) if matches!(d.map_type, 15 | 18) => {
                RetKind::SockOrNull {
                    kind: SockKind::Full,
                    how: SockRet::Acquire,
                }
            }
            (r, _) => r,
        };
        let r0 = match ret {
            RetKind::Scalar => Value::UNKNOWN_SCALAR,
            RetKind::MapValueOrNull => match map {
                // Each lookup's handle gets its own id, as a map value does: a null check
                // decides its copies (`branch.rs`).
                Some(m) if let Some(inner) = self.cfg.maps.get(m).and_then(|d| d.inner) => {
                    self.next_id += 1;
                    Value::MapHandleOrNull(inner, self.next_id)
                }
                Some(m) => Value::Ptr(
                    PtrKind::MapValue {
                        map: m,
                        nullable: true,
                        id: {
                            self.next_id += 1;
                            self.next_id
                        },
                        record: None,
                    },
                    Off::known(0),
                ),
                None => Value::UNKNOWN_SCALAR,
            },
            // The size was checked constant (Strict) with the arguments; otherwise the
            // record's accesses keep their run-time guards.
            RetKind::MemOrNull { size_arg } => match (map, regs.get(size_arg + 1)) {
                (Some(m), Some(Value::Scalar(x)))
                    if let Some(n) = x.konst().and_then(|n| u32::try_from(n).ok()) =>
                {
                    self.next_id += 1;
                    let id = self.next_id;
                    // The record is a reference this path must release (its null edge
                    // drops it: `branch.rs`).
                    if self.strict {
                        st.refs.acquire(id, pc);
                    }
                    Value::Ptr(
                        PtrKind::MapValue {
                            map: m,
                            nullable: true,
                            id,
                            record: Some(n),
                        },
                        Off::known(0),
                    )
                }
                _ => Value::UNKNOWN_SCALAR,
            },
            RetKind::SockOrNull { kind, how } => {
                self.next_id += 1;
                let fresh = self.next_id;
                let (id, ref_obj) = match how {
                    SockRet::Acquire => {
                        // Strict mode gives each visit of the call its own reference, as
                        // the kernel does; Checked mode's fixpoint needs a finite set of
                        // references, so it names the reference by the call: acquiring it
                        // again while it is held is a leak of the first one.
                        let id = if self.strict {
                            fresh
                        } else {
                            0x8000_0000 | pc.0
                        };
                        if let Some(r) = st.refs.get(id) {
                            return Err(self.err(pc, leak(r)));
                        }
                        st.refs.acquire_sock(id, pc);
                        self.sock_refs.insert(id, pc);
                        (id, id)
                    }
                    SockRet::Cast => (fresh, sock_arg_ref),
                    SockRet::Plain => (fresh, 0),
                };
                Value::Ptr(
                    PtrKind::Sock {
                        kind,
                        nullable: true,
                        id,
                        ref_obj,
                    },
                    Off::known(0),
                )
            }
            RetKind::Void if self.strict => Value::NotInit,
            RetKind::Void => Value::UNKNOWN_SCALAR,
        };
        self.clobber_after_helper(st);
        if sig.changes_packet {
            // As the kernel does: in Strict mode an invalidated pointer is uninitialised (any
            // use is an error), in Checked mode an unknown scalar whose accesses keep their
            // run-time guards.
            let (reg, slot) = if self.strict {
                (Value::NotInit, Slot::EMPTY)
            } else {
                (Value::UNKNOWN_SCALAR, Slot::Bytes(0xff))
            };
            st.forget_packet(reg, slot);
        }
        Self::set(st, Reg::R0, r0);
        if map_arg.is_some() {
            self.record_map_call(pc, sig, map, &regs);
        }
        Ok(true)
    }

    /// Joins this visit of the map-taking helper call at `pc` into [`Analysis::map_calls`]:
    /// the map, when its handle is known, and whether the key argument lies wholly inside a
    /// stack frame at a known offset (for every visit, once joined).
    fn record_map_call(
        &mut self,
        pc: Pc,
        sig: &crate::config::HelperSig,
        map: Option<MapRef>,
        regs: &[Value],
    ) {
        let key = sig.args.iter().position(|k| *k == ArgKind::MapKey);
        let site = map.map(|m| {
            let key_on_stack = match (key, self.cfg.maps.get(m)) {
                (Some(k), Some(def)) => matches!(
                    regs.get(k + 1),
                    Some(Value::Ptr(PtrKind::Stack { .. }, o)) if o.exact().is_some_and(|at| {
                        at >= -FRAME && at + i64::from(def.key_size) <= 0
                    })
                ),
                _ => false,
            };
            crate::MapCall {
                map: m,
                key_on_stack,
            }
        });
        let joined = match self.map_calls.get(&pc) {
            None => site,
            Some(prev) => match (*prev, site) {
                (Some(a), Some(b)) if a.map == b.map => Some(crate::MapCall {
                    map: a.map,
                    key_on_stack: a.key_on_stack && b.key_on_stack,
                }),
                _ => None,
            },
        };
        self.map_calls.insert(pc, joined);
    }

    /// In `Strict` mode, refuses a read of `reg` holding `v` when `v` is a ring buffer record
    /// not held on every path to `pc` (released by a submit or discard), or one whose
    /// reservation two paths disagree on (`refs.rs`).
    pub(super) fn check_held(&self, pc: Pc, st: &State, reg: Reg, v: Value) -> R<()> {
        // A socket standing for a reference (both modes).
        if let Value::Ptr(PtrKind::Sock { ref_obj, .. }, _) = v
            && ref_obj != 0
        {
            return match st.refs.get(ref_obj) {
                Some(Ref {
                    held: Held::Always, ..
                }) => Ok(()),
                Some(r) => Err(self.err(
                    pc,
                    K::SockReleased {
                        reg,
                        at: r.at,
                        on_some_paths: true,
                    },
                )),
                None => Err(self.err(
                    pc,
                    K::SockReleased {
                        reg,
                        at: self.sock_refs.get(&ref_obj).copied().unwrap_or(pc),
                        on_some_paths: false,
                    },
                )),
            };
        }
        let Value::Ptr(
            PtrKind::MapValue {
                id,
                record: Some(_),
                ..
            },
            _,
        ) = v
        else {
            return Ok(());
        };
        if !self.strict {
            return Ok(());
        }
        if id == 0 {
            return Err(self.err(pc, K::RecordUnknown(reg)));
        }
        match st.refs.held(id) {
            Some(Held::Always) => Ok(()),
            held => Err(self.err(
                pc,
                K::RecordReleased {
                    reg,
                    on_some_paths: held.is_some(),
                },
            )),
        }
    }

    /// What a `bpf_timer_*` helper's r1 `v` is known to point at: the map whose value it
    /// points into (non-null, at a known offset) with that map's timer offset and the
    /// pointer's offset; `None` for any other value.
    pub(super) fn timer_field(&self, v: Value) -> Option<(MapRef, Option<u32>, i64)> {
        match v {
            Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable: false,
                    record: None,
                    ..
                },
                Off::Range(a, b),
            ) if a == b => self.cfg.maps.get(map).map(|d| (map, d.timer_off, a)),
            _ => None,
        }
    }

    /// The reference a `ReleaseRecord` argument `v` in `reg` releases (`Strict` mode): the
    /// non-null record itself, at offset 0 (`check_held` has seen it held).
    fn release_arg(&self, pc: Pc, helper: &str, reg: Reg, v: Value) -> R<u32> {
        match v {
            Value::Ptr(
                PtrKind::MapValue {
                    nullable: true,
                    record: Some(_),
                    ..
                },
                _,
            ) => Err(self.err(pc, K::MaybeNull(reg))),
            Value::Ptr(
                PtrKind::MapValue {
                    id,
                    record: Some(_),
                    ..
                },
                o,
            ) => {
                if o != Off::known(0) {
                    return Err(self.err(pc, K::RecordOffset(reg)));
                }
                Ok(id)
            }
            v => Err(self.err(
                pc,
                K::HelperArg {
                    helper: helper.to_string(),
                    reg,
                    expected: "a ring buffer record (from ringbuf_reserve)",
                    found: v.describe(),
                },
            )),
        }
    }

    pub(super) fn clobber_after_helper(&self, st: &mut State) {
        let v = self.uninit();
        let regs = &mut st.cur_mut().regs;
        for r in RegSet::ARGS {
            regs[r.index()] = v;
        }
    }

    /// Checks one memory argument of helper `helper`. Records the bytes the helper may
    /// write (a precise stack range: the minimum size written, up to the maximum touched) or
    /// asks for a havoc.
    fn helper_mem(
        &self,
        pc: Pc,
        st: &State,
        helper: &str,
        arg: MemArg,
        writes: &mut HelperWrites,
    ) -> R<()> {
        let MemArg {
            reg,
            v,
            size,
            any_region,
            read_only,
            expected,
        } = arg;
        let (sure, size) = match size {
            Some((lo, hi)) => (lo, Some(hi)),
            None => (0, None),
        };
        // A helper writing the packet context could forge data_end, which packet proofs trust.
        if self.strict
            && !read_only
            && matches!(v, Value::Ptr(PtrKind::Input { .. }, _))
            && matches!(self.cfg.context, ContextKind::Fields(_))
        {
            return Err(self.err(pc, K::ContextFieldWrite { reg }));
        }
        let ok_kind = match v {
            Value::Ptr(PtrKind::Stack { .. } | PtrKind::Input { .. }, _) => true,
            Value::Ptr(PtrKind::MapValue { map, nullable, .. }, _) if any_region => {
                if nullable && self.strict {
                    return Err(self.err(pc, K::MaybeNull(reg)));
                }
                // Checked mode leaves it to the helper: guest memory refuses the write.
                if !read_only && self.strict && self.cfg.maps.get(map).is_some_and(|d| d.read_only)
                {
                    return Err(self.err(pc, K::ReadOnlyMapWrite { reg, map }));
                }
                true
            }
            Value::Ptr(PtrKind::Packet { .. } | PtrKind::PacketMeta, _) if any_region => {
                if !read_only && self.layout.is_some_and(|l| l.packet_read_only) {
                    return Err(self.err(pc, K::PacketReadOnly(reg)));
                }
                if self.strict {
                    // As the kernel's check of a helper's memory argument: the proven range
                    // must cover the whole size, read or written (packet stores are allowed
                    // wherever a packet pointer exists, as `mem_packet` checks them).
                    return self.helper_mem_packet(pc, st, reg, v, size);
                }
                true
            }
            _ => false,
        };
        if !ok_kind {
            if self.strict {
                return Err(self.err(
                    pc,
                    K::HelperArg {
                        helper: helper.to_string(),
                        reg,
                        expected,
                        found: v.describe(),
                    },
                ));
            }
            writes.havoc |= !read_only;
            return Ok(());
        }
        // A bounded variable offset into a map value (a ring buffer record included) or plain
        // input memory is checked at both ends, as the kernel's `check_helper_mem_access`
        // checks a map value's `smin` and `umax` (clang's format pointer chosen by a branch
        // between two `.rodata` strings). Nothing on the stack changes: these are not stack
        // writes. The stack keeps the kernel's unprivileged rule (constant offsets only), and
        // the packet has its own rule above.
        if self.strict
            && let (Value::Ptr(kind, Off::Range(lo, hi)), Some(n)) = (v, size)
            && lo != hi
        {
            let limit = match kind {
                PtrKind::MapValue { map, record, .. } => Some((
                    u64::from(record.unwrap_or(self.cfg.maps.get(map).map_or(0, |d| d.value_size))),
                    true,
                )),
                PtrKind::Input { .. } if self.cfg.context == ContextKind::Memory => {
                    self.cfg.mem_size.map(|m| (m, false))
                }
                _ => None,
            };
            if let Some((limit, map)) = limit {
                let inside = lo >= 0 && (hi as u64).checked_add(n).is_some_and(|e| e <= limit);
                if inside {
                    return Ok(());
                }
                let off = if lo < 0 { lo } else { hi };
                return Err(self.err(
                    pc,
                    if map {
                        K::MapValueOutOfBounds {
                            off,
                            size: n,
                            value_size: limit as u32,
                        }
                    } else {
                        K::InputOutOfBounds {
                            off,
                            size: n,
                            mem: limit,
                        }
                    },
                ));
            }
        }
        // Bounds and initialisation of stack ranges of known size.
        // Only exact offsets are checked here; any other range is treated as unknown.
        let v = match v {
            Value::Ptr(k, o) if o.exact().is_none() => Value::Ptr(k, Off::Unknown),
            v => v,
        };
        let at = match v {
            Value::Ptr(_, o) => o.exact().unwrap_or(0),
            _ => 0,
        };
        match (v, size) {
            (Value::Ptr(PtrKind::Stack { frame }, Off::Range(..)), Some(n))
                if at >= -FRAME && n <= FRAME as u64 && at + n as i64 <= 0 =>
            {
                let a = at;
                if read_only {
                    let Some(fr) = st.frame(frame as usize) else {
                        return Err(
                            self.internal(pc, "a stack pointer names a frame the state has not")
                        );
                    };
                    for b in a..a + n as i64 {
                        let (i, p) = stack_byte(b);
                        if fr.stack[i].init_mask() & (1 << p) == 0 && self.strict {
                            return Err(self.err(
                                pc,
                                K::UninitStack {
                                    frame: frame as u8,
                                    off: a,
                                    size: n as u32,
                                },
                            ));
                        }
                    }
                } else {
                    writes.stack.push(StackWrite {
                        frame,
                        at: a,
                        sure,
                        n,
                    });
                }
                Ok(())
            }
            (Value::Ptr(PtrKind::Stack { .. }, Off::Range(..)), Some(n)) if self.strict => {
                let a = at;
                Err(self.err(
                    pc,
                    K::StackOutOfBounds {
                        off: a,
                        size: n.min(u64::from(u32::MAX)) as u32,
                    },
                ))
            }
            (Value::Ptr(PtrKind::Input { .. }, Off::Range(..)), Some(n)) if self.strict => {
                let a = at;
                match self.cfg.mem_size {
                    Some(mem) if a >= 0 && (a as u64).checked_add(n).is_some_and(|e| e <= mem) => {
                        Ok(())
                    }
                    Some(mem) => Err(self.err(
                        pc,
                        K::InputOutOfBounds {
                            off: a,
                            size: n,
                            mem,
                        },
                    )),
                    None => Err(self.err(pc, K::InputSizeUnknown)),
                }
            }
            (Value::Ptr(PtrKind::MapValue { map, record, .. }, Off::Range(..)), Some(n))
                if self.strict =>
            {
                let a = at;
                let vs = record.unwrap_or(self.cfg.maps.get(map).map_or(0, |d| d.value_size));
                if a >= 0
                    && (a as u64)
                        .checked_add(n)
                        .is_some_and(|e| e <= u64::from(vs))
                {
                    Ok(())
                } else {
                    Err(self.err(
                        pc,
                        K::MapValueOutOfBounds {
                            off: a,
                            size: n,
                            value_size: vs,
                        },
                    ))
                }
            }
            (Value::Ptr(kind, Off::Unknown), Some(_)) if self.strict => Err(self.err(
                pc,
                K::VariableOffset {
                    reg,
                    what: Value::Ptr(kind, Off::Unknown).describe(),
                },
            )),
            _ => {
                // Size unknown (or the helper bounds itself): any writable byte may change.
                writes.havoc |= !read_only;
                Ok(())
            }
        }
    }

    /// A packet (or packet metadata) pointer as a sized helper memory argument, in Strict
    /// mode: `[ptr, ptr + size)` must lie below the range a comparison with `data_end` (or,
    /// for metadata, with `data`) proved, at the pointer's highest offset, or for a packet
    /// pointer at its lowest offset against the range proven for its id.
    fn helper_mem_packet(
        &self,
        pc: Pc,
        st: &State,
        reg: Reg,
        v: Value,
        size: Option<u64>,
    ) -> R<()> {
        let n = size.and_then(|n| i64::try_from(n).ok());
        let covered = match (v, n) {
            (Value::Ptr(PtrKind::Packet { id }, at), Some(n)) => {
                super::mem::packet_covers(st, Some(id), at, n)
            }
            (Value::Ptr(PtrKind::PacketMeta, at), Some(n)) => {
                super::mem::packet_covers(st, None, at, n)
            }
            _ => false,
        };
        if covered {
            Ok(())
        } else {
            Err(self.err(pc, K::PacketUnproven(reg)))
        }
    }

    pub(super) fn check_local_call(
        &mut self,
        ctx: CtxId,
        pc: Pc,
        mut st: State,
        entry: Pc,
    ) -> R<Flow> {
        let frames = st.frame_count() + 1;
        if frames > self.cfg.max_frames as usize {
            if self.strict {
                return Err(self.err(
                    pc,
                    K::CallTooDeep {
                        frames,
                        max: self.cfg.max_frames,
                    },
                ));
            }
            // The run traps with CallDepthExceeded here.
            return Ok(Flow::Stop);
        }
        let caller = st.cur().regs;
        let mut regs = if self.strict {
            [Value::NotInit; 11]
        } else {
            caller
        };
        for r in RegSet::ARGS {
            regs[r.index()] = caller[r.index()];
        }
        regs[10] = Value::Ptr(
            PtrKind::Stack {
                frame: (frames - 1) as u32,
            },
            Off::known(0),
        );
        let callee = self.intern(Some(ctx), CtxTag::Call(pc), CtxKind::Call { call_site: pc });
        st.push_frame(Frame::new(regs));
        Ok(Flow::Enter(callee, entry, st))
    }

    /// `Strict` mode, a lock held: refuses what the kernel refuses in a `bpf_spin_lock`-ed
    /// region (the UAPI's `bpf_spin_lock` description; the kernel's "function calls are not
    /// allowed while holding a lock", "BPF_LD_[ABS|IND] cannot be used inside
    /// bpf_spin_lock-ed region", "bpf_spin_unlock is missing"): every call but
    /// `bpf_spin_unlock` (checked against the lock by [`Analysis::take_or_release_lock`]),
    /// so a second lock, a tail call, a callback-taking helper and a local call too;
    /// `ld_abs`/`ld_ind`; `exit`.
    pub(super) fn check_while_locked(&self, pc: Pc, op: &Op, held: Lock) -> R<()> {
        let what = match *op {
            Op::Call(CallTarget::Helper(SPIN_UNLOCK)) => return Ok(()),
            Op::Call(CallTarget::Helper(SPIN_LOCK)) => "a second bpf_spin_lock".to_string(),
            Op::Call(CallTarget::Helper(id)) => match self.cfg.helpers.get(id) {
                Some(sig) => format!("a call of helper {}", sig.name),
                None => format!("a call of helper #{id}"),
            },
            Op::Call(CallTarget::Local { off }) => {
                format!("a call of the function at {}", pc.jump(off))
            }
            Op::Call(CallTarget::Register(r)) => format!("a call through {r}"),
            Op::LoadPacket { .. } => "ld_abs/ld_ind".to_string(),
            Op::Exit => "exit".to_string(),
            _ => return Ok(()),
        };
        Err(self.err(
            pc,
            K::LockHeld {
                what,
                at: held.at,
                on_some_paths: held.held == Held::OnSomePaths,
            },
        ))
    }

    /// `Strict` mode, after the arguments of a helper taking a lock (`l`, at its exact place)
    /// are checked: `bpf_spin_lock` takes it (no lock is held: [`Analysis::check_while_locked`]
    /// refused the call otherwise); `bpf_spin_unlock` releases it, which must be the lock
    /// held on every path (the kernel's "bpf_spin_unlock without taking a lock", "bpf_spin_unlock
    /// of different lock").
    fn take_or_release_lock(&self, pc: Pc, st: &mut State, helper: u32, l: Lock) -> R<()> {
        match helper {
            SPIN_LOCK => st.refs.set_lock(Some(l)),
            SPIN_UNLOCK => {
                let same = |h: &Lock| (h.map, h.id, h.off) == (l.map, l.id, l.off);
                match st.refs.lock() {
                    Some(h) if same(&h) && h.held == Held::Always => st.refs.set_lock(None),
                    Some(h) if same(&h) => {
                        return Err(self.err(
                            pc,
                            K::UnlockNotHeld(format!(
                                "the lock taken at {} on some paths to here only",
                                h.at
                            )),
                        ));
                    }
                    Some(h) => {
                        return Err(self.err(
                            pc,
                            K::UnlockNotHeld(format!(
                                "another lock than the one taken at {}",
                                h.at
                            )),
                        ));
                    }
                    None => {
                        return Err(self.err(pc, K::UnlockNotHeld("a lock not held".into())));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn check_exit(&mut self, ctx: CtxId, pc: Pc, mut st: State) -> R<Flow> {
        let r0 = st.cur().regs[0];
        // A return from inside a loop leaves its iterations behind.
        let (call, call_site) = self.call_of(ctx);
        let Some(parent) = self.parent(call) else {
            // Only Strict mode tracks records; both modes track sockets.
            if let Some(r) = st.refs.first() {
                return Err(self.err(pc, leak(r)));
            }
            if self.async_roots.contains_key(&call) {
                // A timer callback's return, in both modes: 0.
                self.check_callback_result(pc, call_site, r0)?;
                return Ok(Flow::Stop);
            }
            if self.strict {
                match r0 {
                    Value::NotInit => return Err(self.err(pc, K::UninitRegister(Reg::R0))),
                    Value::Scalar(s) => {
                        if let ContextKind::Fields(l) = &self.cfg.context
                            && let Some((lo, hi)) = l.return_range
                            && (s.smin < lo || s.smax > hi)
                        {
                            let (smin, smax) = (s.smin, s.smax);
                            return Err(self.err(pc, K::ReturnRange { lo, hi, smin, smax }));
                        }
                    }
                    v => return Err(self.err(pc, K::ReturnNotScalar(v.describe()))),
                }
            }
            return Ok(Flow::Stop);
        };
        // A subprogram may return with r0 unset, as in the kernel (which checks r0 at the
        // main program's exit only): the caller's r0 is then uninitialised, and the caller's
        // first read of it is the error.
        let callback = self.callbacks.get(&call_site).copied();
        if callback.is_some() {
            self.check_callback_result(pc, call_site, r0)?;
        }
        let Some(callee) = st.pop_frame() else {
            return Err(self.internal(pc, "a return from a call finds no caller's frame"));
        };
        let gone = st.frame_count() as u32;
        // A callback's caller keeps its registers as at the helper's `call` until the helper
        // returns (`callback_return`).
        if callback.is_none() {
            let caller = st.cur_mut();
            caller.regs[0] = callee.regs[0];
            for r in RegSet::ARGS {
                caller.regs[r.index()] = if self.strict {
                    Value::NotInit
                } else {
                    callee.regs[r.index()]
                };
            }
        }
        // Pointers into the returning frame must not outlive it.
        let dangling =
            |v: &Value| matches!(v, Value::Ptr(PtrKind::Stack { frame }, _) if *frame >= gone);
        let depth = st.frame_count();
        for (d, fr) in st.frames_mut().enumerate() {
            if d + 1 == depth {
                for (r, v) in fr.regs.iter_mut().enumerate() {
                    if dangling(v) {
                        if self.strict {
                            return Err(self.err(pc, K::StackPointerEscapes(format!("r{r}"))));
                        }
                        *v = Value::UNKNOWN_SCALAR;
                    }
                }
            }
            for i in 0..fr.stack.len() {
                if let Slot::Spill(v) = &fr.stack[i]
                    && dangling(v)
                {
                    if self.strict {
                        let at = format!("the pointer spilled at fp{d}-{}", 8 * (i + 1));
                        return Err(self.err(pc, K::StackPointerEscapes(at)));
                    }
                    fr.stack[i] = Slot::Spill(Value::UNKNOWN_SCALAR);
                }
            }
        }
        if callback.is_some() {
            return self.callback_return(parent, call_site, st);
        }
        Ok(Flow::Enter(parent, Pc(call_site.0 + 1), st))
    }
}
