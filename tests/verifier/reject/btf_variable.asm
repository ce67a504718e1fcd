# mode: strict
# rule: lddw of a BTF variable is not supported
lddw r1, btf_id(7)
mov r0, 0
exit
