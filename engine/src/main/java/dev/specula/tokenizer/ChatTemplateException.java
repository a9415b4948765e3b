package dev.specula.tokenizer;

/**
 * A chat template failed to render, or raised an error itself ({@code raise_exception}).
 */
public final class ChatTemplateException extends RuntimeException {

    ChatTemplateException(String message) {
        super(message);
    }

    ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }

}
