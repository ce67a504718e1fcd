# rule: no path falls off the end: a helper call as the last instruction
mov r0, 0
ja +1
exit
call 5
