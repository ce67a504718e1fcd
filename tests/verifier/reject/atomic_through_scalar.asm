# mode: strict
# rule: only pointers to memory can be dereferenced (an atomic through a scalar)
mov r2, 64
mov r3, 1
lock add [r2+0], r3
mov r0, 0
exit
