# rule: a callback's accesses through its context are checked against the caller's frame
# mode: strict
# helper: 181:loop(scalar,callback_loop,callback_ctx,scalar)->scalar
mov r6, 0
stxdw [r10-8], r6
mov r1, 4
lddw r2, func(cb)
mov r3, r10
add r3, -8
mov r4, 0
call 181
mov r0, 0
exit
cb:
stxdw [r2+8], r1
mov r0, 0
exit
