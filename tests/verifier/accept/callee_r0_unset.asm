# rule: a callee may return with r0 unset when its caller never reads r0 (the kernel checks
# r0 at the main program's exit, and in a caller only where it reads it)
call local f
mov r0, 3
exit
f:
stdw [r10-8], 1
exit
