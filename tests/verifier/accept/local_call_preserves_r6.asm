# rule: local calls get their own frame; r6-r9 survive them
mov r6, r10
mov r0, 0
call local f
stdw [r6-8], 1
ldxdw r0, [r6-8]
exit
f:
stdw [r10-8], 5
mov r0, 1
exit
