package dev.specula.grammar;

import org.jspecify.annotations.Nullable;

/**
 * GPT-2's byte-to-unicode table, inverted: byte-level BPE writes each byte as a printable
 * character (printable Latin-1 bytes as themselves, the other 68 bytes as U+0100 and up,
 * in byte order).
 */
final class ByteLevelTable {

    /** By character (below 0x200): the byte it stands for, or -1. */
    private static final int[] BYTE_OF_CHAR = new int[0x200];

    static {
        java.util.Arrays.fill(BYTE_OF_CHAR, -1);
        int shifted = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            if (printable) {
                BYTE_OF_CHAR[b] = b;
            }
            else {
                BYTE_OF_CHAR[0x100 + shifted++] = b;
            }
        }
    }

    private ByteLevelTable() {
    }

    /** The bytes of a byte-level token, or null when a character is not in the table. */
    static byte @Nullable [] decode(String token) {
        byte[] out = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            int b = (c < BYTE_OF_CHAR.length) ? BYTE_OF_CHAR[c] : -1;
            if (b < 0) {
                return null;
            }
            out[i] = (byte) b;
        }
        return out;
    }

}
