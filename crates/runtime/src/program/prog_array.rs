//! Program arrays from the host: putting programs in their slots.

use super::Program;
use crate::error::Error;
use crate::map::{Map, MapKind};
use crate::object_map::ObjectMap;

impl Map {
    /// Puts `prog` into slot `index` of this program array, for `bpf_tail_call`. The program
    /// must come from the same object and take the same context as its callers. Whatever mode
    /// each was verified in, a tail call's target starts on the context the host made: the
    /// bytes of the struct no writable field covers (the packet pointers, the read-only
    /// fields) are written back before it starts (`docs/safety.md`, "Context").
    pub fn set_program(&self, index: u32, prog: &Program) -> Result<(), Error> {
        let reject = |reason: &str| Error::ProgArray {
            map: self.name().to_string(),
            program: prog.name().to_string(),
            reason: reason.to_string(),
        };
        if self.kind() != MapKind::ProgArray {
            return Err(reject("not a program array"));
        }
        let owner = prog
            .shared
            .maps
            .iter()
            .filter_map(ObjectMap::created)
            .any(|m| std::ptr::eq(&**m, self));
        if !owner || prog.linked.object_id != prog.shared.id {
            return Err(reject("the program belongs to another object"));
        }
        self.set_slot(index, Some(prog.linked.clone()))
            .map_err(|source| Error::Map {
                map: self.name().to_string(),
                source,
            })
    }

    /// Empties slot `index` of this program array.
    pub fn clear_program(&self, index: u32) -> Result<(), Error> {
        self.set_slot(index, None).map_err(|source| Error::Map {
            map: self.name().to_string(),
            source,
        })
    }
}
