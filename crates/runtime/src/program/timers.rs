//! Firing timers ([`Object::run_timers`]): each expired `bpf_timer`'s callback, run once on the
//! engine of the program that set it (`crate::timer` keeps the timers, per map).

use super::{Code, Object, Program, Shared};
use crate::error::RunError;
use crate::helpers::map_handle;
use crate::timer::Due;
use bpfx_bytecode::Pc;
use bpfx_exec::CallbackStep;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What one [`Object::run_timers`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimersRun {
    /// Callbacks run.
    pub fired: usize,
    /// Timers armed after it: not due yet, or started again (by a callback, or armed by the
    /// host's runs meanwhile).
    pub pending: usize,
    /// The earliest expiry of those, on the [`Vm`](crate::Vm)'s clock.
    pub next: Option<u64>,
}

impl Object {
    /// Fires the timers of this object's maps that are due at `now` (nanoseconds on the
    /// [`Vm`](crate::Vm)'s clock, [`Vm::clock`](crate::Vm::clock): the clock
    /// `bpf_ktime_get_ns` reads and `bpf_timer_start` arms timers on): bpfx has no soft-irq
    /// context of its own, so the embedder calls this when its time has come (a capture's
    /// replay at each packet's timestamp, a service on a tick).
    ///
    /// Each timer armed to expire at or before `now` runs its callback once, in expiry order
    /// (ties in the order they were armed), as the kernel runs an async callback: a run of
    /// its own, on the engine (and JIT options) of the program that set the callback, on the
    /// CPU slot of the run that armed it, under the [`Vm`](crate::Vm)'s budget, with r1 the
    /// timer's map, r2 a pointer to a copy of the element's key and r3 a pointer to its value.
    /// A callback may start its timer again (it then fires at a later call, even if already
    /// due), delete its element or touch any map; it may not cancel its own timer
    /// (`-EDEADLK`). A timer cancelled, or freed with its element (deleted, replaced by an
    /// update, evicted, or an updated array element) before its turn, does not fire.
    ///
    /// A callback that traps ends the call with its [`RunError::Trap`] (the callback's pc and
    /// instruction, the program named `name (timer callback)`); that timer has fired, the
    /// ones after it stay armed for the next call. Timers in the maps of a map of maps are
    /// not kept (an inner map's timers never fire); the callback runs without the inner maps
    /// of the maps of maps its program names.
    pub fn run_timers(&self, now: u64) -> Result<TimersRun, RunError> {
        run_timers(&self.shared, now)
    }
}

fn run_timers(shared: &Arc<Shared>, now: u64) -> Result<TimersRun, RunError> {
    // An object none of whose timers was ever initialised has nothing to fire (the usual
    // case, which a replay meets at every packet): no table is looked at.
    if !shared
        .maps
        .iter()
        .any(|m| m.created().is_some_and(|map| map.timers().used()))
    {
        return Ok(TimersRun::default());
    }
    let mut due: Vec<(Due, usize)> = Vec::new();
    for (i, m) in shared.maps.iter().enumerate() {
        if let Some(map) = m.created() {
            due.extend(map.timers().due(now).into_iter().map(|d| (d, i)));
        }
    }
    due.sort_unstable();
    // One program per callback's program, reused for its timers of this call.
    let mut progs: Vec<Program> = Vec::new();
    let mut fired = 0;
    for (d, i) in due {
        let Some(map) = shared.maps[i].created() else {
            continue;
        };
        // The element's key and value first (the map's own locks), then the timer's state
        // (its table's lock): never both at once.
        let Some((key, value)) = map.element(d.slot) else {
            continue;
        };
        let Some((cb, cpu)) = map.timers().fire(&d) else {
            continue;
        };
        let at = match progs.iter().position(|p| Arc::ptr_eq(&p.linked, &cb.prog)) {
            Some(k) => k,
            None => {
                let mut p = Program::new(cb.prog.clone(), shared.clone());
                p.set_budget(shared.config.budget());
                progs.push(p);
                progs.len() - 1
            }
        };
        fired += 1;
        let step = CallbackStep::CallWithFrame {
            args: [map_handle(i), 0, value, 0, 0],
            bytes: key,
            at: 1,
        };
        progs[at].run_timer_callback(cb.entry, step, cpu, (map.id(), d.slot))?;
    }
    let (mut pending, mut next) = (0, None);
    for m in shared.maps.iter() {
        if let Some(map) = m.created() {
            let (n, first) = map.timers().pending();
            pending += n;
            next = match (next, first) {
                (Some(a), Some(b)) => Some(u64::min(a, b)),
                (a, b) => a.or(b),
            };
        }
    }
    Ok(TimersRun {
        fired,
        pending,
        next,
    })
}

impl Program {
    /// Runs this program's timer callback at `entry` with `step`'s arguments on CPU slot
    /// `cpu`, for the timer `firing` (its map's id and element slot): its r0 (0, as the
    /// verifier proved) or the trap.
    fn run_timer_callback(
        &mut self,
        entry: Pc,
        step: CallbackStep,
        cpu: u32,
        firing: (u32, u32),
    ) -> Result<u64, RunError> {
        if !self
            .env
            .shared
            .iter()
            .map(Arc::as_ptr)
            .eq(self.linked.blocks.iter().map(Arc::as_ptr))
        {
            self.env.shared.clone_from(&self.linked.blocks);
        }
        self.env.set_max_frames(self.linked.prog.max_frames());
        let linked = self.linked.clone();
        {
            let st = self.state();
            st.tail_calls = 0;
            st.redirect = None;
            st.reserved.clear();
            st.timer_prog = Some(linked);
            st.firing = Some(firing);
        }
        self.cx.cpu.store(cpu, Ordering::Relaxed);
        self.env.host = self
            .st
            .take()
            .map(|st| st as Box<dyn std::any::Any + Send + Sync>);
        let r = match &self.linked.code {
            Code::Interp => {
                bpfx_interp::run_callback(&self.linked.prog, entry, step, &mut self.env)
            }
            Code::Jit(j) => {
                let cpu = if j.per_cpu_inlined() { cpu } else { 0 };
                j.run_callback(entry, step, &mut self.env, cpu)
            }
        };
        self.st = self.env.host.take().and_then(|h| h.downcast().ok());
        let left = {
            let st = self.state();
            st.firing = None;
            st.held_lock = None;
            std::mem::take(&mut st.reserved)
        };
        // Records reserved and never submitted are discarded, as at the end of any run.
        for (i, addr) in left {
            if let Some(m) = self.shared.maps[i].created() {
                m.ring_commit(addr, true);
            }
        }
        r.map_err(|trap| {
            let access = self.env.fault.take().map(Box::new);
            RunError::Trap {
                program: format!("{} (timer callback)", self.linked.name),
                reason: self
                    .env
                    .helper_error
                    .take()
                    .map(|e| e.0)
                    .or_else(|| access.as_ref().map(|f| f.to_string())),
                access,
                trap,
                insn: self
                    .linked
                    .prog
                    .program()
                    .get(trap.pc)
                    .map_or_else(|| "?".to_string(), |op| op.to_string()),
            }
        })
    }
}
