# mode: strict
# rule: only pointers to memory can be dereferenced (load through a scalar)
mov r2, 4096
ldxdw r3, [r2+0]
mov r0, r3
exit
