# rule: jumps stay inside their function (a callee jumping back into its caller)
top:
mov r0, 0
call local f
exit
f:
ja top
