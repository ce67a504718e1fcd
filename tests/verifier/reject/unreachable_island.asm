# rule: unreachable instructions are rejected (a loop no path enters)
mov r0, 0
exit
l:
add r0, 1
ja l
