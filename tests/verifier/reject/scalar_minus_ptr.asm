# mode: strict
# rule: scalar - pointer is prohibited
mov r3, 100
sub r3, r10
mov r0, 0
exit
