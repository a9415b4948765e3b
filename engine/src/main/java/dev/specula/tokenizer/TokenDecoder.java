package dev.specula.tokenizer;

/** Turns token ids into text. */
@FunctionalInterface
public interface TokenDecoder {

    /**
     * Text of {@code ids[from, to)}; special tokens dropped when
     * {@code skipSpecialTokens}.
     */
    String decode(int[] ids, int from, int to, boolean skipSpecialTokens);

}
