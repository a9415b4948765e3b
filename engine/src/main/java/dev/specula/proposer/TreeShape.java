package dev.specula.proposer;

import java.util.Locale;

import dev.specula.request.InvalidRequestException;

/**
 * How the draft model's proposals branch: a draft tree (EAGLE-2's dynamic tree) instead
 * of a chain. The policy's draft length is the tree's depth; each expanded node proposes
 * its {@code width} likeliest children; the {@code width} best nodes of a level (by path
 * log-probability) are expanded next, one draft call a level; of all nodes proposed, the
 * best {@code nodes} are verified in one target call.
 *
 * @param width children proposed per expanded node, and nodes expanded per level (top-k),
 * 1 to {@value #MAX_WIDTH}
 * @param nodes the most nodes one target call verifies, 1 to {@value #MAX_NODES}; 0 =
 * auto: chosen every round from the target's measured cost of verifying n tokens, t(n),
 * and the nodes' expected acceptance
 */
public record TreeShape(int width, int nodes) {

    /** The widest top-k. */
    public static final int MAX_WIDTH = 8;

    /** The largest tree one call verifies. */
    public static final int MAX_NODES = 64;

    /** Width 3, nodes chosen by measured cost. */
    public static final TreeShape DEFAULT = new TreeShape(3, 0);

    public TreeShape {
        if (width < 1 || width > MAX_WIDTH) {
            throw new InvalidRequestException("treeWidth",
                    "The tree width must be in [1, " + MAX_WIDTH + "] but was " + width);
        }
        if (nodes < 0 || nodes > MAX_NODES) {
            throw new InvalidRequestException("treeNodes",
                    "The tree's nodes must be in [1, " + MAX_NODES + "], or auto, but were " + nodes);
        }
    }

    /** Whether the number of nodes is chosen from measured costs each round. */
    public boolean autoNodes() {
        return nodes == 0;
    }

    /**
     * Parses {@code auto} or a count.
     * @param field the property or option that named it, for the error
     */
    public static int parseNodes(String value, String field) {
        String text = value == null ? "" : value.trim().toLowerCase(Locale.ROOT);
        if (text.equals("auto")) {
            return 0;
        }
        try {
            int nodes = Integer.parseInt(text);
            if (nodes >= 1 && nodes <= MAX_NODES) {
                return nodes;
            }
        }
        catch (NumberFormatException ex) {
            // reported below
        }
        throw new InvalidRequestException(field,
                "The tree's nodes must be 'auto' or a count in [1, " + MAX_NODES + "] but were '" + value + "'");
    }

    @Override
    public String toString() {
        return "tree(width " + width + ", nodes " + (autoNodes() ? "auto" : Integer.toString(nodes)) + ")";
    }

}
