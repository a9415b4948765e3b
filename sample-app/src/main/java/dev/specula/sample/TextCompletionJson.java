package dev.specula.sample;

import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * The JSON bodies of OpenAI's legacy completions API, as the gateway writes them: the
 * answer and each event of a streamed one are both {@code "object": "text_completion"}.
 */
final class TextCompletionJson {

    static final String TEXT_COMPLETION = "text_completion";

    private TextCompletionJson() {
    }

    /**
     * An answer, or one event of a stream. {@code usage} is left out of a stream's events
     * but the last (with {@code stream_options.include_usage}); {@code speculation} is
     * Specula's own (as in a chat completion), on an answer and on a stream's
     * {@code finish_reason} event.
     */
    record TextCompletion(String id, String object, long created, String model, List<Choice> choices,
            @JsonInclude(JsonInclude.Include.NON_NULL) OpenAiJson.Usage usage,
            @JsonInclude(JsonInclude.Include.NON_NULL) Map<String, Object> speculation) {
    }

    /**
     * The text (the whole answer, or a stream's next piece), its log-probabilities
     * ({@link CompletionLogprobs}; null unless asked for; in a stream, those of the
     * event's own tokens), and why it ended (null in a stream until its end).
     */
    record Choice(String text, int index, Map<String, Object> logprobs,
            @JsonProperty("finish_reason") String finishReason) {
    }

}
