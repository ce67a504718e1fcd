//! An embedder-defined helper and context: a host function the program calls by id, with a
//! signature the verifier enforces, and a context struct of the embedder's own layout that
//! carries a packet. The program is assembled here, so no object file is needed.
//!
//! `cargo run -p bpfx --example embedder`

use bpfx::{ArgKind, Context, Engine, HelperSig, Mode, ProgramDef, RetKind, StructLayout, Vm};

/// The helper's id: outside the kernel's range, so it never collides with a standard helper.
const CHECKSUM: u32 = 0x10000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vm = Vm::new().register_helper(
        CHECKSUM,
        // r1 = pointer to bytes, r2 = their length: the verifier checks the range at each call.
        HelperSig::new(
            "checksum",
            vec![ArgKind::PtrToMem { size_arg: Some(1) }, ArgKind::Scalar],
            RetKind::Scalar,
        ),
        |mem, args| {
            let bytes = mem
                .read(args[0], args[1] as usize)
                .ok_or_else(|| bpfx::HelperError("unreadable buffer".into()))?;
            Ok(bytes.iter().map(|&b| u64::from(b)).sum())
        },
    );
    // Context: { u64 data; u64 data_end; u32 mark; u32 pad } (24 bytes). The program checks
    // 4 packet bytes against data_end, sums them with the helper, and stores the sum in `mark`.
    let text = "\
        mov r6, r1
        ldxdw r1, [r6+0]
        ldxdw r2, [r6+8]
        mov r3, r1
        add r3, 4
        jgt r3, r2, +5
        mov r2, 4
        call 65536
        stxw [r6+16], r0
        mov r0, 1
        exit
        mov r0, 0
        exit";
    let program = bpfx_bytecode_program(text)?;
    let obj = vm.object(vec![ProgramDef::new("mark", "embedder", program)], vec![])?;
    // The checked constructor refuses fields that overlap, are misaligned or leave the struct.
    let layout = StructLayout::new(24, Some((0, 8)))?;
    for engine in Engine::ALL {
        let mut prog = obj
            .program("mark")?
            .context(Context::Struct(layout))
            .verify(Mode::Checked)?
            .engine(engine, false)?;
        let mut ctx = [0u8; 24];
        let r0 = prog.run_ctx(&mut ctx, &mut [1, 2, 3, 4, 5])?;
        let mark = u32::from_le_bytes(ctx[16..20].try_into()?);
        println!("{}: returned {r0}, mark = {mark}", engine.name());
    }
    Ok(())
}

fn bpfx_bytecode_program(text: &str) -> Result<bpfx::Bytecode, Box<dyn std::error::Error>> {
    Ok(bpfx::Bytecode::decode(bpfx::bytecode::assemble(text)?)?)
}
