package dev.specula.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A set of Unicode scalar values (code points 0..0x10FFFF less the surrogates D800..DFFF)
 * as sorted, disjoint, non-adjacent inclusive ranges: {@code ranges} holds [lo0, hi0,
 * lo1, hi1, ...]. Immutable.
 */
final class CodePointSet {

    static final int MAX = 0x10FFFF;

    static final CodePointSet EMPTY = new CodePointSet(new int[0]);

    /** Every scalar value: what a negated class is taken from. */
    static final CodePointSet ALL = of(0, 0xD7FF, 0xE000, MAX);

    private final int[] ranges;

    private CodePointSet(int[] ranges) {
        this.ranges = ranges;
    }

    /** The set of [lo, hi] pairs given flat, in any order; surrogates are removed. */
    static CodePointSet of(int... pairs) {
        List<int[]> list = new ArrayList<>();
        for (int i = 0; i < pairs.length; i += 2) {
            list.add(new int[] { pairs[i], pairs[i + 1] });
        }
        return normalize(list);
    }

    static CodePointSet single(int codePoint) {
        return of(codePoint, codePoint);
    }

    private static CodePointSet normalize(List<int[]> list) {
        list.sort((a, b) -> Integer.compare(a[0], b[0]));
        int[] out = new int[list.size() * 2 + 2];
        int n = 0;
        for (int[] range : list) {
            int lo = Math.max(0, range[0]);
            int hi = Math.min(MAX, range[1]);
            if (lo > hi) {
                continue;
            }
            if (n > 0 && lo <= out[n - 1] + 1) {
                out[n - 1] = Math.max(out[n - 1], hi);
            }
            else {
                out[n++] = lo;
                out[n++] = hi;
            }
        }
        CodePointSet merged = new CodePointSet(Arrays.copyOf(out, n));
        return merged.cutSurrogates();
    }

    private CodePointSet cutSurrogates() {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < ranges.length; i += 2) {
            int lo = ranges[i];
            int hi = ranges[i + 1];
            if (hi < 0xD800 || lo > 0xDFFF) {
                out.add(lo);
                out.add(hi);
                continue;
            }
            if (lo < 0xD800) {
                out.add(lo);
                out.add(0xD7FF);
            }
            if (hi > 0xDFFF) {
                out.add(0xE000);
                out.add(hi);
            }
        }
        return new CodePointSet(out.stream().mapToInt(Integer::intValue).toArray());
    }

    CodePointSet union(CodePointSet other) {
        List<int[]> list = new ArrayList<>();
        for (int i = 0; i < ranges.length; i += 2) {
            list.add(new int[] { ranges[i], ranges[i + 1] });
        }
        for (int i = 0; i < other.ranges.length; i += 2) {
            list.add(new int[] { other.ranges[i], other.ranges[i + 1] });
        }
        return normalize(list);
    }

    /** The scalar values not in this set. */
    CodePointSet complement() {
        List<int[]> list = new ArrayList<>();
        int next = 0;
        for (int i = 0; i < ranges.length; i += 2) {
            list.add(new int[] { next, ranges[i] - 1 });
            next = ranges[i + 1] + 1;
        }
        list.add(new int[] { next, MAX });
        return normalize(list);
    }

    CodePointSet minus(CodePointSet other) {
        return complement().union(other).complement();
    }

    CodePointSet intersect(CodePointSet other) {
        return complement().union(other.complement()).complement();
    }

    boolean contains(int codePoint) {
        for (int i = 0; i < ranges.length; i += 2) {
            if (codePoint >= ranges[i] && codePoint <= ranges[i + 1]) {
                return true;
            }
        }
        return false;
    }

    boolean isEmpty() {
        return ranges.length == 0;
    }

    int rangeCount() {
        return ranges.length / 2;
    }

    int lo(int range) {
        return ranges[2 * range];
    }

    int hi(int range) {
        return ranges[2 * range + 1];
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof CodePointSet set && Arrays.equals(ranges, set.ranges);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(ranges);
    }

    @Override
    public String toString() {
        StringBuilder text = new StringBuilder("[");
        for (int i = 0; i < ranges.length; i += 2) {
            text.append(Integer.toHexString(ranges[i]));
            if (ranges[i + 1] != ranges[i]) {
                text.append('-').append(Integer.toHexString(ranges[i + 1]));
            }
            text.append(i + 2 < ranges.length ? " " : "");
        }
        return text.append(']').toString();
    }

}
