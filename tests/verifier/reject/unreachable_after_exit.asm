# rule: unreachable instructions are rejected
mov r0, 0
exit
mov r0, 1
exit
