# mode: strict
# rule: reading uninitialised stack bytes (a callee's fresh frame)
mov r0, 0
stdw [r10-8], 1
call local f
exit
f:
ldxdw r0, [r10-8]
exit
