package dev.specula.cli;

import java.util.List;

import org.jspecify.annotations.Nullable;

import dev.specula.model.DecoderModel;
import dev.specula.tokenizer.ChatMessage;
import dev.specula.tokenizer.PromptEncoder;

/**
 * A prompt as given: raw text ({@code --prompt}, tokenized as is), one user message
 * rendered with the chat template ({@code --chat}), or token ids ({@code --prompt-ids}).
 */
record PromptInput(Kind kind, @Nullable String text, int @Nullable [] ids) {

    enum Kind {

        PROMPT, CHAT, IDS

    }

    static PromptInput ofText(String text) {
        return new PromptInput(Kind.PROMPT, text, null);
    }

    static PromptInput ofChat(String text) {
        return new PromptInput(Kind.CHAT, text, null);
    }

    static PromptInput ofIds(int[] ids) {
        return new PromptInput(Kind.IDS, null, ids);
    }

    /** Parses {@code 12,5,99}. */
    static int[] parseIds(String raw, String where) {
        String[] parts = raw.split(",");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i].trim());
            }
            catch (NumberFormatException ex) {
                throw new CliException(
                        where + ": token ids must be comma-separated integers, e.g. 12,5,99, but got '" + raw + "'");
            }
        }
        return ids;
    }

    int[] encode(DecoderModel target) {
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), target.name());
        int[] encoded = switch (kind) {
            case PROMPT -> encoder.text(text);
            case CHAT -> encoder.chat(List.of(ChatMessage.user(text)));
            case IDS -> ids;
        };
        if (encoded.length == 0) {
            throw new CliException("The prompt is empty after tokenization: give some text or ids");
        }
        int vocabulary = target.logitsWidth();
        for (int id : encoded) {
            if (id < 0 || id >= vocabulary) {
                throw new CliException(
                        "Prompt token id " + id + " is outside the target's vocabulary [0, " + vocabulary + ")");
            }
        }
        return encoded;
    }
}
