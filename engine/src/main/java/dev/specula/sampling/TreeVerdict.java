package dev.specula.sampling;

/**
 * What a draft tree's verification decided: the accepted path and the target's next token
 * after it.
 *
 * @param path the accepted nodes from the root down (tree indices); empty when the root's
 * every child was rejected
 * @param nextToken the token after the path: the recovered token at a rejection, or the
 * bonus token after a fully accepted path
 */
public record TreeVerdict(int[] path, int nextToken) {

    /** Accepted drafts: the path's length. */
    public int accepted() {
        return path.length;
    }

    /**
     * The target row that predicted {@link #nextToken}: 0 (the root's) when nothing was
     * accepted, else 1 + the last accepted node.
     */
    public int lastRow() {
        return path.length == 0 ? 0 : 1 + path[path.length - 1];
    }

}
