package dev.specula.engine;

import dev.specula.grammar.GrammarMatcher;
import dev.specula.sampling.LogitsProcessor;

/**
 * A grammar as a logits processor: every row is masked with the grammar state reached by
 * the tokens before it (the committed output, then the round's drafts), so a token the
 * grammar forbids has probability 0 in the target, in the draft, and in the verdict. The
 * matcher only ever advances by tokens it allows: a drafted token it forbids is never
 * accepted, and the verifier stops before advancing by it. Counts the time spent in the
 * grammar, reported as {@link GenerationStats#grammarNanos()}.
 */
final class GrammarProcessor implements LogitsProcessor {

    private final GrammarMatcher matcher;

    /**
     * Tokens advanced by after an end token ended the grammar: the output ends there too,
     * so they are drafts the verifier reads past, never output.
     */
    private int pastEnd;

    private long nanos;

    GrammarProcessor(GrammarMatcher matcher) {
        this.matcher = matcher;
    }

    @Override
    public void process(float[] logits, int offset, int width) {
        if (isEnded()) {
            return; // a row after the end: never output, left as it is
        }
        long start = System.nanoTime();
        boolean anyAllowed = matcher.mask(logits, offset, width);
        nanos += System.nanoTime() - start;
        if (!anyAllowed) {
            throw nothingAllowed();
        }
    }

    @Override
    public int greedyChoice(float[] logits, int offset, int width) {
        if (isEnded()) {
            return dev.specula.sampling.Distributions.argmax(logits, offset, width);
        }
        long start = System.nanoTime();
        int choice = matcher.argmaxAllowed(logits, offset, width);
        nanos += System.nanoTime() - start;
        if (choice < 0) {
            throw nothingAllowed();
        }
        return choice;
    }

    /**
     * The grammar allows no token here: the vocabulary cannot write what it requires (a
     * tokenizer without byte fallback lacks the characters), or the row is narrower than
     * the tokens it allows.
     */
    private GenerationException nothingAllowed() {
        return new GenerationException("The grammar allows no token of the model's vocabulary after " + matcher.mark()
                + " output tokens: the vocabulary cannot write what the grammar requires next", null);
    }

    @Override
    public void advance(int token) {
        if (isEnded()) {
            pastEnd++;
            return;
        }
        long start = System.nanoTime();
        matcher.advance(token);
        nanos += System.nanoTime() - start;
    }

    @Override
    public int mark() {
        return matcher.mark() + pastEnd;
    }

    @Override
    public void resetTo(int mark) {
        int matched = matcher.mark();
        if (mark >= matched) {
            pastEnd = mark - matched;
        }
        else {
            pastEnd = 0;
            matcher.resetTo(mark);
        }
    }

    /** Whether an end token was advanced by: nothing follows it in the output. */
    private boolean isEnded() {
        return pastEnd > 0 || (matcher.isTerminated() && !matcher.isComplete());
    }

    /**
     * How many of {@code tokens[0, count)} the grammar allows in a row from the current
     * position; the position is unchanged.
     */
    int allowedPrefix(int[] tokens, int count) {
        long start = System.nanoTime();
        int mark = matcher.mark();
        int allowed = 0;
        while (allowed < count && matcher.isAllowed(tokens[allowed])) {
            matcher.advance(tokens[allowed]);
            allowed++;
        }
        matcher.resetTo(mark);
        nanos += System.nanoTime() - start;
        return allowed;
    }

    /** Time spent in the grammar since the last call, and restarts the count. */
    long takeNanos() {
        long taken = nanos;
        nanos = 0;
        return taken;
    }

}
