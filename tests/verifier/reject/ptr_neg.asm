# mode: strict
# rule: negating a pointer is prohibited
mov r3, r10
neg r3
mov r0, 0
exit
