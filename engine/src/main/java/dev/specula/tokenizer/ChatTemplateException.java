package dev.specula.tokenizer;

/** A chat template failed to render, or raised an error itself ({@code raise_exception}). */
public class ChatTemplateException extends RuntimeException {

    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
