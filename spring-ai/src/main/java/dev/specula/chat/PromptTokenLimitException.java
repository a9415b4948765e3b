package dev.specula.chat;

import dev.specula.engine.ContextLengthExceededException;
import dev.specula.request.InvalidRequestException;

/**
 * The messages are more tokens than a prompt may have ({@code messages},
 * {@value ContextLengthExceededException#CODE}): refused before any generation, and when
 * the characters alone prove it, before the tokenizer runs.
 */
public class PromptTokenLimitException extends InvalidRequestException {

    /** The prompt's tokens: counted, or a lower bound when not {@link #counted}. */
    private final int promptTokens;

    /** Whether {@link #promptTokens} were counted by the tokenizer. */
    private final boolean counted;

    /** The most tokens a prompt may have. */
    private final int limit;

    /** Whether the limit is the model's context length (no lower limit was set). */
    private final boolean contextLength;

    /**
     * A prompt over its limit.
     * @param promptTokens the prompt's tokens, or a lower bound of them
     * @param counted whether the tokenizer counted them
     * @param limit the most tokens a prompt may have
     * @param contextLength whether the limit is the model's context length
     */
    public PromptTokenLimitException(int promptTokens, boolean counted, int limit, boolean contextLength) {
        super("messages", ContextLengthExceededException.CODE,
                "The messages are " + (counted ? "" : "at least ") + promptTokens + " tokens, more than the " + limit
                        + " tokens a prompt may have ("
                        + (contextLength ? "the model's context length" : "the ChatModel's maxPromptTokens")
                        + "): shorten the messages");
        this.promptTokens = promptTokens;
        this.counted = counted;
        this.limit = limit;
        this.contextLength = contextLength;
    }

    public int getPromptTokens() {
        return promptTokens;
    }

    public boolean isCounted() {
        return counted;
    }

    public int getLimit() {
        return limit;
    }

    public boolean isContextLength() {
        return contextLength;
    }

}
