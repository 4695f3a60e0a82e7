/*
 * The byte class table of chars.h. Written out in full (16 bytes a row) rather
 * than with GNU range designators, to stay plain C17.
 */
#include "http/chars.h"

#define T  WR_HC_TCHAR
#define S  WR_HC_SAFE
#define G  WR_HC_TARGET
#define V  WR_HC_VALUE
#define X  WR_HC_HEX
#define H  WR_HC_HOST

#define N  (T | S | G | V | H)   /* letter beyond F, '-' */
#define D  (N | X)               /* digit, A-F, a-f */
#define U  (T | G | V | H)       /* ! $ % & ' * + . _ ~ */
#define R  (G | V | H)           /* ( ) , ; = */
#define K  (T | G | V)           /* ^ ` | */
#define Q  (G | V)               /* " / : < > ? @ [ \ ] { } */
#define O  (T | V)               /* '#': a token char, not allowed in a target */

const unsigned char wr_http_chars[256] = {
/*         0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f */
/* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,
/* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
/* 0x20 */ V, U, Q, O, U, U, U, U, R, R, U, U, R, N, U, Q,   /*  !"#$%&'()*+,-./ */
/* 0x30 */ D, D, D, D, D, D, D, D, D, D, Q, R, Q, R, Q, Q,   /* 0123456789:;<=>? */
/* 0x40 */ Q, D, D, D, D, D, D, N, N, N, N, N, N, N, N, N,   /* @ABCDEFGHIJKLMNO */
/* 0x50 */ N, N, N, N, N, N, N, N, N, N, N, Q, Q, Q, K, U,   /* PQRSTUVWXYZ[\]^_ */
/* 0x60 */ K, D, D, D, D, D, D, N, N, N, N, N, N, N, N, N,   /* `abcdefghijklmno */
/* 0x70 */ N, N, N, N, N, N, N, N, N, N, N, Q, K, Q, U, 0,   /* pqrstuvwxyz{|}~  */
/* 0x80 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* obs-text */
/* 0x90 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
/* 0xa0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
/* 0xb0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
/* 0xc0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
/* 0xd0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
/* 0xe0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
/* 0xf0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
};
