package dev.specula.sample;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.springframework.ai.chat.model.ChatResponse;

import dev.specula.chat.ChatLogprob;

/**
 * The legacy completions API's {@code choices[].logprobs}, from the log-probabilities the
 * model reports for each token ({@link ChatLogprob}). Its fields:
 *
 * <pre>
 * tokens          each token's text
 * token_logprobs  each token's log-probability; null for an echoed prompt's first token (nothing precedes it)
 * top_logprobs    at each position, {token text: log-probability} of the most likely tokens (as many as the
 *                 request's logprobs) and of the token itself (so up to logprobs + 1 entries); null where
 *                 token_logprobs is
 * text_offset     where each token starts, in characters (code points): the sum of the lengths of the tokens
 *                 before it (vLLM's rule), the echoed prompt's included
 * </pre>
 *
 * With {@code echo}, the prompt's tokens come first, then the completion's. A stream's
 * chunks each carry their own tokens' ({@link TextCompletionStream}), their offsets going
 * on from the chunks before ({@link #CompletionLogprobs(int)}, {@link #end()}): together
 * they are the answer's.
 */
final class CompletionLogprobs {

    private final List<String> tokens = new ArrayList<>();

    private final List<Double> tokenLogprobs = new ArrayList<>();

    private final List<Map<String, Double>> topLogprobs = new ArrayList<>();

    private final List<Integer> textOffset = new ArrayList<>();

    /** Where the next token starts. */
    private int offset;

    /** An empty object whose first token starts at {@code offset}. */
    CompletionLogprobs(int offset) {
        this.offset = offset;
    }

    /**
     * The {@code logprobs} object of a whole answer that asked for logprobs: the echoed
     * prompt's tokens first when {@code firstPromptToken} (the text of its first token)
     * is not null, then the completion's.
     */
    static Map<String, Object> of(ChatResponse response, String firstPromptToken) {
        CompletionLogprobs all = new CompletionLogprobs(0);
        if (firstPromptToken != null) {
            all.first(firstPromptToken).add(list(response, ChatLogprob.PROMPT_METADATA_KEY));
        }
        return all.add(list(response, ChatLogprob.METADATA_KEY)).toMap();
    }

    /** The {@code logprobs} object of these tokens, from offset 0. */
    static Map<String, Object> of(List<ChatLogprob> logprobs) {
        return new CompletionLogprobs(0).add(logprobs).toMap();
    }

    /** The list {@code response} carries under {@code key}; empty when none. */
    static List<ChatLogprob> list(ChatResponse response, String key) {
        if (response == null || response.getResult() == null || response.getResult().getMetadata() == null) {
            return List.of();
        }
        List<ChatLogprob> logprobs = response.getResult().getMetadata().get(key);
        return logprobs == null ? List.of() : logprobs;
    }

    /** Adds a prompt's first token: no log-probability, no alternatives. */
    CompletionLogprobs first(String token) {
        append(token, null, null);
        return this;
    }

    /** Adds tokens with their log-probabilities and alternatives. */
    CompletionLogprobs add(List<ChatLogprob> logprobs) {
        for (ChatLogprob logprob : logprobs) {
            Map<String, Double> top = new LinkedHashMap<>();
            for (ChatLogprob alternative : logprob.topLogprobs()) {
                top.putIfAbsent(alternative.token(), alternative.logprob());
            }
            top.putIfAbsent(logprob.token(), logprob.logprob());
            append(logprob.token(), logprob.logprob(), top);
        }
        return this;
    }

    private void append(String token, Double logprob, Map<String, Double> top) {
        tokens.add(token);
        tokenLogprobs.add(logprob);
        topLogprobs.add(top);
        textOffset.add(offset);
        offset += token.codePointCount(0, token.length());
    }

    /** Where a token after these would start. */
    int end() {
        return offset;
    }

    Map<String, Object> toMap() {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("tokens", List.copyOf(tokens));
        // nulls (an echoed prompt's first token) are kept
        body.put("token_logprobs", new ArrayList<>(tokenLogprobs));
        body.put("top_logprobs", new ArrayList<>(topLogprobs));
        body.put("text_offset", List.copyOf(textOffset));
        return body;
    }

}
