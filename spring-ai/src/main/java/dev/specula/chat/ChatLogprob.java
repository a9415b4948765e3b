package dev.specula.chat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import dev.specula.sampling.TokenLogprob;
import dev.specula.tokenizer.TokenDecoder;

/**
 * One output token's log-probability as OpenAI reports it ({@code logprobs.content[]}):
 * the token's text and bytes, its log-probability, and the most likely tokens at its
 * position. The figures are the target's, from its verification row at that position,
 * before penalties, bias, grammar and temperature.
 *
 * @param token the token's text (a token that ends inside a multi-byte character shows as
 * U+FFFD; {@code bytes} are exact)
 * @param id the token id
 * @param logprob its log-probability; -9999.0 for a token of probability 0 (as OpenAI)
 * @param bytes the UTF-8 bytes of {@code token}
 * @param topLogprobs the most likely tokens at the position, most likely first (their own
 * {@code topLogprobs} empty)
 */
public record ChatLogprob(String token, int id, double logprob, List<Integer> bytes, List<ChatLogprob> topLogprobs) {

    /** The generation metadata key under which a response carries its list. */
    public static final String METADATA_KEY = "logprobs";

    /**
     * The generation metadata key under which a response carries the prompt's list
     * ({@link SpeculaChatOptions#getPromptLogprobs()}): prompt tokens 2.. in order, each
     * from the target's row after the tokens before it (the first token has none). A
     * stream carries it in its first chunk.
     */
    public static final String PROMPT_METADATA_KEY = "prompt-logprobs";

    static List<ChatLogprob> of(List<TokenLogprob> logprobs, TokenDecoder decoder) {
        List<ChatLogprob> entries = new ArrayList<>(logprobs.size());
        for (TokenLogprob logprob : logprobs) {
            List<ChatLogprob> top = new ArrayList<>(logprob.topTokens().length);
            for (int i = 0; i < logprob.topTokens().length; i++) {
                top.add(entry(decoder, logprob.topTokens()[i], logprob.topLogprobs()[i], List.of()));
            }
            entries.add(entry(decoder, logprob.token(), logprob.logprob(), top));
        }
        return entries;
    }

    private static ChatLogprob entry(TokenDecoder decoder, int id, float logprob, List<ChatLogprob> top) {
        String text = decoder.decode(new int[] { id }, 0, 1, false);
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        List<Integer> bytes = new ArrayList<>(utf8.length);
        for (byte b : utf8) {
            bytes.add(b & 0xff);
        }
        // OpenAI's stand-in for a token the model gives no chance (JSON has no -Infinity)
        double finite = Float.isInfinite(logprob) ? -9999.0 : logprob;
        return new ChatLogprob(text, id, finite, bytes, top);
    }

}
