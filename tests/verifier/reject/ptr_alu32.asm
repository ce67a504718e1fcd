# mode: strict
# rule: 32-bit arithmetic on a pointer is prohibited
add32 r1, 4
mov r0, 0
exit
