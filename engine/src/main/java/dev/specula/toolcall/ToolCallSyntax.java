package dev.specula.toolcall;

import java.util.List;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.specula.grammar.Grammar;
import dev.specula.grammar.UnsupportedSchemaException;
import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.ChatTool;

/**
 * How a format writes calls, as plain data for a grammar that forces them. Each call is a
 * JSON object {@code {"name": ..., <argumentsKey>: {...}}}. Without {@code jsonArray}
 * every call is written {@code opening + object + closing}, parallel calls joined by
 * {@code separator}; with it the calls form one JSON array,
 * {@code opening + "[" + objects joined by separator + "]" + closing}.
 *
 * @param opening text before a call (or before the array); may be empty
 * @param closing text after a call (or after the array); may be empty
 * @param separator text between parallel calls
 * @param argumentsKey the key of the arguments object: {@code arguments} or
 * {@code parameters}
 * @param jsonArray whether the calls are wrapped in one JSON array
 */
public record ToolCallSyntax(String opening, String closing, String separator, String argumentsKey, boolean jsonArray) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The grammar of calls to {@code tools} in this syntax: each call's name one of the
     * tools' and its arguments valid for that tool's parameters schema; one call, or
     * several when {@code parallel}. Forcing it makes even a weak model write a valid
     * call ({@code tool_choice} {@code required} or a named function).
     * @throws InvalidRequestException naming {@code tools} for a parameters schema the
     * grammar engine cannot enforce (the keyword and where it is)
     */
    public Grammar callsGrammar(List<ChatTool> tools, boolean parallel) {
        if (tools.isEmpty()) {
            throw new IllegalArgumentException("No tool to call");
        }
        Grammar[] calls = new Grammar[tools.size()];
        for (int i = 0; i < calls.length; i++) {
            calls[i] = call(tools.get(i));
        }
        Grammar call = Grammar.anyOf(calls);
        int most = parallel ? -1 : 1;
        if (jsonArray) {
            return Grammar.sequence(Grammar.literal(opening), Grammar.literal("["),
                    Grammar.repeat(call, Grammar.literal(separator), 1, most), Grammar.literal("]"),
                    Grammar.literal(closing));
        }
        Grammar wrapped = Grammar.sequence(Grammar.literal(opening), call, Grammar.literal(closing));
        return Grammar.repeat(wrapped, Grammar.literal(separator), 1, most);
    }

    /**
     * {@code {"name": "<name>", "<argumentsKey>": <parameters>}} as a JSON schema, the
     * name first.
     */
    private Grammar call(ChatTool tool) {
        ObjectNode schema = JSON.createObjectNode();
        schema.put("type", "object");
        ObjectNode properties = schema.putObject("properties");
        properties.putObject("name").put("const", tool.name());
        try {
            properties.set(argumentsKey, JSON.readTree(tool.parameters()));
            schema.putArray("required").add("name").add(argumentsKey);
            schema.put("additionalProperties", false);
            return Grammar.jsonSchema(schema);
        }
        catch (UnsupportedSchemaException ex) {
            throw new InvalidRequestException("tools", ex.getCode(),
                    "The parameters schema of the tool " + tool.name() + " cannot be enforced: " + ex.getMessage(), ex);
        }
        catch (JsonProcessingException ex) {
            throw new InvalidRequestException("tools",
                    "The parameters schema of the tool " + tool.name() + " is not JSON: " + ex.getOriginalMessage());
        }
    }

}
