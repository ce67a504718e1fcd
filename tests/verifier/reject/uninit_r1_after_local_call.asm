# mode: strict
# rule: r1-r5 are uninitialised after a local call returns
mov r1, 1
call local f
mov r0, r1
exit
f:
mov r0, 0
exit
