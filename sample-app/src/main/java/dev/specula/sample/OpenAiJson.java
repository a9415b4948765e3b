package dev.specula.sample;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.metadata.ChatResponseMetadata;
import org.springframework.ai.chat.model.ChatResponse;

import dev.specula.chat.ChatLogprob;
import dev.specula.chat.SpeculaChatModel;
import dev.specula.engine.OutputToken;

/** The JSON bodies of OpenAI's chat completions API, as the gateway writes them. */
final class OpenAiJson {

    static final String CHAT_COMPLETION = "chat.completion";
    static final String CHAT_COMPLETION_CHUNK = "chat.completion.chunk";
    static final String ASSISTANT = "assistant";

    /**
     * Specula's response metadata keys and the names they take in {@code "speculation"}.
     */
    private static final Map<String, String> SPECULATION_FIELDS = speculationFields();

    private OpenAiJson() {
    }

    /**
     * The finish reason a model response carries ("stop", "length", ...), or null for a
     * chunk of text.
     */
    static String finishReason(ChatResponse response) {
        if (response.getResult() == null || response.getResult().getMetadata() == null) {
            return null;
        }
        String reason = response.getResult().getMetadata().getFinishReason();
        return reason == null || reason.isBlank() ? null : reason.toLowerCase(Locale.ROOT);
    }

    static String text(ChatResponse response) {
        if (response.getResult() == null || response.getResult().getOutput() == null) {
            return "";
        }
        String text = response.getResult().getOutput().getText();
        return text == null ? "" : text;
    }

    static Usage usage(ChatResponse response) {
        org.springframework.ai.chat.metadata.Usage usage = response.getMetadata().getUsage();
        int prompt = usage == null || usage.getPromptTokens() == null ? 0 : usage.getPromptTokens();
        int completion = usage == null || usage.getCompletionTokens() == null ? 0 : usage.getCompletionTokens();
        Object accepted = response.getMetadata().get(SpeculaChatModel.METADATA_ACCEPTED_PREDICTION_TOKENS);
        Object rejected = response.getMetadata().get(SpeculaChatModel.METADATA_REJECTED_PREDICTION_TOKENS);
        Map<String, Object> details = accepted == null ? null
                : Map.of("accepted_prediction_tokens", accepted, "rejected_prediction_tokens", rejected);
        return new Usage(prompt, completion, prompt + completion, details);
    }

    /**
     * {@code {"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}} from
     * the generation's log-probabilities, or null when the request did not ask for them.
     */
    static Map<String, Object> logprobs(ChatResponse response) {
        if (response.getResult() == null || response.getResult().getMetadata() == null) {
            return null;
        }
        List<ChatLogprob> logprobs = response.getResult().getMetadata().get(ChatLogprob.METADATA_KEY);
        if (logprobs == null) {
            return null;
        }
        List<Map<String, Object>> content = new ArrayList<>(logprobs.size());
        for (ChatLogprob logprob : logprobs) {
            Map<String, Object> entry = tokenLogprob(logprob);
            List<Map<String, Object>> top = new ArrayList<>(logprob.topLogprobs().size());
            for (ChatLogprob alternative : logprob.topLogprobs()) {
                top.add(tokenLogprob(alternative));
            }
            entry.put("top_logprobs", top);
            content.add(entry);
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("content", content);
        body.put("refusal", null);
        return body;
    }

    private static Map<String, Object> tokenLogprob(ChatLogprob logprob) {
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("token", logprob.token());
        entry.put("logprob", logprob.logprob());
        entry.put("bytes", logprob.bytes());
        return entry;
    }

    /**
     * The {@code specula.*} response metadata under snake_case names, and the answer's
     * {@code tokens} when it carries them; null when there is none.
     */
    static Map<String, Object> speculation(ChatResponse response) {
        ChatResponseMetadata metadata = response.getMetadata();
        Map<String, Object> speculation = new LinkedHashMap<>();
        SPECULATION_FIELDS.forEach((key, field) -> {
            Object value = metadata.get(key);
            if (value != null) {
                speculation.put(field, value);
            }
        });
        List<Map<String, Object>> tokens = tokens(response);
        if (tokens != null) {
            speculation.put("tokens", tokens);
        }
        return speculation.isEmpty() ? null : speculation;
    }

    /**
     * How each token of the response's text was made, when the request asked for
     * provenance ({@code speculation.provenance}): {@code [{"index", "id", "text",
     * "kind", "round", "gamma"}]}, {@code kind} one of accepted, corrected, bonus, plain;
     * null otherwise.
     */
    static List<Map<String, Object>> tokens(ChatResponse response) {
        if (response.getResult() == null || response.getResult().getMetadata() == null) {
            return null;
        }
        List<OutputToken> tokens = response.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS);
        if (tokens == null) {
            return null;
        }
        List<Map<String, Object>> json = new ArrayList<>(tokens.size());
        for (OutputToken token : tokens) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("index", token.index());
            entry.put("id", token.id());
            entry.put("text", token.text());
            entry.put("kind", token.kind().tag());
            entry.put("round", token.round());
            entry.put("gamma", token.gamma());
            json.add(entry);
        }
        return json;
    }

    private static Map<String, String> speculationFields() {
        Map<String, String> fields = new LinkedHashMap<>();
        fields.put(SpeculaChatModel.METADATA_REQUESTED_POLICY, "requested_policy");
        fields.put(SpeculaChatModel.METADATA_POLICY, "policy");
        fields.put(SpeculaChatModel.METADATA_POLICY_REASON, "reason");
        fields.put(SpeculaChatModel.METADATA_PROPOSER, "proposer");
        fields.put(SpeculaChatModel.METADATA_DRAFTED, "drafted");
        fields.put(SpeculaChatModel.METADATA_ACCEPTED, "accepted");
        fields.put(SpeculaChatModel.METADATA_MEAN_ACCEPTED_LENGTH, "mean_accepted_length");
        fields.put(SpeculaChatModel.METADATA_TARGET_CALLS, "target_calls");
        fields.put(SpeculaChatModel.METADATA_FALLBACK, "fallback");
        fields.put(SpeculaChatModel.METADATA_FALLBACK_REASON, "fallback_reason");
        fields.put(SpeculaChatModel.METADATA_CACHED, "cached");
        return Collections.unmodifiableMap(fields);
    }

    /**
     * A complete answer. {@code speculation} is Specula's own: how the answer was decoded
     * (the requested policy, the policy that ran and the reason they differ, drafted and
     * accepted tokens, mean accepted length, fallback, cache); clients that do not know
     * it ignore it.
     */
    record ChatCompletion(String id, String object, long created, String model, List<Choice> choices, Usage usage,
            @JsonInclude(JsonInclude.Include.NON_NULL) Map<String, Object> speculation) {
    }

    record Choice(int index, Message message, Object logprobs, @JsonProperty("finish_reason") String finishReason) {
    }

    /**
     * The answer: its text (null when it only calls tools), and the calls it made, as
     * {@code [{"id", "type": "function", "function": {"name", "arguments"}}]}.
     */
    record Message(String role, String content, String refusal,
            @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("tool_calls") List<Map<String, Object>> toolCalls) {

        static Message of(ChatResponse response) {
            List<Map<String, Object>> calls = OpenAiJson.toolCalls(response, false);
            String text = text(response);
            return new Message(ASSISTANT, calls != null && text.isEmpty() ? null : text, null, calls);
        }

    }

    /**
     * The response's tool calls in OpenAI's shape (with their {@code index} in a stream's
     * delta); null when it has none.
     */
    static List<Map<String, Object>> toolCalls(ChatResponse response, boolean indexed) {
        if (response.getResult() == null || response.getResult().getOutput() == null
                || !response.getResult().getOutput().hasToolCalls()) {
            return null;
        }
        List<Map<String, Object>> calls = new ArrayList<>();
        for (AssistantMessage.ToolCall call : response.getResult().getOutput().getToolCalls()) {
            Map<String, Object> json = new LinkedHashMap<>();
            if (indexed) {
                json.put("index", calls.size());
            }
            json.put("id", call.id());
            json.put("type", "function");
            json.put("function", Map.of("name", call.name(), "arguments", call.arguments()));
            calls.add(json);
        }
        return calls;
    }

    /**
     * Token counts; {@code completion_tokens_details} only with a prediction: its tokens
     * the answer took ({@code accepted_prediction_tokens}) and those proposed and
     * rejected ({@code rejected_prediction_tokens}).
     */
    record Usage(@JsonProperty("prompt_tokens") int promptTokens,
            @JsonProperty("completion_tokens") int completionTokens, @JsonProperty("total_tokens") int totalTokens,
            @JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("completion_tokens_details") Map<String, Object> completionTokensDetails) {
    }

    /** One server-sent event of a streamed answer. */
    record ChatCompletionChunk(String id, String object, long created, String model, List<ChunkChoice> choices,
            @JsonInclude(JsonInclude.Include.NON_NULL) Usage usage,
            @JsonInclude(JsonInclude.Include.NON_NULL) Map<String, Object> speculation) {
    }

    record ChunkChoice(int index, Delta delta, Object logprobs, @JsonProperty("finish_reason") String finishReason) {
    }

    /**
     * What a chunk adds to the answer: the role once (first chunk), then pieces of
     * content; empty in the last.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Delta(String role, String content, @JsonProperty("tool_calls") List<Map<String, Object>> toolCalls) {

        static final Delta EMPTY = new Delta(null, null, null);

        Delta(String role, String content) {
            this(role, content, null);
        }

    }

    record ModelList(String object, List<Model> data) {
    }

    record Model(String id, String object, long created, @JsonProperty("owned_by") String ownedBy) {
    }

    /**
     * {@code {"error": {"message", "type", "param", "code"}}}: param and code are null
     * when they do not apply.
     */
    record ErrorResponse(ErrorBody error) {
    }

    record ErrorBody(String message, String type, String param, String code) {
    }

}
