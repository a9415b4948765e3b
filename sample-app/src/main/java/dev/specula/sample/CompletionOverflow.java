package dev.specula.sample;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import reactor.core.publisher.Flux;
import reactor.core.scheduler.Schedulers;
import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatOptions;

/**
 * The overflow remote for OpenAI's legacy completions API ({@code POST /v1/completions}),
 * reached with openai-java's {@link OpenAIClient#completions()} (Spring AI has no client
 * of this API; its OpenAI chat model runs on the same client, built from the same
 * {@code specula.overflow.*} settings), behind the circuit breaker {@link ChatOverflow}
 * uses: one remote, one breaker.
 * <p>
 * The prompt travels as the client sent it (text, or token ids), with {@code suffix} (the
 * remote needs fill-in-the-middle for it: else its 400 names the field), {@code echo},
 * the portable sampling options (temperature, top_p, stop, seed, the penalties) and
 * {@code max_tokens}, the local default when the request has none (the legacy API's own
 * default is 16). A request with a field of {@link #LOCAL_ONLY}, or that asks for
 * {@code speculation.provenance}, never overflows ({@link OverflowRules}); the other
 * {@code speculation} settings steer the local decoding only, which never changes the
 * text. A stream always asks the remote for its usage, which settles the caller's tokens
 * per minute.
 */
final class CompletionOverflow {

    /** Request fields the remote request cannot carry: such requests stay local. */
    static final List<String> LOCAL_ONLY = List.of("logprobs", "logit_bias", "prediction", "top_k",
            "repetition_penalty");

    /** The client of the remote, without retries of its own. */
    private final OpenAIClient remote;

    /** Shared with {@link ChatOverflow}. */
    private final CircuitBreaker breaker;

    /** Which completion requests the remote may answer. */
    private final OverflowRules rules;

    /** Longest a remote stream may take, {@code specula.overflow.timeout}. */
    private final Duration timeout;

    CompletionOverflow(OpenAIClient remote, CircuitBreaker breaker, String model, Duration timeout) {
        this.remote = remote;
        this.breaker = breaker;
        this.rules = new OverflowRules(model, LOCAL_ONLY);
        this.timeout = timeout;
    }

    /** The remote model's name, {@code specula.overflow.model}. */
    String model() {
        return rules.model();
    }

    /** Whether the request's {@code model} is the remote model's name. */
    boolean isNamedIn(JsonNode body) {
        return rules.isNamedIn(body);
    }

    /**
     * Whether a request that failed locally with {@code failure} goes to the remote
     * ({@link OverflowRules#takes}).
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

    /** The whole answer of the remote, at most {@code maxTokens} long. */
    Completion call(CompletionRequest request, int maxTokens) {
        return breaker.executeSupplier(() -> remote.completions().create(params(request, maxTokens, false)));
    }

    /**
     * The remote's answer as it streams, read on a worker thread; the breaker counts the
     * stream once, when it ends or fails (a stream the client cancels counts as neither,
     * and closes the remote's response).
     */
    Flux<Completion> stream(CompletionRequest request, int maxTokens) {
        CompletionCreateParams params = params(request, maxTokens, true);
        return Flux.defer(() -> {
            breaker.acquirePermission();
            long start = System.nanoTime();
            AtomicBoolean counted = new AtomicBoolean();
            return Flux
                .using(() -> remote.completions().createStreaming(params),
                        (response) -> Flux.fromStream(response.stream()), StreamResponse::close)
                .subscribeOn(Schedulers.boundedElastic())
                .timeout(timeout)
                .doOnComplete(() -> {
                    if (counted.compareAndSet(false, true)) {
                        breaker.onSuccess(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                    }
                })
                .doOnError((error) -> {
                    if (counted.compareAndSet(false, true)) {
                        breaker.onError(System.nanoTime() - start, TimeUnit.NANOSECONDS, error);
                    }
                })
                .doOnCancel(() -> {
                    if (counted.compareAndSet(false, true)) {
                        breaker.releasePermission();
                    }
                });
        });
    }

    /** The remote request: the prompt as sent, and the portable options. */
    CompletionCreateParams params(CompletionRequest request, int maxTokens, boolean stream) {
        CompletionCreateParams.Builder params = CompletionCreateParams.builder().model(model());
        if (request.promptText() != null) {
            params.prompt(request.promptText());
        }
        else {
            params.promptOfArrayOfTokens(Arrays.stream(request.promptIds()).mapToObj(Long::valueOf).toList());
        }
        if (request.suffix() != null) {
            params.suffix(request.suffix());
        }
        if (request.echo()) {
            params.echo(true);
        }
        SpeculaChatOptions options = request.options();
        params.maxTokens(maxTokens);
        // what the request left out stays out (openai-java would send a null)
        if (options.getTemperature() != null) {
            params.temperature(options.getTemperature());
        }
        if (options.getTopP() != null) {
            params.topP(options.getTopP());
        }
        if (options.getStopSequences() != null) {
            params.stopOfStrings(options.getStopSequences());
        }
        if (options.getSeed() != null) {
            params.seed(options.getSeed());
        }
        if (options.getFrequencyPenalty() != null) {
            params.frequencyPenalty(options.getFrequencyPenalty());
        }
        if (options.getPresencePenalty() != null) {
            params.presencePenalty(options.getPresencePenalty());
        }
        if (stream) {
            // always: the caller's tokens per minute are settled with the usage
            params.streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build());
        }
        return params.build();
    }

}
