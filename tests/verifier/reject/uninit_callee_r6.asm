# mode: strict
# rule: a callee's r6-r9 start uninitialised in its own frame
mov r6, 1
call local f
exit
f:
mov r0, r6
exit
