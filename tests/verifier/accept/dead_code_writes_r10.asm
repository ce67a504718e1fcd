# rule: a write to r10 in code no path reaches (the constant decides the branch) is
# accepted, as the kernel checks only the paths it explores
mov r3, 1
jeq r3, 1, +2
mov r10, 0
exit
mov r0, 2
exit
