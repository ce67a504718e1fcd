# mode: strict
# mem: 20
# rule: the unsafe twin of accept/pointer_compare_same_region.asm: the comparison proves one
# byte (r5 = r3 + 1 <= end), the load reads two (at r3 = input + 19, one past the end)
mov r0, 0
mov r3, r1
mov r4, r1
add r4, r2
loop:
mov r5, r3
add r5, 1
jgt r5, r4, done
ldxh r6, [r3+0]
add r0, r6
add r3, 1
ja loop
done:
exit
