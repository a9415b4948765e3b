package dev.specula.toolcall;

import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.jspecify.annotations.Nullable;

import dev.specula.tokenizer.ToolCall;

/**
 * The JSON inside call markup: one value's extent in a text, and call objects read
 * leniently (a model's output is never an error: what does not read as a call is left as
 * text by the caller).
 */
final class JsonCalls {

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private static final String ID_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private static final SecureRandom RANDOM = new SecureRandom();

    private JsonCalls() {
    }

    /**
     * Where the JSON object or array starting at {@code start} ends (the index after its
     * closing bracket), or -1 when it does not close in {@code text}.
     */
    static int valueEnd(CharSequence text, int start) {
        int depth = 0;
        boolean inString = false;
        for (int i = start; i < text.length(); i++) {
            char c = text.charAt(i);
            if (inString) {
                if (c == '\\') {
                    i++;
                }
                else if (c == '"') {
                    inString = false;
                }
            }
            else if (c == '"') {
                inString = true;
            }
            else if (c == '{' || c == '[') {
                depth++;
            }
            else if (c == '}' || c == ']') {
                depth--;
                if (depth == 0) {
                    return i + 1;
                }
                if (depth < 0) {
                    return -1;
                }
            }
        }
        return -1;
    }

    /** {@code json} read as one JSON value, or empty when it is not exactly one. */
    static Optional<JsonNode> read(String json) {
        try {
            return Optional.ofNullable(JSON.readTree(json));
        }
        catch (IOException ex) {
            return Optional.empty();
        }
    }

    /**
     * A call object {@code {"name": "...", <argumentsKey>: {...}}}: the arguments may
     * also come as a string holding a JSON object, and be missing when
     * {@code argumentsRequired} is false ({@code {}}). {@code id}: the object's own
     * {@code id} when {@code keepId} and it has one, else a new one from {@code idStyle}.
     */
    static Optional<ToolCall> call(JsonNode object, List<String> argumentsKeys, boolean argumentsRequired,
            boolean keepId, IdStyle idStyle) {
        if (!object.isObject() || !object.path("name").isTextual() || object.path("name").asText().isBlank()) {
            return Optional.empty();
        }
        JsonNode arguments = null;
        for (String key : argumentsKeys) {
            if (object.has(key)) {
                arguments = object.get(key);
                break;
            }
        }
        if (arguments == null) {
            if (argumentsRequired) {
                return Optional.empty();
            }
            arguments = JSON.createObjectNode();
        }
        if (arguments.isTextual()) {
            arguments = read(arguments.asText()).orElse(null);
        }
        if (arguments == null || !arguments.isObject()) {
            return Optional.empty();
        }
        String id = keepId && object.path("id").isTextual() && !object.path("id").asText().isBlank()
                ? object.path("id").asText() : idStyle.newId();
        return Optional.of(new ToolCall(id, object.path("name").asText(), arguments.toString()));
    }

    /**
     * Call objects one after another from {@code start}, separated by whitespace or
     * {@code ;}, up to the end of the text; null when anything else is there or none is.
     * A last object cut off at the end of the text (the token limit) is dropped when
     * complete calls precede it.
     */
    static @Nullable List<ToolCall> sequence(String text, int start, List<String> argumentsKeys, IdStyle idStyle) {
        List<ToolCall> calls = new ArrayList<>();
        int position = start;
        while (true) {
            while (position < text.length()
                    && (Character.isWhitespace(text.charAt(position)) || text.charAt(position) == ';')) {
                position++;
            }
            if (position == text.length()) {
                return calls.isEmpty() ? null : calls;
            }
            if (text.charAt(position) != '{') {
                return null;
            }
            int end = valueEnd(text, position);
            if (end < 0) {
                // cut off (the token limit) inside a call: the complete ones before it
                // are the calls; alone, it is text
                return calls.isEmpty() ? null : calls;
            }
            Optional<ToolCall> call = read(text.substring(position, end))
                .flatMap((object) -> call(object, argumentsKeys, true, false, idStyle));
            if (call.isEmpty()) {
                return null;
            }
            calls.add(call.get());
            position = end;
        }
    }

    /** How new call ids look. */
    enum IdStyle {

        /** OpenAI's: {@code call_} and 24 letters or digits. */
        OPENAI,

        /** Mistral's: 9 letters or digits (its templates refuse other ids). */
        MISTRAL;

        String newId() {
            return this == OPENAI ? "call_" + random(24) : random(9);
        }

        private static String random(int length) {
            StringBuilder id = new StringBuilder(length);
            for (int i = 0; i < length; i++) {
                id.append(ID_CHARACTERS.charAt(RANDOM.nextInt(ID_CHARACTERS.length())));
            }
            return id.toString();
        }

    }

}
