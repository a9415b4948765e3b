package dev.specula.tokenizer;

import java.util.LinkedHashMap;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.specula.request.InvalidRequestException;

/**
 * JSON objects given as text (tool-call arguments, parameter schemas) read into the maps
 * templates see, keys in their order.
 */
final class JsonArguments {

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private JsonArguments() {
    }

    /**
     * The object {@code json} holds.
     * @throws InvalidRequestException naming {@code tool_calls.function.arguments} when
     * {@code json} is not one JSON object
     */
    static Map<String, Object> parseObject(String json, String functionName) {
        String trimmed = json.strip();
        if (!trimmed.startsWith("{")) {
            throw notAnObject(json, functionName);
        }
        try {
            return JSON.readValue(trimmed, new TypeReference<LinkedHashMap<String, Object>>() {
            });
        }
        catch (JsonProcessingException ex) {
            throw notAnObject(json, functionName);
        }
    }

    private static InvalidRequestException notAnObject(String json, String functionName) {
        return new InvalidRequestException("tool_calls.function.arguments", "The arguments of the call to "
                + functionName + " must be a JSON object (such as {\"city\": \"Paris\"}) but were: " + json);
    }

}
