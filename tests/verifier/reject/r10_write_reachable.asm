# rule: a write to r10 on a path the analysis explores is rejected in both modes
mov r0, 0
jeq r1, 0, +1
mov r10, r1
exit
