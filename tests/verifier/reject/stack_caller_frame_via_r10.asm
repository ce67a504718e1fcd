# mode: strict
# rule: a callee reaches its caller's frame only through a pointer, not above its own r10
mov r0, 0
stdw [r10-8], 1
call local f
exit
f:
ldxdw r0, [r10+8]
exit
