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

    Frame(int returnNode, @Nullable Frame parent, int id) {
        this.returnNode = returnNode;
        this.parent = parent;
        this.depth = (parent == null) ? 0 : parent.depth + 1;
        this.id = id;
    }

}
