//! The uBPF-compatible VM behind `struct ubpf_vm *`: uBPF's vocabulary over the facade.
//!
//! - `ubpf_register` records a C function by index; the program is verified at load time
//!   (`Checked`) against the functions registered then, and a `call` to an index that is
//!   neither registered nor a bpfx standard helper is refused at load, as uBPF refuses a call
//!   to a nonexistent function. A function registered again later replaces the one called (the
//!   helper looks it up at each call, as uBPF's interpreter does).
//! - C helpers are unknown to the verifier: each argument may be a pointer the function reads
//!   or writes, so after a call the verifier forgets what memory held (every access that
//!   depended on it keeps its run-time guard).
//! - `ubpf_set_unwind_function_index(idx)`: when helper `idx` returns 0 the program stops and
//!   the run returns 0: the helper ends the program ([`HelperRet::Return`]), on either engine,
//!   from any call depth.
//! - `ubpf_compile` binds the compiled program to one of [`JIT_SLOTS`] trampolines (plain
//!   `extern "C"` functions in `ubpf_ffi`), because C calls the returned pointer with
//!   `(mem, mem_len)` only and a trampoline must find its program without being told.

use crate::vm::HostFn;
use runtime::{
    ArgKind, HelperError, HelperRet, HelperSig, Mode, Object, Program, ProgramDef, RetKind,
};
use runtime::{Context, Verified};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// How many VMs may have a live compiled function (`ubpf_compile`) at once: one trampoline
/// each. A VM frees its trampoline when it is destroyed or its code unloaded.
pub(crate) const JIT_SLOTS: usize = 64;

/// The bpfx standard helper ids a uBPF program may call without registering them (the
/// kernel's map, time, random, CPU-id, `trace_printk` and ring-buffer helpers).
const STANDARD_HELPERS: [u32; 12] = [
    runtime::MAP_LOOKUP_ELEM,
    runtime::MAP_UPDATE_ELEM,
    runtime::MAP_DELETE_ELEM,
    runtime::KTIME_GET_NS,
    runtime::TRACE_PRINTK,
    runtime::GET_PRANDOM_U32,
    runtime::GET_SMP_PROCESSOR_ID,
    runtime::TAIL_CALL,
    runtime::RINGBUF_OUTPUT,
    runtime::RINGBUF_RESERVE,
    runtime::RINGBUF_SUBMIT,
    runtime::RINGBUF_DISCARD,
];

/// A function registered with `ubpf_register`.
#[derive(Clone)]
struct Registered {
    name: String,
    f: HostFn,
}

type Registry = Arc<RwLock<BTreeMap<u32, Registered>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a program ran (caught at the boundary) leaves nothing half-updated that a
    // later run relies on: the program resets its state at every run.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loaded program and the engines prepared from it.
struct Loaded {
    verified: Verified,
    /// The interpreter, behind a lock: `ubpf_exec` takes a `const` VM and may be called from
    /// several threads; runs of one VM take turns.
    interp: Mutex<Program>,
    /// The trampoline slot of the compiled program, once compiled.
    jit_slot: Option<usize>,
}

/// One `struct ubpf_vm`.
pub(crate) struct UbpfVm {
    registry: Registry,
    unwind: Arc<AtomicI64>,
    bounds_check: bool,
    loaded: Option<Loaded>,
}

impl Default for UbpfVm {
    fn default() -> Self {
        UbpfVm::new()
    }
}

impl UbpfVm {
    pub(crate) fn new() -> UbpfVm {
        UbpfVm {
            registry: Arc::default(),
            unwind: Arc::new(AtomicI64::new(-1)),
            bounds_check: true,
            loaded: None,
        }
    }

    /// `ubpf_register`: `None` unregisters.
    pub(crate) fn register(&mut self, idx: u32, name: &str, f: Option<HostFn>) {
        let mut reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
        match f {
            Some(f) => {
                reg.insert(
                    idx,
                    Registered {
                        name: name.to_string(),
                        f,
                    },
                );
            }
            None => {
                reg.remove(&idx);
            }
        }
    }

    /// `ubpf_set_unwind_function_index`: fails when one is already set, as uBPF does.
    pub(crate) fn set_unwind(&mut self, idx: u32) -> Result<(), String> {
        self.unwind
            .compare_exchange(-1, i64::from(idx), Ordering::Relaxed, Ordering::Relaxed)
            .map(|_| ())
            .map_err(|cur| format!("the unwind function index is already set (to {cur})"))
    }

    /// `ubpf_toggle_bounds_check`: records the setting and returns the previous one. bpfx's
    /// checks do not depend on it.
    pub(crate) fn toggle_bounds_check(&mut self, enable: bool) -> bool {
        std::mem::replace(&mut self.bounds_check, enable)
    }

    fn runtime_vm(&self) -> runtime::Vm {
        let mut vm = runtime::Vm::new();
        let reg = self.registry.read().unwrap_or_else(|e| e.into_inner());
        for (&id, r) in reg.iter() {
            let sig = HelperSig::new(
                r.name.clone(),
                vec![ArgKind::PtrToMem { size_arg: None }; 5],
                RetKind::Scalar,
            );
            let (registry, unwind) = (self.registry.clone(), self.unwind.clone());
            vm = vm.register_ending_helper(id, sig, move |_, a| {
                let f = registry
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&id)
                    .map(|r| r.f.clone())
                    .ok_or_else(|| {
                        HelperError(format!("external function {id} is no longer registered"))
                    })?;
                let r = f(a);
                // uBPF's unwind function: returning 0 ends the program with result 0.
                if r == 0 && unwind.load(Ordering::Relaxed) == i64::from(id) {
                    return Ok(HelperRet::Return(0));
                }
                Ok(HelperRet::Value(r))
            });
        }
        vm
    }

    fn check_calls(&self, prog: &bpfx_bytecode::Program) -> Result<(), String> {
        let reg = self.registry.read().unwrap_or_else(|e| e.into_inner());
        for (pc, op) in prog.iter() {
            if let bpfx_bytecode::Op::Call(bpfx_bytecode::CallTarget::Helper(id)) = *op
                && !reg.contains_key(&id)
                && !STANDARD_HELPERS.contains(&id)
            {
                return Err(format!("call to nonexistent function {id} at PC {}", pc.0));
            }
        }
        Ok(())
    }

    fn install(&mut self, obj: Object, program: Option<&str>) -> Result<(), String> {
        let name = match program {
            Some(n) => obj
                .program(n)
                .map_err(|e| e.to_string())?
                .name()
                .to_string(),
            None => obj
                .programs()
                .next()
                .map(|p| p.name.to_string())
                .ok_or("the object has no program")?,
        };
        let def = obj
            .programs()
            .find(|p| p.name == name)
            .ok_or("the object has no program")?;
        self.check_calls(def.program)?;
        let verified = obj
            .program(&name)
            .map_err(|e| e.to_string())?
            .context(Context::Memory)
            .verify(Mode::Checked)
            .map_err(|e| e.to_string())?;
        let interp = Mutex::new(verified.clone().interpret());
        self.loaded = Some(Loaded {
            verified,
            interp,
            jit_slot: None,
        });
        Ok(())
    }

    fn check_unloaded(&self) -> Result<(), String> {
        if self.loaded.is_some() {
            return Err("code has already been loaded into this VM; call ubpf_unload_code() to load other code".into());
        }
        Ok(())
    }

    /// `ubpf_load`.
    pub(crate) fn load(&mut self, code: &[u8]) -> Result<(), String> {
        self.check_unloaded()?;
        if code.is_empty() || !code.len().is_multiple_of(8) {
            return Err(format!(
                "code_len must be a non-zero multiple of 8, not {}",
                code.len()
            ));
        }
        let prog = bpfx_bytecode::Program::from_bytes(code).map_err(|e| e.to_string())?;
        let obj = self
            .runtime_vm()
            .object(vec![ProgramDef::new("main", "", prog)], Vec::new())
            .map_err(|e| e.to_string())?;
        self.install(obj, None)
    }

    /// `ubpf_load_elf` (first program) and `ubpf_load_elf_ex` (by name or section).
    pub(crate) fn load_elf(&mut self, elf: &[u8], program: Option<&str>) -> Result<(), String> {
        self.check_unloaded()?;
        if elf.is_empty() {
            return Err("the ELF object is empty (length 0)".into());
        }
        let obj = self.runtime_vm().load(elf).map_err(|e| e.to_string())?;
        self.install(obj, program)
    }

    /// `ubpf_unload_code`: drops the program and frees its trampoline.
    pub(crate) fn unload(&mut self) {
        if let Some(slot) = self.loaded.take().and_then(|l| l.jit_slot) {
            release(slot);
        }
    }

    /// `ubpf_exec`: runs on the interpreter.
    pub(crate) fn exec(&self, mem: &mut [u8]) -> Result<u64, String> {
        let loaded = self.loaded.as_ref().ok_or("no code is loaded")?;
        run(&mut lock(&loaded.interp), mem)
    }

    /// `ubpf_compile`: the trampoline slot of the compiled program (the same one on every call).
    pub(crate) fn compile(&mut self) -> Result<usize, String> {
        let loaded = self.loaded.as_mut().ok_or("no code is loaded")?;
        if let Some(slot) = loaded.jit_slot {
            return Ok(slot);
        }
        let prog = loaded
            .verified
            .clone()
            .compile()
            .map_err(|e| e.to_string())?;
        let slot = claim(Arc::new(Mutex::new(prog))).ok_or_else(|| {
            format!("all {JIT_SLOTS} compiled-function slots are in use: destroy a VM that has compiled code first")
        })?;
        loaded.jit_slot = Some(slot);
        Ok(slot)
    }
}

impl Drop for UbpfVm {
    fn drop(&mut self) {
        self.unload();
    }
}

/// One run (uBPF's unwind rule is the unwind helper's: it ends the program).
fn run(prog: &mut Program, mem: &mut [u8]) -> Result<u64, String> {
    prog.run(mem).map_err(|e| e.to_string())
}

type Slot = Mutex<Option<Arc<Mutex<Program>>>>;

/// The compiled programs the trampolines run, by slot.
static SLOTS: [Slot; JIT_SLOTS] = [const { Mutex::new(None) }; JIT_SLOTS];
/// Where the next search for a free slot starts: slots are handed out round-robin so that a
/// slot freed by a destroyed VM is reused as late as possible.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

fn claim(prog: Arc<Mutex<Program>>) -> Option<usize> {
    let start = NEXT_SLOT.load(Ordering::Relaxed);
    for k in 0..JIT_SLOTS {
        let i = (start + k) % JIT_SLOTS;
        let mut slot = lock(&SLOTS[i]);
        if slot.is_none() {
            *slot = Some(prog);
            NEXT_SLOT.store((i + 1) % JIT_SLOTS, Ordering::Relaxed);
            return Some(i);
        }
    }
    None
}

fn release(slot: usize) {
    if let Some(s) = SLOTS.get(slot) {
        *lock(s) = None;
    }
}

/// What trampoline `slot` does: runs the program bound to it.
pub(crate) fn run_slot(slot: usize, mem: &mut [u8]) -> Result<u64, String> {
    let prog = SLOTS.get(slot).and_then(|s| lock(s).clone()).ok_or(
        "no program is bound to this compiled function (its VM was destroyed or its code unloaded)",
    )?;
    run(&mut lock(&prog), mem)
}
