# mode: strict
# rule: pointer division is prohibited
div r1, 2
mov r0, 0
exit
