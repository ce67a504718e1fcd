# rule: a callee writes its caller's frame through a pointer; the caller sees the bytes
mov r1, r10
add r1, -8
call local f
ldxdw r0, [r10-8]
exit
f:
stdw [r1+0], 42
mov r0, 0
exit
