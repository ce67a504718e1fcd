# rule: a counted loop terminates: Strict mode explores its ten iterations one by one
mov r0, 0
l:
add r0, 1
jlt r0, 10, l
exit
