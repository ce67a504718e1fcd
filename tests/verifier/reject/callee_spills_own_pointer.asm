# mode: strict
# rule: a pointer into a returning function's frame must not outlive it (spilled in the caller)
mov r1, r10
add r1, -8
stdw [r10-8], 0
call local f
mov r0, 0
exit
f:
mov r2, r10
stxdw [r1+0], r2
mov r0, 0
exit
