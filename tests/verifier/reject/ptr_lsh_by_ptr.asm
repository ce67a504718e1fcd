# mode: strict
# rule: a pointer as the operand of a shift is prohibited
mov r3, 1
lsh r3, r1
mov r0, 0
exit
