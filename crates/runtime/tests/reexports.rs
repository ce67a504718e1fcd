//! The types of `bpfx`'s public signatures are reachable through `bpfx` alone: an embedder
//! depends on this crate only.

use bpfx::{
    CodeMemory, ElfError, Error, JitOptions, Mode, Object, VerifierLog, VerifyError,
    VerifyErrorKind,
};

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn jit_options_verifier_log_and_errors_are_reexported() {
    let obj = Object::open(example("xdp_parse.o")).unwrap();
    let (res, log): (_, VerifierLog) = obj
        .program("xdp_parse")
        .unwrap()
        .verify_with_log(Mode::Checked);
    assert!(!log.lines().is_empty());
    let opts = JitOptions {
        code_memory: CodeMemory::Sealed,
        ..JitOptions::hardened()
    };
    let mut prog = res.unwrap().compile_with(&opts).unwrap();
    let mut packet = std::fs::read(example("tcp-syn.bin")).unwrap();
    assert_eq!(prog.run_xdp(&mut packet).unwrap(), bpfx::XdpAction::Pass);

    let e = bpfx::Vm::new().load(b"\x7fELF").unwrap_err();
    let Error::Elf { source, .. } = e else {
        panic!("{e:?}")
    };
    let _: &ElfError = &source;
    // A verifier rejection (r0 never set) carries the verifier's error type.
    let code = bpfx::bytecode::assemble("exit").unwrap();
    let def = bpfx::ProgramDef::new("p", "test", bpfx::Bytecode::decode(code).unwrap());
    let obj = bpfx::Vm::new().object(vec![def], vec![]).unwrap();
    let e = obj
        .program("p")
        .unwrap()
        .context(bpfx::Context::Memory)
        .verify(Mode::Strict);
    let Err(Error::Verify { source, .. }) = e else {
        panic!("{e:?}")
    };
    let v: &VerifyError = &source;
    let _: &VerifyErrorKind = &v.kind;
    // The crates themselves, as modules.
    let _ = bpfx::jit::JitOptions::default();
    let _: Option<bpfx::verifier::Mode> = None;
    let _: Option<bpfx::elf::MapKind> = None;
    let _: Option<bpfx::exec::Budget> = None;
    // The run error, the Vm's configuration and its refusals, the bytecode's facade name.
    let _: Option<bpfx::RunError> = None;
    let _: &bpfx::VmConfig = bpfx::Vm::new().config();
    let _: Option<bpfx::ConfigError> = None;
    let _: Option<bpfx::Bytecode> = None;
}
