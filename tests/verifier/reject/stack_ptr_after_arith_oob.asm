# mode: strict
# rule: stack accesses stay inside the frame (offset built by pointer arithmetic)
mov r4, r10
add r4, -256
sub r4, 300
stb [r4+0], 1
mov r0, 0
exit
