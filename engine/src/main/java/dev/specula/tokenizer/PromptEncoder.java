package dev.specula.tokenizer;

import java.util.List;
import java.util.Optional;

/** Turns a raw prompt or a conversation into the token ids a model is fed. */
public final class PromptEncoder {

    private final TextTokenizer tokenizer;

    private final Optional<ChatTemplate> chatTemplate;

    private final String modelName;

    public PromptEncoder(TextTokenizer tokenizer, Optional<ChatTemplate> chatTemplate, String modelName) {
        this.tokenizer = tokenizer;
        this.chatTemplate = chatTemplate;
        this.modelName = modelName;
    }

    /**
     * Raw text, tokenized as {@code tokenizer(text)} in transformers (special tokens such
     * as BOS added).
     */
    public int[] text(String prompt) {
        return tokenizer.encode(prompt, true);
    }

    /**
     * A conversation rendered with the model's chat template, generation prompt added,
     * then tokenized without adding special tokens (the template writes them), as
     * {@code apply_chat_template(tokenize=True)}.
     */
    public int[] chat(List<ChatMessage> messages) {
        return tokenizer.encode(render(messages), false);
    }

    /**
     * As {@link #chat(List)}, offering the model {@code tools} (the template's
     * {@code tools} variable; none when empty).
     */
    public int[] chat(List<ChatMessage> messages, List<ChatTool> tools) {
        return tokenizer.encode(render(messages, tools), false);
    }

    /** The rendered conversation, generation prompt added. */
    public String render(List<ChatMessage> messages) {
        return render(messages, List.of());
    }

    /** The rendered conversation offering {@code tools}, generation prompt added. */
    public String render(List<ChatMessage> messages, List<ChatTool> tools) {
        return template().render(messages, tools, true);
    }

    private ChatTemplate template() {
        return chatTemplate.orElseThrow(() -> new ChatTemplateException("Model " + modelName
                + " has no chat template (neither chat_template.jinja nor chat_template in tokenizer_config.json): "
                + "send a raw prompt instead, or add a template to the model directory"));
    }

}
