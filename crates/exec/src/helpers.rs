//! Helper functions, registered by id.

use crate::GuestMemory;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Why a helper failed; the run stops with [`crate::TrapKind::HelperError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HelperError(pub String);

/// A helper: five `u64` arguments (r1–r5), guest memory for pointer arguments, one `u64` result.
pub type HelperFn =
    Arc<dyn Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync>;

/// The helpers a program may call, by id.
#[derive(Clone, Default)]
pub struct Helpers {
    map: BTreeMap<u32, HelperFn>,
}

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

    /// Registers (or replaces) the helper with this id.
    pub fn register<F>(&mut self, id: u32, f: F)
    where
        F: Fn(&mut GuestMemory<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.map.insert(id, Arc::new(f));
    }

    /// The helper with this id.
    pub fn get(&self, id: u32) -> Option<&HelperFn> {
        self.map.get(&id)
    }

    /// Whether a helper with this id is registered.
    pub fn contains(&self, id: u32) -> bool {
        self.map.contains_key(&id)
    }

    /// Registered ids in increasing order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.map.keys().copied()
    }
}

impl fmt::Debug for Helpers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}
