package dev.specula.tokenizer;

import java.util.LinkedHashMap;
import java.util.Map;

import org.jspecify.annotations.Nullable;

import dev.specula.request.InvalidRequestException;

/**
 * A function the model may call, as chat templates receive it in their {@code tools}
 * variable: {@code {"type": "function", "function": {"name", "description",
 * "parameters"}}} (transformers' {@code apply_chat_template(tools=...)} with JSON-schema
 * tools).
 *
 * @param name the function's name
 * @param description what it does, for the model; null = none
 * @param parameters the JSON schema of its arguments, a JSON object
 */
public record ChatTool(String name, @Nullable String description, String parameters) {

    /**
     * Checks the tool.
     * @throws InvalidRequestException naming {@code tools} when the name is blank or the
     * parameters are not a JSON object
     */
    public ChatTool {
        if (name == null || name.isBlank()) {
            throw new InvalidRequestException("tools", "A tool needs a name");
        }
        if (parameters == null) {
            throw new InvalidRequestException("tools",
                    "The tool " + name + " has no parameters schema: give a JSON schema object");
        }
        try {
            JsonArguments.parseObject(parameters, name);
        }
        catch (InvalidRequestException ex) {
            throw new InvalidRequestException("tools",
                    "The parameters schema of the tool " + name + " is not a JSON object: " + parameters);
        }
    }

    /** The template's view: {@code {"type": "function", "function": {...}}}. */
    Map<String, Object> templateValue() {
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", name);
        if (description != null) {
            function.put("description", description);
        }
        function.put("parameters", JsonArguments.parseObject(parameters, name));
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", function);
        return tool;
    }

}
