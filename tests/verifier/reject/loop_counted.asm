# mode: strict
# rule: Strict mode cannot yet prove loop termination, so every loop is rejected
mov r0, 0
l:
add r0, 1
jlt r0, 10, l
exit
