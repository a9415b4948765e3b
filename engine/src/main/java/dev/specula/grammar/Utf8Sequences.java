package dev.specula.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * The UTF-8 encodings of a {@link CodePointSet} as byte-range sequences: each sequence is
 * 1 to 4 ranges [lo, hi] of bytes, and a byte string is the encoding of a member exactly
 * when it matches one sequence byte for byte. (The classic split of a code point range at
 * the encoded-length boundaries, then wherever lo and hi differ in a prefix while their
 * continuation bytes do not span 80..BF.)
 */
final class Utf8Sequences {

    private static final int[] LENGTH_ENDS = { 0x7F, 0x7FF, 0xFFFF, 0x10FFFF };

    private Utf8Sequences() {
    }

    /** Each element: [lo0, hi0, lo1, hi1, ...], one pair a byte. */
    static List<int[]> of(CodePointSet set) {
        List<int[]> out = new ArrayList<>();
        for (int r = 0; r < set.rangeCount(); r++) {
            split(set.lo(r), set.hi(r), out);
        }
        return out;
    }

    private static void split(int lo, int hi, List<int[]> out) {
        for (int end : LENGTH_ENDS) {
            if (lo <= end && hi > end) {
                split(lo, end, out);
                split(end + 1, hi, out);
                return;
            }
        }
        int length = encodedLength(lo);
        for (int i = 1; i < length; i++) {
            int mask = (1 << (6 * i)) - 1;
            if ((lo & ~mask) != (hi & ~mask)) {
                if ((lo & mask) != 0) {
                    split(lo, lo | mask, out);
                    split((lo | mask) + 1, hi, out);
                    return;
                }
                if ((hi & mask) != mask) {
                    split(lo, (hi & ~mask) - 1, out);
                    split(hi & ~mask, hi, out);
                    return;
                }
            }
        }
        byte[] a = encode(lo);
        byte[] b = encode(hi);
        int[] sequence = new int[2 * length];
        for (int i = 0; i < length; i++) {
            sequence[2 * i] = a[i] & 0xFF;
            sequence[2 * i + 1] = b[i] & 0xFF;
        }
        out.add(sequence);
    }

    private static int encodedLength(int codePoint) {
        return (codePoint <= 0x7F) ? 1 : (codePoint <= 0x7FF) ? 2 : (codePoint <= 0xFFFF) ? 3 : 4;
    }

    private static byte[] encode(int codePoint) {
        return new String(Character.toChars(codePoint)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

}
