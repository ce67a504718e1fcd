# mode: strict
# rule: a 32-bit move truncates a pointer, prohibited
mov32 r3, r10
mov r0, 0
exit
