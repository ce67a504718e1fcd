# mode: strict
# rule: a helper declared void leaves r0 uninitialised
# helper: 8:notify()->void
mov r0, 0
call 8
exit
