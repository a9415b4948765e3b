package dev.specula.tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.jspecify.annotations.Nullable;

import dev.specula.request.InvalidRequestException;

/**
 * One turn of a conversation as chat templates see it (transformers' and OpenAI's shape):
 * {@code {"role", "content"}}; an assistant turn may carry {@code tool_calls}, a
 * {@code tool} turn answers one of them ({@code tool_call_id}, optionally the function's
 * {@code name}).
 *
 * @param role {@code system}, {@code user}, {@code assistant}, {@code tool}, or any role
 * the template knows
 * @param content the text; null only for an assistant turn that just calls tools
 * @param toolCalls the calls an assistant turn makes; empty otherwise
 * @param toolCallId for a {@code tool} turn: the id of the call it answers
 * @param name for a {@code tool} turn: the function that answered; null = not given
 */
public record ChatMessage(String role, @Nullable String content, List<ToolCall> toolCalls, @Nullable String toolCallId,
        @Nullable String name) {

    /**
     * Checks the turn.
     * @throws IllegalArgumentException for a blank role or null content outside an
     * assistant's tool calls (programming errors)
     * @throws InvalidRequestException naming {@code tool_call_id} for a tool turn without
     * it, {@code tool_calls} for calls outside an assistant turn
     */
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new IllegalArgumentException("role must not be blank");
        }
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
        if (!toolCalls.isEmpty() && !"assistant".equals(role)) {
            throw new InvalidRequestException("tool_calls",
                    "Only assistant messages make tool calls, not a " + role + " message");
        }
        if (content == null && toolCalls.isEmpty()) {
            throw new IllegalArgumentException(
                    "content must not be null (only an assistant message that calls " + "tools may have none)");
        }
        if ("tool".equals(role) && (toolCallId == null || toolCallId.isBlank())) {
            throw new InvalidRequestException("tool_call_id",
                    "A tool message needs the tool_call_id of the call it answers (the id of the assistant's "
                            + "tool call)");
        }
    }

    /** A turn of text only. */
    public ChatMessage(String role, String content) {
        this(role, content, List.of(), null, null);
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    /** An assistant turn that calls tools, with text before the calls or none (null). */
    public static ChatMessage assistant(@Nullable String content, List<ToolCall> toolCalls) {
        return new ChatMessage("assistant", content, toolCalls, null, null);
    }

    /**
     * A tool's answer to the call {@code toolCallId} of function {@code name} (null = not
     * given).
     */
    public static ChatMessage tool(String toolCallId, @Nullable String name, String content) {
        return new ChatMessage("tool", content, List.of(), toolCallId, name);
    }

    /**
     * The template's view, as transformers passes OpenAI-style messages: tool calls as
     * {@code {"id", "type": "function", "function": {"name", "arguments": a dict}}}.
     */
    Map<String, @Nullable Object> templateValue() {
        Map<String, @Nullable Object> map = new LinkedHashMap<>();
        map.put("role", role);
        if (toolCallId != null) {
            map.put("tool_call_id", toolCallId);
        }
        if (name != null) {
            map.put("name", name);
        }
        map.put("content", content);
        if (!toolCalls.isEmpty()) {
            List<Map<String, Object>> calls = new ArrayList<>(toolCalls.size());
            for (ToolCall call : toolCalls) {
                Map<String, Object> function = new LinkedHashMap<>();
                function.put("name", call.name());
                function.put("arguments", JsonArguments.parseObject(call.arguments(), call.name()));
                Map<String, Object> value = new LinkedHashMap<>();
                if (call.id() != null) {
                    value.put("id", call.id());
                }
                value.put("type", "function");
                value.put("function", function);
                calls.add(value);
            }
            map.put("tool_calls", calls);
        }
        return map;
    }

}
