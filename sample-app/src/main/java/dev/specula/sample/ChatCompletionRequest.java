package dev.specula.sample;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.tool.ToolCallback;
import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatOptions;
import dev.specula.grammar.Grammar;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.TokenLogprob;

/**
 * A chat completion request, read from OpenAI's JSON and checked field by field before it
 * reaches the model, so that every mistake is reported with the field that caused it
 * ({@link InvalidRequestException}).
 *
 * <p>
 * Every top-level field is in one of three lists: {@link #SUPPORTED} (read and honoured),
 * {@link #IGNORED} (accepted and ignored: fields clients send routinely that change
 * nothing in the answer), or refused with a 400 that names it (anything else, including
 * OpenAI fields this gateway does not implement). sample-app/README.md lists each with
 * its status.
 *
 * @param messages the conversation, as Spring AI messages
 * @param options the request's options (unset fields inherit the model's defaults)
 * @param stream whether to answer with server-sent events
 * @param includeUsage whether a stream ends with a chunk that carries the usage
 */
record ChatCompletionRequest(List<Message> messages, SpeculaChatOptions options, boolean stream, boolean includeUsage) {

    /** The request fields read and honoured. */
    static final Set<String> SUPPORTED = Set.of("model", "messages", "stream", "stream_options", "temperature", "top_p",
            "top_k", "max_completion_tokens", "max_tokens", "stop", "seed", "n", "frequency_penalty",
            "presence_penalty", "repetition_penalty", "logit_bias", "logprobs", "top_logprobs", "prediction",
            "speculation", "tools", "tool_choice", "parallel_tool_calls", "response_format");

    /**
     * Fields clients send routinely that change nothing in the answer: accepted and
     * ignored.
     */
    static final Set<String> IGNORED = Set.of("user", "metadata", "store", "safety_identifier", "prompt_cache_key",
            "service_tier");

    /** Why a known OpenAI field is refused, for the fields refused with a reason. */
    private static final Map<String, String> REFUSED = Map.ofEntries(
            Map.entry("audio", "the models read and write text only"),
            Map.entry("modalities", "the models write text only: leave it out or send [\"text\"]"),
            Map.entry("functions", "the deprecated functions API is not implemented"),
            Map.entry("function_call", "the deprecated functions API is not implemented"),
            Map.entry("reasoning_effort", "the models do not reason in a separate channel"),
            Map.entry("verbosity", "the models have no verbosity setting"),
            Map.entry("web_search_options", "this server cannot search the web"));

    /**
     * This request, capped at {@code maxTokens} when it names no max_tokens (the
     * gateway's default, which the overflow remote does not know).
     */
    ChatCompletionRequest withMaxTokensOr(int maxTokens) {
        if (options.getMaxTokens() != null) {
            return this;
        }
        return new ChatCompletionRequest(messages, options.mutate().maxTokens(maxTokens).build(), stream, includeUsage);
    }

    /** Reads and checks a request for the model named {@code servedModel}. */
    static ChatCompletionRequest read(JsonNode body, String servedModel) {
        if (body == null || !body.isObject()) {
            throw new InvalidRequestException(null,
                    "The request body must be a JSON object with at least \"messages\"");
        }
        RequestFields.checkFields(body, SUPPORTED, IGNORED, REFUSED,
                (field) -> field.equals("modalities") && isTextOnly(body.get(field)));
        String model = RequestFields.model(body, servedModel);
        List<Message> messages = messages(body.get("messages"));
        RequestFields.requireOne(body, "n");
        SpeculaChatOptions.Builder options = SpeculaChatOptions.builder().model(model);
        RequestFields.sampling(body, body.hasNonNull("max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
                options);
        Boolean logprobs = RequestFields.optionalBoolean(body, "logprobs", "logprobs");
        Long topLogprobs = RequestFields.optionalInteger(body, "top_logprobs");
        if (topLogprobs != null && (topLogprobs < 0 || topLogprobs > TokenLogprob.MAX_TOP)) {
            throw new InvalidRequestException("top_logprobs",
                    "top_logprobs must be in [0, " + TokenLogprob.MAX_TOP + "] but was " + topLogprobs);
        }
        if (topLogprobs != null && !Boolean.TRUE.equals(logprobs)) {
            throw new InvalidRequestException("top_logprobs",
                    "top_logprobs needs \"logprobs\": true; set it, or leave top_logprobs out");
        }
        boolean stream = Boolean.TRUE.equals(RequestFields.optionalBoolean(body, "stream", "stream"));
        boolean includeUsage = RequestFields.includeUsage(body);
        options.logprobs(logprobs).topLogprobs(topLogprobs == null ? null : topLogprobs.intValue());
        tools(body, options);
        responseFormat(RequestFields.optionalObject(body, "response_format"), options);
        RequestFields.speculation(body, options);
        SpeculaChatOptions built = options.build();
        if (Boolean.TRUE.equals(built.getProvenance()) && built.getToolCallbacks() != null
                && !built.getToolCallbacks().isEmpty() && !"none".equals(built.getToolChoice())) {
            throw new InvalidRequestException("speculation.provenance", "unsupported_value",
                    "speculation.provenance tells how each piece of the answer's text was made, and an answer whose "
                            + "tool calls are read from its text holds back or drops part of it: leave one of "
                            + "speculation.provenance and tools out (or set tool_choice to none)");
        }
        return new ChatCompletionRequest(messages, built, stream, includeUsage);
    }

    Prompt prompt() {
        return new Prompt(messages, options);
    }

    /** Characters of the messages' text, for estimates before tokenizing. */
    long promptCharacters() {
        long characters = 0;
        for (Message message : messages) {
            characters += message.getText() == null ? 0 : message.getText().length();
        }
        return characters;
    }

    private static List<Message> messages(JsonNode node) {
        if (node == null || node.isNull()) {
            throw new InvalidRequestException("messages",
                    "messages is required: an array of {\"role\", \"content\"} objects");
        }
        if (!node.isArray()) {
            throw new InvalidRequestException("messages",
                    "messages must be an array of {\"role\", \"content\"} objects");
        }
        if (node.isEmpty()) {
            throw new InvalidRequestException("messages", "messages must not be empty");
        }
        List<Message> messages = new ArrayList<>(node.size());
        // tool call id -> function name, for the tool results that answer them
        Map<String, String> toolNames = new HashMap<>();
        for (int i = 0; i < node.size(); i++) {
            String field = "messages[" + i + "]";
            JsonNode message = node.get(i);
            if (!message.isObject()) {
                throw new InvalidRequestException(field, field + " must be an object with \"role\" and \"content\"");
            }
            String role = RequestFields.optionalString(message, "role", field + ".role");
            if (role == null) {
                throw new InvalidRequestException(field + ".role", field + ".role is required");
            }
            String content = content(message.get("content"), field + ".content");
            messages.add(switch (role) {
                case "system", "developer" -> new SystemMessage(content);
                case "user" -> new UserMessage(content);
                case "assistant" -> assistant(message, content, field, toolNames);
                case "tool" -> toolResult(message, content, field, toolNames);
                case "function" -> throw new InvalidRequestException(field + ".role", "unsupported_value",
                        field + ".role 'function' is the deprecated functions API: send tool calls and role 'tool'");
                default -> throw new InvalidRequestException(field + ".role", "invalid_value",
                        "Invalid " + field + ".role '" + role + "': use system, developer, user or assistant");
            });
        }
        return messages;
    }

    /** An assistant turn: its text and the tool calls it made ({@code tool_calls}). */
    private static Message assistant(JsonNode message, String content, String field, Map<String, String> toolNames) {
        JsonNode calls = message.get("tool_calls");
        if (calls == null || calls.isNull()) {
            return new AssistantMessage(content);
        }
        if (!calls.isArray()) {
            throw new InvalidRequestException(field + ".tool_calls", field + ".tool_calls must be an array");
        }
        List<AssistantMessage.ToolCall> toolCalls = new ArrayList<>();
        for (int c = 0; c < calls.size(); c++) {
            String callField = field + ".tool_calls[" + c + "]";
            JsonNode call = calls.get(c);
            if (!call.isObject() || !call.path("function").isObject()) {
                throw new InvalidRequestException(callField, callField
                        + " must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
            }
            String id = RequestFields.optionalString(call, "id", callField + ".id");
            String name = RequestFields.optionalString(call.get("function"), "name", callField + ".function.name");
            String arguments = RequestFields.optionalString(call.get("function"), "arguments",
                    callField + ".function.arguments");
            if (id == null || name == null || arguments == null) {
                throw new InvalidRequestException(callField,
                        callField + " needs an id, function.name and function.arguments (a JSON object as a string)");
            }
            toolNames.put(id, name);
            toolCalls.add(new AssistantMessage.ToolCall(id, "function", name, arguments));
        }
        return AssistantMessage.builder().content(content).toolCalls(toolCalls).build();
    }

    /** A tool's result ({@code role: tool}), answering the call {@code tool_call_id}. */
    private static Message toolResult(JsonNode message, String content, String field, Map<String, String> toolNames) {
        String id = RequestFields.optionalString(message, "tool_call_id", field + ".tool_call_id");
        if (id == null) {
            throw new InvalidRequestException(field + ".tool_call_id",
                    field + ".tool_call_id is required: the id of the assistant's tool call it answers");
        }
        String name = toolNames.getOrDefault(id, RequestFields.optionalString(message, "name", field + ".name"));
        if (name == null) {
            throw new InvalidRequestException(field + ".tool_call_id",
                    field + ".tool_call_id '" + id + "' answers no tool call of an earlier assistant message");
        }
        return ToolResponseMessage.builder()
            .responses(List.of(new ToolResponseMessage.ToolResponse(id, name, content)))
            .build();
    }

    /**
     * {@code tools} (functions: name, description, parameters), {@code tool_choice} and
     * {@code parallel_tool_calls}.
     */
    private static void tools(JsonNode body, SpeculaChatOptions.Builder options) {
        JsonNode tools = body.get("tools");
        List<ToolCallback> callbacks = new ArrayList<>();
        if (tools != null && !tools.isNull()) {
            if (!tools.isArray()) {
                throw new InvalidRequestException("tools", "tools must be an array of {\"type\": \"function\", ...}");
            }
            for (int t = 0; t < tools.size(); t++) {
                String field = "tools[" + t + "]";
                JsonNode tool = tools.get(t);
                if (!tool.isObject() || !"function".equals(tool.path("type").asString(""))
                        || !tool.path("function").isObject()) {
                    throw new InvalidRequestException(field,
                            field + " must be {\"type\": \"function\", \"function\": {\"name\", ...}}");
                }
                JsonNode function = tool.get("function");
                String name = RequestFields.optionalString(function, "name", field + ".function.name");
                if (name == null || !name.matches("[a-zA-Z0-9_-]{1,64}")) {
                    throw new InvalidRequestException(field + ".function.name",
                            field + ".function.name is required: 1 to 64 letters, digits, underscores or dashes");
                }
                JsonNode parameters = function.get("parameters");
                if (parameters != null && !parameters.isNull() && !parameters.isObject()) {
                    throw new InvalidRequestException(field + ".function.parameters",
                            field + ".function.parameters must be a JSON Schema object");
                }
                String schema = parameters == null || parameters.isNull() ? "{\"type\": \"object\", \"properties\": {}}"
                        : parameters.toString();
                callbacks.add(new ClientTool(name,
                        RequestFields.optionalString(function, "description", field + ".function.description") == null
                                ? "" : function.get("description").stringValue(),
                        schema));
            }
        }
        if (!callbacks.isEmpty()) {
            options.toolCallbacks(callbacks);
        }
        JsonNode choice = body.get("tool_choice");
        if (choice != null && !choice.isNull()) {
            String toolChoice;
            if (choice.isString()) {
                toolChoice = choice.stringValue();
                if (!List.of("auto", "none", "required").contains(toolChoice)) {
                    throw new InvalidRequestException("tool_choice", "tool_choice must be auto, none, required or "
                            + "{\"type\": \"function\", \"function\": {\"name\": ...}} but was '" + toolChoice + "'");
                }
            }
            else if (choice.isObject() && choice.path("function").path("name").isString()) {
                toolChoice = choice.get("function").get("name").stringValue();
            }
            else {
                throw new InvalidRequestException("tool_choice", "tool_choice must be auto, none, required or "
                        + "{\"type\": \"function\", \"function\": {\"name\": ...}}");
            }
            if (callbacks.isEmpty() && !toolChoice.equals("none") && !toolChoice.equals("auto")) {
                throw new InvalidRequestException("tool_choice",
                        "tool_choice '" + toolChoice + "' needs tools, and the request has none");
            }
            if (!List.of("auto", "none", "required").contains(toolChoice)
                    && callbacks.stream().noneMatch((tool) -> tool.getToolDefinition().name().equals(toolChoice))) {
                throw new InvalidRequestException("tool_choice",
                        "tool_choice names the function '" + toolChoice + "', which is not in tools");
            }
            options.toolChoice(toolChoice);
        }
        options.parallelToolCalls(RequestFields.optionalBoolean(body, "parallel_tool_calls", "parallel_tool_calls"));
    }

    /**
     * {@code {"type": "text"}}, {@code {"type": "json_object"}} or {@code {"type":
     * "json_schema", "json_schema": {"name", "schema", "strict"}}}: the last two
     * constrain decoding with a grammar.
     */
    private static void responseFormat(JsonNode node, SpeculaChatOptions.Builder options) {
        if (node == null) {
            return;
        }
        String type = RequestFields.optionalString(node, "type", "response_format.type");
        if ("text".equals(type)) {
            return;
        }
        if ("json_object".equals(type)) {
            options.jsonMode(true);
            return;
        }
        if (!"json_schema".equals(type)) {
            throw new InvalidRequestException("response_format.type",
                    "response_format.type must be text, json_object or json_schema but was "
                            + (type == null ? "missing" : "'" + type + "'"));
        }
        JsonNode jsonSchema = node.get("json_schema");
        if (jsonSchema == null || !jsonSchema.isObject() || !jsonSchema.path("name").isString()) {
            throw new InvalidRequestException("response_format.json_schema",
                    "response_format.json_schema must be {\"name\", \"schema\", \"strict\"} with a name");
        }
        RequestFields.optionalBoolean(jsonSchema, "strict", "response_format.json_schema.strict");
        JsonNode schema = jsonSchema.get("schema");
        if (schema == null || !schema.isObject()) {
            throw new InvalidRequestException("response_format.json_schema.schema",
                    "response_format.json_schema.schema must be a JSON Schema object");
        }
        try {
            // checked here to name the field; compiled for the model when generating
            Grammar.jsonSchema(schema.toString());
        }
        catch (InvalidRequestException ex) {
            throw new InvalidRequestException("response_format.json_schema.schema", ex.getCode(), ex.getMessage(), ex);
        }
        options.outputSchema(schema.toString());
    }

    /**
     * A string, null (assistant turns with tool calls), or an array of text parts, which
     * are joined.
     */
    private static String content(JsonNode node, String field) {
        if (node == null || node.isNull()) {
            return "";
        }
        if (node.isString()) {
            return node.stringValue();
        }
        if (!node.isArray()) {
            throw new InvalidRequestException(field, field + " must be a string or an array of text parts");
        }
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < node.size(); i++) {
            JsonNode part = node.get(i);
            String type = part.isObject() ? RequestFields.optionalString(part, "type", field + "[" + i + "].type")
                    : null;
            if (!"text".equals(type) || !part.path("text").isString()) {
                throw new InvalidRequestException(field + "[" + i + "]", field + "[" + i
                        + "] is not supported: only {\"type\": \"text\", \"text\": ...} parts (the models read text only)");
            }
            text.append(part.get("text").stringValue());
        }
        return text.toString();
    }

    private static boolean isTextOnly(JsonNode modalities) {
        return modalities != null && modalities.isArray() && modalities.size() == 1
                && "text".equals(modalities.get(0).asString(""));
    }

}
