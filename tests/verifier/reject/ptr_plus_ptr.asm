# mode: strict
# rule: pointer + pointer is prohibited
mov r3, r10
add r3, r1
mov r0, 0
exit
