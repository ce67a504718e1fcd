//! The text form of helper signatures and map shapes: what `bpfx verify --helper` / `--map`
//! take, and what the verifier corpus's `# helper:` / `# map:` directives hold, so a corpus
//! file and a command line describe one environment in one syntax.
//!
//! ```text
//! helper:  ID:NAME(ARG,...)->RET      6:fill(mem:r2,scalar)->scalar
//! map:     idx:N,key=K,value=V[,ro][,prog_array]   idx:0,key=8,value=8,ro
//!          fd:N,key=K,value=V[,ro]    fd:1,key=4,value=16
//! ```
//!
//! Arguments: `scalar`, `any`, `mem` / `mem:rN` ([`ArgKind::PtrToMem`], size in `rN`),
//! `ro_mem` / `ro_mem:rN` ([`ArgKind::PtrToReadOnlyMem`]), `ro_mem_or_null[:rN]`
//! ([`ArgKind::PtrToReadOnlyMemOrNull`]), `ro_fixed:N` ([`ArgKind::PtrToReadOnlyFixedMem`], N
//! bytes), `stack_or_mem`, `map`, `key`,
//! `value`, `value_out` ([`ArgKind::MapValueOut`]), `value_or_null`
//! ([`ArgKind::MapValueOrNull`]), `prog_array` ([`ArgKind::ProgArray`]),
//! `callback_loop` / `callback_map_elem` ([`ArgKind::Callback`]), `callback_ctx`
//! ([`ArgKind::CallbackCtx`]), `const_str` ([`ArgKind::ConstStr`]), `long_out`
//! ([`ArgKind::PtrToLongOut`]), `record` ([`ArgKind::ReleaseRecord`]), `spin_lock`
//! ([`ArgKind::SpinLock`]), `timer` ([`ArgKind::Timer`]), `timer_map` ([`ArgKind::TimerMap`]),
//! `callback_timer` ([`ArgKind::Callback`]), `ctx` ([`ArgKind::Ctx`]), `ctx_or_null` ([`ArgKind::CtxOrNull`]),
//! `sock` ([`ArgKind::Sock`]), `release_sock` ([`ArgKind::ReleaseSock`]),
//! `sock_or_null` ([`ArgKind::SockOrNull`]).
//! Results: `scalar`, `map_value_or_null`, `void`, `mem_or_null:rN`, and
//! `sock_or_null`, `sock_common_or_null`, `tcp_sock_or_null` ([`RetKind::SockOrNull`]),
//! followed by `:acquire` or `:cast` for [`SockRet::Acquire`] and [`SockRet::Cast`]. `Display` of [`HelperSig`],
//! [`ArgKind`] and [`RetKind`] prints this form back.

use crate::config::{ArgKind, CallbackKind, HelperSig, MapDef, MapRef, RetKind, SockKind, SockRet};
use std::fmt;

/// A helper or map description that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{spec}`: {reason}")]
pub struct SpecError {
    /// The text given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

fn fail<T>(spec: &str, reason: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError {
        spec: spec.to_string(),
        reason: reason.into(),
    })
}

/// Argument registers a helper takes at most (r1–r5).
const MAX_ARGS: usize = 5;

/// Parses `ID:NAME(ARG,...)->RET` into the helper id and its signature.
pub fn parse_helper(spec: &str) -> Result<(u32, HelperSig), SpecError> {
    let s = spec.trim();
    let Some((id, rest)) = s.split_once(':') else {
        return fail(spec, "expected ID:NAME(ARG,...)->RET");
    };
    let Some(id) = parse_u32(id.trim()) else {
        return fail(spec, format!("helper id `{}` is not a number", id.trim()));
    };
    let Some((name, rest)) = rest.split_once('(') else {
        return fail(spec, "expected `(` after the helper name");
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return fail(spec, format!("`{name}` is not a helper name"));
    }
    let Some((args, ret)) = rest.split_once(')') else {
        return fail(spec, "expected `)` after the arguments");
    };
    let Some(ret) = ret.trim().strip_prefix("->") else {
        return fail(spec, "expected `->RET` after the arguments");
    };
    let ret = match ret.trim() {
        "scalar" => RetKind::Scalar,
        "map_value_or_null" => RetKind::MapValueOrNull,
        "void" => RetKind::Void,
        r if let Some(k) = parse_sock_ret(r) => k,
        r if let Some(n) = r
            .strip_prefix("mem_or_null:r")
            .and_then(|n| n.trim().parse::<usize>().ok())
            .filter(|n| (1..=MAX_ARGS).contains(n)) =>
        {
            RetKind::MemOrNull { size_arg: n - 1 }
        }
        r => {
            return fail(
                spec,
                format!("unknown result `{r}` (scalar, map_value_or_null, mem_or_null:rN, void)"),
            );
        }
    };
    let mut kinds = Vec::new();
    if !args.trim().is_empty() {
        for a in args.split(',') {
            kinds.push(parse_arg(spec, a.trim())?);
        }
    }
    if kinds.len() > MAX_ARGS {
        return fail(
            spec,
            format!("{} arguments; helpers take at most {MAX_ARGS}", kinds.len()),
        );
    }
    for (i, k) in kinds.iter().enumerate() {
        if let ArgKind::PtrToMem { size_arg: Some(j) }
        | ArgKind::PtrToReadOnlyMem { size_arg: Some(j) }
        | ArgKind::PtrToReadOnlyMemOrNull { size_arg: Some(j) } = *k
            && (j >= kinds.len() || j == i)
        {
            return fail(
                spec,
                format!(
                    "argument r{} takes its size from r{}, which is not another argument",
                    i + 1,
                    j + 1
                ),
            );
        }
    }
    if let RetKind::MemOrNull { size_arg } = ret {
        if size_arg >= kinds.len() {
            return fail(
                spec,
                format!(
                    "the result's size is r{}, which is not an argument",
                    size_arg + 1
                ),
            );
        }
        if !kinds.contains(&ArgKind::MapHandle) {
            return fail(
                spec,
                "mem_or_null lies in a map's memory: an argument must be `map`",
            );
        }
    }
    Ok((id, HelperSig::new(name, kinds, ret)))
}

fn parse_arg(spec: &str, a: &str) -> Result<ArgKind, SpecError> {
    if let Some(n) = a.trim().strip_prefix("ro_fixed:") {
        return match parse_u32(n.trim()) {
            Some(size) if size > 0 => Ok(ArgKind::PtrToReadOnlyFixedMem { size }),
            _ => fail(
                spec,
                format!("`{n}` in `{a}` is not a size in bytes above 0"),
            ),
        };
    }
    let (base, size) = match a.split_once(':') {
        Some((b, r)) => {
            let n = r
                .trim()
                .strip_prefix('r')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=MAX_ARGS).contains(n));
            match n {
                Some(n) => (b.trim(), Some(n - 1)),
                None => return fail(spec, format!("`{r}` in `{a}` is not a register r1..r5")),
            }
        }
        None => (a, None),
    };
    let kind = match base {
        "mem" => ArgKind::PtrToMem { size_arg: size },
        "ro_mem" => ArgKind::PtrToReadOnlyMem { size_arg: size },
        "ro_mem_or_null" => ArgKind::PtrToReadOnlyMemOrNull { size_arg: size },
        _ if size.is_some() => {
            return fail(
                spec,
                format!("only mem and ro_mem take a size, not `{base}`"),
            );
        }
        "scalar" => ArgKind::Scalar,
        "any" => ArgKind::Anything,
        "stack_or_mem" => ArgKind::PtrToStackOrMem,
        "map" => ArgKind::MapHandle,
        "prog_array" => ArgKind::ProgArray,
        "key" => ArgKind::MapKey,
        "value" => ArgKind::MapValue,
        "value_out" => ArgKind::MapValueOut,
        "value_or_null" => ArgKind::MapValueOrNull,
        "callback_loop" => ArgKind::Callback(CallbackKind::Loop),
        "callback_map_elem" => ArgKind::Callback(CallbackKind::MapElem),
        "callback_ctx" => ArgKind::CallbackCtx,
        "const_str" => ArgKind::ConstStr,
        "long_out" => ArgKind::PtrToLongOut,
        "spin_lock" => ArgKind::SpinLock,
        "timer" => ArgKind::Timer,
        "timer_map" => ArgKind::TimerMap,
        "callback_timer" => ArgKind::Callback(CallbackKind::Timer),
        "record" => ArgKind::ReleaseRecord,
        "ctx" => ArgKind::Ctx,
        "ctx_or_null" => ArgKind::CtxOrNull,
        "sock" => ArgKind::Sock,
        "release_sock" => ArgKind::ReleaseSock,
        "sock_or_null" => ArgKind::SockOrNull,
        _ => {
            return fail(
                spec,
                format!(
                    "unknown argument kind `{base}` (scalar, any, mem[:rN], ro_mem[:rN], stack_or_mem, map, prog_array, key, value, value_out, callback_loop, callback_map_elem, callback_ctx)"
                ),
            );
        }
    };
    Ok(kind)
}

/// Parses `idx:N,key=K,value=V[,ro][,prog_array]` or `fd:N,...` into the map reference and its shape.
pub fn parse_map(spec: &str) -> Result<(MapRef, MapDef), SpecError> {
    let mut parts = spec.trim().split(',').map(str::trim);
    let head = parts.next().unwrap_or_default();
    let map = match head.split_once(':') {
        Some(("idx", n)) => n.trim().parse().ok().map(MapRef::Idx),
        Some(("fd", n)) => n.trim().parse().ok().map(MapRef::Fd),
        _ => None,
    };
    let Some(map) = map else {
        return fail(spec, format!("`{head}` is not idx:N or fd:N"));
    };
    let (mut key, mut value, mut read_only, mut prog_array) = (None, None, false, false);
    for p in parts {
        match p.split_once('=') {
            Some(("key", n)) => key = parse_u32(n.trim()),
            Some(("value", n)) => value = parse_u32(n.trim()),
            None if p == "ro" => read_only = true,
            None if p == "prog_array" => prog_array = true,
            _ => {
                return fail(
                    spec,
                    format!("unknown field `{p}` (key=K, value=V, ro, prog_array)"),
                );
            }
        }
    }
    match (key, value) {
        (Some(k), Some(v)) => Ok((
            map,
            MapDef::new(k, v)
                .with_read_only(read_only)
                .with_prog_array(prog_array),
        )),
        _ => fail(spec, "needs key=K and value=V, both numbers of bytes"),
    }
}

/// A decimal or `0x` hexadecimal number.
/// `sock_or_null`, `sock_common_or_null`, `tcp_sock_or_null`, each with `:acquire` or
/// `:cast` or neither.
fn parse_sock_ret(r: &str) -> Option<RetKind> {
    let (kind, how) = match r.split_once(':') {
        Some((k, "acquire")) => (k, SockRet::Acquire),
        Some((k, "cast")) => (k, SockRet::Cast),
        Some(_) => return None,
        None => (r, SockRet::Plain),
    };
    let kind = match kind {
        "sock_or_null" => SockKind::Full,
        "sock_common_or_null" => SockKind::Common,
        "tcp_sock_or_null" => SockKind::Tcp,
        _ => return None,
    };
    Some(RetKind::SockOrNull { kind, how })
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl fmt::Display for ArgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, size) = match *self {
            ArgKind::Scalar => ("scalar", None),
            ArgKind::Anything => ("any", None),
            ArgKind::PtrToMem { size_arg } => ("mem", size_arg),
            ArgKind::PtrToReadOnlyMem { size_arg } => ("ro_mem", size_arg),
            ArgKind::PtrToReadOnlyMemOrNull { size_arg } => ("ro_mem_or_null", size_arg),
            ArgKind::PtrToReadOnlyFixedMem { size } => return write!(f, "ro_fixed:{size}"),
            ArgKind::PtrToStackOrMem => ("stack_or_mem", None),
            ArgKind::MapHandle => ("map", None),
            ArgKind::ProgArray => ("prog_array", None),
            ArgKind::MapKey => ("key", None),
            ArgKind::MapValue => ("value", None),
            ArgKind::MapValueOut => ("value_out", None),
            ArgKind::MapValueOrNull => ("value_or_null", None),
            ArgKind::Callback(CallbackKind::Loop) => ("callback_loop", None),
            ArgKind::Callback(CallbackKind::MapElem) => ("callback_map_elem", None),
            ArgKind::CallbackCtx => ("callback_ctx", None),
            ArgKind::ConstStr => ("const_str", None),
            ArgKind::PtrToLongOut => ("long_out", None),
            ArgKind::SpinLock => ("spin_lock", None),
            ArgKind::Timer => ("timer", None),
            ArgKind::TimerMap => ("timer_map", None),
            ArgKind::Callback(CallbackKind::Timer) => ("callback_timer", None),
            ArgKind::ReleaseRecord => ("record", None),
            ArgKind::Ctx => ("ctx", None),
            ArgKind::CtxOrNull => ("ctx_or_null", None),
            ArgKind::Sock => ("sock", None),
            ArgKind::ReleaseSock => ("release_sock", None),
            ArgKind::SockOrNull => ("sock_or_null", None),
        };
        match size {
            Some(j) => write!(f, "{name}:r{}", j + 1),
            None => write!(f, "{name}"),
        }
    }
}

impl fmt::Display for RetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetKind::Scalar => "scalar",
            RetKind::MapValueOrNull => "map_value_or_null",
            RetKind::MemOrNull { size_arg } => return write!(f, "mem_or_null:r{}", size_arg + 1),
            RetKind::Void => "void",
            RetKind::SockOrNull { kind, how } => {
                let how = match how {
                    SockRet::Acquire => ":acquire",
                    SockRet::Cast => ":cast",
                    SockRet::Plain => "",
                };
                return write!(f, "{}_or_null{how}", kind.name());
            }
        })
    }
}

/// `NAME(ARG,...)->RET`: [`parse_helper`]'s form without the id.
impl fmt::Display for HelperSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        write!(f, ")->{}", self.ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_specs_parse_and_print_back() {
        for text in [
            "map_lookup_elem(map,key)->map_value_or_null",
            "map_update_elem(map,key,value,scalar)->scalar",
            "fill(mem:r2,scalar)->scalar",
            "print(ro_mem:r2,scalar)->scalar",
            "csum_diff(ro_mem_or_null:r2,scalar,ro_mem_or_null:r4,scalar,scalar)->scalar",
            "buffer(stack_or_mem)->scalar",
            "notify()->void",
            "echo(any)->scalar",
            "raw(mem,ro_mem,any,any,any)->scalar",
            "get_func_arg(any,scalar,long_out)->scalar",
            "setsockopt(ctx,scalar,scalar,ro_mem:r5,scalar)->scalar",
            "get_netns_cookie(ctx_or_null)->scalar",
            "ringbuf_submit(record,scalar)->void",
            "timer_init(timer,timer_map,scalar)->scalar",
            "timer_set_callback(timer,callback_timer)->scalar",
            "tcp_raw_check_syncookie_ipv6(ro_fixed:40,ro_fixed:20)->scalar",
        ] {
            let (id, sig) = parse_helper(&format!("7:{text}")).unwrap();
            assert_eq!(id, 7);
            assert_eq!(sig.to_string(), text);
        }
        let (id, sig) = parse_helper(" 0x1000 : double ( scalar ) -> scalar ").unwrap();
        assert_eq!(id, 0x1000);
        assert_eq!(
            sig,
            HelperSig::new("double", vec![ArgKind::Scalar], RetKind::Scalar)
        );
    }

    #[test]
    fn bad_helper_specs_say_why() {
        for (text, why) in [
            ("fill(mem)->scalar", "expected ID:NAME"),
            ("x:fill(mem)->scalar", "is not a number"),
            ("1:fill mem->scalar", "expected `(`"),
            ("1:(scalar)->scalar", "is not a helper name"),
            ("1:f(scalar->scalar", "expected `)`"),
            ("1:f(scalar)", "expected `->RET`"),
            ("1:f(scalar)->ptr", "unknown result `ptr`"),
            ("1:f(ptr)->void", "unknown argument kind `ptr`"),
            ("1:f(mem:r7,scalar)->void", "is not a register"),
            ("1:f(scalar:r2,scalar)->void", "only mem and ro_mem"),
            ("1:f(mem:r3,scalar)->void", "not another argument"),
            ("1:f(mem:r1)->void", "not another argument"),
            ("1:f(any,any,any,any,any,any)->void", "at most 5"),
            ("1:f(ro_fixed:0)->void", "is not a size in bytes above 0"),
            ("1:f(ro_fixed:r2)->void", "is not a size in bytes above 0"),
        ] {
            let e = parse_helper(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn map_specs_parse() {
        assert_eq!(
            parse_map("idx:0,key=8,value=8").unwrap(),
            (MapRef::Idx(0), MapDef::new(8, 8))
        );
        assert_eq!(
            parse_map("fd:1, key=4, value=16, ro").unwrap(),
            (MapRef::Fd(1), MapDef::new(4, 16).with_read_only(true))
        );
        assert_eq!(
            parse_map("idx:0,key=4,value=4,prog_array").unwrap(),
            (MapRef::Idx(0), MapDef::new(4, 4).with_prog_array(true))
        );
        for (text, why) in [
            ("id:0,key=8,value=8", "is not idx:N or fd:N"),
            ("idx:0,key=8", "needs key=K and value=V"),
            ("idx:0,key=8,value=x", "needs key=K and value=V"),
            ("idx:0,key=8,value=8,rw", "unknown field `rw`"),
        ] {
            let e = parse_map(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }
}
