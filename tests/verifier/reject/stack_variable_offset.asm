# mode: strict
# rule: a stack access at offsets -64..=191 may leave the frame
ldxb r3, [r1+0]
mov r4, r10
add r4, -64
add r4, r3
stb [r4+0], 1
mov r0, 0
exit
