package dev.specula.sample;

import java.util.Map;
import java.util.Set;

import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatOptions;
import dev.specula.request.InvalidRequestException;

/**
 * A request of OpenAI's legacy completions API ({@code POST /v1/completions}: a raw
 * prompt, continued as it is, without a chat template), read from JSON and checked field
 * by field like a chat request ({@link ChatCompletionRequest}): every top-level field is
 * {@link #SUPPORTED}, {@link #IGNORED} or refused with a 400 that names it.
 *
 * @param promptText the prompt as text; null when it came as token ids
 * @param promptIds the prompt as token ids, as the client sent them (checked against the
 * vocabulary later, {@link CompletionPrompt}); null when it came as text
 * @param suffix the text after the completion (fill-in-the-middle); null when absent
 * @param echo whether the answer's text starts with the prompt's; with {@code logprobs},
 * the answer's log-probabilities then start with the prompt's (its first token's null),
 * as vLLM's do, which scorers such as lm-evaluation-harness read
 * @param logprobs how many most likely tokens to report at each position (0 to
 * {@value #MAX_LOGPROBS}, the sampled token always reported too); null for no
 * log-probabilities
 * @param options sampling, speculation and the most tokens (unset fields inherit the
 * model's defaults); with {@code echo}, {@code max_tokens} may be 0: the answer is the
 * prompt alone (scored with {@code logprobs}), nothing generated
 * @param stream whether to answer with server-sent events
 * @param includeUsage whether a stream ends with a chunk that carries the usage
 */
record CompletionRequest(String promptText, int[] promptIds, String suffix, boolean echo, Integer logprobs,
        SpeculaChatOptions options, boolean stream, boolean includeUsage) {

    /** The legacy API's limit on {@code logprobs}. */
    static final int MAX_LOGPROBS = 5;

    /** The request fields read and honoured. */
    static final Set<String> SUPPORTED = Set.of("model", "prompt", "suffix", "echo", "logprobs", "stream",
            "stream_options", "temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "n", "best_of",
            "frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias", "prediction", "speculation");

    /** Accepted and ignored: it changes nothing in the answer. */
    static final Set<String> IGNORED = Set.of("user");

    /** Reads and checks a request for the model named {@code servedModel}. */
    static CompletionRequest read(JsonNode body, String servedModel) {
        if (body == null || !body.isObject()) {
            throw new InvalidRequestException(null, "The request body must be a JSON object with at least \"prompt\"");
        }
        RequestFields.checkFields(body, SUPPORTED, IGNORED, Map.of(), (field) -> false);
        String model = RequestFields.model(body, servedModel);
        JsonNode prompt = prompt(body.get("prompt"));
        RequestFields.requireOne(body, "n");
        RequestFields.requireOne(body, "best_of");
        SpeculaChatOptions.Builder options = SpeculaChatOptions.builder().model(model);
        boolean echo = Boolean.TRUE.equals(RequestFields.optionalBoolean(body, "echo", "echo"));
        Long maxTokens = RequestFields.optionalInteger(body, "max_tokens");
        if (maxTokens != null && maxTokens == 0 && !echo) {
            throw new InvalidRequestException("max_tokens", "max_tokens must be >= 1 but was 0: 0 generates nothing, "
                    + "which only makes sense with echo (the prompt alone, scored with logprobs); set echo to true, "
                    + "or max_tokens to 1 or more");
        }
        RequestFields.sampling(body, "max_tokens", echo ? 0 : 1, options);
        String suffix = RequestFields.optionalString(body, "suffix");
        Integer logprobs = logprobs(body.get("logprobs"));
        if (echo && logprobs != null && suffix != null && !suffix.isEmpty()) {
            throw new InvalidRequestException("echo", "unsupported_value",
                    "echo with logprobs scores the prompt as the model reads it, and a suffix wraps it in "
                            + "fill-in-the-middle tokens that the echoed text does not show: leave out the suffix, "
                            + "or echo");
        }
        if (logprobs != null) {
            options.logprobs(true).topLogprobs(logprobs);
        }
        if (echo && (logprobs != null || Long.valueOf(0).equals(maxTokens))) {
            // the prompt's own, as vLLM's prompt_logprobs; with max_tokens 0 they are all
            // the model is asked for
            options.promptLogprobs(logprobs != null ? logprobs : 0);
        }
        boolean stream = Boolean.TRUE.equals(RequestFields.optionalBoolean(body, "stream", "stream"));
        boolean includeUsage = RequestFields.includeUsage(body);
        RequestFields.speculation(body, options);
        return new CompletionRequest(prompt.isString() ? prompt.stringValue() : null,
                prompt.isArray() ? tokenIds(prompt) : null, suffix, echo, logprobs, options.build(), stream,
                includeUsage);
    }

    /**
     * The one prompt: a string or an array of token ids, or a batch of one of either
     * ({@code ["..."]}, {@code [[1, 2]]}); a batch of several is refused, since a request
     * gets one choice.
     */
    private static JsonNode prompt(JsonNode node) {
        String expected = "a string, or an array of token ids (integers)";
        if (node == null || node.isNull()) {
            throw new InvalidRequestException("prompt", "prompt is required: " + expected);
        }
        if (node.isString()) {
            return node;
        }
        if (!node.isArray()) {
            throw new InvalidRequestException("prompt", "prompt must be " + expected);
        }
        if (node.isEmpty()) {
            throw new InvalidRequestException("prompt", "prompt must not be empty: send " + expected);
        }
        JsonNode first = node.get(0);
        if (first.isString() || first.isArray()) {
            if (node.size() > 1) {
                throw new InvalidRequestException("prompt", "unsupported_value", "prompt holds a batch of "
                        + node.size() + " prompts: this server answers one prompt per request; send them one by one");
            }
            if (first.isArray() && first.isEmpty()) {
                throw new InvalidRequestException("prompt[0]", "prompt[0] must not be empty: send token ids");
            }
            return first;
        }
        return node;
    }

    /** The ids of an array prompt, each a non-negative integer. */
    private static int[] tokenIds(JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = array.get(i);
            if (!id.isNumber() || !id.canConvertToExactIntegral() || !id.canConvertToInt() || id.intValue() < 0) {
                throw new InvalidRequestException("prompt[" + i + "]", "prompt[" + i
                        + "] must be a token id (an integer >= 0): a prompt is a string or an array of token ids");
            }
            ids[i] = id.intValue();
        }
        return ids;
    }

    /**
     * The legacy API's {@code logprobs}: an integer from 0 to {@value #MAX_LOGPROBS};
     * null when absent.
     */
    private static Integer logprobs(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        String expected = "logprobs must be an integer from 0 to " + MAX_LOGPROBS
                + " (how many most likely tokens to report at each position; the chat API's is true/false)";
        if (!node.isNumber() || !node.canConvertToExactIntegral() || !node.canConvertToInt()) {
            throw new InvalidRequestException("logprobs", expected);
        }
        int logprobs = node.intValue();
        if (logprobs < 0 || logprobs > MAX_LOGPROBS) {
            throw new InvalidRequestException("logprobs", expected + " but was " + logprobs);
        }
        return logprobs;
    }

}
