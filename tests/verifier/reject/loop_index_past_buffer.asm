# mode: strict
# rule: the last iteration of this loop writes one byte past the 64-byte stack array's top
mov r2, 0
fill:
mov r3, r10
add r3, -64
add r3, r2
stb [r3+0], 1
add r2, 1
jle r2, 64, fill
mov r0, 0
exit
