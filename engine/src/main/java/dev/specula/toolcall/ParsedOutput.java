package dev.specula.toolcall;

import java.util.List;

import dev.specula.tokenizer.ToolCall;

/**
 * A model's output split into its text and its tool calls.
 *
 * @param content the text outside the calls, trimmed (the parts around calls joined by a
 * newline); empty when the output is only calls
 * @param toolCalls the calls in order; empty when the output is text only
 */
public record ParsedOutput(String content, List<ToolCall> toolCalls) {

    public ParsedOutput {
        toolCalls = List.copyOf(toolCalls);
    }

    static ParsedOutput text(CharSequence text) {
        return new ParsedOutput(text.toString().strip(), List.of());
    }

    /** Whether the output calls at least one tool. */
    public boolean hasToolCalls() {
        return !toolCalls.isEmpty();
    }

}
