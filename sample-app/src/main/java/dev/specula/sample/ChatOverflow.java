package dev.specula.sample;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.openai.OpenAiChatOptions;
import reactor.core.publisher.Flux;
import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatOptions;

/**
 * The overflow remote, an OpenAI-compatible endpoint (vLLM, SGLang, KServe, another
 * Specula fleet) reached through Spring AI's OpenAI {@link ChatModel}, behind a circuit
 * breaker: while the breaker is open every call fails at once with
 * {@link io.github.resilience4j.circuitbreaker.CallNotPermittedException}, and the caller
 * answers with the local failure as before.
 * <p>
 * Only the portable options travel (model, temperature, top_p, max_tokens (the gateway's
 * default when the request names none), stop, seed, the penalties); a request with a
 * field of {@link #LOCAL_ONLY}, or that asks how its tokens were made
 * ({@code speculation.provenance}, which only the local engine knows), never overflows
 * ({@link OverflowRules}). A stream always asks the remote for its usage, which settles
 * the caller's tokens per minute.
 */
final class ChatOverflow {

    /** Request fields the remote request cannot carry: such requests stay local. */
    static final List<String> LOCAL_ONLY = List.of("tools", "tool_choice", "parallel_tool_calls", "response_format",
            "logprobs", "top_logprobs", "prediction", "logit_bias", "top_k", "repetition_penalty");

    /** The client of the remote (Spring AI's OpenAiChatModel; no retries of its own). */
    private final ChatModel remote;

    /**
     * Opens when too many remote calls fail; a dead remote is then not called at all.
     * Shared with {@link CompletionOverflow}: one remote, one breaker.
     */
    private final CircuitBreaker breaker;

    /** Which chat requests the remote may answer. */
    private final OverflowRules rules;

    /** Longest a remote stream may take, {@code specula.overflow.timeout}. */
    private final Duration timeout;

    ChatOverflow(ChatModel remote, CircuitBreaker breaker, String model, Duration timeout) {
        this.remote = remote;
        this.breaker = breaker;
        this.rules = new OverflowRules(model, LOCAL_ONLY);
        this.timeout = timeout;
    }

    /** The remote model's name, {@code specula.overflow.model}. */
    String model() {
        return rules.model();
    }

    CircuitBreaker breaker() {
        return breaker;
    }

    /** Whether the request's {@code model} is the remote model's name. */
    boolean isNamedIn(JsonNode body) {
        return rules.isNamedIn(body);
    }

    /**
     * Whether a request that failed locally with {@code failure} goes to the remote: the
     * local engine is full (429 busy, queue full, KV memory), not ready (503), or the
     * prompt is over its context, prompt-token limit or KV capacity, and the request uses
     * no {@link #LOCAL_ONLY} field.
     */
    boolean takes(RuntimeException failure, JsonNode body) {
        return rules.takes(failure, body);
    }

    /**
     * Refuses, naming the field, a request for the remote model that uses a
     * {@link #LOCAL_ONLY} field.
     */
    void checkPortable(JsonNode body) {
        rules.checkPortable(body);
    }

    /** The whole answer of the remote. */
    ChatResponse call(ChatCompletionRequest request) {
        return breaker.executeSupplier(() -> remote.call(prompt(request)));
    }

    /**
     * The remote's answer as it streams; the breaker counts the stream once, when it ends
     * or fails (a stream the client cancels counts as neither).
     */
    Flux<ChatResponse> stream(ChatCompletionRequest request) {
        return Flux.defer(() -> {
            breaker.acquirePermission();
            long start = System.nanoTime();
            AtomicBoolean counted = new AtomicBoolean();
            return withUsageOnFinish(remote.stream(prompt(request))).timeout(timeout).doOnComplete(() -> {
                if (counted.compareAndSet(false, true)) {
                    breaker.onSuccess(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                }
            }).doOnError((error) -> {
                if (counted.compareAndSet(false, true)) {
                    breaker.onError(System.nanoTime() - start, TimeUnit.NANOSECONDS, error);
                }
            }).doOnCancel(() -> {
                if (counted.compareAndSet(false, true)) {
                    breaker.releasePermission();
                }
            });
        });
    }

    /**
     * The stream with its usage moved onto the response that carries the finish reason:
     * an OpenAI stream sends the usage in a chunk of its own after that one, and
     * {@link CompletionStream} finishes on the finish reason.
     */
    static Flux<ChatResponse> withUsageOnFinish(Flux<ChatResponse> responses) {
        AtomicReference<ChatResponse> finish = new AtomicReference<>();
        return responses.concatMap((response) -> {
            ChatResponse held = finish.getAndSet(null);
            if (held != null) {
                return Flux.just(new ChatResponse(held.getResults(), response.getMetadata()));
            }
            if (OpenAiJson.finishReason(response) != null) {
                finish.set(response);
                return Flux.empty();
            }
            return Flux.just(response);
        }).concatWith(Flux.defer(() -> {
            ChatResponse held = finish.getAndSet(null);
            return held == null ? Flux.empty() : Flux.just(held);
        }));
    }

    /** The request's messages with its portable options, for the remote model. */
    private Prompt prompt(ChatCompletionRequest request) {
        SpeculaChatOptions local = request.options();
        OpenAiChatOptions.Builder options = OpenAiChatOptions.builder();
        options.model(rules.model());
        options.temperature(local.getTemperature());
        options.topP(local.getTopP());
        options.maxTokens(local.getMaxTokens());
        options.stop(local.getStopSequences());
        options.frequencyPenalty(local.getFrequencyPenalty());
        options.presencePenalty(local.getPresencePenalty());
        if (local.getSeed() != null) {
            options.seed(local.getSeed().intValue());
        }
        // always: the caller's tokens per minute are settled with the usage
        options.streamUsage(true);
        return new Prompt(request.messages(), options.build());
    }

}
