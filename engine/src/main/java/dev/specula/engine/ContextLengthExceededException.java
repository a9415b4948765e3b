package dev.specula.engine;

import dev.specula.request.InvalidRequestException;

/**
 * The prompt plus the tokens to generate do not fit the model's context; raised before
 * any work. A caller's mistake on field {@code messages}, code
 * {@code context_length_exceeded} (OpenAI's).
 */
public class ContextLengthExceededException extends InvalidRequestException {

    public static final String CODE = "context_length_exceeded";

    private final int promptTokens;

    private final int maxNewTokens;

    private final int contextLength;

    public ContextLengthExceededException(int promptTokens, int maxNewTokens, int contextLength, String model) {
        super("messages", CODE,
                "Prompt of " + promptTokens + " tokens + max new tokens " + maxNewTokens + " = "
                        + (promptTokens + maxNewTokens) + " exceeds the context length " + contextLength + " of "
                        + model + ": shorten the prompt or lower max new tokens to at most "
                        + Math.max(0, contextLength - promptTokens));
        this.promptTokens = promptTokens;
        this.maxNewTokens = maxNewTokens;
        this.contextLength = contextLength;
    }

    public int getPromptTokens() {
        return promptTokens;
    }

    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    public int getContextLength() {
        return contextLength;
    }

}
