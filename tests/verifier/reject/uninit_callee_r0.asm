# mode: strict
# rule: r0 must be initialised at a callee's exit
mov r0, 0
call local f
exit
f:
exit
