package dev.specula.grammar;

import org.jspecify.annotations.Nullable;

/**
 * One entry of a parser stack: the node to return to and the frame below. Frames are
 * interned by {@link StateSpace} (one object per distinct stack), so a stack is
 * identified by its top frame's {@link #id}, and stacks share their bottoms.
 */
final class Frame {

    /** The empty stack. */
    static final Frame ROOT = new Frame(-1, null, 0);

    final int returnNode;

    final @Nullable Frame parent;

    /** How many frames are on the stack with this one on top. */
    final int depth;

    final int id;

    /** The return node of a hole. */
    private static final int HOLE = -2;

    Frame(int returnNode, @Nullable Frame parent, int id) {
        this.returnNode = returnNode;
        this.parent = parent;
        this.depth = (parent == null) ? 0 : parent.depth + 1;
        this.id = id;
    }

    private Frame(int id, int depth) {
        this.returnNode = HOLE;
        this.parent = null;
        this.depth = depth;
        this.id = id;
    }

    /**
     * A stand-in for any stack {@code depth} frames deep: what a local state (see
     * {@link StateSpace#local}) has under its threads. Returning into it is not followed:
     * the state is marked exited.
     */
    static Frame hole(int id, int depth) {
        return new Frame(id, depth);
    }

    boolean isHole() {
        return returnNode == HOLE;
    }

}
