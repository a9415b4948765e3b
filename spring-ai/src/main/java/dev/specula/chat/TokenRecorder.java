package dev.specula.chat;

import java.util.ArrayList;
import java.util.List;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.OutputToken;
import dev.specula.engine.TokenStreamListener;

/**
 * The tokens of a whole answer and how each was made, heard while it is generated (for a
 * call that asks for provenance): one entry per token, the pieces of a token joined.
 */
final class TokenRecorder implements TokenStreamListener {

    private final List<OutputToken> tokens = new ArrayList<>();

    private TokenRecorder() {
    }

    /** A recorder when {@code options} ask for provenance; else null (no listener). */
    static @Nullable TokenRecorder of(SpeculaChatOptions options) {
        return Boolean.TRUE.equals(options.getProvenance()) ? new TokenRecorder() : null;
    }

    /** What {@code recorder} heard; empty for none. */
    static List<OutputToken> tokensOf(@Nullable TokenRecorder recorder) {
        return recorder == null ? List.of() : recorder.tokens();
    }

    @Override
    public void onText(String text) {
        // the text is the answer's: only its tokens are kept here
    }

    @Override
    public boolean wantsTokens() {
        return true;
    }

    @Override
    public synchronized void onTokens(String text, List<OutputToken> pieces) {
        for (OutputToken piece : pieces) {
            int last = tokens.size() - 1;
            if (last >= 0 && tokens.get(last).index() == piece.index()) {
                tokens.set(last, tokens.get(last).extendedBy(piece.text()));
            }
            else {
                tokens.add(piece);
            }
        }
    }

    synchronized List<OutputToken> tokens() {
        return List.copyOf(tokens);
    }

}
