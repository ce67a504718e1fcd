# mode: strict
# rule: a helper call leaves r1-r5 uninitialised
# helper: 5:echo(any)->scalar
mov r1, 7
call 5
mov r0, r1
exit
