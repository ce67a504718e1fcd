# rule: jumps stay inside their function
mov r0, 0
call local f
ja inside
exit
f:
mov r0, 1
inside:
exit
