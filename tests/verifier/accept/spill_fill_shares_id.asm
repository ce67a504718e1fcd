# rule: a spill of an unknown scalar and its fill share the register's id: a bound on the
# fill bounds the spilled register (the kernel's scalar ids through spills)
ldxdw r6, [r1+0]
stxdw [r10-8], r6
ldxdw r7, [r10-8]
jgt r7, 56, +4
mov r2, r1
add r2, r6
ldxb r0, [r2+0]
exit
mov r0, 0
exit
