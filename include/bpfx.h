/*
 * bpfx.h: the C API of bpfx (libbpfx.so / libbpfx.a), an eBPF runtime with a verifier, a
 * reference interpreter and an x86-64 JIT. See docs/c-api.md for a complete example.
 *
 * Lifecycle of a VM:
 *
 *   bpfx_vm_new -> [bpfx_register_helper ...] -> bpfx_load_bytecode | bpfx_load_elf
 *     -> [bpfx_set_context] [bpfx_set_input_size] -> bpfx_verify -> bpfx_compile
 *     -> bpfx_run | bpfx_run_ctx (any number of times) -> bpfx_vm_free
 *
 * Every function that returns a bpfx_status returns BPFX_OK (0) on success and records a
 * message: bpfx_last_error() (per thread) and bpfx_vm_error(vm) (per VM); the message is empty
 * after a success. No function aborts or unwinds on bad input: NULL pointers, lengths without
 * buffers, bad enum values and calls in the wrong state are status codes.
 *
 * Pointer contract: a non-NULL pointer points to what its type says, for the length given, for
 * the duration of the call. A bpfx_vm is used by one thread at a time; distinct VMs are
 * independent and may run on different threads at once. A call on a VM, program or map handle
 * that a call has not returned from (a helper or callback calling back into the handle whose
 * call runs it, or another thread meanwhile) returns BPFX_ERR_STATE and changes nothing; a
 * bpfx_*_free of such a handle does nothing (bpfx_last_error says why): free it after the
 * call returns.
 *
 * This header is checked against the library by the bpfx-capi tests: every prototype, every
 * constant, the callback typedefs and the struct layouts (bpfx_trap_info, the options, ...).
 *
 * Besides the VM, the object API (below) opens an ELF object whose programs share its maps,
 * with program and map handles and options in sized structs, as libbpf does.
 */
#ifndef BPFX_H
#define BPFX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (stable). */
typedef enum bpfx_status {
    BPFX_OK = 0,
    BPFX_ERR_NULL = 1,        /* a required pointer was NULL */
    BPFX_ERR_ARGUMENT = 2,    /* zero or wrong length, unknown enum value, text not UTF-8 */
    BPFX_ERR_STATE = 3,       /* wrong order (for example running before compiling) */
    BPFX_ERR_DECODE = 4,      /* the bytecode does not decode */
    BPFX_ERR_ELF = 5,         /* the ELF object does not load, or its maps cannot be made */
    BPFX_ERR_NO_PROGRAM = 6,  /* no program of that name */
    BPFX_ERR_VERIFY = 7,      /* the verifier (or map linking) rejected the program */
    BPFX_ERR_COMPILE = 8,     /* the JIT failed */
    BPFX_ERR_TRAP = 9,        /* the program trapped: see bpfx_trap */
    BPFX_ERR_CONTEXT = 10,    /* the input does not fit the program's context */
    BPFX_ERR_NO_MAP = 11,     /* no map of that name */
    BPFX_ERR_MAP = 12,        /* a map operation failed (sizes, full, flags, kind) */
    BPFX_ERR_NOT_FOUND = 13,  /* the map has no entry with that key */
    BPFX_ERR_INTERNAL = 14,   /* a bug in bpfx, caught at the boundary */
    BPFX_ERR_MEMORY = 15      /* the VM's memory limit refused a map or the code (none made) */
} bpfx_status;

/* Trap kinds (bpfx_trap_info.kind): the stable codes of bpfx's TrapKind. */
enum bpfx_trap_kind {
    BPFX_TRAP_NONE = 0,
    BPFX_TRAP_OUT_OF_BOUNDS = 1,
    BPFX_TRAP_CALL_DEPTH_EXCEEDED = 2,
    BPFX_TRAP_BUDGET_EXHAUSTED = 3,
    BPFX_TRAP_HELPER_ERROR = 4,
    BPFX_TRAP_UNKNOWN_HELPER = 5,
    BPFX_TRAP_UNSUPPORTED = 6,
    BPFX_TRAP_FELL_OFF_END = 7,
    BPFX_TRAP_INPUT_TOO_SMALL = 8,
    BPFX_TRAP_ENV_MISMATCH = 9 /* the run breaks an assumption of the verification */
};

/* Verification modes (bpfx_verify). */
enum bpfx_mode {
    BPFX_MODE_CHECKED = 0, /* accept what is structurally sound; guard what is not proven */
    BPFX_MODE_STRICT = 1   /* reject what cannot be proven (the kernel's contract) */
};

/* Engines (bpfx_compile). */
enum bpfx_engine {
    BPFX_ENGINE_INTERPRETER = 0,
    BPFX_ENGINE_JIT = 1
};

/* Contexts (bpfx_set_context): what r1 points to. */
enum bpfx_context {
    BPFX_CONTEXT_SECTION = 0,      /* what the ELF section implies, as libbpf maps sections */
    BPFX_CONTEXT_MEMORY = 1,       /* r1 = the buffer, r2 = its length */
    BPFX_CONTEXT_XDP = 2,          /* struct xdp_md over a packet (bpfx_run takes the packet) */
    BPFX_CONTEXT_STRUCT = 3,       /* an embedder struct of `size` bytes (bpfx_run_ctx) */
    BPFX_CONTEXT_STRUCT_PACKET = 4, /* the same, with 64-bit data/data_end fields bpfx fills */
    BPFX_CONTEXT_TC = 5,           /* struct __sk_buff of a TC program (bpfx_run takes the packet) */
    BPFX_CONTEXT_SOCKET = 6        /* struct __sk_buff of a socket filter (bpfx_run: the packet) */
};

/* Helper argument kinds (bpfx_register_helper), checked by the verifier at each call. */
enum bpfx_arg {
    BPFX_ARG_SCALAR = 1,   /* a number (BPFX_MODE_STRICT rejects a pointer) */
    BPFX_ARG_ANYTHING = 2, /* any value; the helper never dereferences it */
    BPFX_ARG_MEM = 3,      /* a pointer the helper may read and write, size unknown */
    BPFX_ARG_MEM_SIZED = 4 /* a pointer whose size in bytes is the next argument; the range is
                              checked at every call (BPFX_TRAP_OUT_OF_BOUNDS, helper not run) */
};

/* The most arguments a helper takes (r1..r5). */
#define BPFX_MAX_HELPER_ARGS 5
/* bpfx_set_mem_limit: the memory limit of a new VM, in bytes (1 GiB). */
#define BPFX_DEFAULT_MEM_LIMIT 0x40000000ULL
/* bpfx_set_input_size: forget a previously set input size. */
#define BPFX_INPUT_SIZE_UNKNOWN 0xffffffffffffffffULL
/* bpfx_set_budget: the default, no limit for a program proven to terminate and
 * BPFX_DEFAULT_BUDGET instructions per run for any other. */
#define BPFX_BUDGET_DEFAULT 0xffffffffffffffffULL
/* bpfx_set_budget: no limit at all, even for a program that may never end. */
#define BPFX_BUDGET_UNLIMITED 0xfffffffffffffffeULL
/* Instructions a run gets by default when its program's termination is not proven (2^28). */
#define BPFX_DEFAULT_BUDGET 0x10000000ULL
/* How many uBPF VMs may hold a live ubpf_compile function at once (see ubpf.h). */
#define BPFX_UBPF_JIT_SLOTS 64

/* An opaque VM. */
typedef struct bpfx_vm bpfx_vm;

/* Where and why the last run trapped. */
typedef struct bpfx_trap_info {
    uint32_t kind;       /* a BPFX_TRAP_* code */
    uint32_t pc;         /* the instruction that trapped */
    const char *message; /* owned by the VM; valid until its next run or bpfx_vm_free */
} bpfx_trap_info;

/* What an XDP run on a packet buffer gave (bpfx_run_xdp). */
typedef struct bpfx_xdp_result {
    uint64_t action; /* r0: the XDP_* verdict */
    size_t start;    /* offset of the final frame's first byte in the buffer */
    size_t len;      /* the final frame's length */
    size_t meta_len; /* bytes of metadata just before the frame (bpf_xdp_adjust_meta) */
} bpfx_xdp_result;

/* A TC program's socket-buffer metadata (bpfx_run_tc): the __sk_buff fields the program reads,
 * as the embedder sets them before the run and as the run leaves them. A program may write
 * mark, priority, tc_index, tc_classid, queue_mapping, cb and tstamp; hash, protocol and the
 * vlan_* fields change through helpers (bpf_set_hash, bpf_skb_change_proto, bpf_skb_vlan_push,
 * ...). protocol and vlan_proto are numbers (0x0800), read by the program in network byte
 * order as the kernel's. */
typedef struct bpfx_skb_meta {
    uint32_t pkt_type;        /* PACKET_HOST 0, PACKET_BROADCAST 1, ... */
    uint32_t mark;
    uint16_t queue_mapping;
    uint16_t protocol;        /* the EtherType */
    uint32_t vlan_present;    /* 0 or 1 */
    uint16_t vlan_tci;
    uint16_t vlan_proto;      /* 0x8100, ... */
    uint32_t priority;
    uint32_t ingress_ifindex;
    uint32_t ifindex;
    uint16_t tc_index;
    uint16_t tc_classid;
    uint32_t cb[5];
    uint32_t hash;
    uint32_t napi_id;
    uint32_t wire_len;
    uint32_t gso_segs;
    uint32_t gso_size;
    uint8_t tstamp_type;
    uint64_t tstamp;          /* nanoseconds */
    uint64_t hwtstamp;
} bpfx_skb_meta;

/* What a TC run on a packet buffer gave (bpfx_run_tc). */
typedef struct bpfx_tc_result {
    int32_t action; /* the TC_ACT_* verdict (TC_ACT_UNSPEC is -1) */
    size_t start;   /* offset of the final packet's first byte in the buffer */
    size_t len;     /* the final packet's length */
} bpfx_tc_result;

/* Where the last run redirected its packet (bpfx_last_redirect). */
enum bpfx_redirect_kind {
    BPFX_REDIRECT_NONE = 0,     /* no redirect */
    BPFX_REDIRECT_IFINDEX = 1,  /* bpf_redirect: target = the ifindex, flags 1 = its ingress */
    BPFX_REDIRECT_MAP = 2,      /* bpf_redirect_map: target = the key of an entry of `map` */
    BPFX_REDIRECT_BROADCAST = 3, /* bpf_redirect_map, BPF_F_BROADCAST: every entry of `map`;
                                    flags 1 = all but the ingress device */
    BPFX_REDIRECT_SOCKET = 4,    /* bpf_sk_redirect_map/_hash: the socket of an entry of `map`;
                                    target = a socket map's index (0 for a socket hash),
                                    flags 1 = to its ingress */
    BPFX_REDIRECT_PEER = 5       /* bpf_redirect_peer: target = the ifindex whose peer gets the
                                    packet at its ingress */
};

typedef struct bpfx_redirect {
    uint32_t kind;   /* a BPFX_REDIRECT_* */
    uint32_t target; /* the ifindex or the map key */
    uint32_t flags;  /* see BPFX_REDIRECT_* */
    const char *map; /* the map's name, owned by the VM until its next run; NULL without one */
} bpfx_redirect;

/* A record taken from a perf event array by bpfx_perf_read. */
typedef struct bpfx_perf_record {
    uint32_t cpu;    /* the CPU (buffer index) it was written to */
    uint64_t lost;   /* not 0: a lost-records notice with this count, and no data */
    size_t data_len; /* the sample's full size; at most data_cap bytes were copied */
} bpfx_perf_record;

/*
 * A helper written in C: r1..r5 in, r0 out; `ctx` is the pointer given at registration.
 * Pointer arguments are host addresses inside the memory the program was given. It runs on
 * the thread that called bpfx_run; it may call bpfx_helper_fail to stop the program.
 */
typedef uint64_t (*bpfx_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                   uint64_t r5, void *ctx);

/* Version string of the library (static). */
const char *bpfx_version(void);
/* Static description of a status ("unknown status" for other values). */
const char *bpfx_status_name(bpfx_status status);
/* Stable name of a BPFX_TRAP_* code ("out-of-bounds", ...; "none" for 0). */
const char *bpfx_trap_kind_name(uint32_t kind);
/* This thread's last message; valid until this thread's next bpfx call returning a status. */
const char *bpfx_last_error(void);

/* A new VM (NULL only on an internal failure). Free it with bpfx_vm_free. */
bpfx_vm *bpfx_vm_new(void);
/* Frees a VM with its maps and code; NULL is ignored, and so is a VM whose call has not
 * returned (from its own helper: see the pointer contract above). */
void bpfx_vm_free(bpfx_vm *vm);
/* The message of the last call on `vm` ("" for NULL); valid until the next call on it. */
const char *bpfx_vm_error(const bpfx_vm *vm);

/*
 * Registers helper `id` (replacing a standard helper of that id), before loading. `args` holds
 * `nargs` (<= 5) BPFX_ARG_* codes, the signature the verifier checks at each call; args = NULL
 * and nargs = 0 mean "unknown": five arguments that may be pointers the helper reads and
 * writes (accepted by BPFX_MODE_CHECKED for any values). `fn` and `ctx` must stay valid until
 * the VM is freed.
 */
bpfx_status bpfx_register_helper(bpfx_vm *vm, uint32_t id, const char *name, bpfx_helper_fn fn,
                                 void *ctx, const uint32_t *args, size_t nargs);
/* From inside a helper: when it returns, the run stops with BPFX_TRAP_HELPER_ERROR. */
void bpfx_helper_fail(const char *message);
/*
 * Limits the memory of the VM's maps (values and bookkeeping), global data and JIT code to
 * `bytes` together (default BPFX_DEFAULT_MEM_LIMIT), before loading. Each is charged before it
 * is allocated; what does not fit fails with BPFX_ERR_MEMORY naming it, the need and the limit.
 */
bpfx_status bpfx_set_mem_limit(bpfx_vm *vm, uint64_t bytes);

/* Loads raw bytecode (8 bytes per slot) as the program "main". */
bpfx_status bpfx_load_bytecode(bpfx_vm *vm, const void *code, size_t code_len);
/* Loads an ELF object and chooses `program` by name or section (NULL: the first program). Its
 * maps are created when bpfx_verify accepts a program that names them (BPFX_ERR_MEMORY past
 * the limit); a map of a type bpfx lacks fails only the programs that name it. */
bpfx_status bpfx_load_elf(bpfx_vm *vm, const void *elf, size_t elf_len, const char *program);
/* The context of the next bpfx_verify (BPFX_CONTEXT_*; size and offsets for structs only).
 * The data/data_end fields must be 8-aligned, inside the struct and disjoint, else
 * BPFX_ERR_ARGUMENT. */
bpfx_status bpfx_set_context(bpfx_vm *vm, uint32_t kind, uint16_t size, uint16_t data_off,
                             uint16_t data_end_off);
/* The input size the next bpfx_verify proves memory accesses against; shorter inputs are then
 * refused (BPFX_ERR_CONTEXT). BPFX_INPUT_SIZE_UNKNOWN forgets it. */
bpfx_status bpfx_set_input_size(bpfx_vm *vm, uint64_t size);
/* What each run may execute: BPFX_BUDGET_DEFAULT (what a new VM has), BPFX_BUDGET_UNLIMITED, or
 * a number of instructions, every run getting all of it (set a number before bpfx_compile: the
 * JIT compiles the budget charge in then). A run that exhausts it stops with
 * BPFX_TRAP_BUDGET_EXHAUSTED at the instruction that found it empty. */
bpfx_status bpfx_set_budget(bpfx_vm *vm, uint64_t budget);
/* Verifies the loaded program in a BPFX_MODE_*; discards what was compiled before. */
bpfx_status bpfx_verify(bpfx_vm *vm, uint32_t mode);
/* Prepares the verified program on a BPFX_ENGINE_* (may be called again for another). */
bpfx_status bpfx_compile(bpfx_vm *vm, uint32_t engine);
/* Runs with r1 = mem, r2 = mem_len (an XDP program: mem is the packet, the result its action;
 * a TC program: mem is the packet, run with default skb metadata, the result its TC_ACT_* value
 * as an unsigned 32-bit number; a socket filter: mem is the packet, the result the bytes kept;
 * a cgroup skb program (section cgroup_skb/ingress, cgroup_skb/egress, cgroup/skb): mem is an
 * IP packet from its network header, read-only, with the socket the kernel's test run gives
 * it, the result the return value).
 * An XDP program that moves or resizes its frame (bpf_xdp_adjust_head/tail), or a TC program
 * that leaves the packet longer or shorter (bpf_skb_change_tail, bpf_skb_adjust_room, ...),
 * fails with BPFX_ERR_CONTEXT, mem untouched (XDP: run it with bpfx_run_xdp).
 * mem may be NULL when mem_len is 0. On BPFX_ERR_TRAP, bpfx_trap tells where and why. */
bpfx_status bpfx_run(bpfx_vm *vm, void *mem, size_t mem_len, uint64_t *result);
/* Runs a program with a struct context: `ctx` (at least the struct size) and a packet. */
bpfx_status bpfx_run_ctx(bpfx_vm *vm, void *ctx, size_t ctx_len, void *packet,
                         size_t packet_len, uint64_t *result);
/* Runs an XDP program on a packet buffer of buf_len bytes: `start` bytes of headroom (the kernel
 * gives 256; the program never gets the first 40), the frame of `len` bytes, the rest tailroom
 * (each room at most 65535 bytes, else BPFX_ERR_ARGUMENT); the metadata starts empty. The
 * program may move the frame's head, tail and metadata (bpf_xdp_adjust_head/tail/meta): the
 * buffer holds the final frame after the run (after a trap too, as far as the program got),
 * at out->start, out->len bytes long. BPFX_ERR_CONTEXT for a program of another type. */
bpfx_status bpfx_run_xdp(bpfx_vm *vm, void *buf, size_t buf_len, size_t start, size_t len,
                         bpfx_xdp_result *out);
/* Runs a TC program (sched_cls/sched_act) on a packet buffer of buf_len bytes as bpfx_run_xdp
 * runs an XDP program: `start` bytes of headroom, the packet of `len` bytes, the rest tailroom
 * (each room at most 65535 bytes, else BPFX_ERR_ARGUMENT), with the socket-buffer metadata
 * *meta. The program may grow and shrink the packet at both ends within the rooms
 * (bpf_skb_change_head/tail, bpf_skb_adjust_room, bpf_skb_vlan_push/pop, ...): the buffer holds
 * the final packet after the run (after a trap too, as far as the program got), at out->start,
 * out->len bytes long. After a successful run *meta holds the metadata as the run left it
 * (after a failed one, what it held before). The redirect target: bpfx_last_redirect.
 * BPFX_ERR_CONTEXT for a program of another type; buf, meta and out must not overlap. */
bpfx_status bpfx_run_tc(bpfx_vm *vm, void *buf, size_t buf_len, size_t start, size_t len,
                        bpfx_skb_meta *meta, bpfx_tc_result *out);
/* Where the last run (XDP or TC) redirected its packet: bpf_redirect or bpf_redirect_map, the
 * last call of the run that succeeded; kind BPFX_REDIRECT_NONE when none did. */
bpfx_status bpfx_last_redirect(bpfx_vm *vm, bpfx_redirect *out);
/* The trap of the last run; BPFX_ERR_STATE if it did not trap. */
bpfx_status bpfx_trap(bpfx_vm *vm, bpfx_trap_info *out);

/* Copies the value under `key` in map `map` into `value` (exactly the map's value size; for
 * per-CPU maps every CPU's value, each rounded up to 8 bytes, as libbpf lays them out);
 * BPFX_ERR_NOT_FOUND if there is none. */
bpfx_status bpfx_map_lookup(bpfx_vm *vm, const char *map, const void *key, size_t key_len,
                            void *value, size_t value_len);
/* Stores `value` under `key`; flags: 0 create or replace, 1 create only, 2 replace only. */
bpfx_status bpfx_map_update(bpfx_vm *vm, const char *map, const void *key, size_t key_len,
                            const void *value, size_t value_len, uint64_t flags);
/* Removes `key` (hash maps; array entries always exist). */
bpfx_status bpfx_map_delete(bpfx_vm *vm, const char *map, const void *key, size_t key_len);

/* Takes the next record of perf event array `map` (the oldest of the lowest CPU that has one):
 * a sample's data goes to `data` (at most `data_cap` bytes; NULL when data_cap is 0), its CPU,
 * size or lost count to `out`. BPFX_ERR_NOT_FOUND when no record waits. */
bpfx_status bpfx_perf_read(bpfx_vm *vm, const char *map, bpfx_perf_record *out, void *data,
                           size_t data_cap);

/* The x86-64 listing of a program compiled with BPFX_ENGINE_JIT, interleaved with its eBPF
 * source; free it with free(). NULL on error (see bpfx_vm_error). */
char *bpfx_listing(bpfx_vm *vm);

/*
 * The forwarding table of bpf_fib_lookup (XDP and TC programs): what the program asks
 * (struct bpf_fib_lookup's inputs) and the route the table answers with. Addresses are in
 * network order, an IPv4 address in the first 4 bytes.
 */
typedef struct bpfx_fib_request {
    uint8_t src[16];
    uint8_t dst[16];
    uint32_t ifindex;         /* ingress (egress with BPF_FIB_LOOKUP_OUTPUT) */
    uint32_t tos_or_flowinfo; /* IPv4 tos, IPv6 flowinfo (host order) */
    uint32_t flags;           /* BPF_FIB_LOOKUP_* */
    uint32_t table;           /* tbid with BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID */
    uint16_t sport;           /* host order */
    uint16_t dport;           /* host order */
    uint16_t tot_len;         /* the L3 length the program gave */
    uint8_t family;           /* AF_INET (2) or AF_INET6 (10) */
    uint8_t l4_protocol;
    uint32_t has_table;       /* 1 when `table` names a table */
    uint32_t context;         /* BPFX_CONTEXT_XDP or BPFX_CONTEXT_TC */
    uint32_t mark;            /* with BPF_FIB_LOOKUP_MARK (1 << 5) in flags; else 0 */
} bpfx_fib_request;

typedef struct bpfx_fib_route {
    uint8_t gateway[16]; /* with has_gateway: written over the destination */
    uint8_t src[16];     /* with has_src: the preferred source (BPF_FIB_LOOKUP_SRC) */
    uint32_t ifindex;    /* the egress device */
    uint32_t metric;     /* rt_metric */
    uint16_t mtu;        /* the route's MTU (the helper's FRAG_NEEDED check) */
    uint8_t smac[6];     /* the egress device's MAC */
    uint8_t dmac[6];     /* with has_dmac: the next hop's MAC (else BPF_FIB_LKUP_RET_NO_NEIGH) */
    uint8_t has_dmac;
    uint8_t has_gateway;
    uint8_t has_src;
} bpfx_fib_route;

/*
 * A forwarding table: returns 0 to forward along `*route` (zeroed before the call), 1..6 for
 * BPF_FIB_LKUP_RET_BLACKHOLE..BPF_FIB_LKUP_RET_UNSUPP_LWT, -19 (-ENODEV) for an unknown
 * device; any other value is BPF_FIB_LKUP_RET_NOT_FWDED. The helper applies the kernel's flags,
 * MTU check and error codes around the answer (docs/runtime.md, helper 69).
 */
typedef int (*bpfx_fib_fn)(const bpfx_fib_request *req, bpfx_fib_route *route, void *ctx);

/* Sets the table bpf_fib_lookup asks, before loading (NULL, the default: nothing is
 * forwarded). `fn` and `ctx` must stay valid until the VM is freed; `fn` runs on the thread
 * that called bpfx_run. */
bpfx_status bpfx_set_fib(bpfx_vm *vm, bpfx_fib_fn fn, void *ctx);

/*
 * The object API (libbpf-style): an ELF object whose programs share its maps, each program
 * prepared with its own options, maps as handles.
 *
 *   bpfx_object_open_file | bpfx_object_open_mem (bpfx_object_opts)
 *     -> [bpfx_object_set_global ...] (a .rodata setting: before the programs reading it)
 *     -> bpfx_object_program (bpfx_program_opts: verified and compiled) -> bpfx_program_run ...
 *     -> bpfx_object_get_global / _set_global
 *     -> bpfx_object_map -> bpfx_map_lookup_elem / _update_elem / _delete_elem / next_key,
 *        bpfx_ringbuf_consume, bpfx_map_perf_read, bpfx_prog_array_set (tail calls)
 *     -> bpfx_program_free, bpfx_map_free, bpfx_object_free (in any order)
 *
 * Lifetimes: every handle holds what it uses by reference count, so handles may be freed in
 * any order: a program keeps its code and the object's maps, a map handle its map; freeing the
 * object invalidates none of them. A handle must not be used after its own bpfx_*_free.
 * Threads: a bpfx_program is used by one thread at a time (running it, or putting it into a
 * program array); bpfx_map handles and the maps behind them may be used from several threads
 * at once, while programs run. These calls record their message in bpfx_last_error only.
 *
 * Options (libbpf's opts pattern): set `sz` to sizeof the struct, for example
 *   BPFX_OPTS(bpfx_program_opts, opts, .engine = BPFX_ENGINE_JIT, .mode = BPFX_MODE_STRICT);
 * A field left 0 takes its default; NULL options are all defaults. A program built against an
 * older, smaller struct keeps working (the fields it lacks are 0); a newer, larger struct is
 * accepted if every byte this library does not know is 0, else BPFX_ERR_ARGUMENT.
 */
typedef struct bpfx_object bpfx_object;
typedef struct bpfx_program bpfx_program;
typedef struct bpfx_map bpfx_map;

/* Declares options struct NAME of TYPE with its size set and the given fields. */
#define BPFX_OPTS(TYPE, NAME, ...) TYPE NAME = {.sz = sizeof(TYPE), __VA_ARGS__}

/* bpfx_program_opts.hardening flags (JIT only; docs/safety.md). */
#define BPFX_HARDEN_BLINDING 0x1U /* constant blinding */
#define BPFX_HARDEN_SPECTRE 0x2U  /* Spectre v1 masking after every bounds guard */

/* bpfx_program_opts.code_memory (JIT only). */
enum bpfx_code_memory {
    BPFX_CODE_MEMORY_SEALED = 0,     /* the program's own mapping, sealed read+execute */
    BPFX_CODE_MEMORY_DUAL_MAPPED = 1 /* a shared memfd arena mapped read+write and read+execute */
};

/* A map's number of entries given at opening (bpfx_object_opts.max_entries). */
typedef struct bpfx_map_size {
    const char *name;     /* a map of the object (else BPFX_ERR_ARGUMENT) */
    uint32_t max_entries; /* replaces what the object declares, checked as a declared size is */
} bpfx_map_size;

/* The inner map template of a map of maps the object declares without one (the legacy
 * `struct bpf_map_def SEC("maps")` form), as libbpf's bpf_map__set_inner_map_fd gives it
 * (bpfx_object_opts.inner_maps). A template the object declares (`__array(values, ...)`) is
 * kept, as libbpf keeps it. */
typedef struct bpfx_inner_map {
    const char *outer;    /* a map of maps of the object (else BPFX_ERR_ARGUMENT) */
    uint32_t map_type;    /* the template's BPF_MAP_TYPE_* number (linux/bpf.h) */
    uint32_t key_size;    /* its key and value sizes in bytes, entries and BPF_F_* flags, */
    uint32_t value_size;  /* checked as the kernel checks a map it creates */
    uint32_t max_entries;
    uint32_t map_flags;
} bpfx_inner_map;

typedef struct bpfx_object_opts {
    size_t sz;          /* sizeof(bpfx_object_opts) */
    uint64_t mem_limit; /* bytes for maps, global data and code (0: BPFX_DEFAULT_MEM_LIMIT),
                           as bpfx_set_mem_limit */
    const char *kconfig; /* values of the object's __kconfig externs, as libbpf's
                            bpf_object_open_opts.kconfig: lines NAME=VALUE as in a kernel
                            .config (CONFIG_HZ=250, CONFIG_X=y, a quoted string), empty lines and
                            '#' comments skipped; NULL: none. Read during the call only. */
    const bpfx_map_size *max_entries; /* max_entries_cnt maps sized before they are created,
                                         as libbpf's bpf_map__set_max_entries between opening
                                         and loading; read during the call only */
    size_t max_entries_cnt;
    const bpfx_inner_map *inner_maps; /* inner_maps_cnt templates of maps of maps; read during
                                         the call only */
    size_t inner_maps_cnt;
} bpfx_object_opts;

typedef struct bpfx_program_opts {
    size_t sz;            /* sizeof(bpfx_program_opts) */
    uint32_t engine;      /* BPFX_ENGINE_* (0: the interpreter) */
    uint32_t mode;        /* BPFX_MODE_* (0: checked; BPFX_MODE_STRICT: the kernel's contract) */
    uint64_t budget;      /* instructions per run, as bpfx_set_budget (0: BPFX_BUDGET_DEFAULT) */
    uint32_t hardening;   /* BPFX_HARDEN_* flags; JIT only, else BPFX_ERR_ARGUMENT */
    uint32_t code_memory; /* a BPFX_CODE_MEMORY_*; JIT only (non-zero), else BPFX_ERR_ARGUMENT */
    uint32_t context;     /* a BPFX_CONTEXT_* (0: what the section implies), as bpfx_set_context */
    uint32_t ctx_size;    /* struct contexts: the struct's size (at most 65535) */
    uint32_t data_off;    /* BPFX_CONTEXT_STRUCT_PACKET: offset of the 64-bit data field */
    uint32_t data_end_off; /* BPFX_CONTEXT_STRUCT_PACKET: offset of the 64-bit data_end field */
    uint64_t input_size;  /* the input size verification proves accesses against (0: unknown),
                             as bpfx_set_input_size */
} bpfx_program_opts;

/*
 * A ring buffer record for bpfx_ringbuf_consume: `data` holds `size` bytes, valid during the
 * call only. A negative return stops the consumer (the record counts as consumed).
 */
typedef int (*bpfx_ringbuf_fn)(void *ctx, const void *data, size_t size);

/* Opens the ELF object `elf` (elf_len bytes, read during the call only) into *out with the
 * standard helpers; *out is NULL on failure. */
bpfx_status bpfx_object_open_mem(const void *elf, size_t elf_len, const bpfx_object_opts *opts,
                                 bpfx_object **out);
/* The same with the helpers registered on `vm` (bpfx_register_helper: helpers written in C,
 * checked by the verifier by their signatures) and its memory limit (unless opts->mem_limit
 * sets one): a VM used only to register helpers, which may be freed right after. The helpers'
 * `fn` and `ctx` must stay valid until the object and every program taken from it are freed. */
bpfx_status bpfx_object_open_mem_vm(const bpfx_vm *vm, const void *elf, size_t elf_len,
                                    const bpfx_object_opts *opts, bpfx_object **out);
/* The same for the file at `path` (BPFX_ERR_ELF if it cannot be read). */
bpfx_status bpfx_object_open_file(const char *path, const bpfx_object_opts *opts,
                                  bpfx_object **out);
/* Frees the object; its programs and map handles stay valid. NULL is ignored. */
void bpfx_object_free(bpfx_object *obj);
/* The name of program / map `index` in the object's order; NULL past the last (or obj NULL).
 * Valid while the object lives. */
const char *bpfx_object_program_name(const bpfx_object *obj, size_t index);
const char *bpfx_object_map_name(const bpfx_object *obj, size_t index);

/* Global variable `name` of the object's global data (.data, .rodata, .bss, ..., found
 * through its BTF DATASEC, as libbpf's skeletons reach them), set from / read into `len`
 * bytes, which must be the variable's size (else BPFX_ERR_ARGUMENT, as for a name the object
 * lacks: the message lists its globals). Programs see a set value on their next access; only
 * the variable's bytes are written. A read-only (.rodata, `const volatile`) variable can be
 * set only until a program that reads its section is prepared (then BPFX_ERR_STATE). */
bpfx_status bpfx_object_set_global(const bpfx_object *obj, const char *name, const void *value,
                                   size_t len);
bpfx_status bpfx_object_get_global(const bpfx_object *obj, const char *name, void *out,
                                   size_t len);

/* Program `name` (by name, else by section) verified in opts->mode and prepared on
 * opts->engine, into *out (NULL on failure). Its context is opts->context, by default the one
 * its section implies; its maps are the object's, shared with every other program of the object. Each call prepares a
 * new program: call it once per program and keep the handle. */
bpfx_status bpfx_object_program(const bpfx_object *obj, const char *name,
                                const bpfx_program_opts *opts, bpfx_program **out);
/* Frees a program. NULL is ignored, and so is a program whose run has not returned (from its
 * own helper). A program in a program array stays there (and runnable by tail calls) until
 * its slot is cleared or the map goes. */
void bpfx_program_free(bpfx_program *prog);
/* The program's name ("" for NULL); valid while the handle lives. */
const char *bpfx_program_name(const bpfx_program *prog);
/* Runs the program as bpfx_run runs a VM's (same inputs and results), each run with the whole
 * budget of its options. On BPFX_ERR_TRAP, bpfx_program_trap tells where and why. */
bpfx_status bpfx_program_run(bpfx_program *prog, void *mem, size_t mem_len, uint64_t *result);
/* Runs a program prepared with a struct context (opts->context) as bpfx_run_ctx runs a VM's. */
bpfx_status bpfx_program_run_ctx(bpfx_program *prog, void *ctx, size_t ctx_len, void *packet,
                                 size_t packet_len, uint64_t *result);
/* Runs an XDP program on a packet buffer as bpfx_run_xdp runs a VM's. */
bpfx_status bpfx_program_run_xdp(bpfx_program *prog, void *buf, size_t buf_len, size_t start,
                                 size_t len, bpfx_xdp_result *out);
/* Runs a TC program on a packet buffer as bpfx_run_tc runs a VM's. */
bpfx_status bpfx_program_run_tc(bpfx_program *prog, void *buf, size_t buf_len, size_t start,
                                size_t len, bpfx_skb_meta *meta, bpfx_tc_result *out);
/* Where the program's last run redirected its packet, as bpfx_last_redirect (the map name
 * owned by the program until its next run). */
bpfx_status bpfx_program_last_redirect(const bpfx_program *prog, bpfx_redirect *out);
/* The trap of the program's last run (message owned by the program until its next run);
 * BPFX_ERR_STATE if it did not trap. */
bpfx_status bpfx_program_trap(const bpfx_program *prog, bpfx_trap_info *out);

/* A handle on map `name` of the object into *out (NULL on failure); the map is created now if
 * no program created it yet (BPFX_ERR_MEMORY past the limit). */
bpfx_status bpfx_object_map(const bpfx_object *obj, const char *name, bpfx_map **out);
/* Frees a map handle (the map lives on in the object's programs). NULL is ignored, and so
 * is a handle a bpfx_ringbuf_consume of it is still using (from its callback). */
void bpfx_map_free(bpfx_map *map);
/* The map's name ("" for NULL), valid while the handle lives. */
const char *bpfx_map_name(const bpfx_map *map);
/* The map's BPF_MAP_TYPE_* number (linux/bpf.h), key size, value size as declared (one CPU's
 * for per-CPU maps), and max_entries; 0 for NULL. */
uint32_t bpfx_map_type(const bpfx_map *map);
uint32_t bpfx_map_key_size(const bpfx_map *map);
uint32_t bpfx_map_value_size(const bpfx_map *map);
uint32_t bpfx_map_max_entries(const bpfx_map *map);
/* The value buffer size lookups and updates take: the value size, or for per-CPU maps every
 * CPU's value, each rounded up to 8 bytes, as libbpf lays them out (0 for NULL). */
size_t bpfx_map_value_buf_size(const bpfx_map *map);
/* As bpfx_map_lookup / _update / _delete, by handle: `value_len` must be
 * bpfx_map_value_buf_size, `key_len` the key size. */
bpfx_status bpfx_map_lookup_elem(const bpfx_map *map, const void *key, size_t key_len,
                                 void *value, size_t value_len);
bpfx_status bpfx_map_update_elem(const bpfx_map *map, const void *key, size_t key_len,
                                 const void *value, size_t value_len, uint64_t flags);
bpfx_status bpfx_map_delete_elem(const bpfx_map *map, const void *key, size_t key_len);
/* The kernel's BPF_MAP_GET_NEXT_KEY: writes the key after `key` into `next` (next_len = the
 * key size). key NULL, or a key not in the map: the first key. After the last key (or on an
 * empty map): BPFX_ERR_NOT_FOUND, the kernel's -ENOENT. Arrays go by index, hash maps by
 * key bytes; ring buffers, program and perf event arrays have no keys (BPFX_ERR_MAP).
 * A walk while entries are deleted goes on as the kernel's does (from the first key when the
 * current one went). */
bpfx_status bpfx_map_next_key(const bpfx_map *map, const void *key, size_t key_len, void *next,
                              size_t next_len);
/* libbpf's ring_buffer__consume on ring buffer `map`: calls cb(ctx, data, size) for every
 * record ready, oldest first (discarded ones skipped; a record still reserved by a running
 * program stops it). Returns the number of records consumed (at most INT_MAX), the first
 * negative value cb returned, or -EINVAL for a NULL map or cb or a map that is not a ring
 * buffer (bpfx_last_error says which). cb must not free `map`. */
int bpfx_ringbuf_consume(const bpfx_map *map, bpfx_ringbuf_fn cb, void *ctx);
/* As bpfx_perf_read, by handle. */
bpfx_status bpfx_map_perf_read(const bpfx_map *map, bpfx_perf_record *out, void *data,
                               size_t data_cap);
/* Puts `prog` in slot `index` of program array `map` for bpf_tail_call; both must come from
 * the same object, and the index be below max_entries (else BPFX_ERR_MAP). A tail call's
 * target should take the same context as its callers. */
bpfx_status bpfx_prog_array_set(const bpfx_map *map, uint32_t index, const bpfx_program *prog);
/* Empties slot `index` of program array `map`. */
bpfx_status bpfx_prog_array_clear(const bpfx_map *map, uint32_t index);

/* Creates a map of no object into *out (NULL on failure), as libbpf's bpf_map_create: a
 * BPF_MAP_TYPE_* number, a name (NULL: ""), key and value sizes in bytes, entries and BPF_F_*
 * flags, checked as the kernel checks them (BPFX_ERR_MAP naming what is wrong, or BPFX_ERR_ARGUMENT
 * for a type bpfx does not implement). Its use: an inner map for bpfx_map_set_inner; programs
 * reach it only through a map of maps. Free it with bpfx_map_free (it lives on in the maps of
 * maps that hold it). */
bpfx_status bpfx_map_create(uint32_t type, const char *name, uint32_t key_size,
                            uint32_t value_size, uint32_t max_entries, uint32_t map_flags,
                            bpfx_map **out);
/* Stores map `inner` under `key` (key_len = the key size) of map of maps `outer`, as an update
 * with the inner map's fd does in the kernel (`flags`: 0 any, 1 create only, 2 replace only).
 * BPFX_ERR_MAP when `outer` is no map of maps, when `inner` does not match its template (type,
 * key and value sizes, flags; for arrays of maps max_entries too, unless the template has
 * BPF_F_INNER_MAP: the kernel's EINVAL), for an index past an array's end or a full hash of
 * maps (E2BIG), or as the flags ask (EEXIST, ENOENT). Runs already started keep the inner map
 * they saw; bpfx_map_delete_elem removes it. */
bpfx_status bpfx_map_set_inner(const bpfx_map *outer, const void *key, size_t key_len,
                               const bpfx_map *inner, uint64_t flags);

#ifdef __cplusplus
}
#endif

#endif /* BPFX_H */
