package dev.specula.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.jspecify.annotations.Nullable;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.definition.ToolDefinition;

import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.ChatMessage;
import dev.specula.tokenizer.ChatTemplate;
import dev.specula.tokenizer.ChatTool;
import dev.specula.tokenizer.ToolCall;
import dev.specula.toolcall.ParsedOutput;
import dev.specula.toolcall.ToolCallFormat;
import dev.specula.toolcall.ToolCallSyntax;

/**
 * What one request does with tools: the tools offered to the model through its chat
 * template, and the format its output is read in for calls (none: the output is text).
 * {@code toolChoice} {@code none} offers no tool and reads no call (OpenAI's meaning: the
 * model may not call); a tool's name offers only that tool.
 *
 * <p>
 * {@link #callRequired()} with {@link #syntax()} and the offered tools' schemas make the
 * grammar that forces the call ({@code required} or a named tool; {@link OutputGrammar}):
 * the model then writes a valid call in its template's format, whatever its weights.
 *
 * @param offered the tools rendered into the prompt
 * @param format how the output is read for calls; null = not read
 * @param choice {@code auto}, {@code none}, {@code required} or a tool's name
 * @param parallel whether every call is kept (false: the first only)
 */
record ToolPlan(List<ChatTool> offered, @Nullable ToolCallFormat format, String choice, boolean parallel) {

    /** A request without tools. */
    static final ToolPlan NONE = new ToolPlan(List.of(), null, SpeculaChatOptions.TOOL_CHOICE_AUTO, true);

    /**
     * The plan for {@code options} (validated) on a model with {@code template}.
     * @throws InvalidRequestException naming {@code tools} when tools are offered to a
     * model whose template knows no tool-call format, or a tool's schema is not a JSON
     * object
     */
    static ToolPlan of(SpeculaChatOptions options, Optional<ChatTemplate> template) {
        List<ToolCallback> callbacks = options.getToolCallbacks() == null ? List.of() : options.getToolCallbacks();
        String choice = options.getToolChoice() == null ? SpeculaChatOptions.TOOL_CHOICE_AUTO : options.getToolChoice();
        if (callbacks.isEmpty() || SpeculaChatOptions.TOOL_CHOICE_NONE.equals(choice)) {
            return NONE;
        }
        ToolCallFormat format = template.flatMap(ToolCallFormat::detect)
            .orElseThrow(() -> new InvalidRequestException("tools", "unsupported_value",
                    "This model's chat template does not support tools (it has no tool-call format Specula "
                            + "reads: Hermes/Qwen <tool_call>, Llama 3.1+ JSON, Mistral [TOOL_CALLS]): leave the "
                            + "tools out, or serve a tool-calling model"));
        List<ChatTool> offered = new ArrayList<>();
        for (ToolCallback callback : callbacks) {
            ToolDefinition definition = callback.getToolDefinition();
            if (isNamedChoice(choice) && !definition.name().equals(choice)) {
                continue;
            }
            offered.add(new ChatTool(definition.name(), definition.description(), definition.inputSchema()));
        }
        return new ToolPlan(offered, format, choice, !Boolean.FALSE.equals(options.getParallelToolCalls()));
    }

    /**
     * Checks {@code toolChoice} against the tools.
     * @throws InvalidRequestException naming {@code toolChoice} for an unknown tool name,
     * or {@code required} or a name without tools
     */
    static void validateChoice(SpeculaChatOptions options) {
        String choice = options.getToolChoice();
        if (choice == null || SpeculaChatOptions.TOOL_CHOICE_AUTO.equals(choice)
                || SpeculaChatOptions.TOOL_CHOICE_NONE.equals(choice)) {
            return;
        }
        List<String> names = options.getToolCallbacks() == null ? List.of()
                : options.getToolCallbacks().stream().map((tool) -> tool.getToolDefinition().name()).toList();
        if (names.isEmpty()) {
            throw new InvalidRequestException("toolChoice", "toolChoice '" + choice
                    + "' needs tools, and the request has none: add tools, or use auto or none");
        }
        if (isNamedChoice(choice) && !names.contains(choice)) {
            throw new InvalidRequestException("toolChoice", "toolChoice '" + choice
                    + "' names no tool of the request: use auto, none, required or one of " + names);
        }
    }

    /**
     * Checks that a conversation with tool calls or tool results goes to a model whose
     * template knows tool calls (another template would drop them without a word).
     * @throws InvalidRequestException naming {@code messages} otherwise
     */
    static void checkHistory(List<ChatMessage> turns, Optional<ChatTemplate> template) {
        boolean toolTurns = turns.stream()
            .anyMatch((turn) -> !turn.toolCalls().isEmpty() || "tool".equals(turn.role()));
        if (toolTurns && template.flatMap(ToolCallFormat::detect).isEmpty()) {
            throw new InvalidRequestException("messages", "unsupported_value",
                    "The messages hold tool calls or tool results, and this model's chat template does not support "
                            + "tools (its tool-call format is none Specula reads: Hermes/Qwen <tool_call>, Llama 3.1+ "
                            + "JSON, Mistral [TOOL_CALLS]): send them as text, or serve a tool-calling model");
        }
    }

    private static boolean isNamedChoice(String choice) {
        return !SpeculaChatOptions.TOOL_CHOICE_AUTO.equals(choice)
                && !SpeculaChatOptions.TOOL_CHOICE_NONE.equals(choice)
                && !SpeculaChatOptions.TOOL_CHOICE_REQUIRED.equals(choice);
    }

    /** Whether the output is read for calls. */
    boolean readsCalls() {
        return format != null;
    }

    /**
     * Whether the request asks that the model call a tool ({@code required} or a named
     * tool).
     */
    boolean callRequired() {
        return readsCalls() && !SpeculaChatOptions.TOOL_CHOICE_AUTO.equals(choice);
    }

    /** How the model writes calls; null when the output is not read for calls. */
    @Nullable ToolCallSyntax syntax() {
        return format == null ? null : format.syntax();
    }

    /** The calls kept: all of them, or the first when parallel calls were turned off. */
    List<AssistantMessage.ToolCall> keptCalls(ParsedOutput parsed) {
        List<ToolCall> calls = parallel || parsed.toolCalls().size() <= 1 ? parsed.toolCalls()
                : parsed.toolCalls().subList(0, 1);
        return calls.stream()
            .map((call) -> new AssistantMessage.ToolCall(call.id(), "function", call.name(), call.arguments()))
            .toList();
    }

}
