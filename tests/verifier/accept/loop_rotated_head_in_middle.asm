# mode: strict
# mem: 64
# rule: clang's rotated loop with its test at the bottom (pc 9, the head: every way into the
# loop passes it) and its body above, reached by backward jumps that are not back edges: a
# depth-first search finds the head, where each iteration starts, though its pc is not the
# lowest of the loop (these shapes were IrreducibleLoop before)
mov r3, r1
mov r4, 4
ldxb r0, [r3+0]
ja test
body:
jeq r0, 7, done
ldxb r0, [r3+1]
add r3, 1
add r4, -1
jeq r4, 0, done
test:
and r0, 255
jeq r0, 0, body
jsgt r0, 59, body
done:
exit
