package dev.specula.toolcall;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import com.fasterxml.jackson.databind.JsonNode;

import dev.specula.tokenizer.ChatTemplate;
import dev.specula.tokenizer.ToolCall;

/**
 * How a model family writes tool calls in its output, as its chat template teaches it
 * ({@link #detect}); reads a finished output ({@link #parse}), filters a stream
 * ({@link #streamFilter}) and describes the syntax for a grammar ({@link #syntax}). Model
 * output is never an error: markup that does not read as a call stays text.
 */
public enum ToolCallFormat {

    /**
     * Hermes, Qwen2.5, Qwen3: the opening tag {@code <tool_call>}, a newline,
     * {@code {"name": ..., "arguments": {...}}}, a newline and the closing tag, once per
     * call, with text before, between or after. A last call may lack its closing tag.
     */
    HERMES(new ToolCallSyntax("<tool_call>\n", "\n</tool_call>", "\n", "arguments", false)) {
        @Override
        ParsedOutput parseText(String text) {
            List<ToolCall> calls = new ArrayList<>();
            ContentParts content = new ContentParts();
            int position = 0;
            while (true) {
                int open = text.indexOf(HERMES_OPEN, position);
                if (open < 0) {
                    content.append(text, position, text.length());
                    break;
                }
                int bodyStart = open + HERMES_OPEN.length();
                int close = text.indexOf(HERMES_CLOSE, bodyStart);
                String body = close < 0 ? text.substring(bodyStart) : text.substring(bodyStart, close);
                Optional<ToolCall> call = JsonCalls.read(body.strip())
                    .flatMap((object) -> JsonCalls.call(object, List.of("arguments", "parameters"), false, false,
                            JsonCalls.IdStyle.OPENAI));
                if (call.isEmpty()) { // not a call: the tag stays text, look further
                    content.append(text, position, bodyStart);
                    position = bodyStart;
                    continue;
                }
                content.append(text, position, open);
                content.endPart();
                calls.add(call.get());
                position = close < 0 ? text.length() : close + HERMES_CLOSE.length();
            }
            return new ParsedOutput(content.joined(), calls);
        }

        @Override
        int safeLength(CharSequence text, int from) {
            return beforeOpening(text, from, HERMES_OPEN);
        }
    },

    /**
     * Llama 3.1, 3.2, 3.3 with custom tools: the reply is a JSON object {@code {"name":
     * ..., "parameters": {...}}} (or several separated by {@code ;} or newlines, as
     * llama.cpp accepts), optionally after {@code <|python_tag|>} (text before the tag is
     * content). A reply that starts with anything else is text.
     */
    LLAMA3_JSON(new ToolCallSyntax("", "", ";", "parameters", false)) {
        @Override
        ParsedOutput parseText(String text) {
            int tag = text.indexOf(PYTHON_TAG);
            int callsStart;
            String before;
            if (tag >= 0) {
                callsStart = tag + PYTHON_TAG.length();
                before = text.substring(0, tag);
            }
            else if (text.strip().startsWith("{")) {
                callsStart = 0;
                before = "";
            }
            else {
                return ParsedOutput.text(text);
            }
            List<ToolCall> calls = JsonCalls.sequence(text, callsStart, List.of("parameters", "arguments"),
                    JsonCalls.IdStyle.OPENAI);
            return calls == null ? ParsedOutput.text(text) : new ParsedOutput(before.strip(), calls);
        }

        @Override
        int safeLength(CharSequence text, int from) {
            int first = 0;
            while (first < text.length() && Character.isWhitespace(text.charAt(first))) {
                first++;
            }
            if (first == text.length() || text.charAt(first) == '{') {
                return 0; // a reply that opens with a brace may be a call: all of it
                          // waits
            }
            return beforeOpening(text, from, PYTHON_TAG);
        }
    },

    /**
     * Mistral (7B v0.3, Nemo, Small): {@code [TOOL_CALLS]} then a JSON array
     * {@code [{"name": ..., "arguments": {...}, "id": ...}]}; the ids the model writes
     * are kept, missing ones made of 9 letters and digits (Mistral's templates refuse
     * others).
     */
    MISTRAL(new ToolCallSyntax("[TOOL_CALLS]", "", ", ", "arguments", true)) {
        @Override
        ParsedOutput parseText(String text) {
            int open = text.indexOf(MISTRAL_OPEN);
            if (open < 0) {
                return ParsedOutput.text(text);
            }
            int start = open + MISTRAL_OPEN.length();
            while (start < text.length() && Character.isWhitespace(text.charAt(start))) {
                start++;
            }
            int end = start < text.length() && text.charAt(start) == '[' ? JsonCalls.valueEnd(text, start) : -1;
            if (end < 0) {
                return ParsedOutput.text(text);
            }
            Optional<JsonNode> array = JsonCalls.read(text.substring(start, end));
            if (array.isEmpty() || !array.get().isArray() || array.get().isEmpty()) {
                return ParsedOutput.text(text);
            }
            List<ToolCall> calls = new ArrayList<>();
            for (JsonNode object : array.get()) {
                Optional<ToolCall> call = JsonCalls.call(object, List.of("arguments", "parameters"), false, true,
                        JsonCalls.IdStyle.MISTRAL);
                if (call.isEmpty()) {
                    return ParsedOutput.text(text);
                }
                calls.add(call.get());
            }
            ContentParts content = new ContentParts();
            content.append(text, 0, open);
            content.endPart();
            content.append(text, end, text.length());
            return new ParsedOutput(content.joined(), calls);
        }

        @Override
        int safeLength(CharSequence text, int from) {
            return beforeOpening(text, from, MISTRAL_OPEN);
        }
    };

    private static final String HERMES_OPEN = "<tool_call>";

    private static final String HERMES_CLOSE = "</tool_call>";

    private static final String PYTHON_TAG = "<|python_tag|>";

    private static final String MISTRAL_OPEN = "[TOOL_CALLS]";

    private final ToolCallSyntax syntax;

    ToolCallFormat(ToolCallSyntax syntax) {
        this.syntax = syntax;
    }

    /**
     * The format {@code template} teaches, read from its source: {@code <tool_call>}
     * (Hermes, Qwen), {@code [TOOL_CALLS]} (Mistral), Llama 3's headers with the
     * {@code ipython} role (Llama 3.1+); empty when the template knows no tool calls.
     */
    public static Optional<ToolCallFormat> detect(ChatTemplate template) {
        String source = template.source();
        if (source.contains(HERMES_OPEN)) {
            return Optional.of(HERMES);
        }
        if (source.contains(MISTRAL_OPEN)) {
            return Optional.of(MISTRAL);
        }
        if (source.contains("<|start_header_id|>") && source.contains("ipython")) {
            return Optional.of(LLAMA3_JSON);
        }
        return Optional.empty();
    }

    /** How this format writes calls, for a grammar that forces one. */
    public ToolCallSyntax syntax() {
        return syntax;
    }

    /**
     * A finished output split into text and calls; markup that does not read as a call
     * stays text. Calls get new ids ({@code call_} and 24 letters or digits) unless the
     * format writes its own (Mistral).
     */
    public ParsedOutput parse(String output) {
        return parseText(output);
    }

    /** A filter for one streamed output. */
    public ToolCallStreamFilter streamFilter() {
        return new ToolCallStreamFilter(this);
    }

    abstract ParsedOutput parseText(String text);

    /**
     * How much of {@code text} is surely text whatever follows: the length before the
     * first place a call could start. No call starts before {@code from}.
     */
    abstract int safeLength(CharSequence text, int from);

    /**
     * The length before the first {@code opening} at or after {@code from}, or before a
     * partial {@code opening} at the end.
     */
    private static int beforeOpening(CharSequence text, int from, String opening) {
        int found = indexOf(text, opening, from);
        if (found >= 0) {
            return found;
        }
        for (int keep = Math.min(opening.length() - 1, text.length()); keep > 0; keep--) {
            if (regionMatches(text, text.length() - keep, opening, keep)) {
                return text.length() - keep;
            }
        }
        return text.length();
    }

    private static int indexOf(CharSequence text, String opening, int from) {
        for (int i = Math.max(0, from); i + opening.length() <= text.length(); i++) {
            if (regionMatches(text, i, opening, opening.length())) {
                return i;
            }
        }
        return -1;
    }

    private static boolean regionMatches(CharSequence text, int start, String opening, int length) {
        for (int i = 0; i < length; i++) {
            if (text.charAt(start + i) != opening.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    /** Text outside calls: the parts between calls, each trimmed, joined by newlines. */
    private static final class ContentParts {

        private final List<String> parts = new ArrayList<>();

        private final StringBuilder part = new StringBuilder();

        void append(String text, int start, int end) {
            part.append(text, start, end);
        }

        void endPart() {
            parts.add(part.toString().strip());
            part.setLength(0);
        }

        String joined() {
            endPart();
            return String.join("\n", parts.stream().filter((p) -> !p.isEmpty()).toList());
        }

    }

}
