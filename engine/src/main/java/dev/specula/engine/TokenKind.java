package dev.specula.engine;

import dev.specula.proposer.DraftTree;

/**
 * How a round made an output token (the vocabulary of Leviathan et al., "Fast Inference
 * from Transformers via Speculative Decoding", ICML 2023, and of vLLM's rejection
 * sampler, where a corrected token is "recovered"):
 *
 * <pre>
 * accepted    a draft token the target verified and kept
 * corrected   the target's own token where it rejected a draft: its argmax when greedy, a draw from the
 *             residual max(0, p - q) when sampling
 * bonus       the target's extra token after a round whose every draft was accepted (a tree's: whose
 *             accepted path ends at a leaf)
 * plain       the target's token in a round that drafted nothing
 * </pre>
 *
 * A round commits its accepted drafts, then one token of the target: corrected, bonus or
 * plain. The engine's filler drafts (a target that needs two tokens a call) count as
 * drafts, as they do in {@link GenerationStats}.
 */
public enum TokenKind {

    ACCEPTED("accepted"), CORRECTED("corrected"), BONUS("bonus"), PLAIN("plain");

    private final String tag;

    TokenKind(String tag) {
        this.tag = tag;
    }

    /** The lower-case name, as the gateway writes it. */
    public String tag() {
        return tag;
    }

    /** The kind of a chain round's target token: {@code accepted} of {@code drafted}. */
    static TokenKind ofTarget(int drafted, int accepted) {
        return drafted == 0 ? PLAIN : accepted == drafted ? BONUS : CORRECTED;
    }

    /**
     * The kind of a tree round's target token, after the accepted {@code path} of
     * {@code tree}: bonus when no draft follows the path's end.
     */
    static TokenKind ofTarget(DraftTree tree, int[] path) {
        if (tree.size() == 0) {
            return PLAIN;
        }
        int end = path.length == 0 ? DraftTree.ROOT : path[path.length - 1];
        return tree.children(end).length == 0 ? BONUS : CORRECTED;
    }

}
