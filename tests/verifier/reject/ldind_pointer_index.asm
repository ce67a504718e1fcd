# mode: strict
# rule: a legacy packet load's index must be a scalar
mov r3, r10
ldindw r3, 0
exit
