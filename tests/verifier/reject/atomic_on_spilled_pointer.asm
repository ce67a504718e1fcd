# mode: strict
# rule: no atomic operation on a spilled pointer
stxdw [r10-8], r1
mov r3, 1
lock add [r10-8], r3
mov r0, 0
exit
