# mode: strict
# rule: r0 must be initialised at the outermost exit
exit
