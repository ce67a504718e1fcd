# rule: both signed bounds of an index prove a stack access through it
ldxdw r2, [r1+0]
jsgt r2, -8, +6
jslt r2, -64, +5
mov r3, r10
add r3, r2
stb [r3+0], 7
mov r0, 0
exit
mov r0, 1
exit
