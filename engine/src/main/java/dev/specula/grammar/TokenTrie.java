package dev.specula.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The tokens' byte strings as a trie laid out in preorder: node i's byte, depth and
 * subtree size (itself included), and the ids of the tokens whose bytes end there. A walk
 * visits nodes in index order; a refused node skips its subtree by jumping
 * {@code subtreeSize[i]} ahead. Node 0 is the root (the empty string). Immutable.
 */
final class TokenTrie {

    final byte[] nodeByte;

    final int[] depth;

    final int[] subtreeSize;

    /** Tokens ending at node i: tokenIds[tokenStart[i], tokenStart[i + 1]). */
    final int[] tokenStart;

    final int[] tokenIds;

    final int maxDepth;

    /**
     * The bytes on the paths of node i's subtree (its own byte included): bytes 0..63 as
     * bits of subtreeLow[i], 64..127 of subtreeHigh[i], any byte from 128 up as
     * subtreeNonAscii[i]. A subtree whose bytes all loop back to the parser state it
     * starts from is accepted whole without a walk (the inside of a JSON string).
     */
    final long[] subtreeLow;

    final long[] subtreeHigh;

    final boolean[] subtreeNonAscii;

    /** Node i's parent (the root's: 0). */
    final int[] parent;

    private TokenTrie(byte[] nodeByte, int[] depth, int[] subtreeSize, int[] tokenStart, int[] tokenIds, int maxDepth,
            int[] parent) {
        this.nodeByte = nodeByte;
        this.depth = depth;
        this.subtreeSize = subtreeSize;
        this.tokenStart = tokenStart;
        this.tokenIds = tokenIds;
        this.maxDepth = maxDepth;
        int count = nodeByte.length;
        this.parent = Arrays.copyOf(parent, count);
        this.subtreeLow = new long[count];
        this.subtreeHigh = new long[count];
        this.subtreeNonAscii = new boolean[count];
        // children come after their parent in preorder: fold them up from the last node
        for (int n = count - 1; n >= 1; n--) {
            int b = nodeByte[n] & 0xFF;
            if (b < 64) {
                subtreeLow[n] |= 1L << b;
            }
            else if (b < 128) {
                subtreeHigh[n] |= 1L << b;
            }
            else {
                subtreeNonAscii[n] = true;
            }
            int up = parent[n];
            subtreeLow[up] |= subtreeLow[n];
            subtreeHigh[up] |= subtreeHigh[n];
            subtreeNonAscii[up] |= subtreeNonAscii[n];
        }
    }

    int nodeCount() {
        return nodeByte.length;
    }

    /** The trie of the non-null, non-empty byte strings of {@code bytesById}. */
    static TokenTrie of(byte[][] bytesById, boolean[] excluded) {
        List<Integer> ids = new ArrayList<>();
        for (int id = 0; id < bytesById.length; id++) {
            if (bytesById[id] != null && bytesById[id].length > 0 && !excluded[id]) {
                ids.add(id);
            }
        }
        Comparator<Integer> byBytes = (a, b) -> Arrays.compareUnsigned(bytesById[a], bytesById[b]);
        ids.sort(byBytes.thenComparing(Comparator.naturalOrder()));
        // preorder: sorted strings add their new suffix nodes in order
        int capacity = 1;
        for (int id : ids) {
            capacity += bytesById[id].length;
        }
        byte[] nodeByte = new byte[capacity];
        int[] depth = new int[capacity];
        int[] size = new int[capacity];
        int[] endingCount = new int[capacity];
        int[] endingNode = new int[ids.size()];
        int[] parent = new int[capacity];
        int[] path = new int[64];
        int count = 1;
        int maxDepth = 0;
        byte[] previous = new byte[0];
        for (int t = 0; t < ids.size(); t++) {
            byte[] bytes = bytesById[ids.get(t)];
            int common = Arrays.mismatch(previous, bytes);
            if (common < 0) {
                common = bytes.length;
            }
            // close the nodes of previous below the common prefix
            for (int d = previous.length; d > common; d--) {
                size[path[d]] = count - path[d];
            }
            if (bytes.length + 1 > path.length) {
                path = Arrays.copyOf(path, bytes.length * 2 + 1);
            }
            for (int d = common + 1; d <= bytes.length; d++) {
                nodeByte[count] = bytes[d - 1];
                depth[count] = d;
                parent[count] = path[d - 1];
                path[d] = count++;
            }
            maxDepth = Math.max(maxDepth, bytes.length);
            endingNode[t] = path[bytes.length];
            endingCount[path[bytes.length]]++;
            previous = bytes;
        }
        for (int d = previous.length; d >= 1; d--) {
            size[path[d]] = count - path[d];
        }
        size[0] = count;
        int[] tokenStart = new int[count + 1];
        for (int n = 0; n < count; n++) {
            tokenStart[n + 1] = tokenStart[n] + endingCount[n];
        }
        int[] fill = Arrays.copyOf(tokenStart, count);
        int[] tokenIds = new int[ids.size()];
        for (int t = 0; t < ids.size(); t++) {
            tokenIds[fill[endingNode[t]]++] = ids.get(t);
        }
        return new TokenTrie(Arrays.copyOf(nodeByte, count), Arrays.copyOf(depth, count), Arrays.copyOf(size, count),
                tokenStart, tokenIds, maxDepth, parent);
    }

}
