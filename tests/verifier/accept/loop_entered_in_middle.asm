# rule: a loop entered in its middle as well as at its head is still explored to its end
# (every cycle passes its backward jump, where each iteration gets a new context)
ldxb r2, [r1+0]
mov r0, 0
jeq r2, 0, mid
head:
add r0, 1
mid:
add r0, 2
jlt r0, 10, head
exit
