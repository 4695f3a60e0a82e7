/*
 * warren-java carries its servlet container: build/java/warren.jar, as
 * bytes between wjv_jar_start and wjv_jar_end (jvm.c writes them out for
 * the JVM). WJV_JAR is the jar's path, given by the Makefile.
 */
    .section .rodata
    .global wjv_jar_start
    .global wjv_jar_end
    .balign 16
wjv_jar_start:
    .incbin WJV_JAR
wjv_jar_end:
    .byte 0

    .section .note.GNU-stack, "", @progbits
