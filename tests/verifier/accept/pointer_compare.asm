# rule: comparing pointers is allowed
mov r3, r1
add r3, 4
mov r0, 0
jgt r3, r1, +1
mov r0, 1
exit
