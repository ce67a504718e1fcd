# context: packet
# rule: a context access needs a constant pointer offset, in both modes: which field it reads
# must be one for every run
ldxdw r2, [r1+16]
and r2, 8
add r1, r2
ldxdw r0, [r1+0]
exit
