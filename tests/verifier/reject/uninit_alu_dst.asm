# mode: strict
# rule: reading an uninitialised register (as the destination of an ALU operation)
add r5, 1
mov r0, 0
exit
