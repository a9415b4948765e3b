package dev.specula.sample;

import java.util.Arrays;
import java.util.stream.IntStream;

import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.TextTokenizer;

/**
 * The token ids a completion request puts before the model, and the text it echoes.
 *
 * <ul>
 * <li>a text prompt is tokenized as {@code tokenizer(text)} does in transformers (the
 * tokenizer's own tokens, such as BOS, added);</li>
 * <li>token ids are taken as they are, each checked against the vocabulary;</li>
 * <li>with a non-empty {@code suffix}, the prompt and the suffix are wrapped in the
 * model's fill-in-the-middle tokens ({@link FimTokens}): {@code [BOS] <prefix> prompt
 * <suffix> suffix <middle>}, and the model writes what goes between them. A model without
 * such tokens refuses the suffix; an empty suffix is no suffix.</li>
 * </ul>
 *
 * @param ids the prompt the model reads
 * @param echo the prompt's text, put before the completion when the request asks for
 * {@code echo} (ids decoded, special tokens kept); null otherwise
 * @param firstToken the text of the prompt's first token (special tokens kept), which
 * leads the log-probabilities of an echo with {@code logprobs} (it has none of its own);
 * null unless the request asks for both
 */
record CompletionPrompt(int[] ids, String echo, String firstToken) {

    /**
     * The prompt of {@code request} for a model with {@code tokenizer}, named
     * {@code modelName} in errors.
     * @throws InvalidRequestException naming {@code prompt} or {@code prompt[i]} for an
     * empty prompt or an id outside the vocabulary, {@code suffix} when the model has no
     * fill-in-the-middle tokens
     */
    static CompletionPrompt of(CompletionRequest request, TextTokenizer tokenizer, String modelName) {
        boolean fill = request.suffix() != null && !request.suffix().isEmpty();
        FimTokens fim = fill ? FimTokens.of(tokenizer)
            .orElseThrow(() -> new InvalidRequestException("suffix", "unsupported_value",
                    "suffix asks for fill-in-the-middle, which needs a model whose tokenizer has its tokens "
                            + "(<|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>, or StarCoder's or DeepSeek-Coder's "
                            + "spelling), and '" + modelName + "' has none: leave suffix out, or serve a code model "
                            + "trained for fill-in-the-middle"))
                : null;
        int[] ids;
        String echo;
        if (request.promptIds() != null) {
            int[] given = request.promptIds();
            checkVocabulary(given, tokenizer.vocabularySize());
            echo = request.echo() ? tokenizer.decode(given, false) : null;
            ids = fill ? concat(new int[] { fim.prefix() }, given, new int[] { fim.suffix() },
                    tokenizer.encode(request.suffix(), false), new int[] { fim.middle() }) : given;
        }
        else {
            String text = request.promptText();
            echo = request.echo() ? text : null;
            // what the tokenizer adds to any text (BOS for Llama-style tokenizers) leads
            ids = fill ? concat(tokenizer.encode("", true), new int[] { fim.prefix() }, tokenizer.encode(text, false),
                    new int[] { fim.suffix() }, tokenizer.encode(request.suffix(), false), new int[] { fim.middle() })
                    : tokenizer.encode(text, true);
        }
        if (ids.length == 0) {
            throw new InvalidRequestException("prompt",
                    "prompt is empty and this model's tokenizer adds no token to it: send some text or token ids");
        }
        String firstToken = request.echo() && request.logprobs() != null ? tokenizer.decode(ids, 0, 1, false) : null;
        return new CompletionPrompt(ids, echo, firstToken);
    }

    private static void checkVocabulary(int[] ids, int vocabularySize) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] >= vocabularySize) {
                throw new InvalidRequestException("prompt[" + i + "]", "prompt[" + i + "] is token id " + ids[i]
                        + ", outside this model's vocabulary: ids go from 0 to " + (vocabularySize - 1));
            }
        }
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
    }

}
