# mode: strict
# rule: only pointers to memory can be dereferenced (store through a scalar)
mov r2, 4096
stw [r2+0], 1
mov r0, 0
exit
