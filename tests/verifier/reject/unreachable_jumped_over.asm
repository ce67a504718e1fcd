# rule: unreachable instructions are rejected (skipped by an unconditional jump)
mov r0, 0
ja +1
mov r0, 1
exit
