# mode: strict
# rule: stack accesses stay inside the frame (at or above r10)
stb [r10+0], 1
mov r0, 0
exit
