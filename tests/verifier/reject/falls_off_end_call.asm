# rule: no path falls off the end: a helper call as the last instruction
# helper: 5:echo(any)->scalar
mov r0, 0
ja +1
exit
call 5
