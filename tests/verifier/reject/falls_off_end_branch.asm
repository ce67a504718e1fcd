# rule: no path falls off the end: a conditional jump as the last instruction
mov r0, 0
exit
jeq r0, 1, -2
