# mode: strict
# rule: pointer multiplication is prohibited
mov r3, r10
mul r3, 2
mov r0, 0
exit
