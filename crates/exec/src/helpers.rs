//! Helper functions, registered by id.

use crate::{GuestMemory, Trap, TrapKind};
use bpfx_bytecode::Pc;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Why a helper failed; the run stops with [`crate::TrapKind::HelperError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HelperError(pub String);

/// What a helper call that did not fail produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelperRet {
    /// The program goes on after the `call` with this value in r0.
    Value(u64),
    /// The program ends at the `call`, however deep in local calls it is, with this value as
    /// its result (uBPF's unwind function).
    Return(u64),
    /// The program ends at the `call` with a tail call: whoever runs it goes on with this
    /// target ([`End::TailCall`]).
    TailCall(TailCall),
    /// The helper calls a function of the program back (`bpf_loop`, `for_each_map_elem`): the
    /// engine serves the request ([`Callbacks`]) and r0 is what it finally gives.
    Callback(Callbacks),
}

/// What a callback-taking helper asks of the engine next ([`CallbackIter::next`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackStep {
    /// Call the callback with these r1–r5, in a new frame, and hand its r0 back.
    Call([u64; 5]),
    /// [`CallbackStep::Call`], with `bytes` copied first to the bottom of the callback's frame
    /// (from its r10 - 512: [`crate::frame_bytes_at`]) and argument `at` (0-based: 0 is r1)
    /// set to their address: what the helper lends the callback for one call
    /// (`for_each_map_elem`'s key).
    CallWithFrame {
        /// r1–r5 (argument `at` is replaced).
        args: [u64; 5],
        /// The bytes, at most a frame's.
        bytes: Vec<u8>,
        /// Which argument points to them.
        at: usize,
    },
    /// The helper is done: this is its result (r0 after the `call`).
    Done(u64),
}

/// The iteration of a callback-taking helper, driven by the engine: each call gets the
/// previous callback's r0 (`None` before the first) and says what to do next.
pub trait CallbackIter: Send {
    /// The next step, given the r0 of the callback just run (`None` before the first call);
    /// `mem` is the guest memory of the frame of the helper's `call`.
    fn next(
        &mut self,
        mem: &mut GuestMemory<'_>,
        last: Option<u64>,
    ) -> Result<CallbackStep, HelperError>;
}

impl fmt::Debug for dyn CallbackIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackIter(..)")
    }
}

/// A helper's request to call a function of the program back ([`HelperRet::Callback`]).
///
/// The engine calls the function at `target` (an absolute pc) as a local call from the
/// helper's `call` (a new frame, counted against the frame limit; r6–r9 and r10 as after any
/// local call) with the arguments [`CallbackIter::next`] gives, each instruction counted
/// against the budget, until the iteration is done. The engines take the function from the
/// verifier's fact for the `call` (`VerifiedProgram::callback`), which the verifier proved
/// equal to `target`; a `call` without such a fact, and any call in an unverified run, traps
/// with [`TrapKind::Unsupported`].
pub struct Callbacks {
    /// The callback's entry pc, as the program passed it (`lddw rX, func`).
    pub target: u64,
    /// The iteration.
    pub iter: Box<dyn CallbackIter>,
}

impl Clone for Callbacks {
    /// A request cannot be duplicated: its clone is a finished one (a helper result is
    /// cloned only by tests comparing endings; no engine clones a request it serves).
    fn clone(&self) -> Callbacks {
        Callbacks {
            target: self.target,
            iter: Box::new(Finished),
        }
    }
}

/// An iteration that is already over (the clone of a request).
struct Finished;

impl CallbackIter for Finished {
    fn next(
        &mut self,
        _: &mut GuestMemory<'_>,
        _: Option<u64>,
    ) -> Result<CallbackStep, HelperError> {
        Err(HelperError("a copied callback request cannot run".into()))
    }
}

impl PartialEq for Callbacks {
    /// The same request: the same target and the same iteration object.
    fn eq(&self, other: &Callbacks) -> bool {
        self.target == other.target
            && std::ptr::addr_eq(&*self.iter as *const dyn CallbackIter, &*other.iter)
    }
}

impl Eq for Callbacks {}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Callbacks(target {})", self.target)
    }
}

impl From<u64> for HelperRet {
    /// [`HelperRet::Value`].
    fn from(r0: u64) -> HelperRet {
        HelperRet::Value(r0)
    }
}

/// How a run ended without a trap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The program returned this value: by `exit` from its outermost function, at an
    /// out-of-bounds legacy packet load (0), or by a helper's [`HelperRet::Return`].
    Return(u64),
    /// A helper ended the program with a tail call ([`HelperRet::TailCall`]) at the `call` at
    /// `pc`: the caller goes on with `target` (on the same input, with the budget that is
    /// left), whose result is the result.
    TailCall {
        /// The `call` that ended the program.
        pc: Pc,
        /// The program to run next.
        target: TailCall,
    },
}

impl End {
    /// The value of a run that cannot follow tail calls: the program's result, or a
    /// [`TrapKind::Unsupported`] trap at the `call` of a tail call.
    #[inline]
    pub fn value(self) -> Result<u64, Trap> {
        match self {
            End::Return(r0) => Ok(r0),
            End::TailCall { pc, .. } => Err(Trap {
                kind: TrapKind::Unsupported,
                pc,
            }),
        }
    }
}

/// The program a tail call continues with. The engines never look inside: the embedder whose
/// helper made the call put it there and knows its type.
#[derive(Clone)]
pub struct TailCall(pub Arc<dyn Any + Send + Sync>);

impl PartialEq for TailCall {
    /// The same target: the same allocation.
    fn eq(&self, other: &TailCall) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TailCall {}

impl fmt::Debug for TailCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TailCall(..)")
    }
}

/// A helper: five `u64` arguments (r1–r5), guest memory for pointer arguments; it gives r0,
/// or ends the program ([`HelperRet`]), or fails.
pub type HelperFn =
    Arc<dyn Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<HelperRet, HelperError> + Send + Sync>;

/// A length computed from a helper call's five arguments ([`ArgLen::From`]), and the guest
/// memory of the call (whose [`GuestMemory::host`] state may say what a handle names).
pub type LenFn = Arc<dyn Fn(&[u64; 5], &GuestMemory<'_>) -> Option<u64> + Send + Sync>;

/// How many bytes a memory argument of a helper covers, as known at the call.
#[derive(Clone)]
pub enum ArgLen {
    /// The value of argument `i` (0-based: 0 is r1).
    Arg(usize),
    /// A length computed from the five arguments (for example a map's key size, from the map
    /// handle in another argument); `None` when the arguments name no length (an unknown map
    /// handle), and the helper then refuses the call itself.
    From(LenFn),
}

impl fmt::Debug for ArgLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgLen::Arg(i) => write!(f, "Arg(r{})", i + 1),
            ArgLen::From(_) => f.write_str("From(..)"),
        }
    }
}

/// A pointer argument of a helper together with the bytes from it the helper may touch: the
/// dispatch ([`Helpers::call`]) checks that range before the helper runs.
#[derive(Clone, Debug)]
pub struct MemArg {
    /// Index of the pointer argument (0-based: 0 is r1).
    pub ptr: usize,
    /// How many bytes from the pointer the helper may access.
    pub len: ArgLen,
    /// Whether the helper may write them (they must then be writable memory).
    pub write: bool,
}

impl MemArg {
    /// The range `[ptr, ptr + len)` this argument names in `args`, or `None` when its length
    /// is unknown. An index beyond r5 reads as `u64::MAX`, which no region holds.
    fn range(&self, args: &[u64; 5], mem: &GuestMemory<'_>) -> Option<(u64, u64)> {
        let at = |i: usize| args.get(i).copied().unwrap_or(u64::MAX);
        let len = match &self.len {
            ArgLen::Arg(i) => at(*i),
            ArgLen::From(f) => f(args, mem)?,
        };
        Some((at(self.ptr), len))
    }
}

/// One registered helper: the function and the memory arguments checked before it runs (or,
/// when `after_failure`, only when it fails: [`Helpers::set_mem_args_after_failure`]).
#[derive(Clone)]
struct Entry {
    f: HelperFn,
    mem: Arc<[MemArg]>,
    after_failure: bool,
}

/// The helpers a program may call, by id.
///
/// # Invariants
/// Every engine calls helpers only through [`Helpers::call`], so no helper, Rust or foreign,
/// sees a memory argument whose declared range lies outside the run's memory: the range check
/// is the one loads and stores use ([`GuestMemory::accessible`], which cannot wrap), made in
/// every verification mode, whatever the verifier proved.
#[derive(Clone, Default)]
pub struct Helpers {
    map: BTreeMap<u32, Entry>,
    /// The entries of ids below [`DENSE_IDS`], indexed by id (the same as `map`'s): a call
    /// finds its helper with one bounds-checked load rather than a tree search.
    dense: Vec<Option<Entry>>,
}

/// Ids below this one (every kernel helper's) are also kept in a table indexed by id.
const DENSE_IDS: u32 = 512;

impl Helpers {
    /// No helpers.
    pub fn new() -> Helpers {
        Helpers::default()
    }

    /// The helpers the conformance suite expects: id 5 returns its first argument.
    pub fn conformance() -> Helpers {
        let mut h = Helpers::new();
        h.register(crate::CONFORMANCE_ECHO_HELPER, |_, args| Ok(args[0]));
        h
    }

    /// Registers (or replaces) the helper with this id, with no memory argument of a size known
    /// at the call (it reaches memory only through the [`GuestMemory`] it is given).
    pub fn register<F>(&mut self, id: u32, f: F)
    where
        F: Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.register_checked(id, Vec::new(), f);
    }

    /// Registers (or replaces) the helper with this id, whose memory arguments `mem` every call
    /// checks before the helper runs ([`Helpers::call`]).
    pub fn register_checked<F>(&mut self, id: u32, mem: Vec<MemArg>, f: F)
    where
        F: Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.insert(id, mem, Arc::new(move |m, a| f(m, a).map(HelperRet::Value)));
    }

    /// Registers (or replaces) the helper with this id: a function that may also end the
    /// program ([`HelperRet`]), with the memory arguments `mem` every call checks before
    /// it runs.
    pub fn insert(&mut self, id: u32, mem: Vec<MemArg>, f: HelperFn) {
        let e = Entry {
            f,
            mem: mem.into(),
            after_failure: false,
        };
        self.set_dense(id, Some(e.clone()));
        self.map.insert(id, e);
    }

    /// Sets the memory arguments checked before helper `id` runs (nothing if it is not
    /// registered).
    pub fn set_mem_args(&mut self, id: u32, mem: Vec<MemArg>) {
        self.set_mem_args_when(id, mem, false);
    }

    /// [`Helpers::set_mem_args`] for a helper that reads and writes guest memory only through
    /// its [`GuestMemory`] (which bounds every access) and reads each of these arguments
    /// before it changes anything, failing when it cannot: the arguments are checked only when
    /// the helper fails, so a call checks each range once, in the helper, and a failure whose
    /// cause is one of them still traps with [`TrapKind::OutOfBounds`] and the message the
    /// check before the call would give. Never for a helper that may act before reading an
    /// argument, nor one given raw memory (a foreign function).
    pub fn set_mem_args_after_failure(&mut self, id: u32, mem: Vec<MemArg>) {
        self.set_mem_args_when(id, mem, true);
    }

    fn set_mem_args_when(&mut self, id: u32, mem: Vec<MemArg>, after_failure: bool) {
        if let Some(e) = self.map.get_mut(&id) {
            e.mem = mem.into();
            e.after_failure = after_failure;
            let e = e.clone();
            self.set_dense(id, Some(e));
        }
    }

    /// The entry of helper `id`: from the dense table for the ids it covers.
    #[inline]
    fn entry(&self, id: u32) -> Option<&Entry> {
        if id < DENSE_IDS {
            self.dense.get(id as usize).and_then(Option::as_ref)
        } else {
            self.map.get(&id)
        }
    }

    /// Keeps the dense table's slot of `id` (when it has one) equal to `map`'s entry.
    fn set_dense(&mut self, id: u32, e: Option<Entry>) {
        if id >= DENSE_IDS {
            return;
        }
        let i = id as usize;
        if self.dense.len() <= i {
            self.dense.resize(i + 1, None);
        }
        self.dense[i] = e;
    }

    /// The memory arguments checked before helper `id` runs.
    pub fn mem_args(&self, id: u32) -> Option<&[MemArg]> {
        self.entry(id).map(|e| &*e.mem)
    }

    /// The helper with this id.
    pub fn get(&self, id: u32) -> Option<&HelperFn> {
        self.entry(id).map(|e| &e.f)
    }

    /// The checked dispatch every engine's helper call goes through: finds helper `id`, checks
    /// each of its memory arguments (a non-empty range must lie wholly inside one region of
    /// `mem`, a writable one when the helper writes it), then runs it. Fails with
    /// [`TrapKind::UnknownHelper`], [`TrapKind::OutOfBounds`] (the helper never runs, or, for
    /// one whose arguments are checked after a failure
    /// ([`Helpers::set_mem_args_after_failure`]), it failed reading one) or
    /// [`TrapKind::HelperError`]; the last two leave their message in `error`. Otherwise it
    /// gives what the helper gave: r0, or the end of the program.
    pub fn call(
        &self,
        id: u32,
        mem: &mut GuestMemory<'_>,
        args: [u64; 5],
        error: &mut Option<HelperError>,
    ) -> Result<HelperRet, TrapKind> {
        let e = self.entry(id).ok_or(TrapKind::UnknownHelper)?;
        if !e.after_failure {
            check_args(id, &e.mem, mem, &args, error)?;
        }
        match (e.f)(mem, args) {
            Ok(r) => Ok(r),
            Err(err) => {
                // A helper checked after failing: an argument out of bounds is the cause, as
                // the check before the call would have found.
                if e.after_failure {
                    check_args(id, &e.mem, mem, &args, error)?;
                }
                *error = Some(err);
                Err(TrapKind::HelperError)
            }
        }
    }

    /// Whether a helper with this id is registered.
    pub fn contains(&self, id: u32) -> bool {
        self.entry(id).is_some()
    }

    /// Registered ids in increasing order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.map.keys().copied()
    }
}

/// Checks helper `id`'s memory arguments `mems` in `args` against `mem` ([`Helpers::call`]):
/// `OutOfBounds`, its message in `error`, for the first range outside it.
fn check_args(
    id: u32,
    mems: &[MemArg],
    mem: &mut GuestMemory<'_>,
    args: &[u64; 5],
    error: &mut Option<HelperError>,
) -> Result<(), TrapKind> {
    for a in mems {
        let Some((addr, len)) = a.range(args, mem) else {
            continue;
        };
        // An empty range touches nothing (the kernel's size-or-zero arguments).
        if len == 0 {
            continue;
        }
        let ok = usize::try_from(len).is_ok_and(|n| mem.accessible(addr, n, a.write));
        if !ok {
            let what = if a.write { "writable memory" } else { "memory" };
            *error = Some(HelperError(format!(
                "helper {id}: argument r{} names {len} bytes at {addr:#x}, not inside the \
                 program's {what}",
                a.ptr + 1
            )));
            return Err(TrapKind::OutOfBounds);
        }
    }
    Ok(())
}

impl fmt::Debug for Helpers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Region, SharedMem, Stack};

    /// The dispatch refuses every range outside the regions (wrapping, oversized, read-only
    /// for a write, a bad index) before the helper runs, and lets the rest through.
    #[test]
    fn call_checks_memory_arguments_before_the_helper_runs() {
        let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let r = ran.clone();
        let mut h = Helpers::new();
        let arg = |ptr, len, write| MemArg { ptr, len, write };
        h.register_checked(
            1,
            vec![
                arg(0, ArgLen::Arg(1), true),
                arg(
                    2,
                    ArgLen::From(Arc::new(|a: &[u64; 5], _: &GuestMemory<'_>| Some(a[3]))),
                    false,
                ),
            ],
            move |_, _| {
                r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(9)
            },
        );
        h.register_checked(2, vec![arg(7, ArgLen::Arg(9), false)], |_, _| Ok(0));
        let mut input = [0u8; 16];
        let a = input.as_ptr() as u64;
        let mut stack = Stack::new(1);
        let ro = SharedMem::from_bytes(&[1; 8], false);
        let shared = [ro.clone()];
        let mut m = GuestMemory {
            input: Region::new(&mut input),
            stack: stack.active_region(0),
            shared: &shared,
            host: None,
        };
        let mut err = None;
        let mut call = |id, args| h.call(id, &mut m, args, &mut err);
        let nine = Ok(HelperRet::Value(9));
        assert_eq!(call(1, [a, 16, ro.addr(), 8, 0]), nine);
        assert_eq!(call(1, [a + 8, 8, 0, 0, 0]), nine, "empty read range");
        for args in [
            [a, 17, ro.addr(), 8, 0],
            [a + 1, u64::MAX, ro.addr(), 8, 0],
            [a.wrapping_sub(1), 1, ro.addr(), 8, 0],
            [ro.addr(), 8, ro.addr(), 8, 0],
            [a, 16, ro.addr(), 9, 0],
            [a, 16, ro.addr() + 1, u64::MAX, 0],
        ] {
            assert_eq!(call(1, args), Err(TrapKind::OutOfBounds), "{args:x?}");
        }
        assert_eq!(call(2, [0; 5]), Err(TrapKind::OutOfBounds), "bad index");
        assert_eq!(call(3, [0; 5]), Err(TrapKind::UnknownHelper));
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 2);
        let msg = err.expect("a message").0;
        assert!(msg.contains("argument r8"), "{msg}");
    }

    /// Ids in the dense table and past it are found, replaced and given memory arguments the
    /// same way, and unregistered ids on both sides are unknown.
    #[test]
    fn ids_below_and_above_the_dense_table_dispatch_alike() {
        let mut h = Helpers::new();
        for id in [0, 1, DENSE_IDS - 1, DENSE_IDS, 70_000] {
            h.register(id, move |_, _| Ok(u64::from(id)));
        }
        h.register(1, |_, _| Ok(100));
        let mut input = [0u8; 8];
        let a = input.as_ptr() as u64;
        let mut stack = Stack::new(1);
        let mut m = GuestMemory {
            input: Region::new(&mut input),
            stack: stack.active_region(0),
            shared: &[],
            host: None,
        };
        let mut err = None;
        for (id, want) in [(0, 0), (1, 100), (DENSE_IDS - 1, 511), (DENSE_IDS, 512)] {
            assert!(h.contains(id), "{id}");
            assert_eq!(
                h.call(id, &mut m, [0; 5], &mut err),
                Ok(HelperRet::Value(want)),
                "{id}"
            );
        }
        assert_eq!(
            h.call(70_000, &mut m, [0; 5], &mut err),
            Ok(HelperRet::Value(70_000))
        );
        for id in [2, DENSE_IDS - 2, DENSE_IDS + 1, u32::MAX] {
            assert!(!h.contains(id), "{id}");
            assert_eq!(
                h.call(id, &mut m, [0; 5], &mut err),
                Err(TrapKind::UnknownHelper),
                "{id}"
            );
        }
        let arg = MemArg {
            ptr: 0,
            len: ArgLen::Arg(1),
            write: false,
        };
        for id in [1, DENSE_IDS] {
            h.set_mem_args(id, vec![arg.clone()]);
            assert_eq!(h.mem_args(id).map(<[MemArg]>::len), Some(1), "{id}");
            assert_eq!(
                h.call(id, &mut m, [a, 9, 0, 0, 0], &mut err),
                Err(TrapKind::OutOfBounds),
                "{id}"
            );
            assert!(
                h.call(id, &mut m, [a, 8, 0, 0, 0], &mut err).is_ok(),
                "{id}"
            );
        }
        assert_eq!(h.ids().count(), 5);
    }

    /// Arguments checked after a failure: a helper that reads its argument runs once per
    /// call, and its failed read of an argument out of bounds traps as the check before the
    /// call does (same kind, same message); its other failures stay its own.
    #[test]
    fn arguments_checked_after_a_failure_trap_as_before() {
        let mut input = [3u8; 8];
        let a = input.as_ptr() as u64;
        let mut stack = Stack::new(1);
        let mut m = GuestMemory {
            input: Region::new(&mut input),
            stack: stack.active_region(0),
            shared: &[],
            host: None,
        };
        // Reads r2 bytes at r1; fails with its own message when r3 is nonzero.
        let reader = |mem: &mut GuestMemory<'_>, a: [u64; 5]| {
            let bytes = mem
                .read(a[0], a[1] as usize)
                .ok_or_else(|| HelperError("cannot read".into()))?;
            if a[2] != 0 {
                return Err(HelperError("refused".into()));
            }
            Ok(bytes.iter().map(|&b| u64::from(b)).sum())
        };
        let arg = MemArg {
            ptr: 0,
            len: ArgLen::Arg(1),
            write: false,
        };
        let (mut before, mut after) = (Helpers::new(), Helpers::new());
        for h in [&mut before, &mut after] {
            h.register(1, reader);
        }
        before.set_mem_args(1, vec![arg.clone()]);
        after.set_mem_args_after_failure(1, vec![arg]);
        for args in [
            [a, 8, 0, 0, 0],
            [a, 9, 0, 0, 0],
            [a + 1, 8, 0, 0, 0],
            [a, 8, 1, 0, 0],
        ] {
            let (mut e1, mut e2) = (None, None);
            let r1 = before.call(1, &mut m, args, &mut e1);
            let r2 = after.call(1, &mut m, args, &mut e2);
            assert_eq!(r1, r2, "{args:x?}");
            assert_eq!(e1.map(|e| e.0), e2.map(|e| e.0), "{args:x?}");
        }
        let mut err = None;
        assert_eq!(
            after.call(1, &mut m, [a, 9, 0, 0, 0], &mut err),
            Err(TrapKind::OutOfBounds)
        );
        assert_eq!(
            after.call(1, &mut m, [a, 8, 1, 0, 0], &mut err),
            Err(TrapKind::HelperError)
        );
        assert_eq!(
            after.call(1, &mut m, [a, 8, 0, 0, 0], &mut err),
            Ok(HelperRet::Value(24))
        );
    }
}
