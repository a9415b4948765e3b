package dev.specula.sample;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.springframework.ai.chat.model.ChatResponse;

import dev.specula.chat.ChatLogprob;

/**
 * The legacy completions API's {@code choices[].logprobs}, from the log-probabilities the
 * model reports for each output token ({@link ChatLogprob}). Its fields:
 *
 * <pre>
 * tokens          each token's text
 * token_logprobs  each token's log-probability
 * top_logprobs    at each position, {token text: log-probability} of the most likely tokens (as many as the
 *                 request's logprobs) and of the sampled token (so up to logprobs + 1 entries)
 * text_offset     where each token starts in the choice's text, in characters (code points): the sum of the
 *                 lengths of the tokens before it
 * </pre>
 */
final class CompletionLogprobs {

    private CompletionLogprobs() {
    }

    /** The {@code logprobs} object of {@code response}, or null when it carries none. */
    static Map<String, Object> of(ChatResponse response) {
        if (response.getResult() == null || response.getResult().getMetadata() == null) {
            return null;
        }
        List<ChatLogprob> logprobs = response.getResult().getMetadata().get(ChatLogprob.METADATA_KEY);
        return logprobs == null ? null : of(logprobs);
    }

    static Map<String, Object> of(List<ChatLogprob> logprobs) {
        List<String> tokens = new ArrayList<>(logprobs.size());
        List<Double> tokenLogprobs = new ArrayList<>(logprobs.size());
        List<Map<String, Double>> topLogprobs = new ArrayList<>(logprobs.size());
        List<Integer> textOffset = new ArrayList<>(logprobs.size());
        int offset = 0;
        for (ChatLogprob logprob : logprobs) {
            tokens.add(logprob.token());
            tokenLogprobs.add(logprob.logprob());
            Map<String, Double> top = new LinkedHashMap<>();
            for (ChatLogprob alternative : logprob.topLogprobs()) {
                top.putIfAbsent(alternative.token(), alternative.logprob());
            }
            top.putIfAbsent(logprob.token(), logprob.logprob());
            topLogprobs.add(top);
            textOffset.add(offset);
            offset += logprob.token().codePointCount(0, logprob.token().length());
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("tokens", tokens);
        body.put("token_logprobs", tokenLogprobs);
        body.put("top_logprobs", topLogprobs);
        body.put("text_offset", textOffset);
        return body;
    }

}
