# mode: checked
# rule: a guarded store may hit any stack frame, so spills are forgotten after it and a fill
# no longer yields a pointer (the access through it stays guarded)
mov r3, r10
add r3, -16
stxdw [r10-8], r3
ldxdw r4, [r1+0]
stdw [r4+0], 0
ldxdw r5, [r10-8]
stdw [r5+0], 1
mov r0, 0
exit
