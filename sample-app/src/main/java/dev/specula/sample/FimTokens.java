package dev.specula.sample;

import java.util.List;
import java.util.Optional;

import dev.specula.tokenizer.TextTokenizer;

/**
 * The fill-in-the-middle tokens of a code model's tokenizer, in the prefix-suffix-middle
 * order those models are trained on: {@code <prefix> code before <suffix> code after
 * <middle>}, after which the model writes the middle.
 *
 * @param prefix the id of the token that opens the code before the gap
 * @param suffix the id of the token that opens the code after it
 * @param middle the id of the token after which the model writes the gap
 */
record FimTokens(int prefix, int suffix, int middle) {

    /**
     * The spellings known, each prefix, suffix, middle: Qwen2.5-Coder and CodeGemma,
     * StarCoder (and SantaCoder, Granite Code), DeepSeek-Coder.
     */
    static final List<List<String>> KNOWN = List.of(List.of("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
            List.of("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
            List.of("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"));

    /**
     * The tokens of {@code tokenizer}: the first known spelling whose three tokens it
     * has; empty when it has none.
     */
    static Optional<FimTokens> of(TextTokenizer tokenizer) {
        for (List<String> spelling : KNOWN) {
            int prefix = single(tokenizer, spelling.get(0));
            int suffix = single(tokenizer, spelling.get(1));
            int middle = single(tokenizer, spelling.get(2));
            if (prefix >= 0 && suffix >= 0 && middle >= 0) {
                return Optional.of(new FimTokens(prefix, suffix, middle));
            }
        }
        return Optional.empty();
    }

    /**
     * The id of the token spelt {@code text}, or -1 when the tokenizer has no such token
     * (it splits the text, or maps it to an unknown token that reads otherwise).
     */
    private static int single(TextTokenizer tokenizer, String text) {
        int[] ids = tokenizer.encode(text, false);
        return ids.length == 1 && text.equals(tokenizer.decode(ids, false)) ? ids[0] : -1;
    }

}
