# mode: strict
# rule: bitwise operations on pointers are prohibited
and r1, -8
mov r0, 0
exit
