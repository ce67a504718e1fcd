# rule: unreachable instructions are rejected (a function called only from dead code)
mov r0, 0
exit
call local f
exit
f:
mov r0, 1
exit
