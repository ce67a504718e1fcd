# rule: no path falls off the end of the program (last instruction is not exit or ja)
mov r0, 0
