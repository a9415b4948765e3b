package dev.specula.grammar;

import java.util.Arrays;

import org.jspecify.annotations.Nullable;

/**
 * The allowed token ids of one parser state, over a vocabulary of {@code size} ids, in
 * the smallest of three forms: a bitset, the sorted allowed ids (a few allowed: after
 * <code>{</code>), or the sorted refused ids (a few refused: inside a string). Immutable.
 */
final class TokenMask {

    private final int size;

    /** One bit an id, or null when a list is held. */
    private final long @Nullable [] bits;

    /** The allowed ids (when {@link #listsAllowed}) or the refused ids, sorted. */
    private final int[] list;

    private final boolean listsAllowed;

    private TokenMask(int size, long @Nullable [] bits, int[] list, boolean listsAllowed) {
        this.size = size;
        this.bits = bits;
        this.list = list;
        this.listsAllowed = listsAllowed;
    }

    /** The mask of the set bits, in its smallest form. */
    static TokenMask of(long[] bits, int size) {
        int allowed = 0;
        for (long word : bits) {
            allowed += Long.bitCount(word);
        }
        int refused = size - allowed;
        int bitsInts = bits.length * 2;
        if (allowed <= refused && allowed < bitsInts) {
            return new TokenMask(size, null, ids(bits, size, true, allowed), true);
        }
        if (refused < allowed && refused < bitsInts) {
            return new TokenMask(size, null, ids(bits, size, false, refused), false);
        }
        return new TokenMask(size, bits, new int[0], false);
    }

    private static int[] ids(long[] bits, int size, boolean set, int count) {
        int[] ids = new int[count];
        int n = 0;
        for (int id = 0; id < size; id++) {
            boolean bit = (bits[id >>> 6] & (1L << id)) != 0;
            if (bit == set) {
                ids[n++] = id;
            }
        }
        return ids;
    }

    boolean isAllowed(int id) {
        if (id < 0 || id >= size) {
            return false;
        }
        long[] words = bits;
        if (words != null) {
            return (words[id >>> 6] & (1L << id)) != 0;
        }
        return (Arrays.binarySearch(list, id) >= 0) == listsAllowed;
    }

    /** Whether the allowed ids are held as a list: few of them. */
    boolean isSparse() {
        return bits == null && listsAllowed;
    }

    /** Bytes held: what the mask cache counts against its budget. */
    long footprint() {
        long[] words = bits;
        return 32 + ((words != null) ? 8L * words.length : 4L * list.length);
    }

    /**
     * Sets logits[offset + id] to -Infinity for every refused id in [0, width).
     * @return whether any id in [0, width) is allowed
     */
    boolean apply(float[] logits, int offset, int width) {
        int known = Math.min(width, size);
        if (width > known) {
            Arrays.fill(logits, offset + known, offset + width, Float.NEGATIVE_INFINITY);
        }
        long[] words = bits;
        if (words != null) {
            boolean anyAllowed = false;
            for (int w = 0; w * 64 < known; w++) {
                long word = words[w];
                int base = w * 64;
                int end = Math.min(known, base + 64);
                // bits past the vocabulary are 0: the word's allowed ids below end
                anyAllowed |= (end - base == 64 ? word : word & ((1L << (end - base)) - 1)) != 0;
                if (word == 0) {
                    Arrays.fill(logits, offset + base, offset + end, Float.NEGATIVE_INFINITY);
                }
                else if (word != -1L) {
                    // the refused ids of this word, lowest first (bits past the
                    // vocabulary are 0)
                    long refused = ~word;
                    while (refused != 0) {
                        int id = base + Long.numberOfTrailingZeros(refused);
                        if (id >= end) {
                            break;
                        }
                        logits[offset + id] = Float.NEGATIVE_INFINITY;
                        refused &= refused - 1;
                    }
                }
            }
            return anyAllowed;
        }
        if (listsAllowed) {
            int count = 0;
            while (count < list.length && list[count] < known) {
                count++;
            }
            float[] kept = new float[count];
            for (int i = 0; i < count; i++) {
                kept[i] = logits[offset + list[i]];
            }
            Arrays.fill(logits, offset, offset + known, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < count; i++) {
                logits[offset + list[i]] = kept[i];
            }
            return count > 0;
        }
        int refusedKnown = 0;
        for (int id : list) {
            if (id >= known) {
                break;
            }
            logits[offset + id] = Float.NEGATIVE_INFINITY;
            refusedKnown++;
        }
        return refusedKnown < known;
    }

    /**
     * The allowed id in [0, width) with the largest logit, the lowest on ties; -1 when
     * none is allowed.
     */
    int argmax(float[] logits, int offset, int width) {
        int known = Math.min(width, size);
        int best = -1;
        float bestValue = Float.NEGATIVE_INFINITY;
        if (bits == null && listsAllowed) {
            for (int id : list) {
                if (id >= known) {
                    break;
                }
                float value = logits[offset + id];
                if (best < 0 || value > bestValue) {
                    best = id;
                    bestValue = value;
                }
            }
            return best;
        }
        long[] words = bits;
        if (words != null) {
            for (int w = 0; w * 64 < known; w++) {
                // the allowed ids of this word, lowest first
                long allowed = words[w];
                while (allowed != 0) {
                    int id = w * 64 + Long.numberOfTrailingZeros(allowed);
                    if (id >= known) {
                        break;
                    }
                    float value = logits[offset + id];
                    if (best < 0 || value > bestValue) {
                        best = id;
                        bestValue = value;
                    }
                    allowed &= allowed - 1;
                }
            }
            return best;
        }
        // the refused ids listed: a scan that skips them in step
        int next = 0;
        for (int id = 0; id < known; id++) {
            if (next < list.length && list[next] == id) {
                next++;
                continue;
            }
            float value = logits[offset + id];
            if (best < 0 || value > bestValue) {
                best = id;
                bestValue = value;
            }
        }
        return best;
    }

}
