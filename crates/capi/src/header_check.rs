//! The headers against the Rust definitions: every prototype of `include/bpfx.h` and
//! `include/ubpf.h` against the exported functions of `ffi.rs` and `ubpf_ffi.rs` (names,
//! parameter and return types), every constant against [`crate::error::constants`], the
//! function-pointer typedefs and the `bpfx_trap_info` and `bpfx_perf_record` layouts. (That the library exports each
//! symbol is checked on the built `libbpfx.so` by `tests/c_api.rs`.)

use std::collections::BTreeMap;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn read(rel: &str) -> String {
    let path = format!("{ROOT}/{rel}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// C text without comments and preprocessor lines (except `#define`s, kept for constants).
fn strip_c(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("*/").expect("closed comment") + i + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| !l.trim_start().starts_with('#') || l.trim_start().starts_with("#define"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A C type in canonical spelling: words and stars separated by single spaces.
fn canon(t: &str) -> String {
    t.replace('*', " * ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A C parameter's type: the declaration without its name.
fn c_param_type(p: &str) -> String {
    let mut toks: Vec<String> = canon(p).split(' ').map(str::to_string).collect();
    let is_word = |t: &str| t.chars().all(|c| c.is_alphanumeric() || c == '_');
    let keywords = [
        "void", "char", "int", "bool", "unsigned", "const", "struct", "size_t",
    ];
    if toks.len() > 1
        && toks.last().is_some_and(|t| is_word(t))
        && !keywords.contains(&toks.last().unwrap().as_str())
        && !toks.last().unwrap().ends_with("_t")
    {
        toks.pop();
    }
    toks.join(" ")
}

/// The C type a Rust FFI type stands for.
fn rust_to_c(t: &str) -> String {
    let t = t.trim();
    if let Some(inner) = t.strip_prefix("*mut ") {
        return canon(&format!("{} *", rust_to_c(inner)));
    }
    if let Some(inner) = t.strip_prefix("*const ") {
        return canon(&format!("const {} *", rust_to_c(inner)));
    }
    if let Some((elem, len)) = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.split_once("; "))
    {
        return format!("{}[{len}]", rust_to_c(elem));
    }
    let c = match t {
        "BpfxVm" => "bpfx_vm",
        "UbpfVmHandle" => "struct ubpf_vm",
        "BpfxTrapInfo" => "bpfx_trap_info",
        "BpfxPerfRecord" => "bpfx_perf_record",
        "BpfxXdpResult" => "bpfx_xdp_result",
        "BpfxRedirect" => "bpfx_redirect",
        "BpfxSkbMeta" => "bpfx_skb_meta",
        "BpfxTcResult" => "bpfx_tc_result",
        "BpfxObject" => "bpfx_object",
        "BpfxProgram" => "bpfx_program",
        "BpfxMap" => "bpfx_map",
        "BpfxObjectOpts" => "bpfx_object_opts",
        "BpfxMapSize" => "bpfx_map_size",
        "BpfxInnerMap" => "bpfx_inner_map",
        "BpfxProgramOpts" => "bpfx_program_opts",
        "BpfxFibRequest" => "bpfx_fib_request",
        "BpfxFibRoute" => "bpfx_fib_route",
        "Option<FibFn>" => "bpfx_fib_fn",
        "c_char" => "char",
        "c_void" => "void",
        "c_int" => "int",
        "c_uint" => "unsigned int",
        "bool" => "bool",
        "u8" => "uint8_t",
        "u16" => "uint16_t",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "i32" => "int32_t",
        "usize" => "size_t",
        "Status" | "StatusCode" => "bpfx_status",
        "Option<HelperFn>" => "bpfx_helper_fn",
        "Option<RingbufFn>" => "bpfx_ringbuf_fn",
        "Option<ExternalFn>" => "external_function_t",
        "Option<JitFn>" => "ubpf_jit_fn",
        "" | "()" => "void",
        other => panic!("no C spelling for the Rust type `{other}`"),
    };
    c.to_string()
}

/// Splits on commas outside angle brackets and parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0i32, String::new(), Vec::new());
    for ch in s.chars() {
        match ch {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `name -> (return type, parameter types)`, all in canonical C spelling.
type Sigs = BTreeMap<String, (String, Vec<String>)>;

fn c_prototypes(src: &str) -> Sigs {
    let text = strip_c(src);
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("#define"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = Sigs::new();
    for stmt in text.split(';') {
        let stmt = stmt.trim();
        // Declarations of functions only: not typedefs, enums, struct bodies or extern blocks.
        let stmt = stmt.rsplit(['{', '}']).next().unwrap_or("").trim();
        if stmt.starts_with("typedef") || !stmt.ends_with(')') || stmt.contains("(*") {
            continue;
        }
        let open = stmt.find('(').expect("a parameter list");
        let head = canon(&stmt[..open]);
        let (ret, name) = head.rsplit_once(' ').expect("return type and name");
        let params = &stmt[open + 1..stmt.len() - 1];
        let params: Vec<String> = split_top(params)
            .iter()
            .map(|p| c_param_type(p))
            .filter(|p| p != "void")
            .collect();
        out.insert(name.to_string(), (ret.to_string(), params));
    }
    out
}

fn rust_exports(src: &str) -> Sigs {
    let mut out = Sigs::new();
    for chunk in src.split("#[unsafe(no_mangle)]").skip(1) {
        let at = chunk.find("extern \"C\" fn ").expect("an exported fn") + 14;
        let rest = &chunk[at..];
        let open = rest.find('(').unwrap();
        let name = rest[..open].trim().to_string();
        let mut depth = 0;
        let mut close = open;
        for (i, ch) in rest.char_indices().skip(open) {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let params = split_top(&rest[open + 1..close])
            .iter()
            .map(|p| rust_to_c(p.split_once(':').expect("name: type").1))
            .collect();
        let after = &rest[close + 1..rest.find('{').unwrap()];
        let ret = after.trim().strip_prefix("->").unwrap_or("").trim();
        out.insert(name, (rust_to_c(ret), params));
    }
    out
}

#[test]
fn prototypes_match_the_exported_functions() {
    let mut c = c_prototypes(&read("include/bpfx.h"));
    let ubpf = c_prototypes(&read("include/ubpf.h"));
    assert!(c.len() > 20 && ubpf.len() > 10, "parsed {c:?} {ubpf:?}");
    c.extend(ubpf);
    let mut rust = rust_exports(&read("crates/capi/src/ffi.rs"));
    rust.extend(rust_exports(&read("crates/capi/src/ubpf_ffi.rs")));
    let c_names: Vec<_> = c.keys().collect();
    let rust_names: Vec<_> = rust.keys().collect();
    assert_eq!(c_names, rust_names, "declared vs exported functions");
    for (name, sig) in &c {
        assert_eq!(Some(sig), rust.get(name), "{name}: header vs Rust");
    }
}

#[test]
fn constants_match_the_rust_values() {
    let text = strip_c(&read("include/bpfx.h"));
    let mut header = BTreeMap::new();
    let parse = |v: &str| -> i128 {
        let v = v.trim().trim_end_matches("ULL").trim_end_matches('U');
        match v.strip_prefix("0x") {
            Some(hex) => i128::from_str_radix(hex, 16).expect("hex"),
            None => v.parse().expect("decimal"),
        }
    };
    for line in text.lines() {
        if let Some(def) = line.trim().strip_prefix("#define ") {
            // Include guards define a name without a value; function-like macros (`BPFX_OPTS`)
            // are no constants.
            if let Some((name, value)) = def.trim().split_once(' ')
                && name.starts_with("BPFX_")
                && !name.contains('(')
            {
                header.insert(name.to_string(), parse(value));
            }
        }
    }
    for item in text.split([',', '{', '}']) {
        if let Some((name, value)) = item.split_once('=') {
            let name = name.trim();
            if name.starts_with("BPFX_") {
                header.insert(name.to_string(), parse(value));
            }
        }
    }
    let rust: BTreeMap<String, i128> = crate::error::constants().into_iter().collect();
    assert_eq!(header, rust);
}

#[test]
fn callback_typedefs_match() {
    let mut c = BTreeMap::new();
    for file in ["include/bpfx.h", "include/ubpf.h"] {
        let text = strip_c(&read(file)).replace('\n', " ");
        for stmt in text.split(';') {
            let Some(td) = stmt.trim().strip_prefix("typedef ") else {
                continue;
            };
            let Some((ret, rest)) = td.split_once("(*") else {
                continue;
            };
            let (name, params) = rest.split_once(")(").expect("(*name)(params)");
            let params: Vec<String> = split_top(params.trim_end().trim_end_matches(')'))
                .iter()
                .map(|p| c_param_type(p))
                .collect();
            c.insert(name.trim().to_string(), (canon(ret), params));
        }
    }
    let mut rust = BTreeMap::new();
    for file in ["crates/capi/src/ffi.rs", "crates/capi/src/ubpf_ffi.rs"] {
        // rustfmt breaks a long alias after its `=`.
        let src = read(file).replace("=\n    unsafe extern", "= unsafe extern");
        for line in src.lines() {
            let Some(def) = line.strip_prefix("pub type ") else {
                continue;
            };
            let Some((name, f)) = def.split_once(" = unsafe extern \"C\" fn(") else {
                continue;
            };
            let (params, ret) = f.split_once(") -> ").expect("fn(..) -> ret");
            let c_name = rust_to_c(&format!("Option<{name}>"));
            let params = split_top(params).iter().map(|p| rust_to_c(p)).collect();
            rust.insert(c_name, (rust_to_c(ret.trim_end_matches(';')), params));
        }
    }
    assert_eq!(c.len(), 5, "{c:?}");
    assert_eq!(c, rust);
}

#[test]
fn trap_info_layout_matches() {
    struct_layout_matches("bpfx_trap_info", "BpfxTrapInfo");
    assert_eq!(size_of::<crate::ffi::BpfxTrapInfo>(), 16);
}

#[test]
fn xdp_result_and_redirect_layouts_match() {
    struct_layout_matches("bpfx_xdp_result", "BpfxXdpResult");
    assert_eq!(size_of::<crate::ffi::BpfxXdpResult>(), 32);
    struct_layout_matches("bpfx_redirect", "BpfxRedirect");
    assert_eq!(size_of::<crate::ffi::BpfxRedirect>(), 24);
}

#[test]
fn skb_meta_and_tc_result_layouts_match() {
    struct_layout_matches("bpfx_skb_meta", "BpfxSkbMeta");
    assert_eq!(size_of::<crate::ffi::BpfxSkbMeta>(), 96);
    struct_layout_matches("bpfx_tc_result", "BpfxTcResult");
    assert_eq!(size_of::<crate::ffi::BpfxTcResult>(), 24);
}

#[test]
fn perf_record_layout_matches() {
    struct_layout_matches("bpfx_perf_record", "BpfxPerfRecord");
    assert_eq!(size_of::<crate::ffi::BpfxPerfRecord>(), 24);
}

#[test]
fn options_layouts_match() {
    struct_layout_matches("bpfx_object_opts", "BpfxObjectOpts");
    assert_eq!(size_of::<crate::ffi::BpfxObjectOpts>(), 56);
    struct_layout_matches("bpfx_map_size", "BpfxMapSize");
    assert_eq!(size_of::<crate::ffi::BpfxMapSize>(), 16);
    struct_layout_matches("bpfx_inner_map", "BpfxInnerMap");
    assert_eq!(size_of::<crate::ffi::BpfxInnerMap>(), 32);
    struct_layout_matches("bpfx_program_opts", "BpfxProgramOpts");
    assert_eq!(size_of::<crate::ffi::BpfxProgramOpts>(), 56);
}

/// The fields of C struct `c_name` in `bpfx.h` against those of Rust struct `rust_name`.
fn struct_layout_matches(c_name: &str, rust_name: &str) {
    let text = strip_c(&read("include/bpfx.h")).replace('\n', " ");
    let body = text
        .split(&format!("typedef struct {c_name} {{"))
        .nth(1)
        .and_then(|s| s.split('}').next())
        .expect("the C struct");
    let c: Vec<(String, String)> = body
        .split(';')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            // An array field `T name[N]` is `T[N]`.
            if let Some((decl, len)) = f.strip_suffix(']').and_then(|f| f.split_once('[')) {
                let name = decl.rsplit(' ').next().unwrap().to_string();
                return (name, format!("{}[{len}]", c_param_type(decl)));
            }
            let name = f.rsplit([' ', '*']).next().unwrap().to_string();
            (name, c_param_type(f))
        })
        .collect();
    let src = read("crates/capi/src/ffi.rs");
    let body = src
        .split(&format!("pub struct {rust_name} {{"))
        .nth(1)
        .and_then(|s| s.split('}').next())
        .expect("the Rust struct");
    let rust: Vec<(String, String)> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .map(|f| {
            let (name, ty) = f.split_once(':').unwrap();
            (name.to_string(), rust_to_c(ty.trim_end_matches(',')))
        })
        .collect();
    assert_eq!(c, rust, "{c_name}");
}

#[test]
fn parameter_names_are_dropped_but_types_kept() {
    assert_eq!(c_param_type("const char *name"), "const char *");
    assert_eq!(c_param_type("char **errmsg"), "char * *");
    assert_eq!(c_param_type("uint64_t"), "uint64_t");
    assert_eq!(c_param_type("unsigned int idx"), "unsigned int");
    assert_eq!(c_param_type("size_t"), "size_t");
    assert_eq!(rust_to_c("*mut *mut c_char"), "char * *");
    assert_eq!(rust_to_c("*const BpfxVm"), "const bpfx_vm *");
}

#[test]
fn fib_request_and_route_layouts_match() {
    struct_layout_matches("bpfx_fib_request", "BpfxFibRequest");
    assert_eq!(size_of::<crate::ffi::BpfxFibRequest>(), 68);
    struct_layout_matches("bpfx_fib_route", "BpfxFibRoute");
    assert_eq!(size_of::<crate::ffi::BpfxFibRoute>(), 60);
}
