# mode: strict
# rule: r0 must be a scalar at the outermost exit
lddw r0, map_fd(1)
exit
