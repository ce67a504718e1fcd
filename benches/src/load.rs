//! Bytecode out of the committed objects, through the workspace's ELF loader: the program in the
//! `bench` section, linked with the `.text` functions it calls.

/// The section every workload's entry lives in (`programs/bench.h`).
pub const ENTRY_SECTION: &str = "bench";

/// Why a workload's object could not be turned into bytecode.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object did not load.
    #[error("{0}")]
    Elf(#[from] bpfx_elf::ElfError),
    /// The object has no program in the entry section.
    #[error("no program in section {ENTRY_SECTION:?}")]
    MissingProgram,
    /// The workload uses maps, which the benches do not bind.
    #[error("the program uses maps; workloads must not")]
    Maps,
    /// The bytecode did not decode.
    #[error("{0}")]
    Decode(bpfx_bytecode::DecodeError),
    /// rbpf refused the program.
    #[error("rbpf: {0}")]
    Rbpf(String),
}

/// The workload's bytecode from its object.
pub fn bytecode(object: &[u8]) -> Result<Vec<u8>, LoadError> {
    let obj = bpfx_elf::parse(object)?;
    if !obj.maps.is_empty() {
        return Err(LoadError::Maps);
    }
    let spec = obj
        .program(ENTRY_SECTION)
        .ok_or(LoadError::MissingProgram)?;
    Ok(spec.program.to_bytes())
}
