//! Socket maps (`BPF_MAP_TYPE_SOCKMAP`, `BPF_MAP_TYPE_SOCKHASH`): their shapes and host
//! operations with the kernel's error numbers.

#[allow(dead_code)]
mod common;

use bpfx::{MapError, MapKind, MapSpec, MapSpecExt, Object, ProgramDef, UpdateFlag, Vm};

fn k(i: u32) -> [u8; 4] {
    i.to_le_bytes()
}

/// Maps `[sockmap (8-byte values, 4 entries), sockhash (13-byte keys, 2 entries), sockmap
/// (4-byte values)]` beside a trivial program.
fn sock_object() -> Object {
    let maps = vec![
        MapSpec::new("sm", MapKind::SockMap, 4, 8, 4),
        MapSpec::new("sh", MapKind::SockHash, 13, 8, 2),
        MapSpec::new("sm4", MapKind::SockMap, 4, 4, 2),
    ];
    Vm::new()
        .object(
            vec![ProgramDef::new(
                "x",
                "socket",
                common::code("mov r0, 1\nexit"),
            )],
            maps,
        )
        .unwrap()
}

#[test]
fn kinds_have_the_kernel_numbers_and_names() {
    assert_eq!(MapKind::from_kernel(15), Some(MapKind::SockMap));
    assert_eq!(MapKind::from_kernel(18), Some(MapKind::SockHash));
    assert_eq!(MapKind::SockMap.kernel_type(), 15);
    assert_eq!(MapKind::SockHash.kernel_type(), 18);
    assert_eq!(MapKind::SockMap.name(), "sockmap");
    assert_eq!(MapKind::SockHash.name(), "sockhash");
}

#[test]
fn shapes_follow_the_kernel_rules() {
    for good in [
        MapSpec::new("g", MapKind::SockMap, 4, 4, 1),
        MapSpec::new("g", MapKind::SockMap, 4, 8, 1),
        MapSpec::new("g", MapKind::SockHash, 1, 8, 1),
        MapSpec::new("g", MapKind::SockHash, 40, 4, 8),
    ] {
        assert!(good.check().is_ok(), "{good:?}");
    }
    for bad in [
        MapSpec::new("b", MapKind::SockMap, 8, 8, 1),
        MapSpec::new("b", MapKind::SockMap, 4, 16, 1),
        MapSpec::new("b", MapKind::SockMap, 4, 8, 0),
        MapSpec::new("b", MapKind::SockHash, 0, 8, 1),
        MapSpec::new("b", MapKind::SockHash, 4, 2, 1),
        MapSpec::new("b", MapKind::SockHash, 4, 8, 0),
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

#[test]
fn sockmap_host_operations_answer_the_kernel_errnos() {
    let obj = sock_object();
    let sm = obj.map("sm").unwrap();
    let cookie = 0x1234_5678_9abc_u64.to_le_bytes();
    assert_eq!(sm.lookup(&k(1)), Ok(None));
    sm.update(&k(1), &cookie, UpdateFlag::Any).unwrap();
    assert_eq!(sm.lookup(&k(1)), Ok(Some(cookie.to_vec())));
    assert_eq!(
        sm.update(&k(1), &cookie, UpdateFlag::NoExist),
        Err(MapError::Exists)
    );
    assert_eq!(
        sm.update(&k(2), &cookie, UpdateFlag::Exist),
        Err(MapError::NotFound)
    );
    assert_eq!(
        sm.update(&k(4), &cookie, UpdateFlag::Any),
        Err(MapError::Full)
    );
    assert_eq!(MapError::Full.errno(), 7, "E2BIG");
    assert_eq!(sm.delete(&k(4)), Err(MapError::BadIndex));
    assert_eq!(sm.delete(&k(2)), Err(MapError::EmptySlot));
    assert_eq!(MapError::EmptySlot.errno(), 22, "EINVAL");
    assert!(matches!(
        sm.update(&k(0), &[0; 4], UpdateFlag::Any),
        Err(MapError::ValueSize { .. })
    ));
    // Keys walk by index, empty slots too.
    let mut walked = vec![];
    let mut cur: Option<Vec<u8>> = None;
    while let Some(n) = sm.next_key(cur.as_deref()).unwrap() {
        walked.push(n.clone());
        cur = Some(n);
    }
    assert_eq!(walked, [k(0), k(1), k(2), k(3)].map(|a| a.to_vec()));
    assert_eq!(sm.len(), 1);
    sm.delete(&k(1)).unwrap();
    assert_eq!(sm.lookup(&k(1)), Ok(None));

    // 4-byte values (fds) cannot be read back: the kernel's ENOSPC.
    let sm4 = obj.map("sm4").unwrap();
    sm4.update(&k(0), &k(9), UpdateFlag::Any).unwrap();
    assert_eq!(sm4.lookup(&k(0)), Err(MapError::OutOfSpace));
    assert_eq!(sm4.len(), 1);
}

#[test]
fn sockhash_host_operations_answer_the_kernel_errnos() {
    let obj = sock_object();
    let sh = obj.map("sh").unwrap();
    let key = |b: u8| [b; 13];
    let v = 7u64.to_le_bytes();
    sh.update(&key(3), &v, UpdateFlag::Any).unwrap();
    sh.update(&key(1), &v, UpdateFlag::NoExist).unwrap();
    assert_eq!(sh.update(&key(2), &v, UpdateFlag::Any), Err(MapError::Full));
    assert_eq!(
        sh.update(&key(2), &v, UpdateFlag::Exist),
        Err(MapError::NotFound)
    );
    sh.update(&key(3), &9u64.to_le_bytes(), UpdateFlag::Exist)
        .unwrap();
    assert_eq!(sh.lookup(&key(3)), Ok(Some(9u64.to_le_bytes().to_vec())));
    assert_eq!(sh.next_key(None), Ok(Some(key(1).to_vec())));
    assert_eq!(sh.next_key(Some(&key(1))), Ok(Some(key(3).to_vec())));
    assert_eq!(sh.next_key(Some(&key(3))), Ok(None));
    assert_eq!(
        sh.next_key(Some(&key(2))),
        Ok(Some(key(1).to_vec())),
        "unknown key"
    );
    assert_eq!(sh.delete(&key(2)), Err(MapError::NotFound));
    sh.delete(&key(1)).unwrap();
    let keys: Vec<_> = sh.iter().map(|(kk, _)| kk).collect();
    assert_eq!(keys, [key(3).to_vec()]);
    assert!(matches!(sh.lookup(&[0; 4]), Err(MapError::KeySize { .. })));
}
