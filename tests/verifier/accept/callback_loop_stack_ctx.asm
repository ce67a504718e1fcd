# rule: bpf_loop's callback is checked as a function called from the helper's call, with the caller's stack context; the caller reads what it wrote
# helper: 181:loop(scalar,callback_loop,callback_ctx,scalar)->scalar
mov r6, 0
stxdw [r10-8], r6
mov r1, 10
lddw r2, func(cb)
mov r3, r10
add r3, -8
mov r4, 0
call 181
ldxdw r0, [r10-8]
exit
cb:
ldxdw r3, [r2+0]
add r3, r1
stxdw [r2+0], r3
mov r0, 0
exit
