package dev.specula.tokenizer;

import org.jspecify.annotations.Nullable;

import dev.specula.request.InvalidRequestException;

/**
 * A function call an assistant message makes, as OpenAI writes it: an id, the function's
 * name and its arguments as a JSON object in text ({@code {"city": "Paris"}}). Chat
 * templates receive the arguments parsed (transformers' convention: they apply
 * {@code | tojson} to a dict).
 *
 * @param id the call's id, which the tool's answer refers to; null when the caller has
 * none (templates that need ids, such as Mistral's, then refuse the conversation)
 * @param name the function's name
 * @param arguments the arguments, a JSON object
 */
public record ToolCall(@Nullable String id, String name, String arguments) {

    /**
     * Checks the call.
     * @throws InvalidRequestException naming {@code tool_calls.function.name} when the
     * name is blank, {@code tool_calls.function.arguments} when the arguments are not a
     * JSON object
     */
    public ToolCall {
        if (name == null || name.isBlank()) {
            throw new InvalidRequestException("tool_calls.function.name",
                    "A tool call needs the name of the function it calls");
        }
        if (arguments == null) {
            throw new InvalidRequestException("tool_calls.function.arguments",
                    "The arguments of the call to " + name + " are missing: give a JSON object ({} for none)");
        }
        JsonArguments.parseObject(arguments, name);
    }

}
