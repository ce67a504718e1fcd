# rule: a bounded loop fills a stack array through a variable index, then sums it
mov r2, 0
fill:
mov r3, r10
add r3, -64
add r3, r2
stb [r3+0], 1
add r2, 1
jlt r2, 64, fill
mov r0, 0
mov r2, 0
sum:
mov r3, r10
add r3, -64
add r3, r2
ldxb r4, [r3+0]
add r0, r4
add r2, 8
jlt r2, 64, sum
exit
