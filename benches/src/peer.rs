//! rbpf 0.4.1, the peer runtime: its JIT and its interpreter on the same bytecode.
//!
//! Two differences from bpfx's convention are bridged here, and both are visible in results:
//! - rbpf passes r1 = the memory but leaves r2 = 0, where the workloads expect the length. The
//!   bytecode rbpf gets starts with one extra `mov r2, LEN` (every jump and call is relative, so
//!   nothing else moves); the VM is therefore built for one input length.
//! - rbpf's API ties the memory it runs on to the VM's lifetime (`&'a mut [u8]`, invariant), so
//!   one VM could run only once per buffer. The VM here owns its (leaked) bytecode and is handed
//!   a reborrow of the caller's buffer for the duration of each call.

use crate::load::LoadError;

const MOV64_IMM_R2: u8 = 0xb7;

/// rbpf set up for one workload and one input length.
pub struct Rbpf {
    interp: rbpf::EbpfVmRaw<'static>,
    jit: Option<rbpf::EbpfVmRaw<'static>>,
    jit_error: Option<String>,
    len: usize,
}

impl std::fmt::Debug for Rbpf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rbpf")
            .field("len", &self.len)
            .field("jit", &self.jit.is_some())
            .finish()
    }
}

/// rbpf's bytecode for a workload: `mov r2, len` then the program.
fn with_length(bytecode: &[u8], len: usize) -> Result<Vec<u8>, LoadError> {
    let imm = i32::try_from(len).map_err(|_| LoadError::Rbpf("input too long".into()))?;
    let mut out = Vec::with_capacity(bytecode.len() + 8);
    out.extend_from_slice(&[MOV64_IMM_R2, 0x02, 0, 0]);
    out.extend_from_slice(&imm.to_le_bytes());
    out.extend_from_slice(bytecode);
    Ok(out)
}

/// Compiles `bytecode` with rbpf's JIT once, for the compile-time benches; rbpf's JIT code
/// buffer is one 4 KiB page and it panics past it, which comes back as an error here.
pub fn rbpf_jit_compile(bytecode: &[u8]) -> Result<(), String> {
    let mut vm = rbpf::EbpfVmRaw::new(Some(bytecode)).map_err(|e| e.to_string())?;
    quiet_catch(|| vm.jit_compile().map_err(|e| e.to_string()))
}

/// Runs `f`, turning a panic into an error and keeping its message off stderr.
fn quiet_catch(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    match out {
        Ok(r) => r,
        Err(payload) => Err(payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panicked".into())),
    }
}

impl Rbpf {
    /// rbpf for `bytecode` (a workload of this crate) on inputs of `len` bytes. A program its
    /// JIT cannot compile still runs on its interpreter; [`Rbpf::jit_error`] says why.
    pub(crate) fn new(bytecode: &[u8], len: usize) -> Result<Rbpf, LoadError> {
        // Leaked: the VMs borrow the bytecode for their whole life, and a bench process builds
        // a handful of them.
        let prog: &'static [u8] = Vec::leak(with_length(bytecode, len)?);
        let interp =
            rbpf::EbpfVmRaw::new(Some(prog)).map_err(|e| LoadError::Rbpf(e.to_string()))?;
        let mut jit =
            rbpf::EbpfVmRaw::new(Some(prog)).map_err(|e| LoadError::Rbpf(e.to_string()))?;
        let (jit, jit_error) = match quiet_catch(|| jit.jit_compile().map_err(|e| e.to_string())) {
            Ok(()) => (Some(jit), None),
            Err(e) => (None, Some(e)),
        };
        Ok(Rbpf {
            interp,
            jit,
            jit_error,
            len,
        })
    }

    /// Why rbpf's JIT did not compile the program, if it did not.
    pub fn jit_error(&self) -> Option<&str> {
        self.jit_error.as_deref()
    }

    /// Runs on rbpf's interpreter (which checks every access).
    ///
    /// # Panics
    /// If `mem` is not as long as the VM was built for.
    pub fn run_interp(&self, mem: &mut [u8]) -> Result<u64, String> {
        assert_eq!(mem.len(), self.len, "rbpf VM built for another length");
        // SAFETY: only the lifetime is extended (rbpf's signature ties the buffer to the VM's
        // lifetime); rbpf uses the slice during this call and keeps nothing of it afterwards,
        // and `mem` stays exclusively borrowed for the whole call.
        let mem: &'static mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr(), mem.len()) };
        self.interp.execute_program(mem).map_err(|e| e.to_string())
    }

    /// Runs on rbpf's JIT; `None` when its JIT could not compile the program.
    ///
    /// # Panics
    /// If `mem` is not as long as the VM was built for.
    pub fn run_jit(&self, mem: &mut [u8]) -> Option<u64> {
        assert_eq!(mem.len(), self.len, "rbpf VM built for another length");
        let jit = self.jit.as_ref()?;
        // SAFETY: the lifetime extension is as in `run_interp`. rbpf's JIT code has no bounds
        // checks: it is sound because the program is one of this crate's workloads, which by
        // `programs/bench.h`'s contract touch only `[mem, mem + len)` and their stack, and r2
        // is exactly `mem.len()` (asserted above).
        let mem: &'static mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr(), mem.len()) };
        // SAFETY: see above.
        unsafe { jit.execute_program_jit(mem) }.ok()
    }
}
