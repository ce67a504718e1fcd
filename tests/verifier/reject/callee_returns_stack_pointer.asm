# mode: strict
# rule: a pointer into a returning function's frame must not outlive it
mov r0, 0
call local f
mov r0, 0
exit
f:
mov r0, r10
exit
