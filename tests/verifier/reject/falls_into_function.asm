# rule: a function must end in exit or ja, not fall through into the next function
mov r0, 0
call local f
mov r0, 1
f:
mov r0, 2
exit
